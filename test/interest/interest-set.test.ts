import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type InterestChange, InterestSet } from "../../src/interest/index.js";

const key = (subject: string, queue: string | undefined): string => JSON.stringify([subject, queue ?? null]);

describe("InterestSet", () => {
  it("reports plain interest only on the first add and the last remove", () => {
    const set = new InterestSet();
    expect(set.add("foo")).toEqual({ op: "add", subject: "foo", queue: undefined, weight: 1 });
    expect(set.add("foo")).toBeUndefined();
    expect(set.weight("foo")).toBe(2);
    expect(set.remove("foo")).toBeUndefined();
    expect(set.remove("foo")).toEqual({ op: "remove", subject: "foo", queue: undefined, weight: 0 });
    expect(set.remove("foo")).toBeUndefined();
    expect(set.weight("foo")).toBe(0);
    expect(set.size).toBe(0);
  });

  it("reports every queue weight change", () => {
    const set = new InterestSet();
    expect(set.add("foo", "q")).toEqual({ op: "add", subject: "foo", queue: "q", weight: 1 });
    expect(set.add("foo", "q")).toEqual({ op: "update", subject: "foo", queue: "q", weight: 2 });
    expect(set.add("foo")).toMatchObject({ op: "add", queue: undefined });
    expect(set.size).toBe(2);
    expect(set.remove("foo", "q")).toEqual({ op: "update", subject: "foo", queue: "q", weight: 1 });
    expect(set.remove("foo", "q")).toEqual({ op: "remove", subject: "foo", queue: "q", weight: 0 });
    expect(set.remove("foo", "q")).toBeUndefined();
    expect(set.remove("foo", "other")).toBeUndefined();
    expect(set.remove("bar")).toBeUndefined();
    expect(set.snapshot()).toEqual([{ subject: "foo", queue: undefined, weight: 1 }]);
  });

  it("keeps a plain subject and a queue that look alike apart", () => {
    const set = new InterestSet();
    set.add("a b");
    set.add("a", "b");
    expect(set.size).toBe(2);
    expect(set.weight("a b")).toBe(1);
    expect(set.weight("a", "b")).toBe(1);
    expect(set.weight("a")).toBe(0);
  });

  it("emits changes that replay to the snapshot (property)", () => {
    const op = fc.record({
      add: fc.boolean(),
      subject: fc.constantFrom("a", "b", "a.*", ">"),
      queue: fc.constantFrom(undefined, undefined, "q1", "q2"),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const set = new InterestSet();
        const model = new Map<string, number>();
        const replica = new Map<string, number>();
        const apply = (c: InterestChange): void => {
          const k = key(c.subject, c.queue);
          if (c.op === "remove") {
            expect(replica.has(k)).toBe(true);
            expect(c.weight).toBe(0);
            replica.delete(k);
          } else if (c.op === "add") {
            expect(replica.has(k)).toBe(false);
            expect(c.weight).toBe(1);
            replica.set(k, c.weight);
          } else {
            expect(c.queue).toBeDefined();
            expect(replica.has(k)).toBe(true);
            replica.set(k, c.weight);
          }
        };
        for (const { add, subject, queue } of ops) {
          const k = key(subject, queue);
          const before = model.get(k) ?? 0;
          const after = add ? before + 1 : Math.max(0, before - 1);
          if (after === 0) model.delete(k);
          else model.set(k, after);
          const change = add ? set.add(subject, queue) : set.remove(subject, queue);
          if (before === after) {
            expect(change).toBeUndefined();
          } else if (queue === undefined && before > 0 && after > 0) {
            // Plain 1->2, 2->1 and so on are invisible to peers.
            expect(change).toBeUndefined();
          } else {
            expect(change).toBeDefined();
            expect(change!.weight).toBe(queue === undefined ? Math.min(after, 1) : after);
          }
          if (change !== undefined) apply(change);
          expect(set.weight(subject, queue)).toBe(after);
        }
        const snapshot = set.snapshot();
        expect(set.size).toBe(snapshot.length);
        expect(new Map(snapshot.map((e) => [key(e.subject, e.queue), e.weight]))).toEqual(model);
        // Peers learn every key, and the exact weight of every queue entry.
        expect(new Set(replica.keys())).toEqual(new Set(model.keys()));
        for (const e of snapshot) {
          expect(e.weight).toBeGreaterThan(0);
          if (e.queue !== undefined) expect(replica.get(key(e.subject, e.queue))).toBe(e.weight);
        }
      }),
      { numRuns: 400 },
    );
  });
});
