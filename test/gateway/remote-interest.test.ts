/**
 * RemoteInterest, docs/link-protocol.md §4: per-origin interest tables changed only by a newer snapshot or
 * the next numbered delta; duplicates ignored, gaps reported, stale epochs ignored, newer epochs needing a
 * snapshot; forget; and the sublist always holding exactly the entries of the tables (a property test
 * against a Map model, match results included).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type DeltaAction,
  type DeltaOutcome,
  type EntryInput,
  epochNewer,
  type RemoteEntry,
  RemoteInterest,
} from "../../src/gateway/remote-interest.js";
import { subjectMatches } from "../../src/interest/subject.js";

const E = 1000;

function plain(subject: string, weight = 1): EntryInput {
  return { subject, queue: undefined, weight };
}

function q(subject: string, queue: string, weight: number): EntryInput {
  return { subject, queue, weight };
}

/** An entry as a comparable string. */
function show(e: { region?: string; subject: string; queue: string | undefined; weight: number }): string {
  return `${e.region ?? "?"}|${e.subject}|${e.queue ?? ""}|${e.weight}`;
}

function entriesOf(ri: RemoteInterest, origin: string): string[] {
  return ri
    .entriesOf(origin)
    .map((e) => show({ ...e, region: origin }))
    .sort();
}

/** The sublist holds exactly the entries of every origin's table (by identity). */
function expectConsistent(ri: RemoteInterest): void {
  const fromTables: RemoteEntry[] = [];
  for (const o of ri.originNames()) {
    const st = ri.origin(o)!;
    for (const e of st.entries.values()) {
      expect(e.region).toBe(o);
      fromTables.push(e);
    }
  }
  const inSublist = ri.sublist.all();
  expect(inSublist.length).toBe(fromTables.length);
  const set = new Set<RemoteEntry>(inSublist);
  for (const e of fromTables) expect(set.has(e)).toBe(true);
}

function matchView(ri: RemoteInterest, subject: string): { plain: string[]; queues: string[][] } {
  const m = ri.sublist.match(subject);
  return {
    plain: m.plain.map((e) => show(e)).sort(),
    queues: m.queues
      .map((g) => g.map((e) => show(e)).sort())
      .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)),
  };
}

describe("RemoteInterest: snapshots", () => {
  it("a snapshot replaces the origin's whole table", () => {
    const ri = new RemoteInterest();
    expect(ri.applySnapshot("b", E, 1, [plain("foo"), plain("bar.*"), q("work", "w", 3)])).toBe(true);
    expect(ri.sublist.hasInterest("foo")).toBe(true);
    expect(ri.sublist.hasInterest("bar.x")).toBe(true);
    expect(ri.applySnapshot("b", E, 2, [plain("baz")])).toBe(true);
    expect(ri.sublist.hasInterest("foo")).toBe(false);
    expect(ri.sublist.hasInterest("bar.x")).toBe(false);
    expect(ri.sublist.hasInterest("work")).toBe(false);
    expect(ri.sublist.hasInterest("baz")).toBe(true);
    expect(entriesOf(ri, "b")).toEqual(["b|baz||1"]);
    expect(ri.origin("b")).toMatchObject({ epoch: E, seq: 2 });
    expectConsistent(ri);
  });

  it("an older or equal (epoch, seq) is not applied; a newer epoch is, whatever its seq", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 5, [plain("five")]);
    expect(ri.applySnapshot("b", E, 4, [plain("four")])).toBe(false);
    expect(ri.applySnapshot("b", E, 5, [plain("five-again")])).toBe(false);
    expect(ri.applySnapshot("b", E - 1, 99, [plain("old-epoch")])).toBe(false);
    expect(entriesOf(ri, "b")).toEqual(["b|five||1"]);
    expect(ri.applySnapshot("b", E + 1, 0, [plain("restarted")])).toBe(true);
    expect(ri.origin("b")).toMatchObject({ epoch: E + 1, seq: 0 });
    expect(entriesOf(ri, "b")).toEqual(["b|restarted||1"]);
    expectConsistent(ri);
  });

  it("epochs wrap: 0 after 0xffffffff is newer", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", 0xffff_ffff, 10, [plain("before")]);
    expect(ri.applySnapshot("b", 0, 1, [plain("after")])).toBe(true);
    expect(ri.applySnapshot("b", 0xffff_ffff, 11, [plain("stale")])).toBe(false);
    expect(entriesOf(ri, "b")).toEqual(["b|after||1"]);
  });

  it("entries of weight 0 are dropped; a repeated (subject, queue) keeps the last one", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 1, [plain("zero", 0), q("work", "w", 2), q("work", "w", 5), q("work", "v", 1)]);
    expect(entriesOf(ri, "b")).toEqual(["b|work|v|1", "b|work|w|5"]);
    expect(ri.sublist.hasInterest("zero")).toBe(false);
    expectConsistent(ri);
  });

  it("each origin's table is separate; match results name the region", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 1, [plain("orders.*"), q("jobs", "w", 2)]);
    ri.applySnapshot("c", 7, 3, [plain("orders.>"), q("jobs", "w", 1), q("jobs", "other", 4)]);
    expect(matchView(ri, "orders.eu")).toEqual({ plain: ["b|orders.*||1", "c|orders.>||1"], queues: [] });
    expect(matchView(ri, "jobs")).toEqual({
      plain: [],
      queues: [["b|jobs|w|2", "c|jobs|w|1"], ["c|jobs|other|4"]],
    });
    ri.applySnapshot("b", E, 2, []);
    expect(matchView(ri, "orders.eu").plain).toEqual(["c|orders.>||1"]);
    expect(ri.originNames().sort()).toEqual(["b", "c"]);
    expectConsistent(ri);
  });

  it("match results handed out earlier are not changed by later snapshots", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 1, [plain("foo")]);
    const m = ri.sublist.match("foo");
    const before = m.plain.map((e) => show(e));
    ri.applySnapshot("b", E, 2, [plain("bar")]);
    expect(m.plain.map((e) => show(e))).toEqual(before);
    expect(ri.sublist.match("foo").plain).toEqual([]);
  });
});

describe("RemoteInterest: deltas", () => {
  it("seq == applied+1 is applied; add, update, remove and skip do what they say", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 10, [plain("foo")]);
    expect(ri.applyDelta("b", E, 11, "add", plain("bar"))).toBe("applied");
    expect(ri.applyDelta("b", E, 12, "add", q("work", "w", 1))).toBe("applied");
    expect(ri.applyDelta("b", E, 13, "update", q("work", "w", 4))).toBe("applied");
    expect(entriesOf(ri, "b")).toEqual(["b|bar||1", "b|foo||1", "b|work|w|4"]);
    expect(ri.applyDelta("b", E, 14, "remove", plain("foo", 0))).toBe("applied");
    const gen = ri.generation;
    expect(ri.applyDelta("b", E, 15, "skip", plain("", 0))).toBe("applied");
    expect(ri.generation).toBe(gen); // nothing changed
    expect(ri.origin("b")).toMatchObject({ epoch: E, seq: 15 });
    expect(ri.applyDelta("b", E, 16, "remove", q("work", "w", 0))).toBe("applied");
    expect(entriesOf(ri, "b")).toEqual(["b|bar||1"]);
    expect(ri.sublist.hasInterest("work")).toBe(false);
    expectConsistent(ri);
  });

  it("seq <= applied is a duplicate and changes nothing", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 10, [plain("foo")]);
    const gen = ri.generation;
    expect(ri.applyDelta("b", E, 10, "remove", plain("foo", 0))).toBe("duplicate");
    expect(ri.applyDelta("b", E, 3, "add", plain("bar"))).toBe("duplicate");
    expect(ri.generation).toBe(gen);
    expect(entriesOf(ri, "b")).toEqual(["b|foo||1"]);
    expect(ri.origin("b")!.seq).toBe(10);
  });

  it("a gap (seq > applied+1) is reported and changes nothing; the snapshot that follows fixes it", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 10, [plain("foo")]);
    expect(ri.applyDelta("b", E, 12, "add", plain("bar"))).toBe("gap");
    expect(ri.origin("b")!.seq).toBe(10);
    expect(ri.sublist.hasInterest("bar")).toBe(false);
    expect(ri.applySnapshot("b", E, 12, [plain("foo"), plain("bar"), plain("baz")])).toBe(true);
    expect(ri.applyDelta("b", E, 13, "remove", plain("foo", 0))).toBe("applied");
    expect(entriesOf(ri, "b")).toEqual(["b|bar||1", "b|baz||1"]);
    expectConsistent(ri);
  });

  it("a delta from an origin never seen is a gap", () => {
    const ri = new RemoteInterest();
    expect(ri.applyDelta("x", E, 1, "add", plain("foo"))).toBe("gap");
    expect(ri.origin("x")).toBeUndefined();
    expect(ri.sublist.count).toBe(0);
  });

  it("a delta of an older epoch is stale (ignored as a duplicate), a newer epoch needs a snapshot (gap)", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 10, [plain("foo")]);
    expect(ri.applyDelta("b", E - 1, 11, "add", plain("old"))).toBe("duplicate");
    expect(ri.applyDelta("b", E + 1, 1, "add", plain("new"))).toBe("gap");
    expect(ri.applyDelta("b", E + 1, 11, "add", plain("new"))).toBe("gap");
    expect(ri.origin("b")).toMatchObject({ epoch: E, seq: 10 });
    expect(entriesOf(ri, "b")).toEqual(["b|foo||1"]);
    ri.applySnapshot("b", E + 1, 0, []);
    expect(ri.applyDelta("b", E + 1, 1, "add", plain("new"))).toBe("applied");
    expect(ri.applyDelta("b", E, 11, "add", plain("old"))).toBe("duplicate");
    expect(entriesOf(ri, "b")).toEqual(["b|new||1"]);
  });

  it("epoch comparison of deltas wraps too", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", 0, 5, []);
    expect(ri.applyDelta("b", 0xffff_ffff, 6, "add", plain("pre-wrap"))).toBe("duplicate");
    expect(ri.applyDelta("b", 1, 6, "add", plain("post"))).toBe("gap");
  });

  it("update of an entry not there adds it; a delta of weight 0 that is not a remove leaves no entry", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 0, []);
    expect(ri.applyDelta("b", E, 1, "update", q("work", "w", 2))).toBe("applied");
    expect(entriesOf(ri, "b")).toEqual(["b|work|w|2"]);
    expect(ri.applyDelta("b", E, 2, "update", q("work", "w", 0))).toBe("applied");
    expect(entriesOf(ri, "b")).toEqual([]);
    expect(ri.applyDelta("b", E, 3, "remove", plain("never-there", 0))).toBe("applied");
    expectConsistent(ri);
  });

  it("the plain entry and a queue entry of one subject are separate", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 0, [plain("s"), q("s", "g", 2)]);
    ri.applyDelta("b", E, 1, "remove", plain("s", 0));
    expect(matchView(ri, "s")).toEqual({ plain: [], queues: [["b|s|g|2"]] });
  });
});

describe("RemoteInterest: forget", () => {
  it("drops everything of one origin and nothing of the others", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 3, [plain("foo"), q("work", "w", 1)]);
    ri.applySnapshot("c", E, 1, [plain("foo")]);
    const gen = ri.generation;
    expect(ri.forget("b")).toBe(true);
    expect(ri.generation).not.toBe(gen);
    expect(ri.origin("b")).toBeUndefined();
    expect(ri.originNames()).toEqual(["c"]);
    expect(matchView(ri, "foo").plain).toEqual(["c|foo||1"]);
    expect(ri.sublist.hasInterest("work")).toBe(false);
    expect(ri.forget("b")).toBe(false);
    expect(ri.forget("never")).toBe(false);
    expectConsistent(ri);
  });

  it("after forget a delta is a gap and any snapshot is taken, even one older than what was forgotten", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 9, [plain("foo")]);
    ri.forget("b");
    expect(ri.applyDelta("b", E, 10, "add", plain("bar"))).toBe("gap");
    expect(ri.applySnapshot("b", E, 2, [plain("back")])).toBe(true);
    expect(entriesOf(ri, "b")).toEqual(["b|back||1"]);
  });
});

describe("RemoteInterest: invalid subjects from the wire", () => {
  // Regression (fixed; was src/gateway/remote-interest.ts `applySnapshot` lines 63-84 and `applyDelta` lines 94-105): entries are
  // inserted into the sublist, which throws InvalidSubjectError for a subject SUB would reject ("a..b",
  // "", "a.>.b"). The codec does not validate subjects, so a peer can send one. applySnapshot has by then
  // removed the old entries from the sublist and inserted the earlier new ones, but not updated `origins`:
  // the sublist and the tables disagree (ghost interest nothing ever removes, forwarding to a region that
  // never asked). Fix: validate (isValidSubject) every entry before mutating anything, and drop invalid
  // entries (or reject the op as a protocol error) — never throw half-way.
  it("a snapshot with an invalid subject leaves the sublist equal to the tables", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 1, [plain("foo")]);
    try {
      ri.applySnapshot("b", E, 2, [plain("ghost"), plain("a..b")]);
    } catch {
      // throwing would be acceptable if nothing had changed
    }
    expectConsistent(ri);
    ri.forget("b");
    expect(ri.sublist.hasInterest("ghost")).toBe(false);
  });

  // Same bug in applyDelta: the sequence advances and the entry enters the table but not the sublist, so
  // entriesOf() (what snapshots relay to other regions) carries the invalid subject on.
  it("a delta with an invalid subject leaves the sublist equal to the tables", () => {
    const ri = new RemoteInterest();
    ri.applySnapshot("b", E, 1, []);
    try {
      ri.applyDelta("b", E, 2, "add", plain("a..b"));
    } catch {
      // see above
    }
    expectConsistent(ri);
  });
});

// ---- property: random operation sequences against a Map model -------------------------------------------

type Op =
  | { kind: "snapshot"; origin: string; epoch: number; seq: number; entries: EntryInput[] }
  | { kind: "delta"; origin: string; epoch: number; seq: number; action: DeltaAction; entry: EntryInput }
  | { kind: "forget"; origin: string };

interface ModelOrigin {
  epoch: number;
  seq: number;
  entries: Map<string, { subject: string; queue: string | undefined; weight: number }>;
}

const ORIGINS = ["b", "c", "d"];
const EPOCHS = [0xffff_fffe, 0xffff_ffff, 0, 1];
const SUBJECTS = ["a", "b", "a.b", "a.*", "a.>", "*", ">", "*.b", "b.c"];
const PROBES = ["a", "b", "c", "a.b", "a.c", "b.c", "b.b", "a.b.c"];
const QUEUES = [undefined, "q1", "q2"];

const entryArb: fc.Arbitrary<EntryInput> = fc.record({
  subject: fc.constantFrom(...SUBJECTS),
  queue: fc.constantFrom(...QUEUES),
  weight: fc.integer({ min: 0, max: 4 }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("snapshot" as const),
      origin: fc.constantFrom(...ORIGINS),
      epoch: fc.constantFrom(...EPOCHS),
      seq: fc.integer({ min: 0, max: 8 }),
      entries: fc.array(entryArb, { maxLength: 6 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("delta" as const),
      origin: fc.constantFrom(...ORIGINS),
      epoch: fc.constantFrom(...EPOCHS),
      seq: fc.integer({ min: 0, max: 10 }),
      action: fc.constantFrom<DeltaAction>("add", "update", "remove", "skip"),
      entry: entryArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("forget" as const), origin: fc.constantFrom(...ORIGINS) }),
  },
);

const mkey = (subject: string, queue: string | undefined) => `${subject} ${queue ?? ""}`;

/** The documented semantics, written out plainly. */
function modelApply(model: Map<string, ModelOrigin>, op: Op): boolean | DeltaOutcome {
  const cur = model.get(op.origin);
  switch (op.kind) {
    case "snapshot": {
      const newer =
        cur === undefined || epochNewer(op.epoch, cur.epoch) || (op.epoch === cur.epoch && op.seq > cur.seq);
      if (!newer) return false;
      const entries = new Map<string, { subject: string; queue: string | undefined; weight: number }>();
      for (const e of op.entries) if (e.weight > 0) entries.set(mkey(e.subject, e.queue), { ...e });
      model.set(op.origin, { epoch: op.epoch, seq: op.seq, entries });
      return true;
    }
    case "delta": {
      if (cur === undefined) return "gap";
      if (op.epoch !== cur.epoch) return epochNewer(cur.epoch, op.epoch) ? "duplicate" : "gap";
      if (op.seq <= cur.seq) return "duplicate";
      if (op.seq !== cur.seq + 1) return "gap";
      cur.seq = op.seq;
      if (op.action === "skip") return "applied";
      const k = mkey(op.entry.subject, op.entry.queue);
      cur.entries.delete(k);
      if (op.action !== "remove" && op.entry.weight > 0) cur.entries.set(k, { ...op.entry });
      return "applied";
    }
    case "forget":
      return model.delete(op.origin);
  }
}

function modelMatch(
  model: Map<string, ModelOrigin>,
  subject: string,
): { plain: string[]; queues: string[][] } {
  const plainOut: string[] = [];
  const groups = new Map<string, string[]>();
  for (const [region, o] of model) {
    for (const e of o.entries.values()) {
      if (!subjectMatches(e.subject, subject)) continue;
      const s = show({ ...e, region });
      if (e.queue === undefined) plainOut.push(s);
      else groups.set(e.queue, [...(groups.get(e.queue) ?? []), s]);
    }
  }
  return {
    plain: plainOut.sort(),
    queues: [...groups.values()]
      .map((g) => g.sort())
      .sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0)),
  };
}

describe("RemoteInterest: property against a Map model", () => {
  it("outcomes, tables and match results equal the model after every operation", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const ri = new RemoteInterest();
        const model = new Map<string, ModelOrigin>();
        for (const op of ops) {
          const want = modelApply(model, op);
          const got =
            op.kind === "snapshot"
              ? ri.applySnapshot(op.origin, op.epoch, op.seq, op.entries)
              : op.kind === "delta"
                ? ri.applyDelta(op.origin, op.epoch, op.seq, op.action, op.entry)
                : ri.forget(op.origin);
          expect(got).toBe(want);
          // Tables.
          expect(ri.originNames().sort()).toEqual([...model.keys()].sort());
          for (const [origin, o] of model) {
            const st = ri.origin(origin)!;
            expect({ epoch: st.epoch, seq: st.seq }).toEqual({ epoch: o.epoch, seq: o.seq });
            expect(entriesOf(ri, origin)).toEqual(
              [...o.entries.values()].map((e) => show({ ...e, region: origin })).sort(),
            );
          }
          expectConsistent(ri);
        }
        // Match results (through the sublist's cache, after all the patches) equal a naive match.
        for (const p of PROBES) expect(matchView(ri, p)).toEqual(modelMatch(model, p));
      }),
      { numRuns: 300 },
    );
  });

  it("match results stay right when matches are cached between operations", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const ri = new RemoteInterest();
        const model = new Map<string, ModelOrigin>();
        for (const op of ops) {
          modelApply(model, op);
          if (op.kind === "snapshot") ri.applySnapshot(op.origin, op.epoch, op.seq, op.entries);
          else if (op.kind === "delta") ri.applyDelta(op.origin, op.epoch, op.seq, op.action, op.entry);
          else ri.forget(op.origin);
          for (const p of PROBES) expect(matchView(ri, p)).toEqual(modelMatch(model, p));
        }
      }),
      { numRuns: 200 },
    );
  });
});
