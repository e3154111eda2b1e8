/**
 * Turning case outcomes into the markdown table (stdout and bench-results/latest.md), the JSON record
 * (latest.json) and the grouped bar chart of the throughput cases (latest.svg, hand-written SVG).
 */
import type { ServerKind } from "../test/helpers/servers.js";
import type { BenchCase, MetricDef, Result } from "./cases.js";

export type RunOutcome =
  | { readonly ok: true; readonly result: Result; readonly seconds: number }
  | { readonly ok: false; readonly error: string; readonly seconds: number };

/** Outcomes of one case: per server kind, or under "generator" for info cases. */
export interface CaseOutcome {
  readonly case: BenchCase;
  readonly runs: Partial<Record<ServerKind | "generator", RunOutcome>>;
}

export const SERVER_COLUMNS: readonly ServerKind[] = ["nats-server", "bridgehead"];

export function formatValue(v: number, unit: MetricDef["unit"]): string {
  if (unit === "msg/s") return `${Math.round(v).toLocaleString("en-US")} msg/s`;
  return `${v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US")} ${unit}`;
}

/** One line, no pipes, at most `max` characters: safe inside a markdown table cell. */
export function cellText(s: string, max = 90): string {
  const one = s.replace(/\s+/g, " ").replace(/\|/g, "/").trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** "failed to start: …" for server start failures, "error: …" for anything else. */
export function describeError(message: string): string {
  const m = /^(?:bridgehead|nats-server) (?:exited early|did not start[^:]*): ?(.*)$/s.exec(message);
  if (m) return `failed to start: ${m[1]?.trim() || "no output"}`;
  return message.startsWith("skipped") ? message : `error: ${message}`;
}

function cell(run: RunOutcome | undefined, metric: MetricDef): string {
  if (!run) return "not run";
  if (!run.ok) return `n/a (${cellText(describeError(run.error))})`;
  const v = run.result.values[metric.key];
  const warn = run.result.warnings.length > 0 ? " ⚠" : "";
  return v === undefined || !Number.isFinite(v) ? `n/a${warn}` : `${formatValue(v, metric.unit)}${warn}`;
}

function value(run: RunOutcome | undefined, key: string): number | undefined {
  if (!run?.ok) return undefined;
  const v = run.result.values[key];
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

export function markdownTable(outcomes: readonly CaseOutcome[]): string {
  const lines = [
    "| case | nats-server | bridgehead | ratio (bridgehead/nats-server) |",
    "| --- | ---: | ---: | ---: |",
  ];
  const notes: string[] = [];
  for (const o of outcomes) {
    for (const m of o.case.metrics) {
      const name = `${o.case.name} ${m.label}`;
      if (o.case.group === "info") {
        const c = cell(o.runs.generator, m);
        lines.push(`| ${name} | ${c} | ${c} | info |`);
        continue;
      }
      const n = value(o.runs["nats-server"], m.key);
      const b = value(o.runs.bridgehead, m.key);
      const ratio = n !== undefined && b !== undefined && n > 0 ? `${(b / n).toFixed(2)}×` : "—";
      lines.push(
        `| ${name} | ${cell(o.runs["nats-server"], m)} | ${cell(o.runs.bridgehead, m)} | ${ratio} |`,
      );
    }
    for (const [kind, run] of Object.entries(o.runs)) {
      if (run?.ok)
        for (const w of run.result.warnings) notes.push(`- ⚠ ${o.case.name} · ${kind}: ${cellText(w, 300)}`);
    }
  }
  return [
    ...lines,
    "",
    "Ratio = bridgehead ÷ nats-server: for throughput rows (msg/s) above 1 means bridgehead is faster; for",
    "latency rows (µs) below 1 means bridgehead is faster. Info rows measure the load generator alone (no",
    "server), so the same figure stands in both columns.",
    ...(notes.length > 0 ? ["", ...notes] : []),
  ].join("\n");
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function shortRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(v));
}

/**
 * One row per throughput case (its chart metric), a bar per server kind, on a logarithmic axis: the rows
 * span from WAN links (tens of thousands of messages per second) to one broker (millions), and a linear
 * axis would flatten the small ones to nothing. Labels sit left of the rows and the ratio right of them, so
 * long case names never overlap.
 */
export function svgChart(outcomes: readonly CaseOutcome[], subtitle: string): string {
  const rows = outcomes.filter((o) => o.case.group === "throughput" && o.case.chartMetric);
  const colors: Record<ServerKind, string> = { "nats-server": "#2f6fdb", bridgehead: "#e8833a" };
  const left = 330;
  const right = 90;
  const top = 70;
  const barH = 12;
  const rowH = barH * SERVER_COLUMNS.length + 14;
  const W = 980;
  const H = top + rows.length * rowH + 70;
  const plotW = W - left - right;
  const vals = rows
    .flatMap((o) => SERVER_COLUMNS.map((k) => value(o.runs[k], o.case.chartMetric!) ?? 0))
    .filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.max(1, Math.min(...vals, 1e9))));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(10, ...vals)));
  const x = (v: number) =>
    left + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Bridgehead vs nats-server: delivered messages per second</text>`,
    `<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${escapeXml(subtitle)} · log scale · ratio = bridgehead ÷ nats-server</text>`,
  ];
  const bottom = top + rows.length * rowH;
  for (let d = lo; d <= hi; d *= 10) {
    const xx = x(d).toFixed(1);
    out.push(`<line x1="${xx}" y1="${top - 6}" x2="${xx}" y2="${bottom}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${xx}" y="${bottom + 16}" text-anchor="middle">${shortRate(d)}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top - 6}" x2="${left}" y2="${bottom}" stroke="#333"/>`);
  rows.forEach((o, ri) => {
    const y0 = top + ri * rowH;
    out.push(
      `<text x="${left - 8}" y="${(y0 + (barH * SERVER_COLUMNS.length) / 2).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${escapeXml(o.case.name)}</text>`,
    );
    const got: Partial<Record<ServerKind, number>> = {};
    SERVER_COLUMNS.forEach((kind, ki) => {
      const y = y0 + ki * barH;
      const v = value(o.runs[kind], o.case.chartMetric!);
      if (v === undefined) {
        out.push(
          `<text x="${left + 6}" y="${y + barH - 2}" fill="${colors[kind]}" font-size="11">n/a</text>`,
        );
        return;
      }
      got[kind] = v;
      const w = Math.max(1, x(v) - left);
      out.push(
        `<rect x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[kind]}"><title>${escapeXml(`${kind}: ${formatValue(v, "msg/s")}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 2}" font-size="10">${shortRate(v)}</text>`,
      );
    });
    const a = got.bridgehead;
    const b = got["nats-server"];
    if (a !== undefined && b !== undefined && b > 0) {
      const r = a / b;
      out.push(
        `<text x="${W - right + 70}" y="${(y0 + (barH * SERVER_COLUMNS.length) / 2).toFixed(1)}" text-anchor="end" dominant-baseline="middle" font-weight="bold" fill="${r >= 1 ? "#1a7f37" : "#555"}">${r.toFixed(2)}×</text>`,
      );
    }
  });
  SERVER_COLUMNS.forEach((kind, i) => {
    const lx = left + i * 130;
    out.push(`<rect x="${lx}" y="${H - 30}" width="12" height="12" fill="${colors[kind]}"/>`);
    out.push(`<text x="${lx + 18}" y="${H - 20}">${kind}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
