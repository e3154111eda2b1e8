/**
 * Store-and-forward for one destination region: messages that matched its interest but cannot be sent
 * towards it now (no path, or the next hop's link is saturated) wait here, in order, within bounds on
 * bytes, count and age. Beyond the bounds a drop policy sheds the oldest or the newest; every message that
 * leaves without being sent is reported to `onDrop` with its reason, so drops are counted, never silent.
 *
 * Invariants: `bytes` and `length` always equal the sums over the entries held; entries are in arrival
 * order; `enqueuedAt` never decreases along the queue (the clock is read by the caller, monotonic).
 */

/** Why a message left an outbox without being sent. */
export type DropReason = "overflow" | "expired" | "no_interest" | "filtered";

export const DROP_REASONS: readonly DropReason[] = ["overflow", "expired", "no_interest", "filtered"];

export interface OutboxLimits {
  /** Payload + subject bytes held at most. */
  readonly maxBytes: number;
  readonly maxMessages: number;
  /** How long a message may wait (ms). */
  readonly maxAgeMs: number;
  /** Which message goes when a new one would exceed a bound. */
  readonly drop: "oldest" | "newest";
}

/** Defaults sized for outages of tens of seconds at thousands of messages per second. */
export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxMessages: 1_000_000,
  maxAgeMs: 60_000,
  drop: "oldest",
});

/** One parked message, for one destination region. The payload is an owned copy. */
export interface ParkedMsg {
  readonly origin: string;
  readonly originSeq: number;
  readonly subject: string;
  readonly reply: string;
  readonly hdrLen: number;
  readonly payload: Buffer;
  /** Queue groups the destination must serve. */
  readonly queues: readonly string[];
  /** When it was parked (ms, monotonic clock). */
  readonly enqueuedAt: number;
}

/** What a parked message costs against `maxBytes`: its payload, subject and reply, plus a fixed overhead. */
export function parkedSize(m: Pick<ParkedMsg, "payload" | "subject" | "reply">): number {
  return m.payload.length + m.subject.length + m.reply.length + ENTRY_OVERHEAD;
}

/** Rough per-entry bookkeeping (object, array slot), so a flood of empty messages is bounded too. */
const ENTRY_OVERHEAD = 64;

export type DropListener = (reason: DropReason, msg: ParkedMsg) => void;

export class Outbox {
  private queue: (ParkedMsg | undefined)[] = [];
  /** Index of the first live entry in `queue`. */
  private head = 0;
  private _bytes = 0;

  constructor(
    readonly destination: string,
    private limits: OutboxLimits,
    private readonly onDrop: DropListener,
  ) {}

  get length(): number {
    return this.queue.length - this.head;
  }

  get bytes(): number {
    return this._bytes;
  }

  /** Enqueue time of the oldest message, or undefined when empty. */
  get oldestAt(): number | undefined {
    return this.queue[this.head]?.enqueuedAt;
  }

  setLimits(limits: OutboxLimits): void {
    this.limits = limits;
    this.enforce();
  }

  /**
   * Park `m`. With `drop: "newest"` a message that does not fit is refused (dropped as overflow) and false is
   * returned; with `"oldest"` the oldest messages make room. A message bigger than `maxBytes` alone never fits.
   */
  push(m: ParkedMsg): boolean {
    const size = parkedSize(m);
    const { maxBytes, maxMessages, drop } = this.limits;
    if (size > maxBytes || maxMessages <= 0) {
      this.onDrop("overflow", m);
      return false;
    }
    if (drop === "newest" && (this.length + 1 > maxMessages || this._bytes + size > maxBytes)) {
      this.onDrop("overflow", m);
      return false;
    }
    while (this.length > 0 && (this.length + 1 > maxMessages || this._bytes + size > maxBytes)) {
      this.onDrop("overflow", this.take()!);
    }
    this.queue.push(m);
    this._bytes += size;
    return true;
  }

  /** The oldest message, still queued. */
  peek(): ParkedMsg | undefined {
    return this.queue[this.head];
  }

  /** Remove and return the oldest message. */
  take(): ParkedMsg | undefined {
    const m = this.queue[this.head];
    if (m === undefined) return undefined;
    this.queue[this.head] = undefined;
    this.head++;
    this._bytes -= parkedSize(m);
    // Compact once the dead prefix dominates, so the array does not grow with total traffic.
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return m;
  }

  /** Drop messages older than `maxAgeMs` at `now`; returns how many went. */
  expire(now: number): number {
    let n = 0;
    const limit = now - this.limits.maxAgeMs;
    for (let m = this.peek(); m !== undefined && m.enqueuedAt <= limit; m = this.peek()) {
      this.onDrop("expired", this.take()!);
      n++;
    }
    return n;
  }

  /** Drop everything with `reason` (the destination's interest is gone for good, or a filter now refuses). */
  clear(reason: DropReason): number {
    let n = 0;
    for (let m = this.take(); m !== undefined; m = this.take()) {
      this.onDrop(reason, m);
      n++;
    }
    return n;
  }

  /** Apply lowered limits to what is already held. */
  private enforce(): void {
    const { maxBytes, maxMessages, drop } = this.limits;
    if (drop === "oldest") {
      while (this.length > 0 && (this.length > maxMessages || this._bytes > maxBytes)) {
        this.onDrop("overflow", this.take()!);
      }
      return;
    }
    // "newest": the most recent arrivals are the ones given up.
    while (this.length > 0 && (this.length > maxMessages || this._bytes > maxBytes)) {
      const m = this.queue.pop()!;
      this._bytes -= parkedSize(m);
      this.onDrop("overflow", m);
    }
  }
}
