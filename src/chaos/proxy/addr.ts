/**
 * `host:port` handling with Go's rules and error texts (`net.SplitHostPort`, `net.ResolveTCPAddr`,
 * `net.Listen`), so listen addresses are reported and rejected the way Toxiproxy reports and rejects them:
 * `localhost:N` binds 127.0.0.1, `""`/`0.0.0.0`/`[::]` bind the dual-stack wildcard shown as `[::]:N`, and a bad
 * address answers `address notanaddress: missing port in address`.
 */
import { lookup } from "node:dns/promises";
import { isIP, isIPv4, isIPv6 } from "node:net";

/** An address error worded like Go's (`address X: reason`, `lookup X: no such host`). */
export class GoNetError extends Error {}

/** `net.SplitHostPort`. Throws {@link GoNetError} with Go's text. */
export function splitHostPort(hostport: string): { host: string; port: string } {
  const fail = (why: string): never => {
    throw new GoNetError(hostport === "" ? why : `address ${hostport}: ${why}`);
  };
  const missingPort = "missing port in address";
  const tooManyColons = "too many colons in address";
  const i = hostport.lastIndexOf(":");
  if (i < 0) fail(missingPort);
  let host: string;
  let j = 0;
  let k = 0;
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) fail("missing ']' in address");
    if (end + 1 === hostport.length) fail(missingPort);
    if (end + 1 !== i) fail(hostport[end + 1] === ":" ? tooManyColons : missingPort);
    host = hostport.slice(1, end);
    j = 1;
    k = end + 1;
  } else {
    host = hostport.slice(0, i);
    if (host.includes(":")) fail(tooManyColons);
  }
  if (hostport.slice(j).includes("[")) fail("unexpected '[' in address");
  if (hostport.slice(k).includes("]")) fail("unexpected ']' in address");
  return { host, port: hostport.slice(i + 1) };
}

/** `net.LookupPort` for numeric ports (service names are not looked up). */
export function parsePort(port: string): number {
  if (port === "") return 0;
  let digits = port;
  let negative = false;
  if (digits.startsWith("+")) digits = digits.slice(1);
  else if (digits.startsWith("-")) {
    negative = true;
    digits = digits.slice(1);
  }
  if (!/^\d*$/.test(digits)) throw new GoNetError(`lookup tcp/${port}: unknown port`);
  const n = digits === "" ? 0 : Number(digits.slice(0, 12));
  const value = negative && n !== 0 ? -n : n;
  if (value < 0 || value > 0xffff) throw new GoNetError(`address ${port}: invalid port`);
  return value;
}

/** A resolved TCP address; `ip` undefined is Go's nil IP (the wildcard). */
export interface TcpAddr {
  readonly ip: string | undefined;
  readonly port: number;
}

/** `TCPAddr.String()`: `1.2.3.4:80`, `[::1]:80`, `:80` for the nil IP. */
export function formatTcpAddr(a: TcpAddr): string {
  if (a.ip === undefined) return `:${a.port}`;
  return isIPv6(a.ip) || a.ip.includes("%") ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

/** Resolve a host name the way Go does for TCP: an IP literal as it is, otherwise IPv4 first. */
async function resolveHost(host: string): Promise<string | undefined> {
  if (host === "") return undefined;
  const bare = host.split("%")[0] ?? host;
  if (isIP(bare) !== 0) return host;
  try {
    const all = await lookup(host, { all: true, verbatim: true });
    const v4 = all.find((a) => a.family === 4);
    const chosen = v4 ?? all[0];
    if (chosen) return chosen.address;
  } catch {
    // fall through to Go's wording
  }
  throw new GoNetError(`lookup ${host}: no such host`);
}

/** `net.ResolveTCPAddr("tcp", hostport)`. Throws {@link GoNetError}. */
export async function resolveTcpAddr(hostport: string): Promise<TcpAddr> {
  const { host, port } = hostport === "" ? { host: "", port: "" } : splitHostPort(hostport);
  const p = parsePort(port);
  return { ip: await resolveHost(host), port: p };
}

/** True when Go would listen on the dual-stack wildcard (`[::]`) for this address. */
export function isWildcard(a: TcpAddr): boolean {
  return a.ip === undefined || a.ip === "0.0.0.0" || a.ip === "::";
}

/** How Go prints a listener's bound address. */
export function formatBound(address: string, port: number, wildcard: boolean): string {
  if (wildcard) return `[::]:${port}`;
  return isIPv4(address) ? `${address}:${port}` : `[${address}]:${port}`;
}

/** The text after `bind: ` in Go's listen errors, for a Node socket error code. */
export function bindErrorText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "EADDRINUSE":
      return "address already in use";
    case "EACCES":
      return "permission denied";
    case "EADDRNOTAVAIL":
      return "cannot assign requested address";
    case "EAFNOSUPPORT":
      return "address family not supported by protocol";
    default:
      return err.message;
  }
}

/** Host and port to dial for an upstream address, or an error text. Go's empty host means the local system. */
export function parseUpstream(upstream: string): { host: string; port: number } | { error: string } {
  try {
    const { host, port } = splitHostPort(upstream);
    return { host: host === "" ? "localhost" : host, port: parsePort(port) };
  } catch (err) {
    return { error: `dial tcp: ${(err as Error).message}` };
  }
}
