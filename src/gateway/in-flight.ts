/**
 * Data frames sent on one link and not yet acknowledged by the peer, so that a link that dies does not take
 * them along: whatever the peer has not ACKed is decoded again and re-routed (another path, or the outbox).
 *
 * The peer ACKs a cumulative count of MSG ops received on the link. Frames are kept whole (they are views of
 * the encoder's slab, which is never rewritten under them), each with the cumulative op count at its end, so
 * an ACK releases every frame it covers completely; a frame covered in part stays, and `unacked()` tells
 * the caller how many of its first ops to skip.
 */
export interface UnackedFrame {
  readonly frame: Buffer;
  /** MSG ops of this frame the peer has already acknowledged (skip them on replay). */
  readonly skipOps: number;
}

interface Entry {
  readonly frame: Buffer;
  /** Cumulative op count after this frame. */
  readonly endCount: number;
  readonly ops: number;
}

export class InFlight {
  private entries: Entry[] = [];
  private head = 0;
  /** Ops handed to `add` so far (the link's cumulative MSG count). */
  private sent = 0;
  private acked = 0;
  private _bytes = 0;

  /** Bytes of frames not fully acknowledged. */
  get bytes(): number {
    return this._bytes;
  }

  /** MSG ops sent and not yet acknowledged. */
  get unackedOps(): number {
    return this.sent - this.acked;
  }

  /** A frame of `ops` MSG ops was handed to the link. */
  add(frame: Buffer, ops: number): void {
    this.sent += ops;
    this.entries.push({ frame, endCount: this.sent, ops });
    this._bytes += frame.length;
  }

  /**
   * The peer has received `count` MSG ops in total. Returns false for a count beyond what was sent (a
   * broken peer; the caller closes the link) and ignores one below the last (ACKs may be reordered by
   * nothing here, but a stale one is harmless).
   */
  ack(count: number): boolean {
    if (count > this.sent) return false;
    if (count <= this.acked) return true;
    this.acked = count;
    while (this.head < this.entries.length && this.entries[this.head]!.endCount <= count) {
      this._bytes -= this.entries[this.head]!.frame.length;
      this.head++;
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head >= 256 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** Frames the peer has not fully acknowledged, oldest first; empties the buffer. */
  unacked(): UnackedFrame[] {
    const out: UnackedFrame[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const start = e.endCount - e.ops;
      out.push({ frame: e.frame, skipOps: Math.max(0, this.acked - start) });
    }
    this.entries = [];
    this.head = 0;
    this._bytes = 0;
    return out;
  }
}
