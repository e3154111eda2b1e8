/**
 * The cross-region cases: the publisher (requester) connected to region A, the subscriber (responder) to
 * region B, the message crossing the link between them. Per server kind, a "region pair" is:
 *
 * - nats-server: a supercluster of two single-server clusters A and B joined by native gateways (the config
 *   of shared/reference/nats-protocol-2.9.md §4: `gateway { name, listen, gateways: [...] }`, no cluster
 *   block), on free loopback ports. Ready once each server's `/gatewayz` lists an outbound and an inbound
 *   gateway connection to the other.
 * - bridgehead: two region processes (bench/workers/region.ts: embedded broker + gateway, as `bridgehead
 *   node` runs them), B dialing A's gateway. Ready once each side reports its link to the other as `up`.
 *
 * Then, because interest crosses the link asynchronously, the subscriber (responder) publishes probes from
 * A every 50 ms until one arrives through its subscription in B before the measured traffic starts.
 */
import { createServer } from "node:net";
import { pino } from "pino";
import { type Proxy as ToxiProxy, Toxiproxy } from "toxiproxy-node-client";
import { startToxiproxyServer } from "../src/chaos/proxy/index.js";
import type { ServerKind } from "../test/helpers/servers.js";
import type { BenchCase, BenchContext, LatencyCounts, MetricDef, ThroughputCounts } from "./cases.js";
import type { WorkerHandle } from "./harness.js";
import {
  HOST,
  LATENCY_METRICS,
  measurePubSub,
  measureRequestReply,
  runLimitMs,
  type ServerPids,
  sizeLabel,
  THROUGHPUT_METRICS,
  THROUGHPUT_SERVER_CONFIG,
} from "./measure.js";
import { NatsConn, type ProbeConfig } from "./protocol.js";

const TOKEN = "bench-cross-region";
const PROBE_SUBJECT = "bench.probe";
const PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 10_000;
/** How long the two regions may take to link (nats-server solicits gateways 1 s after boot). */
const LINK_TIMEOUT_MS = 15_000;
const POLL_MS = 20;

/** Two connected regions, A and B, with a client port each. */
interface RegionPair {
  readonly portA: number;
  readonly portB: number;
  /** The two server/region processes, for the CPU shares (`serverACpuPct`, `serverBCpuPct`). */
  readonly servers: ServerPids;
  /** Time from starting the processes to both directions of the link being up. */
  readonly linkMs: number;
  readonly details: Record<string, unknown>;
}

/**
 * A WAN-like link between the regions: every byte between them goes through the embedded fault proxy
 * (the same for both systems), capped at `rateKBps` each way, with `rttMs` of added round-trip time
 * (half each way).
 */
export interface WanLink {
  readonly rateKBps: number;
  readonly rttMs: number;
}

/** A proxy named `name` in front of `upstreamPort`, in an in-process Toxiproxy the run scope stops. */
async function wanProxy(
  ctx: BenchContext,
  name: string,
  upstreamPort: number,
): Promise<{ proxy: ToxiProxy; port: number }> {
  const api = await startToxiproxyServer({ host: HOST, port: 0, logger: pino({ level: "silent" }) });
  ctx.scope.defer(() => api.close());
  const proxy = await new Toxiproxy(api.url).createProxy({
    name,
    listen: `${HOST}:0`,
    upstream: `${HOST}:${upstreamPort}`,
  });
  return { proxy, port: Number(proxy.listen.slice(proxy.listen.lastIndexOf(":") + 1)) };
}

/** Cap and delay both directions of `proxy` (after the link is up, so setup is not slowed). */
async function shape(proxy: ToxiProxy, wan: WanLink): Promise<void> {
  for (const stream of ["upstream", "downstream"] as const) {
    await proxy.addToxic({
      name: `cap-${stream}`,
      type: "bandwidth",
      stream,
      toxicity: 1,
      attributes: { rate: wan.rateKBps },
    });
    if (wan.rttMs > 0)
      await proxy.addToxic({
        name: `rtt-${stream}`,
        type: "latency",
        stream,
        toxicity: 1,
        attributes: { latency: Math.round(wan.rttMs / 2), jitter: 0 },
      });
  }
}

/** Free loopback ports: all listened on at once (so they differ), then released. */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (s) =>
          new Promise<number>((resolve, reject) => {
            s.once("error", reject);
            s.listen(0, HOST, () => {
              const a = s.address();
              if (a === null || typeof a === "string") reject(new Error("no address"));
              else resolve(a.port);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}

/** Poll `check` every {@link POLL_MS} until it returns true; reject with `what` after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what()} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function natsGatewayConfig(
  name: "A" | "B",
  httpPort: number,
  gwPorts: { A: number; B: number },
  throughput: boolean,
  /** A dials B's gateway at this port (a proxy in front of it) instead of B's own. */
  bViaPort?: number,
): string {
  return [
    `server_name: bench-${name}`,
    `http: ${HOST}:${httpPort}`,
    throughput ? THROUGHPUT_SERVER_CONFIG : "",
    "gateway {",
    `  name: ${name}`,
    `  listen: ${HOST}:${gwPorts[name]}`,
    "  gateways: [",
    `    { name: A, url: "nats://${HOST}:${gwPorts.A}" }`,
    `    { name: B, url: "nats://${HOST}:${name === "A" && bViaPort !== undefined ? bViaPort : gwPorts.B}" }`,
    "  ]",
    "}",
  ].join("\n");
}

interface Gatewayz {
  outbound_gateways?: Record<string, { connection?: { cid?: number } }>;
  inbound_gateways?: Record<string, Array<{ connection?: { cid?: number } }>>;
}

/** The server behind `httpPort` has a gateway connection to `other` both ways (outbound and inbound). */
async function natsGatewayLinked(httpPort: number, other: string, last: { text: string }): Promise<boolean> {
  try {
    const res = await fetch(`http://${HOST}:${httpPort}/gatewayz`, { signal: AbortSignal.timeout(2000) });
    const g = (await res.json()) as Gatewayz;
    const out = g.outbound_gateways?.[other]?.connection?.cid ?? 0;
    const inb = (g.inbound_gateways?.[other] ?? []).filter((c) => (c.connection?.cid ?? 0) > 0).length;
    last.text = `outbound to ${other}: ${out > 0 ? "yes" : "no"}, inbound from ${other}: ${inb}`;
    return out > 0 && inb > 0;
  } catch (e) {
    last.text = `gatewayz: ${e instanceof Error ? e.message : String(e)}`;
    return false;
  }
}

async function startNatsPair(ctx: BenchContext, throughput: boolean, wan?: WanLink): Promise<RegionPair> {
  const [gwA, gwB, httpA, httpB] = (await freePorts(4)) as [number, number, number, number];
  const gw = { A: gwA, B: gwB };
  // A → B traffic travels on A's outbound gateway connection: that one goes through the proxy.
  const via = wan === undefined ? undefined : await wanProxy(ctx, "A->B", gwB);
  const t0 = Date.now();
  const [a, b] = await Promise.all([
    ctx.scope.startServer("nats-server", natsGatewayConfig("A", httpA, gw, throughput, via?.port)),
    ctx.scope.startServer("nats-server", natsGatewayConfig("B", httpB, gw, throughput)),
  ]);
  const lastA = { text: "" };
  const lastB = { text: "" };
  await until(
    async () => (await natsGatewayLinked(httpA, "B", lastA)) && (await natsGatewayLinked(httpB, "A", lastB)),
    LINK_TIMEOUT_MS,
    () => `nats-server gateways not connected both ways (A: ${lastA.text}; B: ${lastB.text})`,
  );
  const linkMs = Date.now() - t0;
  ctx.progress(`gateways A⇄B connected after ${linkMs} ms`);
  if (via !== undefined && wan !== undefined) await shape(via.proxy, wan);
  return {
    portA: a.port,
    portB: b.port,
    servers: { serverA: a.process.pid, serverB: b.process.pid },
    linkMs,
    details: { gatewayPorts: gw, config: natsGatewayConfig("A", httpA, gw, throughput) },
  };
}

async function regionLinkState(h: WorkerHandle, peer: string): Promise<string | null> {
  h.send({ type: "status", peer });
  return (await h.waitFor("status", 5000)).state;
}

function profileName(caseName: string, region: string): string {
  const slug = caseName.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");
  return `${slug}.region-${region}.${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`;
}

async function startBridgeheadPair(
  ctx: BenchContext,
  caseName: string,
  throughput: boolean,
  hardTimeoutMs: number,
  acks: boolean,
  wan?: WanLink,
): Promise<RegionPair> {
  const t0 = Date.now();
  const fork = (name: "A" | "B") =>
    ctx.scope.fork(
      "region",
      {
        name,
        token: TOKEN,
        host: HOST,
        // The same slow-consumer limits as THROUGHPUT_SERVER_CONFIG gives nats-server (defaults otherwise).
        maxPendingBytes: throughput ? 1024 * 1024 * 1024 : 64 * 1024 * 1024,
        writeDeadlineMs: 10_000,
        hardTimeoutMs,
        acks,
        // On a WAN link both regions compress when it pays (a backed-up or far link).
        compression: wan === undefined ? "off" : "auto",
      },
      ctx.cpuProfileDir
        ? {
            execArgv: [
              "--cpu-prof",
              `--cpu-prof-dir=${ctx.cpuProfileDir}`,
              `--cpu-prof-name=${profileName(caseName, name)}`,
            ],
            stopGraceMs: 20_000,
          }
        : {},
    );
  const a = fork("A");
  const b = fork("B");
  const [ra, rb] = await Promise.all([a.waitFor("ready", 10_000), b.waitFor("ready", 10_000)]);
  if (!ra.clientUrl || !ra.gatewayUrl || !rb.clientUrl) throw new Error("region worker sent no URLs");
  // B dials A: on a WAN link through the proxy, so A → B traffic is its downstream.
  const via =
    wan === undefined ? undefined : await wanProxy(ctx, "B->A", Number(new URL(ra.gatewayUrl).port));
  const dialUrl =
    via === undefined ? ra.gatewayUrl : `ws://${HOST}:${via.port}${new URL(ra.gatewayUrl).pathname}`;
  b.send({ type: "dial", url: dialUrl, region: "A" });
  let states = "";
  await until(
    async () => {
      const [sa, sb] = await Promise.all([regionLinkState(a, "B"), regionLinkState(b, "A")]);
      states = `A→B ${sa ?? "none"}, B→A ${sb ?? "none"}`;
      return sa === "up" && sb === "up";
    },
    LINK_TIMEOUT_MS,
    () => `bridgehead regions not linked (${states})`,
  );
  const linkMs = Date.now() - t0;
  ctx.progress(`link A⇄B up after ${linkMs} ms`);
  if (via !== undefined && wan !== undefined) await shape(via.proxy, wan);
  return {
    portA: Number(new URL(ra.clientUrl).port),
    portB: Number(new URL(rb.clientUrl).port),
    servers: { serverA: a.child.pid, serverB: b.child.pid },
    linkMs,
    details: {
      gatewayUrlA: ra.gatewayUrl,
      ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
    },
  };
}

function startPair(
  target: ServerKind,
  ctx: BenchContext,
  caseName: string,
  throughput: boolean,
  hardTimeoutMs: number,
  acks = true,
  wan?: WanLink,
): Promise<RegionPair> {
  return target === "nats-server"
    ? startNatsPair(ctx, throughput, wan)
    : startBridgeheadPair(ctx, caseName, throughput, hardTimeoutMs, acks, wan);
}

function probeFrom(portA: number): ProbeConfig {
  return {
    host: HOST,
    port: portA,
    subject: PROBE_SUBJECT,
    intervalMs: PROBE_INTERVAL_MS,
    timeoutMs: PROBE_TIMEOUT_MS,
  };
}

/** What varies between the cross-region pub→sub cases; the measuring is the same. */
interface PubSubSpec {
  readonly name: string;
  readonly description: string;
  readonly payloadSize: number;
  readonly payloadKind: "fixed" | "json";
  readonly counts: (quick: boolean) => ThroughputCounts;
  readonly acks: boolean;
  readonly wan?: WanLink;
  readonly drainMs: (quick: boolean) => number;
}

/** Publisher on region A, subscriber on region B, one subject: the measured run of every pub→sub case. */
function pubSubCase(spec: PubSubSpec): BenchCase {
  const { name, payloadSize, wan } = spec;
  return {
    name,
    description: spec.description,
    group: "throughput",
    metrics: THROUGHPUT_METRICS,
    chartMetric: "delivered",
    async run(target, ctx) {
      if (!target) throw new Error("needs a server");
      const { count, timeLimitMs: caseLimit } = spec.counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const drainMs = spec.drainMs(ctx.quick);
      const hardTimeoutMs = LINK_TIMEOUT_MS + PROBE_TIMEOUT_MS + timeLimitMs + drainMs + 20_000;
      const pair = await startPair(target, ctx, name, true, hardTimeoutMs, spec.acks, wan);
      return measurePubSub(ctx, {
        payloadSize,
        payloadKind: spec.payloadKind,
        count,
        timeLimitMs,
        drainMs,
        hardTimeoutMs,
        subPort: pair.portB,
        pubPort: pair.portA,
        servers: pair.servers,
        probe: probeFrom(pair.portA),
        readyTimeoutMs: PROBE_TIMEOUT_MS + 10_000,
        extraDetails: { linkMs: pair.linkMs, ...(wan === undefined ? {} : { wan }), ...pair.details },
      });
    },
  };
}

/** Publisher on region A, subscriber on region B, one subject, identical payloads. */
export function crossRegionPubSubCase(
  payloadSize: number,
  counts: (quick: boolean) => ThroughputCounts,
  acks = true,
): BenchCase {
  const size = sizeLabel(payloadSize);
  // Without ACKs: what store-and-forward (ACKs, replay buffers, dedupe bookkeeping) costs in steady state;
  // nats-server runs the same supercluster as in the main row, for a ratio on the same footing.
  return pubSubCase({
    name: `cross-region ${size}${acks ? "" : " without link ACKs"}`,
    description: `1 publisher connected to region A and 1 subscriber connected to region B, one subject, ${size} payloads, every message crossing the A→B link (nats-server: a 2-cluster supercluster with native gateways; bridgehead: two region processes): messages per second delivered at the subscriber and accepted by A from the publisher.`,
    payloadSize,
    payloadKind: "fixed",
    counts,
    acks,
    drainMs: (quick) => (quick ? 5000 : 15_000),
  });
}

/** Requester on region A, responder on region B. */
export function crossRegionRequestReplyCase(
  payloadSize: number,
  counts: (quick: boolean) => LatencyCounts,
): BenchCase {
  const size = sizeLabel(payloadSize);
  const name = `cross-region request/reply ${size}`;
  return {
    name,
    description: `1 requester connected to region A, 1 responder connected to region B, one request in flight, ${size} payload: round-trip time percentiles after a warmup, request and reply each crossing the link.`,
    group: "latency",
    metrics: LATENCY_METRICS,
    async run(target, ctx) {
      if (!target) throw new Error("needs a server");
      const { warmup, count, timeLimitMs: caseLimit } = counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const hardTimeoutMs = LINK_TIMEOUT_MS + PROBE_TIMEOUT_MS + timeLimitMs + 20_000;
      const pair = await startPair(target, ctx, name, false, hardTimeoutMs);
      return measureRequestReply(ctx, {
        payloadSize,
        warmup,
        count,
        timeLimitMs,
        hardTimeoutMs,
        responderPort: pair.portB,
        requesterPort: pair.portA,
        servers: pair.servers,
        probe: probeFrom(pair.portA),
        readyTimeoutMs: PROBE_TIMEOUT_MS + 10_000,
        extraDetails: { linkMs: pair.linkMs, ...pair.details },
      });
    },
  };
}

/**
 * Publisher on A, subscriber on B, distinct 256-byte JSON documents, every byte between the regions through
 * the fault proxy capped at `wan.rateKBps` each way with `wan.rttMs` added: what a WAN link lets through.
 * nats-server's A→B gateway connection and bridgehead's link (compression `auto`) cross the same proxy.
 */
export function crossRegionWanCase(wan: WanLink, counts: (quick: boolean) => ThroughputCounts): BenchCase {
  const payloadSize = 256;
  const rate = `${wan.rateKBps / 1000} MB/s`;
  return pubSubCase({
    name: `cross-region JSON ${sizeLabel(payloadSize)}, ${rate} link${wan.rttMs > 0 ? ` +${wan.rttMs} ms RTT` : ""}`,
    description: `Like cross-region, with distinct ${payloadSize}-byte JSON order documents and the link between the regions through the fault proxy: capped at ${rate} each way${wan.rttMs > 0 ? `, ${wan.rttMs} ms added to the round trip` : ""}. nats-server's gateway connection A→B goes through the same proxy; bridgehead's link compresses batches (auto).`,
    payloadSize,
    payloadKind: "json",
    counts,
    acks: true,
    wan,
    drainMs: (quick) => (quick ? 10_000 : 20_000),
  });
}

const INTEREST_METRICS: readonly MetricDef[] = [
  { key: "p50", label: "p50 (ms, lower is better)", unit: "ms", better: "lower" },
  { key: "max", label: "max (ms, lower is better)", unit: "ms", better: "lower" },
];

/**
 * Interest propagation: how long after a client subscribes in B a message published in A reaches it. A
 * publisher on A publishes on the sample's subject every millisecond; a subscriber on B subscribes to a
 * subject nobody wanted before and times SUB → first MSG (1 ms resolution). Fresh subjects each sample, so
 * every sample measures a new subscription crossing the link, not a cached one.
 */
export function interestPropagationCase(counts: (quick: boolean) => { samples: number }): BenchCase {
  const name = "cross-region interest propagation";
  return {
    name,
    description:
      "Subscribe in region B to a subject nobody wanted, while region A publishes on it every millisecond: time from the SUB to the first message at B (a new subscription crossing the link), over fresh subjects.",
    group: "latency",
    metrics: INTEREST_METRICS,
    async run(target, ctx) {
      if (!target) throw new Error("needs a server");
      const { samples } = counts(ctx.quick);
      const hardTimeoutMs = LINK_TIMEOUT_MS + samples * 2000 + 20_000;
      const pair = await startPair(target, ctx, name, false, hardTimeoutMs);
      const pub = await NatsConn.open(HOST, pair.portA);
      const sub = await NatsConn.open(HOST, pair.portB);
      let subject = "";
      const tick = setInterval(() => {
        if (subject !== "") pub.socket.write(`PUB ${subject} 0\r\n\r\n`);
      }, 1);
      const ms: number[] = [];
      try {
        for (let k = 1; k <= samples; k++) {
          subject = `bench.interest.${process.pid}.${Date.now()}.${k}`;
          const arrived = new Promise<void>((resolve) => {
            sub.onMsg = (s) => {
              if (s === subject) resolve();
            };
          });
          const t0 = process.hrtime.bigint();
          sub.socket.write(`SUB ${subject} ${k}\r\n`);
          await Promise.race([
            arrived,
            new Promise<never>((_, reject) =>
              setTimeout(() => reject(new Error(`no message on ${subject} within 5 s`)), 5000),
            ),
          ]);
          ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
          sub.socket.write(`UNSUB ${k}\r\n`);
          subject = "";
          await sub.flush();
        }
      } finally {
        clearInterval(tick);
        pub.socket.destroy();
        sub.socket.destroy();
      }
      const sorted = [...ms].sort((a, b) => a - b);
      const p50 = sorted[Math.floor((sorted.length - 1) / 2)]!;
      const max = sorted[sorted.length - 1]!;
      ctx.progress(`${samples} subscriptions: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
      return { values: { p50, max }, warnings: [], details: { samplesMs: ms, linkMs: pair.linkMs } };
    },
  };
}
