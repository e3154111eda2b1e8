/**
 * Which regions exist, which are reachable, and the next hop to each: a link-state database. Every
 * region floods its own up links with their RTT (an advertisement numbered per origin); every region
 * computes shortest paths from itself, cost = (hops, then total RTT).
 *
 * An edge between two other regions counts only when both ends advertise it, so a half-dead link does
 * not attract traffic; this region's own up links count as soon as they are up. Advertisements of
 * unreachable regions are kept (advertisements arrive in any order, and one that arrives before the link
 * that makes its origin reachable must not be lost); a restarted region supersedes them by its epoch.
 */
import { epochNewer } from "./remote-interest.js";

export interface Neighbor {
  readonly region: string;
  readonly rttMicros: number;
}

export interface Advertisement {
  readonly origin: string;
  readonly epoch: number;
  readonly seq: number;
  readonly neighbors: readonly Neighbor[];
}

export interface PathCost {
  readonly hops: number;
  readonly rttMicros: number;
}

interface Route {
  nextHop: string;
  cost: PathCost;
}

/** Costs compare by hops first, then RTT. */
export function cheaper(a: PathCost, b: PathCost): boolean {
  return a.hops < b.hops || (a.hops === b.hops && a.rttMicros < b.rttMicros);
}

export class Topology {
  private readonly lsdb = new Map<string, Advertisement>();
  private own: Advertisement;
  private routes = new Map<string, Route>();
  private dirty = true;
  /** Bumped whenever reachability or routes may have changed. */
  generation = 0;

  constructor(
    readonly self: string,
    readonly epoch: number,
  ) {
    this.own = { origin: self, epoch, seq: 0, neighbors: [] };
  }

  /** Set this region's up links; returns the new own advertisement to flood. */
  setLocalLinks(neighbors: readonly Neighbor[]): Advertisement {
    this.own = { origin: this.self, epoch: this.epoch, seq: this.own.seq + 1, neighbors: [...neighbors] };
    this.changed();
    return this.own;
  }

  ownAdvertisement(): Advertisement {
    return this.own;
  }

  /** Apply another region's advertisement; true when it was newer (and should be flooded on). */
  apply(ad: Advertisement): boolean {
    if (ad.origin === this.self) return false;
    const cur = this.lsdb.get(ad.origin);
    if (
      cur !== undefined &&
      !epochNewer(ad.epoch, cur.epoch) &&
      !(ad.epoch === cur.epoch && ad.seq > cur.seq)
    ) {
      return false;
    }
    this.lsdb.set(ad.origin, ad);
    this.changed();
    return true;
  }

  /** All advertisements known, this region's own first: what a fresh link is told. */
  advertisements(): Advertisement[] {
    this.recompute();
    return [this.own, ...this.lsdb.values()];
  }

  /** The epoch (run) of `origin` as its latest advertisement says; undefined if it never advertised. */
  epochOf(origin: string): number | undefined {
    return origin === this.self ? this.epoch : this.lsdb.get(origin)?.epoch;
  }

  reachable(region: string): boolean {
    this.recompute();
    return this.routes.has(region);
  }

  reachableRegions(): string[] {
    this.recompute();
    return [...this.routes.keys()];
  }

  nextHop(region: string): string | undefined {
    this.recompute();
    return this.routes.get(region)?.nextHop;
  }

  cost(region: string): PathCost | undefined {
    this.recompute();
    return this.routes.get(region)?.cost;
  }

  /** Regions that were reachable and no longer are, since the last call: the gateway forgets their interest. */
  takeUnreachable(): string[] {
    this.recompute();
    const out = this.lost;
    this.lost = [];
    return out;
  }

  private lost: string[] = [];

  private changed(): void {
    this.dirty = true;
    this.generation++;
  }

  private adjacency(region: string): readonly Neighbor[] {
    return region === this.self ? this.own.neighbors : (this.lsdb.get(region)?.neighbors ?? []);
  }

  private edgeValid(from: string, to: string): boolean {
    if (from === this.self) return true;
    if (to === this.self) return this.own.neighbors.some((n) => n.region === from);
    return this.adjacency(to).some((n) => n.region === from);
  }

  /** Dijkstra from self over valid edges; graphs are small (tens of regions), so a linear scan is fine. */
  private recompute(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const best = new Map<string, Route>();
    const done = new Set<string>([this.self]);
    const frontier = new Map<string, Route>();
    const relax = (from: string, via: string | undefined, base: PathCost) => {
      for (const n of this.adjacency(from)) {
        if (done.has(n.region) || !this.edgeValid(from, n.region)) continue;
        const cost = { hops: base.hops + 1, rttMicros: base.rttMicros + n.rttMicros };
        const cur = frontier.get(n.region);
        if (cur === undefined || cheaper(cost, cur.cost))
          frontier.set(n.region, { nextHop: via ?? n.region, cost });
      }
    };
    relax(this.self, undefined, { hops: 0, rttMicros: 0 });
    while (frontier.size > 0) {
      let pick: string | undefined;
      let pickRoute: Route | undefined;
      for (const [r, route] of frontier) {
        if (pickRoute === undefined || cheaper(route.cost, pickRoute.cost)) {
          pick = r;
          pickRoute = route;
        }
      }
      frontier.delete(pick!);
      done.add(pick!);
      best.set(pick!, pickRoute!);
      relax(pick!, pickRoute!.nextHop, pickRoute!.cost);
    }
    for (const region of this.routes.keys()) if (!best.has(region)) this.lost.push(region);
    this.routes = best;
  }
}
