/**
 * The Toxiproxy chaos mode talks to: an external one (a URL) or the embedded fault proxy started here. Either
 * way everything else goes through the HTTP API with toxiproxy-node-client, so the two are interchangeable.
 */
import type { Logger } from "pino";
import { Toxiproxy } from "toxiproxy-node-client";
import { startToxiproxyServer } from "../proxy/index.js";
import { ChaosError, reason } from "./errors.js";

export interface ToxiproxyEndpoint {
  /** Base URL of the API, without a trailing slash. */
  readonly url: string;
  /** True when this process runs the proxy (and `close()` stops it). */
  readonly embedded: boolean;
  readonly client: Toxiproxy;
  close(): Promise<void>;
}

/** Which Toxiproxy to use: `TOXIPROXY_URL` wins over the config's `chaos.toxiproxy_url`; none = embedded. */
export function externalToxiproxyUrl(
  configured: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const fromEnv = env["TOXIPROXY_URL"];
  const url = fromEnv !== undefined && fromEnv !== "" ? fromEnv : configured;
  return url?.replace(/\/+$/, "");
}

/**
 * Connect to the external Toxiproxy at `url` (checked with GET /version, so a wrong URL fails here rather
 * than at the first link), or start the embedded one on 127.0.0.1 with a free port.
 */
export async function openToxiproxy(url: string | undefined, logger: Logger): Promise<ToxiproxyEndpoint> {
  if (url !== undefined) {
    const client = new Toxiproxy(url);
    try {
      await client.getVersion();
    } catch (err) {
      throw new ChaosError(`cannot reach the Toxiproxy at ${url}: ${reason(err)}`);
    }
    return { url, embedded: false, client, close: async () => {} };
  }
  const server = await startToxiproxyServer({
    host: "127.0.0.1",
    port: 0,
    logger: logger.child({ component: "toxiproxy" }),
  });
  return { url: server.url, embedded: true, client: new Toxiproxy(server.url), close: () => server.close() };
}
