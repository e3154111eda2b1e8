/**
 * Prometheus metrics of one region: one prom-client Registry per region (default label `region`), served
 * at `/metrics` on the region's monitor port. Nothing here runs per message: every counter and gauge is
 * read at scrape time, in a `collect()` callback, from totals the broker and gateway keep anyway. The one
 * exception is the link RTT histogram, fed by each heartbeat pong (one observation per link every 2 s).
 *
 * The list, with meanings, is in docs/operations.md; `METRIC_NAMES` below is the same list for tests.
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { DROP_REASONS as OUTBOX_DROP_REASONS } from "../gateway/outbox.js";
import type { RegionContext } from "./context.js";
import { LINK_STATES, learnedEntries, peersOf } from "./views.js";

/**
 * Gateway drop reasons and the counter behind each. Store-and-forward drops (overflow, expired,
 * no_interest, filtered at replay) have their own family, bridgehead_outbox_dropped_messages_total.
 */
export const DROP_REASONS = {
  filtered: (s: { msgsFiltered: number }) => s.msgsFiltered,
  unroutable: (s: { msgsUnroutable: number }) => s.msgsUnroutable,
} as const;

export type DropReason = keyof typeof DROP_REASONS;

/** RTT buckets, seconds: from a same-host link (~0.1 ms) to an intercontinental one under load. */
const RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type Labels<L extends string> = Partial<Record<L, string>>;
type Read<L extends string> = () => Iterable<readonly [Labels<L>, number]>;

export interface RegionMetrics {
  readonly registry: Registry;
  /** Stop observing RTTs (the registry stays readable). */
  stop(): void;
}

export function createRegionMetrics(ctx: RegionContext): RegionMetrics {
  const { name: region, broker, gateway } = ctx.region;
  const registry = new Registry();
  registry.setDefaultLabels({ region });
  const registers = [registry];

  function counter<L extends string>(name: string, help: string, labelNames: readonly L[], read: Read<L>) {
    const c: Counter<L> = new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        c.reset();
        for (const [labels, v] of read()) c.inc(labels, v);
      },
    });
  }
  function gauge<L extends string>(name: string, help: string, labelNames: readonly L[], read: Read<L>) {
    const g: Gauge<L> = new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        g.reset();
        for (const [labels, v] of read()) g.set(labels, v);
      },
    });
  }
  const one =
    (v: () => number): Read<never> =>
    () => [[{}, v()]];

  const startedAt = new Date();
  // ---- broker (embedded only: a nats-server cluster has its own monitoring) ------------------------------
  if (broker !== undefined) {
    const bs = broker.stats;
    gauge(
      "bridgehead_broker_connections",
      "Client connections open now.",
      [],
      one(() => broker.clients.size),
    );
    counter(
      "bridgehead_broker_connections_total",
      "Client connections accepted.",
      [],
      one(() => bs.totalConnections),
    );
    gauge(
      "bridgehead_broker_subscriptions",
      "Client subscriptions now.",
      [],
      one(() => broker.sublist.count),
    );
    counter(
      "bridgehead_broker_received_messages_total",
      "Messages published by this region's clients.",
      [],
      one(() => bs.inMsgs),
    );
    counter(
      "bridgehead_broker_received_bytes_total",
      "Payload bytes published by this region's clients.",
      [],
      one(() => bs.inBytes),
    );
    counter(
      "bridgehead_broker_sent_messages_total",
      "Messages delivered to this region's clients (one per subscription served), whatever their origin.",
      [],
      one(() => bs.outMsgs),
    );
    counter(
      "bridgehead_broker_sent_bytes_total",
      "Payload bytes delivered to this region's clients.",
      [],
      one(() => bs.outBytes),
    );
    counter(
      "bridgehead_broker_injected_messages_total",
      "Messages from other regions handed to this region's broker.",
      [],
      one(() => bs.injectedMsgs),
    );
    counter(
      "bridgehead_broker_slow_consumers_total",
      "Clients disconnected as slow consumers.",
      [],
      one(() => bs.slowConsumers),
    );
  }

  // ---- gateway ------------------------------------------------------------------------------------------
  const gs = gateway.stats;
  counter(
    "bridgehead_gateway_forwarded_messages_total",
    "Messages published here and sent to at least one other region.",
    [],
    one(() => gs.msgsForwarded),
  );
  counter(
    "bridgehead_gateway_received_messages_total",
    "Messages received from other regions' links (before filtering).",
    [],
    one(() => gs.msgsReceived),
  );
  counter(
    "bridgehead_gateway_delivered_messages_total",
    "Messages from other regions delivered to at least one local subscriber.",
    [],
    one(() => gs.msgsDelivered),
  );
  counter(
    "bridgehead_gateway_transit_messages_total",
    "Message copies passed on towards another region (this region is a hop on their path).",
    [],
    one(() => gs.msgsTransit),
  );
  counter(
    "bridgehead_gateway_dropped_messages_total",
    "Message copies dropped, by reason: filtered (a link export/import list), unroutable (while routes changed, the only route pointed back over the link the message came in on (a region without a path gets its messages parked instead: bridgehead_outbox_*)).",
    ["reason"],
    () => Object.entries(DROP_REASONS).map(([reason, read]) => [{ reason }, read(gs)] as const),
  );

  // ---- links --------------------------------------------------------------------------------------------
  const views = () => peersOf(ctx).map((peer) => ({ peer, v: gateway.linkView(peer) }));
  gauge("bridgehead_link_up", "1 when the link to the peer is up, else 0.", ["peer"], () =>
    views().map(({ peer, v }) => [{ peer }, v?.state === "up" ? 1 : 0] as const),
  );
  gauge(
    "bridgehead_link_state",
    "The link's state: 1 for the current one (connecting, syncing, up, down, closed), 0 for the others.",
    ["peer", "state"],
    () =>
      views().flatMap(({ peer, v }) =>
        LINK_STATES.map((state) => [{ peer, state }, (v?.state ?? "down") === state ? 1 : 0] as const),
      ),
  );
  const linkCounter = (
    name: string,
    help: string,
    key: "msgsSent" | "msgsReceived" | "bytesSent" | "bytesReceived" | "framesSent" | "framesReceived",
  ) => counter(name, help, ["peer"], () => views().map(({ peer, v }) => [{ peer }, v?.[key] ?? 0] as const));
  linkCounter("bridgehead_link_sent_messages_total", "Message ops sent to the peer.", "msgsSent");
  linkCounter(
    "bridgehead_link_received_messages_total",
    "Message ops received from the peer.",
    "msgsReceived",
  );
  linkCounter(
    "bridgehead_link_sent_bytes_total",
    "Frame bytes sent to the peer (messages, interest, topology).",
    "bytesSent",
  );
  linkCounter("bridgehead_link_received_bytes_total", "Frame bytes received from the peer.", "bytesReceived");
  linkCounter(
    "bridgehead_link_sent_frames_total",
    "Frames (WebSocket messages) sent to the peer.",
    "framesSent",
  );
  linkCounter(
    "bridgehead_link_received_frames_total",
    "Frames (WebSocket messages) received from the peer.",
    "framesReceived",
  );
  counter(
    "bridgehead_link_reconnects_total",
    "Links to the peer established after the first one (each one follows a loss).",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, Math.max(0, (v?.established ?? 0) - 1)] as const),
  );
  gauge(
    "bridgehead_link_dial_attempts",
    "Dial attempts since the last successful handshake (0 while linked; only the dialing side counts).",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, v?.dialAttempts ?? 0] as const),
  );
  // A link's outbox is its send queue (data held while the link is saturated, bounded by the link's
  // outbox limits) plus what the WebSocket holds for the kernel. Destinations without a path have their
  // own outboxes (bridgehead_outbox_*).
  gauge(
    "bridgehead_link_outbox_frames",
    "Link outbox depth: frames in the link's send queue (held while the link is saturated) plus frames handed to the socket and not yet written to the kernel.",
    ["peer"],
    () =>
      views().map(({ peer, v }) => [{ peer }, (v?.queued.frames ?? 0) + (v?.pendingFrames ?? 0)] as const),
  );
  gauge(
    "bridgehead_link_outbox_messages",
    "Messages in the link's send queue, waiting while the link is saturated (backpressure).",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, v?.queued.messages ?? 0] as const),
  );
  gauge(
    "bridgehead_link_outbox_bytes",
    "Link outbox size: bytes in the link's send queue plus bytes buffered in the socket, not yet written to the kernel.",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, (v?.queued.bytes ?? 0) + (v?.bufferedBytes ?? 0)] as const),
  );
  gauge(
    "bridgehead_link_compression_input_bytes",
    "Bytes of the frames the current link compressed, before compression (with bridgehead_link_compression_output_bytes: the ratio).",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, v?.compression.bytesIn ?? 0] as const),
  );
  gauge(
    "bridgehead_link_compression_output_bytes",
    "Bytes of those frames after compression, as sent.",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, v?.compression.bytesOut ?? 0] as const),
  );
  gauge(
    "bridgehead_link_unacked_bytes",
    "Bytes written to the link that the peer has not acknowledged yet (kept for replay if the link is lost).",
    ["peer"],
    () => views().map(({ peer, v }) => [{ peer }, v?.unacked.bytes ?? 0] as const),
  );
  // ---- store-and-forward ----------------------------------------------------------------------------------
  // One series per region this one can send to (0 while nothing is parked), plus any still holding messages.
  const outboxes = () => {
    const byDest = new Map(gateway.store.views().map((o) => [o.destination, o]));
    for (const r of gateway.topology.reachableRegions()) {
      if (r !== gateway.region && !byDest.has(r))
        byDest.set(r, { destination: r, messages: 0, bytes: 0, oldestAgeMs: 0, heldSince: undefined });
    }
    return [...byDest.values()];
  };
  gauge(
    "bridgehead_outbox_messages",
    "Messages parked for a destination region that has no path now (or a backlog), waiting for replay.",
    ["destination"],
    () => outboxes().map((o) => [{ destination: o.destination }, o.messages] as const),
  );
  gauge(
    "bridgehead_outbox_bytes",
    "Bytes parked for a destination region (payload, subject and reply plus a fixed per-message overhead).",
    ["destination"],
    () => outboxes().map((o) => [{ destination: o.destination }, o.bytes] as const),
  );
  gauge(
    "bridgehead_outbox_oldest_age_seconds",
    "Age of the oldest message parked for a destination region.",
    ["destination"],
    () => outboxes().map((o) => [{ destination: o.destination }, o.oldestAgeMs / 1000] as const),
  );
  counter(
    "bridgehead_outbox_dropped_messages_total",
    "Messages dropped by store-and-forward, by destination (for a saturated link's send queue: the next hop) and reason: overflow (a bound), expired (max age), no_interest (the destination no longer wanted it at replay), filtered (a link filter at replay).",
    ["destination", "reason"],
    () =>
      outboxes().flatMap(({ destination }) =>
        OUTBOX_DROP_REASONS.map(
          (reason) =>
            [{ destination, reason }, gateway.store.dropsTo.get(destination)?.[reason] ?? 0] as const,
        ),
      ),
  );
  counter(
    "bridgehead_outbox_parked_messages_total",
    "Messages parked in a destination outbox (no path at the time).",
    [],
    () => [[{}, gateway.store.msgsParked] as const],
  );
  counter(
    "bridgehead_outbox_replayed_messages_total",
    "Parked messages sent on once a path was back.",
    [],
    () => [[{}, gateway.store.msgsReplayed] as const],
  );
  counter(
    "bridgehead_gateway_duplicates_dropped_total",
    "Messages that arrived a second time (a replay after a link loss) and were not delivered again.",
    [],
    () => [[{}, gateway.stats.duplicatesDropped] as const],
  );
  counter(
    "bridgehead_link_dropped_messages_total",
    "Messages dropped on the link, by reason: filtered (this link's export/import lists, either way), unroutable (received from this peer, routes changed, the only route pointed back over the link the message came in on (a region without a path gets its messages parked instead: bridgehead_outbox_*)).",
    ["peer", "reason"],
    () =>
      views().flatMap(({ peer, v }) => [
        [{ peer, reason: "filtered" }, v?.msgsFiltered ?? 0] as const,
        [{ peer, reason: "unroutable" }, v?.msgsUnroutable ?? 0] as const,
      ]),
  );
  gauge(
    "bridgehead_link_interest_entries",
    "Interest entries learned over the link: those of every origin region whose interest was last applied from a snapshot or delta the peer sent.",
    ["peer"],
    () => views().map(({ peer }) => [{ peer }, learnedEntries(ctx, peer)] as const),
  );
  gauge(
    "bridgehead_link_interest_lag_seconds",
    "Interest convergence lag of the link: seconds it has waited for interest (since the handshake while syncing, else since its oldest unanswered resync request); 0 when converged or not linked.",
    ["peer"],
    () =>
      views().map(({ peer, v }) => {
        const since = v?.interestAwaitedSince;
        return [{ peer }, since === undefined ? 0 : Math.max(0, (Date.now() - since) / 1000)] as const;
      }),
  );
  const rtt = new Histogram<"peer">({
    name: "bridgehead_link_rtt_seconds",
    help: "Round-trip times measured by the link heartbeats (one observation per pong).",
    labelNames: ["peer"],
    buckets: RTT_BUCKETS,
    registers,
  });
  const unsubscribeRtt = gateway.onRtt((peer, micros) => rtt.observe({ peer }, micros / 1e6));

  // ---- interest -----------------------------------------------------------------------------------------
  counter(
    "bridgehead_interest_updates_sent_total",
    "Local interest changes sent to the other regions.",
    [],
    one(() => gs.interestUpdatesSent),
  );
  counter(
    "bridgehead_interest_updates_received_total",
    "Interest snapshots and deltas received (all origins, duplicates included).",
    [],
    one(() => gs.interestUpdatesReceived),
  );
  counter(
    "bridgehead_interest_resyncs_requested_total",
    "Snapshots asked for (a gap in an origin's sequence, or a reachable origin with unknown interest).",
    [],
    one(() => gs.resyncsRequested),
  );
  // Origins: this region, every region whose interest is known, and every reachable one.
  const origins = () => [
    ...new Set([region, ...gateway.remote.originNames(), ...gateway.topology.reachableRegions()]),
  ];
  gauge(
    "bridgehead_interest_entries",
    "Interest entries (subject, queue) known per origin region; the region's own for itself.",
    ["origin"],
    () =>
      origins().map(
        (o) =>
          [
            { origin: o },
            o === region
              ? (broker?.interest.size ?? gateway.port.interestSnapshot().length)
              : (gateway.remote.origin(o)?.entries.size ?? 0),
          ] as const,
      ),
  );
  gauge(
    "bridgehead_interest_applied_seq",
    "The origin's interest sequence number applied here (the region's own for itself).",
    ["origin"],
    () =>
      origins().flatMap((o) => {
        const a = gateway.appliedSeq(o);
        return a === undefined ? [] : [[{ origin: o }, a.seq] as const];
      }),
  );
  gauge(
    "bridgehead_interest_synced",
    "1 when the interest of a reachable origin is known here (a snapshot applied), 0 while it is awaited.",
    ["origin"],
    () =>
      gateway.topology
        .reachableRegions()
        .map((o) => [{ origin: o }, gateway.appliedSeq(o) === undefined ? 0 : 1] as const),
  );
  gauge(
    "bridgehead_interest_update_age_seconds",
    "Seconds since the origin's interest last changed here (snapshot or delta applied). Grows while the origin is quiet.",
    ["origin"],
    () =>
      origins().flatMap((o) => {
        const at = gateway.interestUpdatedAt(o);
        return at === undefined || o === region ? [] : [[{ origin: o }, (Date.now() - at) / 1000] as const];
      }),
  );
  gauge(
    "bridgehead_interest_seq_lag",
    "Interest changes of the origin not yet applied here. Only for origins running in this process (bridgehead up).",
    ["origin"],
    () =>
      origins().flatMap((o) => {
        if (o === region) return [];
        const at = ctx.originSeq(o);
        if (at === undefined) return [];
        const applied = gateway.appliedSeq(o);
        // Nothing of the origin's current epoch applied: all of it is missing, its snapshot included.
        const lag = applied === undefined || applied.epoch !== at.epoch ? at.seq + 1 : at.seq - applied.seq;
        return [[{ origin: o }, Math.max(0, lag)] as const];
      }),
  );

  // ---- topology and process ------------------------------------------------------------------------------
  gauge(
    "bridgehead_topology_reachable_regions",
    "Other regions reachable from this one over up links.",
    [],
    one(() => gateway.topology.reachableRegions().length),
  );
  gauge(
    "bridgehead_region_start_time_seconds",
    "When this region started (its embedded broker, else its gateway; Unix time, seconds).",
    [],
    one(() => (broker?.startedAt ?? startedAt).getTime() / 1000),
  );

  return {
    registry,
    stop: unsubscribeRtt,
  };
}
