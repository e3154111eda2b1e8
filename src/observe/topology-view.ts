/**
 * /topologyz: the whole system as one region sees it, for the dashboard (and for scripts).
 *
 * Why one region serves the whole picture instead of the page fetching every region's monitor: the
 * link-state database every gateway keeps (topology advertisements, flooded on every link change and every
 * 10 s) already lists every region's up links with their RTT, so a single monitor can draw the whole graph.
 * That keeps working when other regions' monitor ports are not reachable from the operator's browser
 * (firewalls, NAT, `monitor.listen` on 127.0.0.1 of another host), needs no CORS header that would let any
 * web page read the monitors, and shows the graph routing actually uses. What the advertisements do not
 * carry (message counters, a link's exact state while it connects) comes from the regions this process
 * runs: its own, and in `bridgehead up` every other one (`RegionContext.sibling`). For a region running
 * elsewhere, counters are `null`: its own monitor has them.
 */
import type { LinkView } from "../gateway/gateway.js";
import type { LinkState } from "../gateway/link.js";
import type { RegionContext } from "./context.js";
import { type Health, health } from "./health.js";
import { peersOf } from "./views.js";

/** How the dashboard colours an edge. */
export type EdgeStatus = "up" | "pending" | "down" | "unknown";

export interface RegionCounters {
  readonly connections: number;
  readonly subscriptions: number;
  /** Messages published by the region's clients. */
  readonly msgs_in: number;
  /** Messages delivered to the region's clients. */
  readonly msgs_out: number;
  readonly bytes_in: number;
  readonly bytes_out: number;
  /** Published here and sent to another region. */
  readonly msgs_forwarded: number;
  /** Received from other regions' links. */
  readonly msgs_received: number;
  readonly msgs_dropped: number;
  readonly links_up: number;
  readonly links: number;
}

export interface TopologyRegion {
  readonly name: string;
  /** The region whose monitor answered. */
  readonly self: boolean;
  readonly reachable: boolean;
  readonly hops: number | null;
  readonly path_rtt_ms: number | null;
  /** Where counters and health come from: this region, another region of this process, or nowhere. */
  readonly observed: "self" | "in-process" | null;
  readonly health: Health | null;
  readonly counters: RegionCounters | null;
}

export interface LinkTraffic {
  readonly msgs_ab: number;
  readonly msgs_ba: number;
  readonly bytes_ab: number;
  readonly bytes_ba: number;
}

export interface TopologyLink {
  /** The dialing region for a configured link; else the names in order. */
  readonly a: string;
  readonly b: string;
  readonly configured: boolean;
  /** The link's state as an end of it reports it, or `up`/`down`/`unknown` from the advertisements. */
  readonly state: LinkState | "unknown";
  readonly status: EdgeStatus;
  /** `link`: read from an end running in this process (`seen_by`); `advertisements`: from the LSDB. */
  readonly source: "link" | "advertisements";
  readonly seen_by: string | null;
  readonly rtt_ms: number | null;
  /** Why the status is what it is, in words. */
  readonly detail: string;
  /** Cumulative counters both ways, when an end runs in this process. */
  readonly traffic: LinkTraffic | null;
}

export interface TopologyView {
  readonly region: string;
  readonly now: string;
  readonly now_ms: number;
  readonly regions: readonly TopologyRegion[];
  readonly links: readonly TopologyLink[];
}

export function statusOf(state: LinkState | "unknown"): EdgeStatus {
  switch (state) {
    case "up":
      return "up";
    case "connecting":
    case "syncing":
      return "pending";
    case "down":
    case "closed":
      return "down";
    default:
      return "unknown";
  }
}

export function regionCounters(ctx: RegionContext): RegionCounters {
  const { broker, gateway } = ctx.region;
  const bs = broker?.stats;
  const gs = gateway.stats;
  const peers = peersOf(ctx);
  // A nats-server-backed region: its clients are the cluster's; only the gateway's counters are known here.
  return {
    connections: broker?.clients.size ?? 0,
    subscriptions: broker?.sublist.count ?? gateway.port.interestSnapshot().length,
    msgs_in: bs?.inMsgs ?? 0,
    msgs_out: bs?.outMsgs ?? 0,
    bytes_in: bs?.inBytes ?? 0,
    bytes_out: bs?.outBytes ?? 0,
    msgs_forwarded: gs.msgsForwarded,
    msgs_received: gs.msgsReceived,
    msgs_dropped: gs.msgsFiltered + gs.msgsUnroutable,
    links_up: peers.filter((p) => gateway.linkState(p) === "up").length,
    links: peers.length,
  };
}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);

function fromLinkView(
  a: string,
  b: string,
  configured: boolean,
  seenBy: string,
  v: LinkView | undefined,
): TopologyLink {
  const state = v?.state ?? "down";
  const forward = seenBy === a;
  let detail = `link ${state} (seen by ${seenBy})`;
  if (v === undefined) detail = `never established (seen by ${seenBy})`;
  else if ((state === "down" || state === "closed") && v.lastLoss !== undefined)
    detail = `${state}: ${v.lastLoss.cause} (seen by ${seenBy})`;
  return {
    a,
    b,
    configured,
    state,
    status: statusOf(state),
    source: "link",
    seen_by: seenBy,
    rtt_ms: v?.rttMicros === undefined || state !== "up" ? null : v.rttMicros / 1000,
    detail,
    traffic:
      v === undefined
        ? null
        : {
            msgs_ab: forward ? v.msgsSent : v.msgsReceived,
            msgs_ba: forward ? v.msgsReceived : v.msgsSent,
            bytes_ab: forward ? v.bytesSent : v.bytesReceived,
            bytes_ba: forward ? v.bytesReceived : v.bytesSent,
          },
  };
}

export function topologyView(ctx: RegionContext): TopologyView {
  const self = ctx.region.name;
  const topo = ctx.region.gateway.topology;
  const ads = new Map(topo.advertisements().map((ad) => [ad.origin, ad.neighbors]));
  const reachable = new Set([self, ...topo.reachableRegions()]);

  // Edges: every configured link, every link an advertisement lists, every peer this region knows.
  const edges = new Map<string, { a: string; b: string; configured: boolean }>();
  for (const [a, b] of ctx.configuredLinks()) edges.set(pairKey(a, b), { a, b, configured: true });
  const addSeen = (x: string, y: string) => {
    const k = pairKey(x, y);
    if (!edges.has(k))
      edges.set(k, x < y ? { a: x, b: y, configured: false } : { a: y, b: x, configured: false });
  };
  for (const [origin, neighbors] of ads) for (const n of neighbors) addSeen(origin, n.region);
  for (const peer of peersOf(ctx)) addSeen(self, peer);
  const configuredPeers = new Set(ctx.configuredPeers());
  for (const e of edges.values()) {
    if ((e.a === self && configuredPeers.has(e.b)) || (e.b === self && configuredPeers.has(e.a)))
      e.configured = true;
  }

  const links: TopologyLink[] = [];
  for (const { a, b, configured } of edges.values()) {
    if (a === self || b === self) {
      links.push(fromLinkView(a, b, configured, self, ctx.region.gateway.linkView(a === self ? b : a)));
      continue;
    }
    const end = ctx.sibling(a) ?? ctx.sibling(b);
    if (end !== undefined) {
      const seenBy = end.region.name;
      const v = end.region.gateway.linkView(seenBy === a ? b : a);
      links.push(fromLinkView(a, b, configured, seenBy, v));
      continue;
    }
    // Only the link-state database: routing counts an edge when both ends advertise it.
    const ab = ads.get(a)?.find((n) => n.region === b);
    const ba = ads.get(b)?.find((n) => n.region === a);
    let state: "up" | "down" | "unknown";
    let detail: string;
    if (!reachable.has(a) && !reachable.has(b)) {
      state = "unknown";
      detail = `neither ${a} nor ${b} is reachable from ${self}: their advertisements may be stale`;
    } else if (ab !== undefined && ba !== undefined) {
      state = "up";
      detail = `advertised up by both ${a} and ${b}`;
    } else {
      state = "down";
      detail =
        ab === undefined && ba === undefined
          ? `advertised by neither ${a} nor ${b}`
          : `advertised by ${ab === undefined ? b : a} only (not used for routing)`;
    }
    const rtts = [ab?.rttMicros, ba?.rttMicros].filter((x): x is number => x !== undefined);
    links.push({
      a,
      b,
      configured,
      state,
      status: statusOf(state),
      source: "advertisements",
      seen_by: null,
      rtt_ms: state === "up" && rtts.length > 0 ? rtts.reduce((x, y) => x + y, 0) / rtts.length / 1000 : null,
      detail,
      traffic: null,
    });
  }
  links.sort((x, y) => pairKey(x.a, x.b).localeCompare(pairKey(y.a, y.b)));

  const names = new Set([self, ...ctx.regionNames()]);
  for (const e of edges.values()) names.add(e.a).add(e.b);
  const regions = [...names].sort().map((name): TopologyRegion => {
    const rctx = name === self ? ctx : ctx.sibling(name);
    const cost = name === self ? { hops: 0, rttMicros: 0 } : topo.cost(name);
    return {
      name,
      self: name === self,
      reachable: reachable.has(name),
      hops: cost?.hops ?? null,
      path_rtt_ms: cost === undefined ? null : cost.rttMicros / 1000,
      observed: name === self ? "self" : rctx === undefined ? null : "in-process",
      health: rctx === undefined ? null : health(rctx),
      counters: rctx === undefined ? null : regionCounters(rctx),
    };
  });
  const now = Date.now();
  return { region: self, now: new Date(now).toISOString(), now_ms: now, regions, links };
}
