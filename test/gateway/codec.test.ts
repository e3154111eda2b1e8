import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeFrame,
  decodeFrameInto,
  FrameEncoder,
  FrameError,
  type InterestAction,
  LINK_FRAME_VERSION,
  type LinkOp,
} from "../../src/gateway/codec.js";
import { BridgeheadError } from "../../src/util/errors.js";

/** Feed one op to the encoder through its per-type method. */
function put(enc: FrameEncoder, op: LinkOp): void {
  switch (op.type) {
    case "snapshot":
      enc.snapshot(op.origin, op.epoch, op.seq, op.entries);
      return;
    case "delta":
      enc.delta(op.origin, op.epoch, op.seq, op.action, op.subject, op.queue, op.weight);
      return;
    case "resync":
      enc.resync(op.origin);
      return;
    case "topology":
      enc.topology(op.origin, op.epoch, op.seq, op.neighbors);
      return;
    case "ack":
      enc.ack(op.count);
      return;
    case "msg":
      enc.msg(
        op.origin,
        op.originSeq,
        op.subject,
        op.reply,
        op.hdrLen,
        op.payload,
        0,
        op.payload.length,
        op.dests,
      );
      return;
  }
}

function encodeAll(ops: readonly LinkOp[], maxFrameBytes?: number): Buffer[] {
  const enc = new FrameEncoder(maxFrameBytes === undefined ? undefined : { maxFrameBytes });
  for (const op of ops) put(enc, op);
  return enc.take();
}

function decodeAll(frames: readonly Buffer[]): LinkOp[] {
  return frames.flatMap((f) => decodeFrame(f));
}

/** Payloads compared as hex so a failing assertion shows the bytes. */
function plain(ops: readonly LinkOp[]): unknown[] {
  return ops.map((op) => (op.type === "msg" ? { ...op, payload: op.payload.toString("hex") } : op));
}

function roundTrip(ops: readonly LinkOp[], maxFrameBytes?: number): LinkOp[] {
  const decoded = decodeAll(encodeAll(ops, maxFrameBytes));
  expect(plain(decoded)).toEqual(plain(ops));
  return decoded;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error("expected an exception");
}

function frameError(frame: Buffer): FrameError {
  const err = thrown(() => decodeFrame(frame));
  expect(err).toBeInstanceOf(FrameError);
  return err as FrameError;
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const LATIN1_ALL = ALL_BYTES.toString("latin1");
const MAX_STR = "s".repeat(65535);

const msg = (over: Partial<Extract<LinkOp, { type: "msg" }>> = {}): Extract<LinkOp, { type: "msg" }> => ({
  type: "msg",
  origin: "eu-west",
  originSeq: 1,
  subject: "foo.bar",
  reply: "",
  hdrLen: -1,
  payload: Buffer.from("hello"),
  dests: [{ region: "us-east", queues: [] }],
  ...over,
});

describe("frame layout", () => {
  it("encodes a MSG byte for byte as docs/link-protocol.md §3 says", () => {
    const enc = new FrameEncoder();
    enc.msg("eu", 2 ** 32 + 5, "a.b", "r", 2, Buffer.from("xxHIyy"), 2, 4, [{ region: "us", queues: ["q"] }]);
    const frames = enc.take();
    expect(frames).toHaveLength(1);
    // biome-ignore format: one field per line
    const expected = Buffer.from([
      0x01, 0x00, // version 1, flags 0
      0x20, // MSG
      0x00, 0x02, 0x65, 0x75, // origin "eu"
      0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, // originSeq hi, lo
      0x00, 0x03, 0x61, 0x2e, 0x62, // subject "a.b"
      0x00, 0x01, 0x72, // reply "r"
      0x00, 0x00, 0x00, 0x02, // hdrLen 2
      0x00, 0x00, 0x00, 0x02, 0x48, 0x49, // payload "HI"
      0x00, 0x01, // 1 destination
      0x00, 0x02, 0x75, 0x73, // region "us"
      0x00, 0x01, 0x00, 0x01, 0x71, // 1 queue "q"
    ]);
    expect(frames[0]!.toString("hex")).toBe(expected.toString("hex"));
  });

  it("encodes the interest and topology ops byte for byte", () => {
    const enc = new FrameEncoder();
    enc.snapshot("a", 7, 8, [{ subject: "s", queue: "", weight: 1 }]);
    enc.delta("a", 0xffffffff, 9, 3, "s", "q", 0);
    enc.resync("b");
    enc.topology("a", 1, 2, [{ region: "b", rttMicros: 0x01020304 }]);
    const frames = enc.take();
    expect(frames).toHaveLength(1);
    // biome-ignore format: one op per line
    const expected = [
      "0100",
      "01" + "000161" + "00000007" + "00000008" + "00000001" + "000173" + "0000" + "00000001",
      "02" + "000161" + "ffffffff" + "00000009" + "03" + "000173" + "000171" + "00000000",
      "03" + "000162",
      "10" + "000161" + "00000001" + "00000002" + "0001" + "000162" + "01020304",
    ].join("");
    expect(frames[0]!.toString("hex")).toBe(expected);
    expect(frames[0]![0]).toBe(LINK_FRAME_VERSION);
  });

  it("encodes ACK as op 0x30 and a u64 count (high word first); a count past 2^53 is refused", () => {
    const enc = new FrameEncoder();
    enc.ack(2 ** 32 + 5);
    const [frame] = enc.take();
    expect(frame!.toString("hex")).toBe("0100" + "30" + "00000001" + "00000005");
    expect(decodeFrame(frame!)).toEqual([{ type: "ack", count: 2 ** 32 + 5 }]);
    const bad = Buffer.from("0100" + "30" + "00200000" + "00000000", "hex");
    expect(() => decodeFrame(bad)).toThrow(
      /^ACK at offset 2: count high word 2097152 at byte 3 puts it past 2\^53/,
    );
    expect(() => decodeFrame(Buffer.from("0100300000", "hex"))).toThrow(
      /^ACK at offset 2: count \(4 bytes\)/,
    );
    expect(() => enc.ack(-1)).toThrow(RangeError);
    expect(() => enc.ack(0.5)).toThrow(RangeError);
  });

  it("reports how many ops each taken frame holds", () => {
    const enc = new FrameEncoder({ maxFrameBytes: 40 });
    for (let i = 0; i < 7; i++) enc.ack(i);
    const counts: number[] = [];
    const frames = enc.take(counts);
    expect(counts).toHaveLength(frames.length);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(7);
    for (const [i, f] of frames.entries()) expect(decodeFrame(f)).toHaveLength(counts[i]!);
  });

  it("writes hdrLen -1 as a two's complement i32", () => {
    const enc = new FrameEncoder();
    enc.msg("", 0, "", "", -1, Buffer.alloc(0), 0, 0, []);
    expect(enc.take()[0]!.toString("hex")).toBe(`0100200000${"00".repeat(8)}00000000ffffffff000000000000`);
  });
});

describe("round trips", () => {
  it("round-trips every op type", () => {
    roundTrip([
      {
        type: "snapshot",
        origin: "eu-west",
        epoch: 123456,
        seq: 42,
        entries: [
          { subject: "foo.*", queue: "", weight: 1 },
          { subject: "bar.>", queue: "workers", weight: 17 },
        ],
      },
      {
        type: "delta",
        origin: "eu-west",
        epoch: 1,
        seq: 2,
        action: 2,
        subject: "orders.new",
        queue: "q",
        weight: 3,
      },
      { type: "resync", origin: "us-east" },
      {
        type: "topology",
        origin: "ap-south",
        epoch: 9,
        seq: 10,
        neighbors: [
          { region: "eu-west", rttMicros: 150_000 },
          { region: "us-east", rttMicros: 0 },
        ],
      },
      msg({ reply: "_GR_.eu-west._INBOX.abc", hdrLen: 2, payload: Buffer.from("\r\nbody") }),
    ]);
  });

  it("round-trips empty strings, empty lists and extreme integers", () => {
    roundTrip([
      { type: "snapshot", origin: "", epoch: 0, seq: 0, entries: [] },
      { type: "snapshot", origin: "x", epoch: 0xffffffff, seq: 0xffffffff, entries: [] },
      { type: "delta", origin: "", epoch: 0, seq: 0, action: 1, subject: "", queue: "", weight: 0 },
      {
        type: "delta",
        origin: "r",
        epoch: 0xffffffff,
        seq: 0xffffffff,
        action: 3,
        subject: "s",
        queue: "q",
        weight: 0xffffffff,
      },
      { type: "resync", origin: "" },
      { type: "topology", origin: "", epoch: 0, seq: 0, neighbors: [] },
      {
        type: "topology",
        origin: "r",
        epoch: 1,
        seq: 1,
        neighbors: [{ region: "", rttMicros: 0xffffffff }],
      },
      msg({
        origin: "",
        originSeq: 0,
        subject: "",
        reply: "",
        hdrLen: -1,
        payload: Buffer.alloc(0),
        dests: [],
      }),
      msg({ originSeq: Number.MAX_SAFE_INTEGER, hdrLen: 0 }),
      msg({ originSeq: 2 ** 32 - 1 }),
      msg({ originSeq: 2 ** 32 }),
      msg({ hdrLen: 5, payload: Buffer.from("hello") }),
      msg({ dests: [{ region: "", queues: [""] }] }),
    ]);
  });

  it("round-trips 65535-byte strings in every string field", () => {
    roundTrip([
      {
        type: "snapshot",
        origin: MAX_STR,
        epoch: 1,
        seq: 1,
        entries: [{ subject: MAX_STR, queue: MAX_STR, weight: 1 }],
      },
      {
        type: "delta",
        origin: MAX_STR,
        epoch: 1,
        seq: 1,
        action: 1,
        subject: MAX_STR,
        queue: MAX_STR,
        weight: 1,
      },
      { type: "resync", origin: MAX_STR },
      { type: "topology", origin: MAX_STR, epoch: 1, seq: 1, neighbors: [{ region: MAX_STR, rttMicros: 1 }] },
      msg({
        origin: MAX_STR,
        subject: MAX_STR,
        reply: MAX_STR,
        dests: [{ region: MAX_STR, queues: [MAX_STR] }],
      }),
    ]);
  });

  it("keeps latin1 wire strings byte-exact, including bytes above 0x7f", () => {
    const [op] = roundTrip([
      msg({
        subject: LATIN1_ALL,
        reply: `_INBOX.${LATIN1_ALL}`,
        dests: [{ region: "r", queues: [LATIN1_ALL] }],
      }),
    ]);
    expect(op?.type === "msg" && Buffer.from(op.subject, "latin1").equals(ALL_BYTES)).toBe(true);
    // Short strings go char by char, long ones through the buffer binding: both must agree.
    for (let n = 0; n < 120; n++) {
      const s = LATIN1_ALL.slice(256 - n);
      roundTrip([{ type: "delta", origin: s, epoch: 1, seq: 1, action: 1, subject: s, queue: s, weight: 1 }]);
    }
  });

  it("decodes many distinct short strings exactly (the intern cache never mixes them up)", () => {
    const ops: LinkOp[] = [];
    for (let i = 0; i < 20_000; i++) {
      const s = `s.${i}`;
      // Same length, same bytes but one, and every length around the cache's limit.
      ops.push({ type: "resync", origin: s }, { type: "resync", origin: `${s.slice(0, -1)}\xff` });
      ops.push({ type: "resync", origin: LATIN1_ALL.slice(i % 256, (i % 256) + (i % 40)) });
    }
    roundTrip(ops);
    roundTrip(ops);
  });

  it("carries binary payloads: all byte values, empty, 1 MiB, and a slice of a bigger buffer", () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 8)) & 0xff;
    roundTrip([
      msg({ payload: ALL_BYTES, hdrLen: 100 }),
      msg({ payload: Buffer.alloc(0), hdrLen: 0 }),
      msg({ payload: big, hdrLen: big.length }),
    ]);
    for (const [start, end] of [
      [0, 0],
      [10, 10],
      [3, 67],
      [1, 200],
      [0, 256],
    ] as const) {
      const enc = new FrameEncoder();
      enc.msg("o", 1, "s", "", -1, ALL_BYTES, start, end, []);
      const [op] = decodeFrame(enc.take()[0]!);
      expect(op?.type === "msg" && op.payload.equals(ALL_BYTES.subarray(start, end))).toBe(true);
    }
  });

  it("round-trips many destinations with many queues", () => {
    const dests = Array.from({ length: 1000 }, (_, i) => ({
      region: `region-${i}`,
      queues: Array.from({ length: i % 50 }, (_, j) => `q${j}.${i}`),
    }));
    roundTrip([msg({ dests }), msg({ dests: dests.slice(0, 3) })]);
    const manyQueues = [{ region: "r", queues: Array.from({ length: 65535 }, (_, j) => `${j}`) }];
    roundTrip([msg({ dests: manyQueues })]);
  });

  it("returns the payload as a view into the frame", () => {
    const frame = encodeAll([msg({ payload: Buffer.from("view") })])[0]!;
    const [op] = decodeFrame(frame);
    if (op?.type !== "msg") throw new Error("expected a msg");
    expect(op.payload.buffer).toBe(frame.buffer);
    expect(op.payload.toString()).toBe("view");
  });
});

describe("FrameEncoder batching", () => {
  const mixed: LinkOp[] = [];
  for (let i = 0; i < 200; i++) {
    switch (i % 5) {
      case 0:
        mixed.push(msg({ originSeq: i, payload: Buffer.alloc(i % 37, i) }));
        break;
      case 1:
        mixed.push({
          type: "delta",
          origin: "o",
          epoch: 1,
          seq: i,
          action: 1,
          subject: `s.${i}`,
          queue: "",
          weight: 1,
        });
        break;
      case 2:
        mixed.push({ type: "resync", origin: `r${i}` });
        break;
      case 3:
        mixed.push({
          type: "topology",
          origin: "o",
          epoch: 1,
          seq: i,
          neighbors: [{ region: "x", rttMicros: i }],
        });
        break;
      default:
        mixed.push({
          type: "snapshot",
          origin: "o",
          epoch: 1,
          seq: i,
          entries: [{ subject: `a.${i}`, queue: "q", weight: i }],
        });
    }
  }

  it("returns nothing when nothing is pending", () => {
    const enc = new FrameEncoder();
    expect(enc.take()).toEqual([]);
    expect(enc.pendingBytes).toBe(0);
    expect(enc.pendingOps).toBe(0);
    enc.resync("x");
    expect(enc.take()).toHaveLength(1);
    expect(enc.take()).toEqual([]);
  });

  it("puts many ops in one frame and tracks what is pending", () => {
    const enc = new FrameEncoder();
    for (const op of mixed) put(enc, op);
    expect(enc.pendingOps).toBe(mixed.length);
    const bytes = enc.pendingBytes;
    const frames = enc.take();
    expect(frames).toHaveLength(1);
    expect(frames[0]!.length).toBe(bytes);
    expect(plain(decodeFrame(frames[0]!))).toEqual(plain(mixed));
    expect(enc.pendingOps).toBe(0);
    expect(enc.pendingBytes).toBe(0);
  });

  it("splits a mixed batch over several frames in order, none above the limit", () => {
    for (const max of [1, 3, 40, 64, 100, 257, 1000]) {
      const enc = new FrameEncoder({ maxFrameBytes: max });
      let bytes = 0;
      for (const op of mixed) {
        put(enc, op);
        bytes = enc.pendingBytes;
      }
      expect(enc.pendingOps).toBe(mixed.length);
      const frames = enc.take();
      expect(frames.reduce((n, f) => n + f.length, 0)).toBe(bytes);
      expect(frames.length).toBeGreaterThan(1);
      for (const f of frames) {
        expect(f[0]).toBe(1);
        expect(f[1]).toBe(0);
        const ops = decodeFrame(f);
        expect(ops.length).toBeGreaterThan(0);
        if (ops.length > 1) expect(f.length).toBeLessThanOrEqual(max);
      }
      expect(plain(decodeAll(frames))).toEqual(plain(mixed));
    }
  });

  it("gives an op bigger than the limit a frame of its own", () => {
    const enc = new FrameEncoder({ maxFrameBytes: 64 });
    enc.resync("a");
    enc.msg("o", 1, "s", "", -1, Buffer.alloc(1000, 1), 0, 1000, []);
    enc.resync("b");
    const frames = enc.take();
    expect(frames.map((f) => decodeFrame(f).map((op) => op.type))).toEqual([["resync"], ["msg"], ["resync"]]);
  });

  it("closes a frame as soon as it reaches the limit", () => {
    // Each resync("abc") is 6 bytes; 2 + 3 * 6 = 20.
    const enc = new FrameEncoder({ maxFrameBytes: 20 });
    for (let i = 0; i < 7; i++) enc.resync("abc");
    const frames = enc.take();
    expect(frames.map((f) => f.length)).toEqual([20, 20, 8]);
    expect(enc.pendingBytes).toBe(0);
  });

  it("uses the 256 KiB default limit", () => {
    const enc = new FrameEncoder();
    const payload = Buffer.alloc(1000);
    for (let i = 0; i < 600; i++) enc.msg("o", i, "s", "", -1, payload, 0, 1000, []);
    const frames = enc.take();
    expect(frames.length).toBe(3);
    for (const f of frames.slice(0, -1)) {
      expect(f.length).toBeLessThanOrEqual(256 * 1024);
      expect(f.length).toBeGreaterThan(256 * 1024 - 1100);
    }
  });

  it("never rewrites frames already taken", () => {
    const enc = new FrameEncoder({ maxFrameBytes: 5000 });
    const first = msg({ payload: Buffer.alloc(3000, 0xaa) });
    put(enc, first);
    const taken = enc.take();
    const copy = Buffer.from(taken[0]!);
    // Enough traffic to fill and replace the slab several times, with frames straddling its end.
    for (let i = 0; i < 500; i++) put(enc, msg({ originSeq: i, payload: Buffer.alloc(i * 13, i) }));
    const later = enc.take();
    expect(taken[0]!.equals(copy)).toBe(true);
    expect(decodeAll(later)).toHaveLength(500);
  });

  it("rejects values the format cannot carry with a RangeError, leaving the encoder intact", () => {
    const enc = new FrameEncoder();
    enc.resync("before");
    const p = Buffer.from("payload");
    const bad: (() => void)[] = [
      () => enc.resync("x".repeat(65536)),
      () => enc.delta("o", 1, 1, 1, "x".repeat(65536), "", 1),
      () => enc.delta("o", 1, 1, 1, "s", "x".repeat(65536), 1),
      () => enc.delta("o", -1, 1, 1, "s", "", 1),
      () => enc.delta("o", 1, 2 ** 32, 1, "s", "", 1),
      () => enc.delta("o", 1, 1, 1, "s", "", 1.5),
      () => enc.delta("o", 1, 1, 5 as InterestAction, "s", "", 1),
      () => enc.snapshot("o", 1, 1, [{ subject: "s", queue: "", weight: -1 }]),
      () => enc.snapshot("o", 1, 1, [{ subject: "x".repeat(70000), queue: "", weight: 1 }]),
      () => enc.topology("o", 1, 1, [{ region: "r", rttMicros: Number.NaN }]),
      () =>
        enc.topology(
          "o",
          1,
          1,
          Array.from({ length: 65536 }, () => ({ region: "r", rttMicros: 1 })),
        ),
      () => enc.msg("o", -1, "s", "", -1, p, 0, p.length, []),
      () => enc.msg("o", 2 ** 53, "s", "", -1, p, 0, p.length, []),
      () => enc.msg("o", 0.5, "s", "", -1, p, 0, p.length, []),
      () => enc.msg("o", 1, "s", "", -2, p, 0, p.length, []),
      () => enc.msg("o", 1, "s", "", 8, p, 0, p.length, []),
      () => enc.msg("o", 1, "s", "", 3, p, 0, 2, []),
      () => enc.msg("o", 1, "s", "", -1, p, 0, p.length + 1, []),
      () => enc.msg("o", 1, "s", "", -1, p, 3, 2, []),
      () => enc.msg("o", 1, "s", "", -1, p, -1, 2, []),
      () =>
        enc.msg(
          "o",
          1,
          "s",
          "",
          -1,
          p,
          0,
          p.length,
          Array.from({ length: 65536 }, () => ({ region: "r", queues: [] })),
        ),
      () =>
        enc.msg("o", 1, "s", "", -1, p, 0, p.length, [
          { region: "r", queues: Array.from({ length: 65536 }, () => "q") },
        ]),
      () => enc.msg("o", 1, "s", "", -1, p, 0, p.length, [{ region: "r", queues: ["x".repeat(65536)] }]),
      () => enc.msg("o", 1, "s", "x".repeat(65536), -1, p, 0, p.length, []),
    ];
    for (const f of bad) {
      const err = thrown(f);
      expect(err).toBeInstanceOf(RangeError);
      expect(enc.pendingOps).toBe(1);
    }
    enc.resync("after");
    expect(decodeAll(enc.take())).toEqual([
      { type: "resync", origin: "before" },
      { type: "resync", origin: "after" },
    ]);
    expect(() => new FrameEncoder({ maxFrameBytes: 0 })).toThrow(RangeError);
    expect(() => new FrameEncoder({ maxFrameBytes: 1.5 })).toThrow(RangeError);
  });

  it("encodes 100k msg ops to exactly the expected number of bytes", () => {
    const enc = new FrameEncoder();
    const payload = Buffer.from("0123456789abcdef");
    const dests = [{ region: "us-east", queues: ["workers"] }];
    const n = 100_000;
    for (let i = 0; i < n; i++) enc.msg("eu-west", i, "orders.created", "", -1, payload, 0, 16, dests);
    // type + origin + originSeq + subject + reply + hdrLen + payload + destCount + dest
    const opBytes = 1 + (2 + 7) + 8 + (2 + 14) + 2 + 4 + (4 + 16) + 2 + (2 + 7 + 2 + 2 + 7);
    const perFrame = Math.floor((256 * 1024 - 2) / opBytes);
    const frameCount = Math.ceil(n / perFrame);
    expect(enc.pendingOps).toBe(n);
    expect(enc.pendingBytes).toBe(n * opBytes + 2 * frameCount);
    const frames = enc.take();
    expect(frames).toHaveLength(frameCount);
    expect(frames.reduce((t, f) => t + f.length, 0)).toBe(n * opBytes + 2 * frameCount);
    let count = 0;
    let inOrder = true;
    for (const f of frames) {
      decodeFrameInto(f, (op) => {
        if (op.type !== "msg" || op.originSeq !== count || op.payload.length !== 16) inOrder = false;
        count++;
      });
    }
    expect(count).toBe(n);
    expect(inOrder).toBe(true);
  });
});

describe("decodeFrameInto", () => {
  it("visits the same ops as decodeFrame, payloads as views", () => {
    const frame = encodeAll([
      msg({ payload: Buffer.from("abc") }),
      { type: "resync", origin: "x" },
      msg({ originSeq: 7 }),
    ])[0]!;
    const seen: LinkOp[] = [];
    decodeFrameInto(frame, (op) => seen.push(op));
    expect(plain(seen)).toEqual(plain(decodeFrame(frame)));
    const first = seen[0];
    expect(first?.type === "msg" && first.payload.buffer === frame.buffer).toBe(true);
  });

  it("rejects a bad frame whole: the handler sees none of its ops", () => {
    const good = encodeAll([{ type: "resync", origin: "x" }, msg()])[0]!;
    const bad = Buffer.concat([good, Buffer.from([0x20, 0x00])]);
    let calls = 0;
    expect(() => decodeFrameInto(bad, () => calls++)).toThrow(FrameError);
    expect(calls).toBe(0);
  });

  it("lets a handler's exception through and stays usable", () => {
    const frame = encodeAll([
      { type: "resync", origin: "x" },
      { type: "resync", origin: "y" },
    ])[0]!;
    const boom = new Error("boom");
    expect(
      thrown(() =>
        decodeFrameInto(frame, () => {
          throw boom;
        }),
      ),
    ).toBe(boom);
    const seen: LinkOp[] = [];
    decodeFrameInto(frame, (op) => seen.push(op));
    expect(seen).toEqual([
      { type: "resync", origin: "x" },
      { type: "resync", origin: "y" },
    ]);
  });

  it("copes with a handler that decodes another frame", () => {
    const outer = encodeAll([
      { type: "resync", origin: "a" },
      { type: "resync", origin: "b" },
    ])[0]!;
    const inner = encodeAll([{ type: "resync", origin: "inner" }])[0]!;
    const seen: string[] = [];
    decodeFrameInto(outer, (op) => {
      if (op.type === "resync") seen.push(op.origin);
      decodeFrameInto(inner, (o) => seen.push(o.type === "resync" ? o.origin : "?"));
    });
    expect(seen).toEqual(["a", "inner", "b", "inner"]);
  });
});

describe("malformed frames", () => {
  const frameOf = (...bytes: (number | Buffer)[]): Buffer =>
    Buffer.concat(bytes.map((b) => (typeof b === "number" ? Buffer.from([b]) : b)));
  const u16 = (v: number): Buffer => Buffer.from([v >>> 8, v & 0xff]);
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  const str = (s: string): Buffer => Buffer.concat([u16(s.length), Buffer.from(s, "latin1")]);

  it("is a BridgeheadError with the offset of the bad op", () => {
    const err = frameError(frameOf(1, 0, 3, str("a"), 0x7f));
    expect(err).toBeInstanceOf(BridgeheadError);
    expect(err.name).toBe("FrameError");
    expect(err.offset).toBe(6);
    expect(err.message).toBe("op at offset 6: unknown op type 0x7f (frame is 7 bytes)");
  });

  it("accepts a header with no ops", () => {
    expect(decodeFrame(Buffer.from([1, 0]))).toEqual([]);
  });

  it("rejects bad headers", () => {
    expect(frameError(Buffer.alloc(0)).message).toBe(
      "frame header at offset 0: shorter than the 2-byte header (frame is 0 bytes)",
    );
    expect(frameError(Buffer.from([1])).message).toMatch(/^frame header at offset 0: shorter/);
    expect(frameError(Buffer.from([2, 0, 3, 0, 0])).message).toBe(
      "frame header at offset 0: unsupported frame version 2 (this side speaks 1) (frame is 5 bytes)",
    );
    const flags = frameError(Buffer.from([1, 1, 3, 0, 0]));
    expect(flags.offset).toBe(1);
    expect(flags.message).toMatch(/unsupported flags 0x01/);
  });

  it("rejects a payload running past the end, naming the op and offset", () => {
    const head = frameOf(1, 0, 3, str("abcd"));
    const frame = frameOf(
      head,
      0x20,
      str("eu"),
      u32(0),
      u32(1),
      str("s"),
      str(""),
      u32(0xffffffff),
      u32(1000),
      Buffer.alloc(10),
    );
    const err = frameError(frame);
    expect(err.offset).toBe(head.length);
    expect(err.message).toBe(
      `MSG at offset ${head.length}: payload length 1000 at byte ${head.length + 22} runs past end of frame (frame is ${frame.length} bytes)`,
    );
  });

  it("rejects truncation inside every field", () => {
    const frame = encodeAll([
      { type: "snapshot", origin: "o", epoch: 1, seq: 2, entries: [{ subject: "s", queue: "q", weight: 3 }] },
      { type: "delta", origin: "o", epoch: 1, seq: 2, action: 1, subject: "s", queue: "q", weight: 3 },
      { type: "resync", origin: "o" },
      { type: "topology", origin: "o", epoch: 1, seq: 2, neighbors: [{ region: "r", rttMicros: 4 }] },
      msg({ reply: "r", hdrLen: 1, dests: [{ region: "r", queues: ["q"] }] }),
    ])[0]!;
    const opStarts = new Set<number>([2]);
    let p = 2;
    for (const op of decodeFrame(frame)) {
      p += encodeAll([op])[0]!.length - 2;
      opStarts.add(p);
    }
    for (let n = 0; n < frame.length; n++) {
      const cut = frame.subarray(0, n);
      if (opStarts.has(n)) {
        expect(() => decodeFrame(cut)).not.toThrow();
        continue;
      }
      const err = frameError(cut);
      expect(err.message).toMatch(
        /^(frame header|INTEREST_SNAPSHOT|INTEREST_DELTA|RESYNC_REQUEST|TOPOLOGY|MSG) at offset \d+: .*(runs past end of frame|needs at least \d+ bytes)|^frame header at offset 0: shorter/,
      );
    }
  });

  it("fails fast on hostile counts", () => {
    const snapshot = frameOf(1, 0, 0x01, str("o"), u32(1), u32(1), u32(0xffffffff), Buffer.alloc(3));
    expect(snapshot.length).toBeLessThanOrEqual(24);
    expect(frameError(snapshot).message).toBe(
      "INTEREST_SNAPSHOT at offset 2: entry count 4294967295 at byte 14 needs at least 34359738360 bytes but only 3 remain (frame is 21 bytes)",
    );
    const topology = frameOf(1, 0, 0x10, str("o"), u32(1), u32(1), u16(0xffff));
    expect(frameError(topology).message).toMatch(
      /^TOPOLOGY at offset 2: neighbor count 65535 at byte 14 needs/,
    );
    const dests = frameOf(
      1,
      0,
      0x20,
      str("o"),
      u32(0),
      u32(0),
      str("s"),
      str(""),
      u32(0xffffffff),
      u32(0),
      u16(0xffff),
    );
    expect(frameError(dests).message).toMatch(/^MSG at offset 2: destination count 65535 .* only 0 remain/);
    const queues = frameOf(
      1,
      0,
      0x20,
      str("o"),
      u32(0),
      u32(0),
      str("s"),
      str(""),
      u32(0xffffffff),
      u32(0),
      u16(1),
      str("r"),
      u16(0xffff),
      Buffer.alloc(4),
    );
    expect(frameError(queues).message).toMatch(
      /^MSG at offset 2: queue count 65535 .* needs at least 131070 bytes/,
    );
  });

  it("rejects out-of-range values", () => {
    const delta = (action: number): Buffer =>
      frameOf(1, 0, 0x02, str("o"), u32(1), u32(1), action, str("s"), str(""), u32(1));
    expect(decodeFrame(delta(2))).toHaveLength(1);
    expect(frameError(delta(0)).message).toMatch(/^INTEREST_DELTA at offset 2: invalid action 0 at byte 14/);
    expect(frameError(delta(5)).message).toMatch(/invalid action 5/);
    const m = (hi: number, hdrLen: number, payload: number): Buffer =>
      frameOf(
        1,
        0,
        0x20,
        str("o"),
        u32(hi),
        u32(0),
        str("s"),
        str(""),
        u32(hdrLen >>> 0),
        u32(payload),
        Buffer.alloc(payload),
        u16(0),
      );
    expect(decodeFrame(m(0x1fffff, 3, 3))).toMatchObject([{ originSeq: 2 ** 53 - 2 ** 32, hdrLen: 3 }]);
    expect(frameError(m(0x200000, -1, 0)).message).toMatch(
      /^MSG at offset 2: originSeq high word 2097152 at byte 6/,
    );
    expect(frameError(m(0, 4, 3)).message).toMatch(
      /^MSG at offset 2: hdrLen 4 at byte 19 is neither -1 nor within/,
    );
    expect(frameError(m(0, -2, 3)).message).toMatch(/hdrLen -2/);
  });

  it("rejects trailing bytes after the last op", () => {
    const good = encodeAll([{ type: "resync", origin: "x" }])[0]!;
    for (const tail of [[0], [0x03], [0x03, 0x00], [0x20, 0, 0]]) {
      const err = frameError(Buffer.concat([good, Buffer.from(tail)]));
      expect(err.offset).toBe(good.length);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Properties

const latin1 = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });
const u32Arb = fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.nat({ max: 0xffffffff }));

const opArb: fc.Arbitrary<LinkOp> = fc.oneof(
  fc.record({
    type: fc.constant("snapshot" as const),
    origin: latin1(12),
    epoch: u32Arb,
    seq: u32Arb,
    entries: fc.array(fc.record({ subject: latin1(30), queue: latin1(8), weight: u32Arb }), { maxLength: 6 }),
  }),
  fc.record({
    type: fc.constant("delta" as const),
    origin: latin1(12),
    epoch: u32Arb,
    seq: u32Arb,
    action: fc.constantFrom<InterestAction>(1, 2, 3, 4),
    subject: latin1(80),
    queue: latin1(8),
    weight: u32Arb,
  }),
  fc.record({ type: fc.constant("resync" as const), origin: latin1(12) }),
  fc.record({
    type: fc.constant("ack" as const),
    count: fc.oneof(fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()),
  }),
  fc.record({
    type: fc.constant("topology" as const),
    origin: latin1(12),
    epoch: u32Arb,
    seq: u32Arb,
    neighbors: fc.array(fc.record({ region: latin1(12), rttMicros: u32Arb }), { maxLength: 6 }),
  }),
  fc
    .record({
      origin: latin1(12),
      originSeq: fc.oneof(fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat()),
      subject: latin1(80),
      reply: latin1(60),
      payload: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      hdrFrac: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
      dests: fc.array(fc.record({ region: latin1(12), queues: fc.array(latin1(8), { maxLength: 4 }) }), {
        maxLength: 5,
      }),
    })
    .map(
      ({ hdrFrac, ...m }): LinkOp => ({
        type: "msg",
        ...m,
        hdrLen: hdrFrac === null ? -1 : Math.floor(hdrFrac * m.payload.length),
      }),
    ),
);

describe("properties", () => {
  it("decodes whatever it encodes, in order, across frame boundaries", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 40 }),
        fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 2000 })),
        (ops, max) => {
          const frames = encodeAll(ops, max);
          expect(plain(decodeAll(frames))).toEqual(plain(ops));
          const visited: LinkOp[] = [];
          for (const f of frames) decodeFrameInto(f, (op) => visited.push(op));
          expect(plain(visited)).toEqual(plain(ops));
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Fuzzing: whatever the bytes, decoding returns ops or throws a FrameError, and both decoders agree.

const ERROR_HEAD =
  /^(frame header|op|INTEREST_SNAPSHOT|INTEREST_DELTA|RESYNC_REQUEST|TOPOLOGY|MSG|ACK) at offset (\d+): /;

/** Decode `frame` both ways and check the outcome is well-formed; returns whether it decoded. */
function checkDecode(frame: Buffer): boolean {
  let ops: LinkOp[] | undefined;
  let err: unknown;
  try {
    ops = decodeFrame(frame);
  } catch (e) {
    err = e;
  }
  const visited: LinkOp[] = [];
  let err2: unknown;
  try {
    decodeFrameInto(frame, (op) => visited.push(op));
  } catch (e) {
    err2 = e;
  }
  if (ops !== undefined) {
    expect(err2).toBeUndefined();
    expect(plain(visited)).toEqual(plain(ops));
    // The format has no slack: an accepted frame is exactly what the encoder makes of its ops.
    const again = encodeAll(ops, frame.length);
    expect(again.length).toBe(ops.length === 0 ? 0 : 1);
    if (ops.length > 0) expect(again[0]!.equals(frame)).toBe(true);
    return true;
  }
  if (!(err instanceof FrameError)) throw err;
  const m = ERROR_HEAD.exec(err.message);
  if (m === null) throw new Error(`FrameError message without op and offset: ${err.message}`);
  expect(Number(m[2])).toBe(err.offset);
  expect(err.offset).toBeLessThanOrEqual(frame.length);
  expect(err.message.endsWith(`(frame is ${frame.length} bytes)`)).toBe(true);
  expect(visited).toEqual([]);
  expect(err2).toBeInstanceOf(FrameError);
  expect((err2 as FrameError).message).toBe(err.message);
  return false;
}

type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "truncate"; at: number }
  | { kind: "count"; at: number; width: 2 | 4; value: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("count" as const),
    at: fc.nat(),
    width: fc.constantFrom<2 | 4>(2, 4),
    value: fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0xffffffff), fc.nat()),
  }),
);

function mutate(frame: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(frame);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.kind === "insert" ? 1 : 0));
    switch (m.kind) {
      case "flip":
        if (b.length > 0) b[at] = b[at]! ^ (1 << m.bit);
        break;
      case "set":
        if (b.length > 0) b[at] = m.value;
        break;
      case "insert":
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "count":
        // A length or count field set to an arbitrary value, clipped to what fits.
        for (let k = 0; k < m.width && at + k < b.length; k++) {
          b[at + k] = Math.floor(m.value / 256 ** (m.width - 1 - k)) & 0xff;
        }
        break;
    }
  }
  return b;
}

// biome-ignore format: one op per line
const MINIMAL_OPS = [
  [0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  [0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
  [0x03, 0, 0],
  [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  [0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
].map((a) => Buffer.from(a));

const smallOps = fc.array(opArb, { minLength: 1, maxLength: 6 });

describe("fuzz", () => {
  it("random bytes: ops or a FrameError, nothing else", () => {
    const validStart = fc.tuple(
      fc.constantFrom(0x01, 0x02, 0x03, 0x10, 0x20),
      fc.uint8Array({ maxLength: 120 }),
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      validStart.map(([type, rest]) => Buffer.concat([Buffer.from([1, 0, type]), rest])),
      // Minimal valid ops (empty strings and lists) followed by noise reach deeper into the decoder.
      fc
        .tuple(fc.array(fc.constantFrom(...MINIMAL_OPS), { maxLength: 5 }), fc.uint8Array({ maxLength: 4 }))
        .map(([ops, tail]) => Buffer.concat([Buffer.from([1, 0]), ...ops, tail])),
    );
    let decoded = 0;
    fc.assert(
      fc.property(bytes, (frame) => {
        if (checkDecode(frame)) decoded++;
      }),
      { numRuns: 4000 },
    );
    expect(decoded).toBeGreaterThan(0);
  });

  it("mutated valid frames: ops or a FrameError, nothing else", () => {
    let decoded = 0;
    let rejected = 0;
    fc.assert(
      fc.property(smallOps, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (ops, muts) => {
        const frame = encodeAll(ops)[0]!;
        if (checkDecode(mutate(frame, muts))) decoded++;
        else rejected++;
      }),
      { numRuns: 3000 },
    );
    expect(decoded).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it("every single-byte corruption and every truncation of a mixed frame", () => {
    const frame = encodeAll([
      {
        type: "snapshot",
        origin: "eu",
        epoch: 1,
        seq: 2,
        entries: [{ subject: "a.b", queue: "q", weight: 3 }],
      },
      { type: "delta", origin: "eu", epoch: 1, seq: 3, action: 2, subject: "a.b", queue: "q", weight: 4 },
      { type: "resync", origin: "us" },
      { type: "topology", origin: "eu", epoch: 1, seq: 4, neighbors: [{ region: "us", rttMicros: 900 }] },
      msg({
        reply: "_GR_.eu.x",
        hdrLen: 2,
        payload: Buffer.from("hdbody"),
        dests: [{ region: "us", queues: ["q"] }],
      }),
    ])[0]!;
    for (let i = 0; i <= frame.length; i++) checkDecode(frame.subarray(0, i));
    for (let i = 0; i < frame.length; i++) {
      for (const v of [0x00, 0x01, 0x7f, 0x80, 0xff, (frame[i]! + 1) & 0xff, (frame[i]! - 1) & 0xff]) {
        const b = Buffer.from(frame);
        b[i] = v;
        checkDecode(b);
      }
    }
  });
});
