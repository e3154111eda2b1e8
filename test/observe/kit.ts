/**
 * A system of regions started in process from YAML text (every listener, monitors included, on
 * 127.0.0.1:0), with helpers to read the region monitors.
 */
import { connect, type NatsConnection, StringCodec } from "nats";
import type { Logger } from "pino";
import { pino } from "pino";
import { loadConfig } from "../../src/config/load.js";
import type { Gateway } from "../../src/gateway/gateway.js";
import { type RunningSystem, startSystem } from "../../src/runtime/system.js";
import { waitUntil } from "../helpers/regions.js";
import { type Family, parseExposition } from "./prom-text.js";

export const sc = StringCodec();

export interface Kit {
  readonly system: RunningSystem;
  gw(name: string): Gateway;
  client(region: string): Promise<NatsConnection>;
  json(region: string, path: string): Promise<{ status: number; body: Record<string, unknown> }>;
  metrics(region: string): Promise<Map<string, Family>>;
  /** Every region has applied every other region's latest interest sequence. */
  converged(): Promise<void>;
  close(): Promise<void>;
}

export function configText(regions: readonly string[], links: string, extra = ""): string {
  const rs = regions
    .map(
      (r) =>
        `  - name: ${r}\n    broker: { listen: 127.0.0.1:0 }\n    gateway: { listen: 127.0.0.1:0 }\n    monitor: { listen: 127.0.0.1:0 }\n`,
    )
    .join("");
  return `${extra}regions:\n${rs}links:\n${links}`;
}

export async function startKit(
  regions: readonly string[],
  links: string,
  opts: { logger?: Logger; extra?: string } = {},
): Promise<Kit> {
  const loaded = loadConfig(configText(regions, links, opts.extra), { env: {} });
  const system = await startSystem(
    loaded,
    opts.logger ?? pino({ level: process.env.BH_TEST_LOG ?? "silent" }),
  );
  const clients: NatsConnection[] = [];
  const kit: Kit = {
    system,
    gw(name) {
      const r = system.regions.get(name);
      if (r === undefined) throw new Error(`no region ${name}`);
      return r.gateway;
    },
    async client(region) {
      const nc = await connect({ servers: system.regions.get(region)!.clientUrl });
      clients.push(nc);
      return nc;
    },
    async json(region, path) {
      const url = system.monitorUrl(region);
      if (url === undefined) throw new Error(`no monitor for ${region}`);
      // `/` answers browsers with the dashboard; a JSON client gets the endpoint index.
      const res = await fetch(`${url}${path}`, { headers: { accept: "application/json" } });
      expectJson(res);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async metrics(region) {
      const res = await fetch(`${system.monitorUrl(region)}/metrics`);
      if (res.status !== 200) throw new Error(`/metrics: ${res.status}`);
      const type = res.headers.get("content-type") ?? "";
      if (!type.startsWith("text/plain; version=0.0.4")) throw new Error(`/metrics content-type ${type}`);
      return parseExposition(await res.text());
    },
    async converged() {
      await waitUntil(() => {
        for (const r of system.regions.values()) {
          const own = r.gateway.appliedSeq(r.name)!;
          for (const o of system.regions.values()) {
            if (o === r) continue;
            const seen = o.gateway.appliedSeq(r.name);
            if (seen === undefined || seen.epoch !== own.epoch || seen.seq !== own.seq) return false;
          }
        }
        return true;
      }, "interest to converge");
    },
    async close() {
      for (const c of clients.splice(0)) await c.close().catch(() => {});
      await system.close();
    },
  };
  await waitUntil(
    () =>
      loaded.config.links.every(
        ({ between: [a, b] }) => kit.gw(a).linkState(b) === "up" && kit.gw(b).linkState(a) === "up",
      ),
    "links to come up",
  );
  return kit;
}

function expectJson(res: Response): void {
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("application/json")) throw new Error(`expected JSON, got ${type}`);
}

/** A subscription collecting `subject:payload` strings. */
export function collect(nc: NatsConnection, subject: string): string[] {
  const got: string[] = [];
  const sub = nc.subscribe(subject);
  (async () => {
    for await (const m of sub) got.push(`${m.subject}:${sc.decode(m.data)}`);
  })().catch(() => {});
  return got;
}

/** Like waitUntil, for a condition that needs to await (an HTTP request). */
export async function waitForAsync(
  cond: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
