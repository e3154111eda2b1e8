/**
 * The broker node: accepts client connections, keeps every subscription in one sublist, routes each
 * publish to the matching subscribers (all plain ones, one member per queue group), and reports its
 * local interest changes (0->1 / 1->0 per subject and queue weights) to whoever listens — the gateway.
 */
import { randomBytes } from "node:crypto";
import net, { type AddressInfo } from "node:net";
import { type Logger, pino } from "pino";
import { type InterestChange, type InterestEntry, InterestSet } from "../interest/interest-set.js";
import { InvalidSubjectError } from "../interest/subject.js";
import { Sublist } from "../interest/sublist.js";
import { Authenticator } from "./auth.js";
import { ClientConnection } from "./connection.js";
import { BrokerMonitor } from "./monitor.js";
import type { BrokerOptions } from "./options.js";
import { COMPATIBLE_SERVER_VERSION } from "./protocol.js";
import type { Subscription } from "./subscription.js";

export interface BrokerStats {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
  totalConnections: number;
  slowConsumers: number;
  /** Messages injected from other regions. */
  injectedMsgs: number;
}

export type InterestListener = (change: InterestChange) => void;

/**
 * The gateway's view of local publishes. `forward` runs synchronously inside the publish, after local
 * delivery, so its answer counts for no-responders: a message sent to another region was delivered.
 * The payload is `buf[start, end)` and only valid during the call.
 */
export interface RemoteRouter {
  forward(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    servedQueues: readonly string[],
  ): boolean;
}

/** A NUID-shaped server id ("N" + 55 base32 chars), as clients and tools expect from nats-server. */
function newServerId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = randomBytes(55);
  let id = "N";
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

export class BrokerServer {
  readonly sublist = new Sublist<Subscription>();
  readonly interest = new InterestSet();
  readonly auth: Authenticator;
  readonly serverId = newServerId();
  readonly serverName: string;
  readonly clients = new Map<number, ClientConnection>();
  readonly stats: BrokerStats = {
    inMsgs: 0,
    inBytes: 0,
    outMsgs: 0,
    outBytes: 0,
    totalConnections: 0,
    slowConsumers: 0,
    injectedMsgs: 0,
  };
  readonly startedAt = new Date();
  readonly log: Logger;

  private nextCid = 1;
  private listener: net.Server | undefined;
  private address: AddressInfo | undefined;
  private dirty: ClientConnection[] = [];
  private flushScheduled = false;
  private readonly interestListeners = new Set<InterestListener>();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private remoteRouter: RemoteRouter | undefined;
  /** Queue groups served by the publish in progress; reused so the hot path allocates nothing. */
  private readonly servedScratch: string[] = [];
  private monitor: BrokerMonitor | undefined;
  private monitorAddress: AddressInfo | undefined;

  constructor(
    readonly options: BrokerOptions,
    logger?: Logger,
  ) {
    this.auth = new Authenticator(options.auth);
    this.serverName = options.serverName || this.serverId;
    // A logger handed in is already bound (e.g. to its region); a default one names the server.
    this.log = logger ?? pino({ level: "info" }, pino.destination(2)).child({ server: this.serverName });
  }

  /** Start accepting clients. Resolves with the bound address (port 0/-1 picks a free port). */
  async listen(): Promise<AddressInfo> {
    const srv = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.listener = srv;
    const port = Math.max(this.options.port, 0);
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(port, this.options.host, () => {
        srv.off("error", reject);
        resolve();
      });
    });
    srv.on("error", (err) => this.log.error({ err }, "listener error"));
    this.address = srv.address() as AddressInfo;
    this.deadlineTimer = setInterval(() => {
      const now = Date.now();
      for (const c of this.clients.values()) c.checkWriteDeadline(now);
    }, 1000);
    this.deadlineTimer.unref();
    this.log.info(
      { host: this.address.address, port: this.address.port },
      "listening for client connections",
    );
    if (this.options.httpPort !== undefined) {
      this.monitor = new BrokerMonitor(this);
      this.monitorAddress = await this.monitor.listen(
        this.options.httpHost ?? this.options.host,
        this.options.httpPort,
      );
      this.log.info({ port: this.monitorAddress.port }, "monitoring listening");
    }
    return this.address;
  }

  /** The monitoring port, when `httpPort` was set. */
  get httpPort(): number | undefined {
    return this.monitorAddress?.port;
  }

  get port(): number {
    return this.address?.port ?? 0;
  }

  get host(): string {
    return this.options.host;
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const conn = new ClientConnection(this, socket, this.nextCid++);
    this.clients.set(conn.cid, conn);
    this.stats.totalConnections++;
    conn.start();
  }

  /** The INFO JSON sent to one client (nats-server's field order; client fields last). */
  infoFor(conn: ClientConnection): string {
    const o = this.options;
    let s =
      `{"server_id":"${this.serverId}","server_name":${JSON.stringify(this.serverName)},` +
      `"version":"${COMPATIBLE_SERVER_VERSION}","proto":1,"go":"bridgehead node${process.version}",` +
      `"host":${JSON.stringify(o.host)},"port":${this.port},"headers":true`;
    if (this.auth.required) s += `,"auth_required":true`;
    s += `,"max_payload":${o.maxPayload},"client_id":${conn.cid},"client_ip":${JSON.stringify(conn.remoteAddress.replace(/^::ffff:/, ""))}}`;
    return s;
  }

  // ---- routing ------------------------------------------------------------------------------------------

  /**
   * A local client's publish: deliver to every matching plain subscription and one member of each
   * matching queue group, then offer the message to the remote router (the gateway), telling it which
   * queue groups were served here. Returns whether anyone, here or elsewhere, got it.
   */
  publish(
    from: ClientConnection,
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
  ): boolean {
    this.stats.inMsgs++;
    this.stats.inBytes += end - start;
    const router = this.remoteRouter;
    if (router === undefined)
      return this.deliverLocal(from, subject, reply, hdr, buf, start, end, undefined, null);
    const served = this.servedScratch;
    served.length = 0;
    let delivered = this.deliverLocal(from, subject, reply, hdr, buf, start, end, undefined, served);
    if (router.forward(subject, reply, hdr, buf, start, end, served)) delivered = true;
    return delivered;
  }

  /**
   * A message from another region: every matching plain subscription, and one member of each queue group
   * named in `queues` (the sending side chose this region to serve them; other groups are served
   * elsewhere). Never offered back to the remote router. Returns whether anyone got it.
   */
  inject(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    queues: readonly string[],
  ): boolean {
    this.stats.injectedMsgs++;
    return this.deliverLocal(null, subject, reply, hdr, buf, start, end, queues, null);
  }

  /** Install the gateway's hook for local publishes (one router per broker). */
  setRemoteRouter(router: RemoteRouter | undefined): void {
    this.remoteRouter = router;
  }

  private deliverLocal(
    from: ClientConnection | null,
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    onlyQueues: readonly string[] | undefined,
    served: string[] | null,
  ): boolean {
    const r = this.sublist.match(subject);
    let delivered = false;
    const plain = r.plain;
    for (let i = 0; i < plain.length; i++) {
      if (this.deliver(plain[i]!, from, subject, reply, hdr, buf, start, end)) delivered = true;
    }
    const queues = r.queues;
    for (let g = 0; g < queues.length; g++) {
      const group = queues[g]!;
      const n = group.length;
      const name = group[0]!.queue!;
      if (onlyQueues !== undefined && !onlyQueues.includes(name)) continue;
      // A random start, then the next eligible member: one delivery per group, spread over members.
      const first = n === 1 ? 0 : Math.floor(Math.random() * n);
      for (let k = 0; k < n; k++) {
        if (this.deliver(group[(first + k) % n]!, from, subject, reply, hdr, buf, start, end)) {
          delivered = true;
          served?.push(name);
          break;
        }
      }
    }
    return delivered;
  }

  private deliver(
    sub: Subscription,
    from: ClientConnection | null,
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
  ): boolean {
    const c = sub.client;
    if (sub.closed || c.closed) return false;
    if (c === from && !c.echo) return false;
    if (sub.max > 0 && sub.delivered >= sub.max) return false;
    if (sub.denyFilter && c.permissions?.deliveryDenied(subject)) return false;
    sub.delivered++;
    this.stats.outMsgs++;
    this.stats.outBytes += end - start;
    c.writeMsg(sub, subject, reply, hdr, buf, start, end);
    if (sub.max > 0 && sub.delivered >= sub.max) c.removeSubscription(sub);
    return true;
  }

  // ---- subscriptions and interest -----------------------------------------------------------------------

  /** Insert a subscription; false when its subject is invalid. */
  addSubscription(sub: Subscription): boolean {
    try {
      this.sublist.insert(sub);
    } catch (err) {
      if (err instanceof InvalidSubjectError) return false;
      throw err;
    }
    const change = this.interest.add(sub.subject, sub.queue);
    if (change !== undefined) this.emitInterest(change);
    return true;
  }

  removeSubscription(sub: Subscription): void {
    if (!this.sublist.remove(sub)) return;
    const change = this.interest.remove(sub.subject, sub.queue);
    if (change !== undefined) this.emitInterest(change);
  }

  /** Listen to local interest transitions; returns an unsubscribe function. */
  onInterest(listener: InterestListener): () => void {
    this.interestListeners.add(listener);
    return () => this.interestListeners.delete(listener);
  }

  /** The current local interest, for a gateway link that starts with a full snapshot. */
  interestSnapshot(): InterestEntry[] {
    return this.interest.snapshot();
  }

  private emitInterest(change: InterestChange): void {
    for (const l of this.interestListeners) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err }, "interest listener failed");
      }
    }
  }

  // ---- output coalescing --------------------------------------------------------------------------------

  /**
   * Mark a connection as having output; all marked connections are flushed once the current read (or
   * timer) handler returns, so a burst of messages costs one socket write per client.
   */
  flushSoon(conn: ClientConnection): void {
    if (conn.dirty) return;
    conn.dirty = true;
    this.dirty.push(conn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushAll);
    }
  }

  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const list = this.dirty;
    this.dirty = [];
    for (let i = 0; i < list.length; i++) list[i]!.flush();
  };

  onClientClosed(conn: ClientConnection): void {
    this.clients.delete(conn.cid);
    this.log.debug({ cid: conn.cid, reason: conn.closeReason }, "client closed");
  }

  // ---- shutdown -----------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.deadlineTimer) clearInterval(this.deadlineTimer);
    const listener = this.listener;
    const closed = listener
      ? new Promise<void>((resolve) => listener.close(() => resolve()))
      : Promise.resolve();
    const conns = [...this.clients.values()];
    for (const c of conns) c.close("Server Shutdown");
    for (const c of conns) c.socket.destroy();
    await this.monitor?.close();
    await closed;
  }
}
