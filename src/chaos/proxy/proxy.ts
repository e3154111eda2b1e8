/**
 * One TCP proxy: it listens, and for each client dials the upstream and joins the two sockets with two
 * toxic links (upstream = client → server, downstream = server → client). Like Toxiproxy:
 *
 * - a failed dial closes the client at once (it sees a connect, then FIN, no data);
 * - when a link's stream ends, its destination socket is fully closed (no half-close is forwarded), which in
 *   turn ends the other link;
 * - disabling or deleting the proxy closes the listener and every connection; toxics are kept;
 * - connections opened while a reset_peer toxic is in a chain are closed with RST.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { formatTcpAddr, GoNetError, parseUpstream, resolveTcpAddr, type TcpAddr } from "./addr.js";
import { type ConnectionLinks, ToxicCollection } from "./collection.js";
import { ApiError, Mutex, ProxyAlreadyStarted } from "./errors.js";
import { goFloat32, goString } from "./gojson.js";
import { type Chan, now, type ToxicWrapper } from "./link.js";
import { listenLikeGo } from "./listen.js";

/** Go reads at most 32 KiB per read; chunks entering a link are no bigger. */
const MAX_CHUNK = 32 * 1024;

/** Bytes one link has read from its source and written to its destination. */
export interface LinkStats {
  read: number;
  written: number;
}

export interface ConnectionStats {
  readonly client: string;
  readonly upstream: Readonly<LinkStats>;
  readonly downstream: Readonly<LinkStats>;
}

/** Full close like Go's `Close()`: FIN after what was written, or RST when linger is 0. */
function closeSocket(socket: Socket, reset: boolean): void {
  if (socket.destroyed) return;
  if (reset) {
    socket.resetAndDestroy();
    return;
  }
  if (socket.writableLength === 0 || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(() => socket.destroy());
  setTimeout(() => socket.destroy(), 5000).unref();
}

/** Copy a socket into a link's input, chunk by chunk, pausing the socket while the link is full. */
function pumpIn(source: Socket, input: Chan, stats: LinkStats): void {
  const queue: { data: Buffer; ts: number }[] = [];
  let ended = false;
  let pumping = false;
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    while (queue.length > 0) {
      const chunk = queue.shift()!;
      if (!input.trySend(chunk)) {
        source.pause();
        await input.send(chunk);
      }
    }
    pumping = false;
    if (ended) input.close();
    else if (source.isPaused()) source.resume();
  };
  source.on("data", (buf: Buffer) => {
    stats.read += buf.length;
    const ts = now();
    for (let off = 0; off < buf.length; off += MAX_CHUNK) {
      queue.push({ data: buf.subarray(off, off + MAX_CHUNK), ts });
    }
    void pump();
  });
  const end = () => {
    if (ended) return;
    ended = true;
    void pump();
  };
  source.once("end", end);
  source.once("close", end);
  if (source.destroyed || source.readableEnded) end();
  else source.resume();
}

/** Copy a link's output to a socket, waiting for it to drain. Resolves when the stream or the socket ends. */
async function pumpOut(output: Chan, dest: Socket, stats: LinkStats): Promise<void> {
  for (;;) {
    const item = await output.recv();
    if (item === null || dest.destroyed || !dest.writable) return;
    if (item.data.length === 0) continue;
    stats.written += item.data.length;
    if (!dest.write(item.data)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          dest.off("drain", done);
          dest.off("close", done);
          resolve();
        };
        dest.on("drain", done);
        dest.on("close", done);
      });
    }
  }
}

function remoteName(socket: Socket): string {
  const ip = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  return formatTcpAddr({ ip: ip === "" ? undefined : ip, port: socket.remotePort ?? 0 });
}

let connectionSeq = 0;

class Connection {
  readonly name: string;
  readonly stats = { upstream: { read: 0, written: 0 }, downstream: { read: 0, written: 0 } };
  private reset = false;
  private links: ConnectionLinks | undefined;
  private closed = 0;
  private gone = false;

  constructor(
    readonly client: Socket,
    readonly server: Socket,
    private readonly toxics: ToxicCollection,
    private readonly onGone: (c: Connection) => void,
  ) {
    this.name = `${remoteName(client)}#${++connectionSeq}`;
    for (const s of [client, server]) {
      s.once("close", () => {
        if (++this.closed === 2) this.teardown();
      });
    }
  }

  async start(): Promise<void> {
    const links = await this.toxics.startLinks(this.name);
    this.links = links;
    if (this.gone) {
      this.teardown();
      return;
    }
    this.reset = links.resetPeer;
    pumpIn(this.client, links.upstream.input, this.stats.upstream);
    pumpIn(this.server, links.downstream.input, this.stats.downstream);
    void pumpOut(links.upstream.output, this.server, this.stats.upstream).then(() =>
      closeSocket(this.server, this.reset),
    );
    void pumpOut(links.downstream.output, this.client, this.stats.downstream).then(() =>
      closeSocket(this.client, this.reset),
    );
  }

  /** Close both sockets (the proxy stops). */
  close(): void {
    closeSocket(this.client, this.reset);
    closeSocket(this.server, this.reset);
  }

  private teardown(): void {
    this.gone = true;
    if (this.links) {
      this.links.upstream.kill();
      this.links.downstream.kill();
      this.toxics.removeLinks(this.name);
    }
    this.onGone(this);
  }
}

/** Told about every connection of a proxy when it ends (Toxiproxy counts its byte metrics then). */
export type ConnectionObserver = (proxy: FaultProxy, stats: ConnectionStats) => void;

/** Go's `Proxy`; the JSON form is {@link FaultProxy.toJson}. */
export class FaultProxy {
  enabled = false;
  readonly toxics = new ToxicCollection();
  private server: Server | undefined;
  private readonly connections = new Set<Connection>();
  private readonly dialing = new Set<Socket>();
  private readonly lock = new Mutex();

  constructor(
    readonly name: string,
    public listen: string,
    public upstream: string,
    private readonly log: Logger,
    private readonly onConnectionEnd?: ConnectionObserver,
  ) {}

  /** Start listening. Throws {@link ProxyAlreadyStarted}, or an {@link ApiError} 500 with Go's listen error. */
  start(): Promise<void> {
    return this.lock.run(() => this.startLocked());
  }

  /** Stop listening and close every connection. */
  stop(): Promise<void> {
    return this.lock.run(async () => this.stopLocked());
  }

  /**
   * Apply `POST/PATCH /proxies/{p}`: a changed listen (compared after resolution) or upstream restarts the
   * proxy; then `enabled` starts or stops it.
   */
  update(input: { listen: string; upstream: string; enabled: boolean }): Promise<void> {
    return this.lock.run(async () => {
      if (await this.differs(input.listen, input.upstream)) {
        this.stopLocked();
        this.listen = input.listen;
        this.upstream = input.upstream;
      }
      if (input.enabled !== this.enabled) {
        if (input.enabled) await this.startLocked();
        else this.stopLocked();
      }
    });
  }

  /** Whether `listen` (resolved) or `upstream` differ from this proxy's. Throws an ApiError 500 if unresolvable. */
  async differs(listen: string, upstream: string): Promise<boolean> {
    let resolved: TcpAddr;
    try {
      resolved = await resolveTcpAddr(listen);
    } catch (err) {
      if (err instanceof GoNetError) throw new ApiError(err.message, 500);
      throw err;
    }
    return !(this.listen === formatTcpAddr(resolved) && this.upstream === upstream);
  }

  connectionStats(): ConnectionStats[] {
    return [...this.connections].map((c) => ({
      client: c.name,
      upstream: { ...c.stats.upstream },
      downstream: { ...c.stats.downstream },
    }));
  }

  /** `{"name":…,"listen":…,"upstream":…,"enabled":…,"Logger":{},"toxics":[…]}`, field order as Go's. */
  toJson(): string {
    const toxics = this.toxics.list().map(toxicJson).join(",");
    return `{"name":${goString(this.name)},"listen":${goString(this.listen)},"upstream":${goString(this.upstream)},"enabled":${this.enabled},"Logger":{},"toxics":[${toxics}]}`;
  }

  private async startLocked(): Promise<void> {
    if (this.enabled) throw new ProxyAlreadyStarted();
    // Go sockets have TCP_NODELAY on; with Nagle, a slicer's small pieces and small delayed writes would be
    // held back up to a delayed-ACK timeout and every latency figure would be off.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (s) =>
      this.accept(s),
    );
    try {
      this.listen = (await listenLikeGo(server, this.listen)).address;
    } catch (err) {
      if (err instanceof GoNetError) throw new ApiError(err.message, 500);
      throw err;
    }
    server.on("error", (err) => this.log.warn({ err, proxy: this.name }, "proxy listener error"));
    this.server = server;
    this.enabled = true;
    this.log.info({ proxy: this.name, listen: this.listen, upstream: this.upstream }, "started proxy");
  }

  private stopLocked(): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.server?.close();
    this.server = undefined;
    for (const s of this.dialing) s.destroy();
    this.dialing.clear();
    for (const c of this.connections) c.close();
    this.log.info({ proxy: this.name, listen: this.listen, upstream: this.upstream }, "terminated proxy");
  }

  private accept(client: Socket): void {
    client.on("error", () => {});
    if (!this.enabled) {
      client.destroy();
      return;
    }
    const target = parseUpstream(this.upstream);
    if ("error" in target) {
      this.log.error(
        { proxy: this.name, upstream: this.upstream, err: target.error },
        "cannot dial upstream",
      );
      client.destroy();
      return;
    }
    this.log.debug({ proxy: this.name, client: remoteName(client) }, "accepted client");
    this.dialing.add(client);
    const server = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    server.on("error", (err) => {
      if (!this.dialing.delete(client)) return;
      this.log.error(
        { proxy: this.name, upstream: this.upstream, err },
        "unable to open connection to upstream",
      );
      server.destroy();
      client.destroy();
    });
    client.once("close", () => {
      if (this.dialing.delete(client)) server.destroy();
    });
    server.once("connect", () => {
      if (!this.dialing.delete(client) || client.destroyed || !this.enabled) {
        server.destroy();
        client.destroy();
        return;
      }
      const conn = new Connection(client, server, this.toxics, (c) => {
        this.connections.delete(c);
        this.onConnectionEnd?.(this, {
          client: c.name,
          upstream: c.stats.upstream,
          downstream: c.stats.downstream,
        });
      });
      this.connections.add(conn);
      void conn.start();
    });
  }
}

/** `{"attributes":{…every attribute…},"name":…,"type":…,"stream":…,"toxicity":…}`, field order as Go's. */
export function toxicJson(t: ToxicWrapper): string {
  const attributes = t.kind.attributes.map((k) => `${goString(k)}:${t.attributes[k] ?? 0}`).join(",");
  return `{"attributes":{${attributes}},"name":${goString(t.name)},"type":${goString(t.kind.type)},"stream":${goString(t.stream)},"toxicity":${goFloat32(t.toxicity)}}`;
}
