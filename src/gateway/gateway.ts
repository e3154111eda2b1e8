/**
 * One region's gateway: its links to other regions, interest propagation (snapshots, numbered deltas,
 * resync on gaps), link-state topology, and forwarding of local publishes and transit messages.
 * docs/link-protocol.md is the contract; this file wires the parts:
 *
 *   RegionPort ──interest──▶ Gateway ──frames──▶ Link(s)
 *             ◀──inject────          ◀──frames──
 *   codec.ts encodes/decodes frames, remote-interest.ts holds what others want, topology.ts says who is
 *   reachable and through whom, forwarder.ts decides where a message goes.
 */
import type { Logger } from "pino";
import type { InterestChange } from "../interest/interest-set.js";
import type { SubjectFilter } from "../interest/pattern-set.js";
import { isValidSubject, isWireSafe } from "../interest/subject.js";
import type { LocalPublishHandler, RegionPort } from "../region/port.js";
import { BridgeheadError } from "../util/errors.js";
import type { BackoffOptions } from "./backoff.js";
import {
  decodeFrame,
  decodeFrameInto,
  FrameEncoder,
  FrameError,
  type InterestAction,
  type LinkOp,
} from "./codec.js";
import type { CompressionMode } from "./compression.js";
import { Deduper } from "./dedupe.js";
import { type Destination, Forwarder, HELD_HOP, parseRoutedReply, routedReply } from "./forwarder.js";
import { InFlight } from "./in-flight.js";
import {
  type Link,
  LinkDialer,
  type LinkDirection,
  LinkListener,
  type LinkState,
  type LinkToken,
} from "./link.js";
import type { OutboxLimits } from "./outbox.js";
import { type DeltaAction, RemoteInterest } from "./remote-interest.js";
import { ReplyLedger } from "./reply-ledger.js";
import { type FrameDropListener, SendQueue } from "./send-queue.js";
import { type MsgSink, StoreForward } from "./store-forward.js";
import { type Advertisement, Topology } from "./topology.js";

export interface GatewayPeer {
  /** ws://host:port of the peer's gateway listener. */
  readonly url: string;
  /** The region expected there; a different one is refused. */
  readonly region?: string;
  /** The link's token; default: the gateway's token for that region. */
  readonly token?: string;
}

export interface GatewayOptions {
  readonly region: string;
  /** One token for every link, or the token of the link configured with each peer region. */
  readonly token: LinkToken;
  /** Where to accept links; omit for a region that only dials. */
  readonly listen?: { readonly host: string; readonly port: number };
  readonly peers?: readonly GatewayPeer[];
  readonly logger: Logger;
  /** Heartbeat interval (ms) for links; default 2000. */
  readonly heartbeatMs?: number;
  /** Handshake timeout (ms) for links; default 5000. Tests and chaos runs shrink it. */
  readonly handshakeTimeoutMs?: number;
  /** Redial backoff of this gateway's dialers; default 100 ms doubling up to 10 s. */
  readonly dialBackoff?: BackoffOptions;
  /** Per-link flow control (backpressure); default DEFAULT_FLOW_CONTROL. */
  readonly flowControl?: Partial<FlowControl>;
  /**
   * Announce and use link ACKs (replay of what a lost link did not deliver); default true. Off only to
   * measure what they cost (bench) or to talk to a peer that must not be sent ACK ops.
   */
  readonly acks?: boolean;
  /** Per peer region: compression of the frames sent on the link to it; default off. */
  readonly compression?: (peer: string) => CompressionMode | undefined;
  /** How often this region re-advertises its links with fresh RTTs (ms); default 10000. */
  readonly advertiseMs?: number;
  /** Per peer region: what the link may carry each way (export/import filters); none = everything. */
  readonly filters?: FilterLookup;
  /**
   * Bounds of the outbox for messages to each destination region (store-and-forward while its path is
   * down or saturated); default DEFAULT_OUTBOX_LIMITS (docs/delivery-guarantees.md).
   */
  readonly outboxLimits?: (destination: string) => OutboxLimits | undefined;
}

/**
 * What one link may carry. `outbound`: subjects this region may send to the peer (its export list and
 * the peer's import list); `inbound`: subjects it accepts from the peer (the peer's export list and its
 * own import list).
 */
export interface LinkFilters {
  readonly outbound: SubjectFilter;
  readonly inbound: SubjectFilter;
}

export type FilterLookup = (peer: string) => LinkFilters | undefined;

export interface GatewayStats {
  msgsForwarded: number;
  msgsReceived: number;
  msgsDelivered: number;
  msgsTransit: number;
  msgsUnroutable: number;
  /** Messages a link filter kept from being sent (outbound) or accepted (inbound). */
  msgsFiltered: number;
  interestUpdatesSent: number;
  interestUpdatesReceived: number;
  resyncsRequested: number;
  /** Messages that arrived here a second time (a replay after a link loss) and were not delivered again. */
  duplicatesDropped: number;
}

/** Traffic of the links to one peer, summed over every connection so far (monitoring). */
export interface LinkCounters {
  msgsSent: number;
  msgsReceived: number;
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  /** Messages this link's export/import filters kept from being sent to or accepted from the peer. */
  msgsFiltered: number;
  /** Messages routed to this peer (it was the next hop) while no link to it was up. */
  msgsUnroutable: number;
  /** Links to this peer that reached `syncing` (the first one included). */
  established: number;
}

/** A read-only view of the link to one peer, for the monitor and metrics. */
export interface LinkView extends Readonly<LinkCounters> {
  readonly peer: string;
  /** The current link's state; without one, the dialer's (`connecting`, `down`), else the last link's final state. */
  readonly state: LinkState;
  /** Who dialed the current link; when there is none, `dial` if this side redials. */
  readonly direction: LinkDirection | undefined;
  readonly remote: string | undefined;
  readonly rttMicros: number | undefined;
  /** When the current link reached `syncing` (ms since the epoch). */
  readonly since: number | undefined;
  readonly bufferedBytes: number;
  /** Frames handed to the socket, not yet written to the kernel. */
  readonly pendingFrames: number;
  /** The link's send queue: data encoded for the peer, waiting while the link is saturated (backpressure). */
  readonly queued: { readonly frames: number; readonly messages: number; readonly bytes: number };
  /** Data written to the link that the peer has not acknowledged yet (kept for replay). */
  readonly unacked: { readonly messages: number; readonly bytes: number };
  /** Whether the current link uses ACKs (both sides announced `ack`); false without a link. */
  readonly acks: boolean;
  /** Compression of what the current link sends: mode, frames compressed, bytes before and after. */
  readonly compression: {
    readonly mode: CompressionMode;
    readonly frames: number;
    readonly bytesIn: number;
    readonly bytesOut: number;
  };
  /**
   * Since when (ms since the epoch) the link has been waiting for interest: the handshake while it is
   * `syncing` (the peer's snapshot not yet in), else the oldest unanswered RESYNC_REQUEST sent on it.
   * Undefined when nothing is awaited.
   */
  readonly interestAwaitedSince: number | undefined;
  /** Dial attempts since the last successful handshake (this side dials only). */
  readonly dialAttempts: number;
  /** How the last link to this peer ended. */
  readonly lastLoss: LinkLoss | undefined;
}

export interface LinkLoss {
  readonly state: "down" | "closed";
  readonly cause: string;
  /** ms since the epoch */
  readonly at: number;
}

export class GatewayError extends BridgeheadError {
  override readonly name = "GatewayError";
}

/** How much a link may have in flight before data waits in its send queue (backpressure). */
export interface FlowControl {
  /**
   * Data written and not yet acknowledged: enough for full speed on fast paths (the kernel's socket
   * buffers alone hold several MiB), small enough that a saturated link cannot take the heap. Default 32 MiB.
   */
  readonly maxUnackedBytes: number;
  /** Bytes queued in the socket (not yet handed to the kernel) above which nothing more is written. Default 8 MiB. */
  readonly maxSocketBufferedBytes: number;
}

export const DEFAULT_FLOW_CONTROL: FlowControl = Object.freeze({
  maxUnackedBytes: 32 * 1024 * 1024,
  maxSocketBufferedBytes: 8 * 1024 * 1024,
});
/** The receiver ACKs at least every this many MSG ops, and otherwise within ACK_DELAY_MS. */
const ACK_EVERY = 512;
const ACK_DELAY_MS = 10;

/**
 * Per-link state: the link, its two encoders, its send queue and flush scheduling. Control ops (interest,
 * topology, ACKs) and data (MSG) are encoded apart; control is written at once at every flush, data goes
 * through the send queue and only while the link is not saturated, so interest and ACKs never wait behind
 * a backlog of messages. With a peer that ACKs (feature `ack`), every data frame written is kept until
 * acknowledged, for replay if the link dies.
 */
class Session implements MsgSink {
  /** Control ops: interest, topology, resync, ACK. */
  readonly encoder = new FrameEncoder();
  /** MSG ops only. */
  readonly data = new FrameEncoder();
  readonly inFlight = new InFlight();
  readonly queue: SendQueue;
  /** The peer ACKs what it receives, so unacknowledged frames can be replayed. */
  readonly reliable: boolean;
  /** MSG ops received on this link, and the count last ACKed to the peer. */
  received = 0;
  ackedReceived = 0;
  ackTimer: NodeJS.Timeout | undefined;
  /** Data frames the socket refused (link no longer open): replayed with the unacknowledged ones. */
  private readonly refused: { frame: Buffer; ops: number }[] = [];
  private readonly opCounts: number[] = [];
  /** Set once the peer broke the protocol: the rest of its frames is ignored. */
  closing = false;
  /** Undefined = the link carries everything that way. */
  outbound: SubjectFilter | undefined;
  inbound: SubjectFilter | undefined;
  framesSent = 0;
  bytesSent = 0;
  msgsSent = 0;
  msgsReceived = 0;
  framesReceived = 0;
  bytesReceived = 0;
  msgsFiltered = 0;
  msgsUnroutable = 0;
  /** Origins whose snapshot was asked for on this link, and when (monitoring: convergence lag). */
  readonly resyncsPending = new Map<string, number>();
  readonly since = Date.now();
  private flushQueued = false;

  constructor(
    readonly peer: string,
    readonly link: Link,
    limits: OutboxLimits,
    onDrop: FrameDropListener,
    private readonly flow: FlowControl,
    acks: boolean,
  ) {
    // Both sides must have announced `ack`: each then ACKs what it receives and keeps what it sends.
    this.reliable = acks && link.peerFeatures.includes("ack");
    this.queue = new SendQueue(limits, onDrop);
  }

  /** More data would only wait: the send queue holds some already, or the link cannot take more now. */
  saturated(): boolean {
    return this.queue.frames > 0 || !this.canWrite();
  }

  private canWrite(): boolean {
    return (
      this.inFlight.bytes < this.flow.maxUnackedBytes &&
      this.link.bufferedAmount < this.flow.maxSocketBufferedBytes
    );
  }

  sendMsg(
    origin: string,
    originSeq: number,
    subject: string,
    reply: string,
    hdrLen: number,
    payload: Buffer,
    start: number,
    end: number,
    dests: readonly Destination[],
  ): void {
    this.data.msg(origin, originSeq, subject, reply, hdrLen, payload, start, end, dests);
    this.msgsSent++;
    this.flushSoon();
  }

  /**
   * Data frames not known to have reached the peer, oldest first, with the ops of each to skip.
   * `unconfirmed`: written to the link, so possibly delivered; the others never left this side.
   */
  takeUnsent(): { frame: Buffer; skipOps: number; unconfirmed: boolean }[] {
    const out = (this.reliable ? this.inFlight.unacked() : []).map((u) => ({ ...u, unconfirmed: true }));
    for (const r of this.refused) out.push({ frame: r.frame, skipOps: 0, unconfirmed: false });
    this.refused.length = 0;
    for (const q of this.queue.takeAll()) out.push({ frame: q.frame, skipOps: 0, unconfirmed: false });
    for (const frame of this.data.take()) out.push({ frame, skipOps: 0, unconfirmed: false });
    return out;
  }

  /** Send what the encoders hold once the current event-loop turn is done: many ops, few frames. */
  flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    process.nextTick(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  flush(): void {
    for (const frame of this.encoder.take()) {
      if (!this.link.send(frame)) break;
      this.framesSent++;
      this.bytesSent += frame.length;
    }
    if (this.data.pendingOps > 0) {
      const counts = this.opCounts;
      counts.length = 0;
      const frames = this.data.take(counts);
      const now = performance.now();
      for (let i = 0; i < frames.length; i++) this.queue.push(frames[i]!, counts[i]!, now);
    }
    this.pump();
  }

  /** Write queued data frames while the link can take them (called again on ACKs and by a timer). */
  pump(): void {
    while (this.queue.frames > 0 && this.canWrite()) {
      const q = this.queue.shift()!;
      if (!this.link.send(q.frame)) {
        // The link is going down: keep the frame for replay rather than lose its messages.
        this.refused.push(q);
        continue;
      }
      if (this.reliable) this.inFlight.add(q.frame, q.ops);
      this.framesSent++;
      this.bytesSent += q.frame.length;
    }
  }
}

/** See LinkView.interestAwaitedSince. */
function awaitedSince(s: Session): number | undefined {
  const t = Math.min(
    s.link.state === "syncing" ? s.since : Number.POSITIVE_INFINITY,
    ...s.resyncsPending.values(),
  );
  return Number.isFinite(t) ? t : undefined;
}

const ACTION: Record<InterestChange["op"], InterestAction> = { add: 1, update: 2, remove: 3 };
const ACTION_NAME: Record<InterestAction, DeltaAction> = { 1: "add", 2: "update", 3: "remove", 4: "skip" };
const SKIP: InterestAction = 4;

/** Epoch: time-based, 4 ms resolution, wrapping u32 (compared with serial arithmetic). */
function newEpoch(): number {
  return Math.floor(Date.now() / 4) >>> 0;
}

export class Gateway implements LocalPublishHandler {
  readonly region: string;
  readonly epoch = newEpoch();
  readonly remote = new RemoteInterest();
  readonly topology: Topology;
  readonly forwarder: Forwarder;
  readonly stats: GatewayStats = {
    msgsForwarded: 0,
    msgsReceived: 0,
    msgsDelivered: 0,
    msgsTransit: 0,
    msgsUnroutable: 0,
    msgsFiltered: 0,
    interestUpdatesSent: 0,
    interestUpdatesReceived: 0,
    resyncsRequested: 0,
    duplicatesDropped: 0,
  };
  /** Sequence of this region's own interest changes (what others see as its applied sequence). */
  localSeq = 0;
  private msgSeq = 0;
  private readonly sessions = new Map<string, Session>();
  private listener: LinkListener | undefined;
  private readonly dialers = new Map<LinkDialer, GatewayPeer>();
  private readonly log: Logger;
  private unsubscribeInterest: (() => void) | undefined;
  private unwatchRemote: (() => void) | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly resyncAsked = new Map<string, number>();
  /** Routed reply subjects of requests carried here: replies to them pass link filters. */
  private readonly replies = new ReplyLedger();
  /** Outboxes, held interest and drop accounting (store-and-forward). */
  readonly store: StoreForward;
  /** Duplicate detection for messages delivered here, by (origin, origin sequence). */
  readonly dedupe = new Deduper();
  private drainQueued = false;
  private closed = false;
  private filters: FilterLookup | undefined;
  private listenAddress: { host: string; port: number } | undefined;
  /** Per peer: counters of its links that ended, and how the last one ended (monitoring). */
  private readonly pastLinks = new Map<string, LinkCounters>();
  private readonly lastLoss = new Map<string, LinkLoss>();
  /** Per origin: when its interest last changed here (ms since the epoch). */
  private readonly interestAppliedAt = new Map<string, number>();
  /** Per origin: the peer whose link carried the interest last applied (monitoring). */
  private readonly interestSource = new Map<string, string>();
  private readonly rttListeners = new Set<(peer: string, rttMicros: number) => void>();

  constructor(
    readonly port: RegionPort,
    readonly options: GatewayOptions,
  ) {
    this.region = options.region;
    this.log = options.logger.child({ region: this.region });
    this.topology = new Topology(this.region, this.epoch);
    this.filters = options.filters;
    this.store = new StoreForward({
      logger: this.log,
      limits: options.outboxLimits,
      epochOf: (region) => this.topology.epochOf(region),
    });
    // The store owns which unreachable regions are held; the forwarder only asks.
    this.forwarder = new Forwarder(this.region, this.remote, this.topology, Math.random, this.store);
  }

  /**
   * Replace the link filters (config reload). They take effect at once for messages both ways. This
   * region's own interest is re-advertised under a new sequence number, so interest a filter held back
   * (or let through) is corrected on every link now; interest relayed for other origins follows their next
   * change.
   */
  setFilters(filters: FilterLookup | undefined): void {
    this.filters = filters;
    for (const s of this.sessions.values()) this.applyFilters(s);
    const seq = ++this.localSeq;
    const own = this.ownSnapshot();
    this.flood(undefined, (s) => this.sendSnapshot(s, this.region, this.epoch, seq, own));
  }

  private applyFilters(s: Session): void {
    const f = this.filters?.(s.peer);
    s.outbound = f === undefined || f.outbound.empty ? undefined : f.outbound;
    s.inbound = f === undefined || f.inbound.empty ? undefined : f.inbound;
  }

  async start(): Promise<void> {
    this.unsubscribeInterest = this.port.onInterest((c) => this.onLocalInterest(c));
    this.port.setPublishHandler(this);
    this.unwatchRemote = this.port.watchRemoteInterest?.(this.remote.union);
    const o = this.options;
    if (o.listen !== undefined) {
      this.listener = new LinkListener({
        region: this.region,
        token: o.token,
        host: o.listen.host,
        port: o.listen.port,
        isLinked: (r) => this.sessions.has(r),
        logger: this.options.logger,
        heartbeatMs: o.heartbeatMs,
        handshakeTimeoutMs: o.handshakeTimeoutMs,
        features: o.acks === false ? [] : undefined,
      });
      this.listener.onLink((link) => this.attach(link));
      this.listenAddress = await this.listener.listen();
    }
    for (const peer of o.peers ?? []) this.dial(peer);
    this.timers.push(
      setInterval(() => this.advertise(), o.advertiseMs ?? 10_000),
      setInterval(() => this.healInterest(), 1000),
      setInterval(() => this.storeTick(), 100),
      setInterval(() => this.logDropSummary(), 10_000),
    );
    for (const t of this.timers) t.unref();
  }

  /** The address links are accepted on (after start). */
  get address(): { host: string; port: number } | undefined {
    return this.listenAddress;
  }

  /** Dial one more peer (also used by config reload). */
  dial(peer: GatewayPeer): LinkDialer {
    const t = this.options.token;
    const token =
      peer.token ?? (typeof t === "string" ? t : peer.region === undefined ? undefined : t(peer.region));
    if (token === undefined) throw new GatewayError(`no token for the link to ${peer.region ?? peer.url}`);
    const dialer = new LinkDialer({
      region: this.region,
      token,
      url: peer.url,
      expectRegion: peer.region,
      isLinked: (r) => this.sessions.has(r),
      logger: this.options.logger,
      heartbeatMs: this.options.heartbeatMs,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      backoff: this.options.dialBackoff,
      features: this.options.acks === false ? [] : undefined,
    });
    dialer.onLink((link) => this.attach(link));
    dialer.start();
    this.dialers.set(dialer, peer);
    return dialer;
  }

  /**
   * Cut the link to `peer` and stop redialing it (config removed it, or a test cuts it). A link the peer
   * dialed will be redialed by the peer unless it drops it too.
   */
  async dropLink(peer: string): Promise<void> {
    const stops: Promise<void>[] = [];
    for (const [dialer, p] of this.dialers) {
      if (p.region === peer || dialer.current?.peerRegion === peer) {
        this.dialers.delete(dialer);
        stops.push(dialer.stop());
      }
    }
    this.sessions.get(peer)?.link.close(4005, "link removed");
    await Promise.all(stops);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.unsubscribeInterest?.();
    this.unwatchRemote?.();
    this.port.setPublishHandler(undefined);
    await Promise.all([...this.dialers.keys()].map((d) => d.stop()));
    for (const s of this.sessions.values()) s.link.close(1001, "gateway shutting down");
    await this.listener?.close();
  }

  // ---- introspection (tests, monitor) -------------------------------------------------------------------

  /** Regions with a link in state syncing or up. */
  linkedRegions(): string[] {
    return [...this.sessions.keys()];
  }

  linkState(peer: string): LinkState | undefined {
    return this.sessions.get(peer)?.link.state;
  }

  /** Every peer with a link, a dialer, or a link in the past. */
  peers(): string[] {
    const out = new Set([...this.sessions.keys(), ...this.pastLinks.keys()]);
    for (const [d, p] of this.dialers) {
      const peer = p.region ?? d.current?.peerRegion;
      if (peer !== undefined) out.add(peer);
    }
    return [...out];
  }

  /** The link to `peer` as the monitor shows it; undefined for a region this gateway never heard of. */
  linkView(peer: string): LinkView | undefined {
    const s = this.sessions.get(peer);
    let dialer: LinkDialer | undefined;
    for (const [d, p] of this.dialers) if (p.region === peer || d.current?.peerRegion === peer) dialer = d;
    const past = this.pastLinks.get(peer);
    if (s === undefined && dialer === undefined && past === undefined) return undefined;
    const count = (k: keyof LinkCounters) =>
      (past?.[k] ?? 0) + (s !== undefined && k !== "established" ? s[k] : 0);
    return {
      peer,
      state:
        s?.link.state ??
        (dialer !== undefined && dialer.state !== "closed"
          ? dialer.state
          : (this.lastLoss.get(peer)?.state ?? "down")),
      direction: s?.link.direction ?? (dialer === undefined ? undefined : "dial"),
      remote: s?.link.remote,
      rttMicros: s?.link.rttMicros,
      since: s?.since,
      bufferedBytes: s?.link.bufferedAmount ?? 0,
      pendingFrames: s?.link.pendingFrames ?? 0,
      queued: {
        frames: s?.queue.frames ?? 0,
        messages: s?.queue.messages ?? 0,
        bytes: s?.queue.bytes ?? 0,
      },
      unacked: { messages: s?.inFlight.unackedOps ?? 0, bytes: s?.inFlight.bytes ?? 0 },
      acks: s?.reliable ?? false,
      compression:
        s === undefined
          ? { mode: this.options.compression?.(peer) ?? "off", frames: 0, bytesIn: 0, bytesOut: 0 }
          : { ...s.link.compression },
      interestAwaitedSince: s === undefined ? undefined : awaitedSince(s),
      dialAttempts: dialer?.attempts ?? 0,
      lastLoss: this.lastLoss.get(peer),
      msgsSent: count("msgsSent"),
      msgsReceived: count("msgsReceived"),
      framesSent: count("framesSent"),
      framesReceived: count("framesReceived"),
      bytesSent: count("bytesSent"),
      bytesReceived: count("bytesReceived"),
      msgsFiltered: count("msgsFiltered"),
      msgsUnroutable: count("msgsUnroutable"),
      established: (past?.established ?? 0) + (s === undefined ? 0 : 1),
    };
  }

  /** The peer whose link carried the interest of `origin` applied last; undefined for none (or itself). */
  interestLearnedFrom(origin: string): string | undefined {
    return this.interestSource.get(origin);
  }

  /** When `origin`'s interest last changed here (snapshot or delta applied), ms since the epoch. */
  interestUpdatedAt(origin: string): number | undefined {
    return this.interestAppliedAt.get(origin);
  }

  /** Calls `cb` with every RTT a link measures (heartbeat pong), in microseconds; returns an unsubscribe. */
  onRtt(cb: (peer: string, rttMicros: number) => void): () => void {
    this.rttListeners.add(cb);
    return () => this.rttListeners.delete(cb);
  }

  /** The last interest sequence applied from `origin` (this region's own for itself). */
  appliedSeq(origin: string): { epoch: number; seq: number } | undefined {
    if (origin === this.region) return { epoch: this.epoch, seq: this.localSeq };
    const o = this.remote.origin(origin);
    return o === undefined ? undefined : { epoch: o.epoch, seq: o.seq };
  }

  // ---- links --------------------------------------------------------------------------------------------

  private attach(link: Link): void {
    const peer = link.peerRegion;
    if (this.closed || peer === undefined) {
      link.close(1001, "gateway shutting down");
      return;
    }
    const existing = this.sessions.get(peer);
    if (existing !== undefined) {
      // Two links to one peer (both sides dialed): keep the one dialed by the smaller region name, so both
      // ends make the same choice.
      const keepDialedBy = this.region < peer ? this.region : peer;
      const newDialedBy = link.direction === "dial" ? this.region : peer;
      if (newDialedBy !== keepDialedBy) {
        link.close(4002, `duplicate region ${peer}: already linked`);
        return;
      }
      existing.link.close(4002, `duplicate region ${peer}: replaced by the link ${keepDialedBy} dialed`);
      this.sessions.delete(peer);
    }
    link.setCompression(this.options.compression?.(peer) ?? "off");
    const session = new Session(
      peer,
      link,
      this.store.limitsFor(peer),
      (reason, _frame, ops) => this.store.countDrops(peer, reason, ops, { via: "send queue" }),
      { ...DEFAULT_FLOW_CONTROL, ...this.options.flowControl },
      this.options.acks !== false,
    );
    this.applyFilters(session);
    this.sessions.set(peer, session);
    link.onFrame((frame) => this.onFrame(session, frame));
    link.onRtt((us) => {
      for (const l of this.rttListeners) l(peer, us);
    });
    link.onState((state, cause) => {
      if (state === "down" || state === "closed") this.retire(session, state, cause);
      if ((state === "down" || state === "closed") && this.sessions.get(peer) === session) {
        this.sessions.delete(peer);
        this.log.info({ peer, state, cause }, "link lost");
        this.linksChanged();
      }
      if (state === "down" || state === "closed") {
        clearTimeout(session.ackTimer);
        // After the topology update above, so what the peer did not acknowledge takes the new routes.
        this.replayUnsent(session);
      }
    });
    // Initial sync: every advertisement and every origin's interest we know, ours included.
    const enc = session.encoder;
    for (const ad of this.topology.advertisements()) enc.topology(ad.origin, ad.epoch, ad.seq, ad.neighbors);
    this.sendSnapshot(session, this.region, this.epoch, this.localSeq, this.ownSnapshot());
    for (const origin of this.remote.originNames()) {
      if (origin === peer) continue;
      const st = this.remote.origin(origin)!;
      this.sendSnapshot(session, origin, st.epoch, st.seq, this.wireEntries(origin));
    }
    session.flush();
    this.linksChanged();
    this.drainSoon();
  }

  /** A session ended: keep its counters (metrics are totals per peer) and the cause. */
  private retire(s: Session, state: "down" | "closed", cause: string | undefined): void {
    const past = this.pastLinks.get(s.peer) ?? {
      msgsSent: 0,
      msgsReceived: 0,
      framesSent: 0,
      framesReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      msgsFiltered: 0,
      msgsUnroutable: 0,
      established: 0,
    };
    past.msgsSent += s.msgsSent;
    past.msgsReceived += s.msgsReceived;
    past.framesSent += s.framesSent;
    past.framesReceived += s.framesReceived;
    past.bytesSent += s.bytesSent;
    past.bytesReceived += s.bytesReceived;
    past.msgsFiltered += s.msgsFiltered;
    past.msgsUnroutable += s.msgsUnroutable;
    past.established++;
    this.pastLinks.set(s.peer, past);
    this.lastLoss.set(s.peer, { state, cause: cause ?? "unknown", at: Date.now() });
  }

  /** Compression settings changed (config reload): apply them to the links up now. */
  refreshCompression(): void {
    for (const s of this.sessions.values())
      s.link.setCompression(this.options.compression?.(s.peer) ?? "off");
  }

  /** Outbox limits changed (config reload): apply them to every outbox and link send queue. */
  refreshOutboxLimits(): void {
    this.store.refreshLimits();
    const now = performance.now();
    for (const s of this.sessions.values()) s.queue.setLimits(this.store.limitsFor(s.peer), now);
  }

  /** Up links changed: re-advertise, forget regions no longer reachable. */
  private linksChanged(): void {
    this.advertise();
  }

  private advertise(): void {
    if (this.closed) return;
    const neighbors = [...this.sessions.values()].map((s) => ({
      region: s.peer,
      rttMicros: Math.max(1, Math.round(s.link.rttMicros ?? 1000)),
    }));
    const ad = this.topology.setLocalLinks(neighbors);
    this.flood(undefined, (s) => s.encoder.topology(ad.origin, ad.epoch, ad.seq, ad.neighbors));
    this.forgetUnreachable();
  }

  /**
   * Regions that became unreachable keep their interest for their outbox's max age (store-and-forward):
   * messages for them are parked, not dropped. Regions reachable again are released and their outboxes
   * drained.
   */
  private forgetUnreachable(): void {
    for (const region of this.topology.takeUnreachable()) {
      this.interestSource.delete(region);
      for (const s of this.sessions.values()) s.resyncsPending.delete(region);
      const known = this.remote.origin(region);
      if (known === undefined) continue;
      if (known.entries.size === 0) {
        // Nothing to park for: forget it now, as before store-and-forward.
        this.remote.forget(region);
        continue;
      }
      this.store.hold(region);
      this.log.info(
        { origin: region, holdMs: this.store.limitsFor(region).maxAgeMs },
        "region unreachable: holding its interest, parking its messages",
      );
    }
    let released = false;
    for (const region of this.store.heldRegions()) {
      if (!this.topology.reachable(region)) continue;
      this.store.release(region);
      released = true;
      this.log.info({ origin: region, parked: this.store.parkedFor(region) }, "region reachable again");
    }
    if (released) this.drainSoon();
  }

  /** Periodic store-and-forward work: expiry, holds that ran out, replay of what can go now. */
  private storeTick(): void {
    const now = performance.now();
    for (const s of this.sessions.values()) {
      s.queue.enforce(now);
      s.pump();
    }
    this.store.expire();
    for (const region of this.store.takeExpiredHolds()) {
      if (this.remote.forget(region))
        this.log.info({ origin: region }, "region unreachable past its outbox max age: interest forgotten");
    }
    this.drainSoon();
  }

  private logDropSummary(): void {
    const summary = this.store.takeDropSummary();
    if (summary.size === 0) return;
    const drops: Record<string, number> = {};
    for (const [k, n] of summary) drops[k] = n;
    this.log.warn({ drops, totals: this.store.drops }, "outbox drops in the last interval");
  }

  /** Replay parked messages through whatever path exists now; once per event-loop turn at most. */
  private drainSoon(): void {
    if (this.drainQueued || this.store.empty || this.closed) return;
    this.drainQueued = true;
    setImmediate(() => {
      this.drainQueued = false;
      if (this.closed) return;
      this.store.drain(
        (dest) => {
          const hop = this.topology.nextHop(dest);
          return hop === undefined ? undefined : this.sessions.get(hop);
        },
        (dest, subject, queues) => this.stillWants(dest, subject, queues),
        (sink, subject) => {
          const f = this.filterSubject(subject);
          const out = this.sessions.get(sink.peer)?.outbound;
          return f === undefined || out === undefined || out.allows(f);
        },
      );
    });
  }

  /** Whether `region` (as far as this region knows now) wants `subject`: a plain subscription, or one of `queues`. */
  private stillWants(region: string, subject: string, queues: readonly string[]): boolean {
    const routed = parseRoutedReply(subject);
    if (routed !== undefined) return routed.region === region || this.topology.reachable(routed.region);
    const m = this.remote.sublist.match(subject);
    for (const e of m.plain) if (e.region === region) return true;
    for (const group of m.queues) {
      for (const e of group) if (e.region === region && queues.includes(e.queue ?? "")) return true;
    }
    return false;
  }

  /**
   * A link ended: the data frames the peer did not acknowledge (and any not yet written) are decoded again
   * and each message re-routed by its destination set: another path if there is one, else the outbox.
   * Destinations that did get it will drop the copy by (origin, sequence).
   */
  private replayUnsent(s: Session): void {
    let n = 0;
    for (const { frame, skipOps, unconfirmed } of s.takeUnsent()) {
      let i = 0;
      for (const op of decodeFrame(frame)) {
        if (op.type !== "msg" || i++ < skipOps) continue;
        this.route(undefined, op, unconfirmed);
        n++;
      }
    }
    if (n > 0)
      this.log.info({ peer: s.peer, msgs: n }, "re-routing messages the lost link did not acknowledge");
  }

  /** Ask for the interest of reachable regions we know nothing about (e.g. after a partition heals). */
  private healInterest(): void {
    const now = Date.now();
    for (const region of this.topology.reachableRegions()) {
      if (this.remote.origin(region) !== undefined) continue;
      const last = this.resyncAsked.get(region) ?? 0;
      if (last > now - 1000) continue;
      const hop = this.topology.nextHop(region);
      const s = hop === undefined ? undefined : this.sessions.get(hop);
      if (s === undefined) continue;
      // Asked once a second while it lasts: logged when it starts, not at every ask.
      if (last < now - 10_000)
        this.log.info(
          { origin: region, via: hop },
          "interest of a reachable region unknown: asking for a snapshot",
        );
      this.resyncAsked.set(region, now);
      this.stats.resyncsRequested++;
      if (!s.resyncsPending.has(region)) s.resyncsPending.set(region, now);
      s.encoder.resync(region);
      s.flushSoon();
    }
  }

  /** Encode something on every session except `except`. */
  private flood(except: Session | undefined, write: (s: Session) => void): void {
    for (const s of this.sessions.values()) {
      if (s === except) continue;
      write(s);
      s.flushSoon();
    }
  }

  /**
   * Interest tells the peer what to send here, so it is filtered by what this link accepts inbound:
   * entries it could never carry are left out of snapshots.
   */
  private sendSnapshot(
    s: Session,
    origin: string,
    epoch: number,
    seq: number,
    entries: readonly { subject: string; queue: string; weight: number }[],
  ): void {
    const f = s.inbound;
    s.encoder.snapshot(
      origin,
      epoch,
      seq,
      f === undefined ? entries : entries.filter((e) => f.mayAllow(e.subject)),
    );
  }

  /** A change the link filter excludes still advances the origin's sequence, as a `skip` with no subject. */
  private sendDelta(
    s: Session,
    origin: string,
    epoch: number,
    seq: number,
    action: InterestAction,
    subject: string,
    queue: string,
    weight: number,
  ): void {
    if (action !== SKIP && (s.inbound === undefined || s.inbound.mayAllow(subject))) {
      s.encoder.delta(origin, epoch, seq, action, subject, queue, weight);
    } else {
      s.encoder.delta(origin, epoch, seq, SKIP, "", "", 0);
    }
  }

  // ---- interest -----------------------------------------------------------------------------------------

  private ownSnapshot(): { subject: string; queue: string; weight: number }[] {
    return this.port
      .interestSnapshot()
      .map((e) => ({ subject: e.subject, queue: e.queue ?? "", weight: e.weight }));
  }

  private wireEntries(origin: string): { subject: string; queue: string; weight: number }[] {
    return this.remote
      .entriesOf(origin)
      .map((e) => ({ subject: e.subject, queue: e.queue ?? "", weight: e.weight }));
  }

  private onLocalInterest(c: InterestChange): void {
    const seq = ++this.localSeq;
    const action = ACTION[c.op];
    this.stats.interestUpdatesSent++;
    this.flood(undefined, (s) =>
      this.sendDelta(s, this.region, this.epoch, seq, action, c.subject, c.queue ?? "", c.weight),
    );
  }

  private onFrame(session: Session, frame: Buffer): void {
    session.framesReceived++;
    session.bytesReceived += frame.length;
    try {
      decodeFrameInto(frame, (op) => this.onOp(session, op));
    } catch (err) {
      if (err instanceof FrameError) {
        this.log.warn({ peer: session.peer, err: err.message }, "bad frame: closing link");
        session.link.close(4000, `bad frame: ${err.message}`.slice(0, 120));
        return;
      }
      throw err;
    }
  }

  /** Ops a well-behaved peer never sends: close the link (4000) and ignore the rest of its frame. */
  private invalidOp(op: LinkOp): string | undefined {
    switch (op.type) {
      case "msg":
        if (!isWireSafe(op.subject) || (op.reply !== "" && !isWireSafe(op.reply))) {
          return "MSG subject or reply empty or with spaces or control bytes";
        }
        return undefined;
      case "delta":
        if (
          op.action !== SKIP &&
          (!isValidSubject(op.subject) || (op.queue !== "" && !isWireSafe(op.queue)))
        ) {
          return "INTEREST_DELTA with an invalid subject or queue";
        }
        return undefined;
      case "snapshot":
        for (const e of op.entries) {
          if (!isValidSubject(e.subject) || (e.queue !== "" && !isWireSafe(e.queue))) {
            return "INTEREST_SNAPSHOT with an invalid subject or queue";
          }
        }
        return undefined;
      default:
        return undefined;
    }
  }

  private onOp(session: Session, op: LinkOp): void {
    if (session.closing) return;
    const invalid = this.invalidOp(op);
    if (invalid !== undefined) {
      session.closing = true;
      this.log.warn({ peer: session.peer, reason: invalid }, "protocol error from peer: closing link");
      session.link.close(4000, `protocol error: ${invalid}`);
      return;
    }
    switch (op.type) {
      case "msg":
        this.onMsg(session, op);
        return;
      case "delta": {
        if (op.origin === this.region) return;
        this.stats.interestUpdatesReceived++;
        const queue = op.queue === "" ? undefined : op.queue;
        const outcome = this.remote.applyDelta(op.origin, op.epoch, op.seq, ACTION_NAME[op.action], {
          subject: op.subject,
          queue,
          weight: op.weight,
        });
        if (outcome === "applied") {
          this.interestAppliedAt.set(op.origin, Date.now());
          this.interestSource.set(op.origin, session.peer);
          this.flood(session, (s) =>
            this.sendDelta(s, op.origin, op.epoch, op.seq, op.action, op.subject, op.queue, op.weight),
          );
        } else if (outcome === "gap") {
          this.stats.resyncsRequested++;
          this.log.info(
            { peer: session.peer, origin: op.origin, seq: op.seq },
            "interest gap: asking for a snapshot",
          );
          if (!session.resyncsPending.has(op.origin)) session.resyncsPending.set(op.origin, Date.now());
          session.encoder.resync(op.origin);
          session.flushSoon();
        }
        return;
      }
      case "snapshot": {
        if (op.origin === this.region) return;
        this.stats.interestUpdatesReceived++;
        const entries = op.entries.map((e) => ({
          subject: e.subject,
          queue: e.queue === "" ? undefined : e.queue,
          weight: e.weight,
        }));
        session.resyncsPending.delete(op.origin);
        if (this.remote.applySnapshot(op.origin, op.epoch, op.seq, entries)) {
          this.interestAppliedAt.set(op.origin, Date.now());
          this.interestSource.set(op.origin, session.peer);
          // Whichever link it came over, the origin's interest is known again: nothing is awaited for it.
          for (const other of this.sessions.values()) other.resyncsPending.delete(op.origin);
          this.flood(session, (s) => this.sendSnapshot(s, op.origin, op.epoch, op.seq, op.entries));
        }
        if (op.origin === session.peer && session.link.state === "syncing") {
          // The link logs `link up` itself.
          session.link.markUp();
          this.drainSoon();
        }
        return;
      }
      case "resync": {
        if (op.origin === this.region) {
          this.sendSnapshot(session, this.region, this.epoch, this.localSeq, this.ownSnapshot());
        } else {
          const st = this.remote.origin(op.origin);
          if (st === undefined) return;
          this.sendSnapshot(session, op.origin, st.epoch, st.seq, this.wireEntries(op.origin));
        }
        session.flushSoon();
        return;
      }
      case "ack":
        if (!session.inFlight.ack(op.count)) {
          session.closing = true;
          session.link.close(4000, "protocol error: ACK for more MSG ops than were sent");
          return;
        }
        session.pump();
        if (!this.store.empty) this.drainSoon();
        return;
      case "topology": {
        const ad: Advertisement = {
          origin: op.origin,
          epoch: op.epoch,
          seq: op.seq,
          neighbors: op.neighbors,
        };
        if (this.topology.apply(ad)) {
          this.flood(session, (s) => s.encoder.topology(op.origin, op.epoch, op.seq, op.neighbors));
          this.forgetUnreachable();
        }
        return;
      }
    }
  }

  // ---- messages -----------------------------------------------------------------------------------------

  /** LocalPublishHandler: a message published in this region, after local delivery. */
  forward(
    subject: string,
    reply: string | undefined,
    hdr: number,
    buf: Buffer,
    start: number,
    end: number,
    servedQueues: readonly string[],
  ): boolean {
    const branches = this.forwarder.route(subject, servedQueues);
    if (branches.length === 0) return false;
    // Replies come home through the routed prefix, so they need no inbox interest to propagate.
    const wireReply =
      reply === undefined ? "" : parseRoutedReply(reply) ? reply : routedReply(this.region, reply);
    if (wireReply !== "") this.replies.record(wireReply);
    const seq = ++this.msgSeq;
    const filterSubject = this.filterSubject(subject);
    let sent = false;
    for (const b of branches) {
      // Held regions (unreachable, interest kept) and a next hop whose link just went: park.
      const s = b.nextHop === HELD_HOP ? undefined : this.sessions.get(b.nextHop);
      if (s !== undefined && this.filteredOut(s, filterSubject)) continue;
      this.store.send(s, this.region, seq, subject, wireReply, hdr, buf, start, end, b.dests);
      sent = true;
    }
    if (sent) this.stats.msgsForwarded++;
    return sent;
  }

  /** True (and counted) when `s`'s outbound filter keeps `filterSubject` (see filterSubject) off the link. */
  private filteredOut(s: Session, filterSubject: string | undefined): boolean {
    if (filterSubject === undefined || s.outbound === undefined || s.outbound.allows(filterSubject))
      return false;
    this.stats.msgsFiltered++;
    s.msgsFiltered++;
    return true;
  }

  /**
   * The subject link filters judge: the subject itself; for a routed reply, nothing (it answers a request
   * this region carried) or, when no such request was seen, the real subject behind the prefix, so a
   * forged `_GR_.` publish cannot tunnel through a filter.
   */
  private filterSubject(subject: string): string | undefined {
    const routed = parseRoutedReply(subject);
    if (routed === undefined) return subject;
    return this.replies.has(subject) ? undefined : routed.subject;
  }

  private onMsg(session: Session, op: Extract<LinkOp, { type: "msg" }>): void {
    this.stats.msgsReceived++;
    session.msgsReceived++;
    if (session.reliable) this.countForAck(session);
    const filterSubject = this.filterSubject(op.subject);
    if (
      filterSubject !== undefined &&
      session.inbound !== undefined &&
      !session.inbound.allows(filterSubject)
    ) {
      this.stats.msgsFiltered++;
      session.msgsFiltered++;
      return;
    }
    if (op.reply !== "") this.replies.record(op.reply);
    // The common case, a message for this region only, needs no split.
    if (op.dests.length === 1 && op.dests[0]!.region === this.region) {
      this.deliver(op, op.dests[0]!);
      return;
    }
    this.route(session, op);
  }

  /**
   * Pass a message on by its destination set (transit, or replay of a lost link's frames when `from` is
   * undefined) and deliver the part for this region.
   */
  private route(from: Session | undefined, op: Extract<LinkOp, { type: "msg" }>, unconfirmed = false): void {
    const { local, branches, unreachable } = this.forwarder.split(op.dests);
    const filterSubject = this.filterSubject(op.subject);
    for (const b of branches) {
      const s = this.sessions.get(b.nextHop);
      if (s !== undefined && s === from) {
        // Routes still point back where it came from (topology in flux): never bounce it.
        this.stats.msgsUnroutable++;
        s.msgsUnroutable++;
        continue;
      }
      if (s !== undefined && this.filteredOut(s, filterSubject)) continue;
      this.store.send(
        s,
        op.origin,
        op.originSeq,
        op.subject,
        op.reply,
        op.hdrLen,
        op.payload,
        0,
        op.payload.length,
        b.dests,
        unconfirmed,
      );
      if (from !== undefined) this.stats.msgsTransit++;
    }
    if (unreachable.length > 0) {
      // No path now: park for when one comes back (or until the outbox's max age).
      const copy = Buffer.from(op.payload);
      for (const d of unreachable) {
        this.store.park(d, op.origin, op.originSeq, op.subject, op.reply, op.hdrLen, copy, unconfirmed);
      }
    }
    if (local !== undefined) this.deliver(op, local);
  }

  /** Count a received MSG op and ACK the total soon: at once every ACK_EVERY ops, else within ACK_DELAY_MS. */
  private countForAck(s: Session): void {
    s.received++;
    if (s.received - s.ackedReceived >= ACK_EVERY) {
      this.sendAck(s);
      return;
    }
    if (s.ackTimer === undefined) {
      s.ackTimer = setTimeout(() => this.sendAck(s), ACK_DELAY_MS);
    }
  }

  private sendAck(s: Session): void {
    clearTimeout(s.ackTimer);
    s.ackTimer = undefined;
    if (s.received === s.ackedReceived || this.sessions.get(s.peer) !== s) return;
    s.ackedReceived = s.received;
    s.encoder.ack(s.received);
    s.flushSoon();
  }

  private deliver(op: Extract<LinkOp, { type: "msg" }>, local: Destination): void {
    // A copy replayed after a link loss may have arrived before: deliver each (origin, sequence) once.
    if (!this.dedupe.accept(op.origin, this.topology.epochOf(op.origin) ?? 0, op.originSeq)) {
      this.stats.duplicatesDropped++;
      return;
    }
    let subject = op.subject;
    const routed = parseRoutedReply(subject);
    if (routed !== undefined && routed.region === this.region) subject = routed.subject;
    const reply = op.reply === "" ? undefined : op.reply;
    if (this.port.inject(subject, reply, op.hdrLen, op.payload, 0, op.payload.length, local.queues)) {
      this.stats.msgsDelivered++;
    }
  }
}
