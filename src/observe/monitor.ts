/**
 * The region monitor: one HTTP port per region (`monitor.listen`) serving the dashboard (/), the broker's
 * nats-server-style endpoints (/varz, /connz, /subsz), the gateway's (/linkz, /interestz, /explainz,
 * /topologyz), readiness (/healthz) and Prometheus metrics (/metrics). Endpoints and fields:
 * docs/operations.md. GET (and HEAD) only.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { connz, subsz, varz } from "../broker/monitor.js";
import type { RegionContext } from "./context.js";
import { DASHBOARD_CSP, dashboardHtml } from "./dashboard.js";
import { ExplainError, explain } from "./explain.js";
import { health } from "./health.js";
import { topologyView } from "./topology-view.js";
import { gatewayVarz, interestz, linkz } from "./views.js";

/** What /varz, /connz and /subsz say for a region whose broker is a nats-server cluster. */
const NATS_CLUSTER =
  "this region's broker is a nats-server cluster attached as a leaf node: see the cluster's own monitoring";

export const ENDPOINTS = [
  "/",
  "/healthz",
  "/varz",
  "/connz",
  "/subsz",
  "/linkz",
  "/interestz",
  "/explainz",
  "/topologyz",
  "/metrics",
] as const;

/**
 * `/` is the dashboard for browsers; a client that asks for JSON and not HTML (scripts, `curl -H 'accept:
 * application/json'`) gets the endpoint index instead.
 */
function wantsJsonIndex(req: http.IncomingMessage): boolean {
  const accept = req.headers.accept ?? "";
  return accept.includes("application/json") && !accept.includes("text/html");
}

interface Reply {
  readonly status: number;
  readonly body: unknown;
}

export class RegionMonitor {
  private server: http.Server | undefined;

  constructor(
    private readonly ctx: RegionContext,
    private readonly registry: Registry,
  ) {}

  async listen(host: string, port: number): Promise<AddressInfo> {
    const srv = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
      });
    });
    this.server = srv;
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(Math.max(port, 0), host, () => {
        srv.off("error", reject);
        resolve();
      });
    });
    return srv.address() as AddressInfo;
  }

  get address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  async close(): Promise<void> {
    const srv = this.server;
    if (!srv) return;
    this.server = undefined;
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { "content-type": "application/json", allow: "GET, HEAD" });
      res.end(JSON.stringify({ error: `method ${req.method} not allowed` }));
      return;
    }
    if (url.pathname === "/" && !wantsJsonIndex(req)) {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": DASHBOARD_CSP,
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : dashboardHtml(this.ctx.region.name));
      return;
    }
    if (url.pathname === "/metrics" && this.ctx.metricsEnabled()) {
      const text = await this.registry.metrics();
      res.writeHead(200, { "content-type": this.registry.contentType });
      res.end(req.method === "HEAD" ? undefined : text);
      return;
    }
    const r = this.route(url);
    res.writeHead(r.status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : JSON.stringify(r.body, null, 2));
  }

  private route(url: URL): Reply {
    const ctx = this.ctx;
    const q = url.searchParams;
    const ok = (body: unknown): Reply => ({ status: 200, body });
    const broker = ctx.region.broker;
    switch (url.pathname) {
      case "/":
        return ok({ region: ctx.region.name, endpoints: ENDPOINTS });
      case "/healthz": {
        const h = health(ctx);
        return h.ok
          ? ok({ status: "ok" })
          : { status: 503, body: { status: "unavailable", reasons: h.reasons } };
      }
      case "/varz":
        return ok({
          ...(broker === undefined ? { server_name: ctx.region.name, broker: NATS_CLUSTER } : varz(broker)),
          gateway: gatewayVarz(ctx),
        });
      case "/connz":
      case "/subsz":
        if (broker === undefined)
          return { status: 501, body: { error: `${url.pathname}: ${NATS_CLUSTER}`, endpoints: ENDPOINTS } };
        return ok(url.pathname === "/connz" ? connz(broker) : subsz(broker));
      case "/linkz":
        return ok(linkz(ctx));
      case "/topologyz":
        return ok(topologyView(ctx));
      case "/interestz": {
        const limit = q.get("limit");
        const n = limit === null ? undefined : Number(limit);
        if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0))
          return { status: 400, body: { error: "limit must be a non-negative integer" } };
        return ok(interestz(ctx, { origin: q.get("origin") ?? undefined, limit: n }));
      }
      case "/explainz": {
        const subject = q.get("subject");
        if (subject === null || subject === "")
          return { status: 400, body: { error: "usage: /explainz?subject=<subject>[&from=<region>]" } };
        try {
          return ok(explain(ctx, subject, q.get("from") ?? undefined));
        } catch (err) {
          if (err instanceof ExplainError) return { status: 400, body: { error: err.message } };
          throw err;
        }
      }
      case "/metrics":
        return { status: 404, body: { error: "metrics are disabled (metrics.enabled: false)" } };
      default:
        return { status: 404, body: { error: `no such endpoint: ${url.pathname}`, endpoints: ENDPOINTS } };
    }
  }
}
