/**
 * Options of one broker node. Field names follow nats-server's config keys where the meaning is the same,
 * so the `-c file.conf` loader and the CLI flags map onto this type one to one.
 */

/** Subjects a user may publish or subscribe to. Empty/absent allow = everything allowed. */
export interface SubjectPermission {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

/** nats-server's `allow_responses`: a user may publish to reply subjects of requests it received. */
export interface ResponsePermission {
  /** How many replies per received request (nats-server default 1). */
  readonly maxMsgs: number;
  /** How long the permission lasts, in ms (nats-server default 0 = no expiry). */
  readonly expiresMs: number;
}

export interface UserPermissions {
  readonly publish?: SubjectPermission;
  readonly subscribe?: SubjectPermission;
  readonly allowResponses?: ResponsePermission;
}

export interface UserEntry {
  readonly user: string;
  readonly password: string;
  readonly permissions?: UserPermissions;
}

export interface AuthOptions {
  /** A single shared token (`authorization { token }` / `--auth`). */
  readonly token?: string;
  /** user/password pairs (`authorization { user, password }` or `users [...]`). */
  readonly users?: readonly UserEntry[];
  /** Permissions applied to token-authenticated clients. */
  readonly tokenPermissions?: UserPermissions;
  /** Seconds a client has to send CONNECT when auth is required (nats-server default 2; `timeout`). */
  readonly timeoutSec?: number;
}

export interface BrokerOptions {
  /** Host to listen on. Default 0.0.0.0 as nats-server; tests pass 127.0.0.1. */
  readonly host: string;
  /** Port; 0 or -1 picks a free one. Default 4222. */
  readonly port: number;
  /** Monitoring HTTP port (`http`, `-m`), or undefined for none. 0/-1 picks a free one. */
  readonly httpHost?: string;
  readonly httpPort?: number;
  readonly serverName: string;
  readonly auth?: AuthOptions;
  /** Bytes; default 1 MiB. */
  readonly maxPayload: number;
  /** Bytes; default 4096. */
  readonly maxControlLine: number;
  /** Server PING interval, ms; default 2 minutes. */
  readonly pingIntervalMs: number;
  /** Outstanding PINGs before `Stale Connection`; default 2. */
  readonly pingMax: number;
  /** Slow consumer threshold: bytes queued to one client before it is disconnected. Default 64 MiB. */
  readonly maxPendingBytes: number;
  /** A write that cannot drain for this long marks the client a slow consumer. Default 10 s. */
  readonly writeDeadlineMs: number;
  /** Maximum subscriptions per connection, 0 = unlimited. */
  readonly maxSubscriptions: number;
  /** Directory for `nats-server_<pid>.ports`, written once listening. */
  readonly portsFileDir?: string;
}

export const DEFAULT_BROKER_OPTIONS: BrokerOptions = {
  host: "0.0.0.0",
  port: 4222,
  serverName: "",
  maxPayload: 1024 * 1024,
  maxControlLine: 4096,
  pingIntervalMs: 2 * 60 * 1000,
  pingMax: 2,
  maxPendingBytes: 64 * 1024 * 1024,
  writeDeadlineMs: 10_000,
  maxSubscriptions: 0,
};

export function brokerOptions(partial: Partial<BrokerOptions> = {}): BrokerOptions {
  return { ...DEFAULT_BROKER_OPTIONS, ...partial };
}
