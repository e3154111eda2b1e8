/**
 * A region in one process: the embedded broker plus its gateway, or a gateway attached to an existing
 * nats-server cluster as a leaf node. `bridgehead up` starts several of these side by side; `bridgehead
 * node` starts one.
 */
import type { Logger } from "pino";
import { type BrokerOptions, brokerOptions } from "../broker/options.js";
import { BrokerServer } from "../broker/server.js";
import type { BackoffOptions } from "../gateway/backoff.js";
import type { CompressionMode } from "../gateway/compression.js";
import { type FilterLookup, type FlowControl, Gateway, type GatewayPeer } from "../gateway/gateway.js";
import type { LinkToken } from "../gateway/link.js";
import type { OutboxLimits } from "../gateway/outbox.js";
import { EmbeddedRegionPort } from "./embedded.js";
import { type LeafnodePortOptions, LeafnodeRegionPort } from "./leafnode/port.js";
import type { RegionPort } from "./port.js";

export interface RegionOptions {
  readonly name: string;
  readonly broker?: Partial<BrokerOptions>;
  readonly gateway: RegionGatewayOptions;
  readonly logger: Logger;
}

export interface RegionGatewayOptions {
  /** One token for every link, or per peer region. */
  readonly token: LinkToken;
  readonly listen?: { readonly host: string; readonly port: number };
  readonly peers?: readonly GatewayPeer[];
  readonly heartbeatMs?: number;
  readonly advertiseMs?: number;
  readonly filters?: FilterLookup;
  readonly outboxLimits?: (destination: string) => OutboxLimits | undefined;
  readonly handshakeTimeoutMs?: number;
  readonly dialBackoff?: BackoffOptions;
  readonly flowControl?: Partial<FlowControl>;
  readonly acks?: boolean;
  /** Per peer region: compression of what this region sends on the link; default off. */
  readonly compression?: (peer: string) => CompressionMode | undefined;
}

/** What every running region has, whatever its broker. */
export interface RunningGatewayRegion {
  readonly name: string;
  readonly gateway: Gateway;
  /** ws://host:port/bridgehead/v1 for other regions' links, when listening. */
  readonly gatewayUrl: string | undefined;
  close(): Promise<void>;
}

/** A region with the embedded broker. */
export interface RunningRegion extends RunningGatewayRegion {
  readonly broker: BrokerServer;
  /** nats://host:port for clients. */
  readonly clientUrl: string;
}

/** A region whose broker is a nats-server cluster, attached as a leaf node. */
export interface RunningLeafnodeRegion extends RunningGatewayRegion {
  readonly port: LeafnodeRegionPort;
}

export interface LeafnodeRegionOptions {
  readonly name: string;
  /** The cluster's leafnode URLs, credentials and connection timings (the region and logger come from here). */
  readonly leafnode: Omit<LeafnodePortOptions, "region" | "logger">;
  readonly gateway: RegionGatewayOptions;
  readonly logger: Logger;
}

function newGateway(port: RegionPort, name: string, g: RegionGatewayOptions, logger: Logger): Gateway {
  return new Gateway(port, {
    region: name,
    token: g.token,
    listen: g.listen,
    peers: g.peers,
    logger,
    heartbeatMs: g.heartbeatMs,
    advertiseMs: g.advertiseMs,
    filters: g.filters,
    outboxLimits: g.outboxLimits,
    handshakeTimeoutMs: g.handshakeTimeoutMs,
    dialBackoff: g.dialBackoff,
    flowControl: g.flowControl,
    acks: g.acks,
    compression: g.compression,
  });
}

function gatewayUrl(gateway: Gateway): string | undefined {
  const gw = gateway.address;
  return gw === undefined ? undefined : `ws://${gw.host}:${gw.port}/bridgehead/v1`;
}

/**
 * Start a gateway for an existing nats-server cluster. It does not wait for the cluster: the adapter
 * dials in the background (and redials), and the region's interest appears once the hub has sent it.
 */
export async function startLeafnodeRegion(o: LeafnodeRegionOptions): Promise<RunningLeafnodeRegion> {
  const port = new LeafnodeRegionPort({ ...o.leafnode, region: o.name, logger: o.logger });
  const gateway = newGateway(port, o.name, o.gateway, o.logger);
  await gateway.start();
  port.start();
  return {
    name: o.name,
    port,
    gateway,
    gatewayUrl: gatewayUrl(gateway),
    async close() {
      await gateway.close();
      await port.close();
    },
  };
}

export async function startRegion(o: RegionOptions): Promise<RunningRegion> {
  const broker = new BrokerServer(
    brokerOptions({ serverName: o.name, ...o.broker }),
    o.logger.child({ region: o.name }),
  );
  const addr = await broker.listen();
  const gateway = newGateway(new EmbeddedRegionPort(broker), o.name, o.gateway, o.logger);
  try {
    await gateway.start();
  } catch (err) {
    await broker.close();
    throw err;
  }
  const host = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address;
  return {
    name: o.name,
    broker,
    gateway,
    clientUrl: `nats://${host}:${addr.port}`,
    gatewayUrl: gatewayUrl(gateway),
    async close() {
      await gateway.close();
      await broker.close();
    },
  };
}
