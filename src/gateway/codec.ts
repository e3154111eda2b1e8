/**
 * Binary frames of the gateway link protocol, `docs/link-protocol.md` §3.
 *
 * A frame is `u8 version | u8 flags | op*`, big-endian, strings as `u16 length + bytes`. Subjects, replies
 * and queue names are NATS wire strings (latin1 JS strings, one char per byte) and travel byte-exact; region
 * names are ASCII and go the same way.
 *
 * Encoding writes straight into a slab, so the per-message path (`FrameEncoder.msg`) allocates nothing:
 * finished frames are views of the slab, which is never rewritten once a frame has been handed out.
 *
 * Decoding trusts nothing: every read is bounded by the frame length before it happens, and every count is
 * checked against the bytes left (each item has a minimum size) before anything is allocated or looped over,
 * so a hostile count fails at once. Malformed input throws a `FrameError` and nothing else, and a frame is
 * accepted or rejected whole. Payloads are views into the frame; short strings come from an intern cache.
 *
 * §3 of the protocol page spells out the readings this file takes where the table is terse (originSeq
 * range, flags, hdrLen range, empty frames, error offsets, size limits).
 */
import { BridgeheadError } from "../util/errors.js";

export const LINK_FRAME_VERSION = 1;

/**
 * A frame that cannot be decoded. `offset` is where the offending op starts in the frame (0 or 1 for a bad
 * header); the message names the op, the field and its byte position, e.g.
 * `MSG at offset 37: payload length 1000 at byte 61 runs past end of frame (frame is 120 bytes)`.
 */
export class FrameError extends BridgeheadError {
  override readonly name: string = "FrameError";

  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** 1 add, 2 update, 3 remove. */
/** 1 add, 2 update, 3 remove, 4 skip (the sequence number advances, nothing changes: a filtered change). */
export type InterestAction = 1 | 2 | 3 | 4;

export interface InterestEntryWire {
  subject: string;
  /** "" for a plain subscription. */
  queue: string;
  weight: number;
}

export type LinkOp =
  | { type: "snapshot"; origin: string; epoch: number; seq: number; entries: InterestEntryWire[] }
  | {
      type: "delta";
      origin: string;
      epoch: number;
      seq: number;
      action: InterestAction;
      subject: string;
      queue: string;
      weight: number;
    }
  | { type: "resync"; origin: string }
  | {
      type: "topology";
      origin: string;
      epoch: number;
      seq: number;
      neighbors: { region: string; rttMicros: number }[];
    }
  | {
      type: "msg";
      origin: string;
      originSeq: number;
      subject: string;
      reply: string;
      /** -1 when the message has no headers; otherwise 0..payload.length. */
      hdrLen: number;
      /** Headers and body. Decoded, this is a view into the frame (it keeps the frame's memory alive). */
      payload: Buffer;
      dests: { region: string; queues: string[] }[];
    }
  /** Cumulative count of MSG ops received on this link so far (the sender may forget those). */
  | { type: "ack"; count: number };

const OP_SNAPSHOT = 0x01;
const OP_DELTA = 0x02;
const OP_RESYNC = 0x03;
const OP_TOPOLOGY = 0x10;
const OP_MSG = 0x20;
const OP_ACK = 0x30;

const HEADER_BYTES = 2;
const MAX_U16 = 0xffff;
const TWO_POW_32 = 0x1_0000_0000;
/** originSeq < 2^53, so its high word is below 2^21. */
const ORIGIN_SEQ_HI_LIMIT = 0x20_0000;

const DEFAULT_MAX_FRAME_BYTES = 256 * 1024;
const MIN_SLAB_BYTES = 64 * 1024;
const MAX_SLAB_BYTES = 4 * 1024 * 1024;
/**
 * Strings longer than this are written by the buffer binding; shorter ones char by char, which is faster
 * (measured on Node 20: a binding call costs about as much as a loop over 25-30 chars).
 */
const SHORT_STRING = 24;
/**
 * Payload copies: `TypedArray#set` of a whole buffer costs about as much as a loop over 8 bytes; a range
 * (`Buffer#copy` with offsets, which builds a view internally) as much as a loop over ~40 bytes.
 */
const SHORT_WHOLE_PAYLOAD = 8;
const SHORT_RANGE_PAYLOAD = 40;

// ---------------------------------------------------------------------------------------------------------
// Encoding

/** Wire size of a string (u16 length + bytes). Throws a RangeError for more than 65535 bytes. */
function strSize(s: string, what: string): number {
  const n = s.length;
  if (n > MAX_U16) throw new RangeError(`${what} is ${n} bytes, more than the 65535 a link frame can carry`);
  return 2 + n;
}

function checkU32(v: number, what: string): void {
  if (v >>> 0 !== v) throw new RangeError(`${what} ${v} is not an unsigned 32-bit integer`);
}

function checkCount(n: number, what: string): void {
  if (n > MAX_U16) throw new RangeError(`${n} ${what} are more than the 65535 a link frame can carry`);
}

/** Write a latin1 string with its u16 length; the length was checked by `strSize`. */
function putStr(b: Buffer, p: number, s: string): number {
  const n = s.length;
  b[p] = n >>> 8;
  b[p + 1] = n;
  p += 2;
  if (n > SHORT_STRING) return p + b.write(s, p, n, "latin1");
  for (let k = 0; k < n; k++) b[p++] = s.charCodeAt(k);
  return p;
}

/** Writes a u32, or an i32 (two's complement): typed-array stores keep the low 8 bits. */
function put32(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/**
 * Accumulates ops into frames: many ops per frame, a frame closed when the next op would take it past
 * `maxFrameBytes` (default 256 KiB, header included), when it reaches that size, or when `take()` is
 * called. A single op bigger than the limit gets a frame of its own.
 *
 * Inputs come from our own code, so the encoder does not return errors: a value the format cannot carry
 * (a string over 65535 bytes, more than 65535 neighbors/destinations/queues, an epoch/seq/weight/rtt that
 * is not a u32, an originSeq that is not an integer in [0, 2^53), an hdrLen that is not -1 or within the
 * payload, a bad payload range) throws a plain `RangeError`, before anything of that op is written.
 * Strings are written as latin1: a char above U+00FF (never in a wire string) would keep only its low byte.
 */
export class FrameEncoder {
  private readonly maxFrameBytes: number;
  private readonly slabBytes: number;
  private slab: Buffer;
  /** Next free byte of the slab. */
  private pos = 0;
  /** Start of the open frame (== pos when no frame is open). */
  private frameStart = 0;
  /** Ops in the open frame; 0 means no frame is open (its header not written yet). */
  private frameOps = 0;
  /** Closed frames not yet taken: views of a slab that is never rewritten under them. */
  private done: Buffer[] = [];
  /** Ops in each frame of `done`. */
  private doneOpCounts: number[] = [];
  private doneBytes = 0;
  private doneOps = 0;

  constructor(options?: { maxFrameBytes?: number }) {
    const max = options?.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${max}`);
    }
    this.maxFrameBytes = max;
    // Room for two full frames, so a frame that straddles the end of a slab moves at most once per slab
    // (capped: a huge limit must not cost a huge slab up front; `newSlab` grows geometrically instead).
    this.slabBytes = Math.min(MAX_SLAB_BYTES, Math.max(MIN_SLAB_BYTES, 2 * (max + HEADER_BYTES)));
    this.slab = Buffer.allocUnsafe(this.slabBytes);
  }

  /** Bytes `take()` would return now, frame headers included. */
  get pendingBytes(): number {
    return this.doneBytes + (this.pos - this.frameStart);
  }

  /** Ops `take()` would return now. */
  get pendingOps(): number {
    return this.doneOps + this.frameOps;
  }

  /**
   * Complete frames, in order, each starting with the version/flags header; an empty array when nothing is
   * pending. The buffers are views of the encoder's slab, which is never written again under them: they stay
   * valid for as long as the caller needs (e.g. until the socket write completes). With `opCounts`, the
   * number of ops in each returned frame is appended to it (a sender that must account per op, e.g. for
   * ACKs, needs to know where each frame's ops end).
   */
  take(opCounts?: number[]): Buffer[] {
    if (this.frameOps > 0) this.close();
    const out = this.done;
    if (out.length === 0) return [];
    if (opCounts !== undefined) for (const n of this.doneOpCounts) opCounts.push(n);
    this.done = [];
    this.doneOpCounts = [];
    this.doneBytes = 0;
    this.doneOps = 0;
    return out;
  }

  snapshot(origin: string, epoch: number, seq: number, entries: readonly InterestEntryWire[]): void {
    checkU32(epoch, "epoch");
    checkU32(seq, "seq");
    let n = 1 + strSize(origin, "origin") + 12;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      checkU32(e.weight, "weight");
      n += strSize(e.subject, "subject") + strSize(e.queue, "queue") + 4;
    }
    let p = this.begin(n);
    const b = this.slab;
    b[p++] = OP_SNAPSHOT;
    p = putStr(b, p, origin);
    put32(b, p, epoch);
    put32(b, p + 4, seq);
    put32(b, p + 8, entries.length);
    p += 12;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      p = putStr(b, p, e.subject);
      p = putStr(b, p, e.queue);
      put32(b, p, e.weight);
      p += 4;
    }
    this.end(p);
  }

  delta(
    origin: string,
    epoch: number,
    seq: number,
    action: InterestAction,
    subject: string,
    queue: string,
    weight: number,
  ): void {
    checkU32(epoch, "epoch");
    checkU32(seq, "seq");
    checkU32(weight, "weight");
    if (action !== 1 && action !== 2 && action !== 3 && action !== 4)
      throw new RangeError(`invalid interest action ${action}`);
    const n = 1 + strSize(origin, "origin") + 9 + strSize(subject, "subject") + strSize(queue, "queue") + 4;
    let p = this.begin(n);
    const b = this.slab;
    b[p++] = OP_DELTA;
    p = putStr(b, p, origin);
    put32(b, p, epoch);
    put32(b, p + 4, seq);
    b[p + 8] = action;
    p = putStr(b, p + 9, subject);
    p = putStr(b, p, queue);
    put32(b, p, weight);
    this.end(p + 4);
  }

  resync(origin: string): void {
    const n = 1 + strSize(origin, "origin");
    let p = this.begin(n);
    const b = this.slab;
    b[p++] = OP_RESYNC;
    this.end(putStr(b, p, origin));
  }

  /** `ACK`: `count` MSG ops of this link received so far (an integer in [0, 2^53)). */
  ack(count: number): void {
    if (!(count >= 0 && Number.isSafeInteger(count))) {
      throw new RangeError(`ack count ${count} is not an integer in [0, 2^53)`);
    }
    const p = this.begin(9);
    const b = this.slab;
    b[p] = OP_ACK;
    put32(b, p + 1, Math.floor(count / TWO_POW_32));
    put32(b, p + 5, count % TWO_POW_32);
    this.end(p + 9);
  }

  topology(
    origin: string,
    epoch: number,
    seq: number,
    neighbors: readonly { region: string; rttMicros: number }[],
  ): void {
    checkU32(epoch, "epoch");
    checkU32(seq, "seq");
    checkCount(neighbors.length, "neighbors");
    let n = 1 + strSize(origin, "origin") + 10;
    for (let i = 0; i < neighbors.length; i++) {
      const nb = neighbors[i]!;
      checkU32(nb.rttMicros, "rttMicros");
      n += strSize(nb.region, "region") + 4;
    }
    let p = this.begin(n);
    const b = this.slab;
    b[p++] = OP_TOPOLOGY;
    p = putStr(b, p, origin);
    put32(b, p, epoch);
    put32(b, p + 4, seq);
    b[p + 8] = neighbors.length >>> 8;
    b[p + 9] = neighbors.length;
    p += 10;
    for (let i = 0; i < neighbors.length; i++) {
      const nb = neighbors[i]!;
      p = putStr(b, p, nb.region);
      put32(b, p, nb.rttMicros);
      p += 4;
    }
    this.end(p);
  }

  /**
   * One `MSG` op carrying `payload[payloadStart, payloadEnd)` (headers, if `hdrLen >= 0`, then body).
   * The payload is copied into the frame; nothing is allocated here.
   */
  msg(
    origin: string,
    originSeq: number,
    subject: string,
    reply: string,
    hdrLen: number,
    payload: Buffer,
    payloadStart: number,
    payloadEnd: number,
    dests: readonly { region: string; queues: readonly string[] }[],
  ): void {
    if (!(originSeq >= 0 && Number.isSafeInteger(originSeq))) {
      throw new RangeError(`originSeq ${originSeq} is not an integer in [0, 2^53)`);
    }
    if (
      payloadStart >>> 0 !== payloadStart ||
      payloadEnd >>> 0 !== payloadEnd ||
      payloadStart > payloadEnd ||
      payloadEnd > payload.length
    ) {
      throw new RangeError(
        `bad payload range [${payloadStart}, ${payloadEnd}) of a ${payload.length}-byte buffer`,
      );
    }
    const len = payloadEnd - payloadStart;
    if (hdrLen !== -1 && !(hdrLen >>> 0 === hdrLen && hdrLen <= len && hdrLen <= 0x7fff_ffff)) {
      throw new RangeError(`hdrLen ${hdrLen} is neither -1 nor within the ${len}-byte payload`);
    }
    checkCount(dests.length, "destinations");
    let n =
      1 + strSize(origin, "origin") + 8 + strSize(subject, "subject") + strSize(reply, "reply") + 8 + len + 2;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      const queues = d.queues;
      checkCount(queues.length, "queues");
      n += strSize(d.region, "region") + 2;
      for (let j = 0; j < queues.length; j++) n += strSize(queues[j]!, "queue");
    }
    let p = this.begin(n);
    const b = this.slab;
    b[p++] = OP_MSG;
    p = putStr(b, p, origin);
    put32(b, p, Math.floor(originSeq / TWO_POW_32));
    put32(b, p + 4, originSeq % TWO_POW_32);
    p = putStr(b, p + 8, subject);
    p = putStr(b, p, reply);
    put32(b, p, hdrLen);
    put32(b, p + 4, len);
    p += 8;
    const whole = payloadStart === 0 && payloadEnd === payload.length;
    if (whole && len > SHORT_WHOLE_PAYLOAD) {
      b.set(payload, p);
      p += len;
    } else if (len > SHORT_RANGE_PAYLOAD) {
      payload.copy(b, p, payloadStart, payloadEnd);
      p += len;
    } else {
      for (let k = payloadStart; k < payloadEnd; k++) b[p++] = payload[k]!;
    }
    b[p] = dests.length >>> 8;
    b[p + 1] = dests.length;
    p += 2;
    for (let i = 0; i < dests.length; i++) {
      const d = dests[i]!;
      const queues = d.queues;
      p = putStr(b, p, d.region);
      b[p] = queues.length >>> 8;
      b[p + 1] = queues.length;
      p += 2;
      for (let j = 0; j < queues.length; j++) p = putStr(b, p, queues[j]!);
    }
    this.end(p);
  }

  /**
   * Make room for an op of `n` bytes and return where to write it: closes the open frame if the op would
   * take it past the limit, and starts a frame (writes its header) if none is open.
   */
  private begin(n: number): number {
    if (this.frameOps > 0 && this.pos - this.frameStart + n > this.maxFrameBytes) this.close();
    const need = this.frameOps === 0 ? HEADER_BYTES + n : n;
    if (this.pos + need > this.slab.length) this.newSlab(need);
    if (this.frameOps === 0) {
      this.slab[this.pos] = LINK_FRAME_VERSION;
      this.slab[this.pos + 1] = 0;
      this.pos += HEADER_BYTES;
    }
    return this.pos;
  }

  /** The op just written ends at `p`. */
  private end(p: number): void {
    this.pos = p;
    this.frameOps++;
    if (p - this.frameStart >= this.maxFrameBytes) this.close();
  }

  private close(): void {
    this.done.push(this.slab.subarray(this.frameStart, this.pos));
    this.doneOpCounts.push(this.frameOps);
    this.doneBytes += this.pos - this.frameStart;
    this.doneOps += this.frameOps;
    this.frameStart = this.pos;
    this.frameOps = 0;
  }

  /**
   * Continue in a fresh slab with room for `need` more bytes, carrying the open frame over. The old slab is
   * left alone: frames already closed are views of it. An open frame that outgrows the slab size doubles its
   * room each time, so a frame larger than the slab is moved a bounded number of times overall.
   */
  private newSlab(need: number): void {
    const open = this.pos - this.frameStart;
    const size = open + need <= this.slabBytes ? this.slabBytes : open > 0 ? 2 * (open + need) : need;
    const slab = Buffer.allocUnsafe(size);
    if (open > 0) this.slab.copy(slab, 0, this.frameStart, this.pos);
    this.slab = slab;
    this.frameStart = 0;
    this.pos = open;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/** Minimum wire size of one list item, used to reject counts the remaining bytes cannot hold. */
const MIN_ENTRY = 2 + 2 + 4;
const MIN_NEIGHBOR = 2 + 4;
const MIN_DEST = 2 + 2;
const MIN_QUEUE = 2;

/** Strings up to this many bytes go through the intern cache. */
const INTERN_MAX = 32;
const INTERN_SLOTS = 4096;
/** Direct-mapped cache of recently decoded short strings, indexed by a hash of their bytes. */
const interned: string[] = new Array<string>(INTERN_SLOTS).fill("");

/**
 * `b.toString("latin1", start, start + n)`, except that a short string equal to one decoded recently is
 * returned from a small cache instead of being allocated again. Region names, origins, queue names and most
 * subjects repeat on every message; hashing and comparing a few bytes is several times cheaper than creating
 * the string. A miss costs one hash more than a plain read; a peer flooding it with distinct strings only
 * slows itself down (the cache is fixed-size).
 */
function latin1(b: Buffer, start: number, n: number): string {
  if (n > INTERN_MAX) return b.toString("latin1", start, start + n);
  const end = start + n;
  let h = n;
  for (let k = start; k < end; k++) h = Math.imul(h ^ b[k]!, 0x0100_0193);
  const slot = (h ^ (h >>> 16)) & (INTERN_SLOTS - 1);
  const cached = interned[slot]!;
  if (cached.length === n) {
    let k = 0;
    while (k < n && cached.charCodeAt(k) === b[start + k]) k++;
    if (k === n) return cached;
  }
  const s = b.toString("latin1", start, end);
  interned[slot] = s;
  return s;
}

/** Read position in one frame plus what is being decoded, for error messages. */
class Cursor {
  p = 0;
  /** Name of the op being decoded and where it starts. */
  op = "frame header";
  at = 0;

  constructor(readonly b: Buffer) {}

  fail(what: string): never {
    throw new FrameError(
      `${this.op} at offset ${this.at}: ${what} (frame is ${this.b.length} bytes)`,
      this.at,
    );
  }

  /** Fails unless `n` more bytes of field `what` are there. */
  need(n: number, what: string): void {
    if (this.p + n > this.b.length) {
      this.fail(`${what} (${n} byte${n === 1 ? "" : "s"}) at byte ${this.p} runs past end of frame`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.b[this.p++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const b = this.b;
    const p = this.p;
    this.p = p + 2;
    return (b[p]! << 8) | b[p + 1]!;
  }

  u32(what: string): number {
    this.need(4, what);
    const b = this.b;
    const p = this.p;
    this.p = p + 4;
    return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  i32(what: string): number {
    this.need(4, what);
    const b = this.b;
    const p = this.p;
    this.p = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /** A `u16 length + bytes` string. */
  str(what: string): string {
    const b = this.b;
    const at = this.p;
    if (at + 2 > b.length) this.fail(`${what} length (2 bytes) at byte ${at} runs past end of frame`);
    const n = (b[at]! << 8) | b[at + 1]!;
    const start = at + 2;
    if (start + n > b.length) this.fail(`${what} length ${n} at byte ${at} runs past end of frame`);
    this.p = start + n;
    return n === 0 ? "" : latin1(b, start, n);
  }

  /** Fails unless `count` items of at least `min` bytes each fit in what is left of the frame. */
  fits(count: number, min: number, what: string, countAt: number): void {
    const left = this.b.length - this.p;
    if (count * min > left) {
      this.fail(
        `${what} count ${count} at byte ${countAt} needs at least ${count * min} bytes but only ${left} remain`,
      );
    }
  }
}

function decodeSnapshot(c: Cursor): LinkOp {
  const origin = c.str("origin");
  const epoch = c.u32("epoch");
  const seq = c.u32("seq");
  const countAt = c.p;
  const count = c.u32("entry count");
  c.fits(count, MIN_ENTRY, "entry", countAt);
  const entries: InterestEntryWire[] = [];
  for (let i = 0; i < count; i++) {
    const subject = c.str("entry subject");
    const queue = c.str("entry queue");
    const weight = c.u32("entry weight");
    entries.push({ subject, queue, weight });
  }
  return { type: "snapshot", origin, epoch, seq, entries };
}

function decodeDelta(c: Cursor): LinkOp {
  const origin = c.str("origin");
  const epoch = c.u32("epoch");
  const seq = c.u32("seq");
  const action = c.u8("action");
  if (action !== 1 && action !== 2 && action !== 3 && action !== 4) {
    c.fail(`invalid action ${action} at byte ${c.p - 1} (expected 1 add, 2 update, 3 remove or 4 skip)`);
  }
  const subject = c.str("subject");
  const queue = c.str("queue");
  const weight = c.u32("weight");
  return { type: "delta", origin, epoch, seq, action, subject, queue, weight };
}

function decodeResync(c: Cursor): LinkOp {
  return { type: "resync", origin: c.str("origin") };
}

function decodeTopology(c: Cursor): LinkOp {
  const origin = c.str("origin");
  const epoch = c.u32("epoch");
  const seq = c.u32("seq");
  const countAt = c.p;
  const count = c.u16("neighbor count");
  c.fits(count, MIN_NEIGHBOR, "neighbor", countAt);
  const neighbors: { region: string; rttMicros: number }[] = [];
  for (let i = 0; i < count; i++) {
    const region = c.str("neighbor region");
    const rttMicros = c.u32("neighbor rttMicros");
    neighbors.push({ region, rttMicros });
  }
  return { type: "topology", origin, epoch, seq, neighbors };
}

function decodeMsg(c: Cursor): LinkOp {
  const origin = c.str("origin");
  const hiAt = c.p;
  const hi = c.u32("originSeq");
  if (hi >= ORIGIN_SEQ_HI_LIMIT) c.fail(`originSeq high word ${hi} at byte ${hiAt} puts it past 2^53`);
  const originSeq = hi * TWO_POW_32 + c.u32("originSeq");
  const subject = c.str("subject");
  const reply = c.str("reply");
  const hdrAt = c.p;
  const hdrLen = c.i32("hdrLen");
  const lenAt = c.p;
  const len = c.u32("payload length");
  const start = c.p;
  if (start + len > c.b.length) c.fail(`payload length ${len} at byte ${lenAt} runs past end of frame`);
  if (hdrLen < -1 || hdrLen > len) {
    c.fail(`hdrLen ${hdrLen} at byte ${hdrAt} is neither -1 nor within the ${len}-byte payload`);
  }
  c.p = start + len;
  const countAt = c.p;
  const count = c.u16("destination count");
  c.fits(count, MIN_DEST, "destination", countAt);
  const dests: { region: string; queues: string[] }[] = [];
  for (let i = 0; i < count; i++) {
    const region = c.str("destination region");
    const qAt = c.p;
    const qCount = c.u16("queue count");
    c.fits(qCount, MIN_QUEUE, "queue", qAt);
    const queues: string[] = [];
    for (let j = 0; j < qCount; j++) queues.push(c.str("queue"));
    dests.push({ region, queues });
  }
  // The view is made last: a malformed op allocates as little as possible before failing.
  const payload = c.b.subarray(start, start + len);
  return { type: "msg", origin, originSeq, subject, reply, hdrLen, payload, dests };
}

function decodeAck(c: Cursor): LinkOp {
  const hiAt = c.p;
  const hi = c.u32("count");
  if (hi >= ORIGIN_SEQ_HI_LIMIT) c.fail(`count high word ${hi} at byte ${hiAt} puts it past 2^53`);
  return { type: "ack", count: hi * TWO_POW_32 + c.u32("count") };
}

function decodeOp(c: Cursor): LinkOp {
  const at = c.p;
  const type = c.b[at]!;
  c.at = at;
  c.p = at + 1;
  switch (type) {
    case OP_MSG:
      c.op = "MSG";
      return decodeMsg(c);
    case OP_DELTA:
      c.op = "INTEREST_DELTA";
      return decodeDelta(c);
    case OP_SNAPSHOT:
      c.op = "INTEREST_SNAPSHOT";
      return decodeSnapshot(c);
    case OP_RESYNC:
      c.op = "RESYNC_REQUEST";
      return decodeResync(c);
    case OP_TOPOLOGY:
      c.op = "TOPOLOGY";
      return decodeTopology(c);
    case OP_ACK:
      c.op = "ACK";
      return decodeAck(c);
    default:
      c.op = "op";
      return c.fail(`unknown op type 0x${type.toString(16).padStart(2, "0")}`);
  }
}

function openFrame(frame: Buffer): Cursor {
  const c = new Cursor(frame);
  if (frame.length < HEADER_BYTES) c.fail(`shorter than the ${HEADER_BYTES}-byte header`);
  const version = frame[0]!;
  if (version !== LINK_FRAME_VERSION) {
    c.fail(`unsupported frame version ${version} (this side speaks ${LINK_FRAME_VERSION})`);
  }
  const flags = frame[1]!;
  if (flags !== 0) {
    c.at = 1;
    c.fail(`unsupported flags 0x${flags.toString(16).padStart(2, "0")} (v1 defines none)`);
  }
  c.p = HEADER_BYTES;
  return c;
}

/** Decode one frame; throws `FrameError` (and nothing else) on any malformed input. Payloads are views. */
export function decodeFrame(frame: Buffer): LinkOp[] {
  const c = openFrame(frame);
  const ops: LinkOp[] = [];
  const end = frame.length;
  while (c.p < end) ops.push(decodeOp(c));
  return ops;
}

/** Reused by `decodeFrameInto`; `scratchInUse` covers a handler that decodes another frame itself. */
const scratch: LinkOp[] = [];
let scratchInUse = false;

/**
 * Visitor variant for the hot path: calls `handler` per op, in order, without allocating an array. `payload`
 * is a view into `frame`. The frame is decoded whole (into a list reused from call to call) before the
 * first call, so a malformed frame is rejected whole: the handler sees all of its ops or none. An exception
 * thrown by the handler propagates as is; the ops after it are not delivered.
 */
export function decodeFrameInto(frame: Buffer, handler: (op: LinkOp) => void): void {
  const c = openFrame(frame);
  const own = !scratchInUse;
  const ops = own ? scratch : [];
  scratchInUse = true;
  try {
    const end = frame.length;
    while (c.p < end) ops.push(decodeOp(c));
    for (let i = 0; i < ops.length; i++) handler(ops[i]!);
  } finally {
    ops.length = 0;
    if (own) scratchInUse = false;
  }
}
