/**
 * The benchmark cases. A case measures one scenario against one server kind (or, for the load generator
 * rows, against no server at all) and returns named metric values; the report builds one table row per
 * metric. To add a case, write a {@link BenchCase} and list it in {@link allCases}; the measuring runs
 * shared by the single-broker and the cross-region cases are in measure.ts, the region pairs in
 * cross-region.ts.
 */
import type { ServerKind } from "../test/helpers/servers.js";
import {
  crossRegionPubSubCase,
  crossRegionRequestReplyCase,
  crossRegionWanCase,
  interestPropagationCase,
} from "./cross-region.js";
import { processCpuMs, type RunScope } from "./harness.js";
import {
  HOST,
  LATENCY_METRICS,
  measurePubSub,
  measureRequestReply,
  pct,
  runLimitMs,
  SUBJECT,
  sizeLabel,
  THROUGHPUT_METRICS,
  THROUGHPUT_SERVER_CONFIG,
} from "./measure.js";
import type { FirehoseResult } from "./workers/fake-server.js";
import type { PublisherResult } from "./workers/publisher.js";
import type { SubscriberResult } from "./workers/subscriber.js";

/** A server kind, or null for cases that measure the load generator alone. */
export type Target = ServerKind | null;

export interface MetricDef {
  readonly key: string;
  /** Appended to the case name in the table row. */
  readonly label: string;
  readonly unit: "msg/s" | "µs" | "ms";
  readonly better: "higher" | "lower";
}

export interface Result {
  /** Values by {@link MetricDef.key}; a missing key renders as n/a. */
  readonly values: Record<string, number>;
  /** Things the reader must know (loss, time limit hit, …); shown as ⚠ in the table and listed below it. */
  readonly warnings: string[];
  /** Raw figures for latest.json. */
  readonly details: Record<string, unknown>;
}

export interface BenchContext {
  readonly quick: boolean;
  /** Starts servers and forks workers; everything in it is stopped when the run ends. */
  readonly scope: RunScope;
  /** Milliseconds left of the whole benchmark's time budget. */
  timeLeftMs(): number;
  /** A progress line on stderr. */
  progress(message: string): void;
  /** With `--cpu-prof`: where the region workers write their V8 CPU profiles (`node --cpu-prof`). */
  readonly cpuProfileDir?: string;
}

export interface BenchCase {
  readonly name: string;
  /** One sentence for docs and latest.json: what the case measures. */
  readonly description: string;
  /** "info" cases measure the load generator, not a server: run once, with target null. */
  readonly group: "throughput" | "latency" | "info";
  readonly metrics: readonly MetricDef[];
  /** Which metric the SVG chart plots (throughput cases only). */
  readonly chartMetric?: string;
  run(target: Target, ctx: BenchContext): Promise<Result>;
}

export { THROUGHPUT_SERVER_CONFIG } from "./measure.js";

export interface ThroughputCounts {
  readonly count: number;
  readonly timeLimitMs: number;
}

export interface LatencyCounts {
  readonly warmup: number;
  readonly count: number;
  readonly timeLimitMs: number;
}

/** 1 publisher → server → 1 subscriber on one subject. */
export function pubSubCase(
  payloadSize: number,
  counts: (quick: boolean) => ThroughputCounts,
  serverConfig = THROUGHPUT_SERVER_CONFIG,
): BenchCase {
  const size = sizeLabel(payloadSize);
  return {
    name: `pub→sub ${size}`,
    description: `1 publisher and 1 subscriber on one subject, ${size} payloads: messages per second delivered at the subscriber (first to last delivery) and accepted from the publisher (first write to the PONG after the last PUB).`,
    group: "throughput",
    metrics: THROUGHPUT_METRICS,
    chartMetric: "delivered",
    async run(target, ctx) {
      if (!target) throw new Error("needs a server");
      const { count, timeLimitMs: caseLimit } = counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const drainMs = ctx.quick ? 3000 : 10_000;
      const hardTimeoutMs = timeLimitMs + drainMs + 20_000;
      const server = await ctx.scope.startServer(target, serverConfig);
      return measurePubSub(ctx, {
        payloadSize,
        count,
        timeLimitMs,
        drainMs,
        hardTimeoutMs,
        subPort: server.port,
        pubPort: server.port,
        servers: { server: server.process.pid },
        extraDetails: { serverConfig },
      });
    },
  };
}

/** One requester, one responder; one request in flight at a time. */
export function requestReplyCase(payloadSize: number, counts: (quick: boolean) => LatencyCounts): BenchCase {
  const size = sizeLabel(payloadSize);
  return {
    name: `request/reply latency ${size}`,
    description: `1 requester → server → 1 responder → server → requester, one request in flight, ${size} payload: round-trip time percentiles after a warmup.`,
    group: "latency",
    metrics: LATENCY_METRICS,
    async run(target, ctx) {
      if (!target) throw new Error("needs a server");
      const { warmup, count, timeLimitMs: caseLimit } = counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const hardTimeoutMs = timeLimitMs + 20_000;
      const server = await ctx.scope.startServer(target, "");
      return measureRequestReply(ctx, {
        payloadSize,
        warmup,
        count,
        timeLimitMs,
        hardTimeoutMs,
        responderPort: server.port,
        requesterPort: server.port,
        servers: { server: server.process.pid },
      });
    },
  };
}

/** The publisher writing into a process that reads and drops: the most it can offer any server. */
export function publisherCeilingCase(
  payloadSize: number,
  counts: (quick: boolean) => ThroughputCounts,
): BenchCase {
  const size = sizeLabel(payloadSize);
  return {
    name: `load generator ceiling: publisher → discard sink, ${size}`,
    description: `The same publisher worker writing ${size} PUBs into a raw TCP server in another process that reads and drops them (answering only the final PING): an upper bound on the publish rate the generator can offer.`,
    group: "info",
    metrics: [{ key: "rate", label: "(info, msg/s)", unit: "msg/s", better: "higher" }],
    async run(_target, ctx) {
      const { count, timeLimitMs: caseLimit } = counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const hardTimeoutMs = timeLimitMs + 20_000;
      const sink = ctx.scope.fork("fake-server", { mode: "sink", hardTimeoutMs });
      const { port } = await sink.waitFor("ready", 10_000);
      const pub = ctx.scope.fork("publisher", {
        host: HOST,
        port,
        subject: SUBJECT,
        payloadSize,
        count,
        timeLimitMs,
        hardTimeoutMs,
      });
      await pub.waitFor("ready", 10_000);
      ctx.progress(`publishing ${count.toLocaleString("en-US")} × ${size} into the sink`);
      const sinkCpu0 = processCpuMs(sink.child.pid);
      pub.send({ type: "go" });
      const p = (await pub.waitFor("result", timeLimitMs + 15_000)).data as unknown as PublisherResult;
      const sinkCpu1 = processCpuMs(sink.child.pid);
      sink.send({ type: "stop" });
      const sinkResult = (await sink.waitFor("result", 5000)).data as { bytesIn: number };
      const opLen = `PUB ${SUBJECT} ${payloadSize}\r\n`.length + payloadSize + 2;
      const warnings: string[] = [];
      if (sinkResult.bytesIn < p.published * opLen) {
        warnings.push(
          `sink received ${sinkResult.bytesIn} bytes, fewer than the ${p.published * opLen} published`,
        );
      }
      if (p.timeLimited)
        warnings.push(`time limit hit after ${p.published.toLocaleString("en-US")} messages`);
      return {
        values: { rate: p.publishRate },
        warnings,
        details: {
          payloadSize,
          published: p.published,
          seconds: p.elapsedNs / 1e9,
          megabytesPerSecond: (p.published * opLen) / (p.elapsedNs / 1e9) / 1e6,
          publisherCpuPct: pct(p.cpuMs, p.elapsedNs / 1e6),
          // When the sink is near 100% it, not the publisher, sets this row: the row is then a lower bound.
          sinkCpuPct:
            sinkCpu0 !== undefined && sinkCpu1 !== undefined
              ? pct(sinkCpu1 - sinkCpu0, p.elapsedNs / 1e6)
              : null,
          sinkBytesIn: sinkResult.bytesIn,
        },
      };
    },
  };
}

/** A process writing pre-built MSG frames to the subscriber: the most the subscriber can count. */
export function subscriberCeilingCase(
  payloadSize: number,
  counts: (quick: boolean) => ThroughputCounts,
): BenchCase {
  const size = sizeLabel(payloadSize);
  return {
    name: `load generator ceiling: firehose → subscriber, ${size}`,
    description: `The same subscriber worker counting ${size} MSG frames written by a fake server in another process as fast as the socket takes them, with a PING injected half way (the count must stay exact and the PING be answered): an upper bound on the delivery rate the generator can measure.`,
    group: "info",
    metrics: [{ key: "rate", label: "(info, msg/s)", unit: "msg/s", better: "higher" }],
    async run(_target, ctx) {
      const { count, timeLimitMs: caseLimit } = counts(ctx.quick);
      const timeLimitMs = runLimitMs(ctx, caseLimit);
      const hardTimeoutMs = timeLimitMs + 20_000;
      const hose = ctx.scope.fork("fake-server", {
        mode: "firehose",
        subject: SUBJECT,
        payloadSize,
        hardTimeoutMs,
      });
      const { port } = await hose.waitFor("ready", 10_000);
      const sub = ctx.scope.fork("subscriber", {
        host: HOST,
        port,
        subject: SUBJECT,
        idleMs: 2000,
        drainLimitMs: timeLimitMs,
        hardTimeoutMs,
      });
      await sub.waitFor("ready", 10_000);
      ctx.progress(`firehose writing ${count.toLocaleString("en-US")} × ${size} MSG frames`);
      const hoseCpu0 = processCpuMs(hose.child.pid);
      hose.send({ type: "go", count });
      const f = (await hose.waitFor("result", timeLimitMs + 15_000)).data as unknown as FirehoseResult;
      const hoseCpu1 = processCpuMs(hose.child.pid);
      sub.send({ type: "expect", count: f.sent });
      const s = (await sub.waitFor("result", timeLimitMs + 15_000)).data as unknown as SubscriberResult;
      const warnings: string[] = [];
      if (s.received !== f.sent) warnings.push(`subscriber counted ${s.received} of ${f.sent} frames`);
      if (!f.pongAfterInjectedPing || s.pingsAnswered < 1) {
        warnings.push("subscriber did not answer the PING injected mid-stream");
      }
      if (s.problem) warnings.push(s.problem);
      return {
        values: s.received === f.sent ? { rate: s.deliveredRate } : ({} as Record<string, number>),
        warnings,
        details: {
          payloadSize,
          sent: f.sent,
          received: s.received,
          seconds: s.firstToLastNs / 1e9,
          subscriberCpuPct: pct(s.cpuMs, s.wallMs),
          firehoseCpuPct:
            hoseCpu0 !== undefined && hoseCpu1 !== undefined
              ? pct(hoseCpu1 - hoseCpu0, f.elapsedNs / 1e6)
              : null,
          pingsAnswered: s.pingsAnswered,
          pongAfterInjectedPing: f.pongAfterInjectedPing,
          frameBytes: s.frameLen,
        },
      };
    },
  };
}

/** Every case, in table order. */
export function allCases(): BenchCase[] {
  // Counts give measurement windows of one to a few seconds against nats-server on a small machine; the
  // time limit keeps a slow server from blowing the 2-minute budget (the run is then flagged ⚠).
  const small = (quick: boolean) => ({
    count: quick ? 200_000 : 5_000_000,
    timeLimitMs: quick ? 5000 : 15_000,
  });
  const large = (quick: boolean) => ({
    count: quick ? 30_000 : 1_000_000,
    timeLimitMs: quick ? 5000 : 15_000,
  });
  // The generator alone is ~10× faster: 3× the messages still gives it a window of a fraction of a second.
  const ceiling = (f: typeof small) => (quick: boolean) => {
    const c = f(quick);
    return { count: c.count * 3, timeLimitMs: quick ? 3000 : 5000 };
  };
  return [
    pubSubCase(16, small),
    pubSubCase(1024, large),
    requestReplyCase(16, (quick) => ({
      warmup: quick ? 100 : 1000,
      count: quick ? 1000 : 10_000,
      timeLimitMs: quick ? 5000 : 20_000,
    })),
    publisherCeilingCase(16, ceiling(small)),
    publisherCeilingCase(1024, ceiling(large)),
    subscriberCeilingCase(16, ceiling(small)),
    subscriberCeilingCase(1024, ceiling(large)),
    // Cross-region: every message crosses a second server (and, for bridgehead, a WebSocket link) and four
    // busy processes share the cores, so about half the single-broker rate: these counts give windows of
    // ~1.5 s at 16 B and ~1.2 s at 1 KiB, which keeps `--repeat 3` of the whole bench within its budget.
    crossRegionPubSubCase(16, (quick) => ({
      count: quick ? 100_000 : 3_000_000,
      timeLimitMs: quick ? 5000 : 10_000,
    })),
    crossRegionPubSubCase(1024, (quick) => ({
      count: quick ? 20_000 : 500_000,
      timeLimitMs: quick ? 5000 : 10_000,
    })),
    crossRegionPubSubCase(
      16,
      (quick) => ({ count: quick ? 100_000 : 3_000_000, timeLimitMs: quick ? 5000 : 10_000 }),
      false,
    ),
    // A longer warmup than the single-broker case: for the first ~2,000 round trips both servers (bridgehead
    // more) show millisecond outliers that are gone afterwards; the rows are about the steady state.
    crossRegionRequestReplyCase(16, (quick) => ({
      warmup: quick ? 100 : 2000,
      count: quick ? 1000 : 5000,
      timeLimitMs: quick ? 5000 : 10_000,
    })),
    interestPropagationCase((quick) => ({ samples: quick ? 5 : 20 })),
    // WAN: a 10 MB/s link, then the same at +50 and +150 ms RTT (issue 9's target: >= 1.5x nats-server).
    // ~38 MB of JSON per run: ~4 s at the cap, long enough for a steady rate where compression pays.
    ...[0, 50, 150].map((rttMs) =>
      crossRegionWanCase({ rateKBps: 10_000, rttMs }, (quick) => ({
        count: quick ? 10_000 : 150_000,
        timeLimitMs: quick ? 5000 : 15_000,
      })),
    ),
  ];
}
