/**
 * Process logger: pino JSON lines on stderr (stdout stays free for command output). The level comes from
 * `BRIDGEHEAD_LOG_LEVEL` (default `info`). Writes are synchronous so nothing is lost when the process exits.
 */
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

export function createLogger(bindings: Record<string, unknown> = {}, level?: string): Logger {
  const envLevel = process.env.BRIDGEHEAD_LOG_LEVEL?.toLowerCase();
  const chosen = level ?? (envLevel && LEVELS.has(envLevel) ? envLevel : "info");
  return pino(
    { level: chosen, base: { pid: process.pid, ...bindings } },
    pino.destination({ dest: 2, sync: true }),
  );
}
