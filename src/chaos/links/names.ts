/**
 * How links map to proxies in chaos mode. A link is dialed by the first region of its `between` pair, so the
 * proxy sits between the dialer and the listener and is named `<dialer>-><listener>`. Toxiproxy's streams are
 * relative to that proxy: `upstream` carries what the dialer sends to the listener, `downstream` the reverse.
 */
export type ToxicStream = "upstream" | "downstream";

/** The name of the proxy a link from `dialer` to `listener` dials through. */
export function proxyName(dialer: string, listener: string): string {
  return `${dialer}->${listener}`;
}

/** The stream of proxy `<dialer>-><listener>` that carries traffic leaving `from`. */
export function streamFrom(dialer: string, from: string): ToxicStream {
  return from === dialer ? "upstream" : "downstream";
}
