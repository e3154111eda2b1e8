import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  InvalidSubjectError,
  type MatchResult,
  Sublist,
  type SubscriptionLike,
} from "../../src/interest/index.js";

interface Sub extends SubscriptionLike {
  readonly id: number;
}

let nextId = 0;
function sub(subject: string, queue?: string): Sub {
  return { id: nextId++, subject, queue };
}

function naiveMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  if (s.some((t) => t === "")) return false;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

interface Normalized {
  plain: number[];
  queues: Record<string, number[]>;
}

const byNumber = (a: number, b: number): number => a - b;

/** Plain as a sorted multiset of ids, queues by name; also checks the result's shape. */
function normalize(r: MatchResult<Sub>): Normalized {
  expect(Object.isFrozen(r)).toBe(true);
  expect(Object.isFrozen(r.plain)).toBe(true);
  expect(Object.isFrozen(r.queues)).toBe(true);
  const queues: Record<string, number[]> = {};
  for (const s of r.plain) expect(s.queue).toBeUndefined();
  for (const group of r.queues) {
    expect(Object.isFrozen(group)).toBe(true);
    expect(group.length).toBeGreaterThan(0);
    const name = group[0]!.queue!;
    expect(name).toBeDefined();
    expect(queues[name], `queue ${name} appears as two groups`).toBeUndefined();
    for (const s of group) expect(s.queue).toBe(name);
    queues[name] = group.map((s) => s.id).sort(byNumber);
  }
  return { plain: r.plain.map((s) => s.id).sort(byNumber), queues };
}

function expected(live: readonly Sub[], subject: string): Normalized {
  const plain: number[] = [];
  const queues: Record<string, number[]> = {};
  for (const s of live) {
    if (!naiveMatches(s.subject, subject)) continue;
    if (s.queue === undefined) plain.push(s.id);
    else {
      queues[s.queue] ??= [];
      queues[s.queue]!.push(s.id);
    }
  }
  plain.sort(byNumber);
  for (const q of Object.values(queues)) q.sort(byNumber);
  return { plain, queues };
}

/** A frozen copy of what a result held when it was handed out, by identity. */
function capture(r: MatchResult<Sub>): { plain: Sub[]; queues: Sub[][] } {
  return { plain: [...r.plain], queues: r.queues.map((g) => [...g]) };
}

function sameAsCaptured(r: MatchResult<Sub>, c: { plain: Sub[]; queues: Sub[][] }): boolean {
  if (r.plain.length !== c.plain.length || r.queues.length !== c.queues.length) return false;
  if (r.plain.some((s, i) => s !== c.plain[i])) return false;
  return r.queues.every(
    (g, i) => g.length === c.queues[i]!.length && g.every((s, j) => s === c.queues[i]![j]),
  );
}

describe("Sublist basics", () => {
  it("matches literal, '*' and '>' subscriptions", () => {
    const sl = new Sublist<Sub>();
    const lit = sub("foo.bar");
    const pwc = sub("foo.*");
    const fwc = sub("foo.>");
    const all = sub(">");
    const other = sub("bar.*");
    for (const s of [lit, pwc, fwc, all, other]) sl.insert(s);
    expect(normalize(sl.match("foo.bar")).plain).toEqual([lit.id, pwc.id, fwc.id, all.id]);
    expect(normalize(sl.match("foo.bar.baz")).plain).toEqual([fwc.id, all.id]);
    expect(normalize(sl.match("foo")).plain).toEqual([all.id]);
    expect(normalize(sl.match("bar.x")).plain).toEqual([all.id, other.id]);
    // A wildcard in a published subject is an ordinary token.
    expect(normalize(sl.match("foo.*")).plain).toEqual([pwc.id, fwc.id, all.id]);
    expect(sl.count).toBe(5);
  });

  it("groups queue members by name across subscription subjects", () => {
    const sl = new Sublist<Sub>();
    const a = sub("foo.*", "q1");
    const b = sub("foo.>", "q1");
    const c = sub("foo.bar", "q2");
    const d = sub("foo.bar");
    for (const s of [a, b, c, d]) sl.insert(s);
    const r = normalize(sl.match("foo.bar"));
    expect(r).toEqual({ plain: [d.id], queues: { q1: [a.id, b.id], q2: [c.id] } });
    expect(normalize(sl.match("foo.baz"))).toEqual({ plain: [], queues: { q1: [a.id, b.id] } });
  });

  it("rejects invalid subjects without changing anything", () => {
    const sl = new Sublist<Sub>();
    sl.insert(sub("ok"));
    const before = sl.stats();
    for (const bad of ["", "foo..bar", ".foo", "foo.", "foo.>.bar", "foo bar", "a\tb"]) {
      expect(() => sl.insert(sub(bad))).toThrow(InvalidSubjectError);
    }
    expect(sl.stats()).toEqual(before);
  });

  it("ignores a second insert of the same object and removes by identity", () => {
    const sl = new Sublist<Sub>();
    const s = sub("foo");
    const twin = sub("foo");
    sl.insert(s);
    sl.insert(s);
    expect(sl.count).toBe(1);
    expect(sl.match("foo").plain).toEqual([s]);
    expect(sl.remove(twin)).toBe(false);
    sl.insert(twin);
    expect(sl.count).toBe(2);
    expect(sl.remove(s)).toBe(true);
    expect(sl.remove(s)).toBe(false);
    expect(sl.match("foo").plain).toEqual([twin]);
    expect(sl.all()).toEqual([twin]);
  });

  it("prunes every node once empty", () => {
    const sl = new Sublist<Sub>();
    const subs = ["a.b.c", "a.b", "a.*.c", "a.>", ">", "*", "a.b.c.d", "x.y"].map((s) => sub(s, undefined));
    const qs = ["a.b", "a.*"].map((s) => sub(s, "q"));
    for (const s of [...subs, ...qs]) sl.insert(s);
    expect(sl.stats().nodes).toBeGreaterThan(0);
    for (const s of [...qs, ...subs].reverse()) expect(sl.remove(s)).toBe(true);
    expect(sl.stats().nodes).toBe(0);
    expect(sl.count).toBe(0);
  });

  it("returns one shared frozen empty result, and does not cache subjects with empty tokens", () => {
    const sl = new Sublist<Sub>();
    const empty = sl.match("nothing.here");
    expect(Object.isFrozen(empty)).toBe(true);
    expect(empty.plain).toHaveLength(0);
    expect(empty.queues).toHaveLength(0);
    expect(sl.match("other")).toBe(empty);
    sl.insert(sub(">"));
    expect(sl.match("foo..bar")).toBe(empty);
    expect(sl.match(".foo")).toBe(empty);
    expect(sl.match("foo.")).toBe(empty);
    expect(sl.match("")).toBe(empty);
    expect(sl.hasInterest("foo..bar")).toBe(false);
    expect(sl.hasInterest("foo.bar")).toBe(true);
    expect(sl.stats().cacheEntries).toBe(3); // nothing.here, other, foo.bar
  });

  it("serves repeated matches from the cache, same object, and patches it on change", () => {
    const sl = new Sublist<Sub>();
    const a = sub("foo.bar");
    sl.insert(a);
    const r1 = sl.match("foo.bar");
    expect(sl.match("foo.bar")).toBe(r1);
    expect(sl.stats()).toMatchObject({ matches: 2, cacheHits: 1, cacheEntries: 1, inserts: 1 });
    const w = sub("foo.*", "q");
    sl.insert(w);
    const r2 = sl.match("foo.bar");
    expect(r2).not.toBe(r1);
    expect(r1.queues).toHaveLength(0);
    expect(normalize(r2)).toEqual({ plain: [a.id], queues: { q: [w.id] } });
    expect(sl.stats()).toMatchObject({ matches: 3, cacheHits: 2, cacheEntries: 1 });
    sl.remove(a);
    expect(normalize(sl.match("foo.bar"))).toEqual({ plain: [], queues: { q: [w.id] } });
    expect(sl.stats()).toMatchObject({ cacheHits: 3, removes: 1 });
  });

  it("keeps the cache bounded, dropping the oldest entry", () => {
    const sl = new Sublist<Sub>({ cacheSize: 3 });
    sl.insert(sub(">"));
    for (const s of ["a", "b", "c", "d"]) sl.match(s);
    expect(sl.stats().cacheEntries).toBe(3);
    sl.match("b");
    sl.match("a");
    expect(sl.stats().cacheHits).toBe(1);
    const none = new Sublist<Sub>({ cacheSize: 0 });
    none.insert(sub("a"));
    none.match("a");
    none.match("a");
    expect(none.stats()).toMatchObject({ cacheEntries: 0, cacheHits: 0, matches: 2 });
  });

  it("lets a caller unsubscribe while iterating a result", () => {
    const sl = new Sublist<Sub>();
    const plain = [1, 2, 3, 4, 5].map(() => sub("foo.>"));
    const queue = [1, 2, 3].map(() => sub("foo.bar", "q"));
    for (const s of [...plain, ...queue]) sl.insert(s);
    const r = sl.match("foo.bar");
    let seen = 0;
    for (const s of r.plain) {
      seen++;
      sl.remove(s);
      sl.insert(sub("foo.*"));
    }
    for (const group of r.queues) for (const s of group) sl.remove(s);
    expect(seen).toBe(5);
    expect(r.plain).toEqual(plain);
    expect(r.queues[0]).toEqual(queue);
    expect(normalize(sl.match("foo.bar")).plain).toHaveLength(5);
    expect(sl.match("foo.bar").queues).toHaveLength(0);
  });
});

type Op =
  | {
      readonly kind: "insert";
      readonly subject: string;
      readonly queue: string | undefined;
      readonly probe: string;
    }
  | { readonly kind: "reinsert"; readonly pick: number; readonly probe: string }
  | { readonly kind: "remove"; readonly pick: number; readonly probe: string }
  | { readonly kind: "removeAbsent"; readonly subject: string; readonly probe: string }
  | { readonly kind: "match"; readonly probe: string };

const PROBES = [
  "a",
  "b",
  "c",
  "d",
  "a.b",
  "a.c",
  "b.a",
  "c.c",
  "a.b.c",
  "a.a.a",
  "c.b.a",
  "a.b.b",
  "a.b.c.a",
  "b.c.a.b",
  "c.c.c.c",
  "a.*",
  "a.>",
  "*",
  ">",
  "a..b",
  ".a",
  "a.",
];

const patternArb = fc
  .array(fc.constantFrom("a", "b", "c", "*", ">"), { minLength: 1, maxLength: 4 })
  .map((ts) => (ts.includes(">") ? ts.slice(0, ts.indexOf(">") + 1) : ts).join("."));
const queueArb = fc.constantFrom(undefined, undefined, "q1", "q2");
const probeArb = fc.constantFrom(...PROBES);
const pickArb = fc.nat({ max: 1000 });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("insert" as const),
      subject: patternArb,
      queue: queueArb,
      probe: probeArb,
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("reinsert" as const), pick: pickArb, probe: probeArb }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: pickArb, probe: probeArb }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("removeAbsent" as const),
      subject: patternArb,
      probe: probeArb,
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant("match" as const), probe: probeArb }), weight: 4 },
);

describe("Sublist against a naive matcher (property)", () => {
  it("matches like filtering every live subscription, through inserts, removes and the cache", () => {
    let totalHits = 0;
    fc.assert(
      fc.property(fc.constantFrom(2, 8, 1024), fc.array(opArb, { maxLength: 60 }), (cacheSize, ops) => {
        const sl = new Sublist<Sub>({ cacheSize });
        const live: Sub[] = [];
        const handedOut: { r: MatchResult<Sub>; c: ReturnType<typeof capture> }[] = [];
        const check = (probe: string): void => {
          const r = sl.match(probe);
          handedOut.push({ r, c: capture(r) });
          expect(normalize(r), probe).toEqual(expected(live, probe));
          expect(sl.hasInterest(probe)).toBe(r.plain.length + r.queues.length > 0);
        };
        for (const op of ops) {
          switch (op.kind) {
            case "insert": {
              const s = sub(op.subject, op.queue);
              sl.insert(s);
              live.push(s);
              break;
            }
            case "reinsert":
              if (live.length > 0) sl.insert(live[op.pick % live.length]!);
              break;
            case "remove":
              if (live.length > 0) {
                const [s] = live.splice(op.pick % live.length, 1);
                expect(sl.remove(s!)).toBe(true);
                expect(sl.remove(s!)).toBe(false);
              }
              break;
            case "removeAbsent":
              expect(sl.remove(sub(op.subject))).toBe(false);
              break;
            case "match":
              break;
          }
          check(op.probe);
          expect(sl.count).toBe(live.length);
          expect(sl.stats().cacheEntries).toBeLessThanOrEqual(cacheSize);
        }
        for (const probe of PROBES) check(probe);
        expect(new Set(sl.all())).toEqual(new Set(live));
        for (const { r, c } of handedOut) expect(sameAsCaptured(r, c)).toBe(true);

        const stats = sl.stats();
        if (cacheSize === 1024) totalHits += stats.cacheHits;
        expect(stats.subscriptions).toBe(live.length);

        for (const s of live.splice(0)) expect(sl.remove(s)).toBe(true);
        expect(sl.count).toBe(0);
        expect(sl.stats().nodes).toBe(0);
        const empty = sl.match(PROBES[0]!);
        for (const probe of PROBES) expect(sl.match(probe)).toBe(empty);
        for (const { r, c } of handedOut) expect(sameAsCaptured(r, c)).toBe(true);
      }),
      { numRuns: 300 },
    );
    expect(totalHits).toBeGreaterThan(0);
  });
});
