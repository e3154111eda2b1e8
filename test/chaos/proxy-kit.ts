/**
 * Shared pieces for the fault proxy tests: the API started in-process on 127.0.0.1:0, raw HTTP calls, small
 * TCP servers (echo, scripted) and a client that records what it receives and when. Everything started here
 * is tracked and stopped by {@link stopAll}; waits poll a condition with a deadline, never a fixed sleep.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { startToxiproxyServer, type ToxiproxyServer } from "../../src/chaos/proxy/index.js";

const servers = new Set<Server>();
const sockets = new Set<Socket>();
const apis = new Set<ToxiproxyServer>();

export function now(): number {
  return performance.now();
}

/** Poll `fn` (sync or async) every 5 ms until it returns a value other than undefined/false, or fail after `ms`. */
export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function startApi(
  options: { proxyMetrics?: boolean; runtimeMetrics?: boolean } = {},
): Promise<ToxiproxyServer> {
  const api = await startToxiproxyServer({ host: "127.0.0.1", port: 0, ...options });
  apis.add(api);
  return api;
}

export interface HttpResult {
  readonly status: number;
  readonly contentType: string | null;
  readonly headers: Headers;
  readonly text: string;
}

/** A raw HTTP call; `body` goes as is (strings are not re-encoded, so malformed JSON stays malformed). */
export async function http(
  base: string,
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const res = await fetch(base + path, { method, body, headers, redirect: "manual" });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get("content-type"), headers: res.headers, text };
}

export function json<T = unknown>(r: HttpResult): T {
  return JSON.parse(r.text) as T;
}

function listen(server: Server): Promise<number> {
  servers.add(server);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? addr.port : 0);
    });
  });
}

/** A TCP server running `onConnection` for every client; its sockets are tracked for cleanup. */
export async function startTcp(onConnection: (s: Socket) => void): Promise<{ port: number; server: Server }> {
  const server = createServer({ noDelay: true }, (s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.once("close", () => sockets.delete(s));
    onConnection(s);
  });
  const port = await listen(server);
  return { port, server };
}

/** Echoes every byte back. */
export function startEcho(): Promise<{ port: number; server: Server }> {
  return startTcp((s) => s.pipe(s));
}

/** What a client saw: chunks with their arrival times, end (FIN), close and error. */
export class Recorder {
  readonly chunks: { readonly data: Buffer; readonly at: number }[] = [];
  endedAt: number | undefined;
  closedAt: number | undefined;
  error: NodeJS.ErrnoException | undefined;
  connectedAt: number | undefined;

  constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => this.chunks.push({ data: d, at: now() }));
    socket.on("end", () => {
      this.endedAt = now();
    });
    socket.on("close", () => {
      this.closedAt = now();
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      this.error = err;
    });
  }

  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.data.length, 0);
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks.map((c) => c.data));
  }

  /** Time the received byte count first reached `n`. */
  timeOfByte(n: number): number | undefined {
    let total = 0;
    for (const c of this.chunks) {
      total += c.data.length;
      if (total >= n) return c.at;
    }
    return undefined;
  }

  waitBytes(n: number, ms: number): Promise<number> {
    return waitFor(() => this.timeOfByte(n), ms, `${n} bytes (got ${this.bytes})`);
  }

  waitClosed(ms: number): Promise<number> {
    return waitFor(() => this.closedAt, ms, "the connection to close");
  }
}

/** Connect to 127.0.0.1:port; resolves once connected (or rejects with the connect error). */
export function connectTo(port: number): Promise<Recorder> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: "127.0.0.1", port, noDelay: true });
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    const rec = new Recorder(s);
    s.once("connect", () => {
      rec.connectedAt = now();
      resolve(rec);
    });
    s.once("error", (err) => {
      if (rec.connectedAt === undefined) reject(err);
    });
  });
}

/** Write `payload` and time how long until as many bytes came back (an echo server behind the proxy). */
export async function roundTrip(rec: Recorder, payload = Buffer.from("ping"), ms = 5000): Promise<number> {
  const before = rec.bytes;
  const start = now();
  rec.socket.write(payload);
  const at = await rec.waitBytes(before + payload.length, ms);
  return at - start;
}

/** The port of a proxy's `listen` (`127.0.0.1:N`). */
export function portOf(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(":") + 1));
}

export async function stopAll(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all([...apis].map((a) => a.close()));
  apis.clear();
  await Promise.all([...servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  servers.clear();
}
