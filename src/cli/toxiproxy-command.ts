/**
 * `bridgehead toxiproxy`: the Toxiproxy-compatible fault proxy on its own, started like toxiproxy-server (same
 * defaults, `--host`, `--port`, `--config`), so scripts and clients written for a real Toxiproxy work against it.
 */
import type { Command } from "commander";
import {
  DEFAULT_TOXIPROXY_HOST,
  DEFAULT_TOXIPROXY_PORT,
  loadPopulateFile,
  PopulateFileError,
  startToxiproxyServer,
  TOXIPROXY_VERSION,
  ToxiproxyListenError,
  type ToxiproxyServer,
} from "../chaos/proxy/index.js";
import { createLogger, type Logger } from "../util/logger.js";

export interface ToxiproxyFlags {
  readonly host?: string;
  readonly port?: string;
  readonly config?: string;
  readonly proxyMetrics?: boolean;
  readonly runtimeMetrics?: boolean;
}

export interface RunToxiproxyDeps {
  readonly log?: Logger;
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

const CLOSE_TIMEOUT_MS = 10_000;

/** toxiproxy-server's LOG_LEVEL names, for people who set it out of habit; BRIDGEHEAD_LOG_LEVEL wins. */
function logLevel(): string | undefined {
  if (process.env.BRIDGEHEAD_LOG_LEVEL !== undefined) return undefined;
  const level = process.env.LOG_LEVEL?.toLowerCase();
  if (level === undefined) return undefined;
  if (level === "panic") return "fatal";
  if (level === "disabled") return "silent";
  return ["fatal", "error", "warn", "info", "debug", "trace"].includes(level) ? level : undefined;
}

function parsePortFlag(value: string | undefined): number | string {
  if (value === undefined) return DEFAULT_TOXIPROXY_PORT;
  const v = value.trim();
  if (!/^\d+$/.test(v) || Number(v) > 65535) return `invalid port ${JSON.stringify(value)} (0 to 65535)`;
  return Number(v);
}

/** Run until SIGINT/SIGTERM. Resolves with the exit code: 0 after a clean stop, 1 if it cannot start. */
export async function runToxiproxy(flags: ToxiproxyFlags, deps: RunToxiproxyDeps = {}): Promise<number> {
  const log = deps.log ?? createLogger({ name: "bridgehead-toxiproxy" }, logLevel());
  const stdout = deps.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = deps.stderr ?? ((text: string) => process.stderr.write(text));
  const port = parsePortFlag(flags.port);
  if (typeof port === "string") {
    stderr(`bridgehead toxiproxy: ${port}\n`);
    return 1;
  }

  // Handlers go in before the server starts: a signal during start-up must still end in a clean stop.
  let stopSignal: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      log.warn({ signal: sig }, "second signal, exiting without waiting for a clean shutdown");
      process.exit(1);
    }
    stopSignal = sig;
    wake?.();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    let server: ToxiproxyServer;
    try {
      server = await startToxiproxyServer({
        host: flags.host ?? DEFAULT_TOXIPROXY_HOST,
        port,
        logger: log,
        proxyMetrics: flags.proxyMetrics === true,
        runtimeMetrics: flags.runtimeMetrics === true,
      });
    } catch (err) {
      if (!(err instanceof ToxiproxyListenError)) throw err;
      log.fatal({ err: err.message }, "cannot start the Toxiproxy API");
      stderr(`bridgehead toxiproxy: ${err.message}\n`);
      return 1;
    }
    if (flags.config !== undefined) {
      try {
        const n = await loadPopulateFile(server.registry, flags.config);
        log.info({ config: flags.config, proxies: n }, "Populated proxies from file");
      } catch (err) {
        // Like toxiproxy-server: a bad config file is logged and the API keeps running.
        if (!(err instanceof PopulateFileError)) throw err;
        log.error({ config: flags.config, err: err.message }, "Failed to populate proxies from file");
      }
    }
    stdout(`bridgehead toxiproxy ${TOXIPROXY_VERSION} API listening on ${server.url} (${server.address})\n`);
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (stopSignal !== undefined) resolve();
    });
    log.info({ signal: stopSignal }, "shutting down");
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      server.close().then(() => 0),
      new Promise<number>((resolve) => {
        timer = setTimeout(() => {
          log.error(`the fault proxy did not close within ${CLOSE_TIMEOUT_MS} ms`);
          resolve(1);
        }, CLOSE_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    log.info({ code }, "stopped");
    return code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Add `toxiproxy` to the program. */
export function registerToxiproxyCommand(program: Command): Command {
  return program
    .command("toxiproxy")
    .summary("run the Toxiproxy-compatible fault proxy (a stand-in for toxiproxy-server)")
    .description(
      `Serve the Toxiproxy ${TOXIPROXY_VERSION} HTTP API: create TCP proxies and add toxics (latency, ` +
        "bandwidth, slow_close, timeout, reset_peer, slicer, limit_data) with toxiproxy-cli, " +
        "toxiproxy-node-client or curl.",
    )
    .option("--host <host>", `address the API listens on (default ${DEFAULT_TOXIPROXY_HOST})`)
    .option(
      "--port <port>",
      `port the API listens on; 0 picks a free one (default ${DEFAULT_TOXIPROXY_PORT})`,
    )
    .option("--config <file>", "JSON file of proxies to create at start-up (the /populate format)")
    .option("--proxy-metrics", "serve the proxies' byte counters on /metrics (Prometheus text)")
    .option("--runtime-metrics", "serve this process's runtime metrics on /metrics")
    .addHelpText(
      "after",
      "\nPrints the API URL on stdout once listening. Logs go to stderr (level from BRIDGEHEAD_LOG_LEVEL, or " +
        "Toxiproxy's LOG_LEVEL). SIGINT/SIGTERM stop it cleanly.",
    )
    .action(async (flags: ToxiproxyFlags) => {
      const code = await runToxiproxy(flags);
      process.exitCode = code;
      // Anything still holding the event loop open must not keep a stopped proxy alive.
      setTimeout(() => process.exit(code), 3000).unref();
    });
}
