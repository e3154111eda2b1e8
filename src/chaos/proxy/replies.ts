/**
 * HTTP replies shaped like the ones Go's net/http and Toxiproxy write, so clients that look at content types
 * and bodies (not only status codes) see no difference.
 */
import type { ServerResponse } from "node:http";
import type { ApiError } from "./errors.js";
import { goString } from "./gojson.js";

export interface Reply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A JSON success body as Toxiproxy writes it (`application/json`, no trailing newline). */
export function jsonReply(status: number, body: string): Reply {
  return { status, headers: { "Content-Type": "application/json" }, body };
}

/** Go's `http.Error`: text/plain even when the text is JSON, nosniff, a trailing newline. */
export function textError(status: number, text: string): Reply {
  return {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
    body: `${text}\n`,
  };
}

/** `{"error":"…","status":N}` sent through `http.Error`, as every endpoint but /populate does. */
export function apiErrorReply(err: ApiError): Reply {
  return textError(err.status, `{"error":${goString(err.message)},"status":${err.status}}`);
}

/** A status with no body and no Content-Type (204, 405, 503 from the handler timeout, 301). */
export function emptyReply(status: number, headers: Record<string, string> = {}): Reply {
  return { status, headers, body: "" };
}

export function send(res: ServerResponse, reply: Reply, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { ...extraHeaders, ...reply.headers };
  // 204 must not carry a length; everything else gets one so keep-alive clients know where the body ends.
  if (reply.status !== 204) headers["Content-Length"] = Buffer.byteLength(reply.body);
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}
