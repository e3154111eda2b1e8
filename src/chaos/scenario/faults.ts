/**
 * Applies and reverts the faults of a timeline: toxics through the Toxiproxy API on the proxies of the links
 * (one link, one or both directions), partitions by disabling proxies (a disabled proxy refuses connections
 * and closes the open ones, so the links drop at once), and kills by stopping a region's system.
 *
 * A restarted region re-creates the proxies of the links it dials, so the faults on those are applied again.
 */
import type { Logger } from "pino";
import type { Toxiproxy } from "toxiproxy-node-client";
import type { BridgeheadConfig } from "../../config/schema.js";
import { proxyName, streamFrom, type ToxicStream } from "../links/index.js";
import { findLink } from "./checks.js";
import type { LinkRef, ScenarioCluster } from "./cluster.js";
import type { KillStep, PartitionStep, Step, ToxicStep } from "./schema.js";

export interface ToxicTarget {
  readonly proxy: string;
  readonly dialer: string;
  readonly stream: ToxicStream;
  readonly toxic: string;
}

/** One fault of the timeline, with what it acts on. */
export type Fault =
  | {
      readonly id: number;
      readonly kind: "toxic";
      readonly label: string;
      readonly step: ToxicStep;
      readonly targets: readonly ToxicTarget[];
    }
  | {
      readonly id: number;
      readonly kind: "partition";
      readonly label: string;
      readonly step: PartitionStep;
      readonly links: readonly LinkRef[];
    }
  | { readonly id: number; readonly kind: "kill"; readonly label: string; readonly step: KillStep };

function describeToxic(s: ToxicStep): string {
  const a = s.attributes;
  switch (s.toxic) {
    case "latency":
      return `latency ${a["latency"]}ms${a["jitter"] ? `±${a["jitter"]}ms` : ""}`;
    case "bandwidth":
      return `bandwidth ${a["rate"]} KB/s`;
    case "timeout":
      return `timeout ${a["timeout"]}ms`;
    case "reset_peer":
      return `reset_peer ${a["timeout"] ?? 0}ms`;
    case "slicer":
      return `slicer ~${a["average_size"]}B`;
    case "limit_data":
      return `limit_data ${a["bytes"]}B`;
    case "slow_close":
      return `slow_close ${a["delay"]}ms`;
  }
}

/** Turn a fault step into a fault: the links, proxies and streams it acts on. */
export function faultOf(
  step: Exclude<Step, { action: "restart" | "heal" }>,
  id: number,
  cfg: BridgeheadConfig,
): Fault {
  if (step.action === "kill") return { id, kind: "kill", label: `kill ${step.region}`, step };
  const links: LinkRef[] = cfg.links.map((l) => ({ dialer: l.between[0], listener: l.between[1] }));
  if (step.action === "partition") {
    if (step.region !== undefined) {
      const r = step.region;
      const affected = links.filter((l) => l.dialer === r || l.listener === r);
      return { id, kind: "partition", label: `partition ${r}`, step, links: affected };
    }
    const [a, b] = step.link!;
    const [dialer, listener] = findLink(cfg, a, b)!;
    return { id, kind: "partition", label: `partition ${a} <-> ${b}`, step, links: [{ dialer, listener }] };
  }
  const [dialer, listener] = findLink(cfg, step.link[0], step.link[1])!;
  const proxy = proxyName(dialer, listener);
  const streams: ToxicStream[] =
    step.direction === "both"
      ? ["upstream", "downstream"]
      : [streamFrom(dialer, step.direction.split("->")[0]!)];
  const targets = streams.map((stream) => ({
    proxy,
    dialer,
    stream,
    toxic: `step${id}_${step.toxic}_${stream}`,
  }));
  const where = step.direction === "both" ? `${step.link[0]} <-> ${step.link[1]}` : step.direction;
  return { id, kind: "toxic", label: `${describeToxic(step)} on ${where}`, step, targets };
}

function isNotFound(err: unknown): boolean {
  return /status code 404\b/.test(err instanceof Error ? err.message : String(err));
}

export class FaultInjector {
  /** Proxy name -> how many active partitions want it disabled. */
  private readonly disabled = new Map<string, number>();
  private readonly active = new Set<Fault>();

  constructor(
    private readonly toxiproxy: Toxiproxy,
    private readonly cluster: ScenarioCluster,
    private readonly log: Logger,
  ) {}

  activeFaults(): Fault[] {
    return [...this.active];
  }

  async apply(f: Fault): Promise<void> {
    this.active.add(f);
    switch (f.kind) {
      case "toxic":
        for (const t of f.targets) await this.addToxic(f.step, t);
        break;
      case "partition":
        for (const l of f.links) {
          const name = proxyName(l.dialer, l.listener);
          const n = (this.disabled.get(name) ?? 0) + 1;
          this.disabled.set(name, n);
          if (n === 1) await this.setEnabled(name, false);
        }
        break;
      case "kill":
        await this.cluster.kill(f.step.region);
        break;
    }
  }

  /** Undo a fault; undoing one that is no longer active does nothing. */
  async revert(f: Fault): Promise<void> {
    if (!this.active.delete(f)) return;
    switch (f.kind) {
      case "toxic":
        for (const t of f.targets) await this.removeToxic(t);
        break;
      case "partition":
        for (const l of f.links) {
          const name = proxyName(l.dialer, l.listener);
          const n = (this.disabled.get(name) ?? 1) - 1;
          if (n > 0) this.disabled.set(name, n);
          else {
            this.disabled.delete(name);
            await this.setEnabled(name, true);
          }
        }
        break;
      case "kill":
        await this.cluster.restart(f.step.region);
        await this.reapply(f.step.region);
        break;
    }
  }

  /** The proxies dialed by `region` are new after its restart: put their toxics and partitions back. */
  private async reapply(region: string): Promise<void> {
    for (const f of this.active) {
      if (f.kind !== "toxic") continue;
      for (const t of f.targets) if (t.dialer === region) await this.addToxic(f.step, t);
    }
    for (const [name, n] of this.disabled) {
      if (n > 0 && name.startsWith(`${region}->`)) await this.setEnabled(name, false);
    }
  }

  private async addToxic(step: ToxicStep, t: ToxicTarget): Promise<void> {
    try {
      const proxy = await this.toxiproxy.get(t.proxy);
      await proxy.addToxic({
        name: t.toxic,
        type: step.toxic,
        stream: t.stream,
        toxicity: step.toxicity,
        attributes: step.attributes,
      });
    } catch (err) {
      // The dialer is killed (its proxy is gone): the toxic goes on when it restarts.
      if (!isNotFound(err)) throw err;
      this.log.debug({ proxy: t.proxy, toxic: t.toxic }, "proxy not there: toxic applied at restart");
    }
  }

  private async removeToxic(t: ToxicTarget): Promise<void> {
    try {
      const proxy = await this.toxiproxy.get(t.proxy);
      await (await proxy.getToxic(t.toxic)).remove();
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async setEnabled(name: string, enabled: boolean): Promise<void> {
    try {
      const p = await this.toxiproxy.get(name);
      await p.update({ enabled, listen: p.listen, upstream: p.upstream });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
