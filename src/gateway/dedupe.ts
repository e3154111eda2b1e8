/**
 * Duplicate detection for messages arriving from other regions, by (origin, origin sequence).
 *
 * A frame sent just before a link died may have arrived although its ACK did not: the sender replays it
 * (over the new link or another path) and it arrives twice. Each origin numbers its messages 1, 2, 3, …
 * per run (epoch); a region sees a sparse, mostly increasing subset. Per origin we keep the highest
 * sequence seen and a bitmap of the `WINDOW` sequences below it: a sequence in the window is a duplicate iff
 * its bit is set. Memory is fixed per origin (WINDOW / 8 bytes) whatever the traffic.
 *
 * A sequence older than the window cannot be judged; it is accepted and counted (`tooOld`), never silently
 * dropped: losing a message is worse than a duplicate nobody can prove. Within the window the answer is
 * exact. A new epoch of an origin (it restarted and numbers from 1 again) resets its window.
 */

/** Sequences remembered per origin: 2^18 = 262,144 (32 KiB of bitmap). */
export const DEDUPE_WINDOW = 1 << 18;

class OriginWindow {
  readonly bits: Uint32Array;
  private readonly mask: number;
  /** Highest sequence seen; 0 = none yet. */
  high = 0;

  constructor(
    readonly epoch: number,
    private readonly size: number,
  ) {
    this.bits = new Uint32Array(Math.max(1, size >>> 5));
    this.mask = size - 1;
  }

  private test(seq: number): boolean {
    const i = seq & this.mask;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private set(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private clear(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** "new", "duplicate" or "tooOld" (older than the window: accepted, unjudged). */
  check(seq: number): "new" | "duplicate" | "tooOld" {
    if (seq > this.high) {
      // Slide: the bits of the sequences that leave the window are reused by the ones entering it.
      if (seq - this.high >= this.size) this.bits.fill(0);
      else for (let s = this.high + 1; s < seq; s++) this.clear(s);
      this.high = seq;
      this.set(seq);
      return "new";
    }
    if (seq <= this.high - this.size) return "tooOld";
    if (this.test(seq)) return "duplicate";
    this.set(seq);
    return "new";
  }
}

export class Deduper {
  private readonly windows = new Map<string, OriginWindow>();
  duplicates = 0;
  tooOld = 0;

  /** `window`: sequences remembered per origin, a power of two of at least 32 (smaller only in tests). */
  constructor(private readonly window: number = DEDUPE_WINDOW) {
    if (!(window >= 32 && (window & (window - 1)) === 0)) {
      throw new RangeError(`dedupe window ${window} is not a power of two >= 32`);
    }
  }

  /**
   * Whether the message `(origin, epoch, seq)` should be delivered: false only for a proven duplicate.
   * `epoch` is the origin's current run as this region knows it (its topology advertisement).
   */
  accept(origin: string, epoch: number, seq: number): boolean {
    let w = this.windows.get(origin);
    if (w === undefined || w.epoch !== epoch) {
      w = new OriginWindow(epoch, this.window);
      this.windows.set(origin, w);
    }
    const r = w.check(seq);
    if (r === "duplicate") {
      this.duplicates++;
      return false;
    }
    if (r === "tooOld") this.tooOld++;
    return true;
  }

  /** Forget an origin (gone for good). */
  forget(origin: string): void {
    this.windows.delete(origin);
  }
}
