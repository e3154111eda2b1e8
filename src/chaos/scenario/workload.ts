/**
 * The scenario's clients, with the official `nats` client: publishers and requesters at a fixed rate,
 * subscribers and queue workers (which answer requests). Every message carries its id and send time in
 * headers; the recorder matches deliveries against sends. Clients reconnect forever with a short wait, so a
 * region that is killed and restarted gets its clients (and their subscriptions) back.
 */
import { performance } from "node:perf_hooks";
import {
  connect,
  ErrorCode,
  Events,
  headers,
  type Msg,
  type NatsConnection,
  type NatsError,
  type Subscription,
} from "nats";
import type { Logger } from "pino";
import type { Recorder } from "./recorder.js";
import type { Scenario } from "./schema.js";

export const ID_HEADER = "Bh-Chaos-Id";
export const SENT_HEADER = "Bh-Chaos-Sent";

/** Milliseconds since the workload started (before that, since the clock was made). */
export class Clock {
  private t0 = performance.now();

  start(): void {
    this.t0 = performance.now();
  }

  now(): number {
    return performance.now() - this.t0;
  }
}

export interface WorkloadOptions {
  readonly spec: Scenario["workload"];
  /** When publishers and requesters stop (ms from the start) unless they stop earlier. */
  readonly duration: number;
  readonly clientUrl: (region: string) => string;
  readonly recorder: Recorder;
  readonly clock: Clock;
  readonly logger: Logger;
}

interface Client {
  readonly nc: NatsConnection;
  connected: boolean;
}

interface Receiver {
  readonly key: string;
  readonly region: string;
  readonly subject: string;
  readonly queue: string | undefined;
  readonly reply: boolean;
  readonly from: number;
  readonly until: number;
  readonly client: Client;
  sub: Subscription | undefined;
}

interface Sender {
  readonly name: string;
  readonly subject: string;
  readonly rate: number;
  readonly payload: Uint8Array;
  readonly from: number;
  readonly until: number;
  readonly client: Client;
  readonly timeout: number | undefined;
  sent: number;
}

function nameOf(spec: { name?: string | undefined; region: string }, kind: string, i: number): string {
  return spec.name ?? `${kind}${i}@${spec.region}`;
}

export class Workload {
  private readonly clients: Client[] = [];
  private readonly receivers: Receiver[] = [];
  private readonly senders: Sender[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(private readonly o: WorkloadOptions) {}

  /** Connect every client and subscribe the receivers that start at 0. */
  static async connect(o: WorkloadOptions): Promise<Workload> {
    const w = new Workload(o);
    try {
      await w.setUp();
    } catch (err) {
      await w.close();
      throw err;
    }
    return w;
  }

  /** Start the clock, the senders and the timers of late or stopping receivers. */
  start(): void {
    this.o.clock.start();
    for (const r of this.receivers) {
      if (r.from > 0) this.timers.push(setTimeout(() => this.subscribe(r), r.from));
      if (r.until < Number.POSITIVE_INFINITY)
        this.timers.push(setTimeout(() => this.unsubscribe(r), r.until));
    }
    // One ticker for every sender: each catches up to rate x elapsed, so a slow event loop delays, not drops.
    this.ticker = setInterval(() => this.tick(), 5);
  }

  stopSenders(): void {
    this.stopped = true;
    clearInterval(this.ticker);
  }

  /**
   * Every client connected, and every receiver active now subscribed at its region's broker (checked with
   * `hasInterest`, the broker's own view), so a restarted region has its clients back.
   */
  ready(hasInterest: (region: string, subject: string, queue: string | undefined) => boolean): boolean {
    if (!this.clients.every((c) => c.connected && !c.nc.isClosed())) return false;
    const now = this.o.clock.now();
    return this.receivers.every(
      (r) => r.sub === undefined || now >= r.until || hasInterest(r.region, r.subject, r.queue),
    );
  }

  /** Wait for requests still waiting for their reply (each bounded by its timeout). */
  async settle(): Promise<void> {
    await Promise.all([...this.inflight]);
  }

  async close(): Promise<void> {
    this.stopSenders();
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.clients.map((c) => c.nc.close().catch(() => {})));
  }

  private async client(region: string, name: string): Promise<Client> {
    const nc = await connect({
      servers: this.o.clientUrl(region),
      name,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
      reconnectJitter: 50,
    });
    const c: Client = { nc, connected: true };
    this.clients.push(c);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type !== Events.Disconnect && s.type !== Events.Reconnect) continue;
        c.connected = s.type === Events.Reconnect;
        this.o.logger.info({ client: name, region, event: s.type }, "workload client connection");
      }
    })();
    return c;
  }

  private async setUp(): Promise<void> {
    const { spec, recorder } = this.o;
    const end = Number.POSITIVE_INFINITY;
    for (const [i, s] of spec.subscribers.entries()) {
      const base = nameOf(s, "sub", i);
      for (let k = 0; k < s.count; k++) {
        const key = s.count === 1 ? base : `${base}#${k}`;
        const r: Receiver = {
          key,
          region: s.region,
          subject: s.subject,
          queue: undefined,
          reply: false,
          from: s.from ?? 0,
          until: s.until ?? end,
          client: await this.client(s.region, key),
          sub: undefined,
        };
        recorder.addReceiver({
          key,
          kind: "subscriber",
          region: s.region,
          subject: s.subject,
          from: r.from,
          until: r.until,
        });
        this.receivers.push(r);
      }
    }
    for (const [i, q] of spec.queue_workers.entries()) {
      const base = nameOf(q, "worker", i);
      // One key per group (subject + queue): the group must get each message once, whichever member does.
      const key = `${q.queue} ${q.subject}`;
      recorder.addReceiver({
        key,
        kind: "queue",
        region: q.region,
        subject: q.subject,
        queue: q.queue,
        from: q.from ?? 0,
        until: q.until ?? end,
      });
      for (let k = 0; k < q.count; k++) {
        this.receivers.push({
          key,
          region: q.region,
          subject: q.subject,
          queue: q.queue,
          reply: q.reply,
          from: q.from ?? 0,
          until: q.until ?? end,
          client: await this.client(q.region, `${base}#${k}`),
          sub: undefined,
        });
      }
    }
    for (const [i, p] of spec.publishers.entries()) {
      const name = nameOf(p, "pub", i);
      this.senders.push({
        name,
        subject: p.subject,
        rate: p.rate,
        payload: new Uint8Array(p.size),
        from: p.from ?? 0,
        until: Math.min(p.until ?? end, this.o.duration),
        client: await this.client(p.region, name),
        timeout: undefined,
        sent: 0,
      });
    }
    for (const [i, q] of spec.requesters.entries()) {
      const name = nameOf(q, "req", i);
      this.senders.push({
        name,
        subject: q.subject,
        rate: q.rate,
        payload: new Uint8Array(q.size),
        from: q.from ?? 0,
        until: Math.min(q.until ?? end, this.o.duration),
        client: await this.client(q.region, name),
        timeout: q.timeout,
        sent: 0,
      });
    }
    for (const r of this.receivers) if (r.from === 0) this.subscribe(r);
    await Promise.all(this.clients.map((c) => c.nc.flush()));
  }

  private subscribe(r: Receiver): void {
    const { recorder, clock } = this.o;
    r.sub = r.client.nc.subscribe(r.subject, {
      queue: r.queue,
      callback: (err: NatsError | null, msg: Msg) => {
        if (err !== null) return;
        const id = msg.headers?.get(ID_HEADER);
        if (id === undefined || id === "") return;
        if (msg.reply !== undefined && msg.reply !== "") {
          // A request: answered (if this worker replies), accounted for by its requester.
          if (r.reply) msg.respond(msg.data, { headers: msg.headers });
          return;
        }
        recorder.received(r.key, id, clock.now());
      },
    });
  }

  private unsubscribe(r: Receiver): void {
    r.sub?.unsubscribe();
    r.sub = undefined;
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.o.clock.now();
    for (const s of this.senders) {
      if (now < s.from) continue;
      const due = Math.floor(((Math.min(now, s.until) - s.from) * s.rate) / 1000);
      while (s.sent < due) this.send(s);
    }
  }

  private send(s: Sender): void {
    const { recorder, clock } = this.o;
    const id = `${s.name}:${s.sent++}`;
    const at = clock.now();
    const h = headers();
    h.set(ID_HEADER, id);
    h.set(SENT_HEADER, at.toFixed(3));
    if (s.timeout === undefined) {
      recorder.sent(s.name, id, s.subject, at);
      s.client.nc.publish(s.subject, s.payload, { headers: h });
      return;
    }
    const rec = recorder.requestStarted(s.name, at);
    const p = s.client.nc
      .request(s.subject, s.payload, { timeout: s.timeout, headers: h })
      .then(
        () => recorder.requestDone(rec, "ok", clock.now()),
        (err: NatsError) => {
          const outcome =
            err.code === ErrorCode.Timeout
              ? "timeout"
              : err.code === ErrorCode.NoResponders
                ? "no_responders"
                : "error";
          recorder.requestDone(rec, outcome, clock.now());
        },
      )
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }
}
