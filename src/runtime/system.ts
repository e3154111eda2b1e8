/**
 * Runs the regions of a loaded config: all of them in this process (`bridgehead up`) or one
 * (`bridgehead node --region X`). Turns config entries into broker and gateway options, dials each link
 * from its first region, and applies a reloaded config to the running regions.
 */
import type { Logger } from "pino";
import type { BrokerOptions } from "../broker/options.js";
import { type ChaosLinks, startChaosLinks } from "../chaos/links/index.js";
import type { LoadedConfig } from "../config/load.js";
import type { LinkConfig, RegionConfig } from "../config/schema.js";
import type { FilterLookup, GatewayPeer, LinkFilters } from "../gateway/gateway.js";
import { DEFAULT_OUTBOX_LIMITS, type OutboxLimits } from "../gateway/outbox.js";
import { SubjectFilter } from "../interest/pattern-set.js";
import { configView, type RegionObserver, startObserver } from "../observe/index.js";
import {
  type RunningGatewayRegion,
  type RunningLeafnodeRegion,
  type RunningRegion,
  startLeafnodeRegion,
  startRegion,
} from "../region/region.js";
import { BridgeheadError } from "../util/errors.js";

export class SystemError extends BridgeheadError {
  override readonly name = "SystemError";
}

export interface RunningSystem {
  /** Regions with the embedded broker. */
  readonly regions: ReadonlyMap<string, RunningRegion>;
  /** Regions whose broker is a nats-server cluster (`type: nats`), attached as a leaf node. */
  readonly leafnodeRegions: ReadonlyMap<string, RunningLeafnodeRegion>;
  /** Every region running here, whatever its broker. */
  readonly allRegions: ReadonlyMap<string, RunningGatewayRegion>;
  /** The config in force (the last one applied). */
  readonly current: LoadedConfig;
  /** Monitor URL per region, when configured. */
  monitorUrl(region: string): string | undefined;
  /** Chaos mode (`chaos.enabled`): the Toxiproxy and the proxies the links dialed here go through. */
  readonly chaos: ChaosLinks | undefined;
  /**
   * Apply a new (already validated) config without restarting regions: links added, removed or with a new
   * token are dialed or dropped, filters and the log level replaced. Region settings (listen addresses,
   * auth, regions added or removed) need a restart: they are reported and left as they are.
   */
  reload(next: LoadedConfig): Promise<ReloadReport>;
  close(): Promise<void>;
}

export interface ReloadReport {
  readonly linksAdded: readonly string[];
  readonly linksRemoved: readonly string[];
  readonly filtersChanged: readonly string[];
  readonly needsRestart: readonly string[];
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a} <-> ${b}` : `${b} <-> ${a}`;
}

interface LinkView {
  readonly link: LinkConfig;
  readonly token: string;
}

function linkViews(loaded: LoadedConfig): Map<string, LinkView> {
  const m = new Map<string, LinkView>();
  for (const [i, link] of loaded.config.links.entries()) {
    m.set(pairKey(link.between[0], link.between[1]), { link, token: loaded.linkTokens[i]! });
  }
  return m;
}

function splitHostPort(hp: string): { host: string; port: number } {
  const i = hp.lastIndexOf(":");
  let host = hp.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return { host, port: Number(hp.slice(i + 1)) };
}

/** The URL other regions dial to reach `r`: its configured `url`, else derived from its listen address. */
export function gatewayUrlOf(r: RegionConfig, running?: RunningGatewayRegion): string {
  if (r.gateway.url !== undefined) return r.gateway.url;
  if (running?.gatewayUrl !== undefined) return running.gatewayUrl;
  const { host, port } = splitHostPort(r.gateway.listen);
  const h = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `ws://${h}:${port}/bridgehead/v1`;
}

function brokerOptionsOf(r: RegionConfig): Partial<BrokerOptions> {
  if (r.broker.type !== "embedded") throw new SystemError(`region ${r.name}: not an embedded broker`);
  const { host, port } = splitHostPort(r.broker.listen);
  const o: { -readonly [K in keyof BrokerOptions]?: BrokerOptions[K] } = { host, port, serverName: r.name };
  const a = r.broker.auth;
  if (a !== undefined) {
    o.auth = {
      ...(a.token !== undefined ? { token: a.token } : {}),
      ...(a.users !== undefined
        ? { users: a.users.map((u) => ({ user: u.user, password: u.password })) }
        : {}),
      ...(a.timeout !== undefined ? { timeoutSec: a.timeout / 1000 } : {}),
    };
  }
  if (r.broker.max_payload !== undefined) o.maxPayload = r.broker.max_payload;
  // monitor.listen is served by the region monitor (src/observe), not the broker's own.
  return o;
}

/** The token of the link between `region` and `peer`, if one is configured. */
function tokenFor(loaded: LoadedConfig, region: string, peer: string): string | undefined {
  const i = loaded.config.links.findIndex(
    (l) =>
      (l.between[0] === region && l.between[1] === peer) ||
      (l.between[1] === region && l.between[0] === peer),
  );
  return i < 0 ? undefined : loaded.linkTokens[i];
}

/** The configured link between two regions, either way round. */
function linkBetween(loaded: LoadedConfig, a: string, b: string): LinkConfig | undefined {
  return loaded.config.links.find(
    (l) => (l.between[0] === a && l.between[1] === b) || (l.between[1] === a && l.between[0] === b),
  );
}

/**
 * Outbox bounds for messages from `region` to `destination`: the `outbox` block of the link between them
 * when they are linked directly, each unset key (and a destination further away) at its default.
 */
export function outboxLimitsFor(loaded: LoadedConfig, region: string, destination: string): OutboxLimits {
  const link = loaded.config.links.find(
    (l) =>
      (l.between[0] === region && l.between[1] === destination) ||
      (l.between[1] === region && l.between[0] === destination),
  );
  const o = link?.outbox;
  const d = DEFAULT_OUTBOX_LIMITS;
  return {
    maxBytes: o?.max_bytes ?? d.maxBytes,
    maxMessages: o?.max_messages ?? d.maxMessages,
    maxAgeMs: o?.max_age ?? d.maxAgeMs,
    drop: o?.drop ?? d.drop,
  };
}

/** The export/import filters of the link between `region` and each peer, as the gateway applies them. */
export function filtersFor(loaded: LoadedConfig, region: string): FilterLookup {
  const cache = new Map<string, LinkFilters | undefined>();
  return (peer) => {
    if (cache.has(peer)) return cache.get(peer);
    const link = loaded.config.links.find(
      (l) =>
        (l.between[0] === region && l.between[1] === peer) ||
        (l.between[1] === region && l.between[0] === peer),
    );
    const f =
      link === undefined
        ? undefined
        : {
            outbound: new SubjectFilter([link.export?.[region], link.import?.[peer]]),
            inbound: new SubjectFilter([link.export?.[peer], link.import?.[region]]),
          };
    cache.set(peer, f);
    return f;
  };
}

function linksDialedBy(loaded: LoadedConfig, region: string): { link: LinkConfig; index: number }[] {
  return loaded.config.links
    .map((link, index) => ({ link, index }))
    .filter((x) => x.link.between[0] === region);
}

/**
 * Start the regions of `loaded` (all, or only `only`), then dial every link whose first region runs here.
 * Regions are started before any link is dialed, so in one process a link never waits for its listener.
 */
export async function startSystem(
  loaded: LoadedConfig,
  logger: Logger,
  only?: string,
): Promise<RunningSystem> {
  const cfg = loaded.config;
  const selected = only === undefined ? cfg.regions : cfg.regions.filter((r) => r.name === only);
  if (only !== undefined && selected.length === 0) {
    throw new SystemError(
      `no region named '${only}' in the config (regions: ${cfg.regions.map((r) => r.name).join(", ")})`,
    );
  }
  const regions = new Map<string, RunningRegion>();
  const leafnodeRegions = new Map<string, RunningLeafnodeRegion>();
  const all = new Map<string, RunningGatewayRegion>();
  const observers = new Map<string, RegionObserver>();
  let current = loaded;
  let chaos: ChaosLinks | undefined;
  const dial = async (from: string, link: LinkConfig, token: string) => {
    const peerName = link.between[1];
    const peerCfg = current.config.regions.find((x) => x.name === peerName)!;
    const direct = gatewayUrlOf(peerCfg, all.get(peerName));
    const url = chaos === undefined ? direct : await chaos.route(from, peerName, direct);
    const peer: GatewayPeer = { url, region: peerName, token };
    all.get(from)!.gateway.dial(peer);
  };
  try {
    for (const r of selected) {
      const { host, port } = splitHostPort(r.gateway.listen);
      const gateway = {
        // Looked up in the config in force, so a reload's new tokens apply to the next handshake.
        token: (peer: string) => tokenFor(current, r.name, peer),
        listen: { host, port },
        filters: filtersFor(loaded, r.name),
        // Also looked up in the config in force: a reload's new bounds apply to what is parked.
        outboxLimits: (dest: string) => outboxLimitsFor(current, r.name, dest),
        compression: (peer: string) => linkBetween(current, r.name, peer)?.compression,
        heartbeatMs: cfg.chaos.enabled ? cfg.chaos.heartbeat : undefined,
      };
      if (r.broker.type === "nats") {
        const b = r.broker;
        const leaf = await startLeafnodeRegion({
          name: r.name,
          leafnode: {
            urls: b.urls,
            ...(b.user !== undefined ? { user: b.user } : {}),
            ...(b.password !== undefined ? { password: b.password } : {}),
          },
          gateway,
          logger,
        });
        leafnodeRegions.set(r.name, leaf);
        all.set(r.name, leaf);
      } else {
        const running = await startRegion({ name: r.name, broker: brokerOptionsOf(r), gateway, logger });
        regions.set(r.name, running);
        all.set(r.name, running);
      }
      // A nats-server-backed region has no embedded broker: its monitor serves everything but the broker's
      // own tables (/connz, /subsz), which are the cluster's.
      const embedded = regions.get(r.name);
      observers.set(
        r.name,
        await startObserver({
          region: { name: r.name, broker: embedded?.broker, gateway: all.get(r.name)!.gateway },
          logger,
          ...configView(() => current, r.name),
          originSeq: (origin) => all.get(origin)?.gateway.appliedSeq(origin),
          // The other regions of this process: the dashboard shows their counters and links directly.
          sibling: (name) => (name === r.name ? undefined : observers.get(name)?.context),
          monitor: r.monitor === undefined ? undefined : splitHostPort(r.monitor.listen),
        }),
      );
    }
    // Links start once every local region listens, so a proxy's upstream is a real address.
    if (cfg.chaos.enabled) chaos = await startChaosLinks(cfg.chaos, logger);
    for (const r of selected) {
      for (const { link, index } of linksDialedBy(loaded, r.name))
        await dial(r.name, link, loaded.linkTokens[index]!);
    }
  } catch (err) {
    await Promise.all([...observers.values()].map((o) => o.close()));
    await Promise.all([...all.values()].map((r) => r.close()));
    await chaos?.close();
    throw err;
  }
  return {
    regions,
    leafnodeRegions,
    allRegions: all,
    chaos,
    get current() {
      return current;
    },
    async reload(next) {
      const before = linkViews(current);
      const after = linkViews(next);
      const needsRestart: string[] = [];
      const oldNames = current.config.regions.map((r) => r.name);
      const newNames = next.config.regions.map((r) => r.name);
      for (const n of newNames)
        if (!oldNames.includes(n) && (only === undefined || only === n))
          needsRestart.push(`region ${n} added`);
      for (const n of oldNames)
        if (!newNames.includes(n) && all.has(n)) needsRestart.push(`region ${n} removed`);
      for (const r of next.config.regions) {
        const old = current.config.regions.find((x) => x.name === r.name);
        if (old !== undefined && all.has(r.name) && JSON.stringify(old) !== JSON.stringify(r)) {
          needsRestart.push(`region ${r.name} settings changed`);
        }
      }
      if (JSON.stringify(current.config.chaos) !== JSON.stringify(next.config.chaos))
        needsRestart.push("chaos settings changed");
      const removed = [...before.keys()].filter((k) => {
        const n = after.get(k);
        return (
          n === undefined ||
          n.token !== before.get(k)!.token ||
          n.link.between[0] !== before.get(k)!.link.between[0]
        );
      });
      const added = [...after.keys()].filter((k) => removed.includes(k) || !before.has(k));
      const filtersChanged = [...after.keys()].filter((k) => {
        const o = before.get(k);
        return (
          o !== undefined &&
          JSON.stringify([o.link.export, o.link.import]) !==
            JSON.stringify([after.get(k)!.link.export, after.get(k)!.link.import])
        );
      });
      // Drop first (both ends that run here), then switch config, then dial: a re-added link uses the new token.
      for (const k of removed) {
        const [a, b] = before.get(k)!.link.between;
        await Promise.all([all.get(a)?.gateway.dropLink(b), all.get(b)?.gateway.dropLink(a)]);
        if (all.has(a)) await chaos?.unroute(a, b);
      }
      current = next;
      for (const [name, running] of all) {
        running.gateway.setFilters(filtersFor(next, name));
        running.gateway.refreshOutboxLimits();
        running.gateway.refreshCompression();
      }
      for (const k of added) {
        const v = after.get(k)!;
        if (all.has(v.link.between[0]) && newNames.includes(v.link.between[1]))
          await dial(v.link.between[0], v.link, v.token);
      }
      logger.level = next.config.logging.level;
      const report: ReloadReport = { linksAdded: added, linksRemoved: removed, filtersChanged, needsRestart };
      logger.info(report, "config reloaded");
      if (needsRestart.length > 0)
        logger.warn({ needsRestart }, "some changes need a restart and were not applied");
      return report;
    },
    monitorUrl(region) {
      return observers.get(region)?.monitorUrl;
    },
    async close() {
      await Promise.all([...observers.values()].map((o) => o.close()));
      await Promise.all([...all.values()].map((r) => r.close()));
      await chaos?.close();
    },
  };
}
