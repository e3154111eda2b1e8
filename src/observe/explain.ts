/**
 * /explainz: would a message on subject S, published in region R, reach each region, and if not, why?
 * Answered from the view of the region asked (its remote interest table, its link-state database, the
 * configured filters), replaying the forwarding rules of docs/link-protocol.md §6:
 *
 * - a region with a matching plain subscription gets one copy, over the best path from R (each hop
 *   choosing its own next hop, as the forwarders do);
 * - a queue group served in R (a local member) goes nowhere else; otherwise one region serves it: the
 *   cheapest (hops, then RTT within 20 % + 1 ms), shared by member count among equals;
 * - every link on the path must let the subject through: the sender's export list, then the receiver's
 *   import list;
 * - a routed reply (`_GR_.<region>.…`) goes to that region only, without an interest check.
 *
 * Verdicts per region, the first obstacle on the way: `no path` (or `parked`, when this region holds the
 * unreachable region's interest and stores its messages for it), `filtered` (by link X->Y, export or
 * import list), `no interest`, `served elsewhere` (queue interest only, and the groups go to another
 * region), `outbox full` (a link on the path, whose sending end this process runs, has a send queue at
 * or over its outbox size), else `delivered`.
 * The limits of a single region's view are listed in `LIMITS` and returned with every answer.
 */
import { parseRoutedReply } from "../gateway/forwarder.js";
import { PatternSet, toWire } from "../interest/pattern-set.js";
import { isValidLiteralSubject, subjectMatches } from "../interest/subject.js";
import type { RegionContext } from "./context.js";

export type Verdict =
  | "delivered"
  | "no interest"
  | "filtered"
  | "no path"
  | "parked"
  | "served elsewhere"
  | "outbox full";

export interface RegionVerdict {
  readonly region: string;
  readonly verdict: Verdict;
  /** The verdict in words, e.g. `filtered by link a->b (export list)`. */
  readonly reason: string;
  /** Regions the message passes, from the publishing region to this one (when a path is known). */
  readonly path?: readonly string[];
  /** Queue groups this region would serve. */
  readonly queues?: readonly string[];
  /** For `filtered` and `outbox full`: the link (`X->Y`); for `filtered`, which list. */
  readonly link?: string;
  readonly list?: "export" | "import";
  /** For `outbox full`: the bytes queued on that link and the size it counts as full at. */
  readonly outbox?: { readonly bytes: number; readonly frames: number; readonly max_bytes: number };
}

export interface Explanation {
  readonly subject: string;
  readonly from: string;
  /** The region whose view this is. */
  readonly view: string;
  readonly regions: readonly RegionVerdict[];
  readonly limits: readonly string[];
}

export class ExplainError extends Error {
  override readonly name = "ExplainError";
}

export const LIMITS: readonly string[] = [
  "Computed from this region's view: its remote interest table and link-state database. The first obstacle wins: no path, then a filter on the path (reported even where no interest is visible, since links do not advertise interest they could not carry), then no interest. Interest held back by a filter that is not on the path from the publishing region (between the target and this region) is invisible here: ask the publishing region's monitor (from = its own name) for the view its forwarder acts on.",
  "Filters come from the config in force; without one, filters are not checked.",
  "Paths follow this region's link-state database; while it is converging (a link just changed) a real message may take another path or be dropped as unroutable.",
  "Queue groups: among regions of equal cost the choice is random, weighted by members; 'delivered' then means 'may get it, in proportion to its members'. A local member in the publishing region always wins; whether it is eligible (max messages, permissions) is not checked.",
  "Outbox full: a link on the path holds at least 90 % of its outbox.max_bytes (default 64 MiB) in its send queue and socket buffer: the link is saturated and new messages are being shed per its drop policy (see bridgehead_outbox_dropped_messages_total). Only links whose sending end runs in this process are seen.",
  "Routed replies (_GR_.<region>.…) are reported as delivered to their region when a path exists; their filter exemption (a reply to a request that passed) is not checked.",
];

interface Route {
  readonly nextHop: string;
  readonly hops: number;
  readonly rttMicros: number;
}

function cheaper(a: { hops: number; rttMicros: number }, b: { hops: number; rttMicros: number }): boolean {
  return a.hops < b.hops || (a.hops === b.hops && a.rttMicros < b.rttMicros);
}

/** The link-state graph as this region knows it, with Topology's edge rule (both ends must advertise). */
class Graph {
  private readonly adj = new Map<string, readonly { region: string; rttMicros: number }[]>();
  private readonly cache = new Map<string, Map<string, Route>>();

  constructor(private readonly ctx: RegionContext) {
    for (const ad of ctx.region.gateway.topology.advertisements()) this.adj.set(ad.origin, ad.neighbors);
  }

  private get self(): string {
    return this.ctx.region.name;
  }

  private edgeValid(from: string, to: string): boolean {
    if (from === this.self) return true;
    const back = this.adj.get(to) ?? [];
    return back.some((n) => n.region === from);
  }

  /** Shortest paths from `source`; this region's own routes come straight from its topology. */
  routes(source: string): Map<string, Route> {
    const cached = this.cache.get(source);
    if (cached !== undefined) return cached;
    const out = new Map<string, Route>();
    const topo = this.ctx.region.gateway.topology;
    if (source === this.self) {
      for (const r of topo.reachableRegions()) {
        const cost = topo.cost(r)!;
        out.set(r, { nextHop: topo.nextHop(r)!, hops: cost.hops, rttMicros: cost.rttMicros });
      }
    } else {
      const done = new Set([source]);
      const frontier = new Map<string, Route>();
      const relax = (from: string, via: string | undefined, base: { hops: number; rttMicros: number }) => {
        for (const n of this.adj.get(from) ?? []) {
          if (done.has(n.region) || !this.edgeValid(from, n.region)) continue;
          const route = {
            nextHop: via ?? n.region,
            hops: base.hops + 1,
            rttMicros: base.rttMicros + n.rttMicros,
          };
          const cur = frontier.get(n.region);
          if (cur === undefined || cheaper(route, cur)) frontier.set(n.region, route);
        }
      };
      relax(source, undefined, { hops: 0, rttMicros: 0 });
      while (frontier.size > 0) {
        let pick: [string, Route] | undefined;
        for (const e of frontier) if (pick === undefined || cheaper(e[1], pick[1])) pick = e;
        const [r, route] = pick!;
        frontier.delete(r);
        done.add(r);
        out.set(r, route);
        relax(r, route.nextHop, route);
      }
    }
    this.cache.set(source, out);
    return out;
  }

  /** The hop-by-hop path from `from` to `to`, each hop choosing its own next hop; undefined if none. */
  path(from: string, to: string): string[] | undefined {
    const path = [from];
    let at = from;
    while (at !== to) {
      const next = this.routes(at).get(to)?.nextHop;
      if (next === undefined || path.includes(next)) return undefined;
      path.push(next);
      at = next;
    }
    return path;
  }
}

interface RegionInterest {
  plain: boolean;
  /** queue group -> members */
  queues: Map<string, number>;
}

/** Who wants `subject`, per region, in this region's view. */
function interestBySubject(ctx: RegionContext, subject: string): Map<string, RegionInterest> {
  const out = new Map<string, RegionInterest>();
  const get = (r: string) => {
    let x = out.get(r);
    if (x === undefined) {
      x = { plain: false, queues: new Map() };
      out.set(r, x);
    }
    return x;
  };
  const { name, broker, gateway } = ctx.region;
  if (broker !== undefined) {
    const local = broker.sublist.match(subject);
    if (local.plain.length > 0) get(name).plain = true;
    for (const group of local.queues) {
      const live = group.filter((s) => !s.closed).length;
      if (live > 0) get(name).queues.set(group[0]!.queue!, live);
    }
  } else {
    // A nats-server cluster: the interest it reported over the leafnode connection.
    for (const e of gateway.port.interestSnapshot()) {
      if (!subjectMatches(e.subject, subject)) continue;
      if (e.queue === undefined) get(name).plain = true;
      else get(name).queues.set(e.queue, (get(name).queues.get(e.queue) ?? 0) + e.weight);
    }
  }
  const remote = gateway.remote.sublist.match(subject);
  for (const e of remote.plain) get(e.region).plain = true;
  for (const group of remote.queues) {
    for (const e of group) {
      const q = get(e.region).queues;
      q.set(e.queue!, (q.get(e.queue!) ?? 0) + e.weight);
    }
  }
  return out;
}

function filterCheck(
  ctx: RegionContext,
  path: readonly string[],
  subject: string,
): { link: string; list: "export" | "import" } | undefined {
  for (let i = 0; i + 1 < path.length; i++) {
    const x = path[i]!;
    const y = path[i + 1]!;
    const lists = ctx.linkFilters(x, y);
    if (lists === undefined) continue;
    if (lists.export !== undefined && !new PatternSet(lists.export.map(toWire)).matches(subject))
      return { link: `${x}->${y}`, list: "export" };
    if (lists.import !== undefined && !new PatternSet(lists.import.map(toWire)).matches(subject))
      return { link: `${x}->${y}`, list: "import" };
  }
  return undefined;
}

/**
 * No path from `source` to `region`. When the publishing region is this one and holds `region`'s
 * interest (it became unreachable less than its outbox's max age ago), the message is parked, not lost.
 */
function noPath(ctx: RegionContext, source: string, region: string): RegionVerdict {
  const store = ctx.region.gateway.store;
  if (source === ctx.region.name && store.isHeld(region)) {
    const o = store.views().find((v) => v.destination === region);
    return {
      region,
      verdict: "parked",
      reason: `no path from ${source} to ${region} now: parked in its outbox (${o?.messages ?? 0} waiting) until it is reachable again, for at most ${store.limitsFor(region).maxAgeMs / 1000} s`,
    };
  }
  return { region, verdict: "no path", reason: `no path from ${source} to ${region}` };
}

/** Share of a link outbox's byte bound from which it counts as full. */
const FULL_AT = 0.9;

/** The first link on `path` whose sending end runs here and whose outbox is (nearly) at its bound. */
function outboxCheck(
  ctx: RegionContext,
  path: readonly string[],
): { link: string; outbox: { bytes: number; frames: number; max_bytes: number } } | undefined {
  for (let i = 0; i + 1 < path.length; i++) {
    const x = path[i]!;
    const y = path[i + 1]!;
    const sender = x === ctx.region.name ? ctx : ctx.sibling(x);
    const v = sender?.region.gateway.linkView(y);
    if (v === undefined) continue;
    const max = ctx.outboxMaxBytes(x, y);
    const bytes = v.queued.bytes + v.bufferedBytes;
    // At 90 % of its bound the send queue sheds at the next burst: report it as full from there.
    if (bytes >= max * FULL_AT)
      return {
        link: `${x}->${y}`,
        outbox: { bytes, frames: v.queued.frames + v.pendingFrames, max_bytes: max },
      };
  }
  return undefined;
}

/** A `delivered` verdict, unless a link on its path has a full outbox. */
function deliveredOrFull(ctx: RegionContext, v: RegionVerdict & { path: readonly string[] }): RegionVerdict {
  const full = outboxCheck(ctx, v.path);
  if (full === undefined) return v;
  return {
    ...v,
    verdict: "outbox full",
    reason: `outbox full on link ${full.link}: ${full.outbox.bytes} bytes queued (full at ${full.outbox.max_bytes})`,
    ...full,
  };
}

/**
 * `subjectText`: the subject as a client publishes it (UTF-8); `from`: the publishing region (default:
 * this one). Throws ExplainError for an invalid subject or an unknown region.
 */
export function explain(ctx: RegionContext, subjectText: string, from?: string): Explanation {
  const view = ctx.region.name;
  const source = from ?? view;
  const subject = toWire(subjectText);
  if (!isValidLiteralSubject(subject))
    throw new ExplainError(`not a subject a message can be published on: ${JSON.stringify(subjectText)}`);
  const regions = [...new Set([...ctx.regionNames(), view])];
  if (!regions.includes(source)) {
    throw new ExplainError(`unknown region ${JSON.stringify(source)} (regions: ${regions.join(", ")})`);
  }
  const graph = new Graph(ctx);
  const fromSource = graph.routes(source);
  const result: RegionVerdict[] = [];

  const routed = parseRoutedReply(subject);
  if (routed !== undefined) {
    for (const region of regions) {
      if (region !== routed.region) {
        result.push({ region, verdict: "no interest", reason: `routed reply addressed to ${routed.region}` });
        continue;
      }
      const path = region === source ? [source] : graph.path(source, region);
      result.push(
        path === undefined
          ? noPath(ctx, source, region)
          : deliveredOrFull(ctx, { region, verdict: "delivered", reason: "routed reply", path }),
      );
    }
    return { subject: subjectText, from: source, view, regions: result, limits: LIMITS };
  }

  const interest = interestBySubject(ctx, subject);
  const servedAtSource = new Set(interest.get(source)?.queues.keys() ?? []);
  /** Queue group -> the regions of equal best cost that would serve it (with their member counts). */
  const queueWinners = new Map<string, Map<string, number>>();
  const groups = new Set([...interest.values()].flatMap((x) => [...x.queues.keys()]));
  for (const q of groups) {
    if (servedAtSource.has(q)) continue;
    let best: Route | undefined;
    const candidates: [string, Route, number][] = [];
    for (const [region, x] of interest) {
      const members = x.queues.get(q);
      const route = fromSource.get(region);
      if (members === undefined || region === source || route === undefined) continue;
      candidates.push([region, route, members]);
      if (best === undefined || cheaper(route, best)) best = route;
    }
    if (best === undefined) continue;
    const limit = best.rttMicros * 1.2 + 1000;
    queueWinners.set(
      q,
      new Map(
        candidates.filter(([, r]) => r.hops === best.hops && r.rttMicros <= limit).map(([g, , m]) => [g, m]),
      ),
    );
  }

  for (const region of regions) {
    const x = interest.get(region);
    const wants = x !== undefined && (x.plain || x.queues.size > 0);
    if (region === source) {
      result.push(
        wants
          ? {
              region,
              verdict: "delivered",
              reason: "local subscribers",
              path: [source],
              queues: [...servedAtSource],
            }
          : { region, verdict: "no interest", reason: "no local subscriber" },
      );
      continue;
    }
    // The first obstacle on the way wins: no path, then a filter, then (no) interest. A filter is reported
    // even where no interest is visible, since interest a filter holds back is not advertised past it.
    const path = fromSource.has(region) ? graph.path(source, region) : undefined;
    if (path === undefined) {
      result.push(noPath(ctx, source, region));
      continue;
    }
    const filtered = filterCheck(ctx, path, subject);
    if (filtered !== undefined) {
      result.push({
        region,
        verdict: "filtered",
        reason: `filtered by link ${filtered.link} (${filtered.list} list)`,
        path,
        ...filtered,
      });
      continue;
    }
    if (x === undefined || !wants) {
      result.push({ region, verdict: "no interest", reason: "no interest", path });
      continue;
    }
    const serves = [...x.queues.keys()].filter((q) => queueWinners.get(q)?.has(region));
    if (!x.plain && serves.length === 0) {
      const by = [...x.queues.keys()].map((q) =>
        servedAtSource.has(q)
          ? `${q} in ${source} (local member)`
          : `${q} by ${[...(queueWinners.get(q)?.keys() ?? [])].join(" or ")}`,
      );
      result.push({ region, verdict: "served elsewhere", reason: `queue group ${by.join(", ")}`, path });
      continue;
    }
    const shared = serves.filter((q) => (queueWinners.get(q)?.size ?? 0) > 1);
    result.push(
      deliveredOrFull(ctx, {
        region,
        verdict: "delivered",
        reason:
          (x.plain ? "subscribers" : "queue group member") +
          (shared.length > 0 ? ` (queue ${shared.join(", ")} shared with regions of equal cost)` : ""),
        path,
        queues: serves,
      }),
    );
  }
  return { subject: subjectText, from: source, view, regions: result, limits: LIMITS };
}
