/**
 * `npm run bench [-- --quick] [-- --only <substring>] [-- --repeat <n>] [-- --cpu-prof]`: runs every case against nats-server (when
 * installed) and bridgehead with the same load generator, prints progress on stderr and the comparison
 * table on stdout, and writes bench-results/latest.{json,md,svg}. See docs/benchmarks.md.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, hostname, loadavg, platform, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { natsServerAvailable, type ServerKind } from "../test/helpers/servers.js";
import { allCases, type BenchCase, type BenchContext, type Target } from "./cases.js";
import { installExitHooks, RunScope } from "./harness.js";
import { type CaseOutcome, markdownTable, type RunOutcome, SERVER_COLUMNS, svgChart } from "./report.js";

interface Args {
  quick: boolean;
  only: string[];
  repeat: number;
  budgetMs: number;
  cpuProf: boolean;
}

const USAGE = `usage: npm run bench -- [--quick] [--only <substring>]... [--repeat <n>] [--cpu-prof]
  --quick            smaller counts and time limits (a smoke test of a few seconds)
  --only <substring> run only cases whose name contains it (case-insensitive; repeatable)
  --repeat <n>       run every server case n times (interleaving the servers) and report the run with
                     the median primary figure; all runs go to latest.json. Default 1. The time
                     budget (3 minutes per repetition) still applies: runs that do not fit are skipped.
  --cpu-prof         run the bridgehead region processes of the cross-region cases under node --cpu-prof;
                     the profiles go to bench-results/profiles/ (then: node dist/bench/profile-top.js FILE)`;

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, only: [], repeat: 1, budgetMs: 0, cpuProf: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") args.quick = true;
    else if (a === "--cpu-prof") args.cpuProf = true;
    else if (a === "--only") {
      const v = argv[++i];
      if (!v) throw new Error(`--only needs a value\n${USAGE}`);
      args.only.push(v.toLowerCase());
    } else if (a.startsWith("--only=")) args.only.push(a.slice(7).toLowerCase());
    else if (a === "--repeat" || a.startsWith("--repeat=")) {
      const v = Number(a === "--repeat" ? argv[++i] : a.slice(9));
      if (!Number.isInteger(v) || v < 1) throw new Error(`--repeat needs a positive integer\n${USAGE}`);
      args.repeat = v;
    } else if (a === "--help" || a === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  // One pass must stay under three minutes; cases shorten their time limits to fit. Each repetition adds
  // the same again, so `--repeat 3` of everything fits instead of skipping the last cases.
  args.budgetMs = (args.quick ? 60_000 : 170_000) * args.repeat;
  return args;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = resolve(dir, "..");
  return dir;
}

function commandOutput(cmd: string, args: string[], cwd?: string): string | null {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", cwd, stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
}

function machineInfo(root: string, loadAtStart: number[]) {
  const c = cpus();
  return {
    /** 1/5/15-minute load averages when the run started: other work on the machine skews the figures. */
    loadAverageAtStart: loadAtStart.map((l) => Math.round(l * 100) / 100),
    hostname: hostname(),
    platform: `${platform()} ${release()}`,
    cpuModel: c[0]?.model ?? "unknown",
    cpus: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    natsServer: natsServerAvailable() ? commandOutput("nats-server", ["--version"]) : null,
    bridgeheadCommit: commandOutput("git", ["rev-parse", "--short", "HEAD"], root),
    bridgeheadTreeDirty: (commandOutput("git", ["status", "--porcelain"], root) ?? "") !== "",
  };
}

function runJson(r: RunOutcome) {
  return r.ok
    ? {
        ok: true,
        seconds: r.seconds,
        values: r.result.values,
        warnings: r.result.warnings,
        details: r.result.details,
      }
    : { ok: false, seconds: r.seconds, error: r.error };
}

/** Race `p` against a timeout; the scope's close() (in the caller's finally) then kills what is left. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${Math.round(ms / 1000)} s`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

async function runOne(
  c: BenchCase,
  target: Target,
  args: Args,
  started: number,
  suffix = "",
  cpuProfileDir?: string,
): Promise<RunOutcome> {
  const label = `${c.name} · ${target ?? "load generator"}${suffix}`;
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`;
  const timeLeftMs = () => args.budgetMs - (Date.now() - started);
  if (timeLeftMs() < 8000) {
    process.stderr.write(`[${elapsed()}] ${label}: skipped, time budget used up\n`);
    return { ok: false, error: "skipped: time budget used up", seconds: 0 };
  }
  process.stderr.write(`[${elapsed()}] ${label}: starting\n`);
  const scope = new RunScope();
  const ctx: BenchContext = {
    quick: args.quick,
    scope,
    timeLeftMs,
    progress: (m) => process.stderr.write(`[${elapsed()}] ${label}: ${m}\n`),
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
  };
  try {
    const result = await withTimeout(c.run(target, ctx), Math.max(10_000, timeLeftMs() + 5000), label);
    const seconds = (Date.now() - t0) / 1000;
    const summary = c.metrics
      .map((m) => `${m.key}=${result.values[m.key]?.toFixed(m.unit === "msg/s" ? 0 : 1) ?? "n/a"}`)
      .join(" ");
    const cpu = [
      "publisherCpuPct",
      "subscriberCpuPct",
      "serverCpuPct",
      "serverACpuPct",
      "serverBCpuPct",
      "sinkCpuPct",
      "firehoseCpuPct",
    ]
      .filter((k) => typeof result.details[k] === "number")
      .map((k) => `${k.replace("CpuPct", "")} cpu ${result.details[k]}%`)
      .join(", ");
    process.stderr.write(
      `[${elapsed()}] ${label}: done in ${seconds.toFixed(1)} s: ${summary}${cpu ? ` (${cpu})` : ""}${
        result.warnings.length > 0 ? ` ⚠ ${result.warnings.join("; ")}` : ""
      }\n`,
    );
    return { ok: true, result, seconds };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    process.stderr.write(`[${elapsed()}] ${label}: FAILED: ${error.split("\n")[0]}\n`);
    return { ok: false, error, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await scope.close();
  }
}

/** The successful run whose primary (first) metric is the median; the first failure if none succeeded. */
function medianRun(c: BenchCase, runs: RunOutcome[]): RunOutcome {
  const key = c.chartMetric ?? c.metrics[0]?.key ?? "";
  const ok = runs
    .filter(
      (r): r is Extract<RunOutcome, { ok: true }> =>
        r.ok && Number.isFinite(r.result.values[key] ?? Number.NaN),
    )
    .sort((a, b) => a.result.values[key]! - b.result.values[key]!);
  const mid = ok[Math.floor((ok.length - 1) / 2)];
  return (
    mid ??
    runs.find((r) => !r.ok && !r.error.startsWith("skipped")) ??
    runs[0] ?? { ok: false, error: "not run", seconds: 0 }
  );
}

async function main(): Promise<void> {
  installExitHooks();
  const args = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const started = Date.now();
  const loadAtStart = loadavg();
  if ((loadAtStart[0] ?? 0) > cpus().length * 0.25) {
    process.stderr.write(
      `bench: warning: 1-minute load average is ${loadAtStart[0]?.toFixed(2)} on ${cpus().length} CPUs; other work will skew the figures\n`,
    );
  }
  const kinds: ServerKind[] = SERVER_COLUMNS.filter((k) => k !== "nats-server" || natsServerAvailable());
  if (!natsServerAvailable())
    process.stderr.write("bench: nats-server not on PATH, measuring bridgehead only\n");
  const cases = allCases().filter(
    (c) => args.only.length === 0 || args.only.some((s) => c.name.toLowerCase().includes(s)),
  );
  if (cases.length === 0) throw new Error(`no case matches --only ${args.only.join(", ")}`);

  const outcomes: CaseOutcome[] = [];
  const allRuns = new Map<BenchCase, Partial<Record<string, RunOutcome[]>>>();
  // The load generator rows run first, so the time budget never squeezes them out; the table keeps list order.
  const runOrder = [...cases.filter((c) => c.group === "info"), ...cases.filter((c) => c.group !== "info")];
  const cpuProfileDir = args.cpuProf ? join(root, "bench-results", "profiles") : undefined;
  if (cpuProfileDir) mkdirSync(cpuProfileDir, { recursive: true });
  for (const c of runOrder) {
    const targets: Target[] = c.group === "info" ? [null] : kinds;
    const reps: Partial<Record<string, RunOutcome[]>> = {};
    for (let r = 0; r < (c.group === "info" ? 1 : args.repeat); r++) {
      for (const t of targets) {
        const key = t ?? "generator";
        const list = reps[key] ?? [];
        reps[key] = list;
        list.push(
          await runOne(
            c,
            t,
            args,
            started,
            args.repeat > 1 && t ? ` (run ${r + 1}/${args.repeat})` : "",
            cpuProfileDir,
          ),
        );
      }
    }
    const runs: CaseOutcome["runs"] = {};
    for (const t of targets) runs[t ?? "generator"] = medianRun(c, reps[t ?? "generator"] ?? []);
    allRuns.set(c, reps);
    outcomes.push({ case: c, runs });
  }
  outcomes.sort((a, b) => cases.indexOf(a.case) - cases.indexOf(b.case));

  const machine = machineInfo(root, loadAtStart);
  const date = new Date().toISOString();
  const table = markdownTable(outcomes);
  const outDir = join(root, "bench-results");
  mkdirSync(outDir, { recursive: true });
  const json = {
    date,
    quick: args.quick,
    only: args.only,
    repeat: args.repeat,
    cpuProfiles: cpuProfileDir ?? null,
    durationSeconds: (Date.now() - started) / 1000,
    machine,
    cases: outcomes.map((o) => ({
      name: o.case.name,
      description: o.case.description,
      group: o.case.group,
      metrics: o.case.metrics,
      runs: Object.fromEntries(Object.entries(o.runs).map(([k, r]) => [k, r ? runJson(r) : null])),
      ...(args.repeat > 1
        ? {
            allRuns: Object.fromEntries(
              Object.entries(allRuns.get(o.case) ?? {}).map(([k, rs]) => [k, (rs ?? []).map(runJson)]),
            ),
          }
        : {}),
    })),
  };
  const machineLine = `${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform}, Node ${machine.node}, ${machine.natsServer ?? "nats-server not installed"}, load average at start ${machine.loadAverageAtStart.join(" / ")}`;
  const md = [
    `# Bridgehead benchmark — ${date}${args.quick ? " (quick)" : ""}${args.repeat > 1 ? ` (median of ${args.repeat} runs)` : ""}`,
    "",
    ...(cpuProfileDir
      ? [
          "**--cpu-prof**: the bridgehead region processes ran under the V8 profiler, which slows them down; these figures are not comparable.",
          "",
        ]
      : []),
    `Machine: ${machineLine}. Bridgehead commit ${machine.bridgeheadCommit ?? "?"}${machine.bridgeheadTreeDirty ? " (uncommitted changes)" : ""}.`,
    "",
    table,
    "",
  ].join("\n");
  writeFileSync(join(outDir, "latest.json"), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(outDir, "latest.md"), md);
  writeFileSync(
    join(outDir, "latest.svg"),
    svgChart(
      outcomes,
      `${machine.cpus} CPU ${machine.cpuModel}, Node ${machine.node}, ${date.slice(0, 10)}${args.quick ? ", quick" : ""}`,
    ),
  );
  process.stdout.write(`\n${table}\n`);
  process.stderr.write(
    `\nbench: done in ${((Date.now() - started) / 1000).toFixed(1)} s; wrote bench-results/latest.{json,md,svg}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
