/**
 * Counts delivered `MSG` frames of a single subscription without parsing them one by one.
 *
 * Every frame `MSG <subject> <sid> <size>\r\n<payload>\r\n` has the same length in the benchmark, so after
 * parsing the first MSG header the counter only jumps `frameLen` bytes per message, checking that the
 * frame starts with `M` and (when it lies within one chunk) ends with CRLF. Anything else at a frame
 * boundary — PING, PONG, INFO, +OK, -ERR, or a MSG header split across chunks — goes through the slow path,
 * which parses one line. So a PING in the middle of the stream never throws the count off, and a frame
 * that does not match the learned length is reported as an error instead of being miscounted.
 *
 * The benchmark sends identical messages, so every frame must be byte-for-byte the first one. Comparing
 * every frame would cost a native call per message; instead the first whole frame of every chunk is
 * compared with the first frame seen (`framesCompared` counts them) — one comparison per ~64 KiB read.
 */
export interface CounterHandlers {
  onPing(): void;
  onPong(): void;
  onInfo(): void;
  onErr(message: string): void;
}

export class MsgCounter {
  /** Complete MSG frames seen. */
  count = 0;
  /** Length of one MSG frame in bytes, learned from the first MSG header (0 = not yet). */
  frameLen = 0;
  /** Bytes still to skip of the frame in progress. */
  private remaining = 0;
  /** A control line (or MSG header) split across chunks. */
  private carry: Buffer | undefined;
  /** The first complete MSG frame, once seen whole within one chunk. */
  private reference: Buffer | undefined;
  /** Frames compared byte for byte with {@link reference}. */
  framesCompared = 0;

  /**
   * `varyingPayloads`: payloads differ from message to message (only their length is fixed), so only the
   * MSG header line of each compared frame must match the first one.
   */
  constructor(
    private readonly h: CounterHandlers,
    private readonly varyingPayloads = false,
  ) {}

  /**
   * Forget everything counted and learned (frame length, reference frame): for a subscriber that first
   * counted probe messages of another subject. Call it between reads, never from a handler inside push().
   */
  reset(): void {
    if (this.remaining > 0 || this.carry !== undefined) throw new Error("reset in the middle of a frame");
    this.count = 0;
    this.frameLen = 0;
    this.reference = undefined;
    this.framesCompared = 0;
  }

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    if (this.remaining > 0) {
      const take = Math.min(this.remaining, n);
      this.remaining -= take;
      i = take;
      if (this.remaining === 0) this.count++;
    }
    const frameLen = this.frameLen;
    let compared = false;
    while (i < n) {
      // Fast path: a whole frame of the known length.
      if (frameLen > 0 && this.carry === undefined && chunk[i] === 0x4d) {
        const end = i + frameLen;
        if (end <= n) {
          if (chunk[end - 1] !== 0x0a || chunk[end - 2] !== 0x0d) {
            throw new Error(`misframed MSG at byte ${i} (expected frames of ${frameLen} bytes)`);
          }
          if (!compared) {
            compared = true;
            if (this.reference === undefined) {
              const upTo = this.varyingPayloads ? chunk.indexOf(0x0a, i) + 1 : end;
              this.reference = Buffer.from(chunk.subarray(i, upTo));
            } else if (
              chunk.compare(this.reference, 0, this.reference.length, i, i + this.reference.length) !== 0
            ) {
              throw new Error(
                `MSG frame differs from the first one: ${JSON.stringify(chunk.toString("latin1", i, Math.min(end, i + 80)))}`,
              );
            }
            this.framesCompared++;
          }
          this.count++;
          i = end;
        } else {
          this.remaining = end - n;
          i = n;
        }
        continue;
      }
      // Slow path: one line.
      const nl = chunk.indexOf(0x0a, i);
      if (nl < 0) {
        this.carry = this.carry
          ? Buffer.concat([this.carry, chunk.subarray(i)])
          : Buffer.from(chunk.subarray(i));
        return;
      }
      const lineBuf = this.carry
        ? Buffer.concat([this.carry, chunk.subarray(i, nl + 1)])
        : chunk.subarray(i, nl + 1);
      this.carry = undefined;
      i = nl + 1;
      const line = lineBuf.toString("latin1").replace(/\r?\n$/, "");
      if (line.startsWith("MSG ")) {
        const parts = line.split(" ").filter((p) => p.length > 0);
        const size = Number(parts[parts.length - 1]);
        if ((parts.length !== 4 && parts.length !== 5) || !Number.isInteger(size)) {
          throw new Error(`bad MSG line: ${line.slice(0, 80)}`);
        }
        const len = lineBuf.length + size + 2;
        if (this.frameLen === 0) this.frameLen = len;
        else if (this.frameLen !== len)
          throw new Error(`MSG frame of ${len} bytes, expected ${this.frameLen}`);
        const take = Math.min(size + 2, n - i);
        i += take;
        this.remaining = size + 2 - take;
        if (this.remaining === 0) this.count++;
        // frameLen may have just been learned: restart with the fast path enabled.
        if (frameLen === 0 && i < n) {
          this.push(chunk.subarray(i));
          return;
        }
        continue;
      }
      const op = line.slice(0, 4).toUpperCase();
      if (op === "PING") this.h.onPing();
      else if (op === "PONG") this.h.onPong();
      else if (op === "INFO") this.h.onInfo();
      else if (op === "-ERR") this.h.onErr(line.slice(5));
      else if (op !== "+OK" && line.length > 0) throw new Error(`unexpected server op: ${line.slice(0, 80)}`);
    }
  }
}
