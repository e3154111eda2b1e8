/**
 * The HTML report of a run: one self-contained file (inline CSS and SVG, no scripts, no network) that says
 * at a glance whether the run passed, what broke when, and what it did to delivery and latency.
 */
import { chart, escapeXml as esc, lanes, type Shade } from "./charts.js";
import type { ScenarioResult } from "./result.js";
import type { LatencyStats } from "./stats.js";

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:960px;color:#1b1f24;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff;font-size:13px;vertical-align:middle}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#ffebe9}.muted{color:#57606a}.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:120px}.kpi b{display:block;font-size:20px}
svg{width:100%;height:auto;margin:6px 0}
svg .title{font-size:13px;font-weight:600;fill:#1b1f24}svg .legend,svg .xtick,svg .ytick,svg .ylabel{font-size:11px;fill:#57606a}
svg .ytick{text-anchor:end;dominant-baseline:middle}svg .xtick,svg .ylabel{text-anchor:middle}
svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f}svg .frame{fill:none;stroke:#8c959f}
svg .marker{stroke:#57606a;stroke-dasharray:2 3}svg .marker-label{font-size:11px;fill:#57606a;text-anchor:end;transform:translateX(-4px)}
svg .fault{fill:#cf222e;opacity:.14}svg .recovery{fill:#bf8700;opacity:.14}svg .up{fill:#2da44e}svg .down{fill:#cf222e}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
`;

const ms = (v: number | null | undefined) => (v === null || v === undefined ? "-" : `${v} ms`);
const sec = (v: number | undefined) => (v === undefined ? "-" : `${(v / 1000).toFixed(2)} s`);

function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  failed?: readonly boolean[],
  alignNumbers = true,
): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join("");
  const num = (c: string) => alignNumbers && /^[-\d.]+( ms| s|%)?$/.test(c);
  const trs = rows
    .map(
      (r, i) =>
        `<tr${failed?.[i] ? ' class="failed"' : ""}>${r.map((c) => `<td${num(c) ? ' class="num"' : ""}>${esc(c)}</td>`).join("")}</tr>`,
    )
    .join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${trs}</tbody></table>`;
}

const latRow = (name: string, l: LatencyStats) => [
  name,
  String(l.count),
  ms(l.p50),
  ms(l.p90),
  ms(l.p99),
  ms(l.max),
];

export function renderHtml(r: ScenarioResult): string {
  const shades: Shade[] = r.faults.map((f) => ({
    start: f.start,
    end: f.end ?? r.endMs,
    recoveredAt: f.recoveredAt,
    label: f.label,
  }));
  const markers = [{ at: r.scenario.durationMs, label: "workload ends" }];
  const mid = (t: number) => t + r.scenario.bucketMs / 2;
  // Rates per second; a last bucket cut short by the end of the run would read as a drop, so it is left out.
  const full = r.buckets.filter((b) => b.width >= r.scenario.bucketMs / 2);
  const rate = (b: (typeof r.buckets)[number], n: number) => (n * 1000) / b.width;
  const latencyChart = chart({
    title: "Latency of deliveries received in each interval",
    yLabel: "ms (log)",
    endMs: r.endMs,
    bucketMs: r.scenario.bucketMs,
    log: true,
    shades,
    markers,
    series: [
      { label: "p50", color: "#0969da", points: r.buckets.map((b) => [mid(b.t), b.latency.p50]) },
      { label: "p90", color: "#8250df", points: r.buckets.map((b) => [mid(b.t), b.latency.p90]) },
      { label: "p99", color: "#bf3989", points: r.buckets.map((b) => [mid(b.t), b.latency.p99]) },
      {
        label: "max",
        color: "#8c959f",
        dashed: true,
        points: r.buckets.map((b) => [mid(b.t), b.latency.max]),
      },
    ],
  });
  const rateChart = chart({
    title: "Deliveries per second",
    yLabel: "msgs/s",
    endMs: r.endMs,
    bucketMs: r.scenario.bucketMs,
    shades,
    markers,
    series: [
      {
        label: "lost (by send time)",
        color: "#cf222e",
        bars: true,
        points: full.map((b) => [b.t, rate(b, b.lost)]),
      },
      {
        label: "expected (by send time)",
        color: "#8c959f",
        dashed: true,
        points: full.map((b) => [mid(b.t), rate(b, b.expected)]),
      },
      { label: "delivered", color: "#1a7f37", points: full.map((b) => [mid(b.t), rate(b, b.delivered)]) },
    ],
  });
  const hasRequests = r.requests.sent > 0;
  const requestChart = hasRequests
    ? chart({
        title: "Requests per second",
        yLabel: "req/s",
        endMs: r.endMs,
        bucketMs: r.scenario.bucketMs,
        shades,
        markers,
        series: [
          {
            label: "failed",
            color: "#cf222e",
            bars: true,
            points: full.map((b) => [b.t, rate(b, b.requestsFailed)]),
          },
          { label: "answered", color: "#1a7f37", points: full.map((b) => [mid(b.t), rate(b, b.requestsOk)]) },
        ],
      })
    : "";
  const linkLanes = lanes(
    "Links (both ends up = green)",
    r.links.map((l) => ({ label: l.link, transitions: l.transitions })),
    r.endMs,
    shades,
  );
  const t = r.totals;
  const kpi = (label: string, value: string) =>
    `<div class="kpi"><span class="muted">${esc(label)}</span><b>${esc(value)}</b></div>`;
  const worstConvergence = r.recoveries.reduce<number | null>(
    (w, x) => (x.convergenceMs === null ? w : Math.max(w ?? 0, x.convergenceMs)),
    null,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(r.scenario.name)}: ${r.passed ? "passed" : "FAILED"}</title><style>${CSS}</style></head>
<body>
<h1>${esc(r.scenario.name)} <span class="badge ${r.passed ? "pass" : "fail"}">${r.passed ? "PASSED" : "FAILED"}</span></h1>
<div class="muted">${r.scenario.description === undefined ? "" : `${esc(r.scenario.description)}<br>`}
Topology <code>${esc(r.scenario.topology)}</code> · workload ${sec(r.scenario.durationMs)} · started ${esc(r.startedAt)} ·
run took ${sec(r.wallMs)} · Toxiproxy ${esc(r.toxiproxy.url)} (${r.toxiproxy.embedded ? "embedded" : "external"})</div>
<div class="kpis">
${kpi("messages sent", String(t.messagesSent))}
${kpi("deliveries expected", String(t.expectedDeliveries))}
${kpi("lost", `${t.lost} (${t.lostOutsideFaults} outside faults)`)}
${kpi("duplicates", String(t.duplicates))}
${kpi("p99 outside faults", ms(r.latency.outsideFaults.p99))}
${kpi("worst convergence", worstConvergence === null ? "-" : `${worstConvergence} ms`)}
</div>
<h2>Expectations</h2>
${table(
  ["expectation", "limit", "measured", "result"],
  r.expectations.map((e) => [e.name, e.limit, e.actual, e.passed ? "pass" : "FAIL"]),
  r.expectations.map((e) => !e.passed),
  false,
)}
<h2>Over time</h2>
<p class="muted">Red bands: a fault is on. Amber: the fault is over and the system is converging (links up, interest the
same everywhere). A message sent up to ${r.scenario.faultMarginMs} ms before a band counts as sent during the fault.</p>
${latencyChart}
${rateChart}
${requestChart}
${linkLanes}
<h2>Faults</h2>
${table(
  ["fault", "targets", "start", "end", "converged after", "kind"],
  r.faults.map((f) => [
    f.label,
    f.targets.join(", "),
    sec(f.start),
    sec(f.end),
    f.convergenceMs === undefined ? "did not converge" : `${f.convergenceMs} ms`,
    f.kind,
  ]),
)}
<h2>Latency</h2>
${table(
  ["messages", "samples", "p50", "p90", "p99", "max"],
  [
    latRow("all", r.latency.all),
    latRow("sent outside faults", r.latency.outsideFaults),
    latRow("sent during faults", r.latency.duringFaults),
    ...(hasRequests ? [latRow("request round trips", r.requests.latency)] : []),
  ],
)}
<h2>Receivers</h2>
${table(
  ["receiver", "kind", "region", "subject", "expected", "received", "lost", "duplicates", "p50", "p99"],
  r.receivers.map((x) => [
    x.key,
    x.kind,
    x.region,
    x.subject,
    String(x.expected),
    String(x.received),
    String(x.lost),
    String(x.duplicates),
    ms(x.latency.p50),
    ms(x.latency.p99),
  ]),
  r.receivers.map((x) => x.lost > 0 || x.duplicates > 0),
)}
${
  r.duplicateSamples.length > 0
    ? `<h2>Duplicates</h2>${table(
        ["receiver", "message", "sent", "first delivery", "again"],
        r.duplicateSamples.map((d) => [d.receiver, d.id, sec(d.sentAt), sec(d.firstAt), sec(d.againAt)]),
      )}`
    : ""
}
${
  hasRequests
    ? `<h2>Requests</h2>${table(
        ["sent", "answered", "timed out", "no responders", "errors", "failed outside faults"],
        [
          [
            String(r.requests.sent),
            String(r.requests.ok),
            String(r.requests.timeouts),
            String(r.requests.noResponders),
            String(r.requests.errors),
            String(r.requests.failedOutsideFaults),
          ],
        ],
      )}`
    : ""
}
<h2>Links and interest at the end</h2>
${table(
  ["link (dialer->listener)", "links established", "up at the end"],
  r.links.map((l) => [l.link, String(l.established), l.upAtEnd ? "yes" : "no"]),
  r.links.map((l) => !l.upAtEnd),
)}
<p>${
    r.interest.consistent
      ? "Interest is consistent: every region holds exactly the interest every other region has."
      : `Interest is <b>not</b> consistent:</p><ul>${r.interest.problems.map((p) => `<li>${esc(p)}</li>`).join("")}</ul><p>`
  }</p>
<p class="muted">Generated by <code>bridgehead chaos run</code>. The same figures are in result.json next to this file.</p>
</body></html>
`;
}
