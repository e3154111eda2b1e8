/**
 * `net.Listen("tcp", addr)` as Go does it, for both the API and the proxies: resolve, bind (a wildcard binds
 * dual-stack `::`, or 0.0.0.0 on a host without IPv6, like Go), and report the bound address in Go's form.
 */
import type { AddressInfo, Server } from "node:net";
import { bindErrorText, formatBound, formatTcpAddr, GoNetError, isWildcard, resolveTcpAddr } from "./addr.js";

export interface Bound {
  /** As Go's `listener.Addr().String()` prints it: `127.0.0.1:N`, `[::1]:N`, `[::]:N`. */
  readonly address: string;
  readonly ip: string;
  readonly port: number;
  readonly wildcard: boolean;
}

function listenOnce(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host, port, ipv6Only: false }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Bind `server` to `hostport`. Throws {@link GoNetError} worded like Go (`listen tcp …: bind: …`). */
export async function listenLikeGo(server: Server, hostport: string): Promise<Bound> {
  let addr: Awaited<ReturnType<typeof resolveTcpAddr>>;
  try {
    addr = await resolveTcpAddr(hostport);
  } catch (err) {
    if (err instanceof GoNetError) throw new GoNetError(`listen tcp: ${err.message}`);
    throw err;
  }
  const wildcard = isWildcard(addr);
  try {
    try {
      await listenOnce(server, wildcard ? "::" : (addr.ip ?? "::"), addr.port);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!wildcard || (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL")) throw err;
      await listenOnce(server, "0.0.0.0", addr.port);
    }
  } catch (err) {
    throw new GoNetError(
      `listen tcp ${formatTcpAddr(addr)}: bind: ${bindErrorText(err as NodeJS.ErrnoException)}`,
    );
  }
  const bound = server.address() as AddressInfo;
  return {
    address: formatBound(bound.address, bound.port, wildcard),
    ip: bound.address,
    port: bound.port,
    wildcard,
  };
}
