/**
 * Runs scenario YAML in-process for the scenario suites: writes the topology and the scenario to a temp
 * directory, loads them the way `bridgehead chaos run` does, runs them (embedded Toxiproxy unless
 * TOXIPROXY_URL is set) and removes the directory. Regions listen on 127.0.0.1 with free ports.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  loadScenarioFile,
  type RunOptions,
  runScenario,
  type ScenarioResult,
} from "../../src/chaos/scenario/index.js";

function region(name: string): string {
  return `  - name: ${name}\n    broker: { listen: 127.0.0.1:0 }\n    gateway: { listen: 127.0.0.1:0 }\n`;
}

function topology(names: readonly string[], links: readonly (readonly [string, string])[]): string {
  return `regions:\n${names.map(region).join("")}links:\n${links.map(([a, b]) => `  - { between: [${a}, ${b}], token: chaos-test }\n`).join("")}`;
}

/** a dials b. */
export const TWO_REGIONS = topology(["a", "b"], [["a", "b"]]);
/** A triangle: a dials b, b dials c, c dials a. */
export const THREE_REGIONS = topology(
  ["a", "b", "c"],
  [
    ["a", "b"],
    ["b", "c"],
    ["c", "a"],
  ],
);

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "bh-chaos-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `scenario` is the scenario YAML without its `topology` key. */
export async function runYaml(
  topologyYaml: string,
  scenario: string,
  options: Omit<RunOptions, "logger"> = {},
): Promise<ScenarioResult> {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, "topology.yaml"), topologyYaml);
    const file = join(t.dir, "scenario.yaml");
    writeFileSync(file, `topology: topology.yaml\n${scenario}`);
    return await runScenario(loadScenarioFile(file), {
      ...options,
      logger: pino({ level: process.env.BH_TEST_LOG ?? "silent" }),
    });
  } finally {
    t.remove();
  }
}

export function receiver(r: ScenarioResult, key: string): ScenarioResult["receivers"][number] {
  const x = r.receivers.find((y) => y.key === key);
  if (x === undefined)
    throw new Error(`no receiver ${key} (have ${r.receivers.map((y) => y.key).join(", ")})`);
  return x;
}

export function link(r: ScenarioResult, name: string): ScenarioResult["links"][number] {
  const x = r.links.find((y) => y.link === name);
  if (x === undefined) throw new Error(`no link ${name}`);
  return x;
}

/** A one-line account of a run, printed by the suites so measured figures show up in the test log. */
export function figures(r: ScenarioResult): string {
  return `${r.scenario.name}: sent ${r.totals.messagesSent}, lost ${r.totals.lost} (${r.totals.lostOutsideFaults} outside faults), dups ${r.totals.duplicates}, p99 outside ${r.latency.outsideFaults.p99} ms, during ${r.latency.duringFaults.p99} ms, convergence ${r.recoveries.map((x) => x.convergenceMs).join("/")} ms, wall ${r.wallMs} ms`;
}
