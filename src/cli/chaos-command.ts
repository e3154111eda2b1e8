/**
 * `bridgehead chaos run FILE`: run a chaos scenario in this process, show progress, print a summary, write
 * result.json and report.html, and exit 1 when an expectation fails (2 when the scenario cannot run at all).
 */
import { mkdirSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import type { Command } from "commander";
import { pino } from "pino";
import {
  loadScenarioFile,
  type RunEvent,
  runScenario,
  ScenarioError,
  type ScenarioResult,
  writeReport,
} from "../chaos/scenario/index.js";
import { BridgeheadError } from "../util/errors.js";
import { table } from "./system-commands.js";

export const EXIT_EXPECTATION_FAILED = 1;
export const EXIT_CANNOT_RUN = 2;

export interface ChaosRunFlags {
  readonly out?: string;
  readonly logLevel?: string;
}

export interface ChaosRunDeps {
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`.padStart(6);

/** One line per event worth a look: phases, faults starting and ending, recoveries, and a beat every second. */
export function formatEvent(e: RunEvent): string | undefined {
  switch (e.type) {
    case "phase":
      return e.phase === "report"
        ? undefined
        : `        -- ${e.phase} (${(e.elapsed / 1000).toFixed(1)}s since start)`;
    case "fault":
      return `${secs(e.at)}  ${e.action === "start" ? "+ fault" : "- fault"}  ${e.label}`;
    case "recovered":
      return `${secs(e.at)}  recovered after ${e.after.join(", ")}: ${e.convergenceMs === null ? "not converged" : `converged in ${e.convergenceMs} ms`}`;
    case "progress": {
      const req = e.requests > 0 ? `  requests ${e.requests} (${e.requestsFailed} failed)` : "";
      const faults = e.active.length > 0 ? `  faults: ${e.active.join("; ")}` : "";
      return `${secs(Math.max(0, e.at))}  ${e.phase.padEnd(5)}  sent ${e.sent}  delivered ${e.delivered}  in flight ${e.outstanding}  dups ${e.duplicates}${req}  links ${e.linksUp}/${e.links}${faults}`;
    }
  }
}

/** The summary printed at the end: totals, then one row per expectation. */
export function summary(r: ScenarioResult): string {
  const t = r.totals;
  const lines = [
    "",
    `scenario ${r.scenario.name}: ${t.messagesSent} messages, ${t.expectedDeliveries} deliveries expected, ${t.lost} lost (${t.lostOutsideFaults} outside faults), ${t.duplicates} duplicates`,
    `latency outside faults p50 ${r.latency.outsideFaults.p50 ?? "-"} ms, p99 ${r.latency.outsideFaults.p99 ?? "-"} ms; during faults p99 ${r.latency.duringFaults.p99 ?? "-"} ms`,
  ];
  if (r.requests.sent > 0) {
    lines.push(`requests: ${r.requests.sent} sent, ${r.requests.ok} answered, ${r.requests.failed} failed`);
  }
  for (const f of r.faults) {
    lines.push(
      `fault ${f.label}: ${(f.start / 1000).toFixed(1)}s-${f.end === undefined ? "end" : `${(f.end / 1000).toFixed(1)}s`}, ${f.convergenceMs === undefined ? "did not converge" : `converged ${f.convergenceMs} ms after it ended`}`,
    );
  }
  lines.push("");
  lines.push(
    table([
      ["EXPECTATION", "LIMIT", "MEASURED", "RESULT"],
      ...r.expectations.map((e) => [e.name, e.limit, e.actual, e.passed ? "pass" : "FAIL"]),
    ]),
  );
  return `${lines.join("\n")}\n`;
}

function defaultOut(file: string): string {
  return join("chaos-results", basename(file, extname(file)));
}

export async function runChaos(file: string, flags: ChaosRunFlags, deps: ChaosRunDeps = {}): Promise<number> {
  const stdout = deps.stdout ?? ((text: string) => process.stdout.write(text));
  const stderr = deps.stderr ?? ((text: string) => process.stderr.write(text));
  let loaded: ReturnType<typeof loadScenarioFile>;
  try {
    loaded = loadScenarioFile(file);
  } catch (err) {
    if (err instanceof ScenarioError) {
      stderr(`${err.message}\n`);
      return EXIT_CANNOT_RUN;
    }
    throw err;
  }
  const out = resolve(flags.out ?? defaultOut(file));
  mkdirSync(out, { recursive: true });
  const logFile = join(out, "bridgehead.log");
  // The regions' logs go to a file: link churn is the point of the run and would drown the progress lines.
  const logger = pino(
    { level: flags.logLevel ?? process.env.BRIDGEHEAD_LOG_LEVEL ?? "info", base: { pid: process.pid } },
    pino.destination({ dest: logFile, sync: true }),
  );
  const s = loaded.scenario;
  stdout(
    `scenario ${loaded.name}: topology ${loaded.topologyFile} (${loaded.topology.config.regions.length} regions, ${loaded.topology.config.links.length} links), workload ${s.duration / 1000}s, ${s.timeline.length} timeline step(s); logs in ${logFile}\n`,
  );
  let result: ScenarioResult;
  try {
    result = await runScenario(loaded, {
      logger,
      onEvent: (e) => {
        const line = formatEvent(e);
        if (line !== undefined) stdout(`${line}\n`);
      },
    });
  } catch (err) {
    if (err instanceof BridgeheadError) {
      stderr(`bridgehead chaos run: ${err.message}\n`);
      return EXIT_CANNOT_RUN;
    }
    throw err;
  } finally {
    logger.flush();
  }
  stdout(summary(result));
  const written = writeReport(result, out);
  stdout(`wrote ${written.json} and ${written.html}\n`);
  const failed = result.expectations.filter((e) => !e.passed);
  if (failed.length === 0) {
    stdout(`PASSED: ${result.expectations.length} expectation(s) held\n`);
    return 0;
  }
  stderr(
    `FAILED: ${failed.length} of ${result.expectations.length} expectation(s) did not hold: ${failed.map((e) => `${e.name} (limit ${e.limit}, measured ${e.actual})`).join("; ")}\n`,
  );
  return EXIT_EXPECTATION_FAILED;
}

export function registerChaosCommand(program: Command): void {
  const chaos = program
    .command("chaos")
    .description("chaos experiments: scenarios of faults against a workload");
  chaos
    .command("run")
    .description(
      "run a scenario file: regions in this process in chaos mode, a workload, a timeline of faults; writes result.json and report.html; exit 1 if an expectation fails, 2 if the scenario cannot run",
    )
    .argument("<file>", "the scenario YAML")
    .option(
      "--out <dir>",
      "where result.json, report.html and bridgehead.log go (default chaos-results/<file name>)",
    )
    .option("--log-level <level>", "level of the log file (default info, or BRIDGEHEAD_LOG_LEVEL)")
    .action(async (file: string, opts: ChaosRunFlags) => {
      process.exitCode = await runChaos(file, opts);
    });
}
