/**
 * Incremental parser of the NATS client protocol (what a client sends to a server).
 *
 * It is a byte state machine in the shape of nats-server's parser.go, on purpose: errors must fire at the
 * same byte as the real server's (an unknown op is refused at its first bad character, before any line
 * end), which a "read a line, then look at it" parser cannot do. Input may be split anywhere; the parser
 * keeps only the partial control line (bounded by max_control_line) and a partial payload (bounded by the
 * size the control line declared, which the handler has already checked against max_payload).
 *
 * Strings handed to the handler are latin1 "wire strings": one char per byte, so any byte sequence
 * round-trips exactly when written back with latin1, and matching works byte by byte as in nats-server.
 */

export const ParseFailure = {
  /** Unknown op or framing error: `-ERR 'Unknown Protocol Operation'` and close. */
  UnknownOp: 1,
  /** Op before CONNECT while auth is required: `-ERR 'Authorization Violation'` and close. */
  AuthRequired: 2,
  /** Partial control line over the limit: `-ERR 'maximum control line exceeded'` and close. */
  MaxControlLine: 3,
  /** Malformed arguments (wrong count, bad size): close without -ERR, as nats-server does. */
  BadArgs: 4,
} as const;
export type ParseFailure = (typeof ParseFailure)[keyof typeof ParseFailure];

/** Arguments of the publish being parsed. One object per parser, reused for every message. */
export interface PubArgs {
  subject: string;
  reply: string | undefined;
  /** Header block length, or -1 for PUB. */
  hdr: number;
  /** Total payload length (headers included). */
  size: number;
}

export interface ClientParserHandler {
  /** Each `on*` returns false when it closed the connection: the parser then stops. */
  onConnect(json: string): boolean;
  /** Control line of PUB/HPUB parsed; the payload has not been read yet (max_payload is checked here). */
  onPubArgs(pa: PubArgs): boolean;
  /**
   * Payload complete: bytes `[start, end)` of `buf`. Only valid during this call (it may be the read
   * buffer); passed as offsets so the hot path allocates no view per message.
   */
  onMsg(pa: PubArgs, buf: Buffer, start: number, end: number): boolean;
  onSub(subject: string, queue: string | undefined, sid: string): boolean;
  onUnsub(sid: string, max: number | undefined): boolean;
  onPing(): boolean;
  onPong(): boolean;
  /** The client sent `-ERR ...`: nats-server closes such a connection. */
  onClientErr(): void;
  onParseError(failure: ParseFailure, detail: string): void;
}

// Parser states. Numbers, not an enum, so the hot switch compiles to an integer jump table.
const OP_START = 0;
/** After `P`: PUB, PING or PONG. */
const OP_P = 1;
/** Matching the rest of an op name (`kw`), then its separator. */
const KEYWORD = 2;
/** Spaces between an op name and its arguments. */
const SKIP_SPACE = 3;
/** An op's argument line, up to LF (`argOp` says which op). */
const ARG = 4;
/** An op whose line is read and ignored up to LF (PING, PONG, +OK). */
const LINE = 5;
const MSG_PAYLOAD = 6;
const MSG_END_R = 7;
const MSG_END_N = 8;

// What an argument line (or ignored line) belongs to.
const ARG_PUB = 1;
const ARG_HPUB = 2;
const ARG_SUB = 3;
const ARG_UNSUB = 4;
const ARG_CONNECT = 5;
const ARG_INFO = 6;
const ARG_ERR = 7;
const LINE_PING = 8;
const LINE_PONG = 9;
const LINE_IGNORED = 10;

/** What `onArgs` tells the loop: go on, read a payload next, or stop (failed or closed). */
const NEXT = 0;
const PAYLOAD = 1;
const STOP = 2;

const SP = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;

/** Largest size nats-server's parseSize accepts: 9 digits. */
const MAX_SIZE_DIGITS = 9;

/** nats-server's parseSize: decimal digits only, at most 9 of them, else -1. */
export function parseSize(s: string): number {
  const n = s.length;
  if (n === 0 || n > MAX_SIZE_DIGITS) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Split a control line's arguments on runs of spaces and tabs (nats-server's splitArg). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let start = -1;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === SP || c === TAB || c === CR || c === LF) {
      if (start >= 0) {
        out.push(line.slice(start, i));
        start = -1;
      }
    } else if (start < 0) {
      start = i;
    }
  }
  if (start >= 0) out.push(line.slice(start));
  return out;
}

export class ClientParser {
  /** When true, any op but CONNECT is an auth violation (set while auth is required and pending). */
  awaitingConnect = false;

  private state = OP_START;
  /** The op whose argument line is being read (ARG_*, LINE_*). */
  private argOp = 0;
  private kw = "";
  private kwPos = 0;
  private kwSpace = true;
  private kwNext = 0;
  /** Start of the current argument (or payload) in the current buffer. */
  private as = 0;
  private drop = 0;
  /** Partial control line kept across reads, or null. */
  private argBuf: Buffer | null = null;
  private argLen = 0;
  /** Partial payload kept across reads, or null. */
  private msgBuf: Buffer | null = null;
  private msgLen = 0;
  private readonly pa: PubArgs = { subject: "", reply: undefined, hdr: -1, size: 0 };
  /** Field offsets scratch for the PUB fast path (start, end pairs). */
  private readonly fields = new Int32Array(6);
  private readonly lastSubjectBytes = Buffer.alloc(128);
  private lastSubjectLen = -1;
  private lastSubject = "";
  private stopped = false;

  constructor(
    private readonly handler: ClientParserHandler,
    private maxControlLine: number,
  ) {}

  setMaxControlLine(n: number): void {
    this.maxControlLine = n;
  }

  /** Feed one chunk. After a failure or a handler returning false, further input is ignored. */
  parse(buf: Buffer): void {
    if (this.stopped) return;
    const h = this.handler;
    const len = buf.length;
    let i = 0;
    let b = 0;
    this.as = 0;
    for (; i < len; i++) {
      b = buf[i]!;
      switch (this.state) {
        case OP_START:
          if (this.awaitingConnect && b !== 0x43 && b !== 0x63) {
            return this.fail(ParseFailure.AuthRequired, "operation before CONNECT");
          }
          switch (b) {
            case 0x50: // P: PUB, PING or PONG
              if (buf[i + 1] === 0x55 && buf[i + 2] === 0x42 && buf[i + 3] === SP) {
                const next = this.fastPub(buf, i);
                if (next === -2) return; // failed or stopped
                if (next >= 0) {
                  i = next;
                  break;
                }
              }
              this.state = OP_P;
              break;
            case 0x70:
              this.state = OP_P;
              break;
            case 0x48: // HPUB
            case 0x68:
              this.expect("PUB", ARG_HPUB);
              break;
            case 0x53: // SUB
            case 0x73:
              this.expect("UB", ARG_SUB);
              break;
            case 0x55: // UNSUB
            case 0x75:
              this.expect("NSUB", ARG_UNSUB);
              break;
            case 0x43: // CONNECT: the JSON may follow without a space
            case 0x63:
              this.expect("ONNECT", ARG_CONNECT, false);
              break;
            case 0x49: // INFO
            case 0x69:
              this.expect("NFO", ARG_INFO, false);
              break;
            case 0x2b: // +OK
              this.expect("OK", LINE_IGNORED, false);
              break;
            case 0x2d: // -ERR
              this.expect("ERR", ARG_ERR);
              break;
            default:
              return this.unknownOp(buf, i);
          }
          break;
        case OP_P:
          if (b === 0x55 || b === 0x75) this.expect("B", ARG_PUB);
          else if (b === 0x49 || b === 0x69) this.expect("NG", LINE_PING, false);
          else if (b === 0x4f || b === 0x6f) this.expect("NG", LINE_PONG, false);
          else return this.unknownOp(buf, i);
          break;
        case KEYWORD:
          // The rest of an op name, case-insensitive (`& 0xdf` upper-cases ASCII letters and maps no other
          // byte onto one), then the separator when the op takes arguments.
          if (this.kwPos < this.kw.length) {
            if ((b & 0xdf) !== this.kw.charCodeAt(this.kwPos)) return this.unknownOp(buf, i);
            this.kwPos++;
            if (this.kwPos === this.kw.length && !this.kwSpace) this.enterArgs(this.kwNext, i);
          } else if (b === SP || b === TAB) {
            this.enterArgs(this.kwNext, i);
          } else {
            return this.unknownOp(buf, i);
          }
          break;
        case SKIP_SPACE:
          if (b !== SP && b !== TAB) {
            this.state = ARG;
            this.as = i;
            i--; // this byte is the argument's first (or the CR/LF of an empty one)
          }
          break;
        case ARG: {
          if (b === CR) {
            this.drop = 1;
            break;
          }
          if (b !== LF) {
            if (this.argBuf !== null) this.appendArgByte(b);
            break;
          }
          const arg = this.takeArg(buf, i);
          if (arg === null) return;
          this.drop = 0;
          this.as = i + 1;
          this.state = OP_START;
          const next = this.onArgs(this.argOp, arg);
          if (next === STOP) return;
          if (next === PAYLOAD) {
            this.state = MSG_PAYLOAD;
            // Jump over the payload when it is all in this buffer; otherwise fall out and keep it.
            // (Lands on the payload's last byte, or on this LF for an empty payload.)
            if (this.msgBuf === null) i = this.as + this.pa.size - 2;
          }
          break;
        }
        case LINE:
          // PING/PONG/+OK: anything up to the line end is ignored, as nats-server does.
          if (b === LF) {
            this.drop = 0;
            this.state = OP_START;
            const op = this.argOp;
            if (op === LINE_PING ? !h.onPing() : op === LINE_PONG ? !h.onPong() : false) return this.stop();
          }
          break;
        case MSG_PAYLOAD:
          // Only reached when the payload is in this buffer (a jump landed on its last byte) or when a
          // split payload is being collected.
          if (this.msgBuf !== null) {
            const need = this.pa.size - this.msgLen;
            if (need === 0) {
              // Empty (or already complete) payload carried over from the last read: this byte is the CR.
              this.state = MSG_END_R;
              i--;
              break;
            }
            const avail = len - i;
            const n = avail < need ? avail : need;
            buf.copy(this.msgBuf, this.msgLen, i, i + n);
            this.msgLen += n;
            i += n - 1;
            if (this.msgLen >= this.pa.size) this.state = MSG_END_R;
          } else if (i - this.as + 1 >= this.pa.size) {
            this.state = MSG_END_R;
          }
          break;
        case MSG_END_R:
          if (b !== CR) return this.unknownOp(buf, i);
          this.state = MSG_END_N;
          break;
        case MSG_END_N: {
          if (b !== LF) return this.unknownOp(buf, i);
          this.state = OP_START;
          if (this.msgBuf !== null) {
            const mb = this.msgBuf;
            this.msgBuf = null;
            this.msgLen = 0;
            this.as = i + 1;
            if (!h.onMsg(this.pa, mb, 0, this.pa.size)) return this.stop();
          } else {
            const start = this.as;
            this.as = i + 1;
            if (!h.onMsg(this.pa, buf, start, start + this.pa.size)) return this.stop();
          }
          break;
        }
        default:
          return this.unknownOp(buf, i);
      }
    }

    // Split control line: keep what we have, bounded by max_control_line.
    if (this.state === ARG) {
      if (this.argBuf === null) {
        const end = len - this.drop;
        this.argLen = 0;
        this.argBuf = Buffer.allocUnsafe(Math.max(64, end - this.as));
        if (end > this.as) {
          buf.copy(this.argBuf, 0, this.as, end);
          this.argLen = end - this.as;
        }
      }
      if (this.argLen > this.maxControlLine) {
        return this.fail(ParseFailure.MaxControlLine, `partial control line of ${this.argLen} bytes`);
      }
    }

    // Split payload: copy what arrived; the rest is appended on the next reads.
    if (
      (this.state === MSG_PAYLOAD || this.state === MSG_END_R || this.state === MSG_END_N) &&
      this.msgBuf === null
    ) {
      const have = len - this.as;
      // More bytes than the payload plus CRLF can only come from a jump past the end: not possible here,
      // but guard against a rogue size the way nats-server does.
      if (have > this.pa.size + 2) return this.unknownOp(buf, this.as);
      this.msgBuf = Buffer.allocUnsafe(this.pa.size);
      const n = Math.min(have, this.pa.size);
      buf.copy(this.msgBuf, 0, this.as, this.as + n);
      this.msgLen = n;
      // If the jump already passed the payload, the state machine is waiting for CR/LF with msgBuf full.
    }
  }

  /** Match the rest of an op name, then (when `space`) a separator, then read the op's line as `next`. */
  private expect(rest: string, next: number, space = true): void {
    this.state = KEYWORD;
    this.kw = rest;
    this.kwPos = 0;
    this.kwSpace = space;
    this.kwNext = next;
  }

  /** The op name is complete: read its line (skipping leading spaces), or ignore it up to LF. */
  private enterArgs(op: number, i: number): void {
    this.argOp = op;
    this.drop = 0;
    this.as = i + 1;
    this.state = op >= LINE_PING ? LINE : SKIP_SPACE;
  }

  /** A complete argument line of `op`. */
  private onArgs(op: number, arg: string): number {
    const h = this.handler;
    switch (op) {
      case ARG_PUB:
      case ARG_HPUB: {
        const ok = op === ARG_PUB ? this.processPub(arg) : this.processHeaderPub(arg);
        if (!ok) {
          this.fail(ParseFailure.BadArgs, `bad ${op === ARG_PUB ? "PUB" : "HPUB"} '${arg}'`);
          return STOP;
        }
        if (!h.onPubArgs(this.pa)) {
          this.stop();
          return STOP;
        }
        return PAYLOAD;
      }
      case ARG_SUB: {
        const args = splitArgs(arg);
        let ok: boolean;
        if (args.length === 2) ok = h.onSub(args[0]!, undefined, args[1]!);
        else if (args.length === 3) ok = h.onSub(args[0]!, args[1]!, args[2]!);
        else {
          this.fail(ParseFailure.BadArgs, `bad SUB '${args.join(" ")}'`);
          return STOP;
        }
        if (!ok) this.stop();
        return ok ? NEXT : STOP;
      }
      case ARG_UNSUB: {
        const args = splitArgs(arg);
        // Not validated, like nats-server: a max that does not parse (-1) unsubscribes at once.
        if (args.length !== 1 && args.length !== 2) {
          this.fail(ParseFailure.BadArgs, `bad UNSUB '${args.join(" ")}'`);
          return STOP;
        }
        const ok = h.onUnsub(args[0]!, args.length === 2 ? parseSize(args[1]!) : undefined);
        if (!ok) this.stop();
        return ok ? NEXT : STOP;
      }
      case ARG_CONNECT: {
        // CONNECT JSON is UTF-8 text (names, passwords), not a wire string.
        const ok = h.onConnect(Buffer.from(arg, "latin1").toString("utf8"));
        if (!ok) this.stop();
        return ok ? NEXT : STOP;
      }
      case ARG_ERR:
        // A client's -ERR closes the connection, as in nats-server; its INFO is accepted and ignored.
        this.stop();
        h.onClientErr();
        return STOP;
      default:
        return NEXT;
    }
  }

  /**
   * The hot path: an upper-case `PUB ` whose whole line (and usually payload) is in this buffer. Parses
   * the arguments straight from the bytes and delivers the message without walking the state machine.
   * Returns the index of the last byte consumed, -1 to fall back to the state machine (line not complete
   * here), or -2 when the connection failed or stopped.
   */
  private fastPub(buf: Buffer, i: number): number {
    const len = buf.length;
    const nl = buf.indexOf(LF, i + 4);
    if (nl < 0) return -1;
    let p = i + 4;
    while (p < nl && (buf[p] === SP || buf[p] === TAB)) p++;
    let e = nl;
    if (e > p && buf[e - 1] === CR) e--;
    if (e - p > this.maxControlLine) {
      this.fail(ParseFailure.MaxControlLine, `control line of ${e - p} bytes`);
      return -2;
    }
    // Up to three fields: subject [reply] size.
    const f = this.fields;
    let n = 0;
    let q = p;
    while (q < e) {
      while (q < e && (buf[q] === SP || buf[q] === TAB || buf[q] === CR)) q++;
      if (q >= e) break;
      const start = q;
      while (q < e && buf[q] !== SP && buf[q] !== TAB && buf[q] !== CR) q++;
      if (n === 3) {
        n = 4;
        break;
      }
      f[n * 2] = start;
      f[n * 2 + 1] = q;
      n++;
    }
    const pa = this.pa;
    if (n !== 2 && n !== 3) {
      this.fail(ParseFailure.BadArgs, `bad PUB '${buf.toString("latin1", p, e)}'`);
      return -2;
    }
    const sizeAt = (n - 1) * 2;
    let size = 0;
    const sStart = f[sizeAt]!;
    const sEnd = f[sizeAt + 1]!;
    if (sEnd - sStart > 9) size = -1;
    for (let k = sStart; k < sEnd && size >= 0; k++) {
      const d = buf[k]! - 48;
      if (d < 0 || d > 9) size = -1;
      else size = size * 10 + d;
    }
    if (size < 0) {
      this.fail(ParseFailure.BadArgs, `bad PUB size '${buf.toString("latin1", sStart, sEnd)}'`);
      return -2;
    }
    pa.subject = this.subjectString(buf, f[0]!, f[1]!);
    pa.reply = n === 3 ? buf.toString("latin1", f[2]!, f[3]!) : undefined;
    pa.hdr = -1;
    pa.size = size;
    const h = this.handler;
    if (!h.onPubArgs(pa)) {
      this.stop();
      return -2;
    }
    const ps = nl + 1;
    if (ps + size + 2 <= len) {
      if (buf[ps + size] !== CR || buf[ps + size + 1] !== LF) {
        this.unknownOp(buf, ps + size);
        return -2;
      }
      if (!h.onMsg(pa, buf, ps, ps + size)) {
        this.stop();
        return -2;
      }
      return ps + size + 1;
    }
    // Payload or its CRLF continues in the next read: hand over to the state machine, positioned as its
    // own jump would leave it (on the payload's last byte).
    this.drop = 0;
    this.as = ps;
    this.state = MSG_PAYLOAD;
    return ps + size - 2;
  }

  /**
   * Publishers tend to repeat a subject; reuse the last string when the bytes are the same, which costs
   * a short compare instead of a string allocation per message.
   */
  private subjectString(buf: Buffer, start: number, end: number): string {
    const n = end - start;
    const last = this.lastSubjectBytes;
    if (n === this.lastSubjectLen && n <= last.length) {
      let same = true;
      for (let k = 0; k < n; k++) {
        if (last[k] !== buf[start + k]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastSubject;
    }
    const s = buf.toString("latin1", start, end);
    if (n <= last.length) {
      for (let k = 0; k < n; k++) last[k] = buf[start + k]!;
      this.lastSubjectLen = n;
      this.lastSubject = s;
    }
    return s;
  }

  private appendArgByte(b: number): void {
    let ab = this.argBuf!;
    if (this.argLen === ab.length) {
      const grown = Buffer.allocUnsafe(ab.length * 2);
      ab.copy(grown, 0, 0, this.argLen);
      ab = grown;
      this.argBuf = ab;
    }
    ab[this.argLen++] = b;
    // Keep memory bounded while a line trickles in byte by byte within one read.
    if (this.argLen > this.maxControlLine + 1024) this.argLen = this.maxControlLine + 1;
  }

  /**
   * The completed argument text (without the trailing CR), from the split buffer or the read buffer; null
   * (and the connection failed) when it is longer than max_control_line.
   */
  private takeArg(buf: Buffer, i: number): string | null {
    let s: string;
    if (this.argBuf !== null) {
      let end = this.argLen;
      // A CR seen in this read was not appended; one carried over from the previous read was.
      if (end > 0 && this.argBuf[end - 1] === CR) end--;
      s = this.argBuf.toString("latin1", 0, end);
      this.argBuf = null;
      this.argLen = 0;
    } else {
      s = buf.toString("latin1", this.as, i - this.drop);
    }
    if (s.length > this.maxControlLine) {
      this.fail(ParseFailure.MaxControlLine, `control line of ${s.length} bytes`);
      return null;
    }
    return s;
  }

  private processPub(arg: string): boolean {
    const args = splitArgs(arg);
    const pa = this.pa;
    let sizeStr: string;
    if (args.length === 2) {
      pa.subject = args[0]!;
      pa.reply = undefined;
      sizeStr = args[1]!;
    } else if (args.length === 3) {
      pa.subject = args[0]!;
      pa.reply = args[1]!;
      sizeStr = args[2]!;
    } else {
      return false;
    }
    pa.hdr = -1;
    pa.size = parseSize(sizeStr);
    return pa.size >= 0;
  }

  private processHeaderPub(arg: string): boolean {
    const args = splitArgs(arg);
    const pa = this.pa;
    let hdrStr: string;
    let sizeStr: string;
    if (args.length === 3) {
      pa.subject = args[0]!;
      pa.reply = undefined;
      hdrStr = args[1]!;
      sizeStr = args[2]!;
    } else if (args.length === 4) {
      pa.subject = args[0]!;
      pa.reply = args[1]!;
      hdrStr = args[2]!;
      sizeStr = args[3]!;
    } else {
      return false;
    }
    pa.hdr = parseSize(hdrStr);
    pa.size = parseSize(sizeStr);
    return pa.hdr >= 0 && pa.size >= 0 && pa.hdr <= pa.size;
  }

  private unknownOp(buf: Buffer, i: number): void {
    const snippet = buf.toString("latin1", i, Math.min(buf.length, i + 32));
    this.fail(ParseFailure.UnknownOp, `state ${this.state} at ${JSON.stringify(snippet)}`);
  }

  private fail(failure: ParseFailure, detail: string): void {
    this.stopped = true;
    this.argBuf = null;
    this.msgBuf = null;
    this.handler.onParseError(failure, detail);
  }

  private stop(): void {
    this.stopped = true;
    this.argBuf = null;
    this.msgBuf = null;
  }
}
