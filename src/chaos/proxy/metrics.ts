/**
 * toxiproxy-server's `-proxy-metrics` and `-runtime-metrics`: Prometheus text on `/metrics`. Proxy metrics are
 * the byte counters Toxiproxy keeps (added when a connection ends, as Toxiproxy adds them when a link's copy
 * loop ends); runtime metrics are this process's (Node's, where Toxiproxy exports Go's). A registry of its own,
 * so an embedded proxy never mixes its series into Bridgehead's /metrics.
 */
import { Counter, collectDefaultMetrics, Registry } from "prom-client";
import type { ConnectionObserver } from "./proxy.js";

export interface MetricsOptions {
  readonly proxyMetrics?: boolean;
  readonly runtimeMetrics?: boolean;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  private readonly received: Counter | undefined;
  private readonly sent: Counter | undefined;

  constructor(options: MetricsOptions) {
    // Sorted, as Go's client writes label names.
    const labelNames = ["direction", "listener", "proxy", "upstream"] as const;
    if (options.proxyMetrics) {
      this.received = new Counter({
        name: "toxiproxy_proxy_received_bytes_total",
        help: "Total bytes received by the proxy from its sources",
        labelNames,
        registers: [this.registry],
      });
      this.sent = new Counter({
        name: "toxiproxy_proxy_sent_bytes_total",
        help: "Total bytes sent by the proxy to its destinations",
        labelNames,
        registers: [this.registry],
      });
    }
    if (options.runtimeMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** The observer to hand to the proxies, or undefined when proxy metrics are off. */
  get observer(): ConnectionObserver | undefined {
    const { received, sent } = this;
    if (!received || !sent) return undefined;
    return (proxy, stats) => {
      for (const direction of ["upstream", "downstream"] as const) {
        const labels = { direction, listener: proxy.listen, proxy: proxy.name, upstream: proxy.upstream };
        received.inc(labels, stats[direction].read);
        sent.inc(labels, stats[direction].written);
      }
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
