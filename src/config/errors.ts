import { BridgeheadError } from "../util/errors.js";

export type Path = readonly (string | number)[];

/** `regions[1].gateway.listen` */
export function formatPath(path: Path): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? p : `.${p}`;
  return s === "" ? "(top level)" : s;
}

/** One thing wrong with a config file, with where it is. Line and column are 1-based (0 = unknown). */
export interface ConfigProblem {
  readonly file: string | undefined;
  readonly line: number;
  readonly column: number;
  /** The key path, e.g. `regions[1].gateway.listen`; "" when the problem is not about one key. */
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line > 0 ? `${p.file ?? "<config>"}:${p.line}:${p.column}` : (p.file ?? "<config>");
  return p.path === "" ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

/** Every problem found in a config, reported together. */
export class ConfigError extends BridgeheadError {
  override readonly name = "ConfigError";

  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      problems.length === 1
        ? formatProblem(problems[0]!)
        : `${problems.length} problems in the config:\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`,
    );
  }
}
