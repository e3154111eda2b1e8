/**
 * Observability of one running region: its metrics registry, the drop log, and (when `monitor.listen` is
 * configured) the region monitor serving both. `startSystem` starts one per region.
 */
import type { Logger } from "pino";
import { type ObservedRegion, type RegionContext, regionContext } from "./context.js";
import { type DropLogOptions, watchDrops } from "./drops.js";
import { createRegionMetrics, type RegionMetrics } from "./metrics.js";
import { RegionMonitor } from "./monitor.js";

export { type ConfigView, configView, type RegionContext, regionContext } from "./context.js";
export { explain } from "./explain.js";
export { health } from "./health.js";

export interface ObserverOptions extends Partial<Omit<RegionContext, "region">> {
  readonly region: ObservedRegion;
  /** The process logger; lines get the region's binding. */
  readonly logger: Logger;
  /** Where to serve the monitor; none = metrics and the drop log only. Port 0 picks a free one. */
  readonly monitor?: { readonly host: string; readonly port: number } | undefined;
  readonly drops?: DropLogOptions;
}

export interface RegionObserver {
  readonly context: RegionContext;
  readonly metrics: RegionMetrics;
  /** The monitor's URL (`http://host:port`), when it listens. */
  readonly monitorUrl: string | undefined;
  close(): Promise<void>;
}

export async function startObserver(o: ObserverOptions): Promise<RegionObserver> {
  const { region, logger, monitor: where, drops, ...parts } = o;
  const ctx = regionContext(region, parts);
  const log = logger.child({ region: region.name });
  const metrics = createRegionMetrics(ctx);
  let monitor: RegionMonitor | undefined;
  let monitorUrl: string | undefined;
  if (where !== undefined) {
    monitor = new RegionMonitor(ctx, metrics.registry);
    try {
      const addr = await monitor.listen(where.host, where.port);
      const host = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address;
      monitorUrl = `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
      log.info({ host: addr.address, port: addr.port }, "monitor listening");
    } catch (err) {
      metrics.stop();
      throw err;
    }
  }
  const stopDrops = watchDrops(region.gateway, log, drops);
  return {
    context: ctx,
    metrics,
    monitorUrl,
    async close() {
      stopDrops();
      metrics.stop();
      await monitor?.close();
    },
  };
}
