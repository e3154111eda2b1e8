/**
 * Scenario YAML -> a validated scenario plus its loaded topology, or a ScenarioError listing every problem at
 * once with file:line:column, the key path, what was expected and what was found: the same steps and message
 * format as the config loader (src/config/load.ts), whose position helpers this reuses.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, extname, resolve } from "node:path";
import { closest } from "fastest-levenshtein";
import { type Document, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem, formatPath, formatProblem } from "../../config/errors.js";
import { describe, type LoadedConfig, loadConfigFile, position, valueAt } from "../../config/load.js";
import { BridgeheadError } from "../../util/errors.js";
import { checkScenario } from "./checks.js";
import { SCENARIO_KEYS, type Scenario, scenario as scenarioSchema } from "./schema.js";

/** Every problem of a scenario file (and of its topology file), reported together. */
export class ScenarioError extends BridgeheadError {
  override readonly name = "ScenarioError";

  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      problems.length === 1
        ? formatProblem(problems[0]!)
        : `${problems.length} problems in the scenario:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`,
    );
  }
}

export interface LoadedScenario {
  readonly file: string | undefined;
  /** The scenario's name, or the file's base name. */
  readonly name: string;
  readonly scenario: Scenario;
  readonly topologyFile: string;
  readonly topology: LoadedConfig;
}

export interface ScenarioLoadOptions {
  readonly file?: string;
  /** Variables for ${VAR} in the topology; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function loadScenarioFile(
  file: string,
  options: Omit<ScenarioLoadOptions, "file"> = {},
): LoadedScenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ScenarioError([
      {
        file,
        line: 0,
        column: 0,
        path: "",
        message: `cannot read the scenario file: ${(err as Error).message}`,
      },
    ]);
  }
  return loadScenario(text, { ...options, file });
}

function pathPattern(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === "number" ? "*" : p)).join(".");
}

function issueToProblem(
  issue: z.core.$ZodIssue,
  doc: Document,
  lc: LineCounter,
  file: string | undefined,
  raw: unknown,
): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const known = SCENARIO_KEYS.find(([pat]) => pat === pathPattern(path))?.[1] ?? [];
    return issue.keys.map((k) => ({
      ...position(doc, lc, file, path, k),
      path: formatPath([...path, k]),
      message: `unknown key '${k}'${known.length > 0 ? `; did you mean '${closest(k, [...known])}'?` : ""} (known here: ${known.join(", ")})`,
    }));
  }
  let expected = issue.message;
  if (issue.code === "invalid_type") expected = `expected ${issue.expected}`;
  if (issue.code === "invalid_value" && "values" in issue) {
    expected = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  if (issue.code === "invalid_union" && path[path.length - 1] === "action") {
    expected = "expected an action: toxic, partition, kill, restart or heal";
  }
  if (issue.code === "too_small" && issue.origin === "string") expected = "expected a non-empty string";
  // Custom checks (toxic attributes, partitions) say what is wrong themselves.
  const found = issue.code === "custom" ? "" : `, found ${describe(valueAt(raw, path), path)}`;
  return [{ ...position(doc, lc, file, path), path: formatPath(path), message: `${expected}${found}` }];
}

export function loadScenario(text: string, options: ScenarioLoadOptions = {}): LoadedScenario {
  const file = options.file;
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    throw new ScenarioError(
      doc.errors.map((e) => ({ ...at(e.pos[0]), path: "", message: e.message.split("\n")[0] ?? e.message })),
    );
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw new ScenarioError([
      { ...at(0), path: "", message: `cannot resolve the YAML: ${(err as Error).message}` },
    ]);
  }
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ScenarioError(parsed.error.issues.flatMap((i) => issueToProblem(i, doc, lc, file, raw)));
  }
  const s = parsed.data;
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  const topologyFile = resolve(base, s.topology);
  let topology: LoadedConfig;
  try {
    topology = loadConfigFile(topologyFile, { env: options.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // The topology's own problems point into the topology file; an unreadable file is this file's problem.
    throw new ScenarioError(
      err.problems.map((p) =>
        p.line === 0 ? { ...position(doc, lc, file, ["topology"]), path: "topology", message: p.message } : p,
      ),
    );
  }
  const problems = checkScenario(s, topology.config).map((p) => ({
    ...position(doc, lc, file, p.path),
    path: formatPath(p.path),
    message: p.message,
  }));
  if (problems.length > 0) throw new ScenarioError(problems);
  const name = s.name ?? (file === undefined ? "scenario" : basename(file, extname(file)));
  return { file, name, scenario: s, topologyFile, topology };
}
