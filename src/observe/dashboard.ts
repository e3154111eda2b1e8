/**
 * The dashboard served at `/` on a region's monitor port: one self-contained HTML page (inline CSS, inline
 * script, SVG drawn by the script), so there is no build step and nothing is fetched from anywhere but the
 * monitor itself (the Content-Security-Policy below enforces that). The page polls `topologyz` (see
 * topology-view.ts for why one region serves the whole system) and redraws: regions as nodes, links as
 * edges coloured by state and labelled with RTT and message rate, and a table of per-region counters.
 * Rates are computed in the page from two successive polls of cumulative counters, so the server keeps
 * no per-viewer state.
 *
 * The script is plain ES2017 in a string: it avoids template literals so that nothing in it is taken for
 * a TypeScript substitution, and writes every value with textContent/setAttribute (never innerHTML).
 */

/** Only same-origin requests, inline script and style: the page works offline and cannot be made to leak. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933; background: #f5f7fa; }
body { margin: 0; padding: 16px 24px; }
header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 15px; margin: 20px 0 8px; }
#status { font-size: 13px; color: #52606d; }
#status.error { color: #c62828; font-weight: 600; }
#graph { background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; width: 100%; max-width: 960px; height: auto; display: block; }
#graph.stale { opacity: 0.45; }
.legend { display: flex; gap: 16px; font-size: 12px; color: #52606d; margin: 6px 0; }
.legend span::before { content: ""; display: inline-block; width: 22px; height: 4px; margin-right: 6px; vertical-align: middle; background: var(--c); }
.edge line { stroke-width: 5; stroke-linecap: round; }
.edge[data-status="up"] line { stroke: #2e7d32; }
.edge[data-status="pending"] line { stroke: #f9a825; stroke-dasharray: 10 6; }
.edge[data-status="down"] line { stroke: #c62828; stroke-dasharray: 3 7; }
.edge[data-status="unknown"] line { stroke: #9aa5b1; stroke-dasharray: 2 8; }
.edge text, .node text { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.edge text { font-size: 12px; fill: #323f4b; text-anchor: middle; }
.edge[data-status="down"] text { fill: #c62828; font-weight: 600; }
.node circle { stroke-width: 3; }
.node[data-status="ok"] circle { fill: #e8f5e9; stroke: #2e7d32; }
.node[data-status="not-ready"] circle { fill: #fff8e1; stroke: #f9a825; }
.node[data-status="unreachable"] circle { fill: #ffebee; stroke: #c62828; }
.node[data-status="reachable"] circle { fill: #eceff1; stroke: #607d8b; }
.node[data-self="true"] circle { stroke-width: 6; }
.node text { text-anchor: middle; fill: #1f2933; }
.node .name { font-size: 15px; font-weight: 700; }
.node .sub { font-size: 11px; fill: #52606d; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d9e2ec; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
td.ok { color: #2e7d32; font-weight: 600; }
td.bad { color: #c62828; font-weight: 600; }
form { display: flex; gap: 8px; align-items: center; font-size: 13px; flex-wrap: wrap; }
input { font: inherit; padding: 3px 6px; width: 240px; }
#explain-out li { margin: 2px 0; }
footer { margin-top: 20px; font-size: 12px; color: #52606d; }
footer a { color: #2457a6; margin-right: 10px; }
`;

const SCRIPT = String.raw`
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var params = new URLSearchParams(location.search);
  var interval = Math.max(200, Number(params.get("interval")) || 1000);
  var prev = null;
  var graph = document.getElementById("graph");
  var statusEl = document.getElementById("status");

  function svg(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(name, text, parent, cls) {
    var e = document.createElement(name);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(n) {
    if (n === null || n === undefined) return "\u2013";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n));
  }
  function fmtRate(r) {
    if (r === null || r === undefined) return null;
    return (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + " msg/s";
  }
  function rate(key, value, now) {
    if (!prev || value === null || value === undefined || prev.values[key] === undefined) return null;
    var dt = (now - prev.now) / 1000;
    if (dt <= 0) return null;
    return Math.max(0, (value - prev.values[key]) / dt);
  }

  // Regions on an ellipse in name order (stable between polls), the whole figure centred vertically.
  function positions(names) {
    var out = {};
    var n = names.length;
    var minY = Infinity, maxY = -Infinity;
    names.forEach(function (name, i) {
      var angle = n === 1 ? 0 : -Math.PI / 2 + (2 * Math.PI * i) / n;
      var p = n === 1 ? { x: 450, y: 0 } : { x: 450 + 320 * Math.cos(angle), y: 190 * Math.sin(angle) };
      out[name] = p;
      minY = Math.min(minY, p.y);
      maxY = Math.max(maxY, p.y);
    });
    var shift = 265 - (minY + maxY) / 2;
    names.forEach(function (name) { out[name].y += shift; });
    return out;
  }
  function plural(n, word) { return fmt(n) + " " + word + (n === 1 ? "" : "s"); }

  function nodeStatus(r) {
    if (!r.reachable) return "unreachable";
    if (r.health) return r.health.ok ? "ok" : "not-ready";
    return "reachable";
  }

  function render(view) {
    var values = {};
    var now = view.now_ms;
    document.getElementById("view").textContent = view.region;
    while (graph.firstChild) graph.removeChild(graph.firstChild);
    var pos = positions(view.regions.map(function (r) { return r.name; }));
    var edges = svg("g", { id: "edges" }, graph);
    view.links.forEach(function (l) {
      var a = pos[l.a], b = pos[l.b];
      if (!a || !b) return;
      var g = svg("g", { "class": "edge", "data-a": l.a, "data-b": l.b, "data-state": l.state, "data-status": l.status }, edges);
      svg("title", {}, g).textContent = l.a + " \u2194 " + l.b + ": " + l.detail;
      svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }, g);
      var parts = [];
      if (l.status !== "up") parts.push(l.state);
      if (l.rtt_ms !== null) parts.push(l.rtt_ms.toFixed(l.rtt_ms < 10 ? 2 : 0) + " ms");
      if (l.traffic) {
        var key = "link:" + l.a + ":" + l.b;
        values[key] = l.traffic.msgs_ab + l.traffic.msgs_ba;
        var r = fmtRate(rate(key, values[key], now));
        if (r !== null && l.status === "up") parts.push(r);
      }
      var label = svg("text", { "class": "edge-label", x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 8 }, g);
      label.textContent = parts.join(" \u00b7 ");
    });
    var nodes = svg("g", { id: "nodes" }, graph);
    view.regions.forEach(function (r) {
      var p = pos[r.name];
      var g = svg("g", { "class": "node", "data-region": r.name, "data-status": nodeStatus(r), "data-self": r.self }, nodes);
      var tip = r.name + (r.self ? " (this monitor)" : "") + (r.health && !r.health.ok ? ": " + r.health.reasons.join("; ") : "");
      svg("title", {}, g).textContent = tip;
      svg("circle", { cx: p.x, cy: p.y, r: 54 }, g);
      svg("text", { "class": "name", x: p.x, y: p.y - 4 }, g).textContent = r.name;
      var sub = !r.reachable ? "unreachable" : r.counters ? plural(r.counters.connections, "conn") + " \u00b7 " + plural(r.counters.subscriptions, "sub") : plural(r.hops, "hop") + " away";
      svg("text", { "class": "sub", x: p.x, y: p.y + 14 }, g).textContent = sub;
    });

    var body = document.getElementById("regions-body");
    while (body.firstChild) body.removeChild(body.firstChild);
    view.regions.forEach(function (r) {
      var tr = html("tr", null, body);
      tr.setAttribute("data-region", r.name);
      html("td", r.name + (r.self ? " (this monitor)" : ""), tr);
      var st = !r.reachable ? "unreachable" : r.health ? (r.health.ok ? "ready" : "not ready") : "reachable";
      var td = html("td", st, tr, "text " + (st === "ready" ? "ok" : st === "reachable" ? "" : "bad"));
      if (r.health && !r.health.ok) td.title = r.health.reasons.join("\n");
      var c = r.counters;
      if (c) {
        values["in:" + r.name] = c.msgs_in;
        values["out:" + r.name] = c.msgs_out;
      }
      var cells = c ? [
        fmt(c.connections), fmt(c.subscriptions),
        fmtRate(rate("in:" + r.name, c.msgs_in, now)) || "\u2013",
        fmtRate(rate("out:" + r.name, c.msgs_out, now)) || "\u2013",
        fmt(c.msgs_forwarded), fmt(c.msgs_received), fmt(c.msgs_dropped), c.links_up + "/" + c.links
      ] : ["\u2013", "\u2013", "\u2013", "\u2013", "\u2013", "\u2013", "\u2013", "\u2013"];
      cells.forEach(function (v) { html("td", v, tr); });
      if (!c) tr.title = "runs in another process: open its own monitor for its counters";
    });

    var from = document.getElementById("explain-from");
    if (from.options.length !== view.regions.length) {
      while (from.firstChild) from.removeChild(from.firstChild);
      view.regions.forEach(function (r) {
        var o = html("option", r.name, from);
        o.value = r.name;
        if (r.self) o.selected = true;
      });
    }
    prev = { now: now, values: values };
  }

  function tick() {
    fetch("topologyz", { cache: "no-store" })
      .then(function (res) {
        if (!res.ok) throw new Error("topologyz: HTTP " + res.status);
        return res.json();
      })
      .then(function (view) {
        render(view);
        graph.classList.remove("stale");
        statusEl.className = "";
        statusEl.textContent = "updated " + new Date(view.now_ms).toLocaleTimeString() + " \u00b7 every " + interval + " ms";
      })
      .catch(function (err) {
        graph.classList.add("stale");
        statusEl.className = "error";
        statusEl.textContent = "monitor unreachable (" + err.message + "): showing the last known state";
      })
      .then(function () { setTimeout(tick, interval); });
  }

  document.getElementById("explain").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var subject = document.getElementById("explain-subject").value;
    var from = document.getElementById("explain-from").value;
    var out = document.getElementById("explain-out");
    while (out.firstChild) out.removeChild(out.firstChild);
    fetch("explainz?subject=" + encodeURIComponent(subject) + "&from=" + encodeURIComponent(from), { cache: "no-store" })
      .then(function (res) { return res.json(); })
      .then(function (body) {
        if (body.error) { html("li", body.error, out); return; }
        body.regions.forEach(function (v) {
          var li = html("li", null, out);
          html("strong", v.region + ": " + v.verdict, li);
          li.appendChild(document.createTextNode(" \u2014 " + v.reason + (v.path ? " (path " + v.path.join(" \u2192 ") + ")" : "")));
        });
      })
      .catch(function (err) { html("li", "explainz failed: " + err.message, out); });
  });

  tick();
})();
`;

export function dashboardHtml(region: string): string {
  const r = escapeHtml(region);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bridgehead · ${r}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Bridgehead · view from <span id="view">${r}</span></h1>
  <span id="status">loading…</span>
</header>
<div class="legend">
  <span style="--c:#2e7d32">up</span><span style="--c:#f9a825">connecting / syncing</span>
  <span style="--c:#c62828">down / closed</span><span style="--c:#9aa5b1">unknown (stale)</span>
</div>
<svg id="graph" viewBox="0 0 900 530" role="img" aria-label="topology of the regions and links"></svg>
<h2>Regions</h2>
<table>
  <thead><tr><th>Region</th><th>Status</th><th>Clients</th><th>Subs</th><th>In</th><th>Out</th><th>Forwarded</th><th>From links</th><th>Dropped</th><th>Links up</th></tr></thead>
  <tbody id="regions-body"></tbody>
</table>
<h2>Would a message get there?</h2>
<form id="explain">
  <label>subject <input id="explain-subject" required placeholder="orders.created"></label>
  <label>published in <select id="explain-from"></select></label>
  <button type="submit">explain</button>
</form>
<ul id="explain-out"></ul>
<footer>
  <a href="healthz">/healthz</a><a href="varz">/varz</a><a href="connz">/connz</a><a href="subsz">/subsz</a>
  <a href="linkz">/linkz</a><a href="interestz">/interestz</a><a href="topologyz">/topologyz</a><a href="metrics">/metrics</a>
</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
