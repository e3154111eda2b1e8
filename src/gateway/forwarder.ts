/**
 * The forwarding decision, and nothing else: for one message, which regions get it, which queue groups
 * each must serve, and through which next hop. No I/O; the gateway encodes and sends what this decides.
 *
 * Rules (docs/link-protocol.md §6):
 * - every reachable region with a matching plain subscription gets one copy;
 * - each matching queue group not already served locally goes to exactly one region: the cheapest path
 *   (hops, then RTT), and among equal costs a random pick weighted by member count;
 * - destinations are grouped by next hop, so each neighbour gets one frame for its whole branch;
 * - a subject `_GR_.<region>.<reply>` is a routed reply: it goes straight to that region, no interest needed;
 * - a region that became unreachable but whose interest is *held* (store-and-forward, docs/link-protocol.md
 *   §7) still gets its copies, in a branch whose next hop is {@link HELD_HOP}: the gateway parks them in
 *   that region's outbox. Queue groups go to a held region only when no reachable region has members.
 */
import type { MatchResult } from "../interest/sublist.js";
import type { RemoteEntry, RemoteInterest } from "./remote-interest.js";
import { cheaper, type PathCost, type Topology } from "./topology.js";

export interface Destination {
  readonly region: string;
  readonly queues: readonly string[];
}

export interface Branch {
  readonly nextHop: string;
  readonly dests: readonly Destination[];
}

/** The next hop of a branch for held (unreachable) regions: park in their outboxes. Never a region name. */
export const HELD_HOP = "";

/** Which unreachable regions still get their messages (parked); `heldGeneration` changes with the set. */
export interface HeldRegions {
  isHeld(region: string): boolean;
  readonly heldGeneration: number;
}

const NO_HELD: HeldRegions = { isHeld: () => false, heldGeneration: 0 };

const NO_QUEUES: readonly string[] = Object.freeze([]);
const NO_BRANCHES: readonly Branch[] = Object.freeze([]);

/** The prefix that routes a reply back to the requester's region: `_GR_.<region>.`. */
export const REPLY_PREFIX = "_GR_.";

/** `_GR_.<region>.<rest>` → { region, subject: rest }, else undefined. */
export function parseRoutedReply(subject: string): { region: string; subject: string } | undefined {
  if (!subject.startsWith(REPLY_PREFIX)) return undefined;
  const dot = subject.indexOf(".", REPLY_PREFIX.length);
  if (dot <= REPLY_PREFIX.length || dot === subject.length - 1) return undefined;
  return { region: subject.slice(REPLY_PREFIX.length, dot), subject: subject.slice(dot + 1) };
}

export function routedReply(region: string, reply: string): string {
  return `${REPLY_PREFIX}${region}.${reply}`;
}

export class Forwarder {
  /** Decisions without queue groups are deterministic: cached per subject until interest or topology changes. */
  private readonly cache = new Map<string, readonly Branch[]>();
  private cacheRemoteGen = -1;
  private cacheTopoGen = -1;
  private cacheHeldGen = -1;

  constructor(
    readonly self: string,
    private readonly remote: RemoteInterest,
    private readonly topology: Topology,
    private readonly random: () => number = Math.random,
    /** Unreachable regions whose interest is held (store-and-forward owns the set); none by default. */
    private readonly held: HeldRegions = NO_HELD,
  ) {}

  /** Branches for a message published in this region. Empty when no other region wants it. */
  route(subject: string, servedQueues: readonly string[]): readonly Branch[] {
    const routed = parseRoutedReply(subject);
    if (routed !== undefined) return this.toRegion(routed.region);
    if (
      this.cacheRemoteGen !== this.remote.generation ||
      this.cacheTopoGen !== this.topology.generation ||
      this.cacheHeldGen !== this.held.heldGeneration
    ) {
      this.cache.clear();
      this.cacheRemoteGen = this.remote.generation;
      this.cacheTopoGen = this.topology.generation;
      this.cacheHeldGen = this.held.heldGeneration;
    }
    const cached = this.cache.get(subject);
    if (cached !== undefined) return cached;
    const m = this.remote.sublist.match(subject);
    if (m.plain.length === 0 && m.queues.length === 0) {
      this.remember(subject, NO_BRANCHES);
      return NO_BRANCHES;
    }
    const dests = new Map<string, string[]>();
    for (const e of m.plain) {
      if (e.region === this.self || dests.has(e.region)) continue;
      if (this.topology.reachable(e.region) || this.held.isHeld(e.region)) dests.set(e.region, []);
    }
    const branches = this.branchesFor(dests, m, servedQueues);
    if (m.queues.length === 0) this.remember(subject, branches);
    return branches;
  }

  /** Split a received destination set: what this region delivers, and the branches to pass on. */
  split(dests: readonly Destination[]): {
    local: Destination | undefined;
    branches: Branch[];
    unreachable: Destination[];
  } {
    let local: Destination | undefined;
    const byHop = new Map<string, Destination[]>();
    const unreachable: Destination[] = [];
    for (const d of dests) {
      if (d.region === this.self) {
        local = d;
        continue;
      }
      const hop = this.topology.nextHop(d.region);
      if (hop === undefined) {
        unreachable.push(d);
        continue;
      }
      let list = byHop.get(hop);
      if (list === undefined) {
        list = [];
        byHop.set(hop, list);
      }
      list.push(d);
    }
    const branches: Branch[] = [];
    for (const [nextHop, list] of byHop) branches.push({ nextHop, dests: list });
    return { local, branches, unreachable };
  }

  private toRegion(region: string): readonly Branch[] {
    if (region === this.self) return NO_BRANCHES;
    const hop = this.topology.nextHop(region) ?? (this.held.isHeld(region) ? HELD_HOP : undefined);
    if (hop === undefined) return NO_BRANCHES;
    return [{ nextHop: hop, dests: [{ region, queues: NO_QUEUES }] }];
  }

  private branchesFor(
    dests: Map<string, string[]>,
    m: MatchResult<RemoteEntry>,
    servedQueues: readonly string[],
  ): readonly Branch[] {
    for (const group of m.queues) {
      const name = group[0]!.queue!;
      if (servedQueues.includes(name)) continue;
      const region = this.pickQueueRegion(group);
      if (region === undefined) continue;
      let qs = dests.get(region);
      if (qs === undefined) {
        qs = [];
        dests.set(region, qs);
      }
      if (!qs.includes(name)) qs.push(name);
    }
    if (dests.size === 0) return NO_BRANCHES;
    const byHop = new Map<string, Destination[]>();
    for (const [region, queues] of dests) {
      const hop = this.topology.nextHop(region) ?? HELD_HOP;
      let list = byHop.get(hop);
      if (list === undefined) {
        list = [];
        byHop.set(hop, list);
      }
      list.push({ region, queues: queues.length === 0 ? NO_QUEUES : queues });
    }
    const out: Branch[] = [];
    for (const [nextHop, list] of byHop) out.push({ nextHop, dests: list });
    return out;
  }

  /** The one region to serve a queue group: cheapest path, weighted random among equals. */
  private pickQueueRegion(group: readonly RemoteEntry[]): string | undefined {
    // One group may appear with several subjects from one region ('foo.*' and 'foo.>'): sum per region.
    const weights = new Map<string, number>();
    for (const e of group) {
      if (e.region === this.self || !this.topology.reachable(e.region)) continue;
      weights.set(e.region, (weights.get(e.region) ?? 0) + e.weight);
    }
    // Nobody reachable has members: the group waits for a held region rather than be dropped.
    if (weights.size === 0) return this.pickHeld(group);
    // Cheapest path first; RTTs within 20 % + 1 ms of the best count as equal (RTT samples are noisy),
    // and equals share the group's traffic by member count.
    let bestCost: PathCost | undefined;
    for (const region of weights.keys()) {
      const cost = this.topology.cost(region)!;
      if (bestCost === undefined || cheaper(cost, bestCost)) bestCost = cost;
    }
    if (bestCost === undefined) return undefined;
    const limit = bestCost.rttMicros * 1.2 + 1000;
    const best: string[] = [];
    for (const region of weights.keys()) {
      const cost = this.topology.cost(region)!;
      if (cost.hops === bestCost.hops && cost.rttMicros <= limit) best.push(region);
    }
    if (best.length <= 1) return best[0];
    let total = 0;
    for (const r of best) total += weights.get(r)!;
    let x = this.random() * total;
    for (const r of best) {
      x -= weights.get(r)!;
      if (x < 0) return r;
    }
    return best[best.length - 1];
  }

  /** A held region with members of the group, weighted by member count. */
  private pickHeld(group: readonly RemoteEntry[]): string | undefined {
    const weights = new Map<string, number>();
    for (const e of group) {
      if (e.region !== this.self && this.held.isHeld(e.region))
        weights.set(e.region, (weights.get(e.region) ?? 0) + e.weight);
    }
    let total = 0;
    for (const w of weights.values()) total += w;
    let x = this.random() * total;
    let last: string | undefined;
    for (const [r, w] of weights) {
      x -= w;
      if (x < 0) return r;
      last = r;
    }
    return last;
  }

  private remember(subject: string, branches: readonly Branch[]): void {
    if (this.cache.size >= 4096) this.cache.clear();
    this.cache.set(subject, branches);
  }
}
