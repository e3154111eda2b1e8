/**
 * Process logger: pino on stderr (stdout stays free for command output), one JSON line per event, or
 * readable lines when stderr is a terminal (format `auto`, the default) or when `pretty` is asked for.
 * The level comes from `BRIDGEHEAD_LOG_LEVEL` (default `info`). Writes are synchronous so nothing is lost
 * when the process exits.
 */
import { type Logger, pino } from "pino";
import { prettyDestination } from "./log-pretty.js";

export type { Logger } from "pino";

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** `logging.format` of the config: `auto` is pretty on a terminal, JSON otherwise. */
export type LogFormat = "auto" | "json" | "pretty";

/** Whether `format` means readable lines here; `BRIDGEHEAD_LOG_FORMAT` (json, pretty) overrides `auto`. */
export function isPretty(format: LogFormat = "auto", stderrIsTty = process.stderr.isTTY === true): boolean {
  const env = process.env.BRIDGEHEAD_LOG_FORMAT?.toLowerCase();
  const chosen = format === "auto" && (env === "json" || env === "pretty") ? env : format;
  return chosen === "pretty" || (chosen === "auto" && stderrIsTty);
}

export function createLogger(
  bindings: Record<string, unknown> = {},
  level?: string,
  format: LogFormat = "auto",
): Logger {
  const envLevel = process.env.BRIDGEHEAD_LOG_LEVEL?.toLowerCase();
  const chosen = level ?? (envLevel && LEVELS.has(envLevel) ? envLevel : "info");
  const pretty = isPretty(format);
  return pino(
    { level: chosen, base: { pid: process.pid, ...bindings } },
    pretty
      ? prettyDestination(2, process.stderr.isTTY === true && process.env.NO_COLOR === undefined)
      : pino.destination({ dest: 2, sync: true }),
  );
}
