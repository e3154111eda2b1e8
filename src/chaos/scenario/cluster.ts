/**
 * The topology of a scenario, running in this process in chaos mode: one system per region (startSystem with
 * `only`), so killing a region is stopping its system and restarting it is starting it again on the same
 * ports. Answers the questions a run asks of gateway state: are the links up, has interest converged, does
 * every region hold exactly the interest the others have (no stale entries)?
 */
import { createServer } from "node:net";
import type { Logger } from "pino";
import type { LoadedConfig } from "../../config/load.js";
import type { RegionConfig } from "../../config/schema.js";
import type { RunningRegion } from "../../region/region.js";
import { type RunningSystem, startSystem } from "../../runtime/system.js";
import { BridgeheadError } from "../../util/errors.js";

export class ScenarioRunError extends BridgeheadError {
  override readonly name = "ScenarioRunError";
}

export interface ClusterOptions {
  readonly topology: LoadedConfig;
  readonly toxiproxyUrl: string;
  /** chaos.heartbeat for every link. */
  readonly heartbeatMs?: number;
  /** Replace every broker and gateway port by a free one (monitors get port 0). */
  readonly freePorts: boolean;
  readonly logger: Logger;
}

export interface LinkRef {
  readonly dialer: string;
  readonly listener: string;
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(":");
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** Free ports on `host`, all held open until every one is known so none is handed out twice. */
async function freePorts(hosts: readonly string[]): Promise<number[]> {
  const servers = hosts.map(() => createServer());
  try {
    return await Promise.all(
      servers.map(
        (s, i) =>
          new Promise<number>((resolve, reject) => {
            s.once("error", reject);
            s.listen(0, unbracket(hosts[i]!), () => {
              const a = s.address();
              resolve(typeof a === "object" && a !== null ? a.port : 0);
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/**
 * The topology with concrete ports (a restarted region must come back where its clients and proxies expect
 * it) and chaos mode on. Gateway URLs are dropped with free ports: every region runs here, at its listen
 * address.
 */
async function pinned(o: ClusterOptions): Promise<LoadedConfig> {
  const cfg = o.topology.config;
  const wanted: { region: number; key: "broker" | "gateway"; host: string }[] = [];
  cfg.regions.forEach((r, i) => {
    if (r.broker.type === "embedded") {
      const b = splitHostPort(r.broker.listen);
      if (o.freePorts || b.port === 0) wanted.push({ region: i, key: "broker", host: b.host });
    }
    const g = splitHostPort(r.gateway.listen);
    if (o.freePorts || g.port === 0) wanted.push({ region: i, key: "gateway", host: g.host });
  });
  const ports = await freePorts(wanted.map((w) => w.host));
  const regions: RegionConfig[] = cfg.regions.map((r) => ({ ...r }));
  wanted.forEach((w, k) => {
    const r = regions[w.region]!;
    const listen = `${w.host}:${ports[k]}`;
    if (w.key === "broker" && r.broker.type === "embedded")
      regions[w.region] = { ...r, broker: { ...r.broker, listen } };
    if (w.key === "gateway") {
      regions[w.region] = { ...r, gateway: { listen, url: o.freePorts ? undefined : r.gateway.url } };
    }
  });
  if (o.freePorts) {
    regions.forEach((r, i) => {
      if (r.monitor !== undefined)
        regions[i] = { ...r, monitor: { listen: `${splitHostPort(r.monitor.listen).host}:0` } };
    });
  }
  return {
    ...o.topology,
    config: {
      ...cfg,
      regions,
      chaos: {
        ...cfg.chaos,
        enabled: true,
        toxiproxy_url: o.toxiproxyUrl,
        heartbeat: o.heartbeatMs ?? cfg.chaos.heartbeat,
      },
    },
  };
}

export class ScenarioCluster {
  private readonly systems = new Map<string, RunningSystem>();
  private readonly filtered: boolean;

  private constructor(
    readonly loaded: LoadedConfig,
    private readonly logger: Logger,
  ) {
    this.filtered = loaded.config.links.some((l) => l.export !== undefined || l.import !== undefined);
  }

  /** Start every region (each dials its links through its proxies). */
  static async start(o: ClusterOptions): Promise<ScenarioCluster> {
    const cluster = new ScenarioCluster(await pinned(o), o.logger);
    try {
      for (const r of cluster.loaded.config.regions) await cluster.startRegion(r.name);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** Every region of the topology, running or not. */
  names(): string[] {
    return this.loaded.config.regions.map((r) => r.name);
  }

  isRunning(name: string): boolean {
    return this.systems.has(name);
  }

  region(name: string): RunningRegion | undefined {
    return this.systems.get(name)?.regions.get(name);
  }

  /** The NATS URL of a region's broker (the same across restarts). */
  clientUrl(name: string): string {
    const r = this.loaded.config.regions.find((x) => x.name === name);
    if (r === undefined || r.broker.type !== "embedded")
      throw new ScenarioRunError(`no embedded region ${name}`);
    const { host, port } = splitHostPort(r.broker.listen);
    const h = host === "0.0.0.0" || host === "[::]" || host === "::" || host === "*" ? "127.0.0.1" : host;
    return `nats://${h}:${port}`;
  }

  /** The configured links, each as dialer -> listener. */
  links(): LinkRef[] {
    return this.loaded.config.links.map((l) => ({ dialer: l.between[0], listener: l.between[1] }));
  }

  async kill(name: string): Promise<void> {
    const s = this.systems.get(name);
    if (s === undefined) return;
    this.systems.delete(name);
    await s.close();
  }

  async restart(name: string): Promise<void> {
    if (this.systems.has(name)) return;
    await this.startRegion(name);
  }

  /** Both ends of the link see it `up`. */
  linkUp(l: LinkRef): boolean {
    return (
      this.region(l.dialer)?.gateway.linkState(l.listener) === "up" &&
      this.region(l.listener)?.gateway.linkState(l.dialer) === "up"
    );
  }

  /** How many links the dialer's current gateway has established to the listener (1 = never reconnected). */
  established(l: LinkRef): number {
    return this.region(l.dialer)?.gateway.linkView(l.listener)?.established ?? 0;
  }

  /**
   * What keeps the running regions from being converged, or [] when they are: a link between running
   * regions not up, a region that cannot reach another, an origin's interest applied at an older (epoch,
   * seq), and (without filters, where both sides must match exactly) entries one region holds for another
   * that the other does not have (stale) or lacks (missing). Interest held for a region that is not running
   * is stale too.
   */
  problems(): string[] {
    const out: string[] = [];
    for (const l of this.links()) {
      if (this.isRunning(l.dialer) && this.isRunning(l.listener) && !this.linkUp(l)) {
        out.push(`link ${l.dialer} <-> ${l.listener} is not up`);
      }
    }
    const running = [...this.systems.keys()];
    for (const o of running) {
      const og = this.region(o)!.gateway;
      for (const origin of og.remote.originNames()) {
        if (!this.isRunning(origin)) out.push(`${o} still holds interest of ${origin}, which is not running`);
      }
      for (const x of running) {
        if (x === o) continue;
        const xr = this.region(x)!;
        if (!og.topology.reachable(x)) {
          out.push(`${o} cannot reach ${x}`);
          continue;
        }
        const own = xr.gateway.appliedSeq(x)!;
        const seen = og.appliedSeq(x);
        if (seen === undefined || seen.epoch !== own.epoch || seen.seq !== own.seq) {
          out.push(
            `${o} has ${x}'s interest at ${seen === undefined ? "nothing" : `${seen.epoch}/${seen.seq}`}, ${x} is at ${own.epoch}/${own.seq}`,
          );
          continue;
        }
        if (this.filtered) continue;
        const key = (e: { subject: string; queue: string | undefined; weight: number }) =>
          `${e.subject}${e.queue === undefined ? "" : ` (queue ${e.queue})`} x${e.weight}`;
        const actual = new Set(xr.broker.interestSnapshot().map(key));
        const held = new Set([...(og.remote.origin(x)?.entries.values() ?? [])].map(key));
        for (const k of held) if (!actual.has(k)) out.push(`${o} holds stale interest of ${x}: ${k}`);
        for (const k of actual) if (!held.has(k)) out.push(`${o} misses interest of ${x}: ${k}`);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.systems.values()];
    this.systems.clear();
    await Promise.all(all.map((s) => s.close()));
  }

  private async startRegion(name: string): Promise<void> {
    try {
      this.systems.set(name, await startSystem(this.loaded, this.logger, name));
    } catch (err) {
      throw new ScenarioRunError(`cannot start region ${name}: ${(err as Error).message}`);
    }
  }
}
