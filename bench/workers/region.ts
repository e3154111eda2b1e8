/**
 * One Bridgehead region (embedded broker + gateway) in its own process, for the cross-region cases: started
 * with `startRegion` on free loopback ports, it reports `ready` with its client and gateway URLs. Then, on
 * IPC: `dial` links it to a peer region's gateway, `status` is answered with the state of its link to that
 * peer (`"up"` once both sides have synced interest), and `stop` closes the region and reports its gateway
 * counters. Logs go to stderr at level "warn".
 */
import { startRegion } from "../../src/region/region.js";
import { createLogger } from "../../src/util/logger.js";
import type { ControlMessage } from "../protocol.js";
import { runWorker, send, type WorkerConfigBase } from "./common.js";

export interface RegionWorkerConfig extends WorkerConfigBase {
  readonly name: string;
  readonly token: string;
  readonly host: string;
  /** Slow-consumer limits of the region's broker (the throughput cases raise them as for nats-server). */
  readonly maxPendingBytes: number;
  readonly writeDeadlineMs: number;
  /** Link ACKs (store-and-forward); false measures what they cost. */
  readonly acks: boolean;
  /** Link compression (the WAN cases use auto). */
  readonly compression?: "off" | "on" | "auto";
}

runWorker<RegionWorkerConfig>("region", async (cfg) => {
  const logger = createLogger({ bench: "region" }, "warn");
  const region = await startRegion({
    name: cfg.name,
    broker: {
      host: cfg.host,
      port: 0,
      maxPendingBytes: cfg.maxPendingBytes,
      writeDeadlineMs: cfg.writeDeadlineMs,
    },
    gateway: {
      token: cfg.token,
      listen: { host: cfg.host, port: 0 },
      // As nats-server gets max_pending 1 GiB: a link's backlog under a publisher faster than the receiving
      // region may grow that far instead of being shed, so throughput runs measure speed, not the drop policy.
      acks: cfg.acks,
      compression: () => cfg.compression ?? "off",
      outboxLimits: () => ({
        maxBytes: 1024 * 1024 * 1024,
        maxMessages: 50_000_000,
        maxAgeMs: 600_000,
        drop: "oldest",
      }),
    },
    logger,
  });
  const stopped = new Promise<void>((resolve) => {
    process.on("message", (m: ControlMessage) => {
      if (m.type === "dial") region.gateway.dial({ url: m.url, region: m.region });
      else if (m.type === "status") {
        void send({ type: "status", peer: m.peer, state: region.gateway.linkState(m.peer) ?? null });
      } else if (m.type === "stop") resolve();
    });
  });
  await send({ type: "ready", clientUrl: region.clientUrl, gatewayUrl: region.gatewayUrl });
  await stopped;
  const stats = { ...region.gateway.stats, drops: { ...region.gateway.store.drops } };
  await region.close();
  await send({ type: "result", data: { gateway: stats } });
});
