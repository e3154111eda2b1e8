/**
 * The Toxiproxy HTTP API, one handler per endpoint, with Toxiproxy 2.12's status codes, bodies and checks in
 * the same order (see the reference in ../shared/reference/toxiproxy-api.md and docs/chaos.md).
 */
import type { Logger } from "pino";
import {
  decodePopulate,
  decodeProxyCreate,
  decodeProxyUpdate,
  decodeToxicCreate,
  parseToxicUpdate,
} from "./bodies.js";
import { ApiError, asApiError, proxyNotFound, toxicNotFound } from "./errors.js";
import { goString } from "./gojson.js";
import type { ProxyMetrics } from "./metrics.js";
import { type FaultProxy, toxicJson } from "./proxy.js";
import type { ProxyRegistry } from "./registry.js";
import { apiErrorReply, emptyReply, jsonReply, type Reply } from "./replies.js";
import { type Handler, type Params, Router } from "./router.js";

/** The Toxiproxy version this API answers as; clients and scripts compare against it. */
export const TOXIPROXY_VERSION = "2.12.0";

function param(params: Params, key: string): string {
  return params[key] ?? "";
}

function getProxy(registry: ProxyRegistry, params: Params): FaultProxy {
  const proxy = registry.get(param(params, "proxy"));
  if (!proxy) throw proxyNotFound();
  return proxy;
}

/** Turns thrown errors into Toxiproxy's error replies: ours keep their status, anything else is a 500. */
function guarded(log: Logger, name: string, handler: Handler): Handler {
  return async (req) => {
    try {
      return await handler(req);
    } catch (err) {
      if (!(err instanceof ApiError)) log.warn({ err, handler: name }, "error did not include status code");
      return apiErrorReply(asApiError(err));
    }
  };
}

function proxyIndex(registry: ProxyRegistry): Handler {
  return async () => {
    const entries = registry.all().map((p) => `${goString(p.name)}:${p.toJson()}`);
    return jsonReply(200, `{${entries.join(",")}}`);
  };
}

function proxyCreate(registry: ProxyRegistry): Handler {
  return async (req) => {
    const spec = decodeProxyCreate(req.body);
    const proxy = await registry.create(spec);
    return jsonReply(201, proxy.toJson());
  };
}

function populate(registry: ProxyRegistry, log: Logger): Handler {
  return async (req) => {
    let result: { proxies: FaultProxy[]; error: ApiError | undefined };
    try {
      result = await registry.populate(decodePopulate(req.body));
    } catch (err) {
      result = { proxies: [], error: asApiError(err) };
    }
    // Go marshals an empty slice built by append as null: `{"proxies":null}`, even on success.
    const list = result.proxies.length > 0 ? `[${result.proxies.map((p) => p.toJson()).join(",")}]` : "null";
    const { error } = result;
    if (error === undefined) return jsonReply(201, `{"proxies":${list}}`);
    log.warn({ err: error.message }, "populate errors");
    return jsonReply(
      error.status,
      `{"error":${goString(error.message)},"status":${error.status},"proxies":${list}}`,
    );
  };
}

function proxyShow(registry: ProxyRegistry): Handler {
  return async (req) => jsonReply(200, getProxy(registry, req.params).toJson());
}

function proxyUpdate(registry: ProxyRegistry, log: Logger): Handler {
  return async (req) => {
    if (req.method === "POST")
      log.warn("ProxyUpdate: HTTP method POST is deprecated. Use HTTP PATCH instead.");
    const proxy = getProxy(registry, req.params);
    await proxy.update(decodeProxyUpdate(req.body, proxy));
    return jsonReply(200, proxy.toJson());
  };
}

function proxyDelete(registry: ProxyRegistry): Handler {
  return async (req) => {
    await registry.remove(param(req.params, "proxy"));
    return emptyReply(204);
  };
}

function toxicIndex(registry: ProxyRegistry): Handler {
  return async (req) => {
    const proxy = getProxy(registry, req.params);
    return jsonReply(200, `[${proxy.toxics.list().map(toxicJson).join(",")}]`);
  };
}

function toxicCreate(registry: ProxyRegistry): Handler {
  return async (req) => {
    const proxy = getProxy(registry, req.params);
    const toxic = await proxy.toxics.add(decodeToxicCreate(req.body));
    return jsonReply(200, toxicJson(toxic));
  };
}

function toxicShow(registry: ProxyRegistry): Handler {
  return async (req) => {
    const proxy = getProxy(registry, req.params);
    const toxic = proxy.toxics.find(param(req.params, "toxic"));
    if (!toxic) throw toxicNotFound();
    return jsonReply(200, toxicJson(toxic));
  };
}

function toxicUpdate(registry: ProxyRegistry, log: Logger): Handler {
  return async (req) => {
    if (req.method === "POST")
      log.warn("ToxicUpdate: HTTP method POST is deprecated. Use HTTP PATCH instead.");
    const proxy = getProxy(registry, req.params);
    const name = param(req.params, "toxic");
    // The toxic is looked up before the body is read: an unknown toxic is a 404 whatever the body.
    if (!proxy.toxics.find(name)) throw toxicNotFound();
    const toxic = await proxy.toxics.update(name, parseToxicUpdate(req.body));
    return jsonReply(200, toxicJson(toxic));
  };
}

function toxicDelete(registry: ProxyRegistry): Handler {
  return async (req) => {
    const proxy = getProxy(registry, req.params);
    await proxy.toxics.remove(param(req.params, "toxic"));
    return emptyReply(204);
  };
}

function resetState(registry: ProxyRegistry): Handler {
  return async () => {
    await registry.reset();
    return emptyReply(204);
  };
}

function version(): Handler {
  return async (): Promise<Reply> => ({
    status: 200,
    headers: { "Content-Type": "application/json;charset=utf-8" },
    body: `{"version": "${TOXIPROXY_VERSION}"}\n`,
  });
}

function metricsHandler(metrics: ProxyMetrics): Handler {
  return async () => ({
    status: 200,
    headers: { "Content-Type": metrics.contentType },
    body: await metrics.text(),
  });
}

/** The API's routes over a registry, in Toxiproxy's order; `/metrics` only when metrics are on. */
export function apiRouter(registry: ProxyRegistry, log: Logger, metrics?: ProxyMetrics): Router {
  const router = new Router(log);
  const route = (method: string, path: string, name: string, handler: Handler) =>
    router.add(method, path, name, guarded(log, name, handler));
  route("POST", "/reset", "ResetState", resetState(registry));
  route("GET", "/proxies", "ProxyIndex", proxyIndex(registry));
  route("POST", "/proxies", "ProxyCreate", proxyCreate(registry));
  route("POST", "/populate", "Populate", populate(registry, log));
  route("GET", "/proxies/{proxy}", "ProxyShow", proxyShow(registry));
  route("POST", "/proxies/{proxy}", "ProxyUpdate", proxyUpdate(registry, log));
  route("PATCH", "/proxies/{proxy}", "ProxyUpdate", proxyUpdate(registry, log));
  route("DELETE", "/proxies/{proxy}", "ProxyDelete", proxyDelete(registry));
  route("GET", "/proxies/{proxy}/toxics", "ToxicIndex", toxicIndex(registry));
  route("POST", "/proxies/{proxy}/toxics", "ToxicCreate", toxicCreate(registry));
  route("GET", "/proxies/{proxy}/toxics/{toxic}", "ToxicShow", toxicShow(registry));
  route("POST", "/proxies/{proxy}/toxics/{toxic}", "ToxicUpdate", toxicUpdate(registry, log));
  route("PATCH", "/proxies/{proxy}/toxics/{toxic}", "ToxicUpdate", toxicUpdate(registry, log));
  route("DELETE", "/proxies/{proxy}/toxics/{toxic}", "ToxicDelete", toxicDelete(registry));
  route("GET", "/version", "Version", version());
  if (metrics) route("*", "/metrics", "Metrics", metricsHandler(metrics));
  return router;
}
