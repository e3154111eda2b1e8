/**
 * The Toxiproxy-compatible fault proxy: start its API in-process with {@link startToxiproxyServer} and drive it
 * over HTTP (e.g. with toxiproxy-node-client), exactly as a real Toxiproxy would be driven.
 */
export { TOXIPROXY_VERSION } from "./api.js";
export { loadPopulateFile, PopulateFileError } from "./config-file.js";
export { ApiError } from "./errors.js";
export type { FaultProxy } from "./proxy.js";
export type { ProxyRegistry, ProxySpec } from "./registry.js";
export {
  DEFAULT_TOXIPROXY_HOST,
  DEFAULT_TOXIPROXY_PORT,
  startToxiproxyServer,
  ToxiproxyListenError,
  type ToxiproxyServer,
  type ToxiproxyServerOptions,
} from "./server.js";
