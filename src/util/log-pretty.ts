/**
 * Human-readable log lines for a terminal: pino still builds each event as JSON (one code path for both
 * formats); this destination turns the line into `time LEVEL [region → peer] message key=value …`.
 * Hand-written rather than pino-pretty so the CLI needs no worker thread or extra dependency, and the write
 * stays synchronous (nothing lost when the process exits right after logging).
 */
import { writeSync } from "node:fs";

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: "TRACE", color: "\x1b[90m" },
  20: { name: "DEBUG", color: "\x1b[36m" },
  30: { name: "INFO", color: "\x1b[32m" },
  40: { name: "WARN", color: "\x1b[33m" },
  50: { name: "ERROR", color: "\x1b[31m" },
  60: { name: "FATAL", color: "\x1b[35m" },
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

/** Fields shown in the prefix (or not at all), not in the key=value tail. */
const OMITTED = new Set(["level", "time", "msg", "pid", "hostname", "name", "region", "peer", "err", "v"]);

function value(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

function clock(ms: unknown): string {
  const d = new Date(typeof ms === "number" ? ms : Date.now());
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** One pino JSON line as text (no trailing newline); a line that is not JSON is returned as it is. */
export function prettyLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return json.trimEnd();
    o = parsed as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const lvl = LEVELS[typeof o["level"] === "number" ? o["level"] : 30] ?? { name: "LOG", color: "" };
  const c = (code: string, s: string) => (color ? `${code}${s}${RESET}` : s);
  const where =
    o["region"] === undefined
      ? ""
      : ` [${String(o["region"])}${o["peer"] === undefined ? "" : ` → ${String(o["peer"])}`}]`;
  const tail = Object.entries(o)
    .filter(([k]) => !OMITTED.has(k))
    .map(([k, v]) => `${c(DIM, `${k}=`)}${value(v)}`)
    .join(" ");
  let line = `${c(DIM, clock(o["time"]))} ${c(lvl.color, lvl.name.padEnd(5))}${where} ${String(o["msg"] ?? "")}`;
  if (tail !== "") line += `  ${tail}`;
  const err = o["err"];
  if (err !== null && typeof err === "object") {
    const e = err as { message?: unknown; stack?: unknown };
    line += `\n    ${String(typeof e.stack === "string" ? e.stack : e.message).replace(/\n/g, "\n    ")}`;
  } else if (err !== undefined) {
    line += `  err=${value(err)}`;
  }
  return line;
}

/** A pino destination writing pretty lines to a file descriptor (stderr by default), synchronously. */
export function prettyDestination(fd = 2, color = true): { write(line: string): void } {
  return {
    write(line: string) {
      writeSync(fd, `${prettyLine(line, color)}\n`);
    },
  };
}
