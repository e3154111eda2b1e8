/**
 * The region port over a nats-server cluster, reached as a leaf node. The gateway cannot tell it from the
 * embedded broker:
 * - interest: every LS+/LS- the hub sends (the whole cluster's subscriptions, minus the adapter's own,
 *   which the hub never reports back, and minus internal subjects), as InterestSet-style transitions;
 * - local publishes: the adapter subscribes on the cluster to what other regions want (watchRemoteInterest),
 *   so the hub sends those messages; each is offered to the publish handler, with the queue groups the
 *   cluster did not ask this leaf to serve reported as served;
 * - messages from other regions go to the cluster as LMSG/HMSG naming the queue groups this region must
 *   serve. The hub never sends a message back on the connection it came from (§2.7), so nothing echoes.
 * On every new connection both sides are resynced: this side's subscriptions are written again, and the
 * hub's snapshot replaces the interest known so far, reported as differences.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { REPLY_PREFIX } from "../../gateway/forwarder.js";
import type { InterestChange, InterestEntry } from "../../interest/interest-set.js";
import { Sublist } from "../../interest/sublist.js";
import type {
  LocalPublishHandler,
  RegionPort,
  RemoteInterestChange,
  RemoteInterestKey,
  RemoteInterestSource,
} from "../port.js";
import { LeafConnection, type LeafConnectionOptions, type LeafDataOp, type LeafState } from "./connection.js";
import { encodeMsg, encodeSub, encodeUnsub } from "./encoder.js";
import { HubInterest } from "./hub-interest.js";

export interface LeafnodePortOptions extends Omit<LeafConnectionOptions, "logger"> {
  readonly logger: Logger;
  /**
   * Messages from other regions held while no connection is up, delivered once one is (failover to another
   * server); also the most the socket may hold for a slow hub before messages are dropped. Default 8 MiB.
   */
  readonly maxPendingBytes?: number;
}

export interface LeafnodePortStats {
  /** Messages the cluster sent (local publishes offered to the gateway). */
  msgsFromCluster: number;
  /** Messages from other regions written to the cluster. */
  msgsToCluster: number;
  /** Messages from other regions dropped: over the hub's max_payload, or over maxPendingBytes. */
  msgsDropped: number;
  /** Resyncs after a (re)connect that changed the region's interest. */
  resyncs: number;
}

/**
 * Routed replies (`_GR_.<region>.<reply>`, docs/link-protocol.md) cannot cross a nats-server cluster as
 * they are: its clients may not publish to `_GR_.` (the prefix of nats-server's own gateways). Replies are
 * handed to the cluster under this prefix instead, and mapped back when the answers come in.
 */
export const LEAF_REPLY_PREFIX = "_BHR_.";
const ROUTED_REPLIES = `${LEAF_REPLY_PREFIX}>`;

function fromCluster(s: string): string;
function fromCluster(s: string | undefined): string | undefined;
function fromCluster(s: string | undefined): string | undefined {
  return s?.startsWith(LEAF_REPLY_PREFIX) ? REPLY_PREFIX + s.slice(LEAF_REPLY_PREFIX.length) : s;
}

function toCluster(reply: string | undefined): string | undefined {
  return reply?.startsWith(REPLY_PREFIX) ? LEAF_REPLY_PREFIX + reply.slice(REPLY_PREFIX.length) : reply;
}
const NONE: readonly string[] = Object.freeze([]);

interface OwnSub extends RemoteInterestKey {
  readonly subject: string;
  readonly queue: string | undefined;
}

export class LeafnodeRegionPort implements RegionPort {
  readonly connection: LeafConnection;
  readonly stats: LeafnodePortStats = { msgsFromCluster: 0, msgsToCluster: 0, msgsDropped: 0, resyncs: 0 };
  private readonly log: Logger;
  /** Loop detection subject of this leaf (§2.7): sent like a real leaf's, never reported as interest. */
  private readonly lds = `$LDS.${randomBytes(11).toString("hex")}`;
  private readonly local = new HubInterest();
  /** The hub's snapshot being received after a (re)connect; undefined once it is complete. */
  private incoming: HubInterest | undefined;
  private readonly listeners = new Set<(change: InterestChange) => void>();
  private handler: LocalPublishHandler | undefined;
  /** What this adapter subscribed on the cluster for other regions. */
  private readonly own = new Map<string, Map<string | undefined, OwnSub>>();
  /** The queue ones, to tell which groups a received message did not ask this leaf to serve. */
  private readonly ownQueues = new Sublist<OwnSub>();
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly maxPendingBytes: number;
  private dropsLogged = 0;

  constructor(o: LeafnodePortOptions) {
    this.log = o.logger.child({ region: o.region, broker: "nats" });
    this.maxPendingBytes = o.maxPendingBytes ?? 8 * 1024 * 1024;
    this.connection = new LeafConnection(
      { ...o, logger: this.log },
      {
        onReady: () => this.onReady(),
        onSynced: () => this.onSynced(),
        onOp: (op) => this.onOp(op),
        onDown: () => {
          // The interest known so far stays until a new snapshot says otherwise: no flap on failover.
          this.incoming = undefined;
        },
      },
    );
  }

  get state(): LeafState {
    return this.connection.state;
  }

  /** Subscriptions this adapter holds on the cluster for other regions (tests, monitoring). */
  ownSubscriptions(): RemoteInterestKey[] {
    const out: RemoteInterestKey[] = [];
    for (const byQueue of this.own.values()) out.push(...byQueue.values());
    return out;
  }

  start(): void {
    this.connection.start();
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  // ---- RegionPort ---------------------------------------------------------------------------------------

  interestSnapshot(): InterestEntry[] {
    return this.local.snapshot();
  }

  onInterest(listener: (change: InterestChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setPublishHandler(handler: LocalPublishHandler | undefined): void {
    this.handler = handler;
  }

  watchRemoteInterest(source: RemoteInterestSource): () => void {
    for (const k of source.snapshot()) this.addOwn(k.subject, k.queue);
    const stop = source.onChange((c: RemoteInterestChange) => {
      if (c.op === "add") this.addOwn(c.subject, c.queue);
      else this.removeOwn(c.subject, c.queue);
    });
    return () => {
      stop();
      for (const k of this.ownSubscriptions()) this.removeOwn(k.subject, k.queue);
    };
  }

  inject(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    queues: readonly string[],
  ): boolean {
    const wanted = this.local.wants(subject, queues);
    const max = this.connection.hubInfo?.max_payload;
    if (max !== undefined && max > 0 && end - start > max) {
      this.drop(subject, `over the cluster's max_payload of ${max} bytes`);
      return false;
    }
    const st = this.connection.state;
    if (st === "syncing" || st === "up") {
      if (this.connection.bufferedBytes > this.maxPendingBytes) {
        this.drop(subject, "the cluster is not reading fast enough");
        return false;
      }
      this.connection.write(encodeMsg(subject, toCluster(reply), queues, hdr, buf, start, end));
      this.stats.msgsToCluster++;
      return wanted;
    }
    // Between connections: hold what someone wants for the next server, within bounds.
    if (!wanted) return false;
    const msg = encodeMsg(subject, toCluster(reply), queues, hdr, buf, start, end);
    if (this.pendingBytes + msg.length > this.maxPendingBytes) {
      this.drop(subject, "no connection to the cluster and the pending buffer is full");
      return false;
    }
    this.pending.push(msg);
    this.pendingBytes += msg.length;
    return true;
  }

  // ---- connection events --------------------------------------------------------------------------------

  private onReady(): void {
    this.incoming = new HubInterest();
    let out = encodeSub(this.lds, undefined) + encodeSub(ROUTED_REPLIES, undefined);
    for (const k of this.ownSubscriptions()) out += encodeSub(k.subject, k.queue);
    this.connection.write(out);
    // Held messages go after the subscriptions, so replies to them can already come back.
    for (const m of this.pending) {
      this.connection.write(m);
      this.stats.msgsToCluster++;
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  private onSynced(): void {
    const next = this.incoming;
    this.incoming = undefined;
    if (next === undefined) return;
    const changes = this.local.replaceWith(next);
    if (changes.length > 0) {
      this.stats.resyncs++;
      this.log.info({ changes: changes.length, entries: this.local.size }, "region interest resynced");
    }
    for (const c of changes) this.emit(c);
  }

  private onOp(op: LeafDataOp): void {
    switch (op.type) {
      case "sub": {
        if (op.subject === this.lds) {
          this.log.error({ subject: op.subject }, "own loop detection subject came back: leafnode loop");
          return;
        }
        if (!HubInterest.accepts(op.subject, op.queue)) return;
        const target = this.incoming ?? this.local;
        const c = target.set(op.subject, op.queue, op.weight);
        if (c !== undefined && target === this.local) this.emit(c);
        return;
      }
      case "unsub": {
        if (!HubInterest.accepts(op.subject, op.queue)) return;
        const target = this.incoming ?? this.local;
        const c = target.delete(op.subject, op.queue);
        if (c !== undefined && target === this.local) this.emit(c);
        return;
      }
      case "msg": {
        this.stats.msgsFromCluster++;
        const h = this.handler;
        if (h === undefined) return;
        const p = op.payload;
        const subject = fromCluster(op.subject);
        h.forward(subject, fromCluster(op.reply), op.hdr, p, 0, p.length, this.served(op.subject, op.queues));
        return;
      }
    }
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  /**
   * The queue groups the gateway must not send this message to: every group this leaf subscribed for the
   * subject except those the hub listed. The hub lists a group only when no member in the cluster took it
   * (the leaf is its fallback, §1.9), so the others are served already.
   */
  private served(subject: string, listed: readonly string[]): readonly string[] {
    if (this.ownQueues.count === 0) return NONE;
    const m = this.ownQueues.match(subject);
    if (m.queues.length === 0) return NONE;
    const out: string[] = [];
    for (const g of m.queues) {
      const q = g[0]!.queue!;
      if (!listed.includes(q)) out.push(q);
    }
    return out;
  }

  private addOwn(subject: string, queue: string | undefined): void {
    // Already subscribed for routed replies: a second LS+ would be counted twice by the hub.
    if (subject === ROUTED_REPLIES && queue === undefined) return;
    let byQueue = this.own.get(subject);
    if (byQueue === undefined) {
      byQueue = new Map();
      this.own.set(subject, byQueue);
    }
    if (byQueue.has(queue)) return;
    const s: OwnSub = { subject, queue };
    byQueue.set(queue, s);
    if (queue !== undefined) this.ownQueues.insert(s);
    // Weight 1: the cluster prefers its own members anyway and uses the leaf only as a fallback.
    this.connection.write(encodeSub(subject, queue));
  }

  private removeOwn(subject: string, queue: string | undefined): void {
    const byQueue = this.own.get(subject);
    const s = byQueue?.get(queue);
    if (byQueue === undefined || s === undefined) return;
    byQueue.delete(queue);
    if (byQueue.size === 0) this.own.delete(subject);
    if (queue !== undefined) this.ownQueues.remove(s);
    this.connection.write(encodeUnsub(subject, queue));
  }

  private emit(c: InterestChange): void {
    for (const l of this.listeners) l(c);
  }

  private drop(subject: string, why: string): void {
    this.stats.msgsDropped++;
    // The first few in detail, then every thousandth: a saturated hub must not flood the log too.
    if (this.dropsLogged < 10 || this.stats.msgsDropped % 1000 === 0) {
      this.dropsLogged++;
      this.log.warn({ subject, why, dropped: this.stats.msgsDropped }, "message for the cluster dropped");
    }
  }
}
