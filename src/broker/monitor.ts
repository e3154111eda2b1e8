/**
 * The broker's HTTP monitoring port (`http` / `-m`): a nats-server-style subset of /varz, /connz, /subsz
 * and /healthz, with nats-server's field names where the meaning is the same, so existing dashboards and
 * scripts that poll a nats-server keep working against a Bridgehead node.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { COMPATIBLE_SERVER_VERSION } from "./protocol.js";
import type { BrokerServer } from "./server.js";

export class BrokerMonitor {
  private server: http.Server | undefined;

  constructor(private readonly broker: BrokerServer) {}

  async listen(host: string, port: number): Promise<AddressInfo> {
    const srv = http.createServer((req, res) => this.handle(req, res));
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

  async close(): Promise<void> {
    const srv = this.server;
    if (!srv) return;
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    let body: unknown;
    switch (url.pathname) {
      case "/varz":
        body = varz(this.broker);
        break;
      case "/connz":
        body = connz(this.broker);
        break;
      case "/subsz":
        body = subsz(this.broker);
        break;
      case "/healthz":
        body = { status: "ok" };
        break;
      case "/":
        body = { endpoints: ["/varz", "/connz", "/subsz", "/healthz"] };
        break;
      default:
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `no such endpoint: ${url.pathname}` }));
        return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body, null, 2));
  }
}

/** /varz: server identity, limits and totals (nats-server field names). */
export function varz(b: BrokerServer): Record<string, unknown> {
  const o = b.options;
  const mem = process.memoryUsage();
  return {
    server_id: b.serverId,
    server_name: b.serverName,
    version: COMPATIBLE_SERVER_VERSION,
    proto: 1,
    host: o.host,
    port: b.port,
    auth_required: b.auth.required || undefined,
    max_connections: 0,
    ping_interval: o.pingIntervalMs * 1e6,
    ping_max: o.pingMax,
    max_control_line: o.maxControlLine,
    max_payload: o.maxPayload,
    max_pending: o.maxPendingBytes,
    write_deadline: o.writeDeadlineMs * 1e6,
    start: b.startedAt.toISOString(),
    now: new Date().toISOString(),
    uptime: `${Math.floor((Date.now() - b.startedAt.getTime()) / 1000)}s`,
    mem: mem.rss,
    connections: b.clients.size,
    total_connections: b.stats.totalConnections,
    in_msgs: b.stats.inMsgs,
    out_msgs: b.stats.outMsgs,
    in_bytes: b.stats.inBytes,
    out_bytes: b.stats.outBytes,
    slow_consumers: b.stats.slowConsumers,
    subscriptions: b.sublist.count,
  };
}

/** /connz: one entry per client connection. */
export function connz(b: BrokerServer): Record<string, unknown> {
  const conns = [...b.clients.values()].map((c) => ({
    cid: c.cid,
    ip: c.remoteAddress.replace(/^::ffff:/, ""),
    port: c.remotePort,
    start: new Date(c.startedAt).toISOString(),
    last_activity: new Date(c.lastActivity).toISOString(),
    pending_bytes: c.pendingBytes,
    in_msgs: c.inMsgs,
    out_msgs: c.outMsgs,
    in_bytes: c.inBytes,
    out_bytes: c.outBytes,
    subscriptions: c.subs.size,
    name: c.name || undefined,
    lang: c.lang || undefined,
    version: c.version || undefined,
    authorized_user: c.user,
  }));
  return {
    server_id: b.serverId,
    now: new Date().toISOString(),
    num_connections: conns.length,
    total: conns.length,
    offset: 0,
    limit: conns.length,
    connections: conns,
  };
}

/** /subsz: the subscription table's size and match cache. */
export function subsz(b: BrokerServer): Record<string, unknown> {
  const st = b.sublist.stats();
  return {
    server_id: b.serverId,
    now: new Date().toISOString(),
    num_subscriptions: st.subscriptions,
    num_cache: st.cacheEntries,
    num_inserts: st.inserts,
    num_removes: st.removes,
    num_matches: st.matches,
    cache_hit_rate: st.matches > 0 ? st.cacheHits / st.matches : 0,
  };
}
