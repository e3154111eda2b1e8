/**
 * Store-and-forward for one destination region: messages that matched its interest but cannot be sent
 * towards it now (no path, or the next hop's link is saturated) wait here, in order, within bounds on
 * bytes, count and age. Beyond the bounds a drop policy sheds the oldest or the newest; every message that
 * leaves without being sent is reported to `onDrop` with its reason, so drops are counted, never silent.
 *
 * Invariants: `bytes` and `length` always equal the sums over the entries held; entries are in arrival
 * order; `enqueuedAt` never decreases along the queue (the clock is read by the caller, monotonic).
 */

/**
 * Why a message left an outbox without being sent. `unconfirmed`: it may have been delivered to the
 * destination's previous run, which restarted since; it is not replayed to the new run (no duplicates).
 */
export type DropReason = "overflow" | "expired" | "no_interest" | "filtered" | "unconfirmed";

export const DROP_REASONS: readonly DropReason[] = [
  "overflow",
  "expired",
  "no_interest",
  "filtered",
  "unconfirmed",
];

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
  /**
   * Written to a link that died before the peer acknowledged it: it may have been delivered. Such messages
   * are never shed by the size bounds (dedupe settles them at replay, and the flow-control window bounds
   * them), so a drop counted as `overflow` is always a message that was not delivered.
   */
  readonly unconfirmed?: boolean;
  /** For an unconfirmed message: the destination's epoch (run) when it was written. */
  readonly destEpoch?: number | undefined;
}

/** What a parked message costs against `maxBytes`: its payload, subject and reply, plus a fixed overhead. */
export function parkedSize(m: Pick<ParkedMsg, "payload" | "subject" | "reply">): number {
  return m.payload.length + m.subject.length + m.reply.length + ENTRY_OVERHEAD;
}

/** Rough per-entry bookkeeping (object, array slot), so a flood of empty messages is bounded too. */
const ENTRY_OVERHEAD = 64;

export type DropListener = (reason: DropReason, msg: ParkedMsg) => void;

export class Outbox {
  /** Messages that may have been delivered (see ParkedMsg.unconfirmed): older than any other, replayed first. */
  private readonly unconfirmed = new Deque();
  private readonly confirmed = new Deque();
  private _bytes = 0;

  constructor(
    readonly destination: string,
    private limits: OutboxLimits,
    private readonly onDrop: DropListener,
  ) {}

  get length(): number {
    return this.unconfirmed.length + this.confirmed.length;
  }

  get bytes(): number {
    return this._bytes;
  }

  /** Enqueue time of the oldest message, or undefined when empty. */
  get oldestAt(): number | undefined {
    return this.peek()?.enqueuedAt;
  }

  setLimits(limits: OutboxLimits): void {
    this.limits = limits;
    this.enforce();
  }

  /**
   * Park `m`. With `drop: "newest"` a message that does not fit is refused (dropped as overflow) and false is
   * returned; with `"oldest"` the oldest messages make room. A message bigger than `maxBytes` alone never
   * fits. An unconfirmed message is always taken (it may only push others out).
   */
  push(m: ParkedMsg): boolean {
    const size = parkedSize(m);
    const { maxBytes, maxMessages, drop } = this.limits;
    const over = () => this.length + 1 > maxMessages || this._bytes + size > maxBytes;
    if (m.unconfirmed === true) {
      if (drop === "oldest") while (this.confirmed.length > 0 && over()) this.shed(this.confirmed.shift()!);
      this.unconfirmed.push(m);
      this._bytes += size;
      return true;
    }
    if (size > maxBytes || maxMessages <= 0) {
      this.onDrop("overflow", m);
      return false;
    }
    if (drop === "oldest") while (this.confirmed.length > 0 && over()) this.shed(this.confirmed.shift()!);
    if (over()) {
      this.onDrop("overflow", m);
      return false;
    }
    this.confirmed.push(m);
    this._bytes += size;
    return true;
  }

  /** The oldest message, still queued. */
  peek(): ParkedMsg | undefined {
    return this.unconfirmed.peek() ?? this.confirmed.peek();
  }

  /** Remove and return the oldest message. */
  take(): ParkedMsg | undefined {
    const m = this.unconfirmed.length > 0 ? this.unconfirmed.shift() : this.confirmed.shift();
    if (m !== undefined) this._bytes -= parkedSize(m);
    return m;
  }

  /** Drop messages older than `maxAgeMs` at `now`; returns how many went. */
  expire(now: number): number {
    let n = 0;
    const limit = now - this.limits.maxAgeMs;
    for (const q of [this.unconfirmed, this.confirmed]) {
      for (let m = q.peek(); m !== undefined && m.enqueuedAt <= limit; m = q.peek()) {
        q.shift();
        this._bytes -= parkedSize(m);
        this.onDrop("expired", m);
        n++;
      }
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

  private shed(m: ParkedMsg): void {
    this._bytes -= parkedSize(m);
    this.onDrop("overflow", m);
  }

  /** Apply lowered limits to what is already held (confirmed messages only, per the drop policy). */
  private enforce(): void {
    const { maxBytes, maxMessages, drop } = this.limits;
    const over = () => this.length > maxMessages || this._bytes > maxBytes;
    while (this.confirmed.length > 0 && over()) {
      this.shed(drop === "oldest" ? this.confirmed.shift()! : this.confirmed.pop()!);
    }
  }
}

/** A FIFO with O(1) amortized shift that reclaims its dead prefix. */
class Deque {
  private items: (ParkedMsg | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(m: ParkedMsg): void {
    this.items.push(m);
  }

  peek(): ParkedMsg | undefined {
    return this.items[this.head];
  }

  shift(): ParkedMsg | undefined {
    const m = this.items[this.head];
    if (m === undefined) return undefined;
    this.items[this.head] = undefined;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return m;
  }

  pop(): ParkedMsg | undefined {
    if (this.length === 0) return undefined;
    const m = this.items.pop();
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return m;
  }
}
