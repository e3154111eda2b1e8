/**
 * The proxies by name (Go's ProxyCollection): create, delete, populate (create-or-replace many) and reset.
 */
import type { Logger } from "pino";
import {
  type ApiError,
  asApiError,
  Mutex,
  ProxyAlreadyStarted,
  proxyAlreadyExists,
  proxyNotFound,
} from "./errors.js";
import { type ConnectionObserver, FaultProxy } from "./proxy.js";

/** One entry of `POST /populate` (or of a `--config` file), already validated. */
export interface ProxySpec {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
}

export class ProxyRegistry {
  private readonly proxies = new Map<string, FaultProxy>();
  private readonly lock = new Mutex();

  constructor(
    private readonly log: Logger,
    private readonly onConnectionEnd?: ConnectionObserver,
  ) {}

  get(name: string): FaultProxy | undefined {
    return this.proxies.get(name);
  }

  /** Every proxy, sorted by name (Go marshals maps with sorted keys). */
  all(): FaultProxy[] {
    return [...this.proxies.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Create a proxy: 409 if the name is taken, the listen error (500) if it cannot start. */
  create(spec: ProxySpec): Promise<FaultProxy> {
    return this.lock.run(async () => {
      if (this.proxies.has(spec.name)) throw proxyAlreadyExists();
      const proxy = new FaultProxy(spec.name, spec.listen, spec.upstream, this.log, this.onConnectionEnd);
      if (spec.enabled) await proxy.start();
      this.proxies.set(spec.name, proxy);
      return proxy;
    });
  }

  /** Stop and forget a proxy. */
  remove(name: string): Promise<void> {
    return this.lock.run(async () => {
      const proxy = this.proxies.get(name);
      if (!proxy) throw proxyNotFound();
      await proxy.stop();
      this.proxies.delete(name);
    });
  }

  /**
   * Create or replace proxies in order. An existing proxy with the same (resolved) listen and upstream is left
   * as it is; otherwise it is stopped and replaced by a new one (its toxics are lost). Processing stops at the
   * first failure, which is returned with the proxies done so far.
   */
  populate(specs: readonly ProxySpec[]): Promise<{ proxies: FaultProxy[]; error: ApiError | undefined }> {
    return this.lock.run(async () => {
      const done: FaultProxy[] = [];
      for (const spec of specs) {
        try {
          const existing = this.proxies.get(spec.name);
          if (existing) {
            if (!(await existing.differs(spec.listen, spec.upstream))) {
              done.push(existing);
              continue;
            }
            await existing.stop();
          }
          const proxy = new FaultProxy(spec.name, spec.listen, spec.upstream, this.log, this.onConnectionEnd);
          if (spec.enabled) await proxy.start();
          this.proxies.set(spec.name, proxy);
          done.push(proxy);
        } catch (err) {
          return { proxies: done, error: asApiError(err) };
        }
      }
      return { proxies: done, error: undefined };
    });
  }

  /** Start every disabled proxy and remove every toxic. Stops at the first proxy that cannot start. */
  async reset(): Promise<void> {
    for (const proxy of this.all()) {
      try {
        await proxy.start();
      } catch (err) {
        if (!(err instanceof ProxyAlreadyStarted)) throw err;
      }
      await proxy.toxics.reset();
    }
  }

  /** Stop every proxy (shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.stop()));
  }
}
