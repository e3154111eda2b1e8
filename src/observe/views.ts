/**
 * The JSON bodies of the region monitor's gateway endpoints (/linkz, /interestz, the gateway part of
 * /varz), built from the gateway's read-only views. Field names are snake_case like nats-server's.
 */
import type { LinkState } from "../gateway/link.js";
import type { RegionContext } from "./context.js";
import { wireToText } from "./context.js";

export const LINK_STATES: readonly LinkState[] = ["connecting", "syncing", "up", "down", "closed"];

/** The peers shown: every configured one, plus any other the gateway has or had a link with. */
export function peersOf(ctx: RegionContext): string[] {
  return [...new Set([...ctx.configuredPeers(), ...ctx.region.gateway.peers()])].sort();
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function ms(micros: number | undefined): number | null {
  return micros === undefined ? null : micros / 1000;
}

/** Interest entries of the origins whose interest was last applied from what `peer` sent. */
export function learnedEntries(ctx: RegionContext, peer: string): number {
  const gw = ctx.region.gateway;
  let n = 0;
  for (const origin of gw.remote.originNames()) {
    if (gw.interestLearnedFrom(origin) === peer) n += gw.remote.origin(origin)?.entries.size ?? 0;
  }
  return n;
}

export function linkz(ctx: RegionContext): Record<string, unknown> {
  const { name, gateway } = ctx.region;
  const configured = new Set(ctx.configuredPeers());
  const list = (l: readonly string[] | undefined) => l ?? null;
  const links = peersOf(ctx).map((peer) => {
    const v = gateway.linkView(peer);
    const out = ctx.linkFilters(name, peer);
    const inb = ctx.linkFilters(peer, name);
    return {
      peer,
      configured: configured.has(peer),
      state: v?.state ?? "down",
      direction: v?.direction ?? null,
      remote: v?.remote ?? null,
      rtt_ms: ms(v?.rttMicros),
      since: iso(v?.since),
      msgs_sent: v?.msgsSent ?? 0,
      msgs_received: v?.msgsReceived ?? 0,
      bytes_sent: v?.bytesSent ?? 0,
      bytes_received: v?.bytesReceived ?? 0,
      frames_sent: v?.framesSent ?? 0,
      frames_received: v?.framesReceived ?? 0,
      reconnects: Math.max(0, (v?.established ?? 0) - 1),
      dial_attempts: v?.dialAttempts ?? 0,
      // The link's outbox: its send queue (held while saturated, shed past max_bytes) plus the socket's
      // buffer; and what the peer has not acknowledged yet.
      outbox: {
        frames: (v?.queued.frames ?? 0) + (v?.pendingFrames ?? 0),
        messages: v?.queued.messages ?? 0,
        bytes: (v?.queued.bytes ?? 0) + (v?.bufferedBytes ?? 0),
        max_bytes: ctx.outboxMaxBytes(name, peer),
      },
      acks: v?.acks ?? false,
      compression: {
        mode: v?.compression.mode ?? "off",
        frames: v?.compression.frames ?? 0,
        bytes_in: v?.compression.bytesIn ?? 0,
        bytes_out: v?.compression.bytesOut ?? 0,
      },
      unacked: { messages: v?.unacked.messages ?? 0, bytes: v?.unacked.bytes ?? 0 },
      dropped: { filtered: v?.msgsFiltered ?? 0, unroutable: v?.msgsUnroutable ?? 0 },
      interest: {
        entries_learned: learnedEntries(ctx, peer),
        awaited_since: iso(v?.interestAwaitedSince),
        lag_s: v?.interestAwaitedSince === undefined ? 0 : (Date.now() - v.interestAwaitedSince) / 1000,
      },
      last_loss:
        v?.lastLoss === undefined
          ? null
          : { state: v.lastLoss.state, cause: v.lastLoss.cause, at: iso(v.lastLoss.at) },
      filters: {
        outbound: { export: list(out?.export), import: list(out?.import) },
        inbound: { export: list(inb?.export), import: list(inb?.import) },
      },
    };
  });
  return { region: name, now: new Date().toISOString(), num_links: links.length, links };
}

export interface InterestzQuery {
  /** Only this origin. */
  readonly origin?: string | undefined;
  /** At most this many entries per origin (default 1000). */
  readonly limit?: number | undefined;
}

export function interestz(ctx: RegionContext, q: InterestzQuery = {}): Record<string, unknown> {
  const { name, broker, gateway } = ctx.region;
  const limit = q.limit ?? 1000;
  const topo = gateway.topology;
  const entriesOut = (entries: Iterable<{ subject: string; queue: string | undefined; weight: number }>) => {
    const all = [...entries];
    return {
      num_entries: all.length,
      truncated: all.length > limit,
      entries: all.slice(0, limit).map((e) => ({
        subject: wireToText(e.subject),
        queue: e.queue === undefined ? null : wireToText(e.queue),
        weight: e.weight,
      })),
    };
  };
  const names = [...new Set([...gateway.remote.originNames(), ...topo.reachableRegions()])]
    .filter((o) => o !== name)
    .sort();
  const origins: Record<string, unknown>[] = [];
  if (q.origin === undefined || q.origin === name) {
    origins.push({
      origin: name,
      local: true,
      applied: true,
      epoch: gateway.epoch,
      seq: gateway.localSeq,
      reachable: true,
      ...entriesOut(broker?.interestSnapshot() ?? gateway.port.interestSnapshot()),
    });
  }
  for (const o of names) {
    if (q.origin !== undefined && q.origin !== o) continue;
    const st = gateway.remote.origin(o);
    const cost = topo.cost(o);
    const at = gateway.interestUpdatedAt(o);
    const lagFrom = ctx.originSeq(o);
    origins.push({
      origin: o,
      local: false,
      applied: st !== undefined,
      epoch: st?.epoch ?? null,
      seq: st?.seq ?? null,
      // Only when the origin runs in this process: its own sequence, to compare with.
      origin_seq: lagFrom?.seq ?? null,
      reachable: cost !== undefined,
      next_hop: topo.nextHop(o) ?? null,
      hops: cost?.hops ?? null,
      path_rtt_ms: cost === undefined ? null : cost.rttMicros / 1000,
      updated: iso(at),
      update_age_s: at === undefined ? null : (Date.now() - at) / 1000,
      ...entriesOut(st?.entries.values() ?? []),
    });
  }
  return { region: name, now: new Date().toISOString(), origins };
}

/** The gateway part of the region's /varz. */
export function gatewayVarz(ctx: RegionContext): Record<string, unknown> {
  const gw = ctx.region.gateway;
  const addr = gw.address;
  const s = gw.stats;
  return {
    region: ctx.region.name,
    epoch: gw.epoch,
    local_seq: gw.localSeq,
    listen: addr === undefined ? null : `${addr.host}:${addr.port}`,
    links_up: gw.linkedRegions().filter((p) => gw.linkState(p) === "up").length,
    reachable_regions: gw.topology.reachableRegions().sort(),
    msgs_forwarded: s.msgsForwarded,
    msgs_received: s.msgsReceived,
    msgs_delivered: s.msgsDelivered,
    msgs_transit: s.msgsTransit,
    msgs_unroutable: s.msgsUnroutable,
    msgs_filtered: s.msgsFiltered,
    interest_updates_sent: s.interestUpdatesSent,
    interest_updates_received: s.interestUpdatesReceived,
    resyncs_requested: s.resyncsRequested,
  };
}
