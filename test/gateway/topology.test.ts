/**
 * Topology (link-state database and shortest paths), docs/link-protocol.md §5: paths by hops then RTT,
 * the next hop, the both-ends rule for edges, advertisements in any order, (epoch, seq) freshness with
 * serial arithmetic over the u32 epoch, and `takeUnreachable()`. Properties over random graphs check the
 * routes against a breadth-first model.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { epochNewer } from "../../src/gateway/remote-interest.js";
import { type Advertisement, cheaper, type Neighbor, Topology } from "../../src/gateway/topology.js";

const E = 7;

function ad(origin: string, seq: number, neighbors: Record<string, number>, epoch = E): Advertisement {
  return {
    origin,
    epoch,
    seq,
    neighbors: Object.entries(neighbors).map(([region, rttMicros]) => ({ region, rttMicros })),
  };
}

function links(neighbors: Record<string, number>): Neighbor[] {
  return Object.entries(neighbors).map(([region, rttMicros]) => ({ region, rttMicros }));
}

/**
 * A topology for `self` from an undirected graph `u-v` → rtt (both ends advertise the edge with that RTT):
 * self's own links become local links, everybody else's an advertisement.
 */
function fromGraph(self: string, edges: readonly (readonly [string, string, number])[]): Topology {
  const adj = new Map<string, Record<string, number>>();
  for (const [u, v, rtt] of edges) {
    adj.set(u, { ...(adj.get(u) ?? {}), [v]: rtt });
    adj.set(v, { ...(adj.get(v) ?? {}), [u]: rtt });
  }
  const t = new Topology(self, E);
  t.setLocalLinks(links(adj.get(self) ?? {}));
  for (const [origin, n] of adj) if (origin !== self) t.apply(ad(origin, 1, n));
  return t;
}

describe("Topology: shortest paths", () => {
  it("a fresh topology reaches nothing and has seq 0 with no links", () => {
    const t = new Topology("a", E);
    expect(t.reachableRegions()).toEqual([]);
    expect(t.reachable("a")).toBe(false);
    expect(t.nextHop("b")).toBeUndefined();
    expect(t.cost("b")).toBeUndefined();
    expect(t.ownAdvertisement()).toEqual({ origin: "a", epoch: E, seq: 0, neighbors: [] });
  });

  it("prefers fewer hops over lower RTT, then the lower total RTT among equal hop counts", () => {
    //   a -b- d   rtt 10 + 10  (2 hops, 20 µs)
    //   a -c- d   rtt 1000 + 1000 (2 hops, 2000 µs)
    //   a -e- f - d  rtt 1 + 1 + 1 (3 hops, 3 µs): fewer hops win even at a higher RTT
    const t = fromGraph("a", [
      ["a", "b", 10],
      ["b", "d", 10],
      ["a", "c", 1000],
      ["c", "d", 1000],
      ["a", "e", 1],
      ["e", "f", 1],
      ["f", "d", 1],
    ]);
    expect(t.nextHop("d")).toBe("b");
    expect(t.cost("d")).toEqual({ hops: 2, rttMicros: 20 });
    expect(t.nextHop("f")).toBe("e");
    expect(t.cost("f")).toEqual({ hops: 2, rttMicros: 2 });
    expect(t.cost("b")).toEqual({ hops: 1, rttMicros: 10 });
    expect(new Set(t.reachableRegions())).toEqual(new Set(["b", "c", "d", "e", "f"]));
    expect(t.reachable("a")).toBe(false); // self is not a destination
  });

  it("a direct link wins over a faster two-hop path", () => {
    const t = fromGraph("a", [
      ["a", "c", 50_000],
      ["a", "b", 1],
      ["b", "c", 1],
    ]);
    expect(t.nextHop("c")).toBe("c");
    expect(t.cost("c")).toEqual({ hops: 1, rttMicros: 50_000 });
  });

  it("the next hop of a far region is the first region of the path, not the last", () => {
    const t = fromGraph("a", [
      ["a", "b", 5],
      ["b", "c", 5],
      ["c", "d", 5],
      ["d", "e", 5],
    ]);
    for (const r of ["b", "c", "d", "e"]) expect(t.nextHop(r)).toBe("b");
    expect(t.cost("e")).toEqual({ hops: 4, rttMicros: 20 });
  });

  it("costs use the RTT each region advertises for its own side of the edge", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 100 }));
    t.apply(ad("b", 1, { a: 999, c: 7 }));
    t.apply(ad("c", 1, { b: 12345 }));
    // a→b: a's own measurement (100); b→c: b's (7).
    expect(t.cost("c")).toEqual({ hops: 2, rttMicros: 107 });
  });

  it("cheaper() orders by hops, then RTT, and is strict", () => {
    expect(cheaper({ hops: 1, rttMicros: 9999 }, { hops: 2, rttMicros: 1 })).toBe(true);
    expect(cheaper({ hops: 2, rttMicros: 1 }, { hops: 2, rttMicros: 2 })).toBe(true);
    expect(cheaper({ hops: 2, rttMicros: 2 }, { hops: 2, rttMicros: 2 })).toBe(false);
    expect(cheaper({ hops: 3, rttMicros: 0 }, { hops: 2, rttMicros: 100 })).toBe(false);
  });
});

describe("Topology: which edges count", () => {
  it("an edge between two other regions counts only when both ends advertise it", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    t.apply(ad("b", 1, { a: 10, c: 10 }));
    t.apply(ad("c", 1, { d: 10 })); // c does not list b: half an edge
    t.apply(ad("d", 1, { c: 10 }));
    expect(t.reachable("b")).toBe(true);
    expect(t.reachable("c")).toBe(false);
    expect(t.reachable("d")).toBe(false);
    // c now lists b too: c, and d behind it, become reachable through b.
    t.apply(ad("c", 2, { b: 10, d: 10 }));
    expect(t.nextHop("c")).toBe("b");
    expect(t.nextHop("d")).toBe("b");
    expect(t.cost("d")).toEqual({ hops: 3, rttMicros: 30 });
  });

  it("a one-sided edge is not used even when it would make a shorter path", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10, c: 10 }));
    t.apply(ad("b", 1, { a: 10, d: 10 })); // b claims d, d does not list b
    t.apply(ad("c", 1, { a: 10, e: 10 }));
    t.apply(ad("e", 1, { c: 10, d: 10 }));
    t.apply(ad("d", 1, { e: 10 }));
    expect(t.nextHop("d")).toBe("c");
    expect(t.cost("d")).toEqual({ hops: 3, rttMicros: 30 });
  });

  it("this region's own links count as soon as they are up, before the peer advertises them", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    expect(t.nextHop("b")).toBe("b");
    // b's advertisement does not (yet) list a: still reachable, and what b advertises is usable.
    t.apply(ad("b", 1, { c: 10 }));
    t.apply(ad("c", 1, { b: 10 }));
    expect(t.reachable("b")).toBe(true);
    expect(t.nextHop("c")).toBe("b");
  });

  it("a region that advertises a link to this region is not reachable unless this region has that link up", () => {
    const t = new Topology("a", E);
    t.apply(ad("b", 1, { a: 10, c: 10 }));
    t.apply(ad("c", 1, { b: 10 }));
    expect(t.reachableRegions()).toEqual([]);
    t.setLocalLinks(links({ b: 10 }));
    expect(new Set(t.reachableRegions())).toEqual(new Set(["b", "c"]));
  });

  it("an advertisement claiming to come from this region is ignored", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    expect(t.apply(ad("a", 99, { z: 1 }, E + 1))).toBe(false);
    expect(t.ownAdvertisement().neighbors).toEqual(links({ b: 10 }));
    expect(t.advertisements().filter((x) => x.origin === "a")).toHaveLength(1);
  });
});

describe("Topology: advertisements in any order", () => {
  it("an advertisement that arrives before the one making its origin reachable is kept and used", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    // d's and c's advertisements arrive first; nothing connects them to a yet.
    expect(t.apply(ad("d", 1, { c: 10 }))).toBe(true);
    expect(t.apply(ad("c", 1, { b: 10, d: 10 }))).toBe(true);
    expect(t.reachable("c")).toBe(false);
    expect(t.reachable("d")).toBe(false);
    // b's arrives last and makes all of them reachable.
    t.apply(ad("b", 1, { a: 10, c: 10 }));
    expect(t.nextHop("d")).toBe("b");
    expect(t.cost("d")).toEqual({ hops: 3, rttMicros: 30 });
    // Advertisements of unreachable origins are part of what a fresh link is told.
    const t2 = new Topology("x", E);
    t2.apply(ad("y", 4, { z: 1 }));
    expect(t2.advertisements().map((a) => a.origin)).toEqual(["x", "y"]);
  });

  it("the own links may come up last too", () => {
    const t = new Topology("a", E);
    t.apply(ad("c", 1, { b: 10 }));
    t.apply(ad("b", 1, { a: 10, c: 10 }));
    expect(t.reachableRegions()).toEqual([]);
    t.setLocalLinks(links({ b: 10 }));
    expect(t.nextHop("c")).toBe("b");
  });

  it("every order of the same advertisements gives the same routes", () => {
    const ads = [
      ad("b", 1, { a: 10, c: 20, d: 5 }),
      ad("c", 1, { b: 20, e: 1 }),
      ad("d", 1, { b: 5, e: 30 }),
      ad("e", 1, { c: 1, d: 30 }),
    ];
    fc.assert(
      fc.property(fc.shuffledSubarray(ads, { minLength: ads.length }), (order) => {
        const t = new Topology("a", E);
        t.setLocalLinks(links({ b: 10 }));
        for (const x of order) t.apply(x);
        expect(t.nextHop("e")).toBe("b");
        expect(t.cost("e")).toEqual({ hops: 3, rttMicros: 31 });
        expect(t.cost("d")).toEqual({ hops: 2, rttMicros: 15 });
      }),
    );
  });
});

describe("Topology: newer and older advertisements", () => {
  it("(epoch, seq): a higher seq in the same epoch replaces, an equal or lower one does not", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    expect(t.apply(ad("b", 5, { a: 10, c: 10 }))).toBe(true);
    t.apply(ad("c", 1, { b: 10 }));
    expect(t.reachable("c")).toBe(true);
    // Older and duplicate: ignored (c stays reachable).
    expect(t.apply(ad("b", 4, { a: 10 }))).toBe(false);
    expect(t.apply(ad("b", 5, { a: 10 }))).toBe(false);
    expect(t.reachable("c")).toBe(true);
    // Newer: applied.
    expect(t.apply(ad("b", 6, { a: 10 }))).toBe(true);
    expect(t.reachable("c")).toBe(false);
  });

  it("a newer epoch replaces whatever the seq; an older epoch never does", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    t.apply(ad("b", 100, { a: 10 }, 50));
    expect(t.apply(ad("b", 0, { a: 10, c: 10 }, 51))).toBe(true);
    t.apply(ad("c", 1, { b: 10 }));
    expect(t.reachable("c")).toBe(true);
    expect(t.apply(ad("b", 1000, { a: 10 }, 50))).toBe(false);
    expect(t.reachable("c")).toBe(true);
  });

  it("epochs compare with serial arithmetic: the u32 wrap is newer, not older", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    t.apply(ad("b", 9, { a: 10 }, 0xffff_fffe));
    // 0xffffffff then 0 (wrapped) are each newer than the one before.
    expect(t.apply(ad("b", 1, { a: 10, c: 10 }, 0xffff_ffff))).toBe(true);
    expect(t.apply(ad("b", 1, { a: 10, d: 10 }, 0))).toBe(true);
    t.apply(ad("d", 1, { b: 10 }));
    expect(t.reachable("d")).toBe(true);
    // The pre-wrap epoch is older now.
    expect(t.apply(ad("b", 50, { a: 10 }, 0xffff_ffff))).toBe(false);
    expect(t.apply(ad("b", 50, { a: 10 }, 0xffff_fff0))).toBe(false);
    expect(t.reachable("d")).toBe(true);
    expect(t.apply(ad("b", 0, { a: 10 }, 3))).toBe(true);
    expect(t.reachable("d")).toBe(false);
  });

  it("epochNewer is RFC 1982 serial arithmetic over u32", () => {
    expect(epochNewer(1, 0)).toBe(true);
    expect(epochNewer(0, 1)).toBe(false);
    expect(epochNewer(5, 5)).toBe(false);
    expect(epochNewer(0, 0xffff_ffff)).toBe(true);
    expect(epochNewer(0xffff_ffff, 0)).toBe(false);
    expect(epochNewer(0x7fff_ffff, 0)).toBe(true);
    // Exactly half the circle apart: neither is newer.
    expect(epochNewer(0x8000_0000, 0)).toBe(false);
    expect(epochNewer(0, 0x8000_0000)).toBe(false);
    fc.assert(
      fc.property(fc.nat({ max: 0xffff_ffff }), fc.integer({ min: 1, max: 0x7fff_ffff }), (a, d) => {
        const b = (a + d) >>> 0;
        expect(epochNewer(b, a)).toBe(true);
        expect(epochNewer(a, b)).toBe(false);
      }),
    );
  });

  it("own advertisements are numbered 1, 2, 3… in this topology's epoch", () => {
    const t = new Topology("a", 0xffff_ffff);
    expect(t.setLocalLinks(links({ b: 1 }))).toEqual({
      origin: "a",
      epoch: 0xffff_ffff,
      seq: 1,
      neighbors: links({ b: 1 }),
    });
    expect(t.setLocalLinks([]).seq).toBe(2);
    expect(t.advertisements()[0]).toEqual(t.ownAdvertisement());
  });

  it("the generation changes with every applied advertisement and own-link change, not with ignored ones", () => {
    const t = new Topology("a", E);
    const g0 = t.generation;
    t.setLocalLinks(links({ b: 1 }));
    const g1 = t.generation;
    expect(g1).not.toBe(g0);
    t.apply(ad("b", 2, { a: 1 }));
    const g2 = t.generation;
    expect(g2).not.toBe(g1);
    t.apply(ad("b", 1, { a: 1 }));
    t.apply(ad("a", 9, {}));
    expect(t.generation).toBe(g2);
  });
});

describe("Topology: takeUnreachable", () => {
  it("reports regions that were reachable and are not any more, once", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    t.apply(ad("b", 1, { a: 10, c: 10 }));
    t.apply(ad("c", 1, { b: 10, d: 10 }));
    t.apply(ad("d", 1, { c: 10 }));
    expect(t.takeUnreachable()).toEqual([]);
    // c drops d.
    t.apply(ad("c", 2, { b: 10 }));
    expect(t.takeUnreachable()).toEqual(["d"]);
    expect(t.takeUnreachable()).toEqual([]);
    // a loses its only link: b and c go.
    t.setLocalLinks([]);
    expect(new Set(t.takeUnreachable())).toEqual(new Set(["b", "c"]));
    expect(t.takeUnreachable()).toEqual([]);
  });

  it("does not report regions that were never reachable, nor ones still reachable another way", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10, c: 10 }));
    t.apply(ad("b", 1, { a: 10, d: 10 }));
    t.apply(ad("c", 1, { a: 10, d: 50 }));
    t.apply(ad("d", 1, { b: 10, c: 50 }));
    t.apply(ad("z", 1, { y: 1 })); // never connected
    expect(t.nextHop("d")).toBe("b");
    t.apply(ad("b", 2, { a: 10 })); // b drops d: d still reachable through c
    expect(t.takeUnreachable()).toEqual([]);
    expect(t.nextHop("d")).toBe("c");
    t.apply(ad("z", 2, { y: 2 }));
    expect(t.takeUnreachable()).toEqual([]);
  });

  it("a region lost and relearned on the next change does not stay lost in routes", () => {
    const t = new Topology("a", E);
    t.setLocalLinks(links({ b: 10 }));
    t.apply(ad("b", 1, { a: 10 }));
    // Routes are computed lazily: "was reachable" means in the routes last computed (the gateway asks
    // after every change).
    expect(t.reachable("b")).toBe(true);
    t.setLocalLinks([]);
    expect(t.takeUnreachable()).toEqual(["b"]);
    t.setLocalLinks(links({ b: 10 }));
    expect(t.reachable("b")).toBe(true);
    expect(t.takeUnreachable()).toEqual([]);
  });
});

// ---- properties ------------------------------------------------------------------------------------------

const NAMES = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"];

/** A random graph: node count, and per unordered pair whether each end lists the other and with what RTT. */
interface RandomGraph {
  n: number;
  /** adj[u][v] = RTT u advertises for its link to v, when it lists v. */
  adj: Map<string, Map<string, number>>;
}

function graphArb(symmetric: boolean): fc.Arbitrary<RandomGraph> {
  return fc.integer({ min: 1, max: 8 }).chain((n) => {
    const pairs: [number, number][] = [];
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
    // 0 none, 1 both ends, 2 only the lower end lists it, 3 only the higher end.
    const kind = symmetric ? fc.constantFrom(0, 1, 1) : fc.constantFrom(0, 1, 1, 2, 3);
    const rtt = fc.integer({ min: 1, max: 5000 });
    return fc
      .array(fc.tuple(kind, rtt, rtt), { minLength: pairs.length, maxLength: pairs.length })
      .map((cs) => {
        const adj = new Map<string, Map<string, number>>();
        for (let i = 0; i < n; i++) adj.set(NAMES[i]!, new Map());
        cs.forEach(([k, r1, r2], idx) => {
          const [i, j] = pairs[idx]!;
          const u = NAMES[i]!;
          const v = NAMES[j]!;
          if (k === 1 || k === 2) adj.get(u)!.set(v, r1);
          if (k === 1 || k === 3) adj.get(v)!.set(u, r2);
        });
        return { n, adj };
      });
  });
}

function topologyOf(g: RandomGraph, self: string, order?: readonly string[]): Topology {
  const t = new Topology(self, E);
  const toNeighbors = (m: Map<string, number>) =>
    [...m].map(([region, rttMicros]) => ({ region, rttMicros }));
  t.setLocalLinks(toNeighbors(g.adj.get(self)!));
  for (const origin of order ?? [...g.adj.keys()]) {
    if (origin !== self) t.apply({ origin, epoch: E, seq: 1, neighbors: toNeighbors(g.adj.get(origin)!) });
  }
  return t;
}

/** Edge u→v counts for `self`: u lists v, and (u is self, or v lists u). */
function edgeCounts(g: RandomGraph, self: string, u: string, v: string): boolean {
  if (!g.adj.get(u)!.has(v)) return false;
  return u === self || g.adj.get(v)!.has(u);
}

/** BFS distances from self over counted edges, then the least RTT among the fewest-hop paths. */
function model(g: RandomGraph, self: string): Map<string, { hops: number; rttMicros: number }> {
  const dist = new Map<string, number>([[self, 0]]);
  const layers: string[][] = [[self]];
  while (layers[layers.length - 1]!.length > 0) {
    const next: string[] = [];
    for (const u of layers[layers.length - 1]!) {
      for (const v of g.adj.get(u)!.keys()) {
        if (!dist.has(v) && edgeCounts(g, self, u, v)) {
          dist.set(v, layers.length);
          next.push(v);
        }
      }
    }
    layers.push(next);
  }
  const rtt = new Map<string, number>([[self, 0]]);
  for (let d = 1; d < layers.length; d++) {
    for (const v of layers[d]!) {
      let best = Number.POSITIVE_INFINITY;
      for (const u of layers[d - 1]!) {
        if (edgeCounts(g, self, u, v)) best = Math.min(best, rtt.get(u)! + g.adj.get(u)!.get(v)!);
      }
      rtt.set(v, best);
    }
  }
  const out = new Map<string, { hops: number; rttMicros: number }>();
  for (const [v, hops] of dist) if (v !== self) out.set(v, { hops, rttMicros: rtt.get(v)! });
  return out;
}

describe("Topology: properties over random graphs (up to 8 regions)", () => {
  it("every reachable region's next-hop chain (each region routing with its own view) reaches it in BFS-distance steps", () => {
    fc.assert(
      fc.property(graphArb(true), (g) => {
        const names = NAMES.slice(0, g.n);
        const views = new Map(names.map((r) => [r, topologyOf(g, r)]));
        for (const src of names) {
          const m = model(g, src);
          const view = views.get(src)!;
          expect(new Set(view.reachableRegions())).toEqual(new Set(m.keys()));
          for (const [dst, cost] of m) {
            expect(view.cost(dst)).toEqual(cost);
            let cur = src;
            let steps = 0;
            while (cur !== dst) {
              const hop = views.get(cur)!.nextHop(dst);
              expect(hop, `${cur} has a next hop to ${dst}`).toBeDefined();
              expect(g.adj.get(cur)!.has(hop!), `${cur}→${hop} is a link`).toBe(true);
              cur = hop!;
              steps++;
              expect(steps).toBeLessThanOrEqual(cost.hops);
            }
            expect(steps).toBe(cost.hops);
          }
          for (const r of names) if (r !== src && !m.has(r)) expect(view.nextHop(r)).toBeUndefined();
        }
      }),
      { numRuns: 200 },
    );
  });

  it("with one-sided edges and advertisements in any order: reachability and costs equal the BFS model", () => {
    fc.assert(
      fc.property(
        graphArb(false).chain((g) =>
          fc.tuple(fc.constant(g), fc.shuffledSubarray(NAMES.slice(0, g.n), { minLength: g.n })),
        ),
        ([g, order]) => {
          const t = topologyOf(g, "n0", order);
          const m = model(g, "n0");
          expect(new Set(t.reachableRegions())).toEqual(new Set(m.keys()));
          for (const [dst, cost] of m) {
            expect(t.cost(dst)).toEqual(cost);
            const hop = t.nextHop(dst)!;
            expect(edgeCounts(g, "n0", "n0", hop)).toBe(true);
            // The path through that next hop costs what the best path costs.
            if (hop === dst) expect(cost.hops).toBe(1);
            else expect(model(g, "n0").get(hop)!.hops).toBe(1);
          }
          // Stale copies of the same advertisements change nothing.
          const gen = t.generation;
          for (const origin of order)
            if (origin !== "n0") t.apply({ origin, epoch: E, seq: 1, neighbors: [] });
          expect(t.generation).toBe(gen);
        },
      ),
      { numRuns: 300 },
    );
  });
});
