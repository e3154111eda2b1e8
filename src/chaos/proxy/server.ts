/**
 * The fault proxy's API server: an HTTP listener serving the Toxiproxy API over a registry of proxies. Used by
 * `bridgehead toxiproxy` and in-process by chaos mode; `close()` stops the API and every proxy it made.
 */
import { createServer } from "node:http";
import { type Logger, pino } from "pino";
import { GoNetError } from "./addr.js";
import { apiRouter } from "./api.js";
import { type Bound, listenLikeGo } from "./listen.js";
import { ProxyMetrics } from "./metrics.js";
import { ProxyRegistry } from "./registry.js";
import { send, textError } from "./replies.js";

export interface ToxiproxyServerOptions {
  /** Address to listen on, like toxiproxy-server's `-host` (default `localhost`, which binds 127.0.0.1). */
  readonly host?: string;
  /** Port, like `-port` (default 8474); 0 picks a free port, reported in {@link ToxiproxyServer.port}. */
  readonly port?: number;
  /** Where API and proxy events are logged (default: nowhere). */
  readonly logger?: Logger;
  /** Serve Toxiproxy's byte counters on `/metrics` (toxiproxy-server's `-proxy-metrics`). */
  readonly proxyMetrics?: boolean;
  /** Serve this process's runtime metrics on `/metrics` (`-runtime-metrics`). */
  readonly runtimeMetrics?: boolean;
}

export interface ToxiproxyServer {
  /** Base URL for clients, e.g. `http://127.0.0.1:8474` (a wildcard listen is reached through 127.0.0.1). */
  readonly url: string;
  /** The bound address the way Toxiproxy prints it, e.g. `127.0.0.1:8474` or `[::]:8474`. */
  readonly address: string;
  readonly port: number;
  /** The proxies, for in-process callers that want more than the HTTP API. */
  readonly registry: ProxyRegistry;
  /** Stop the API (open keep-alive connections included) and every proxy with its connections. */
  close(): Promise<void>;
}

/** The API could not listen; the message is worded like Go's (`listen tcp 127.0.0.1:8474: bind: …`). */
export class ToxiproxyListenError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ToxiproxyListenError";
  }
}

export const DEFAULT_TOXIPROXY_HOST = "localhost";
export const DEFAULT_TOXIPROXY_PORT = 8474;

export async function startToxiproxyServer(options: ToxiproxyServerOptions = {}): Promise<ToxiproxyServer> {
  const log = options.logger ?? pino({ level: "silent" });
  const host = options.host ?? DEFAULT_TOXIPROXY_HOST;
  const port = options.port ?? DEFAULT_TOXIPROXY_PORT;
  const hostport = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
  const metrics =
    options.proxyMetrics || options.runtimeMetrics
      ? new ProxyMetrics({ proxyMetrics: options.proxyMetrics, runtimeMetrics: options.runtimeMetrics })
      : undefined;
  const registry = new ProxyRegistry(log, metrics?.observer);
  const router = apiRouter(registry, log, metrics);
  const server = createServer((req, res) => {
    router.handle(req, res).catch((err: unknown) => {
      log.warn({ err }, "API request failed");
      send(res, textError(500, "Internal Server Error"));
    });
  });
  // Go's server: 60 s idle keep-alive, 15 s to read a request.
  server.keepAliveTimeout = 60_000;
  server.requestTimeout = 15_000;
  let bound: Bound;
  try {
    bound = await listenLikeGo(server, hostport);
  } catch (err) {
    if (err instanceof GoNetError) throw new ToxiproxyListenError(err.message, { cause: err });
    throw err;
  }
  const { address } = bound;
  // A wildcard listen is reached through loopback; a specific address as itself.
  const urlHost = bound.wildcard ? "127.0.0.1" : bound.ip.includes(":") ? `[${bound.ip}]` : bound.ip;
  const url = `http://${urlHost}:${bound.port}`;
  log.info({ address, url }, "Starting Toxiproxy HTTP server");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await registry.closeAll();
      await stopped;
      log.info({ address }, "Toxiproxy HTTP server stopped");
    })();
    return closing;
  };
  return { url, address, port: bound.port, registry, close };
}
