/**
 * A raw-socket NATS client for byte-exact protocol tests. It writes whatever the test gives it and records
 * every byte the server sends, split into protocol frames (INFO, +OK, -ERR, PING, PONG, MSG, HMSG), so a test
 * can assert exact bytes, count deliveries and wait for conditions with deadlines instead of sleeping.
 *
 * Text views (`text`, `transcript()`) decode bytes as latin1, so one character is one byte and a string
 * comparison is a byte comparison.
 *
 * Every client is registered until it closes; call `closeAllRaw()` in `afterEach` so no socket outlives its test.
 */
import { connect, type Socket } from "node:net";
import type { ServerKind } from "./servers.js";

/** One unit of what the server sent. */
export interface Frame {
  /** Upper-cased op: INFO, +OK, -ERR, PING, PONG, MSG, HMSG, or whatever the first word of an unknown line was. */
  readonly op: string;
  /** The control line without its line ending. */
  readonly line: string;
  /** Exactly the bytes of this frame as received: control line, line ending and, for MSG/HMSG, payload and CRLF. */
  readonly raw: Buffer;
  /** MSG/HMSG: subject, sid, optional reply, header size (HMSG only), total size, and the bytes after the line. */
  readonly subject?: string;
  readonly sid?: string;
  readonly reply?: string;
  readonly hdrSize?: number;
  readonly size?: number;
  /** Header block plus payload (HMSG) or payload (MSG); absent when the client was made with `keep: false`. */
  readonly payload?: Buffer;
}

export interface RawClientOptions {
  host?: string;
  /** Answer every server PING with PONG automatically (default true). Answered PINGs are left out of `transcript()`. */
  autoPong?: boolean;
  /** Resolve `connectRaw` only once the server's first line (INFO) arrived (default true). */
  waitInfo?: boolean;
  /** Keep all received bytes and payloads (default true). Turn off for bulk tests that only count frames. */
  keep?: boolean;
  /** Deadline for connecting and for the INFO line (default 5000 ms). */
  timeoutMs?: number;
  /** A label used in failure messages. */
  name?: string;
}

export type WaitCondition = string | RegExp | ((c: RawClient) => boolean);

const open = new Set<RawClient>();

/** Renders bytes for failure messages: CR/LF and control bytes escaped, long texts cut in the middle. */
export function show(s: string, max = 2000): string {
  const esc = JSON.stringify(s);
  if (esc.length <= max) return esc;
  const half = Math.floor(max / 2);
  return `${esc.slice(0, half)} …(${esc.length - max} chars cut)… ${esc.slice(-half)}`;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
  reject: (e: Error) => void;
  describe: () => string;
  failOnClose: boolean;
  timer: NodeJS.Timeout;
}

export class RawClient {
  readonly name: string;
  readonly frames: Frame[] = [];
  /** Errors the socket reported (ECONNRESET, EPIPE, ...). Never thrown: a server closing on us is often the point. */
  readonly errors: Error[] = [];
  private readonly chunks: Buffer[] = [];
  private joined: Buffer | undefined;
  private textSoFar = "";
  private receivedBytes = 0;
  private pending: Buffer = Buffer.alloc(0);
  private closed = false;
  private waiters: Waiter[] = [];
  private readonly autoPong: boolean;
  private readonly keep: boolean;
  /** Server PINGs this client answered automatically (their frame indexes), left out of transcripts. */
  private readonly answeredPings = new Set<number>();
  /** PING lines the test wrote itself: each one's PONG must be consumed before a `sync()` PONG counts. */
  private pingsSent = 0;
  private outLine = "";
  private outSkip = 0;
  private pongsSeen = 0;

  constructor(
    readonly socket: Socket,
    opts: RawClientOptions,
  ) {
    this.name = opts.name ?? "raw";
    this.autoPong = opts.autoPong ?? true;
    this.keep = opts.keep ?? true;
    open.add(this);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e: Error) => {
      this.errors.push(e);
    });
    socket.on("close", () => {
      this.closed = true;
      open.delete(this);
      this.wake();
    });
  }

  /** Every byte received so far (empty when made with `keep: false`). */
  get received(): Buffer {
    if (!this.joined) this.joined = Buffer.concat(this.chunks);
    return this.joined;
  }

  /** Every byte received so far as a latin1 string (one char per byte). */
  get text(): string {
    return this.textSoFar;
  }

  get byteCount(): number {
    return this.receivedBytes;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The parsed INFO object from the first frame; throws if the first frame is not INFO. */
  get info(): Record<string, unknown> {
    const f = this.frames[0];
    if (f?.op !== "INFO") throw new Error(`${this.name}: first frame is not INFO: ${show(this.text, 300)}`);
    return JSON.parse(f.line.slice(5).trim()) as Record<string, unknown>;
  }

  /** Writes bytes as given. Writes after the server closed are dropped silently (the error is recorded). */
  send(data: string | Uint8Array): void {
    if (this.closed || this.socket.destroyed) return;
    this.trackOutgoing(typeof data === "string" ? data : Buffer.from(data).toString("latin1"));
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  /**
   * Follows the client side of the protocol across writes to count the PING lines the test sent itself, so
   * `sync()` waits for its own PONG and not for an earlier one. PUB/HPUB payloads are skipped, not read as
   * lines. Like nats-server, any line whose op starts with PING counts (it answers `PINGX` too).
   */
  private trackOutgoing(s: string): void {
    let i = 0;
    while (i < s.length) {
      if (this.outSkip > 0) {
        const n = Math.min(this.outSkip, s.length - i);
        this.outSkip -= n;
        i += n;
        continue;
      }
      const nl = s.indexOf("\n", i);
      if (nl < 0) {
        this.outLine += s.slice(i);
        return;
      }
      const line = (this.outLine + s.slice(i, nl)).replace(/\r$/, "");
      this.outLine = "";
      i = nl + 1;
      const words = line.split(/[ \t]+/);
      const op = (words[0] ?? "").toUpperCase();
      if (op.startsWith("PING")) this.pingsSent++;
      else if (op === "PUB" || op === "HPUB") {
        const size = Number(words[words.length - 1]);
        if (Number.isInteger(size) && size >= 0) this.outSkip = size + 2;
      }
    }
  }

  /** Frames with the given op (upper case). */
  framesOf(op: string): Frame[] {
    return this.frames.filter((f) => f.op === op);
  }

  /** MSG and HMSG frames, in order. */
  get msgs(): Frame[] {
    return this.frames.filter((f) => f.op === "MSG" || f.op === "HMSG");
  }

  count(op: string): number {
    let n = 0;
    for (const f of this.frames) if (f.op === op) n++;
    return n;
  }

  /**
   * The received bytes frame by frame with the INFO JSON replaced by `{…}` (what stays shows whether the line
   * ended in ` \r\n`), and the server PINGs this client answered automatically left out, as latin1 text.
   */
  transcript(): string {
    let out = "";
    this.frames.forEach((f, i) => {
      if (this.answeredPings.has(i)) return;
      if (f.op === "INFO") out += f.raw.toString("latin1").replace(/^INFO [ \t]*\{.*\}/, "INFO {…}");
      else if (f.raw.length === 0 && f.size !== undefined)
        out += `${f.line}\r\n<${f.size} bytes not kept>\r\n`;
      else out += f.raw.toString("latin1");
    });
    // an unfinished tail (no newline yet) is part of what was received
    if (this.pending.length > 0) out += this.pending.toString("latin1");
    return out;
  }

  /**
   * Resolves once `cond` holds: a string that `text` contains, a RegExp that matches `text`, or a predicate on
   * this client. Rejects after `timeoutMs`, or as soon as the connection closes without the condition holding.
   */
  waitFor(cond: WaitCondition, timeoutMs = 5000): Promise<void> {
    const check =
      typeof cond === "string"
        ? () => this.textSoFar.includes(cond)
        : cond instanceof RegExp
          ? () => cond.test(this.textSoFar)
          : () => cond(this);
    const what = typeof cond === "function" ? "condition" : show(String(cond), 300);
    return this.addWaiter(check, () => `${this.name}: ${what}`, timeoutMs, true);
  }

  /** Waits until `n` frames with this op have arrived. */
  waitForCount(op: string, n: number, timeoutMs = 5000): Promise<void> {
    return this.addWaiter(
      () => this.count(op) >= n,
      () => `${this.name}: ${n} × ${op}, have ${this.count(op)}`,
      timeoutMs,
      true,
    );
  }

  /** Resolves when the server (or anyone) closed the connection; rejects after `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.addWaiter(
      () => this.closed,
      () => `${this.name}: connection close`,
      timeoutMs,
      false,
    );
  }

  /**
   * Sync point: sends `PING\r\n` and resolves when the matching PONG arrived. The server handles a
   * connection's input in order, so everything written before has then been processed, and whatever it
   * caused on this connection has been received (deliveries to *other* connections need their own sync).
   */
  async sync(timeoutMs = 5000): Promise<void> {
    this.send("PING\r\n");
    const target = this.pingsSent;
    await this.addWaiter(
      () => this.pongsSeen >= target,
      () => `${this.name}: PONG #${target} after sync PING (have ${this.pongsSeen})`,
      timeoutMs,
      true,
    );
  }

  /** Stops reading from the socket (the kernel buffers fill, then the server's writes back up). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * Destroys the socket. Safe to call more than once. Waits still pending are dropped without settling, so a
   * test that already failed does not leave timers behind that reject after it ended.
   */
  close(): void {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters = [];
    this.socket.destroy();
    open.delete(this);
  }

  private addWaiter(
    check: () => boolean,
    describe: () => string,
    timeoutMs: number,
    failOnClose: boolean,
  ): Promise<void> {
    if (check()) return Promise.resolve();
    if (failOnClose && this.closed) {
      return Promise.reject(new Error(`closed before ${describe()}; received ${show(this.text)}`));
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        check,
        resolve,
        reject,
        describe,
        failOnClose,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${describe()}; received ${show(this.text)}`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.check()) {
        clearTimeout(w.timer);
        w.resolve();
      } else if (this.closed && w.failOnClose) {
        clearTimeout(w.timer);
        w.reject(new Error(`closed before ${w.describe()}; received ${show(this.text)}`));
      } else {
        still.push(w);
      }
    }
    this.waiters = still;
  }

  private onData(chunk: Buffer): void {
    this.receivedBytes += chunk.length;
    if (this.keep) {
      this.chunks.push(chunk);
      this.joined = undefined;
      this.textSoFar += chunk.toString("latin1");
    }
    this.parse(chunk);
    this.wake();
  }

  /** Splits the server's byte stream into frames; MSG/HMSG frames wait for their whole payload. */
  private parse(chunk: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, off);
      if (nl < 0) break;
      const line = buf.toString("latin1", off, nl).replace(/\r$/, "");
      const words = line.split(/[ \t]+/).filter((w) => w.length > 0);
      const op = (words[0] ?? "").toUpperCase();
      if (op === "MSG" || op === "HMSG") {
        const args = words.slice(1);
        const size = Number(args[args.length - 1]);
        const end = nl + 1 + size + 2;
        if (!Number.isInteger(size) || size < 0) {
          this.frames.push({ op, line, raw: Buffer.from(buf.subarray(off, nl + 1)) });
          off = nl + 1;
          continue;
        }
        if (buf.length < end) break;
        const hdr = op === "HMSG";
        const fixed = hdr ? 4 : 3; // subject sid [reply] [hdr] size
        this.frames.push({
          op,
          line,
          raw: this.keep ? Buffer.from(buf.subarray(off, end)) : Buffer.alloc(0),
          subject: args[0],
          sid: args[1],
          reply: args.length > fixed ? args[2] : undefined,
          hdrSize: hdr ? Number(args[args.length - 2]) : undefined,
          size,
          payload: this.keep ? Buffer.from(buf.subarray(nl + 1, nl + 1 + size)) : undefined,
        });
        off = end;
        continue;
      }
      const index = this.frames.length;
      this.frames.push({ op, line, raw: Buffer.from(buf.subarray(off, nl + 1)) });
      off = nl + 1;
      if (op === "PONG") this.pongsSeen++;
      if (op === "PING" && this.autoPong && !this.closed) {
        this.answeredPings.add(index);
        this.socket.write("PONG\r\n");
      }
    }
    this.pending = off >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
  }
}

/** Opens a raw connection to 127.0.0.1:`port` (by default once the server's INFO has arrived). */
export async function connectRaw(port: number, opts: RawClientOptions = {}): Promise<RawClient> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const socket = connect({ host: opts.host ?? "127.0.0.1", port });
  socket.setNoDelay(true);
  const client = new RawClient(socket, opts);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  if (opts.waitInfo ?? true) await client.waitFor((c) => c.frames.length > 0, timeoutMs);
  return client;
}

/** Destroys every raw client still open (for `afterEach`). */
export function closeAllRaw(): void {
  for (const c of [...open]) c.close();
}

/** How many raw clients are still open (a leak check for tests). */
export function openRawCount(): number {
  return open.size;
}

/**
 * Normalised transcripts per scenario and server kind, so a file can end with a check that every kind
 * produced the same bytes for the same scenario.
 */
export class TranscriptBook {
  private readonly byKind = new Map<ServerKind, Map<string, string>>();

  record(kind: ServerKind, scenario: string, transcript: string): void {
    let m = this.byKind.get(kind);
    if (!m) {
      m = new Map();
      this.byKind.set(kind, m);
    }
    if (m.has(scenario)) throw new Error(`transcript "${scenario}" recorded twice for ${kind}`);
    m.set(scenario, transcript);
  }

  /** Scenario → transcript for one kind. */
  of(kind: ServerKind): Map<string, string> {
    return this.byKind.get(kind) ?? new Map();
  }

  /**
   * Scenarios whose transcripts differ between `kinds`, with each kind's transcript (empty when all agree).
   * Only scenarios every kind recorded are compared: a test that failed early already reports its own failure.
   */
  mismatches(kinds: readonly ServerKind[]): { scenario: string; transcripts: Record<string, string> }[] {
    const out: { scenario: string; transcripts: Record<string, string> }[] = [];
    for (const scenario of this.common(kinds)) {
      const ts = kinds.map((k) => this.of(k).get(scenario) ?? "");
      if (ts.some((t) => t !== ts[0])) {
        out.push({ scenario, transcripts: Object.fromEntries(kinds.map((k, i) => [k, ts[i] ?? ""])) });
      }
    }
    return out;
  }

  /** Scenarios every one of `kinds` recorded (a scenario whose test failed early is missing for that kind). */
  common(kinds: readonly ServerKind[]): string[] {
    const [first, ...rest] = kinds;
    if (!first) return [];
    return [...this.of(first).keys()].filter((s) => rest.every((k) => this.of(k).has(s)));
  }
}

/** Labelled transcripts of several clients, one block each, for `TranscriptBook.record`. */
export function transcripts(clients: Record<string, RawClient>): string {
  return Object.entries(clients)
    .map(([label, c]) => `[${label}] ${JSON.stringify(c.transcript())}`)
    .join("\n");
}

/** The normalised INFO line as `transcript()` shows it. */
export const INFO_LINE = "INFO {…} \r\n";

/** The client INFO keys in nats-server 2.9.10's `Info` struct order (server.go); JSON keys follow it. */
export const INFO_KEY_ORDER: readonly string[] = [
  "server_id",
  "server_name",
  "version",
  "proto",
  "git_commit",
  "go",
  "host",
  "port",
  "headers",
  "auth_required",
  "tls_required",
  "tls_verify",
  "tls_available",
  "max_payload",
  "jetstream",
  "ip",
  "client_id",
  "client_ip",
  "nonce",
  "cluster",
  "cluster_dynamic",
  "domain",
  "connect_urls",
  "ws_connect_urls",
  "ldm",
];

export interface InfoExpectation {
  port: number;
  maxPayload: number;
  authRequired: boolean;
}

/**
 * Checks a client INFO object against what nats-server 2.9.10 sends and returns the problems found (empty
 * when fine): required keys and types, values that follow from the config, only known keys, in struct order.
 */
export function infoProblems(info: Record<string, unknown>, want: InfoExpectation): string[] {
  const problems: string[] = [];
  const str = (k: string) => {
    if (typeof info[k] !== "string" || (info[k] as string).length === 0)
      problems.push(`${k} not a non-empty string`);
  };
  const eq = (k: string, v: unknown) => {
    if (info[k] !== v) problems.push(`${k} is ${JSON.stringify(info[k])}, want ${JSON.stringify(v)}`);
  };
  str("server_id");
  str("server_name");
  str("go");
  if (typeof info.version !== "string" || !/^\d+\.\d+\.\d+/.test(info.version)) {
    problems.push(`version ${JSON.stringify(info.version)} is not semver`);
  }
  eq("proto", 1);
  eq("host", "127.0.0.1");
  eq("port", want.port);
  eq("headers", true);
  eq("max_payload", want.maxPayload);
  if (typeof info.client_id !== "number" || !Number.isInteger(info.client_id) || info.client_id <= 0) {
    problems.push(`client_id ${JSON.stringify(info.client_id)} is not a positive integer`);
  }
  eq("client_ip", "127.0.0.1");
  if (want.authRequired) eq("auth_required", true);
  else if ("auth_required" in info) problems.push("auth_required present without auth");
  for (const k of ["tls_required", "tls_verify", "tls_available", "nonce", "jetstream"]) {
    if (k in info) problems.push(`unexpected ${k}`);
  }
  const keys = Object.keys(info);
  const unknown = keys.filter((k) => !INFO_KEY_ORDER.includes(k));
  if (unknown.length > 0) problems.push(`unknown keys ${unknown.join(",")}`);
  const known = keys.filter((k) => INFO_KEY_ORDER.includes(k));
  const sorted = [...known].sort((a, b) => INFO_KEY_ORDER.indexOf(a) - INFO_KEY_ORDER.indexOf(b));
  if (known.join(",") !== sorted.join(","))
    problems.push(`key order ${known.join(",")}, want ${sorted.join(",")}`);
  return problems;
}
