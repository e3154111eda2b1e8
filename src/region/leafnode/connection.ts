/**
 * The leaf side of one leafnode connection at a time to a nats-server cluster: dial (rotating over the
 * configured URLs and those the hub advertises), handshake (INFO, CONNECT, the `connect_info` INFO),
 * keepalive (answer PINGs, ping the hub, drop a stale connection), and redial with backoff. It knows
 * nothing about interest or messages: the port gets the ops through LeafHandlers.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import type { Logger } from "pino";
import { Backoff, type BackoffOptions } from "../../gateway/backoff.js";
import { BridgeheadError } from "../../util/errors.js";
import { encodeConnect, PING, PONG } from "./encoder.js";
import { type HubInfo, type HubOp, LeafParser, LeafProtocolError } from "./parser.js";
import { LeafConfigError, type LeafEndpoint, parseLeafUrl } from "./url.js";

export { LeafConfigError, type LeafEndpoint, parseLeafUrl } from "./url.js";

/** The connection went away before the hub answered (see LeafConnection.ping). */
export class LeafConnectionLostError extends BridgeheadError {
  override readonly name = "LeafConnectionLostError";
}

export type LeafState = "connecting" | "handshake" | "syncing" | "up" | "closed";

export type LeafDataOp = Extract<HubOp, { type: "sub" | "unsub" | "msg" }>;

export interface LeafHandlers {
  /** Handshake done: write this side's interest now. The hub's interest snapshot follows. */
  onReady(info: HubInfo): void;
  /** The hub's interest snapshot is complete (the PONG to the PING written after onReady). */
  onSynced(): void;
  /** LS+, LS-, LMSG, HMSG after onReady. */
  onOp(op: LeafDataOp): void;
  /** A connection that reached onReady is gone; a redial follows unless closed. */
  onDown(cause: string): void;
}

export interface LeafConnectionOptions {
  readonly urls: readonly string[];
  /** Credentials for URLs that carry none. */
  readonly user?: string;
  readonly password?: string;
  /** The region: the leaf's name (and cluster name) on the hub. */
  readonly region: string;
  readonly logger: Logger;
  /** Redial delays once every URL failed in a row; default 100 ms doubling to 5 s. */
  readonly backoff?: BackoffOptions;
  /** TCP connect to snapshot complete; default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
  /** Keepalive ping interval; default 5000 ms. */
  readonly pingIntervalMs?: number;
  /** Unanswered pings before the connection counts as stale; default 2 (as nats-server). */
  readonly maxPingsOut?: number;
  /** Wait after the hub reports a loop (as nats-server, 30 s). */
  readonly loopDelayMs?: number;
}

export interface LeafConnectionStats {
  /** Handshakes completed. */
  connects: number;
  /** Attempts that ended before the handshake completed (refused, wrong port, bad credentials, timeout). */
  failures: number;
  disconnects: number;
  bytesIn: number;
  bytesOut: number;
}

const VERSION = "2.9.10";

export class LeafConnection {
  readonly stats: LeafConnectionStats = { connects: 0, failures: 0, disconnects: 0, bytesIn: 0, bytesOut: 0 };
  private readonly endpoints: LeafEndpoint[];
  private readonly backoff: Backoff;
  private readonly serverId = `BH${randomBytes(12).toString("hex").toUpperCase()}`;
  private socket: Socket | undefined;
  private current: LeafEndpoint | undefined;
  private hub: HubInfo | undefined;
  private st: LeafState = "connecting";
  private next = 0;
  private failedInRow = 0;
  private loopDetected = false;
  private pingsOut = 0;
  /** One entry per PING written on the current connection, in order: PONGs answer them in order. */
  private pongWaiters: ({ resolve: () => void; reject: (err: Error) => void } | undefined)[] = [];
  private out: Buffer[] = [];
  private outQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private closedPromise: Promise<void> | undefined;

  constructor(
    private readonly o: LeafConnectionOptions,
    private readonly handlers: LeafHandlers,
  ) {
    if (o.urls.length === 0) throw new LeafConfigError("a nats broker needs at least one leafnode URL");
    this.endpoints = o.urls.map(parseLeafUrl);
    this.backoff = new Backoff({ initialMs: 100, maxMs: 5000, ...o.backoff });
  }

  get state(): LeafState {
    return this.st;
  }

  /** The URL of the current connection, while there is one. */
  get url(): string | undefined {
    return this.st === "connecting" || this.st === "closed" ? undefined : this.current?.url;
  }

  /** The INFO of the hub of the current connection (after the handshake). */
  get hubInfo(): HubInfo | undefined {
    return this.hub;
  }

  /** Bytes handed to the socket and not yet written (slow hub). */
  get bufferedBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  /** Every URL dialed in rotation: the configured ones, then those the hub advertised. */
  get urls(): string[] {
    return this.endpoints.map((e) => e.url);
  }

  start(): void {
    this.dial();
  }

  /** Queue bytes for the hub (after onReady only); written in one batch at the end of this tick. */
  write(data: Buffer | string): void {
    if (this.st !== "syncing" && this.st !== "up") return;
    this.out.push(typeof data === "string" ? Buffer.from(data) : data);
    if (this.outQueued) return;
    this.outQueued = true;
    process.nextTick(() => this.flush());
  }

  /**
   * Resolves when the hub answers a PING written now: everything written before it (LS+, messages) has
   * been processed by that server. Rejects with LeafConnectionLostError without a connection.
   */
  ping(): Promise<void> {
    if (this.st !== "up" && this.st !== "syncing") {
      return Promise.reject(new LeafConnectionLostError(`no leafnode connection (${this.st})`));
    }
    return new Promise((resolve, reject) => {
      this.pongWaiters.push({ resolve, reject });
      this.write(PING);
    });
  }

  private failWaiters(why: string): void {
    const waiters = this.pongWaiters;
    this.pongWaiters = [];
    for (const w of waiters) w?.reject(new LeafConnectionLostError(why));
  }

  async close(): Promise<void> {
    if (this.st === "closed") return this.closedPromise;
    this.st = "closed";
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.failWaiters("connection closed");
    const s = this.socket;
    this.closedPromise =
      s === undefined || s.destroyed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            s.once("close", () => resolve());
            this.flush();
            s.end();
            // A hub that does not close its side must not hold the shutdown.
            setTimeout(() => s.destroy(), 1000).unref();
          });
    return this.closedPromise;
  }

  private flush(): void {
    this.outQueued = false;
    if (this.out.length === 0) return;
    const chunks = this.out;
    this.out = [];
    const s = this.socket;
    if (s === undefined || s.destroyed) return;
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.stats.bytesOut += data.length;
    s.write(data);
  }

  private dial(): void {
    if (this.st === "closed") return;
    const ep = this.endpoints[this.next % this.endpoints.length]!;
    this.next = (this.next + 1) % this.endpoints.length;
    this.current = ep;
    this.st = "connecting";
    this.hub = undefined;
    this.pingsOut = 0;
    this.out = [];
    let cause = "closed by the hub";
    let ready = false;
    const log = this.o.logger.child({ url: ep.url });
    const s = connect({ host: ep.host, port: ep.port });
    this.socket = s;
    s.setNoDelay(true);
    const fail = (why: string) => {
      cause = why;
      s.destroy();
    };
    this.timer = setTimeout(
      () => fail(`no complete leafnode handshake within ${this.o.handshakeTimeoutMs ?? 5000} ms`),
      this.o.handshakeTimeoutMs ?? 5000,
    );
    const parser = new LeafParser((op) => {
      if (this.socket !== s) return;
      switch (op.type) {
        case "ping":
          // Before the handshake `write` refuses: answer directly, the hub may ping early.
          if (ready) this.write(PONG);
          else s.write(PONG);
          return;
        case "pong":
          this.pingsOut = 0;
          this.pongWaiters.shift()?.resolve();
          if (this.st === "syncing") {
            this.st = "up";
            clearTimeout(this.timer);
            this.failedInRow = 0;
            this.backoff.reset();
            this.startPinger(s);
            log.info({ server: this.hub?.server_name }, "leafnode connection up");
            this.handlers.onSynced();
          }
          return;
        case "ok":
          return;
        case "err":
          if (/loop detected/i.test(op.message)) {
            this.loopDetected = true;
            log.error({ err: op.message }, "hub reports a leafnode loop: closing");
            fail(`loop detected: ${op.message}`);
          } else {
            // A leaf -ERR does not close the connection by itself (§2.8); the hub closes when it must.
            log.warn({ err: op.message }, "hub sent an error");
            cause = op.message;
          }
          return;
        case "info":
          this.onInfo(s, op.info, log, fail, () => {
            ready = true;
          });
          return;
        default:
          if (ready) this.handlers.onOp(op);
      }
    });
    s.on("connect", () => {
      if (this.st === "connecting") this.st = "handshake";
    });
    s.on("data", (chunk: Buffer) => {
      this.stats.bytesIn += chunk.length;
      try {
        parser.push(chunk);
      } catch (err) {
        if (!(err instanceof LeafProtocolError)) throw err;
        log.warn({ err: err.message }, "protocol error from the hub: closing");
        fail(`protocol error: ${err.message}`);
      }
    });
    s.on("error", (err) => {
      cause = err.message;
    });
    s.on("close", () => {
      clearTimeout(this.timer);
      clearInterval(this.pinger);
      if (this.socket === s) this.socket = undefined;
      this.failWaiters(cause);
      const wasUp = this.st === "up";
      if (ready) {
        this.stats.disconnects++;
        log.warn({ cause }, "leafnode connection lost");
        this.handlers.onDown(cause);
      } else if (this.st !== "closed") {
        this.stats.failures++;
        log.warn({ cause }, "leafnode connection failed");
      }
      if (this.st === "closed") return;
      this.st = "connecting";
      this.scheduleRedial(wasUp);
    });
  }

  private onInfo(
    s: Socket,
    info: HubInfo,
    log: Logger,
    fail: (why: string) => void,
    markReady: () => void,
  ): void {
    this.discover(info);
    if (this.st === "handshake" && this.hub === undefined) {
      // nats-server refuses the same way: a client port's INFO has no leafnode_urls.
      if (!info.client_id || info.leafnode_urls === undefined) {
        fail("not a leafnode port (INFO without client_id or leafnode_urls)");
        return;
      }
      this.hub = info;
      const ep = this.current!;
      const user = ep.user ?? this.o.user;
      const pass = ep.password ?? this.o.password;
      s.write(
        encodeConnect({
          version: VERSION,
          server_id: this.serverId,
          name: `bridgehead-${this.o.region}`,
          cluster: `bridgehead-${this.o.region}`,
          ...(user !== undefined ? { user } : {}),
          ...(pass !== undefined ? { pass } : {}),
        }),
      );
      return;
    }
    if (info.connect_info === true && this.st === "handshake") {
      this.hub = { ...this.hub, ...info };
      this.st = "syncing";
      this.stats.connects++;
      markReady();
      log.debug({ account: info.remote_account }, "leafnode handshake done");
      this.handlers.onReady(this.hub);
      // The hub wrote its whole interest right after this INFO: the PONG to this PING marks its end.
      this.pongWaiters.push(undefined);
      this.write(PING);
    }
  }

  /** Add the leafnode URLs the cluster advertises, so failover reaches servers not configured. */
  private discover(info: HubInfo): void {
    for (const hp of info.leafnode_urls ?? []) {
      if (typeof hp !== "string") continue;
      let ep: LeafEndpoint;
      try {
        ep = parseLeafUrl(`nats-leaf://${hp}`);
      } catch {
        continue;
      }
      if (this.endpoints.some((e) => e.host === ep.host && e.port === ep.port)) continue;
      this.endpoints.push(ep);
      this.o.logger.debug({ url: ep.url }, "leafnode URL advertised by the cluster");
    }
  }

  private startPinger(s: Socket): void {
    const max = this.o.maxPingsOut ?? 2;
    this.pinger = setInterval(() => {
      if (this.socket !== s) return;
      if (this.pingsOut >= max) {
        this.o.logger.warn({ url: this.current?.url, pingsOut: this.pingsOut }, "stale leafnode connection");
        s.destroy();
        return;
      }
      this.pingsOut++;
      this.pongWaiters.push(undefined);
      this.write(PING);
    }, this.o.pingIntervalMs ?? 5000);
    this.pinger.unref();
  }

  private scheduleRedial(wasUp: boolean): void {
    let delay = 0;
    if (this.loopDetected) {
      this.loopDetected = false;
      delay = this.o.loopDelayMs ?? 30_000;
    } else if (wasUp) {
      // A healthy connection died: try the next server at once.
      this.failedInRow = 0;
    } else {
      this.failedInRow++;
      // Every server once in a row before waiting: failover should not pay a backoff.
      if (this.failedInRow % this.endpoints.length === 0) delay = this.backoff.next();
    }
    this.timer = setTimeout(() => this.dial(), delay);
  }
}
