/**
 * Inline SVG charts for the HTML report: series over the run's time axis, with fault windows shaded (dark
 * while the fault is on, light until the system recovered). No scripts, fonts or network: the report must
 * open from a file anywhere.
 */

export interface Series {
  readonly label: string;
  readonly color: string;
  /** [x ms, y] points; a null y breaks the line. */
  readonly points: readonly (readonly [number, number | null])[];
  readonly dashed?: boolean;
  /** Draw bars instead of a line. */
  readonly bars?: boolean;
}

export interface Shade {
  readonly start: number;
  readonly end: number;
  readonly recoveredAt: number | undefined;
  readonly label: string;
}

export interface ChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly endMs: number;
  readonly bucketMs: number;
  readonly series: readonly Series[];
  readonly shades: readonly Shade[];
  /** Logarithmic y axis (latencies span 1 ms to seconds). */
  readonly log?: boolean;
  /** Vertical lines, e.g. where the workload stopped. */
  readonly markers?: readonly { readonly at: number; readonly label: string }[];
}

const W = 900;
const H = 240;
const M = { left: 64, right: 16, top: 28, bottom: 36 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 1 : 0));

/** Round-ish tick steps: 1, 2, 5 x 10^k. */
function niceStep(span: number, count: number): number {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

function timeTicks(endMs: number): number[] {
  const step = niceStep(endMs / 1000, 10) * 1000;
  const out: number[] = [];
  for (let t = 0; t <= endMs; t += step) out.push(t);
  return out;
}

export function chart(o: ChartOptions): string {
  const endMs = Math.max(o.endMs, 1);
  const x = (t: number) => M.left + (Math.min(Math.max(t, 0), endMs) / endMs) * PW;
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1])).filter((v): v is number => v !== null);
  let y: (v: number) => number;
  let yTicks: number[];
  if (o.log) {
    const lo = Math.max(0.1, Math.min(...ys.filter((v) => v > 0), 1));
    const hi = Math.max(10, ...ys);
    const l0 = Math.floor(Math.log10(lo));
    const l1 = Math.ceil(Math.log10(hi));
    y = (v) => M.top + PH - ((Math.log10(Math.max(v, 10 ** l0)) - l0) / (l1 - l0)) * PH;
    yTicks = Array.from({ length: l1 - l0 + 1 }, (_, i) => 10 ** (l0 + i));
  } else {
    const hi = Math.max(1, ...ys);
    const step = niceStep(hi, 5);
    const top = Math.ceil(hi / step) * step;
    y = (v) => M.top + PH - (v / top) * PH;
    yTicks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
  }
  const parts: string[] = [];
  parts.push(`<text x="${M.left}" y="18" class="title">${escapeXml(o.title)}</text>`);
  for (const s of o.shades) {
    const x0 = x(s.start);
    const x1 = x(s.end);
    parts.push(
      `<rect x="${x0.toFixed(1)}" y="${M.top}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${PH}" class="fault"><title>${escapeXml(s.label)}</title></rect>`,
    );
    if (s.recoveredAt !== undefined && s.recoveredAt > s.end) {
      const r1 = x(s.recoveredAt);
      parts.push(
        `<rect x="${x1.toFixed(1)}" y="${M.top}" width="${Math.max(1, r1 - x1).toFixed(1)}" height="${PH}" class="recovery"><title>${escapeXml(`${s.label}: recovering`)}</title></rect>`,
      );
    }
  }
  for (const t of yTicks) {
    const py = y(t).toFixed(1);
    parts.push(`<line x1="${M.left}" x2="${M.left + PW}" y1="${py}" y2="${py}" class="grid"/>`);
    parts.push(`<text x="${M.left - 6}" y="${py}" class="ytick">${fmt(t)}</text>`);
  }
  for (const t of timeTicks(endMs)) {
    const px = x(t).toFixed(1);
    parts.push(`<line x1="${px}" x2="${px}" y1="${M.top + PH}" y2="${M.top + PH + 4}" class="axis"/>`);
    parts.push(`<text x="${px}" y="${M.top + PH + 16}" class="xtick">${fmt(t / 1000)}s</text>`);
  }
  parts.push(
    `<text x="14" y="${M.top + PH / 2}" class="ylabel" transform="rotate(-90 14 ${M.top + PH / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  const barW = Math.max(1, (o.bucketMs / endMs) * PW - 1);
  for (const s of o.series) {
    if (s.bars) {
      for (const [t, v] of s.points) {
        if (v === null || v <= 0) continue;
        const top = y(v);
        parts.push(
          `<rect x="${x(t).toFixed(1)}" y="${top.toFixed(1)}" width="${barW.toFixed(1)}" height="${(M.top + PH - top).toFixed(1)}" fill="${s.color}" opacity="0.8"/>`,
        );
      }
      continue;
    }
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d !== "") {
      parts.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 4"' : ""}/>`,
      );
    }
  }
  for (const m of o.markers ?? []) {
    const px = x(m.at).toFixed(1);
    parts.push(
      `<line x1="${px}" x2="${px}" y1="${M.top}" y2="${M.top + PH}" class="marker"/><text x="${px}" y="${M.top + 12}" class="marker-label">${escapeXml(m.label)}</text>`,
    );
  }
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${PW}" height="${PH}" class="frame"/>`);
  let lx = M.left + PW;
  const legend: string[] = [];
  for (const s of [...o.series].reverse()) {
    const w = 24 + s.label.length * 6.5;
    lx -= w;
    legend.push(
      `<rect x="${lx.toFixed(1)}" y="10" width="12" height="8" fill="${s.color}"/><text x="${(lx + 16).toFixed(1)}" y="18" class="legend">${escapeXml(s.label)}</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeXml(o.title)}">${parts.join("")}${legend.join("")}</svg>`;
}

export interface Lane {
  readonly label: string;
  readonly transitions: readonly { readonly at: number; readonly up: boolean }[];
}

/** One row per link: green while up, red while down. */
export function lanes(title: string, rows: readonly Lane[], endMs: number, shades: readonly Shade[]): string {
  const rowH = 18;
  const h = M.top + rows.length * (rowH + 6) + 28;
  const end = Math.max(endMs, 1);
  const x = (t: number) => M.left + 80 + (Math.min(Math.max(t, 0), end) / end) * (PW - 80);
  const parts: string[] = [`<text x="${M.left}" y="18" class="title">${escapeXml(title)}</text>`];
  for (const s of shades) {
    parts.push(
      `<rect x="${x(s.start).toFixed(1)}" y="${M.top}" width="${Math.max(1, x(s.end) - x(s.start)).toFixed(1)}" height="${rows.length * (rowH + 6)}" class="fault"/>`,
    );
  }
  rows.forEach((r, i) => {
    const top = M.top + i * (rowH + 6);
    parts.push(`<text x="${M.left + 74}" y="${top + 13}" class="ytick">${escapeXml(r.label)}</text>`);
    r.transitions.forEach((tr, k) => {
      const until = r.transitions[k + 1]?.at ?? end;
      parts.push(
        `<rect x="${x(tr.at).toFixed(1)}" y="${top}" width="${Math.max(1, x(until) - x(tr.at)).toFixed(1)}" height="${rowH}" class="${tr.up ? "up" : "down"}"><title>${escapeXml(`${r.label} ${tr.up ? "up" : "down"} from ${fmt(tr.at / 1000)}s`)}</title></rect>`,
      );
    });
  });
  for (const t of timeTicks(end)) {
    parts.push(`<text x="${x(t).toFixed(1)}" y="${h - 8}" class="xtick">${fmt(t / 1000)}s</text>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${h}" role="img" aria-label="${escapeXml(title)}">${parts.join("")}</svg>`;
}
