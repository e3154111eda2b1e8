/**
 * The three data structures behind store-and-forward (src/gateway/outbox.ts, dedupe.ts, in-flight.ts),
 * each checked against a naive model over random operation sequences, plus the edge cases the models
 * cannot reach cheaply.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameEncoder } from "../../src/gateway/codec.js";
import { DEDUPE_WINDOW, Deduper } from "../../src/gateway/dedupe.js";
import { InFlight } from "../../src/gateway/in-flight.js";
import {
  type DropReason,
  Outbox,
  type OutboxLimits,
  type ParkedMsg,
  parkedSize,
} from "../../src/gateway/outbox.js";

function msg(seq: number, bytes: number, at: number): ParkedMsg {
  return {
    origin: "a",
    originSeq: seq,
    subject: "s",
    reply: "",
    hdrLen: -1,
    payload: Buffer.alloc(bytes),
    queues: [],
    enqueuedAt: at,
  };
}

describe("Outbox", () => {
  it("matches a naive bounded queue under random pushes, takes and expiry; every message is sent or dropped once", () => {
    fc.assert(
      fc.property(
        fc.record({
          maxBytes: fc.integer({ min: 70, max: 2000 }),
          maxMessages: fc.integer({ min: 1, max: 20 }),
          maxAgeMs: fc.integer({ min: 1, max: 50 }),
          drop: fc.constantFrom<"oldest" | "newest">("oldest", "newest"),
        }),
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("push" as const), bytes: fc.integer({ min: 0, max: 400 }) }),
            fc.record({ op: fc.constant("take" as const) }),
            fc.record({ op: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 20 }) }),
          ),
          { maxLength: 120 },
        ),
        (limits: OutboxLimits, ops) => {
          const dropped: { reason: DropReason; seq: number }[] = [];
          const box = new Outbox("b", limits, (reason, m) => dropped.push({ reason, seq: m.originSeq }));
          let model: ParkedMsg[] = [];
          const sent: number[] = [];
          let now = 0;
          let seq = 0;
          for (const o of ops) {
            if (o.op === "push") {
              const m = msg(++seq, o.bytes, now);
              const size = parkedSize(m);
              const total = () => model.reduce((a, x) => a + parkedSize(x), 0);
              if (size > limits.maxBytes) {
                expect(box.push(m)).toBe(false);
              } else if (limits.drop === "newest") {
                const fits = model.length + 1 <= limits.maxMessages && total() + size <= limits.maxBytes;
                expect(box.push(m)).toBe(fits);
                if (fits) model.push(m);
              } else {
                expect(box.push(m)).toBe(true);
                while (
                  model.length > 0 &&
                  (model.length + 1 > limits.maxMessages || total() + size > limits.maxBytes)
                )
                  model.shift();
                model.push(m);
              }
            } else if (o.op === "take") {
              const got = box.take();
              expect(got?.originSeq).toBe(model.shift()?.originSeq);
              if (got !== undefined) sent.push(got.originSeq);
            } else {
              now += o.ms;
              box.expire(now);
              model = model.filter((m) => m.enqueuedAt > now - limits.maxAgeMs);
            }
            expect(box.length).toBe(model.length);
            expect(box.bytes).toBe(model.reduce((a, x) => a + parkedSize(x), 0));
            expect(box.length).toBeLessThanOrEqual(limits.maxMessages);
            expect(box.bytes).toBeLessThanOrEqual(limits.maxBytes);
          }
          // Exact accounting: each message pushed is sent, dropped, or still held — exactly once.
          const held = model.map((m) => m.originSeq);
          const all = [...sent, ...dropped.map((d) => d.seq), ...held].sort((x, y) => x - y);
          expect(all).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
          // Sent messages left in order.
          expect(sent).toEqual([...sent].sort((x, y) => x - y));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("clears with a reason and applies lowered limits to what it holds", () => {
    const reasons: DropReason[] = [];
    const box = new Outbox("b", { maxBytes: 1e6, maxMessages: 10, maxAgeMs: 1000, drop: "oldest" }, (r) =>
      reasons.push(r),
    );
    for (let i = 1; i <= 10; i++) box.push(msg(i, 10, 0));
    box.setLimits({ maxBytes: 1e6, maxMessages: 4, maxAgeMs: 1000, drop: "oldest" });
    expect(box.length).toBe(4);
    expect(box.peek()?.originSeq).toBe(7);
    expect(box.clear("no_interest")).toBe(4);
    expect(reasons).toEqual([...Array(6).fill("overflow"), ...Array(4).fill("no_interest")]);
    expect(box.bytes).toBe(0);
  });

  it("stays compact over a long run (the dead prefix is reclaimed)", () => {
    const box = new Outbox("b", { maxBytes: 1e9, maxMessages: 1e9, maxAgeMs: 1e9, drop: "oldest" }, () => {});
    for (let i = 0; i < 50_000; i++) {
      box.push(msg(i, 1, 0));
      if (i % 3 !== 0) box.take();
    }
    expect(box.length).toBe(16_667);
    expect(box.peek()?.originSeq).toBeGreaterThan(0);
  });
});

describe("Deduper", () => {
  it.each([32, 256, DEDUPE_WINDOW])(
    "flags exactly the repeats within a window of %i, against a set of everything seen",
    (window) => {
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              { weight: 5, arbitrary: fc.integer({ min: 1, max: 5 }) },
              { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 * window }) },
            ),
            { maxLength: 400 },
          ),
          (deltas) => {
            const DEDUPE_WINDOW = window;
            const d = new Deduper(window);
            const seen = new Set<number>();
            let high = 0;
            let seq = 0;
            const order: number[] = [];
            for (const [i, delta] of deltas.entries()) {
              // Every 4th: a replay of one seen before; every 4th+1: a late arrival below the highest (often one
              // never seen, whose bit a sequence one window older used); else the stream moves on.
              if (i % 4 === 3 && order.length > 0) seq = order[order.length - 1 - (delta % order.length)]!;
              else if (i % 4 === 1) seq = Math.max(1, high - (delta % window));
              else seq = high + delta;
              order.push(seq);
              const expectNew = !seen.has(seq) || seq <= high - DEDUPE_WINDOW;
              expect(d.accept("o", 7, seq)).toBe(expectNew);
              seen.add(seq);
              high = Math.max(high, seq);
            }
          },
        ),
        { numRuns: 200 },
      );
    },
  );

  it("keeps origins apart and starts afresh when an origin's epoch changes", () => {
    const d = new Deduper();
    expect(d.accept("a", 1, 5)).toBe(true);
    expect(d.accept("b", 1, 5)).toBe(true);
    expect(d.accept("a", 1, 5)).toBe(false);
    expect(d.accept("a", 2, 5)).toBe(true);
    expect(d.duplicates).toBe(1);
  });

  it("accepts and counts a sequence older than the window instead of guessing", () => {
    const d = new Deduper();
    d.accept("a", 1, 1);
    d.accept("a", 1, DEDUPE_WINDOW + 10);
    expect(d.accept("a", 1, 1)).toBe(true);
    expect(d.tooOld).toBe(1);
  });
});

describe("InFlight", () => {
  function frames(opsPerFrame: readonly number[]): { frame: Buffer; ops: number }[] {
    return opsPerFrame.map((ops, i) => ({ frame: Buffer.alloc(10 + i), ops }));
  }

  it("releases frames an ACK covers whole and replays the rest, skipping what was acknowledged", () => {
    const f = new InFlight();
    for (const x of frames([3, 2, 4])) f.add(x.frame, x.ops);
    expect(f.unackedOps).toBe(9);
    expect(f.ack(4)).toBe(true); // first frame whole, one op of the second
    expect(f.bytes).toBe(11 + 12);
    expect(f.ack(3)).toBe(true); // stale: ignored
    expect(f.ack(10)).toBe(false); // more than was sent
    const left = f.unacked();
    expect(left.map((u) => [u.frame.length, u.skipOps])).toEqual([
      [11, 1],
      [12, 0],
    ]);
    expect(f.bytes).toBe(0);
  });

  it("agrees with the encoder's per-frame op counts over random traffic and ACKs", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 30 }),
        fc.nat(),
        (batches, ackFrac) => {
          const enc = new FrameEncoder({ maxFrameBytes: 64 });
          const f = new InFlight();
          let total = 0;
          for (const n of batches) {
            for (let i = 0; i < n; i++) enc.ack(total + i);
            total += n;
            const counts: number[] = [];
            for (const [i, fr] of enc.take(counts).entries()) f.add(fr, counts[i]!);
          }
          const acked = total === 0 ? 0 : ackFrac % (total + 1);
          f.ack(acked);
          const replay = f.unacked().flatMap((u) => {
            const ops: number[] = [];
            const view = u.frame;
            // Each ACK op is 9 bytes after the 2-byte header: op i carries count = its global index.
            for (let p = 2; p < view.length; p += 9) ops.push(view.readUInt32BE(p + 5));
            return ops.slice(u.skipOps);
          });
          expect(replay).toEqual(Array.from({ length: total - acked }, (_, i) => acked + i));
        },
      ),
      { numRuns: 200 },
    );
  });
});
