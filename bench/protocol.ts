/**
 * Minimal raw NATS client protocol pieces for the benchmark workers, plus the IPC message shapes the
 * workers and the orchestrator exchange. Deliberately not the `nats` package: the load generator must be
 * as cheap as possible and identical for every server under test.
 */
import { once } from "node:events";
import { connect, type Socket } from "node:net";

export const CRLF = Buffer.from("\r\n");

/** Handlers for the server→client operations the benchmark cares about. */
export interface ParserHandlers {
  onInfo?(json: string): void;
  onMsg?(subject: string, sid: string, reply: string | undefined, payload: Buffer): void;
  onPing?(): void;
  onPong?(): void;
  onOk?(): void;
  onErr?(message: string): void;
}

/**
 * General server→client parser (INFO, MSG, PING, PONG, +OK, -ERR). Fine for low-rate paths (handshakes,
 * request/reply); the throughput subscriber uses its own byte-counting fast path instead.
 */
export class NatsParser {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly h: ParserHandlers) {}

  push(chunk: Buffer): void {
    let buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let i = 0;
    while (i < buf.length) {
      const nl = buf.indexOf(10, i);
      if (nl < 0) break;
      const line = buf.toString("latin1", i, nl > i && buf[nl - 1] === 13 ? nl - 1 : nl);
      if (line.startsWith("MSG ")) {
        const parts = line.split(" ").filter((p) => p.length > 0);
        if (parts.length !== 4 && parts.length !== 5) throw new Error(`bad MSG line: ${line}`);
        const size = Number(parts[parts.length - 1]);
        if (!Number.isInteger(size) || size < 0) throw new Error(`bad MSG size: ${line}`);
        const payloadStart = nl + 1;
        if (buf.length < payloadStart + size + 2) break; // wait for the rest of the payload
        const payload = buf.subarray(payloadStart, payloadStart + size);
        i = payloadStart + size + 2;
        this.h.onMsg?.(parts[1]!, parts[2]!, parts.length === 5 ? parts[3] : undefined, payload);
        continue;
      }
      i = nl + 1;
      const op = line.slice(0, 4).toUpperCase();
      if (op === "PING") this.h.onPing?.();
      else if (op === "PONG") this.h.onPong?.();
      else if (op === "INFO") this.h.onInfo?.(line.slice(5));
      else if (op === "+OK") this.h.onOk?.();
      else if (op === "-ERR") this.h.onErr?.(line.slice(5));
      else if (line.length > 0) throw new Error(`unexpected server op: ${line.slice(0, 80)}`);
    }
    // Copy the remainder: `chunk` belongs to the socket and a subarray would pin it.
    buf = buf.subarray(i);
    this.buf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}

/**
 * A raw NATS connection: waits for INFO, sends CONNECT (+ extra ops) and a PING, resolves after the PONG.
 * Answers server PINGs, records -ERR, and lets the caller await PONGs (flush) and 'drain'.
 */
export class NatsConn {
  readonly socket: Socket;
  private readonly pongWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private closedError: Error | undefined;
  lastError: string | undefined;
  onMsg: ParserHandlers["onMsg"];
  private infoResolve: (() => void) | undefined;
  private gotInfo = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    const parser = new NatsParser({
      onInfo: () => {
        this.gotInfo = true;
        this.infoResolve?.();
      },
      onPing: () => socket.write("PONG\r\n"),
      onPong: () => this.pongWaiters.shift()?.resolve(),
      onErr: (m) => {
        this.lastError = m;
      },
      onMsg: (s, sid, r, p) => this.onMsg?.(s, sid, r, p),
    });
    socket.on("data", (d: Buffer) => {
      try {
        parser.push(d);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
        socket.destroy();
      }
    });
    const onGone = (e?: Error) =>
      this.fail(
        new Error(
          `connection closed${e ? `: ${e.message}` : ""}${this.lastError ? ` (server said -ERR ${this.lastError})` : ""}`,
        ),
      );
    socket.on("error", onGone);
    socket.on("close", () => onGone());
  }

  private fail(e: Error): void {
    if (!this.closedError) this.closedError = e;
    for (const w of this.pongWaiters.splice(0)) w.reject(this.closedError);
  }

  get closed(): Error | undefined {
    return this.closedError;
  }

  /** Connect, handshake, and send `extraOps` (e.g. SUB lines) before the first PING. */
  static async open(host: string, port: number, extraOps = "", timeoutMs = 5000): Promise<NatsConn> {
    const socket = connect({ host, port, noDelay: true });
    const conn = new NatsConn(socket);
    const timer = setTimeout(() => {
      conn.fail(new Error(`handshake with ${host}:${port} timed out after ${timeoutMs} ms`));
      socket.destroy();
    }, timeoutMs);
    try {
      await once(socket, "connect");
      await new Promise<void>((resolve, reject) => {
        if (conn.gotInfo) return resolve();
        conn.infoResolve = resolve;
        socket.once("close", () => reject(conn.closedError ?? new Error("closed before INFO")));
      });
      socket.write(`CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\n${extraOps}`);
      await conn.flush();
      return conn;
    } finally {
      clearTimeout(timer);
    }
  }

  /** PING and wait for the PONG: every op sent before it has been processed by the server. */
  flush(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pongWaiters.push({ resolve, reject });
      this.socket.write("PING\r\n");
    });
  }

  /** Resolves on 'drain'; rejects if the connection goes away first. */
  drained(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off("drain", onDrain);
        reject(this.closedError ?? new Error("connection closed"));
      };
      this.socket.once("drain", onDrain);
      this.socket.once("close", onClose);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A payload of `size` printable bytes. */
export function makePayload(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = 97 + (i % 26);
  return b;
}

/**
 * `n` distinct JSON order documents, each exactly `size` bytes (padded with spaces), with the variety of
 * real traffic: ids, customers, SKUs, prices and timestamps change from message to message, so a
 * compressor sees repetition only where real JSON has it (keys, structure), not whole repeated messages.
 * Deterministic (a fixed LCG), so every run and both servers get the same bytes.
 */
export function jsonPayloads(size: number, n: number): Buffer[] {
  let x = 0x2545f491;
  const rnd = (m: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % m;
  };
  const pad = (v: number, w: number) => String(v).padStart(w, "0");
  const statuses = ["created", "paid", "packed", "shipped", "delivered"];
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const fields = {
      orderId: `ord-${pad(100000 + i, 8)}`,
      customer: `cust-${pad(rnd(50000), 5)}`,
      region: ["us-east", "eu-west", "ap-south"][rnd(3)],
      items: [
        {
          sku: `SKU-${pad(rnd(99999), 5)}`,
          qty: 1 + rnd(9),
          price: `${pad(rnd(999), 3)}.${pad(rnd(100), 2)}`,
        },
      ],
      status: statuses[rnd(statuses.length)],
      ts: new Date(Date.UTC(2026, 10, 23, 0, 0, 0, rnd(86_400_000))).toISOString(),
    };
    // The rest of the size is a free-text field of random characters (a token, a hash, a comment), not
    // padding a compressor would squeeze to nothing.
    const room = size - JSON.stringify({ ...fields, ref: "" }).length;
    if (room < 0) throw new Error(`JSON payload needs ${size - room} bytes, more than ${size}`);
    let ref = "";
    for (let k = 0; k < room; k++) ref += "abcdefghijklmnopqrstuvwxyz0123456789"[rnd(36)];
    out.push(Buffer.from(JSON.stringify({ ...fields, ref })));
  }
  return out;
}

/** One Buffer of `PUB` ops, one per payload, back to back (all payloads the same size, so ops too). */
export function distinctPubBatch(
  subject: string,
  payloads: readonly Buffer[],
): { batch: Buffer; opLen: number; ops: number } {
  const ops = payloads.map((pl) => pubOp(subject, pl));
  return { batch: Buffer.concat(ops), opLen: ops[0]!.length, ops: ops.length };
}

/** The op `PUB <subject> <size>\r\n<payload>\r\n`. */
export function pubOp(subject: string, payload: Buffer, reply?: string): Buffer {
  const head = reply
    ? `PUB ${subject} ${reply} ${payload.length}\r\n`
    : `PUB ${subject} ${payload.length}\r\n`;
  return Buffer.concat([Buffer.from(head), payload, CRLF]);
}

/**
 * One Buffer of identical `op`s back to back, about `targetBytes` long (at least one op): written over and
 * over, it costs the generator one syscall-sized write per ~1 MiB and no per-message work at all.
 */
export function repeatOp(
  op: Buffer,
  targetBytes = 1024 * 1024,
): { batch: Buffer; opLen: number; ops: number } {
  const ops = Math.max(1, Math.floor(targetBytes / op.length));
  const batch = Buffer.allocUnsafe(op.length * ops);
  for (let k = 0; k < ops; k++) op.copy(batch, k * op.length);
  return { batch, opLen: op.length, ops };
}

// ---- IPC between the orchestrator (bench/main) and the workers ----

/**
 * Worker → orchestrator. Every worker sends `ready` once set up and `result` (or `error`) at the end. A
 * region worker's `ready` carries its URLs; it answers each `status` query with a `status` message.
 */
export type WorkerMessage =
  | { type: "ready"; port?: number; clientUrl?: string; gatewayUrl?: string; probe?: ProbeStats }
  | { type: "status"; peer: string; state: string | null }
  | { type: "result"; data: Record<string, unknown> }
  | { type: "error"; message: string };

/**
 * Orchestrator → worker. `go` starts the measured work; `expect` tells a subscriber the final count;
 * `stop` ends the fake servers (sink, firehose) and the region workers; `dial` makes a region worker link
 * to a peer region; `status` asks a region worker for the state of its link to `peer`.
 */
export type ControlMessage =
  | { type: "go"; count?: number }
  | { type: "expect"; count: number }
  | { type: "stop" }
  | { type: "dial"; url: string; region: string }
  | { type: "status"; peer: string };

/**
 * Where a worker that subscribes in one region publishes its probes from (the cross-region cases): a
 * connection to the *other* region's server, on which `PUB <subject> 0` is sent every `intervalMs` until one
 * of them arrives through the subscription, for at most `timeoutMs`.
 */
export interface ProbeConfig {
  readonly host: string;
  readonly port: number;
  readonly subject: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** How long the interest took to be usable from the other region, and how many probes that cost. */
export interface ProbeStats {
  readonly probesSent: number;
  readonly ms: number;
}

/**
 * Publish probes to `cfg.subject` from a separate connection to the other region until `arrived` resolves
 * (the caller's subscription saw one), at most `cfg.timeoutMs`. Interest crosses a gateway asynchronously:
 * a message published before it has arrived is dropped, so the measured publisher starts only after this.
 */
export async function probeUntilDelivered(cfg: ProbeConfig, arrived: Promise<void>): Promise<ProbeStats> {
  const conn = await NatsConn.open(cfg.host, cfg.port);
  const op = Buffer.from(`PUB ${cfg.subject} 0\r\n\r\n`);
  const t0 = Date.now();
  let probesSent = 0;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      arrived,
      new Promise<never>((_, reject) => {
        const tick = () => {
          if (conn.closed) return reject(conn.closed);
          conn.socket.write(op);
          probesSent++;
        };
        tick();
        timer = setInterval(tick, cfg.intervalMs);
        deadline = setTimeout(
          () =>
            reject(
              new Error(
                `no probe on ${cfg.subject} arrived within ${cfg.timeoutMs} ms (${probesSent} sent from ${cfg.host}:${cfg.port})`,
              ),
            ),
          cfg.timeoutMs,
        );
      }),
    ]);
  } finally {
    clearInterval(timer);
    clearTimeout(deadline);
    conn.close();
  }
  return { probesSent, ms: Date.now() - t0 };
}

/** CPU used by this process (user+system) in ms since `since`. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}
