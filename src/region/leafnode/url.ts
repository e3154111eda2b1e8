/**
 * Leafnode URLs as the config gives them: `nats-leaf://[user:pass@]host:port` or `nats://...`. Pure, so
 * `bridgehead check` validates with the same rules the adapter dials with.
 */
import { BridgeheadError } from "../../util/errors.js";

export class LeafConfigError extends BridgeheadError {
  override readonly name = "LeafConfigError";
}

export interface LeafEndpoint {
  readonly host: string;
  readonly port: number;
  /** As configured (credentials removed), for logs. */
  readonly url: string;
  readonly user: string | undefined;
  readonly password: string | undefined;
}

/**
 * `nats-leaf://[user:pass@]host:port` or `nats://...`; TLS is not implemented, so `tls://` is refused
 * rather than silently dialed in clear.
 */
export function parseLeafUrl(url: string): LeafEndpoint {
  // Messages quote the URL: never with its password.
  const raw = url.replace(/\/\/([^/@:]*):[^/@]*@/, "//$1:***@");
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // URL() refuses ports over 65535 outright: say so rather than "not a URL".
    if (Number(/:(\d+)\/?$/.exec(url)?.[1]) > 65535) {
      throw new LeafConfigError(`'${raw}': expected host:port with a port 1-65535`);
    }
    throw new LeafConfigError(`'${raw}' is not a URL (expected nats-leaf://host:port)`);
  }
  if (u.protocol === "tls:")
    throw new LeafConfigError(`'${raw}': TLS leafnode connections are not supported`);
  if (u.protocol !== "nats-leaf:" && u.protocol !== "nats:") {
    throw new LeafConfigError(`'${raw}': expected nats-leaf:// or nats://`);
  }
  const port = Number(u.port);
  if (u.hostname === "" || u.port === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LeafConfigError(`'${raw}': expected host:port with a port 1-65535`);
  }
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return {
    host,
    port,
    url: `${u.protocol}//${u.host}`,
    user: u.username === "" ? undefined : decodeURIComponent(u.username),
    password: u.password === "" ? undefined : decodeURIComponent(u.password),
  };
}
