/**
 * The report page's inline style sheet and drawing script (private to
 * report/). The script reads the JSON embedded in the page and draws the
 * charts as SVG; nothing is fetched.
 *
 * The script sets, on `<body>`:
 * - `data-charts`: how many charts it drew with data (a chart counts only
 *   once it has put at least one non-empty bar or area on the page);
 * - `data-chart-boxes`: JSON list of `{id, x, y, w, h}`, each drawn chart's
 *   box in page pixels (for screenshot checks);
 * - `data-chart-error`: the message, if drawing threw.
 * The page itself says how many to expect in `data-charts-expected`.
 *
 * @module
 */

/** The style sheet. */
export const PAGE_CSS = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 10px; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .d { color: var(--muted); font-size: 12px; }
.err { color: #cf222e; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
td.args { text-align: left; white-space: normal; font-family: ui-monospace, monospace; font-size: 12px;
  word-break: break-all; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 6px; background: var(--bg); }
.hists { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 4px 0; font-size: 12px; }
.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
svg .title { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg .grid { stroke: #eaeef2; }
svg .axis { stroke: #8c959f; }
svg .mark { stroke: #1f2328; stroke-dasharray: 3 3; }
@media print { th { position: static; } }
`;

/** The drawing script (runs at the end of the body). */
export const PAGE_JS = `
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var body = document.body;
  var drawn = 0;
  var boxes = [];

  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function sig3(v) {
    if (v >= 100) return String(Math.round(v));
    if (v >= 10) return String(Math.round(v * 10) / 10);
    return String(Math.round(v * 100) / 100);
  }

  function dur(ns) {
    if (ns === 0) return "0";
    if (ns < 1000) return Math.round(ns) + "ns";
    if (ns < 999500) return sig3(ns / 1e3) + "\\u00b5s";
    if (ns < 999500000) return sig3(ns / 1e6) + "ms";
    return sig3(ns / 1e9) + "s";
  }

  function num(v) {
    if (v >= 1e6) return sig3(v / 1e6) + "M";
    if (v >= 1e4) return sig3(v / 1e3) + "k";
    return sig3(v);
  }

  function niceStep(range, ticks) {
    var raw = range / Math.max(1, ticks);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function record(svg, id) {
    var r = svg.getBoundingClientRect();
    boxes.push({ id: id, x: Math.round(r.left + window.scrollX), y: Math.round(r.top + window.scrollY),
      w: Math.round(r.width), h: Math.round(r.height) });
  }

  // Latency histogram of one operation: log-scale x (ns), linear y (count).
  function histogram(box, h) {
    var W = 400, H = 190, L = 44, R = 22, T = 26, B = 30;
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" }, null);
    el("text", { x: L, y: 16, "class": "title" }, svg,
      h.op + "  (" + h.count + (h.count === 1 ? " call" : " calls") + ", p50 " + dur(h.p50) +
      ", p99 " + dur(h.p99) + ")");
    var lo = Infinity, hi = 0, top = 0;
    h.bins.forEach(function (b) {
      lo = Math.min(lo, Math.max(1, b[0])); hi = Math.max(hi, b[1]); top = Math.max(top, b[2]);
    });
    if (!(top > 0)) return null;
    var d0 = Math.floor(Math.log10(lo)), d1 = Math.ceil(Math.log10(hi));
    if (d1 <= d0) d1 = d0 + 1;
    var sx = function (v) { return L + (Math.log10(Math.max(1, v)) - d0) / (d1 - d0) * (W - L - R); };
    var sy = function (c) { return H - B - c / top * (H - B - T); };
    for (var d = d0; d <= d1; d++) {
      var x = sx(Math.pow(10, d));
      el("line", { x1: x, x2: x, y1: T, y2: H - B, "class": "grid" }, svg);
      el("text", { x: x, y: H - B + 14, "text-anchor": d === d1 ? "end" : "middle" }, svg,
        dur(Math.pow(10, d)));
    }
    var step = Math.max(1, niceStep(top, 4));
    for (var c = 0; c <= top; c += step) {
      el("line", { x1: L, x2: W - R, y1: sy(c), y2: sy(c), "class": "grid" }, svg);
      el("text", { x: L - 4, y: sy(c) + 4, "text-anchor": "end" }, svg, num(c));
    }
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis" }, svg);
    var bars = 0;
    h.bins.forEach(function (b) {
      var x0 = sx(Math.max(1, b[0])), x1 = sx(b[1]);
      var y = sy(b[2]);
      var w = Math.max(1.5, x1 - x0 - 0.5), ht = H - B - y;
      if (ht <= 0) return;
      var r = el("rect", { x: x0, y: y, width: w, height: ht, fill: h.color }, svg);
      el("title", {}, r, dur(b[0]) + " \\u2013 " + dur(b[1]) + ": " + b[2]);
      bars++;
    });
    // Staggered labels: p50 and p99 are often close.
    [["p50", h.p50, 10], ["p99", h.p99, 22]].forEach(function (m) {
      var x = sx(m[1]);
      el("line", { x1: x, x2: x, y1: T, y2: H - B, "class": "mark" }, svg);
      el("text", { x: x + 3, y: T + m[2] }, svg, m[0]);
    });
    el("text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle" }, svg, "latency (log scale)");
    if (bars === 0) return null;
    box.appendChild(svg);
    return svg;
  }

  // Operations per second over time, stacked by operation (top N + other).
  function rate(box, r) {
    var W = Math.max(600, Math.min(1190, box.clientWidth - 14 || 1190)), H = 320;
    var L = 56, R = 14, T = 14, B = 34;
    var n = r.buckets, secs = r.bucket_ns / 1e9;
    if (!(n > 0) || r.series.length === 0) return null;
    var stack = [];
    var base = new Array(n).fill(0);
    r.series.forEach(function (s) {
      var lower = base.slice();
      var upper = base.map(function (v, i) { return v + (s.counts[i] || 0) / secs; });
      stack.push({ s: s, lower: lower, upper: upper });
      base = upper;
    });
    var top = Math.max.apply(null, base);
    if (!(top > 0)) return null;
    var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img" }, null);
    var total = n * r.bucket_ns;
    var sx = function (ns) { return L + ns / total * (W - L - R); };
    var sy = function (v) { return H - B - v / top * (H - B - T); };
    var ystep = niceStep(top, 5);
    for (var v = 0; v <= top * 1.0001; v += ystep) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v), "class": "grid" }, svg);
      el("text", { x: L - 6, y: sy(v) + 4, "text-anchor": "end" }, svg, num(v));
    }
    var xstep = niceStep(total, 8);
    for (var t = 0; t <= total * 1.0001; t += xstep) {
      el("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, "class": "grid" }, svg);
      el("text", { x: sx(t), y: H - B + 15, "text-anchor": "middle" }, svg, dur(t));
    }
    el("text", { x: (L + W - R) / 2, y: H - 3, "text-anchor": "middle" }, svg,
      "time since " + r.start + " (" + dur(r.bucket_ns) + " buckets)");
    el("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + H - B) / 2 + ")" }, svg, "operations / s");
    var areas = 0;
    stack.forEach(function (layer) {
      var up = [], down = [];
      for (var i = 0; i < n; i++) {
        var x0 = sx(i * r.bucket_ns), x1 = sx((i + 1) * r.bucket_ns);
        up.push(x0.toFixed(1) + "," + sy(layer.upper[i]).toFixed(1), x1.toFixed(1) + "," + sy(layer.upper[i]).toFixed(1));
        down.push(x0.toFixed(1) + "," + sy(layer.lower[i]).toFixed(1), x1.toFixed(1) + "," + sy(layer.lower[i]).toFixed(1));
      }
      var any = layer.s.counts.some(function (c) { return c > 0; });
      if (!any) return;
      // Upper edge left to right, then the lower edge back right to left.
      var p = el("polygon", { points: up.concat(down.reverse()).join(" "), fill: layer.s.color }, svg);
      el("title", {}, p, layer.s.name + ": " + layer.s.total + " operations");
      areas++;
    });
    el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis" }, svg);
    el("line", { x1: L, x2: L, y1: T, y2: H - B, "class": "axis" }, svg);
    if (areas === 0) return null;
    box.insertBefore(svg, box.firstChild);
    return svg;
  }

  try {
    var data = JSON.parse(document.getElementById("report-data").textContent);
    var rbox = document.getElementById("rate-chart");
    if (rbox && data.rate) {
      var svg = rate(rbox, data.rate);
      if (svg) { drawn++; record(svg, "rate"); }
    }
    data.histograms.forEach(function (h, i) {
      var box = document.getElementById("hist-" + i);
      if (!box) return;
      var svg = histogram(box, h);
      if (svg) { drawn++; record(svg, "hist-" + i); }
    });
  } catch (e) {
    body.dataset.chartError = String((e && e.message) || e);
  }
  body.dataset.chartBoxes = JSON.stringify(boxes);
  body.dataset.charts = String(drawn);
})();
`;
