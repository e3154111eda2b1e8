/**
 * `bridgehead up`, `bridgehead node` and `bridgehead check`: the YAML-configured multi-region system.
 */
import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Command } from "commander";
import { ConfigError, formatProblem } from "../config/errors.js";
import { type LoadedConfig, loadConfigFile } from "../config/load.js";
import { type RunningSystem, startSystem } from "../runtime/system.js";
import { BridgeheadError } from "../util/errors.js";
import { createLogger, type Logger } from "../util/logger.js";

export const DEFAULT_CONFIG_FILE = "bridgehead.yaml";

function load(file: string): LoadedConfig | undefined {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
}

/** `--chaos` turns chaos mode on whatever the file says (at start and on every reload). */
function withChaosFlag(loaded: LoadedConfig, chaos: boolean | undefined): LoadedConfig {
  if (chaos !== true || loaded.config.chaos.enabled) return loaded;
  return { ...loaded, config: { ...loaded.config, chaos: { ...loaded.config.chaos, enabled: true } } };
}

/** A fixed-width table for a terminal. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function regionTable(system: RunningSystem): string {
  const rows = [["REGION", "CLIENTS", "GATEWAY", "MONITOR"]];
  for (const [name, r] of system.regions) {
    rows.push([name, r.clientUrl, r.gatewayUrl ?? "-", system.monitorUrl(name) ?? "-"]);
  }
  // A nats-server-backed region's clients use the cluster's own client URLs; shown: its leafnode URLs.
  for (const [name, r] of system.leafnodeRegions) {
    rows.push([name, `(nats cluster) ${r.port.connection.urls.join(",")}`, r.gatewayUrl ?? "-", "-"]);
  }
  return table(rows);
}

/** Chaos mode: where the Toxiproxy is and which proxy each link dialed here goes through. */
function chaosTable(system: RunningSystem): string {
  const c = system.chaos;
  if (c === undefined) return "";
  const rows = [["PROXY", "LISTEN", "UPSTREAM"]];
  for (const p of c.proxies()) rows.push([p.name, p.listen, p.upstream]);
  const where = c.embedded ? "embedded" : "external";
  return `chaos mode: links dial through the Toxiproxy at ${c.toxiproxyUrl} (${where}); proxies are named <dialer>-><listener>, upstream = dialer->listener\n${table(rows)}\n`;
}

/** Wait (bounded) for the configured links among running regions to come up; report how many did. */
async function awaitLinks(system: RunningSystem, loaded: LoadedConfig, timeoutMs: number): Promise<string> {
  const local = loaded.config.links.filter(
    (l) => system.allRegions.has(l.between[0]) || system.allRegions.has(l.between[1]),
  );
  const isUp = (a: string, b: string) =>
    system.allRegions.get(a)?.gateway.linkState(b) === "up" ||
    system.allRegions.get(b)?.gateway.linkState(a) === "up";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !local.every((l) => isUp(l.between[0], l.between[1]))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const lines = local.map(
    (l) => `  ${l.between[0]} <-> ${l.between[1]}: ${isUp(l.between[0], l.between[1]) ? "up" : "not up yet"}`,
  );
  const up = local.filter((l) => isUp(l.between[0], l.between[1])).length;
  return `links: ${up}/${local.length} up\n${lines.join("\n")}`;
}

/**
 * Reload on SIGHUP and when the file changes. An invalid file is logged with all its problems and the
 * running config stays. Returns a function that stops watching.
 */
function watchConfig(
  file: string,
  system: RunningSystem,
  log: Logger,
  adjust: (loaded: LoadedConfig) => LoadedConfig,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const reload = (why: string) => {
    running = running.then(async () => {
      let next: LoadedConfig;
      try {
        next = adjust(loadConfigFile(file));
      } catch (err) {
        if (err instanceof ConfigError) {
          log.error(
            { why, problems: err.problems.map(formatProblem) },
            "config reload rejected: the running config stays",
          );
          return;
        }
        log.error({ err, why }, "config reload failed");
        return;
      }
      try {
        await system.reload(next);
      } catch (err) {
        log.error({ err, why }, "config reload failed while applying");
      }
    });
  };
  const onHup = () => reload("SIGHUP");
  process.on("SIGHUP", onHup);
  let watcher: FSWatcher | undefined;
  try {
    // Editors replace files (rename) as often as they write them: watch the directory, filter by name.
    watcher = watch(dirname(resolve(file)), (_event, name) => {
      if (name !== basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => reload("file changed"), 200);
    });
  } catch (err) {
    log.warn({ err }, "cannot watch the config file; SIGHUP still reloads it");
  }
  return () => {
    process.off("SIGHUP", onHup);
    clearTimeout(timer);
    watcher?.close();
  };
}

/** Run until SIGINT/SIGTERM; resolves with the exit code. */
async function runUntilSignal(system: RunningSystem, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, "stopping");
      system
        .close()
        .then(() => resolve(0))
        .catch((err: unknown) => {
          log.error({ err }, "error while stopping");
          resolve(1);
        })
        .finally(() => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
        });
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

async function run(file: string, only: string | undefined, chaosFlag?: boolean): Promise<number> {
  const adjust = (l: LoadedConfig) => withChaosFlag(l, chaosFlag);
  const read = load(file);
  if (read === undefined) return 1;
  const loaded = adjust(read);
  const log = createLogger(
    { name: "bridgehead" },
    process.env.BRIDGEHEAD_LOG_LEVEL ?? loaded.config.logging.level,
    loaded.config.logging.format,
  );
  let system: RunningSystem;
  try {
    system = await startSystem(loaded, log, only);
  } catch (err) {
    if (err instanceof BridgeheadError || (err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      process.stderr.write(`bridgehead: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
  process.stdout.write(`${regionTable(system)}\n`);
  process.stdout.write(`${await awaitLinks(system, loaded, 5000)}\n`);
  process.stdout.write(chaosTable(system));
  process.stdout.write(
    "Ctrl-C stops every region cleanly; edit the file (or send SIGHUP) to reload links and filters.\n",
  );
  const unwatch = watchConfig(file, system, log, adjust);
  try {
    return await runUntilSignal(system, log);
  } finally {
    unwatch();
  }
}

export function registerSystemCommands(program: Command): void {
  program
    .command("up")
    .description("run every region of a config file in this process (the embedded brokers)")
    .argument("[file]", "the YAML config", DEFAULT_CONFIG_FILE)
    .option("--chaos", "chaos mode: every link dials through a Toxiproxy proxy (TOXIPROXY_URL or embedded)")
    .action(async (file: string, opts: { chaos?: boolean }) => {
      process.exitCode = await run(file, undefined, opts.chaos);
    });
  program
    .command("node")
    .description("run one region of a config file (one process or host per region)")
    .argument("[file]", "the YAML config", DEFAULT_CONFIG_FILE)
    .requiredOption("--region <name>", "the region to run")
    .option("--chaos", "chaos mode: the links this region dials go through a Toxiproxy proxy")
    .action(async (file: string, opts: { region: string; chaos?: boolean }) => {
      process.exitCode = await run(file, opts.region, opts.chaos);
    });
  program
    .command("check")
    .description("validate a config file; exits 1 and lists every problem when it is not valid")
    .argument("[file]", "the YAML config", DEFAULT_CONFIG_FILE)
    .action((file: string) => {
      const loaded = load(file);
      if (loaded === undefined) {
        process.exitCode = 1;
        return;
      }
      const c = loaded.config;
      process.stdout.write(
        `${file}: ok: ${c.regions.length} region(s) (${c.regions.map((r) => r.name).join(", ")}), ${c.links.length} link(s)\n`,
      );
      process.exitCode = 0;
    });
}
