/**
 * YAML text -> a validated, typed config, or a ConfigError listing every problem at once, each with the
 * file, line and column, the key path, what was expected and what was found.
 *
 * Steps: parse with positions kept (yaml's Document + LineCounter) -> expand ${VAR} / ${VAR:-default}
 * in string scalars -> check shapes with the zod schema -> read token files -> cross-checks on the whole
 * file (validate.ts). Secrets (tokens, passwords) are never echoed in an error.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { closest } from "fastest-levenshtein";
import { type Document, isMap, isPair, isScalar, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem, formatPath, type Path } from "./errors.js";
import { type BridgeheadConfig, config as configSchema } from "./schema.js";
import { crossCheck } from "./validate.js";

export interface LoadOptions {
  /** Shown in errors; also the base for relative token_file paths. */
  readonly file?: string;
  /** Variables for ${VAR}; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reads token files; default fs.readFileSync. */
  readonly readFile?: (path: string) => string;
}

/** The config plus, per link, the token resolved from `token` or `token_file`. */
export interface LoadedConfig {
  readonly file: string | undefined;
  readonly config: BridgeheadConfig;
  /** Link index -> token. Kept apart from the config so printing the config never prints secrets. */
  readonly linkTokens: readonly string[];
}

const SECRET_KEYS = new Set(["token", "password", "pass"]);

/** Keys allowed at each place, for "did you mean" suggestions (`*` = any list index). */
const KNOWN_KEYS: readonly [string, readonly string[]][] = [
  ["", ["logging", "metrics", "regions", "links", "chaos"]],
  ["chaos", ["enabled", "toxiproxy_url", "listen", "heartbeat"]],
  ["logging", ["level", "format"]],
  ["metrics", ["enabled"]],
  ["regions.*", ["name", "broker", "gateway", "monitor"]],
  ["regions.*.broker", ["type", "listen", "auth", "max_payload", "urls", "user", "password"]],
  ["regions.*.broker.auth", ["token", "users", "timeout"]],
  ["regions.*.broker.auth.users.*", ["user", "password"]],
  ["regions.*.gateway", ["listen", "url"]],
  ["regions.*.monitor", ["listen"]],
  ["links.*", ["between", "token", "token_file", "export", "import", "outbox", "compression"]],
  ["links.*.outbox", ["max_bytes", "max_messages", "max_age", "drop"]],
];

function pathPattern(path: Path): string {
  return path.map((p) => (typeof p === "number" ? "*" : p)).join(".");
}

export function loadConfigFile(file: string, options: Omit<LoadOptions, "file"> = {}): LoadedConfig {
  let text: string;
  try {
    text = (options.readFile ?? ((p) => readFileSync(p, "utf8")))(file);
  } catch (err) {
    throw new ConfigError([
      {
        file,
        line: 0,
        column: 0,
        path: "",
        message: `cannot read the config file: ${(err as Error).message}`,
      },
    ]);
  }
  return loadConfig(text, { ...options, file });
}

export function loadConfig(text: string, options: LoadOptions = {}): LoadedConfig {
  const file = options.file;
  const env = options.env ?? process.env;
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const at = (offset: number) => {
    const p = lc.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  for (const e of doc.errors) {
    problems.push({ ...at(e.pos[0]), path: "", message: e.message.split("\n")[0] ?? e.message });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  // ${VAR} and ${VAR:-default} in string values, before validation so the expanded value is checked.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== "string" || !node.value.includes("${")) return;
      node.value = node.value.replace(
        /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
        (_m, name: string, def?: string) => {
          const v = env[name];
          if (v !== undefined && v !== "") return v;
          if (def !== undefined) return def;
          problems.push({
            ...at(node.range?.[0] ?? 0),
            path: "",
            message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)`,
          });
          return "";
        },
      );
    },
  });

  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    // An alias to a missing anchor, or an alias expansion bomb: a problem with the file, not a crash.
    let offset = 0;
    visit(doc, {
      Alias(_key, node) {
        if (offset === 0) offset = node.range?.[0] ?? 0;
      },
    });
    problems.push({ ...at(offset), path: "", message: `cannot resolve the YAML: ${(err as Error).message}` });
    throw new ConfigError(problems);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...issueToProblems(issue, doc, lc, file, raw));
  }
  const linkTokens = readTokens(raw, doc, lc, file, options, problems);
  const crossProblems = crossCheck(parsed.success ? parsed.data : (raw as Record<string, unknown>));
  for (const p of crossProblems) {
    problems.push({ ...position(doc, lc, file, p.path), path: formatPath(p.path), message: p.message });
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  const cfg = parsed.data;

  return { file, config: cfg, linkTokens };
}

/**
 * Each link's token: inline, or read from `token_file` relative to the config file (trimmed). Read from
 * the raw YAML so unreadable files are reported with every other problem of the file.
 */
function readTokens(
  raw: unknown,
  doc: Document,
  lc: LineCounter,
  file: string | undefined,
  options: LoadOptions,
  problems: ConfigProblem[],
): string[] {
  const links = Array.isArray((raw as { links?: unknown } | null)?.links)
    ? (raw as { links: unknown[] }).links
    : [];
  const base = file === undefined ? process.cwd() : dirname(resolve(file));
  const read = options.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  return links.map((l, i) => {
    const link = (l ?? {}) as { token?: unknown; token_file?: unknown };
    if (typeof link.token === "string") return link.token;
    if (typeof link.token_file !== "string" || link.token_file === "") return "";
    const path = resolve(base, link.token_file);
    try {
      const t = read(path).trim();
      if (t === "") throw new Error("the file is empty");
      return t;
    } catch (err) {
      problems.push({
        ...position(doc, lc, file, ["links", i, "token_file"]),
        path: formatPath(["links", i, "token_file"]),
        message: `cannot read the token file ${path}: ${(err as Error).message}`,
      });
      return "";
    }
  });
}

/** file/line/column of the value at `path` (or of its nearest existing parent). */
export function position(
  doc: Document,
  lc: LineCounter,
  file: string | undefined,
  path: Path,
  ofKey?: string,
) {
  let p = [...path];
  let node: unknown = doc.getIn(p, true);
  while (node === undefined && p.length > 0) {
    p = p.slice(0, -1);
    node = p.length === 0 ? doc.contents : doc.getIn(p, true);
  }
  let offset = (node as Node | undefined)?.range?.[0] ?? 0;
  if (ofKey !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === ofKey);
    if (pair && isScalar(pair.key)) offset = pair.key.range?.[0] ?? offset;
  }
  const lp = lc.linePos(offset);
  return { file, line: lp.line, column: lp.col };
}

export function valueAt(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** What was found at `path`, for an error message (secrets and URL passwords never shown). */
export function describe(v: unknown, path: Path): string {
  const last = path[path.length - 1];
  if (typeof last === "string" && SECRET_KEYS.has(last) && v !== undefined)
    return "a value (not shown: it is a secret)";
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") {
    // A URL's user:password never goes into an error.
    const shown = v.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1***@");
    return JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown);
  }
  return String(v);
}

function issueToProblems(
  issue: z.core.$ZodIssue,
  doc: Document,
  lc: LineCounter,
  file: string | undefined,
  raw: unknown,
): ConfigProblem[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const known = KNOWN_KEYS.find(([pat]) => pat === pathPattern(path))?.[1] ?? [];
    return issue.keys.map((k) => {
      const hint = known.length > 0 ? `; did you mean '${closest(k, [...known])}'?` : "";
      return {
        ...position(doc, lc, file, path, k),
        path: formatPath([...path, k]),
        message: `unknown key '${k}'${hint} (known here: ${known.join(", ")})`,
      };
    });
  }
  const found = describe(valueAt(raw, path), path);
  let expected = issue.message;
  if (issue.code === "invalid_type") expected = `expected ${issue.expected}`;
  if (issue.code === "invalid_value" && "values" in issue) {
    expected = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  if (issue.code === "too_small" && issue.origin === "array")
    expected = `expected at least ${issue.minimum} item(s)`;
  if (issue.code === "too_small" && issue.origin === "string") expected = "expected a non-empty string";
  const brokerType =
    path[path.length - 1] === "broker" ||
    (path[path.length - 1] === "type" && path[path.length - 2] === "broker");
  if (brokerType && (issue.code === "invalid_union" || issue.code === "invalid_value")) {
    expected = "expected a broker with type embedded (listen, auth) or nats (urls)";
  }
  return [
    { ...position(doc, lc, file, path), path: formatPath(path), message: `${expected}, found ${found}` },
  ];
}
