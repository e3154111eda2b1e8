/**
 * A region in one process: the embedded broker plus its gateway. `bridgehead up` starts several of
 * these side by side; `bridgehead node` starts one.
 */
import type { Logger } from "pino";
import { type BrokerOptions, brokerOptions } from "../broker/options.js";
import { BrokerServer } from "../broker/server.js";
import type { BackoffOptions } from "../gateway/backoff.js";
import { type FilterLookup, type FlowControl, Gateway, type GatewayPeer } from "../gateway/gateway.js";
import type { LinkToken } from "../gateway/link.js";
import type { OutboxLimits } from "../gateway/outbox.js";
import { EmbeddedRegionPort } from "./embedded.js";

export interface RegionOptions {
  readonly name: string;
  readonly broker?: Partial<BrokerOptions>;
  readonly gateway: {
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
  };
  readonly logger: Logger;
}

export interface RunningRegion {
  readonly name: string;
  readonly broker: BrokerServer;
  readonly gateway: Gateway;
  /** nats://host:port for clients. */
  readonly clientUrl: string;
  /** ws://host:port/bridgehead/v1 for other regions' links, when listening. */
  readonly gatewayUrl: string | undefined;
  close(): Promise<void>;
}

export async function startRegion(o: RegionOptions): Promise<RunningRegion> {
  const broker = new BrokerServer(
    brokerOptions({ serverName: o.name, ...o.broker }),
    o.logger.child({ region: o.name }),
  );
  const addr = await broker.listen();
  const gateway = new Gateway(new EmbeddedRegionPort(broker), {
    region: o.name,
    token: o.gateway.token,
    listen: o.gateway.listen,
    peers: o.gateway.peers,
    logger: o.logger,
    heartbeatMs: o.gateway.heartbeatMs,
    advertiseMs: o.gateway.advertiseMs,
    filters: o.gateway.filters,
    outboxLimits: o.gateway.outboxLimits,
    handshakeTimeoutMs: o.gateway.handshakeTimeoutMs,
    dialBackoff: o.gateway.dialBackoff,
    flowControl: o.gateway.flowControl,
    acks: o.gateway.acks,
  });
  try {
    await gateway.start();
  } catch (err) {
    await broker.close();
    throw err;
  }
  const host = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address;
  const gw = gateway.address;
  return {
    name: o.name,
    broker,
    gateway,
    clientUrl: `nats://${host}:${addr.port}`,
    gatewayUrl: gw === undefined ? undefined : `ws://${gw.host}:${gw.port}/bridgehead/v1`,
    async close() {
      await gateway.close();
      await broker.close();
    },
  };
}
