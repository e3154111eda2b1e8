/**
 * Chaos mode for a running system: a Toxiproxy (embedded or external) and one proxy per dialed link, so a
 * toxic acts on one link and one direction. See docs/chaos.md, "Per-link faults".
 */
import type { Logger } from "pino";
import type { ChaosConfig } from "../../config/schema.js";
import { externalToxiproxyUrl, openToxiproxy, type ToxiproxyEndpoint } from "./endpoint.js";
import { LinkProxies, type LinkProxy } from "./link-proxies.js";

export { externalToxiproxyUrl, openToxiproxy, type ToxiproxyEndpoint } from "./endpoint.js";
export { ChaosError } from "./errors.js";
export type { LinkProxy } from "./link-proxies.js";
export { proxyName, streamFrom, type ToxicStream } from "./names.js";

export interface ChaosLinks {
  /** The Toxiproxy API's base URL. */
  readonly toxiproxyUrl: string;
  /** True when the Toxiproxy runs in this process. */
  readonly embedded: boolean;
  /** Create the proxy of the link `dialer` -> `listener` and return the URL to dial instead of `targetUrl`. */
  route(dialer: string, listener: string, targetUrl: string): Promise<string>;
  /** Delete the proxy of a removed link. */
  unroute(dialer: string, listener: string): Promise<void>;
  /** The proxies of the links dialed by this process. */
  proxies(): LinkProxy[];
  /** Delete the proxies, then stop the embedded Toxiproxy (if any). */
  close(): Promise<void>;
}

export async function startChaosLinks(
  cfg: ChaosConfig,
  logger: Logger,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ChaosLinks> {
  const endpoint: ToxiproxyEndpoint = await openToxiproxy(
    externalToxiproxyUrl(cfg.toxiproxy_url, env),
    logger,
  );
  const log = logger.child({ component: "chaos" });
  const proxies = new LinkProxies(endpoint, cfg.listen, log);
  log.info(
    { toxiproxy: endpoint.url, embedded: endpoint.embedded },
    "chaos mode: links dial through proxies",
  );
  return {
    toxiproxyUrl: endpoint.url,
    embedded: endpoint.embedded,
    route: (dialer, listener, targetUrl) => proxies.route(dialer, listener, targetUrl),
    unroute: (dialer, listener) => proxies.unroute(dialer, listener),
    proxies: () => proxies.list(),
    async close() {
      await proxies.close();
      await endpoint.close();
    },
  };
}
