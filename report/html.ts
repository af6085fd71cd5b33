/**
 * `vfstrace report`: one self-contained HTML page from a capture's
 * {@link CaptureStats}, for people who would rather look than read:
 *
 * - a summary (capture, time span, totals, latency, bytes, residence);
 * - operations per second over time, stacked by operation (the top N
 *   operations by count, the rest as `other`);
 * - a latency histogram per operation on a log-scale axis, with p50/p99;
 * - the per-operation table, the N slowest requests (arguments as
 *   `vfstrace show` prints them) and the errors (operation × errno).
 *
 * Self-contained: inline CSS and script, charts drawn as SVG by the page's
 * own script from JSON embedded in the page; no URL anywhere (the SVG
 * namespace name aside), so it opens offline, from a mail attachment or a
 * CI artifact. Only aggregates and top-N lists are embedded, so the page
 * stays small whatever the capture's size.
 *
 * @module
 */
import { formatDuration, isoTime, type Json, jsonBigint } from "../show/mod.ts";
import {
  type CaptureStats,
  coarsenTimeline,
  compareOperations,
  formatBytes,
  latencyJson,
  type LatencySummary,
  type OperationStats,
} from "../stats/mod.ts";
import { PAGE_CSS, PAGE_JS } from "./_page.ts";

/** Options of {@link renderReport}. */
export interface ReportOptions {
  /** Page title (default: `vfstrace report: <capture>`). */
  readonly title?: string | undefined;
  /** Operations with their own series in the rate chart; the rest is `other` (8). */
  readonly topOperations?: number | undefined;
  /** Most latency histograms, the most frequent operations first (48). */
  readonly maxHistograms?: number | undefined;
  /** Points of the rate chart at most (240). */
  readonly rateBuckets?: number | undefined;
  /** When the report was made (now by default; fixed in tests). */
  readonly generatedAt?: Date | undefined;
}

/** Series colours (colour-blind friendly Tableau 10); `other` is grey. */
export const REPORT_PALETTE: readonly string[] = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#17becf",
];

/** Colour of the `other` series. */
export const OTHER_COLOR = "#9aa0a6";

/** One histogram as embedded: bins are `[lo_ns, hi_ns, count]`. */
export interface HistogramData {
  /** Operation name. */
  readonly op: string;
  /** Bar colour. */
  readonly color: string;
  /** Answered calls. */
  readonly count: number;
  /** Median latency. */
  readonly p50: number;
  /** 99th percentile. */
  readonly p99: number;
  /** `[lo, hi, count]` bins, 8 per power of two. */
  readonly bins: readonly (readonly [number, number, number])[];
}

/** One series of the rate chart. */
export interface RateSeries {
  /** Operation name or `other`. */
  readonly name: string;
  /** Fill colour. */
  readonly color: string;
  /** Operations in all buckets. */
  readonly total: number;
  /** Operations per bucket. */
  readonly counts: readonly number[];
}

/** The data embedded in the page (what its script draws). */
export interface ReportData {
  /** Shape version. */
  readonly version: 1;
  /** Operations per time bucket, by series; undefined without operations. */
  readonly rate:
    | {
      readonly start: string;
      readonly bucket_ns: number;
      readonly buckets: number;
      readonly series: readonly RateSeries[];
    }
    | undefined;
  /** Latency histograms, most frequent operation first. */
  readonly histograms: readonly HistogramData[];
  /** Charts the page should draw: the rate chart (if any) + the histograms. */
  readonly expectedCharts: number;
}

const DEFAULT_TOP = 8;
const DEFAULT_HISTOGRAMS = 48;
const DEFAULT_RATE_BUCKETS = 240;

const ESC: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text for HTML content or a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c] ?? c);
}

/** JSON safe inside `<script type="application/json">`: no `<` can close the element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

/** Colours by operation: the most frequent operations get the palette in order. */
function colorsByName(stats: CaptureStats): Map<string, string> {
  const byCount = [...stats.operations].sort(compareOperations("count"));
  const m = new Map<string, string>();
  byCount.forEach((r, i) => m.set(r.name, REPORT_PALETTE[i % REPORT_PALETTE.length]!));
  return m;
}

/** What the page's script draws, from `stats` (see {@link ReportData}). */
export function reportData(stats: CaptureStats, options: ReportOptions = {}): ReportData {
  const colors = colorsByName(stats);
  const byCount = [...stats.operations].sort(compareOperations("count"));
  const histograms: HistogramData[] = [];
  for (const r of byCount) {
    if (histograms.length >= (options.maxHistograms ?? DEFAULT_HISTOGRAMS)) break;
    const l = r.latency;
    if (l === undefined) continue;
    histograms.push({
      op: r.name,
      color: colors.get(r.name) ?? OTHER_COLOR,
      count: l.count,
      p50: l.p50,
      p99: l.p99,
      bins: r.histogram.bins(8).map((b) => [b.lo, b.hi, b.count] as const),
    });
  }
  const snap = coarsenTimeline(stats.timeline, options.rateBuckets ?? DEFAULT_RATE_BUCKETS);
  let rate: ReportData["rate"];
  if (snap.startNs !== undefined && snap.buckets > 0) {
    const top = Math.max(0, options.topOperations ?? DEFAULT_TOP);
    const totals = [...snap.series].map(([name, counts]) => ({
      name,
      counts,
      total: counts.reduce((a, b) => a + b, 0),
    })).sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1));
    const series: RateSeries[] = totals.slice(0, top).map((s) => ({
      name: s.name,
      color: colors.get(s.name) ?? OTHER_COLOR,
      total: s.total,
      counts: s.counts,
    }));
    const rest = totals.slice(top);
    if (rest.length > 0) {
      const counts = new Array<number>(snap.buckets).fill(0);
      for (const s of rest) s.counts.forEach((c, i) => (counts[i] = (counts[i] ?? 0) + c));
      series.push({
        name: rest.length === 1 ? rest[0]!.name : `other (${rest.length} ops)`,
        color: OTHER_COLOR,
        total: rest.reduce((a, s) => a + s.total, 0),
        counts,
      });
    }
    rate = {
      start: isoTime(snap.startNs),
      bucket_ns: snap.bucketNs,
      buckets: snap.buckets,
      series,
    };
  }
  return {
    version: 1,
    rate,
    histograms,
    expectedCharts: histograms.length + (rate === undefined ? 0 : 1),
  };
}

function dur(v: number | undefined): string {
  return v === undefined ? "–" : formatDuration(v);
}

/** `2026-11-25 15:34:26.085681 → 15:34:29.224234 UTC` (the date once when it is one day). */
function spanText(first: bigint, last: bigint): string {
  const a = isoTime(first);
  const b = isoTime(last);
  const day = (iso: string) => iso.slice(0, 10);
  const time = (iso: string) => iso.slice(11, 26);
  return day(a) === day(b)
    ? `${day(a)} ${time(a)} → ${time(b)} UTC`
    : `${day(a)} ${time(a)} → ${day(b)} ${time(b)} UTC`;
}

function card(k: string, v: string, d = ""): string {
  return `<div class="card"><div class="k">${escapeHtml(k)}</div><div class="v">${v}</div>` +
    (d === "" ? "" : `<div class="d">${d}</div>`) + `</div>`;
}

function latencyLine(l: LatencySummary | undefined): string {
  return l === undefined ? "n/a" : `p50 ${dur(l.p50)} · p99 ${dur(l.p99)} · max ${dur(l.max)}`;
}

function summary(stats: CaptureStats): string {
  const t = stats.totals;
  const res = stats.residence;
  const cards = [
    card(
      "time span",
      escapeHtml(formatDuration(stats.durationNs)),
      stats.firstNs === undefined || stats.lastNs === undefined
        ? "empty capture"
        : escapeHtml(spanText(stats.firstNs, stats.lastNs)),
    ),
    card(
      "operations",
      String(t.operations),
      `${t.ok} ok · ${t.unanswered} unanswered · ${t.undecodable} undecodable`,
    ),
    card(
      "errors",
      t.errors > 0 ? `<span class="err">${t.errors}</span>` : "0",
      t.operations > 0 ? `${((100 * t.errors) / t.operations).toFixed(1)}% of operations` : "",
    ),
    card("latency p50", dur(t.latency?.p50), latencyLine(t.latency)),
    card("bytes read", escapeHtml(formatBytes(t.bytesRead)), `${t.bytesRead} bytes (READ)`),
    card(
      "bytes written",
      escapeHtml(formatBytes(t.bytesWritten)),
      `${t.bytesWritten} bytes (WRITE)`,
    ),
    card(
      "records",
      stats.records === undefined ? "–" : String(stats.records),
      `${stats.control.vhostUser} vhost-user · ${stats.control.lostRecords} lost`,
    ),
    card(
      "proxy residence",
      res === undefined ? "n/a" : `${dur(res.request?.p50)} / ${dur(res.reply?.p50)}`,
      res === undefined
        ? "not measured in this capture"
        : `p50 request / reply; p99 ${dur(res.request?.p99)} / ${dur(res.reply?.p99)}`,
    ),
  ];
  return `<div class="cards">${cards.join("")}</div>`;
}

function swatch(color: string): string {
  return `<span class="sw" style="background:${color}"></span>`;
}

function operationsTable(stats: CaptureStats, colors: Map<string, string>): string {
  const rows = [...stats.operations].sort(compareOperations("time"));
  const total = stats.totals.latency?.totalNs ?? 0;
  const head = ["calls", "errors", "% time", "total", "min", "p50", "p90", "p99", "max"]
    .map((h) => `<th>${h}</th>`).join("");
  const body = rows.map((r: OperationStats) => {
    const l = r.latency;
    const pct = total > 0 ? ((100 * (l?.totalNs ?? 0)) / total).toFixed(2) : "–";
    return `<tr><td class="l">${swatch(colors.get(r.name) ?? OTHER_COLOR)}${
      escapeHtml(r.name)
    }</td><td>${r.count}</td><td${
      r.errors > 0 ? ' class="err"' : ""
    }>${r.errors}</td><td>${pct}</td>` +
      `<td>${dur(l?.totalNs)}</td><td>${dur(l?.min)}</td><td>${dur(l?.p50)}</td><td>${
        dur(l?.p90)
      }</td><td>${dur(l?.p99)}</td><td>${dur(l?.max)}</td><td>${
        r.bytesRead === 0 ? "–" : escapeHtml(formatBytes(r.bytesRead))
      }</td><td>${r.bytesWritten === 0 ? "–" : escapeHtml(formatBytes(r.bytesWritten))}</td></tr>`;
  }).join("\n");
  return `<table id="operations"><thead><tr><th class="l">operation</th>${head}` +
    `<th>read</th><th>written</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** The summary without its leading `nodeid=N`, which has its own column. */
function withoutNodeid(summary: string, nodeid: bigint): string {
  const prefix = `nodeid=${nodeid}`;
  return summary === prefix
    ? ""
    : summary.startsWith(prefix + " ")
    ? summary.slice(prefix.length + 1)
    : summary;
}

function slowestTable(stats: CaptureStats): string {
  if (stats.slowest.length === 0) return `<p class="note">No answered operations.</p>`;
  const first = stats.firstNs ?? 0n;
  const rows = stats.slowest.map((s, i) => {
    const rel = (Number(s.timestampNs - first) / 1e9).toFixed(6);
    const cls = s.status === "error" ? ' class="err"' : "";
    return `<tr><td>${i + 1}</td><td title="${escapeHtml(isoTime(s.timestampNs))}">+${rel}s</td>` +
      `<td class="l">${s.queue === 0 ? "hiprio" : `q${s.queue}`}</td>` +
      `<td class="l"${cls}>${escapeHtml(s.name)}</td><td>${escapeHtml(String(s.nodeid))}</td>` +
      `<td class="args">${escapeHtml(withoutNodeid(s.summary, s.nodeid))}</td>` +
      `<td>${dur(s.latencyNs)}</td></tr>`;
  }).join("\n");
  return `<table id="slowest"><thead><tr><th>#</th><th>time</th><th class="l">queue</th>` +
    `<th class="l">operation</th><th>nodeid</th><th class="l">arguments = result</th>` +
    `<th>latency</th></tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function errorTable(stats: CaptureStats): string {
  const rows = [...stats.operations].filter((r) => r.errors > 0).sort(compareOperations("errors"));
  if (rows.length === 0) return `<p class="note" id="errors">No operation failed.</p>`;
  const totals = new Map<string, number>();
  for (const r of rows) {
    for (const e of r.errnos) totals.set(e.errno, (totals.get(e.errno) ?? 0) + e.count);
  }
  const errnos = [...totals].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([e]) => e);
  const head = errnos.map((e) => `<th>${escapeHtml(e)}</th>`).join("");
  const body = rows.map((r) => {
    const cells = errnos.map((e) => {
      const n = r.errnos.find((x) => x.errno === e)?.count ?? 0;
      return `<td${n > 0 ? ' class="err"' : ""}>${n === 0 ? "" : n}</td>`;
    }).join("");
    return `<tr><td class="l">${escapeHtml(r.name)}</td>${cells}<td>${r.errors}</td>` +
      `<td>${r.count}</td></tr>`;
  }).join("\n");
  const foot = errnos.map((e) => `<td>${totals.get(e) ?? 0}</td>`).join("");
  return `<table id="errors"><thead><tr><th class="l">operation</th>${head}<th>errors</th>` +
    `<th>calls</th></tr></thead><tbody>\n${body}\n<tr><td class="l"><b>total</b></td>${foot}` +
    `<td>${stats.totals.errors}</td><td>${stats.totals.operations}</td></tr></tbody></table>`;
}

/** The embedded document: the chart data plus the summary, for people extracting it. */
function embedded(stats: CaptureStats, data: ReportData, generated: Date): Json {
  return {
    version: data.version,
    capture: stats.name ?? null,
    generated: generated.toISOString(),
    first: stats.firstNs === undefined ? null : isoTime(stats.firstNs),
    last: stats.lastNs === undefined ? null : isoTime(stats.lastNs),
    duration_ns: stats.durationNs,
    totals: {
      operations: stats.totals.operations,
      errors: stats.totals.errors,
      unanswered: stats.totals.unanswered,
      bytes_read: stats.totals.bytesRead,
      bytes_written: stats.totals.bytesWritten,
      latency: latencyJson(stats.totals.latency),
    },
    rate: data.rate === undefined ? null : {
      start: data.rate.start,
      bucket_ns: data.rate.bucket_ns,
      buckets: data.rate.buckets,
      series: data.rate.series.map((s) => ({
        name: s.name,
        color: s.color,
        total: s.total,
        counts: [...s.counts],
      })),
    },
    histograms: data.histograms.map((h) => ({
      op: h.op,
      color: h.color,
      count: h.count,
      p50: h.p50,
      p99: h.p99,
      bins: h.bins.map((b) => [...b]),
    })),
    slowest: stats.slowest.map((s) => ({
      time: isoTime(s.timestampNs),
      queue: s.queue,
      op: s.name,
      nodeid: jsonBigint(s.nodeid),
      latency_ns: s.latencyNs,
      summary: s.summary,
    })),
    errors: stats.operations.filter((r) => r.errors > 0).map((r) => ({
      op: r.name,
      errnos: Object.fromEntries(r.errnos.map((e) => [e.errno, e.count])),
    })),
    expected_charts: data.expectedCharts,
  };
}

/** The whole HTML page (see the module doc). */
export function renderReport(stats: CaptureStats, options: ReportOptions = {}): string {
  const data = reportData(stats, options);
  const colors = colorsByName(stats);
  const name = stats.name ?? "capture";
  const title = options.title ?? `vfstrace report: ${name}`;
  const generated = options.generatedAt ?? new Date();
  const legend = data.rate === undefined
    ? ""
    : `<div class="legend">${
      data.rate.series.map((s) =>
        `<span>${swatch(s.color)}${escapeHtml(s.name)} · ${s.total}</span>`
      ).join("")
    }</div>`;
  const hists = data.histograms.map((_, i) => `<div class="chart" id="hist-${i}"></div>`).join(
    "\n",
  );
  const err = stats.relativeError * 100;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vfstrace report">
<title>${escapeHtml(title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body data-charts-expected="${data.expectedCharts}">
<main>
<h1>${escapeHtml(title)}</h1>
<p class="sub">${escapeHtml(name)} · generated ${escapeHtml(generated.toISOString())} · ` +
    `quantiles within ±${err.toFixed(2)}%</p>
<section id="summary">
${summary(stats)}
</section>
<h2>Operations per second</h2>
${
      data.rate === undefined
        ? `<p class="note">No FUSE operations in this capture.</p>`
        : `<div class="chart" id="rate-chart">${legend}</div>`
    }
<h2>Latency by operation</h2>
<div class="hists">
${hists}
</div>
<h2>Operations</h2>
${operationsTable(stats, colors)}
<h2>Slowest requests</h2>
${slowestTable(stats)}
<h2>Errors</h2>
${errorTable(stats)}
<script type="application/json" id="report-data">${
      scriptJson(embedded(stats, data, generated))
    }</script>
<script>${PAGE_JS}</script>
</main>
</body>
</html>
`;
}
