import type { Logger } from "pino";
import { type BrokerOptions, brokerOptions } from "./options.js";
import { BrokerServer } from "./server.js";

export type { AuthOptions, BrokerOptions, UserEntry, UserPermissions } from "./options.js";
export { brokerOptions, DEFAULT_BROKER_OPTIONS } from "./options.js";
export { BrokerServer, type BrokerStats, type InterestListener, type RemoteRouter } from "./server.js";

export interface RunningBroker {
  readonly server: BrokerServer;
  readonly host: string;
  readonly port: number;
  readonly url: string;
  /** Monitoring port when `httpPort` was given. */
  readonly httpPort: number | undefined;
  close(): Promise<void>;
}

/**
 * Start an embedded broker node. Options default to nats-server's (0.0.0.0:4222); pass
 * `{ host: "127.0.0.1", port: 0 }` for a private node on a free port.
 */
export async function startBroker(
  options: Partial<BrokerOptions> = {},
  logger?: Logger,
): Promise<RunningBroker> {
  const server = new BrokerServer(brokerOptions(options), logger);
  const addr = await server.listen();
  const host = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address;
  return {
    server,
    host,
    port: addr.port,
    url: `nats://${host}:${addr.port}`,
    httpPort: server.httpPort,
    close: () => server.close(),
  };
}
