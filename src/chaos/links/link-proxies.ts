/**
 * One Toxiproxy proxy per link this process dials: created when the link is dialed, deleted when the link is
 * removed or the process stops. The dialer then connects to the proxy instead of the listener.
 */
import type { Logger } from "pino";
import type { Proxy as ToxiproxyProxy } from "toxiproxy-node-client";
import type { ToxiproxyEndpoint } from "./endpoint.js";
import { ChaosError, reason } from "./errors.js";
import { proxyName } from "./names.js";

export interface LinkProxy {
  /** `<dialer>-><listener>` */
  readonly name: string;
  readonly dialer: string;
  readonly listener: string;
  /** Where the proxy listens, as the Toxiproxy reports it (the bound port, not 0). */
  readonly listen: string;
  /** host:port of the listener's gateway. */
  readonly upstream: string;
  /** The URL the dialer uses: the listener's URL with the proxy's address. */
  readonly dialUrl: string;
}

const WILDCARD_HOSTS = new Set(["", "[::]", "::", "0.0.0.0"]);

/** host:port of a ws:// or wss:// URL, with the scheme's default port when the URL has none. */
function hostPortOf(url: URL): string {
  const port = url.port !== "" ? url.port : url.protocol === "wss:" ? "443" : "80";
  return `${url.hostname}:${port}`;
}

function isAlreadyExists(err: unknown): boolean {
  // toxiproxy-node-client reports only the status code.
  return /status code 409\b/.test(reason(err));
}

export class LinkProxies {
  private readonly mine = new Map<string, LinkProxy>();

  constructor(
    private readonly endpoint: ToxiproxyEndpoint,
    /** Host the proxies listen on; each gets a free port. */
    private readonly listenHost: string,
    private readonly log: Logger,
  ) {}

  /**
   * Create (or replace) the proxy of the link `dialer` -> `listener` in front of `targetUrl` and return the URL
   * to dial instead. A proxy of that name left over from an earlier run is replaced, so no stale toxic applies.
   */
  async route(dialer: string, listener: string, targetUrl: string): Promise<string> {
    const name = proxyName(dialer, listener);
    const target = new URL(targetUrl);
    const body = { name, listen: `${this.listenHost}:0`, upstream: hostPortOf(target), enabled: true };
    let proxy: ToxiproxyProxy;
    try {
      try {
        proxy = await this.endpoint.client.createProxy(body);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        await (await this.endpoint.client.get(name)).remove();
        proxy = await this.endpoint.client.createProxy(body);
      }
    } catch (err) {
      throw new ChaosError(`cannot create the proxy ${name} at ${this.endpoint.url}: ${reason(err)}`);
    }
    const i = proxy.listen.lastIndexOf(":");
    const host = proxy.listen.slice(0, i);
    const dial = new URL(target.href);
    // A wildcard listen (Toxiproxy in a container) is reached through the API's host.
    dial.hostname = WILDCARD_HOSTS.has(host) ? new URL(this.endpoint.url).hostname : host;
    dial.port = proxy.listen.slice(i + 1);
    const entry: LinkProxy = {
      name,
      dialer,
      listener,
      listen: proxy.listen,
      upstream: body.upstream,
      dialUrl: dial.href,
    };
    this.mine.set(name, entry);
    this.log.info({ proxy: name, listen: entry.listen, upstream: entry.upstream }, "link proxy created");
    return entry.dialUrl;
  }

  /** Delete the proxy of a link that was removed. */
  async unroute(dialer: string, listener: string): Promise<void> {
    const name = proxyName(dialer, listener);
    if (!this.mine.delete(name)) return;
    await this.remove(name);
  }

  /** The proxies this process created, by name. */
  list(): LinkProxy[] {
    return [...this.mine.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Delete every proxy this process created (the links using them are closed by then). */
  async close(): Promise<void> {
    const names = [...this.mine.keys()];
    this.mine.clear();
    await Promise.all(names.map((n) => this.remove(n)));
  }

  private async remove(name: string): Promise<void> {
    try {
      await (await this.endpoint.client.get(name)).remove();
    } catch (err) {
      // Already gone (someone reset the Toxiproxy, or it stopped): nothing left to clean up.
      this.log.debug({ proxy: name, err: reason(err) }, "link proxy not removed");
    }
  }
}
