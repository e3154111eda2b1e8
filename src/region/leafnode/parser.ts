/**
 * Incremental parser for what a nats-server hub sends on a leafnode connection (docs: the protocol
 * reference §1.1 framing, §2.3 LS+/LS-, §2.5 LMSG/HMSG). Bytes may be split anywhere: whatever is
 * incomplete stays buffered until the next push. Anything malformed throws a LeafProtocolError; the
 * connection then closes, because after a framing error nothing that follows can be trusted.
 */
import { BridgeheadError } from "../../util/errors.js";

export class LeafProtocolError extends BridgeheadError {
  override readonly name = "LeafProtocolError";
}

/** The hub's INFO: a JSON object; only the keys the adapter reads are typed. */
export interface HubInfo {
  readonly server_id?: string;
  readonly server_name?: string;
  readonly version?: string;
  readonly client_id?: number;
  readonly headers?: boolean;
  readonly max_payload?: number;
  readonly auth_required?: boolean;
  readonly nonce?: string;
  readonly connect_info?: boolean;
  readonly remote_account?: string;
  readonly leafnode_urls?: readonly string[];
  readonly [key: string]: unknown;
}

export type HubOp =
  | { readonly type: "info"; readonly info: HubInfo }
  | { readonly type: "ping" }
  | { readonly type: "pong" }
  | { readonly type: "ok" }
  | { readonly type: "err"; readonly message: string }
  | { readonly type: "sub"; readonly subject: string; readonly queue: undefined; readonly weight: 1 }
  | { readonly type: "sub"; readonly subject: string; readonly queue: string; readonly weight: number }
  | { readonly type: "unsub"; readonly subject: string; readonly queue: string | undefined }
  | {
      readonly type: "msg";
      readonly subject: string;
      readonly reply: string | undefined;
      /** Queue groups the receiver must serve (`| q1 q2` or `+ reply q1 q2`); empty: plain subscribers only. */
      readonly queues: readonly string[];
      /** Header bytes at the start of `payload` (0 for LMSG). */
      readonly hdr: number;
      /** Header and body; a view into the received bytes, valid until the next push. */
      readonly payload: Buffer;
    };

export interface ParserLimits {
  /** Longest control line accepted (INFO included); default 64 KiB. */
  readonly maxControlLine?: number;
  /** Largest message accepted; default 64 MiB (the hub enforces its own max_payload on publishers). */
  readonly maxPayload?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const SIZE = /^\d{1,10}$/;

function size(s: string, what: string): number {
  if (!SIZE.test(s)) throw new LeafProtocolError(`bad ${what} '${s.slice(0, 20)}'`);
  return Number(s);
}

export class LeafParser {
  private buf: Buffer = EMPTY;
  /** Chunks of a payload still incomplete, kept apart until it is (see push); waitLen counts buf too. */
  private waiting: Buffer[] = [];
  private waitLen = 0;
  private readonly maxControlLine: number;
  private readonly maxPayload: number;
  /** Set between a LMSG/HMSG control line and its payload. */
  private pending:
    | { subject: string; reply: string | undefined; queues: readonly string[]; hdr: number; total: number }
    | undefined;

  constructor(
    private readonly onOp: (op: HubOp) => void,
    limits: ParserLimits = {},
  ) {
    this.maxControlLine = limits.maxControlLine ?? 64 * 1024;
    this.maxPayload = limits.maxPayload ?? 64 * 1024 * 1024;
  }

  /** Bytes buffered, waiting for the rest of an op. */
  get buffered(): number {
    return this.waitLen;
  }

  /** Chunks are kept, not copied, until their op is complete: the caller must not reuse them (sockets do not). */
  push(chunk: Buffer): void {
    // A large payload arriving in many chunks is gathered and joined once, not re-joined at every chunk.
    const p0 = this.pending;
    if (p0 !== undefined && this.waitLen + chunk.length < p0.total + 2) {
      this.waiting.push(chunk);
      this.waitLen += chunk.length;
      return;
    }
    if (this.waiting.length > 0) {
      this.waiting.push(chunk);
      chunk = Buffer.concat(this.waiting);
      this.waiting = [];
      this.waitLen = 0;
    }
    let b = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let i = 0;
    try {
      while (i < b.length) {
        const p = this.pending;
        if (p !== undefined) {
          if (b.length - i < p.total + 2) break;
          if (b[i + p.total] !== CR || b[i + p.total + 1] !== LF) {
            throw new LeafProtocolError("message payload not followed by CRLF");
          }
          this.pending = undefined;
          const payload = b.subarray(i, i + p.total);
          i += p.total + 2;
          this.onOp({
            type: "msg",
            subject: p.subject,
            reply: p.reply,
            queues: p.queues,
            hdr: p.hdr,
            payload,
          });
          continue;
        }
        const nl = b.indexOf(LF, i);
        if (nl < 0) {
          if (b.length - i > this.maxControlLine) throw new LeafProtocolError("control line too long");
          break;
        }
        if (nl - i > this.maxControlLine) throw new LeafProtocolError("control line too long");
        const end = nl > i && b[nl - 1] === CR ? nl - 1 : nl;
        const start = i;
        i = nl + 1;
        this.line(b.toString("latin1", start, end), b, start, end);
      }
    } finally {
      // Whatever is left (a partial op) is kept as a copy, so the big chunk it came from is not retained.
      b = i >= b.length ? EMPTY : Buffer.from(b.subarray(i));
      this.buf = b;
      this.waitLen = b.length;
    }
  }

  /** `line` is raw[start, end) as latin1: one char per byte, so offsets in it are byte offsets. */
  private line(line: string, raw: Buffer, start: number, end: number): void {
    const m = /^\s*(\S+)\s*/.exec(line);
    if (m === null) throw new LeafProtocolError("empty control line");
    const op = m[1]!.toUpperCase();
    const rest = line.slice(m[0].length);
    switch (op) {
      case "PING":
        this.onOp({ type: "ping" });
        return;
      case "PONG":
        this.onOp({ type: "pong" });
        return;
      case "+OK":
        this.onOp({ type: "ok" });
        return;
      case "-ERR": {
        const t = rest.trim();
        this.onOp({
          type: "err",
          message: t.length >= 2 && t.startsWith("'") && t.endsWith("'") ? t.slice(1, -1) : t,
        });
        return;
      }
      case "INFO": {
        // Decoded from the raw bytes as UTF-8: server names and URLs are not necessarily ASCII.
        const j = line.indexOf("{");
        if (j < 0) throw new LeafProtocolError("INFO without a JSON object");
        let info: unknown;
        try {
          info = JSON.parse(raw.toString("utf8", start + j, end));
        } catch {
          throw new LeafProtocolError("INFO with invalid JSON");
        }
        if (info === null || typeof info !== "object" || Array.isArray(info)) {
          throw new LeafProtocolError("INFO is not a JSON object");
        }
        this.onOp({ type: "info", info: info as HubInfo });
        return;
      }
      case "LS+":
        this.sub(args(rest));
        return;
      case "LS-": {
        const a = args(rest);
        if (a.length !== 1 && a.length !== 2) throw new LeafProtocolError("LS- needs 1 or 2 arguments");
        this.onOp({ type: "unsub", subject: a[0]!, queue: a[1] });
        return;
      }
      case "LMSG":
        this.msg(args(rest), false);
        return;
      case "HMSG":
        this.msg(args(rest), true);
        return;
      default:
        throw new LeafProtocolError(`unknown operation '${op.slice(0, 20)}'`);
    }
  }

  private sub(a: string[]): void {
    if (a.length === 1) {
      this.onOp({ type: "sub", subject: a[0]!, queue: undefined, weight: 1 });
      return;
    }
    if (a.length !== 3) throw new LeafProtocolError("LS+ needs 1 or 3 arguments");
    const weight = size(a[2]!, "queue weight");
    if (weight < 1) throw new LeafProtocolError("LS+ with a queue weight below 1");
    this.onOp({ type: "sub", subject: a[0]!, queue: a[1]!, weight });
  }

  private msg(a: string[], headers: boolean): void {
    const sizes = headers ? 2 : 1;
    if (a.length < 1 + sizes) throw new LeafProtocolError(`${headers ? "HMSG" : "LMSG"}: too few arguments`);
    const subject = a[0]!;
    const mid = a.slice(1, a.length - sizes);
    let reply: string | undefined;
    let queues: readonly string[] = [];
    if (mid.length === 1) {
      reply = mid[0];
    } else if (mid.length >= 2) {
      if (mid[0] === "|") {
        queues = mid.slice(1);
      } else if (mid[0] === "+" && mid.length >= 3) {
        reply = mid[1];
        queues = mid.slice(2);
      } else {
        throw new LeafProtocolError("bad or missing reply indicator");
      }
    }
    const total = size(a[a.length - 1]!, "message size");
    const hdr = headers ? size(a[a.length - 2]!, "header size") : 0;
    if (hdr > total) throw new LeafProtocolError("header size larger than message size");
    if (total > this.maxPayload) throw new LeafProtocolError(`message of ${total} bytes over the limit`);
    this.pending = { subject, reply, queues, hdr, total };
  }
}

function args(rest: string): string[] {
  return rest.split(/[ \t]+/).filter((s) => s.length > 0);
}
