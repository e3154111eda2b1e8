/**
 * The measuring parts the cases share: one publisher → one subscriber throughput run and one requester →
 * one responder latency run against servers the case has already started (one server for the single-broker
 * cases, one per region for the cross-region cases), plus small helpers for the figures.
 */
import type { BenchContext, MetricDef, Result } from "./cases.js";
import { processCpuMs } from "./harness.js";
import type { ProbeConfig, ProbeStats } from "./protocol.js";
import type { PublisherResult } from "./workers/publisher.js";
import type { RequesterResult } from "./workers/requester.js";
import type { SubscriberResult } from "./workers/subscriber.js";

export const THROUGHPUT_METRICS: readonly MetricDef[] = [
  { key: "delivered", label: "delivered (msg/s, higher is better)", unit: "msg/s", better: "higher" },
  { key: "published", label: "published (msg/s, higher is better)", unit: "msg/s", better: "higher" },
];

export const LATENCY_METRICS: readonly MetricDef[] = [
  { key: "p50", label: "p50 (µs, lower is better)", unit: "µs", better: "lower" },
  { key: "p99", label: "p99 (µs, lower is better)", unit: "µs", better: "lower" },
];

export const HOST = "127.0.0.1";
export const SUBJECT = "bench.x";

/**
 * Extra server config for the throughput cases. nats-server's default max_pending (64 MiB) disconnects a
 * subscriber as a slow consumer once that much is queued for it; a publisher that outruns the subscriber
 * can get there, so the limit is raised to 1 GiB for both servers. Bridgehead reads the same keys.
 */
export const THROUGHPUT_SERVER_CONFIG = 'max_pending: 1073741824\nwrite_deadline: "10s"\n';

export function sizeLabel(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

export function pct(part: number, whole: number): number {
  return whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0;
}

/** "1.5%", or two significant digits below 0.1% ("0.00060%"): a small loss must not read as 0%. */
export function lossPct(lost: number, published: number): string {
  const v = (lost / Math.max(1, published)) * 100;
  return `${v >= 0.1 ? v.toFixed(1) : v.toPrecision(2)}%`;
}

/** Time for one run's publishing phase: the case's own limit, cut to what the overall budget allows. */
export function runLimitMs(ctx: BenchContext, caseLimitMs: number): number {
  return Math.max(1000, Math.min(caseLimitMs, ctx.timeLeftMs() - 15_000));
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1; // nearest-rank
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

/** Server processes whose CPU a run records, by detail-key prefix: `server` → `serverCpuPct`. */
export type ServerPids = Record<string, number | undefined>;

function cpuSnapshot(pids: ServerPids): Record<string, number | undefined> {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuMs(pid)]));
}

/** `<prefix>CpuPct` for every server: its CPU time between the snapshots over `wallMs`, in % of a core. */
function cpuShares(
  before: Record<string, number | undefined>,
  after: Record<string, number | undefined>,
  wallMs: number,
): Record<string, number | null> {
  return Object.fromEntries(
    Object.keys(before).map((k) => {
      const b = before[k];
      const a = after[k];
      return [`${k}CpuPct`, a !== undefined && b !== undefined ? pct(a - b, wallMs) : null];
    }),
  );
}

export interface PubSubSetup {
  readonly payloadSize: number;
  readonly count: number;
  readonly timeLimitMs: number;
  readonly drainMs: number;
  readonly hardTimeoutMs: number;
  /** Where the subscriber connects. */
  readonly subPort: number;
  /** Where the publisher connects (the same server, or another region's). */
  readonly pubPort: number;
  readonly servers: ServerPids;
  /** Cross-region: the subscriber waits for a probe from the publisher's server before `ready`. */
  readonly probe?: ProbeConfig;
  /** Setup time for the subscriber's `ready` (probing included). */
  readonly readyTimeoutMs?: number;
  readonly extraDetails?: Record<string, unknown>;
  /** `json`: distinct JSON documents (compressible like real traffic) instead of identical payloads. */
  readonly payloadKind?: "fixed" | "json";
}

/**
 * 1 publisher → 1 subscriber on {@link SUBJECT}: the subscriber connects and subscribes (and, with `probe`,
 * waits until the interest reaches the publisher's server), then the publisher writes `count` messages;
 * the subscriber must receive exactly as many as the publisher's server acknowledged.
 */
export async function measurePubSub(ctx: BenchContext, o: PubSubSetup): Promise<Result> {
  const size = sizeLabel(o.payloadSize);
  const sub = ctx.scope.fork("subscriber", {
    host: HOST,
    port: o.subPort,
    subject: SUBJECT,
    idleMs: 2000,
    drainLimitMs: o.drainMs,
    hardTimeoutMs: o.hardTimeoutMs,
    ...(o.probe ? { probe: o.probe } : {}),
    varyingPayloads: o.payloadKind === "json",
  });
  const ready = await sub.waitFor("ready", o.readyTimeoutMs ?? 10_000);
  const probe: ProbeStats | undefined = ready.probe;
  if (probe)
    ctx.progress(`interest reached the other region after ${probe.ms} ms (${probe.probesSent} probes)`);
  const pub = ctx.scope.fork("publisher", {
    host: HOST,
    port: o.pubPort,
    subject: SUBJECT,
    payloadSize: o.payloadSize,
    count: o.count,
    timeLimitMs: o.timeLimitMs,
    hardTimeoutMs: o.hardTimeoutMs,
    payloadKind: o.payloadKind ?? "fixed",
  });
  await pub.waitFor("ready", 10_000);
  ctx.progress(`publishing ${o.count.toLocaleString("en-US")} × ${size} (limit ${o.timeLimitMs / 1000} s)`);
  const cpu0 = cpuSnapshot(o.servers);
  const wall0 = process.hrtime.bigint();
  pub.send({ type: "go" });
  const p = (await pub.waitFor("result", o.timeLimitMs + 15_000)).data as unknown as PublisherResult;
  sub.send({ type: "expect", count: p.published });
  const s = (await sub.waitFor("result", o.drainMs + 15_000)).data as unknown as SubscriberResult;
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const cpu1 = cpuSnapshot(o.servers);

  const warnings: string[] = [];
  const lost = p.published - s.received;
  if (lost > 0) {
    warnings.push(
      `lost ${lost.toLocaleString("en-US")} of ${p.published.toLocaleString("en-US")} (${lossPct(lost, p.published)})`,
    );
  }
  if (lost < 0) warnings.push(`received ${-lost} more messages than published`);
  if (s.problem) warnings.push(s.problem);
  if (p.timeLimited) {
    warnings.push(
      `time limit (${o.timeLimitMs / 1000} s) hit after ${p.published.toLocaleString("en-US")} of ${o.count.toLocaleString("en-US")} messages`,
    );
  }
  const values: Record<string, number> = { published: p.publishRate };
  if (s.received > 0 && s.deliveredRate > 0) values["delivered"] = s.deliveredRate;
  return {
    values,
    warnings,
    details: {
      payloadSize: o.payloadSize,
      requested: o.count,
      published: p.published,
      received: s.received,
      lost: Math.max(0, lost),
      publishSeconds: p.elapsedNs / 1e9,
      deliverySeconds: s.firstToLastNs / 1e9,
      publisherCpuPct: pct(p.cpuMs, p.elapsedNs / 1e6),
      subscriberCpuPct: pct(s.cpuMs, s.wallMs),
      ...cpuShares(cpu0, cpu1, wallMs),
      measuredWallSeconds: wallMs / 1000,
      subscriberFrameBytes: s.frameLen,
      subscriberFramesCompared: s.framesCompared,
      subscriberChunks: s.chunks,
      publisherWrites: p.writes,
      publisherDrainWaits: p.drainWaits,
      ...(probe ? { probeMs: probe.ms, probesSent: probe.probesSent } : {}),
      ...o.extraDetails,
    },
  };
}

export interface RequestReplySetup {
  readonly payloadSize: number;
  readonly warmup: number;
  readonly count: number;
  readonly timeLimitMs: number;
  readonly hardTimeoutMs: number;
  /** Where the responder connects. */
  readonly responderPort: number;
  /** Where the requester connects (the same server, or another region's). */
  readonly requesterPort: number;
  readonly servers: ServerPids;
  /** Cross-region: the responder waits for a probe from the requester's server before `ready`. */
  readonly probe?: ProbeConfig;
  readonly readyTimeoutMs?: number;
  readonly extraDetails?: Record<string, unknown>;
}

/** One requester, one responder; one request in flight at a time: round-trip percentiles. */
export async function measureRequestReply(ctx: BenchContext, o: RequestReplySetup): Promise<Result> {
  const responder = ctx.scope.fork("responder", {
    host: HOST,
    port: o.responderPort,
    subject: "bench.req",
    hardTimeoutMs: o.hardTimeoutMs,
    ...(o.probe ? { probe: o.probe } : {}),
  });
  const ready = await responder.waitFor("ready", o.readyTimeoutMs ?? 10_000);
  const probe: ProbeStats | undefined = ready.probe;
  if (probe)
    ctx.progress(`interest reached the other region after ${probe.ms} ms (${probe.probesSent} probes)`);
  const requester = ctx.scope.fork("requester", {
    host: HOST,
    port: o.requesterPort,
    subject: "bench.req",
    inbox: "_INBOX.bench",
    payloadSize: o.payloadSize,
    warmup: o.warmup,
    count: o.count,
    timeLimitMs: o.timeLimitMs,
    replyTimeoutMs: 5000,
    hardTimeoutMs: o.hardTimeoutMs,
  });
  await requester.waitFor("ready", 10_000);
  ctx.progress(
    `${o.warmup.toLocaleString("en-US")} warmup + ${o.count.toLocaleString("en-US")} measured requests`,
  );
  const cpu0 = cpuSnapshot(o.servers);
  const wall0 = process.hrtime.bigint();
  requester.send({ type: "go" });
  const r = (await requester.waitFor("result", o.timeLimitMs + 15_000)).data as unknown as RequesterResult;
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const cpu1 = cpuSnapshot(o.servers);
  const sorted = Float64Array.from(r.samplesUs).sort();
  const warnings: string[] = [];
  if (r.timeLimited) {
    warnings.push(`time limit hit: ${sorted.length.toLocaleString("en-US")} of ${o.count} requests measured`);
  }
  const values: Record<string, number> = {};
  if (sorted.length > 0) {
    values["p50"] = percentile(sorted, 50);
    values["p99"] = percentile(sorted, 99);
  }
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length);
  return {
    values,
    warnings,
    details: {
      payloadSize: o.payloadSize,
      warmup: o.warmup,
      measured: sorted.length,
      minUs: sorted[0] ?? null,
      p50Us: percentile(sorted, 50),
      p90Us: percentile(sorted, 90),
      p99Us: percentile(sorted, 99),
      p999Us: percentile(sorted, 99.9),
      maxUs: sorted[sorted.length - 1] ?? null,
      meanUs: mean,
      elapsedMs: r.elapsedMs,
      ...cpuShares(cpu0, cpu1, wallMs),
      ...(probe ? { probeMs: probe.ms, probesSent: probe.probesSent } : {}),
      ...o.extraDetails,
    },
  };
}
