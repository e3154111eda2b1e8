/**
 * What the observability parts (metrics, region monitor, drop log) need to know about one region: the
 * running broker and gateway, and what the config in force says about it (its links, their filters, every
 * region's name). Built from a `LoadedConfig` by `configView` (the config is read at every call, so a
 * reload is seen at once); without a config the gateway's own view stands in.
 */

import type { BrokerServer } from "../broker/server.js";
import type { LoadedConfig } from "../config/load.js";
import type { Gateway } from "../gateway/gateway.js";
import { DEFAULT_OUTBOX_LIMITS } from "../gateway/outbox.js";

/** The export and import lists of one direction of a link, as configured (UTF-8 text patterns). */
export interface DirectedFilterLists {
  /** What the sending region exports over this link; undefined = everything. */
  readonly export: readonly string[] | undefined;
  /** What the receiving region imports over this link; undefined = everything. */
  readonly import: readonly string[] | undefined;
}

export interface ObservedRegion {
  readonly name: string;
  /**
   * The embedded broker; undefined for a region whose broker is a nats-server cluster (leafnode): then the
   * broker's own tables (/varz, /connz, /subsz, broker metrics) are the cluster's monitoring, and local
   * interest comes from the region port.
   */
  readonly broker: BrokerServer | undefined;
  readonly gateway: Gateway;
}

export interface RegionContext {
  readonly region: ObservedRegion;
  /** Regions this one has a configured link with. Default: the peers the gateway knows of. */
  configuredPeers(): readonly string[];
  /**
   * The filter lists of the configured link `from`→`to` (the direction of a message), or undefined when
   * no link is configured between them (or, without a config, not known).
   */
  linkFilters(from: string, to: string): DirectedFilterLists | undefined;
  /** Every region of the system, as configured. Default: the regions this gateway heard of. */
  regionNames(): readonly string[];
  /**
   * The (epoch, seq) `origin` itself is at, when it runs in this process (`bridgehead up`): lets metrics
   * give an exact interest sequence lag. Undefined otherwise.
   */
  originSeq(origin: string): { epoch: number; seq: number } | undefined;
  /** `metrics.enabled` of the config in force. */
  metricsEnabled(): boolean;
  /** The configured links, each as its two regions (dialer first). Default: none known. */
  configuredLinks(): readonly (readonly [string, string])[];
  /**
   * The bound (bytes) of the link `from`→`to`'s send queue, where it starts shedding: the link's
   * `outbox.max_bytes`, else DEFAULT_OUTBOX_MAX_BYTES.
   */
  outboxMaxBytes(from: string, to: string): number;
  /**
   * Another region running in this process (`bridgehead up`), to read its own counters and links directly;
   * undefined when it runs elsewhere (then only what the link-state database says about it is known).
   */
  sibling(name: string): RegionContext | undefined;
}

/** A link's send-queue bound when the config sets no `outbox.max_bytes` (the store-and-forward default). */
export const DEFAULT_OUTBOX_MAX_BYTES = DEFAULT_OUTBOX_LIMITS.maxBytes;

/** The parts of a RegionContext a config provides. */
export type ConfigView = Pick<
  RegionContext,
  "configuredPeers" | "linkFilters" | "regionNames" | "metricsEnabled" | "configuredLinks" | "outboxMaxBytes"
>;

/** Reads `config()` at every call, so a reloaded config takes effect at once. */
export function configView(config: () => LoadedConfig, region: string): ConfigView {
  const linkOf = (a: string, b: string) =>
    config().config.links.find(
      (l) => (l.between[0] === a && l.between[1] === b) || (l.between[0] === b && l.between[1] === a),
    );
  return {
    configuredPeers: () =>
      config()
        .config.links.filter((l) => l.between.includes(region))
        .map((l) => (l.between[0] === region ? l.between[1] : l.between[0])),
    linkFilters: (from, to) => {
      const link = linkOf(from, to);
      if (link === undefined) return undefined;
      return { export: link.export?.[from], import: link.import?.[to] };
    },
    regionNames: () => config().config.regions.map((r) => r.name),
    metricsEnabled: () => config().config.metrics.enabled,
    configuredLinks: () => config().config.links.map((l) => l.between),
    outboxMaxBytes: (from, to) => linkOf(from, to)?.outbox?.max_bytes ?? DEFAULT_OUTBOX_MAX_BYTES,
  };
}

/** A context with every optional part filled in from the gateway's own view. */
export function regionContext(
  region: ObservedRegion,
  parts: Partial<Omit<RegionContext, "region">> = {},
): RegionContext {
  const gw = region.gateway;
  return {
    region,
    configuredPeers: parts.configuredPeers ?? (() => gw.peers()),
    linkFilters: parts.linkFilters ?? (() => undefined),
    regionNames:
      parts.regionNames ??
      (() => [
        ...new Set([
          region.name,
          ...gw.topology.advertisements().flatMap((a) => [a.origin, ...a.neighbors.map((n) => n.region)]),
          ...gw.remote.originNames(),
        ]),
      ]),
    originSeq: parts.originSeq ?? (() => undefined),
    metricsEnabled: parts.metricsEnabled ?? (() => true),
    configuredLinks: parts.configuredLinks ?? (() => []),
    outboxMaxBytes: parts.outboxMaxBytes ?? (() => DEFAULT_OUTBOX_MAX_BYTES),
    sibling: parts.sibling ?? (() => undefined),
  };
}

/** Wire strings (subjects, queues) are latin1, one char per byte; people read UTF-8. */
export function wireToText(s: string): string {
  return Buffer.from(s, "latin1").toString("utf8");
}
