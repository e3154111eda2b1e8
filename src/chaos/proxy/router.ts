/**
 * A hand-written router with gorilla/mux's observable behaviour, which Toxiproxy's API runs on:
 *
 * - the path is percent-decoded before matching, so a `%2F` in a proxy name is a `/` (and no route matches);
 * - an unclean path (`//proxies`, `/proxies/./x`) is answered 301 to the cleaned one, a trailing slash is kept
 *   (so `/proxies/` is a 404, not a redirect);
 * - no route: `404 page not found`; a route with another method: 405 with an empty body;
 * - only a matched route gets the middleware: request id header, browser blocking, handler timeout.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { emptyReply, type Reply, send, textError } from "./replies.js";
import { newRequestId } from "./xid.js";

export type Params = Readonly<Record<string, string>>;

export interface Request {
  readonly method: string;
  readonly params: Params;
  readonly body: Uint8Array;
}

export type Handler = (req: Request) => Promise<Reply>;

interface Route {
  readonly segments: readonly string[];
  readonly methods: Map<string, { readonly name: string; readonly handler: Handler }>;
}

/** Go reads bodies without a cap; a bound here keeps a runaway client from exhausting memory. */
const MAX_BODY = 8 * 1024 * 1024;
/** Toxiproxy wraps every handler in `http.TimeoutHandler(…, 25 s, "")`. */
const HANDLER_TIMEOUT_MS = 25_000;

class BodyTooLarge extends Error {}
class BadRequestUri extends Error {}

/** Percent-decode a path like Go's url.PathUnescape: any byte value is fine, a malformed escape is not. */
function unescapePath(raw: string): string {
  if (!raw.includes("%")) return raw;
  const bytes: number[] = [];
  const src = Buffer.from(raw, "utf8");
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hex = src.subarray(i + 1, i + 3).toString("latin1");
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new BadRequestUri();
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  return Buffer.from(bytes).toString("utf8");
}

/** mux's cleanPath: Go's path.Clean, with a trailing slash put back. */
export function cleanPath(p: string): string {
  if (p === "") return "/";
  const rooted = p.startsWith("/") ? p : `/${p}`;
  const out: string[] = [];
  for (const seg of rooted.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  let clean = `/${out.join("/")}`;
  if (rooted.endsWith("/") && clean !== "/") clean += "/";
  return clean;
}

function readBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      parts.push(d);
    });
    req.once("end", () => resolve(Buffer.concat(parts)));
    req.once("error", reject);
  });
}

export class Router {
  private readonly routes: Route[] = [];

  constructor(private readonly log: Logger) {}

  /** Register `handler` for `method` (`*`: any) on a path pattern like `/proxies/{proxy}`. */
  add(method: string, pattern: string, name: string, handler: Handler): this {
    const segments = pattern.split("/").slice(1);
    let route = this.routes.find((r) => r.segments.join("/") === segments.join("/"));
    if (!route) {
      route = { segments, methods: new Map() };
      this.routes.push(route);
    }
    route.methods.set(method, { name, handler });
    return this;
  }

  private match(path: string): { route: Route; params: Params } | undefined {
    const parts = path.split("/").slice(1);
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = route.segments.every((seg, i) => {
        const part = parts[i]!;
        if (seg.startsWith("{") && seg.endsWith("}")) {
          params[seg.slice(1, -1)] = part;
          return part !== "";
        }
        return seg === part;
      });
      if (ok) return { route, params };
    }
    return undefined;
  }

  /** The node:http request listener. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // An absolute-form request target (`GET http://host/proxies`) is matched on its path, as Go does.
    const rawUrl = (req.url ?? "/").replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i, "") || "/";
    const q = rawUrl.indexOf("?");
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    let path: string;
    try {
      path = unescapePath(rawPath);
    } catch {
      // What Go's server answers for a request line it cannot parse, before any handler runs.
      res.shouldKeepAlive = false;
      send(res, {
        status: 400,
        headers: { "Content-Type": "text/plain; charset=utf-8" },
        body: "400 Bad Request",
      });
      return;
    }
    const clean = cleanPath(path);
    if (clean !== path) {
      const location = clean + (q >= 0 ? rawUrl.slice(q) : "");
      send(res, emptyReply(301, { Location: location }));
      return;
    }
    const found = this.match(path);
    if (!found) {
      send(res, textError(404, "404 page not found"));
      return;
    }
    const method = found.route.methods.get(req.method ?? "") ?? found.route.methods.get("*");
    if (!method) {
      send(res, emptyReply(405));
      return;
    }
    await this.serveMatched(req, res, method.name, method.handler, found.params);
  }

  private async serveMatched(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    handler: Handler,
    params: Params,
  ): Promise<void> {
    const started = performance.now();
    const requestId = newRequestId();
    const common = { "X-Toxiproxy-Request-Id": requestId };
    let reply: Reply;
    if ((req.headers["user-agent"] ?? "").startsWith("Mozilla/")) {
      reply = textError(403, "User agent not allowed");
    } else {
      reply = await this.runWithTimeout(req, handler, params);
    }
    send(res, reply, common);
    this.log.debug(
      {
        request_id: requestId,
        client: `${req.socket.remoteAddress ?? ""}:${req.socket.remotePort ?? 0}`,
        method: req.method,
        url: req.url,
        user_agent: req.headers["user-agent"],
        status: reply.status,
        size: Buffer.byteLength(reply.body),
        duration: performance.now() - started,
        handler: name,
      },
      "API request",
    );
  }

  private async runWithTimeout(req: IncomingMessage, handler: Handler, params: Params): Promise<Reply> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Reply>((resolve) => {
      timer = setTimeout(() => resolve(emptyReply(503)), HANDLER_TIMEOUT_MS);
    });
    const work = (async (): Promise<Reply> => {
      let body: Uint8Array;
      try {
        body = await readBody(req);
      } catch (err) {
        if (err instanceof BodyTooLarge) {
          return textError(400, '{"error":"bad request body: http: request body too large","status":400}');
        }
        throw err;
      }
      return handler({ method: req.method ?? "", params, body });
    })();
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
