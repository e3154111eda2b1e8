/**
 * Store-and-forward under real faults (docs/delivery-guarantees.md): two regions, a → b, whose link dials
 * through the embedded fault proxy, driven with toxiproxy-node-client as a user would. Every message carries
 * an id; the subscriber in b counts each id, so loss and duplicates are exact, and they are checked against
 * the gateway's own drop counters.
 */
import { connect, type NatsConnection } from "nats";
import { pino } from "pino";
import { type Proxy as ToxiProxy, Toxiproxy } from "toxiproxy-node-client";
import { afterEach, describe, expect, it } from "vitest";
import { startToxiproxyServer, type ToxiproxyServer } from "../../src/chaos/proxy/index.js";
import { DEFAULT_OUTBOX_LIMITS, type OutboxLimits } from "../../src/gateway/outbox.js";
import { type RunningRegion, startRegion } from "../../src/region/region.js";
import { waitUntil } from "../helpers/regions.js";

const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });
const TOKEN = "chaos-test";
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function region(
  name: string,
  outbox: Partial<OutboxLimits> = {},
  ports: { broker?: number; gateway?: number } = {},
): Promise<RunningRegion> {
  const r = await startRegion({
    name,
    broker: { host: "127.0.0.1", port: ports.broker ?? 0 },
    gateway: {
      token: TOKEN,
      listen: { host: "127.0.0.1", port: ports.gateway ?? 0 },
      // A blackholed link is noticed within ~1 s and redialed quickly once it heals.
      heartbeatMs: 250,
      handshakeTimeoutMs: 1000,
      dialBackoff: { initialMs: 50, maxMs: 400 },
      outboxLimits: () => ({ ...DEFAULT_OUTBOX_LIMITS, ...outbox }),
      // A small window, so a capped link reaches its send queue (and its bound) within a second or two.
      flowControl: { maxUnackedBytes: 256 * 1024, maxSocketBufferedBytes: 64 * 1024 },
    },
    logger,
  });
  cleanups.push(() => r.close());
  return r;
}

async function client(r: RunningRegion): Promise<NatsConnection> {
  const nc = await connect({ servers: r.clientUrl, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  cleanups.push(() => nc.close());
  return nc;
}

interface Pair {
  readonly a: RunningRegion;
  readonly b: RunningRegion;
  readonly proxy: ToxiProxy;
  readonly api: ToxiproxyServer;
}

/** a dials b through a proxy named `a->b`: "upstream" toxics act on a → b, "downstream" on b → a. */
async function pair(outbox: Partial<OutboxLimits> = {}): Promise<Pair> {
  const api = await startToxiproxyServer({ host: "127.0.0.1", port: 0, logger });
  cleanups.push(() => api.close());
  const a = await region("a", outbox);
  const b = await region("b", outbox);
  const gw = new URL(b.gatewayUrl!);
  const proxy = await new Toxiproxy(api.url).createProxy({
    name: "a->b",
    listen: "127.0.0.1:0",
    upstream: `127.0.0.1:${gw.port}`,
  });
  const port = proxy.listen.slice(proxy.listen.lastIndexOf(":") + 1);
  a.gateway.dial({ url: `ws://127.0.0.1:${port}${gw.pathname}`, region: "b" });
  await waitUntil(
    () => a.gateway.linkState("b") === "up" && b.gateway.linkState("a") === "up",
    "a-b up",
    10_000,
  );
  return { a, b, proxy, api };
}

/** Counts every id received on `subject`: unique ids, duplicates, and whether ids ever went backwards. */
function counter(nc: NatsConnection, subject: string) {
  const seen = new Set<number>();
  const c = { seen, duplicates: 0, reordered: 0, last: 0 };
  nc.subscribe(subject, {
    callback: (_err, m) => {
      const id = Number(new TextDecoder().decode(m.data).slice(0, 12));
      if (seen.has(id)) c.duplicates++;
      else seen.add(id);
      if (id < c.last) c.reordered++;
      c.last = Math.max(c.last, id);
    },
  });
  return c;
}

/** Publishes ids 1, 2, … in batches every `everyMs` until stopped; each payload is `id` padded to `size`. */
function publisher(nc: NatsConnection, subject: string, batch: number, everyMs: number, size = 16) {
  let id = 0;
  const pad = "x".repeat(Math.max(0, size - 12));
  const timer = setInterval(() => {
    for (let i = 0; i < batch; i++) nc.publish(subject, `${String(++id).padStart(12, "0")}${pad}`);
  }, everyMs);
  return {
    get published() {
      return id;
    },
    async stop() {
      clearInterval(timer);
      await nc.flush();
      return id;
    },
  };
}

async function subscribed(p: Pair, subject: string): Promise<void> {
  await waitUntil(() => p.a.gateway.remote.sublist.hasInterest(subject), `b's interest in ${subject} at a`);
}

const sumDrops = (r: RunningRegion) => Object.values(r.gateway.store.drops).reduce((x, y) => x + y, 0);

describe("store-and-forward under faults", () => {
  it("a 5-second link cut (blackholed, then healed) under steady load loses nothing and duplicates nothing", async () => {
    const p = await pair();
    expect(p.a.gateway.linkView("b")!.acks).toBe(true);
    const sub = counter(await client(p.b), "load.x");
    await subscribed(p, "load.x");
    const pub = publisher(await client(p.a), "load.x", 20, 10); // ~2,000 msg/s
    await waitUntil(() => sub.seen.size > 500, "traffic flowing", 10_000);

    // Blackhole both directions: bytes in flight vanish, the link dies by heartbeat, redials fail.
    const lost = p.a.gateway.linkView("b")!.established;
    await p.proxy.addToxic({
      name: "cut-up",
      type: "timeout",
      stream: "upstream",
      toxicity: 1,
      attributes: { timeout: 0 },
    });
    await p.proxy.addToxic({
      name: "cut-down",
      type: "timeout",
      stream: "downstream",
      toxicity: 1,
      attributes: { timeout: 0 },
    });
    const cutAt = performance.now();
    await waitUntil(() => p.a.gateway.linkState("b") !== "up", "the link to be declared down", 10_000);
    await waitUntil(() => performance.now() - cutAt >= 5000, "5 s of outage", 10_000);
    expect(p.a.gateway.store.parkedFor("b")).toBeGreaterThan(0);
    await (await p.proxy.getToxic("cut-up")).remove();
    await (await p.proxy.getToxic("cut-down")).remove();

    await waitUntil(() => p.a.gateway.linkState("b") === "up", "the link back up", 15_000);
    // Replay first, then new traffic keeps flowing behind it.
    await waitUntil(() => p.a.gateway.store.parkedFor("b") === 0, "the parked messages replayed", 15_000);
    const healed = sub.seen.size;
    await waitUntil(() => sub.seen.size > healed + 200, "new traffic after the replay", 15_000);
    const total = await pub.stop();
    await waitUntil(() => sub.seen.size === total, `all ${total} ids at b`, 15_000);

    expect(p.a.gateway.linkView("b")!.established).toBeGreaterThan(lost);
    expect(sub.duplicates).toBe(0);
    expect(sub.reordered).toBe(0);
    expect(sumDrops(p.a)).toBe(0);
    expect(p.a.gateway.store.msgsReplayed).toBeGreaterThan(0);
  });

  it("an outage longer than the bounds loses exactly as many messages as the drop counters say", async () => {
    const p = await pair({ maxMessages: 300, drop: "oldest" });
    const sub = counter(await client(p.b), "load.y");
    await subscribed(p, "load.y");
    const pub = publisher(await client(p.a), "load.y", 10, 5);
    await waitUntil(() => sub.seen.size > 200, "traffic flowing", 10_000);

    await p.proxy.update({ enabled: false, listen: p.proxy.listen, upstream: p.proxy.upstream });
    await waitUntil(() => p.a.gateway.linkState("b") !== "up", "the link down", 10_000);
    // Far more than 300 messages wait for b: the oldest are shed.
    await waitUntil(() => p.a.gateway.store.drops.overflow > 500, "overflow drops", 15_000);
    await p.proxy.update({ enabled: true, listen: p.proxy.listen, upstream: p.proxy.upstream });

    await waitUntil(() => p.a.gateway.linkState("b") === "up", "the link back up", 15_000);
    const total = await pub.stop();
    const drops = () => sumDrops(p.a);
    await waitUntil(
      () => sub.seen.size + drops() === total,
      "every message delivered or counted as dropped",
      15_000,
    ).catch((e: unknown) => {
      const missing = [...Array(total).keys()].map((i) => i + 1).filter((i) => !sub.seen.has(i));
      throw new Error(
        `${String(e)}: published ${total}, received ${sub.seen.size}, drops ${JSON.stringify(p.a.gateway.store.drops)}, missing ${missing.length} (${missing.slice(0, 3)} … ${missing.slice(-3)})`,
      );
    });
    expect(sub.duplicates).toBe(0);
    expect(p.a.gateway.store.drops.overflow).toBe(drops());
    expect(total - sub.seen.size).toBe(p.a.gateway.store.drops.overflow);
  });

  it("a bandwidth-capped link under a higher offered load keeps its memory bounded and accounts for every message", async () => {
    const maxBytes = 512 * 1024;
    const p = await pair({ maxBytes });
    const sub = counter(await client(p.b), "load.z");
    await subscribed(p, "load.z");
    // a → b capped at 200 KB/s; offered ~1 MB/s of 1 KiB messages.
    await p.proxy.addToxic({
      name: "cap",
      type: "bandwidth",
      stream: "upstream",
      toxicity: 1,
      attributes: { rate: 200 },
    });
    const pub = publisher(await client(p.a), "load.z", 10, 10, 1024);
    let peak = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => {
      const v = p.a.gateway.linkView("b");
      if (v !== undefined) peak = Math.max(peak, v.queued.bytes);
    }, 20);
    cleanups.push(async () => clearInterval(sampler));
    await waitUntil(() => p.a.gateway.store.drops.overflow > 1000, "the send queue to shed", 20_000);
    const total = await pub.stop();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    clearInterval(sampler);
    // The link stayed up throughout: saturation is not death.
    expect(p.a.gateway.linkView("b")!.established).toBe(1);
    await (await p.proxy.getToxic("cap")).remove();
    await waitUntil(
      () => sub.seen.size + sumDrops(p.a) === total,
      "every message delivered or counted as dropped",
      20_000,
    );
    expect(sub.duplicates).toBe(0);
    // The send queue never held more than its bound (plus the one frame that tipped it over).
    expect(peak).toBeLessThanOrEqual(maxBytes + 256 * 1024);
    expect(heapGrowth).toBeLessThan(64 * 1024 * 1024);
  });

  it("a publishing region restarted mid-stream resumes without duplicates and without its new messages taken for old ones", async () => {
    const p = await pair();
    const sub = counter(await client(p.b), "load.r");
    await subscribed(p, "load.r");
    const ncA = await client(p.a);
    const pub1 = publisher(ncA, "load.r", 10, 10);
    await waitUntil(() => sub.seen.size > 300, "traffic flowing", 10_000);
    const first = await pub1.stop();
    await waitUntil(() => sub.seen.size === first, "the first run delivered", 10_000);

    // Restart a on the same ports: a new run (epoch) numbering its messages from 1 again.
    const brokerPort = Number(new URL(p.a.clientUrl).port);
    await ncA.close();
    await p.a.close();
    const a2 = await region("a", {}, { broker: brokerPort });
    const gw = new URL(p.b.gatewayUrl!);
    const port = p.proxy.listen.slice(p.proxy.listen.lastIndexOf(":") + 1);
    a2.gateway.dial({ url: `ws://127.0.0.1:${port}${gw.pathname}`, region: "b" });
    await waitUntil(() => a2.gateway.linkState("b") === "up", "the restarted a linked", 10_000);
    await waitUntil(
      () => a2.gateway.remote.sublist.hasInterest("load.r"),
      "b's interest at the new a",
      10_000,
    );
    const nc2 = await client(a2);
    // Ids continue where the first run stopped, so each id is still counted once.
    let id = first;
    for (let i = 0; i < 500; i++) nc2.publish("load.r", String(++id).padStart(12, "0"));
    await nc2.flush();
    await waitUntil(() => sub.seen.size === id, `all ${id} ids at b`, 10_000);
    expect(sub.duplicates).toBe(0);
    expect(p.b.gateway.stats.duplicatesDropped).toBe(0);
  });

  it("a subscribing region restarted mid-stream resumes without duplicates; every message it missed is counted", async () => {
    const p = await pair();
    const brokerPort = Number(new URL(p.b.clientUrl).port);
    const gatewayPort = Number(new URL(p.b.gatewayUrl!).port);
    const sub = counter(await client(p.b), "load.s");
    await subscribed(p, "load.s");
    const pub = publisher(await client(p.a), "load.s", 10, 10);
    await waitUntil(() => sub.seen.size > 300, "traffic flowing", 10_000);

    // b goes away mid-stream and comes back on the same ports: a new run, with no memory of what it got.
    await p.b.close();
    await waitUntil(() => p.a.gateway.linkState("b") !== "up", "a sees b gone", 10_000);
    const b2 = await region("b", {}, { broker: brokerPort, gateway: gatewayPort });
    await waitUntil(() => p.a.gateway.linkState("b") === "up", "a linked to the new b", 15_000);
    await waitUntil(() => b2.gateway.remote.origin("a") !== undefined, "b knows a again", 10_000);
    // The subscriber's client reconnects to the new b by itself and subscribes again.
    await waitUntil(() => p.a.gateway.remote.sublist.hasInterest("load.s"), "b's interest again", 15_000);
    const before = sub.seen.size;
    await waitUntil(() => sub.seen.size > before + 200, "traffic flowing again", 10_000);
    const total = await pub.stop();
    const drops = () => sumDrops(p.a);
    await waitUntil(() => sub.seen.size + drops() >= total, "every message delivered or counted", 15_000);

    expect(sub.duplicates).toBe(0);
    expect(b2.gateway.stats.duplicatesDropped).toBe(0);
    // Exact up to the messages that may have reached the old run before it went (counted as unconfirmed).
    const missed = total - sub.seen.size;
    expect(missed).toBeLessThanOrEqual(drops());
    expect(missed).toBeGreaterThanOrEqual(drops() - p.a.gateway.store.drops.unconfirmed);
  });
});
