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

function niceCeil(v: number): number {
  if (v <= 0) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (f * exp >= v) return f * exp;
  return 10 * exp;
}

function shortRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(v));
}

/** Grouped bars: one group per throughput case (its chart metric), one bar per server kind. */
export function svgChart(outcomes: readonly CaseOutcome[], subtitle: string): string {
  const groups = outcomes.filter((o) => o.case.group === "throughput" && o.case.chartMetric);
  const colors: Record<ServerKind, string> = { "nats-server": "#2f6fdb", bridgehead: "#e8833a" };
  const W = 760;
  const H = 440;
  const left = 100;
  const right = 30;
  const top = 70;
  const bottom = 90;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const vals = groups.flatMap((o) => SERVER_COLUMNS.map((k) => value(o.runs[k], o.case.chartMetric!) ?? 0));
  const max = niceCeil(Math.max(1, ...vals));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Bridgehead vs nats-server: throughput</text>`,
    `<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const v = (max / ticks) * i;
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${W - right}" y2="${yy}" stroke="${i === 0 ? "#333" : "#e3e3e3"}"/>`,
    );
    out.push(
      `<text x="${left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${shortRate(v)}</text>`,
    );
  }
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`);
  out.push(
    `<text transform="translate(24 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">delivered messages per second</text>`,
  );
  out.push(
    `<text x="${left + plotW / 2}" y="${H - 22}" text-anchor="middle">case (1 publisher → 1 subscriber, one subject; cross-region: publisher in A, subscriber in B)</text>`,
  );
  const groupW = plotW / Math.max(1, groups.length);
  const barW = Math.min(90, (groupW * 0.7) / SERVER_COLUMNS.length);
  groups.forEach((o, gi) => {
    const gx = left + groupW * gi + (groupW - barW * SERVER_COLUMNS.length) / 2;
    SERVER_COLUMNS.forEach((kind, ki) => {
      const x = gx + barW * ki;
      const v = value(o.runs[kind], o.case.chartMetric!);
      if (v === undefined) {
        out.push(
          `<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH - 8}" text-anchor="middle" fill="${colors[kind]}">n/a</text>`,
        );
        return;
      }
      const yy = y(v);
      out.push(
        `<rect x="${(x + 2).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(top + plotH - yy).toFixed(1)}" fill="${colors[kind]}"><title>${escapeXml(`${kind}: ${formatValue(v, "msg/s")}`)}</title></rect>`,
      );
      out.push(
        `<text x="${(x + barW / 2).toFixed(1)}" y="${(yy - 5).toFixed(1)}" text-anchor="middle" font-size="11">${shortRate(v)}</text>`,
      );
    });
    out.push(
      `<text x="${(left + groupW * gi + groupW / 2).toFixed(1)}" y="${top + plotH + 20}" text-anchor="middle">${escapeXml(o.case.name)}</text>`,
    );
  });
  SERVER_COLUMNS.forEach((kind, i) => {
    const lx = W - right - 260 + i * 130;
    out.push(`<rect x="${lx}" y="${H - 50}" width="12" height="12" fill="${colors[kind]}"/>`);
    out.push(`<text x="${lx + 18}" y="${H - 40}">${kind}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
