/**
 * Store-and-forward for one gateway: the per-destination outboxes, the decision "send now or park", the
 * replay of parked messages once a path is back, held interest of regions that became unreachable, and
 * drop accounting by reason. docs/delivery-guarantees.md is the contract.
 *
 * The gateway keeps the links, filters and the forwarding decision; it hands each (message, destinations,
 * next hop) here. The fast path, nothing parked anywhere and the next hop not saturated, is one check and
 * an encode: no allocation. Everything else (a copy of the payload per parked message) happens only while
 * a path is down or a link is saturated.
 *
 * Ordering: a destination with anything parked gets every new message parked behind it, so per
 * (origin, subject) order is kept across an outage; replay drains oldest first before new traffic flows
 * directly again.
 */
import type { Logger } from "pino";
import type { Destination, HeldRegions } from "./forwarder.js";
import {
  DEFAULT_OUTBOX_LIMITS,
  DROP_REASONS,
  type DropReason,
  Outbox,
  type OutboxLimits,
  type ParkedMsg,
  parkedSize,
} from "./outbox.js";

/** What store-and-forward needs of a link session. */
export interface MsgSink {
  readonly peer: string;
  /** True while the link's unacknowledged or buffered bytes are over their bounds: new data waits. */
  saturated(): boolean;
  /** Encode one MSG op towards the peer (and schedule a flush). */
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
  ): void;
}

/** Whether `region` still wants a parked message (checked at replay): plain interest, or its queue groups. */
export type InterestCheck = (region: string, subject: string, queues: readonly string[]) => boolean;

export interface StoreForwardOptions {
  readonly logger: Logger;
  /** Bounds of the outbox for messages to `destination`; default DEFAULT_OUTBOX_LIMITS. */
  readonly limits?: (destination: string) => OutboxLimits | undefined;
  /** Monotonic milliseconds; injectable for tests. */
  readonly now?: () => number;
  /** The current epoch (run) of a region, as the topology knows it. */
  readonly epochOf?: (region: string) => number | undefined;
}

export interface OutboxView {
  readonly destination: string;
  readonly messages: number;
  readonly bytes: number;
  /** Age of the oldest parked message (ms). */
  readonly oldestAgeMs: number;
  /** Since when its interest is held while it is unreachable (ms since the epoch), if it is. */
  readonly heldSince: number | undefined;
}

export class StoreForward implements HeldRegions {
  private readonly outboxes = new Map<string, Outbox>();
  /** Unreachable regions whose interest is kept, and since when (monotonic ms). */
  private readonly held = new Map<string, number>();
  readonly drops: Record<DropReason, number> = {
    overflow: 0,
    expired: 0,
    no_interest: 0,
    filtered: 0,
    unconfirmed: 0,
  };
  /** Per destination: drops by reason (metrics label both). */
  readonly dropsTo = new Map<string, Record<DropReason, number>>();
  msgsParked = 0;
  /** Bumped whenever the set of held regions changes (the forwarder caches decisions per generation). */
  heldGeneration = 0;
  msgsReplayed = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Drops since the last `takeDropSummary()`, for one aggregated log line instead of one per message. */
  private recentDrops = new Map<string, number>();

  constructor(private readonly options: StoreForwardOptions) {
    this.log = options.logger;
    this.now = options.now ?? (() => performance.now());
  }

  limitsFor(destination: string): OutboxLimits {
    return this.options.limits?.(destination) ?? DEFAULT_OUTBOX_LIMITS;
  }

  /** Nothing is parked anywhere: the caller may take the fast path. */
  get empty(): boolean {
    return this.outboxes.size === 0;
  }

  /** Messages parked for `destination` (0 when none). */
  parkedFor(destination: string): number {
    return this.outboxes.get(destination)?.length ?? 0;
  }

  /**
   * Send `dests` of one message through `sink` (undefined: no link to the next hop), parking every
   * destination that has a backlog here, and all of them when there is no sink.
   */
  send(
    sink: MsgSink | undefined,
    origin: string,
    originSeq: number,
    subject: string,
    reply: string,
    hdrLen: number,
    payload: Buffer,
    start: number,
    end: number,
    dests: readonly Destination[],
    unconfirmed = false,
  ): void {
    // A link that is up takes the message even when saturated: its send queue holds the backlog (bounded,
    // encoded, shed per policy). Parking is for destinations without a path, and for those with a backlog
    // here already, so nothing overtakes what waits.
    if (sink !== undefined && this.outboxes.size === 0) {
      sink.sendMsg(origin, originSeq, subject, reply, hdrLen, payload, start, end, dests);
      return;
    }
    const usable = sink !== undefined;
    const direct: Destination[] = [];
    let copy: Buffer | undefined;
    for (const d of dests) {
      if (usable && !this.outboxes.has(d.region)) {
        direct.push(d);
        continue;
      }
      copy ??= Buffer.from(payload.subarray(start, end));
      this.park(d, origin, originSeq, subject, reply, hdrLen, copy, unconfirmed);
    }
    if (direct.length > 0)
      sink!.sendMsg(origin, originSeq, subject, reply, hdrLen, payload, start, end, direct);
  }

  /**
   * Park one message for one destination (its payload already an owned copy). `unconfirmed`: it was
   * written to a link that died unacknowledged, so it may have arrived (see ParkedMsg.unconfirmed).
   */
  park(
    d: Destination,
    origin: string,
    originSeq: number,
    subject: string,
    reply: string,
    hdrLen: number,
    payload: Buffer,
    unconfirmed = false,
  ): void {
    let box = this.outboxes.get(d.region);
    if (box === undefined) {
      box = new Outbox(d.region, this.limitsFor(d.region), (reason, m) => this.dropped(d.region, reason, m));
      this.outboxes.set(d.region, box);
    }
    const m: ParkedMsg = {
      origin,
      originSeq,
      subject,
      reply,
      hdrLen,
      payload,
      queues: d.queues,
      enqueuedAt: this.now(),
      unconfirmed,
      destEpoch: unconfirmed ? this.options.epochOf?.(d.region) : undefined,
    };
    if (box.push(m)) this.msgsParked++;
    if (box.length === 0) this.outboxes.delete(d.region);
  }

  /**
   * Replay what waits for each destination through its current next hop, oldest first, while the sink
   * takes data. `sinkFor` gives the sink towards a destination (undefined: no path yet); `wants` checks the
   * destination's interest now; `allowed` applies link filters (false: dropped as `filtered`).
   */
  drain(
    sinkFor: (destination: string) => MsgSink | undefined,
    wants: InterestCheck,
    allowed: (sink: MsgSink, subject: string) => boolean,
  ): void {
    for (const [dest, box] of this.outboxes) {
      const sink = sinkFor(dest);
      if (sink === undefined) continue;
      for (let m = box.peek(); m !== undefined && !sink.saturated(); m = box.peek()) {
        box.take();
        if (m.unconfirmed === true && m.destEpoch !== this.options.epochOf?.(dest)) {
          // The run it may have reached is gone; replaying to the new run could deliver it twice.
          this.dropped(dest, "unconfirmed", m);
          continue;
        }
        if (!wants(dest, m.subject, m.queues)) {
          this.dropped(dest, "no_interest", m);
          continue;
        }
        if (!allowed(sink, m.subject)) {
          this.dropped(dest, "filtered", m);
          continue;
        }
        sink.sendMsg(m.origin, m.originSeq, m.subject, m.reply, m.hdrLen, m.payload, 0, m.payload.length, [
          { region: dest, queues: m.queues },
        ]);
        this.msgsReplayed++;
      }
      if (box.length === 0) this.outboxes.delete(dest);
    }
  }

  /** Expire parked messages past their age bound. */
  expire(): void {
    const now = this.now();
    for (const [dest, box] of this.outboxes) {
      box.expire(now);
      if (box.length === 0) this.outboxes.delete(dest);
    }
  }

  // ---- held interest ------------------------------------------------------------------------------------

  /** `region` became unreachable: keep its interest (and park its messages) for its outbox's max age. */
  hold(region: string): void {
    if (this.held.has(region)) return;
    this.held.set(region, this.now());
    this.heldGeneration++;
  }

  /** `region` is reachable again (or forgotten): stop holding. */
  release(region: string): boolean {
    if (!this.held.delete(region)) return false;
    this.heldGeneration++;
    return true;
  }

  isHeld(region: string): boolean {
    return this.held.has(region);
  }

  heldRegions(): string[] {
    return [...this.held.keys()];
  }

  /**
   * Regions held longer than their outbox's max age: no longer held, their parked messages dropped as
   * expired. The caller forgets their interest.
   */
  takeExpiredHolds(): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [region, since] of this.held) {
      if (now - since < this.limitsFor(region).maxAgeMs) continue;
      this.held.delete(region);
      this.heldGeneration++;
      const box = this.outboxes.get(region);
      if (box !== undefined) {
        box.clear("expired");
        this.outboxes.delete(region);
      }
      out.push(region);
    }
    return out;
  }

  /** Limits changed (config reload): apply them to what is parked. */
  refreshLimits(): void {
    for (const [dest, box] of this.outboxes) {
      box.setLimits(this.limitsFor(dest));
      if (box.length === 0) this.outboxes.delete(dest);
    }
  }

  views(): OutboxView[] {
    const now = this.now();
    const wall = Date.now();
    const names = new Set([...this.outboxes.keys(), ...this.held.keys()]);
    return [...names].sort().map((destination) => {
      const box = this.outboxes.get(destination);
      const since = this.held.get(destination);
      return {
        destination,
        messages: box?.length ?? 0,
        bytes: box?.bytes ?? 0,
        oldestAgeMs: box?.oldestAt === undefined ? 0 : Math.max(0, now - box.oldestAt),
        heldSince: since === undefined ? undefined : wall - (now - since),
      };
    });
  }

  /** Totals over every outbox. */
  totals(): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const box of this.outboxes.values()) {
      messages += box.length;
      bytes += box.bytes;
    }
    return { messages, bytes };
  }

  /** Drops since the last call, per "destination reason", then reset (for one aggregated log line). */
  takeDropSummary(): Map<string, number> {
    const out = this.recentDrops;
    this.recentDrops = new Map();
    return out;
  }

  private dropped(destination: string, reason: DropReason, m: ParkedMsg): void {
    this.countDrops(destination, reason, 1, { subject: m.subject, bytes: parkedSize(m) });
  }

  /**
   * Count `n` messages dropped for `destination` (a region, or for a saturated link's send queue the next
   * hop) with `reason`. The first drop of a kind is logged at once, the rest summed into the periodic
   * summary: never a log line per message.
   */
  countDrops(destination: string, reason: DropReason, n: number, detail: Record<string, unknown> = {}): void {
    if (n <= 0) return;
    this.drops[reason] += n;
    let per = this.dropsTo.get(destination);
    if (per === undefined) {
      per = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
      this.dropsTo.set(destination, per);
    }
    per[reason] += n;
    const key = `${destination} ${reason}`;
    const first = !this.recentDrops.has(key);
    this.recentDrops.set(key, (this.recentDrops.get(key) ?? 0) + n);
    if (first) {
      this.log.warn(
        { destination, reason, msgs: n, ...detail },
        "outbox drop (further drops are summed in the next summary)",
      );
    }
  }
}
