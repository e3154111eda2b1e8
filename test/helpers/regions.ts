/**
 * Several regions in one process, linked in a given topology, for gateway tests. Regions listen on
 * 127.0.0.1 with free ports; edges are dialed by their first region. Helpers wait for conditions
 * (links up, interest applied everywhere) instead of sleeping.
 */
import { connect, type NatsConnection, StringCodec } from "nats";
import { pino } from "pino";
import { DEFAULT_OUTBOX_LIMITS, type OutboxLimits } from "../../src/gateway/outbox.js";
import { type RunningRegion, startRegion } from "../../src/region/region.js";

export interface Cluster {
  readonly regions: Map<string, RunningRegion>;
  region(name: string): RunningRegion;
  client(name: string): Promise<NatsConnection>;
  /** Wait until every region has applied every other region's latest interest. */
  converged(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const sc = StringCodec();

/**
 * Every message a new subscription receives, as text: `subject:payload` by default, or what `format` makes
 * of it. The array fills in the background; tests wait on its length.
 */
export function collect(
  nc: NatsConnection,
  subject: string,
  opts: { queue?: string; format?: (subject: string, data: string) => string } = {},
): string[] {
  const got: string[] = [];
  const format = opts.format ?? ((s: string, d: string) => `${s}:${d}`);
  const sub = nc.subscribe(subject, opts.queue === undefined ? {} : { queue: opts.queue });
  (async () => {
    for await (const m of sub) got.push(format(m.subject, sc.decode(m.data)));
  })().catch(() => {});
  return got;
}

export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function startCluster(
  names: readonly string[],
  edges: readonly (readonly [string, string])[],
  opts: {
    token?: string;
    tokens?: Record<string, string>;
    heartbeatMs?: number;
    /** Outbox bounds for every destination (e.g. a short maxAgeMs so a cut-off region is forgotten soon). */
    outbox?: Partial<OutboxLimits>;
  } = {},
): Promise<Cluster> {
  const logger = pino({ level: process.env.BH_TEST_LOG ?? "silent" });
  const regions = new Map<string, RunningRegion>();
  const clients: NatsConnection[] = [];
  for (const name of names) {
    const r = await startRegion({
      name,
      broker: { host: "127.0.0.1", port: 0 },
      gateway: {
        token: opts.tokens?.[name] ?? opts.token ?? "test-token",
        listen: { host: "127.0.0.1", port: 0 },
        heartbeatMs: opts.heartbeatMs ?? 500,
        advertiseMs: 1000,
        outboxLimits:
          opts.outbox === undefined ? undefined : () => ({ ...DEFAULT_OUTBOX_LIMITS, ...opts.outbox }),
      },
      logger,
    });
    regions.set(name, r);
  }
  for (const [a, b] of edges) {
    const rb = regions.get(b)!;
    regions.get(a)!.gateway.dial({ url: rb.gatewayUrl!, region: b });
  }
  const cluster: Cluster = {
    regions,
    region(name) {
      const r = regions.get(name);
      if (r === undefined) throw new Error(`no region ${name}`);
      return r;
    },
    async client(name) {
      const nc = await connect({ servers: cluster.region(name).clientUrl });
      clients.push(nc);
      return nc;
    },
    async converged(timeoutMs = 10_000) {
      await waitUntil(
        () => {
          for (const r of regions.values()) {
            const own = r.gateway.appliedSeq(r.name)!;
            for (const other of regions.values()) {
              if (other === r || !other.gateway.topology.reachable(r.name)) continue;
              const seen = other.gateway.appliedSeq(r.name);
              if (seen === undefined || seen.epoch !== own.epoch || seen.seq < own.seq) return false;
            }
          }
          return true;
        },
        "interest to converge",
        timeoutMs,
      );
    },
    async close() {
      for (const c of clients) await c.close().catch(() => {});
      await Promise.all([...regions.values()].map((r) => r.close()));
    },
  };
  // Every edge up (both ends) before the test starts.
  await waitUntil(
    () =>
      edges.every(
        ([a, b]) =>
          regions.get(a)!.gateway.linkState(b) === "up" && regions.get(b)!.gateway.linkState(a) === "up",
      ),
    "links to come up",
  );
  return cluster;
}
