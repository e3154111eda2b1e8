/**
 * `bridgehead broker`: one broker node, started like nats-server (same common flags, same `-c` config file,
 * same `<ports_file_dir>/nats-server_<pid>.ports` file), so scripts written for nats-server keep working.
 */
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { loadNatsConfFile } from "../broker/conf-to-options.js";
import { type RunningBroker, startBroker } from "../broker/index.js";
import { formatConfProblem, NatsConfError, type NatsConfProblem } from "../broker/nats-conf.js";
import type { AuthOptions, BrokerOptions } from "../broker/options.js";
import { createLogger, type Logger } from "../util/logger.js";

/** Options as commander hands them over (names as the long flags). */
export interface BrokerFlags {
  readonly addr?: string;
  readonly net?: string;
  readonly port?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly auth?: string;
  readonly http_port?: string;
  readonly config?: string;
  readonly name?: string;
  readonly server_name?: string;
  readonly ports_file_dir?: string;
  readonly t?: boolean;
  readonly debug?: boolean;
  readonly trace?: boolean;
  readonly log?: string;
  readonly logtime?: boolean | string;
}

type Mutable<T> = { -readonly [K in keyof T]?: T[K] };

export const BROKER_VERSION_SUFFIX = "(nats-server 2.9 compatible)";

/** Long flags that nats-server (Go's flag package) also accepts with a single dash, e.g. `-config`. */
const GO_STYLE_LONG_FLAGS = new Set([
  "addr",
  "net",
  "port",
  "user",
  "pass",
  "auth",
  "http_port",
  "config",
  "name",
  "server_name",
  "ports_file_dir",
  "version",
  "help",
  "debug",
  "trace",
  "log",
  "logtime",
]);

/** Flags that take a value, so the argument after them is left alone by {@link normalizeBrokerArgs}. */
const VALUE_FLAGS = new Set([
  "-a",
  "--addr",
  "--net",
  "-p",
  "--port",
  "--user",
  "--pass",
  "--auth",
  "-m",
  "--http_port",
  "-c",
  "--config",
  "-n",
  "--name",
  "--server_name",
  "--ports_file_dir",
  "-l",
  "--log",
]);

/**
 * Rewrite Go-style flags the way nats-server reads them: `-config x` → `--config x`, `-p=4222` → `-p 4222`.
 * Clusters of single-letter flags (`-DV`, `-DVV`) are left for commander, which splits them.
 */
export function normalizeBrokerArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let takesValue = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (takesValue) {
      out.push(a);
      takesValue = false;
      continue;
    }
    let m = /^-([a-z_]{2,})(=.*)?$/.exec(a);
    if (m && GO_STYLE_LONG_FLAGS.has(m[1]!)) {
      const flag = `--${m[1]}`;
      out.push(flag + (m[2] ?? ""));
      takesValue = m[2] === undefined && VALUE_FLAGS.has(flag);
      continue;
    }
    m = /^(-[a-zA-Z])=(.*)$/.exec(a);
    if (m) {
      out.push(m[1]!, m[2]!);
      continue;
    }
    out.push(a);
    takesValue = VALUE_FLAGS.has(a);
  }
  return out;
}

function flagProblem(flag: string, message: string): NatsConfProblem {
  return { path: flag, message };
}

/** A port flag: -1 (free port) to 65535. */
function portFlag(flag: string, value: string, problems: NatsConfProblem[]): number | undefined {
  if (!/^-?\d+$/.test(value.trim())) {
    problems.push(flagProblem(flag, `expected a port number (-1 to 65535), found ${JSON.stringify(value)}`));
    return undefined;
  }
  const n = Number(value.trim());
  if (n < -1 || n > 65535) {
    problems.push(flagProblem(flag, `port ${n} is out of range (-1 to 65535)`));
    return undefined;
  }
  return n;
}

export interface ResolvedBrokerOptions {
  readonly options: Partial<BrokerOptions>;
  readonly warnings: string[];
  readonly configFile?: string;
}

/**
 * The broker options from the config file (if any) overridden by flags, as nats-server does.
 * Throws {@link NatsConfError} listing every problem in the file and the flags.
 */
export function resolveBrokerOptions(flags: BrokerFlags): ResolvedBrokerOptions {
  let options: Mutable<BrokerOptions> = {};
  const warnings: string[] = [];
  const problems: NatsConfProblem[] = [];
  if (flags.config !== undefined) {
    try {
      const loaded = loadNatsConfFile(flags.config);
      options = { ...loaded.options };
      warnings.push(...loaded.warnings);
    } catch (err) {
      if (!(err instanceof NatsConfError)) throw err;
      problems.push(...err.problems);
    }
  }

  const host = flags.addr ?? flags.net;
  if (host !== undefined) options.host = host;
  if (flags.port !== undefined) {
    const port = portFlag("--port", flags.port, problems);
    // nats-server: -1 picks a free port, 0 means the default port.
    if (port !== undefined) options.port = port === -1 ? 0 : port === 0 ? 4222 : port;
  }
  if (flags.http_port !== undefined) {
    const port = portFlag("--http_port", flags.http_port, problems);
    if (port === 0) delete options.httpPort;
    else if (port !== undefined) options.httpPort = port === -1 ? 0 : port;
  }
  const name = flags.name ?? flags.server_name;
  if (name !== undefined) options.serverName = name;
  if (flags.ports_file_dir !== undefined) options.portsFileDir = flags.ports_file_dir;

  if (flags.user !== undefined || flags.pass !== undefined || flags.auth !== undefined) {
    const auth: Mutable<AuthOptions> = { ...(options.auth ?? {}) };
    if (flags.user !== undefined || flags.pass !== undefined) {
      if (flags.user === undefined) problems.push(flagProblem("--pass", "--pass needs --user"));
      else if (flags.pass === undefined) problems.push(flagProblem("--user", "--user needs --pass"));
      else auth.users = [{ user: flags.user, password: flags.pass }];
    }
    if (flags.auth !== undefined) auth.token = flags.auth;
    if (auth.token !== undefined && auth.users !== undefined && auth.users.length > 0) {
      const flag = flags.auth !== undefined ? "--auth" : "--user";
      problems.push(
        flagProblem(flag, "cannot have both a token and users (from the flags and the configuration file)"),
      );
    }
    options.auth = auth;
  }

  if (problems.length > 0) throw new NatsConfError(problems);
  return { options, warnings, ...(flags.config !== undefined ? { configFile: flags.config } : {}) };
}

/** The addresses to advertise for a listener bound to `host` (all interfaces for 0.0.0.0, as nats-server). */
export function advertisedHosts(host: string): string[] {
  const any4 = host === "0.0.0.0" || host === "";
  const any6 = host === "::" || host === "[::]";
  if (!any4 && !any6) return [host];
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === "IPv4" || (any6 && a.family === "IPv6")) out.push(a.address);
    }
  }
  out.sort((x, y) => Number(y === "127.0.0.1") - Number(x === "127.0.0.1"));
  return out.length > 0 ? [...new Set(out)] : ["127.0.0.1"];
}

function hostForUrl(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

export interface PortsFileContent {
  readonly nats: string[];
  readonly monitoring?: string[];
}

export function portsFileContent(
  host: string,
  port: number,
  http?: { host: string; port: number },
): PortsFileContent {
  const nats = advertisedHosts(host).map((h) => `nats://${hostForUrl(h)}:${port}`);
  if (!http) return { nats };
  return { nats, monitoring: advertisedHosts(http.host).map((h) => `http://${hostForUrl(h)}:${http.port}`) };
}

/** `<dir>/nats-server_<pid>.ports`, the name nats-server uses (tools look for it). */
export function portsFilePath(dir: string, pid = process.pid): string {
  return join(dir, `nats-server_${pid}.ports`);
}

/** Written atomically (temp file + rename) so a reader never sees half a file. */
export function writePortsFile(path: string, content: PortsFileContent): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(content));
  renameSync(tmp, path);
}

function removeFile(path: string | undefined): void {
  if (path === undefined) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export interface RunBrokerDeps {
  readonly log?: Logger;
  readonly stderr?: (text: string) => void;
  /** Replaces {@link startBroker} (tests). */
  readonly start?: (options: Partial<BrokerOptions>, log: Logger) => Promise<RunningBroker>;
}

const CLOSE_TIMEOUT_MS = 10_000;

/**
 * Run one broker until SIGINT/SIGTERM. Resolves with the process exit code: 0 after a clean shutdown
 * (or a successful `-t`), 1 for configuration errors or a failed start.
 */
export async function runBroker(
  flags: BrokerFlags,
  version: string,
  deps: RunBrokerDeps = {},
): Promise<number> {
  const log = deps.log ?? createLogger({ name: "bridgehead-broker" });
  const stderr = deps.stderr ?? ((text: string) => process.stderr.write(text));

  if (flags.debug) log.warn("-D/--debug is accepted for nats-server compatibility and ignored");
  if (flags.trace) log.warn("-V/--trace is accepted for nats-server compatibility and ignored");
  if (flags.log !== undefined)
    log.warn(`-l/--log is ignored: bridgehead logs to stderr (${flags.log} not written)`);
  if (flags.logtime !== undefined)
    log.warn("-T/--logtime is accepted for nats-server compatibility and ignored");

  let resolved: ResolvedBrokerOptions;
  try {
    resolved = resolveBrokerOptions(flags);
  } catch (err) {
    if (!(err instanceof NatsConfError)) throw err;
    const n = err.problems.length;
    stderr(`bridgehead broker: ${n === 1 ? "configuration error" : `${n} configuration errors`}:\n`);
    for (const p of err.problems) stderr(`  ${formatConfProblem(p)}\n`);
    return 1;
  }
  for (const w of resolved.warnings) log.warn(w);

  if (flags.t) {
    stderr(`bridgehead broker: configuration ${resolved.configFile ?? "(flags only)"} is valid\n`);
    return 0;
  }

  // Signal handlers go in before anything is announced: a supervisor may signal as soon as the ports file
  // appears, and a signal during start-up must still end in a clean shutdown.
  let stopSignal: NodeJS.Signals | undefined;
  let portsFile: string | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      log.warn({ signal: sig }, "second signal, exiting without waiting for a clean shutdown");
      removeFile(portsFile);
      process.exit(1);
    }
    stopSignal = sig;
    wake?.();
  };
  const onExit = () => removeFile(portsFile);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", onExit);
  log.info({ version }, "starting bridgehead broker");
  try {
    return await serve(resolved.options, log, deps, {
      stopped: () => stopSignal,
      waitForSignal: () =>
        new Promise<void>((resolve) => {
          wake = resolve;
          if (stopSignal !== undefined) resolve();
        }),
      setPortsFile: (path) => {
        portsFile = path;
      },
    });
  } finally {
    removeFile(portsFile);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("exit", onExit);
  }
}

interface Lifecycle {
  stopped(): NodeJS.Signals | undefined;
  waitForSignal(): Promise<void>;
  setPortsFile(path: string | undefined): void;
}

async function serve(
  options: Partial<BrokerOptions>,
  log: Logger,
  deps: RunBrokerDeps,
  life: Lifecycle,
): Promise<number> {
  const { portsFileDir, ...brokerOpts } = options;
  let broker: RunningBroker;
  try {
    broker = await (deps.start ?? startBroker)(brokerOpts, log);
  } catch (err) {
    log.fatal({ err }, "cannot start broker");
    return 1;
  }

  if (life.stopped() === undefined) {
    const boundHost = brokerOpts.host ?? "0.0.0.0";
    const httpPort = (broker as RunningBroker & { httpPort?: number }).httpPort;
    const http =
      httpPort !== undefined ? { host: brokerOpts.httpHost ?? boundHost, port: httpPort } : undefined;
    if (brokerOpts.httpPort !== undefined && http === undefined) {
      log.warn("a monitoring port was requested but the broker did not report one");
    }
    const content = portsFileContent(boundHost, broker.port, http);
    let portsFile: string | undefined;
    if (portsFileDir !== undefined) {
      const path = portsFilePath(portsFileDir);
      try {
        life.setPortsFile(path);
        writePortsFile(path, content);
        portsFile = path;
      } catch (err) {
        log.error({ err, path }, "cannot write ports file");
      }
    }
    log.info(
      {
        url: broker.url,
        ...(http ? { monitoring: content.monitoring?.[0] } : {}),
        ...(portsFile ? { portsFile } : {}),
      },
      "listening",
    );
    await life.waitForSignal();
    removeFile(portsFile);
    life.setPortsFile(undefined);
  }

  log.info({ signal: life.stopped() }, "shutting down");
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    broker.close().then(
      () => 0,
      (err: unknown) => {
        log.error({ err }, "error while closing the broker");
        return 1;
      },
    ),
    new Promise<number>((resolve) => {
      timer = setTimeout(() => {
        log.error(`broker did not close within ${CLOSE_TIMEOUT_MS} ms`);
        resolve(1);
      }, CLOSE_TIMEOUT_MS);
    }),
  ]);
  clearTimeout(timer);
  log.info({ code }, "stopped");
  return code;
}

/** Add `broker` to the program. */
export function registerBrokerCommand(program: Command, version: string): Command {
  const cmd = program
    .command("broker")
    .summary("run one broker node (a drop-in for nats-server)")
    .description(
      "Run one broker node. It speaks the NATS client protocol and takes nats-server's common flags and " +
        "configuration file; flags override the file.",
    )
    .version(
      `bridgehead-broker: v${version} ${BROKER_VERSION_SUFFIX}`,
      "-v, --version",
      "print the version and exit",
    )
    .option("-a, --addr <host>", "bind to host address (alias --net; default 0.0.0.0)")
    .addOption(new Option("--net <host>", "bind to host address").hideHelp())
    .option("-p, --port <port>", "port for clients (default 4222; -1 picks a free port)")
    .option("--user <user>", "user required for connections")
    .option("--pass <password>", "password required for connections")
    .option("--auth <token>", "authorization token required for connections")
    .option("-m, --http_port <port>", "port for HTTP monitoring (-1 picks a free port)")
    .option("-c, --config <file>", "nats-server configuration file")
    .option("-n, --name <name>", "server name (alias --server_name)")
    .addOption(new Option("--server_name <name>", "server name").hideHelp())
    .option("--ports_file_dir <dir>", "write nats-server_<pid>.ports in this directory once listening")
    .option("-t", "test the configuration and exit")
    .addOption(new Option("-D, --debug", "accepted for nats-server compatibility, ignored"))
    .addOption(new Option("-V, --trace", "accepted for nats-server compatibility (also -DV, -VV), ignored"))
    .addOption(
      new Option("-l, --log <file>", "accepted for nats-server compatibility, ignored (logs go to stderr)"),
    )
    .addOption(
      new Option("-T, --logtime [bool]", "accepted for nats-server compatibility, ignored").hideHelp(),
    )
    .addHelpText(
      "after",
      "\nLogs are JSON lines on stderr (level from BRIDGEHEAD_LOG_LEVEL). SIGINT/SIGTERM stop the broker cleanly.",
    )
    .action(async (flags: BrokerFlags) => {
      const code = await runBroker(flags, version);
      process.exitCode = code;
      // Anything still holding the event loop open must not keep a stopped broker alive.
      setTimeout(() => process.exit(code), 3000).unref();
    });
  return cmd;
}
