/**
 * Forwarder, docs/link-protocol.md §6, on a hand-built Topology and RemoteInterest (no I/O): plain interest
 * gives each region one copy, grouped by next hop; a queue group goes to exactly one region (not at all
 * when served locally): the nearest, and among equal costs a pick weighted by member count (checked with
 * an injected deterministic `random`); the RTT tolerance; routed replies; `split()` of a received set.
 */
import { describe, expect, it } from "vitest";
import {
  type Branch,
  type Destination,
  Forwarder,
  parseRoutedReply,
  REPLY_PREFIX,
  routedReply,
} from "../../src/gateway/forwarder.js";
import { type EntryInput, RemoteInterest } from "../../src/gateway/remote-interest.js";
import { Topology } from "../../src/gateway/topology.js";

const E = 3;

/** Topology for `self` from undirected edges [u, v, rttMicros] that both ends advertise. */
function topo(self: string, edges: readonly (readonly [string, string, number])[]): Topology {
  const adj = new Map<string, { region: string; rttMicros: number }[]>();
  for (const [u, v, rtt] of edges) {
    adj.set(u, [...(adj.get(u) ?? []), { region: v, rttMicros: rtt }]);
    adj.set(v, [...(adj.get(v) ?? []), { region: u, rttMicros: rtt }]);
  }
  const t = new Topology(self, E);
  t.setLocalLinks(adj.get(self) ?? []);
  for (const [origin, neighbors] of adj)
    if (origin !== self) t.apply({ origin, epoch: E, seq: 1, neighbors });
  return t;
}

const plain = (subject: string): EntryInput => ({ subject, queue: undefined, weight: 1 });
const q = (subject: string, queue: string, weight: number): EntryInput => ({ subject, queue, weight });

function interest(tables: Record<string, EntryInput[]>): RemoteInterest {
  const ri = new RemoteInterest();
  for (const [origin, entries] of Object.entries(tables)) ri.applySnapshot(origin, 1, 1, entries);
  return ri;
}

/** Branches as { nextHop: ["region:q1,q2", …] }, order-free. */
function view(branches: readonly Branch[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const b of branches) {
    expect(out[b.nextHop], `one branch per next hop (${b.nextHop})`).toBeUndefined();
    out[b.nextHop] = b.dests.map((d) => `${d.region}:${[...d.queues].sort().join(",")}`).sort();
  }
  return out;
}

/** Every destination region once across all branches. */
function regionsOf(branches: readonly Branch[]): string[] {
  return branches.flatMap((b) => b.dests.map((d) => d.region)).sort();
}

/** A deterministic PRNG in [0, 1) (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n evenly spaced draws (i + 0.5) / n: a split by weight comes out exact. */
function stratified(n: number): () => number {
  let i = 0;
  return () => ((i++ % n) + 0.5) / n;
}

describe("Forwarder: plain interest", () => {
  it("each interested region gets one copy, however many of its entries match", () => {
    const t = topo("a", [
      ["a", "b", 10],
      ["a", "c", 10],
      ["a", "d", 10],
    ]);
    const ri = interest({
      b: [plain("orders.*"), plain("orders.>"), plain("orders.eu")],
      c: [plain(">")],
      d: [plain("other")],
    });
    const f = new Forwarder("a", ri, t);
    const br = f.route("orders.eu", []);
    expect(regionsOf(br)).toEqual(["b", "c"]);
    expect(view(br)).toEqual({ b: ["b:"], c: ["c:"] });
    expect(f.route("nothing.here.at.all", [])).toEqual([
      { nextHop: "c", dests: [{ region: "c", queues: [] }] },
    ]);
  });

  it("no interest anywhere: no branch", () => {
    const f = new Forwarder("a", interest({ b: [plain("x")] }), topo("a", [["a", "b", 1]]));
    expect(f.route("y", [])).toEqual([]);
  });

  it("destinations are grouped by next hop: one branch per neighbour, carrying its whole subtree", () => {
    //        b - c - e
    //   a <
    //        d
    const t = topo("a", [
      ["a", "b", 10],
      ["b", "c", 10],
      ["c", "e", 10],
      ["a", "d", 10],
    ]);
    const ri = interest({ b: [plain("s")], c: [plain("s")], d: [plain("s")], e: [plain("s")] });
    const f = new Forwarder("a", ri, t);
    expect(view(f.route("s", []))).toEqual({ b: ["b:", "c:", "e:"], d: ["d:"] });
  });

  it("interest of unreachable regions, and this region's own name, are ignored", () => {
    const t = topo("a", [["a", "b", 10]]);
    const ri = interest({ a: [plain("s")], b: [plain("s")], z: [plain("s")] });
    const f = new Forwarder("a", ri, t);
    expect(view(f.route("s", []))).toEqual({ b: ["b:"] });
  });

  it("decisions follow interest and topology changes (the per-subject cache is invalidated)", () => {
    const t = topo("a", [
      ["a", "b", 10],
      ["b", "c", 10],
    ]);
    const ri = interest({ b: [] });
    const f = new Forwarder("a", ri, t);
    expect(f.route("s", [])).toEqual([]);
    ri.applySnapshot("c", 1, 1, [plain("s")]);
    expect(view(f.route("s", []))).toEqual({ b: ["c:"] });
    expect(f.route("s", [])).toBe(f.route("s", [])); // cached between changes
    // b stops advertising c: c is unreachable, nothing goes out.
    t.apply({ origin: "b", epoch: E, seq: 2, neighbors: [{ region: "a", rttMicros: 10 }] });
    expect(f.route("s", [])).toEqual([]);
    // c gets a link of its own to a.
    t.setLocalLinks([
      { region: "b", rttMicros: 10 },
      { region: "c", rttMicros: 10 },
    ]);
    t.apply({ origin: "c", epoch: E, seq: 2, neighbors: [{ region: "a", rttMicros: 10 }] });
    expect(view(f.route("s", []))).toEqual({ c: ["c:"] });
  });
});

describe("Forwarder: queue groups", () => {
  const mesh = () =>
    topo("a", [
      ["a", "b", 10_000],
      ["a", "c", 10_000],
      ["b", "c", 10_000],
    ]);

  it("a group served locally is not forwarded; plain interest still is", () => {
    const ri = interest({ b: [q("work", "w", 5), plain("work")], c: [q("work", "w", 5)] });
    const f = new Forwarder("a", ri, mesh());
    expect(view(f.route("work", ["w"]))).toEqual({ b: ["b:"] });
    const onlyGroup = new Forwarder("a", interest({ b: [q("work", "w", 5)] }), mesh());
    expect(onlyGroup.route("work", ["w"])).toEqual([]);
  });

  it("a group not served locally goes to exactly one region, with the plain copy when it has one", () => {
    const ri = interest({ b: [q("work", "w", 1), plain("work")], c: [plain("work")] });
    const f = new Forwarder("a", ri, mesh());
    expect(view(f.route("work", []))).toEqual({ b: ["b:w"], c: ["c:"] });
    // Another group, served locally, does not hide this one.
    expect(view(f.route("work", ["other"]))).toEqual({ b: ["b:w"], c: ["c:"] });
  });

  it("the nearest region by hops serves the group, even when a farther one has a lower RTT or more members", () => {
    // a - b - c, and b is slow; c has 100 members.
    const t = topo("a", [
      ["a", "b", 90_000],
      ["b", "c", 1],
    ]);
    const ri = interest({ b: [q("jobs", "q", 1)], c: [q("jobs", "q", 100)] });
    const f = new Forwarder("a", ri, t, () => 0.999);
    for (let i = 0; i < 20; i++) expect(view(f.route("jobs", []))).toEqual({ b: ["b:q"] });
    // Once b has no member left, c (through b) serves it.
    ri.applyDelta("b", 1, 2, "remove", q("jobs", "q", 0));
    expect(view(f.route("jobs", []))).toEqual({ b: ["c:q"] });
  });

  it("several groups matching one subject are each placed once, independently", () => {
    const t = topo("a", [
      ["a", "b", 10],
      ["a", "c", 10],
      ["c", "d", 10],
    ]);
    const ri = interest({
      b: [q("jobs.*", "g1", 1)],
      c: [q("jobs.x", "g2", 1)],
      d: [q("jobs.>", "g1", 9), q("jobs.>", "g2", 9), q("jobs.>", "g3", 1)],
    });
    const f = new Forwarder("a", ri, t);
    expect(view(f.route("jobs.x", []))).toEqual({ b: ["b:g1"], c: ["c:g2", "d:g3"] });
  });

  it("one group under several subjects of one region counts that region's members once per entry", () => {
    // b: foo.* (1) + foo.> (1) = 2 members of g; c: 2 members. Equal weights: a 50/50 split.
    const ri = interest({ b: [q("foo.*", "g", 1), q("foo.>", "g", 1)], c: [q("foo.bar", "g", 2)] });
    const f = new Forwarder("a", ri, mesh(), stratified(100));
    const counts = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const br = f.route("foo.bar", []);
      expect(br).toHaveLength(1);
      expect(br[0]!.dests).toHaveLength(1);
      const r = br[0]!.dests[0]!.region;
      expect(br[0]!.dests[0]!.queues).toEqual(["g"]);
      counts.set(r, (counts.get(r) ?? 0) + 1);
    }
    expect(counts.get("b")).toBe(50);
    expect(counts.get("c")).toBe(50);
  });

  it("among equal costs the pick is weighted by member count: weights 1 and 3 split 25/75", () => {
    const ri = interest({ b: [q("work", "w", 1)], c: [q("work", "w", 3)] });
    // Evenly spaced draws: exactly 1000 / 3000.
    const exact = new Forwarder("a", ri, mesh(), stratified(4000));
    const n = 4000;
    const tally = (f: Forwarder) => {
      const c: Record<string, number> = { b: 0, c: 0, other: 0 };
      for (let i = 0; i < n; i++) {
        const br = f.route("work", []);
        const d = br.length === 1 && br[0]!.dests.length === 1 ? br[0]!.dests[0]! : undefined;
        const ok = d !== undefined && br[0]!.nextHop === d.region && d.queues.join() === "w";
        c[ok && d.region in c ? d.region : "other"]!++;
      }
      return c;
    };
    expect(tally(exact)).toEqual({ b: 1000, c: 3000, other: 0 });
    // A seeded pseudo-random sequence: within 3 points of 25/75.
    for (const seed of [1, 42, 4242]) {
      const c = tally(new Forwarder("a", ri, mesh(), mulberry32(seed)));
      expect(c.b! / n).toBeGreaterThan(0.22);
      expect(c.b! / n).toBeLessThan(0.28);
      expect(c.other).toBe(0);
    }
  });

  it("random() at the ends of [0, 1) still picks one of the candidates", () => {
    const ri = interest({ b: [q("work", "w", 1)], c: [q("work", "w", 3)] });
    for (const x of [0, 0.999_999_999_9]) {
      const br = new Forwarder("a", ri, mesh(), () => x).route("work", []);
      expect(regionsOf(br)).toHaveLength(1);
      expect(["b", "c"]).toContain(regionsOf(br)[0]);
    }
  });

  it("RTTs within 20 % + 1 ms of the best count as equal; beyond that the nearest alone serves", () => {
    const group = interest({ b: [q("work", "w", 1)], c: [q("work", "w", 1)] });
    const pickAll = (cRtt: number) => {
      const t = topo("a", [
        ["a", "b", 10_000],
        ["a", "c", cRtt],
      ]);
      const f = new Forwarder("a", group, t, stratified(10));
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add(regionsOf(f.route("work", []))[0]!);
      return [...seen].sort();
    };
    // limit = 10 000 * 1.2 + 1000 = 13 000 µs.
    expect(pickAll(10_000)).toEqual(["b", "c"]);
    expect(pickAll(13_000)).toEqual(["b", "c"]);
    expect(pickAll(13_001)).toEqual(["b"]);
    expect(pickAll(50_000)).toEqual(["b"]);
    // The tolerance is relative to the best, whichever region that is.
    expect(pickAll(9_000)).toEqual(["b", "c"]); // 9000 * 1.2 + 1000 = 11 800 >= 10 000
    expect(pickAll(5_000)).toEqual(["c"]); // 5000 * 1.2 + 1000 = 7000 < 10 000
  });

  it("the RTT tolerance never mixes hop counts", () => {
    const t = topo("a", [
      ["a", "b", 10_000],
      ["a", "x", 1],
      ["x", "c", 1],
    ]);
    const ri = interest({ b: [q("work", "w", 1)], c: [q("work", "w", 1000)] });
    const f = new Forwarder("a", ri, t, stratified(50));
    for (let i = 0; i < 50; i++) expect(regionsOf(f.route("work", []))).toEqual(["b"]);
  });

  it("members in this region's own name or in unreachable regions are not candidates", () => {
    const ri = interest({ a: [q("work", "w", 50)], z: [q("work", "w", 50)], b: [q("work", "w", 1)] });
    const f = new Forwarder("a", ri, topo("a", [["a", "b", 1]]), () => 0.99);
    expect(view(f.route("work", []))).toEqual({ b: ["b:w"] });
    const none = new Forwarder("a", interest({ z: [q("work", "w", 1)] }), topo("a", [["a", "b", 1]]));
    expect(none.route("work", [])).toEqual([]);
  });
});

describe("Forwarder: routed replies", () => {
  it("parseRoutedReply and routedReply", () => {
    expect(REPLY_PREFIX).toBe("_GR_.");
    expect(routedReply("eu-west", "_INBOX.abc.1")).toBe("_GR_.eu-west._INBOX.abc.1");
    expect(parseRoutedReply("_GR_.eu-west._INBOX.abc.1")).toEqual({
      region: "eu-west",
      subject: "_INBOX.abc.1",
    });
    expect(parseRoutedReply("_GR_.b.x")).toEqual({ region: "b", subject: "x" });
    for (const s of ["_GR_.", "_GR_.b", "_GR_.b.", "_GR_..x", "_GR.b.x", "x._GR_.b.y", "_gr_.b.x"]) {
      expect(parseRoutedReply(s), s).toBeUndefined();
    }
  });

  it("a _GR_.<region>. subject goes straight to that region, along its path, with no interest anywhere", () => {
    const t = topo("a", [
      ["a", "b", 10],
      ["b", "c", 10],
    ]);
    const f = new Forwarder("a", new RemoteInterest(), t);
    expect(f.route("_GR_.c._INBOX.x.1", [])).toEqual([
      { nextHop: "b", dests: [{ region: "c", queues: [] }] },
    ]);
    expect(f.route("_GR_.b.r", [])).toEqual([{ nextHop: "b", dests: [{ region: "b", queues: [] }] }]);
  });

  it("a routed reply ignores interest: only the named region gets it, even if others subscribe to it", () => {
    const t = topo("a", [
      ["a", "b", 10],
      ["a", "c", 10],
    ]);
    const ri = interest({ b: [plain(">")], c: [plain("_GR_.>"), q(">", "g", 1)] });
    const f = new Forwarder("a", ri, t);
    expect(f.route("_GR_.c.reply", [])).toEqual([{ nextHop: "c", dests: [{ region: "c", queues: [] }] }]);
  });

  it("a routed reply to this region or to an unreachable one goes nowhere", () => {
    const f = new Forwarder("a", interest({ b: [plain(">")] }), topo("a", [["a", "b", 1]]));
    expect(f.route("_GR_.a.reply", [])).toEqual([]);
    expect(f.route("_GR_.zz.reply", [])).toEqual([]);
    // A malformed prefix is an ordinary subject.
    expect(view(f.route("_GR_.b", []))).toEqual({ b: ["b:"] });
  });
});

describe("Forwarder: split of a received destination set", () => {
  it("splits into the local part, branches by next hop, and what is unreachable", () => {
    //   z - b - a - c - d
    const t = topo("b", [
      ["z", "b", 10],
      ["b", "a", 10],
      ["a", "c", 10],
      ["c", "d", 10],
    ]);
    const f = new Forwarder("b", new RemoteInterest(), t);
    const dests: Destination[] = [
      { region: "b", queues: ["g1", "g2"] },
      { region: "c", queues: [] },
      { region: "d", queues: ["g3"] },
      { region: "a", queues: [] },
      { region: "nowhere", queues: ["g4"] },
      { region: "z", queues: [] },
    ];
    const { local, branches, unreachable } = f.split(dests);
    expect(local).toEqual({ region: "b", queues: ["g1", "g2"] });
    expect(view(branches)).toEqual({ a: ["a:", "c:", "d:g3"], z: ["z:"] });
    expect(unreachable).toEqual([{ region: "nowhere", queues: ["g4"] }]);
  });

  it("a set for this region only: local, nothing else; an empty set: nothing", () => {
    const f = new Forwarder("b", new RemoteInterest(), topo("b", [["a", "b", 1]]));
    expect(f.split([{ region: "b", queues: [] }])).toEqual({
      local: { region: "b", queues: [] },
      branches: [],
      unreachable: [],
    });
    expect(f.split([])).toEqual({ local: undefined, branches: [], unreachable: [] });
  });

  it("split never sends a destination back to the neighbour the set came from, in a consistent view", () => {
    // a sent {b, c} to b on the path a-b-c; b forwards c only towards c.
    const t = topo("b", [
      ["a", "b", 1],
      ["b", "c", 1],
    ]);
    const f = new Forwarder("b", new RemoteInterest(), t);
    const { local, branches } = f.split([
      { region: "b", queues: [] },
      { region: "c", queues: ["w"] },
    ]);
    expect(local?.region).toBe("b");
    expect(view(branches)).toEqual({ c: ["c:w"] });
  });
});
