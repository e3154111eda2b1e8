/**
 * A connection's outbound bytes, coalesced: everything produced while handling one read is written to
 * the socket in one go (one syscall per flush, not one per message).
 *
 * Bytes go into a slab; a flush hands the socket a view of the slab's unflushed part and keeps writing
 * after it, so the slab is never rewritten under a pending socket write and small flushes cost no
 * allocation. Large payloads are queued by reference instead of being copied.
 */

const SLAB_SIZE = 64 * 1024;
/** Payloads at least this big are queued by reference rather than copied into the slab. */
const ZERO_COPY_MIN = 16 * 1024;

export class Outbound {
  private slab: Buffer = Buffer.allocUnsafe(SLAB_SIZE);
  private pos = 0;
  /** First byte of the slab not yet handed to the socket. */
  private start = 0;
  private queued: Buffer[] = [];
  /** Bytes written here and not yet taken by a flush. */
  pending = 0;

  /** Make room for `n` more contiguous bytes in the slab. */
  private reserve(n: number): Buffer {
    if (this.pos + n > this.slab.length) {
      if (this.pos > this.start) this.queued.push(this.slab.subarray(this.start, this.pos));
      this.slab = Buffer.allocUnsafe(Math.max(n, SLAB_SIZE));
      this.pos = 0;
      this.start = 0;
    }
    return this.slab;
  }

  /** Write a latin1 wire string (subjects, sids: one byte per char). */
  ascii(s: string): void {
    const n = s.length;
    const slab = this.reserve(n);
    slab.write(s, this.pos, n, "latin1");
    this.pos += n;
    this.pending += n;
  }

  /** Write a non-negative integer (below 2^31) in decimal. */
  int(v: number): void {
    const slab = this.reserve(16);
    const p = putInt(slab, this.pos, v);
    this.pending += p - this.pos;
    this.pos = p;
  }

  byte(b: number): void {
    const slab = this.reserve(1);
    slab[this.pos++] = b;
    this.pending++;
  }

  crlf(): void {
    const slab = this.reserve(2);
    slab[this.pos++] = 0x0d;
    slab[this.pos++] = 0x0a;
    this.pending += 2;
  }

  bytes(b: Buffer): void {
    const n = b.length;
    if (n >= ZERO_COPY_MIN) {
      if (this.pos > this.start) {
        this.queued.push(this.slab.subarray(this.start, this.pos));
        this.start = this.pos;
      }
      this.queued.push(b);
    } else {
      const slab = this.reserve(n);
      b.copy(slab, this.pos);
      this.pos += n;
    }
    this.pending += n;
  }

  /**
   * Encode one `MSG <subject> <sid> [reply] <size>` (or HMSG with `hdr` >= 0) frame with its payload
   * `src[start, end)`. `sidBytes` is ` <sid> `. One reservation, no allocation for small payloads: this is
   * the broker's innermost loop.
   */
  msg(
    subject: string,
    sidBytes: Buffer,
    reply: string | undefined,
    hdr: number,
    src: Buffer,
    start: number,
    end: number,
  ): void {
    const len = end - start;
    const big = len >= ZERO_COPY_MIN;
    const need =
      6 +
      subject.length +
      sidBytes.length +
      (reply === undefined ? 0 : reply.length + 1) +
      24 +
      (big ? 0 : len + 2);
    const slab = this.reserve(need);
    const p0 = this.pos;
    let p = p0;
    if (hdr >= 0) slab[p++] = 0x48; // H
    slab[p++] = 0x4d; // M
    slab[p++] = 0x53; // S
    slab[p++] = 0x47; // G
    slab[p++] = 0x20;
    p = putLatin1(slab, p, subject);
    for (let k = 0; k < sidBytes.length; k++) slab[p++] = sidBytes[k]!;
    if (reply !== undefined) {
      p = putLatin1(slab, p, reply);
      slab[p++] = 0x20;
    }
    if (hdr >= 0) {
      p = putInt(slab, p, hdr);
      slab[p++] = 0x20;
    }
    p = putInt(slab, p, len);
    slab[p++] = 0x0d;
    slab[p++] = 0x0a;
    if (big) {
      this.pos = p;
      this.pending += p - p0;
      this.bytes(src.subarray(start, end));
      this.crlf();
      return;
    }
    if (len <= 64) {
      for (let k = start; k < end; k++) slab[p++] = src[k]!;
    } else {
      src.copy(slab, p, start, end);
      p += len;
    }
    slab[p++] = 0x0d;
    slab[p++] = 0x0a;
    this.pending += p - p0;
    this.pos = p;
  }

  /** Everything written since the last take, in order; the caller hands it to the socket. */
  take(): Buffer[] {
    if (this.pos > this.start) {
      this.queued.push(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
    }
    const out = this.queued;
    this.queued = [];
    this.pending = 0;
    return out;
  }

  /** Drop everything not yet taken (the connection is gone). */
  discard(): void {
    this.queued = [];
    this.start = this.pos;
    this.pending = 0;
  }
}

/** Write a latin1 wire string; short ones byte by byte, which beats a call into the buffer binding. */
function putLatin1(buf: Buffer, p: number, s: string): number {
  const n = s.length;
  if (n > 48) return p + buf.write(s, p, n, "latin1");
  for (let k = 0; k < n; k++) buf[p++] = s.charCodeAt(k);
  return p;
}

function putInt(buf: Buffer, p: number, v: number): number {
  if (v < 10) {
    buf[p] = 0x30 + v;
    return p + 1;
  }
  let digits = 0;
  for (let t = v; t > 0; t = (t / 10) | 0) digits++;
  let q = p + digits - 1;
  for (let t = v; t > 0; t = (t / 10) | 0) buf[q--] = 0x30 + (t % 10);
  return p + digits;
}
