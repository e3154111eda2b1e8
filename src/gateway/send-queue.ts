/**
 * The data waiting to go out on one link: encoded MSG frames, in order, held while the link is saturated
 * (too much unacknowledged, or the socket's own buffer full) and released as it drains. This is the
 * link's outbox for backpressure: bounded by the link's outbox limits (bytes, messages, age), shedding per
 * its drop policy beyond them, every message shed reported with its reason.
 *
 * Frames are kept encoded (a frame holds hundreds of messages as one Buffer), so holding a backlog costs
 * memory proportional to the bytes and nothing per message. Whole frames are the unit of shedding: a frame
 * dropped reports the number of messages it held.
 *
 * Invariants: `bytes` / `messages` are the sums over the frames held; frames are in encode order.
 */
import type { DropReason, OutboxLimits } from "./outbox.js";

interface Queued {
  readonly frame: Buffer;
  readonly ops: number;
  /** When it was queued (ms, monotonic clock). */
  readonly at: number;
}

export type FrameDropListener = (reason: DropReason, frame: Buffer, ops: number) => void;

export class SendQueue {
  private queue: Queued[] = [];
  private head = 0;
  private _bytes = 0;
  private _messages = 0;

  constructor(
    private limits: OutboxLimits,
    private readonly onDrop: FrameDropListener,
  ) {}

  get bytes(): number {
    return this._bytes;
  }

  get messages(): number {
    return this._messages;
  }

  get frames(): number {
    return this.queue.length - this.head;
  }

  /** Queue time of the oldest frame, or undefined when empty. */
  get oldestAt(): number | undefined {
    return this.queue[this.head]?.at;
  }

  setLimits(limits: OutboxLimits, now: number): void {
    this.limits = limits;
    this.enforce(now);
  }

  /** Queue a frame of `ops` messages; then apply the bounds (which may shed it or older frames). */
  push(frame: Buffer, ops: number, now: number): void {
    this.queue.push({ frame, ops, at: now });
    this._bytes += frame.length;
    this._messages += ops;
    this.enforce(now);
  }

  /** The oldest frame, removed. */
  shift(): { frame: Buffer; ops: number } | undefined {
    const q = this.queue[this.head];
    if (q === undefined) return undefined;
    this.head++;
    this._bytes -= q.frame.length;
    this._messages -= q.ops;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 256 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return q;
  }

  /** Everything held, oldest first; the queue is left empty (the link died: the caller re-routes it). */
  takeAll(): { frame: Buffer; ops: number }[] {
    const out = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this._bytes = 0;
    this._messages = 0;
    return out;
  }

  /** Shed frames older than the age bound, then whatever exceeds the size bounds, per the drop policy. */
  enforce(now: number): void {
    const { maxBytes, maxMessages, maxAgeMs, drop } = this.limits;
    for (
      let q = this.queue[this.head];
      q !== undefined && q.at <= now - maxAgeMs;
      q = this.queue[this.head]
    ) {
      this.shift();
      this.onDrop("expired", q.frame, q.ops);
    }
    while (this.frames > 0 && (this._bytes > maxBytes || this._messages > maxMessages)) {
      if (drop === "oldest") {
        const q = this.shift()!;
        this.onDrop("overflow", q.frame, q.ops);
      } else {
        // "newest": the latest arrivals give way, so what was accepted first still goes out.
        const q = this.queue.pop()!;
        this._bytes -= q.frame.length;
        this._messages -= q.ops;
        this.onDrop("overflow", q.frame, q.ops);
      }
    }
  }
}
