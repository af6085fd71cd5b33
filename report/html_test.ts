import assert from "node:assert/strict";
import { CaptureReader } from "../capture/mod.ts";
import { collectStats } from "../stats/mod.ts";
import { escapeHtml, OTHER_COLOR, renderReport, reportData } from "./mod.ts";

const FIXTURE = decodeURIComponent(
  new URL("../tests/fixtures/guest_session.pcapng", import.meta.url).pathname,
);
const SVG_NS = "http://www.w3.org/2000/svg";

async function fixtureStats(name = "guest_session.pcapng") {
  return (await collectStats(await CaptureReader.open(FIXTURE), { name, slowest: 25 })).stats;
}

/** Every URL-looking string in `html` other than the SVG namespace name. */
function externalUrls(html: string): string[] {
  return [...html.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*/gi)]
    .map((m) => m[0])
    .filter((u) => u !== SVG_NS);
}

function embedded(html: string): Record<string, unknown> & {
  rate: { series: { name: string; color: string; total: number; counts: number[] }[] };
  histograms: { op: string; bins: number[][]; count: number }[];
  "expected_charts": number;
  capture: string;
} {
  const m = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html);
  assert.ok(m !== null, "embedded data");
  return JSON.parse(m[1]!);
}

Deno.test("report: self-contained, no URL but the SVG namespace, no external resource", async () => {
  const html = renderReport(await fixtureStats());
  assert.deepEqual(externalUrls(html), []);
  assert.ok(html.includes(SVG_NS), "the charts are SVG");
  assert.doesNotMatch(html, /<(link|img|iframe|object|embed)\b/i);
  assert.doesNotMatch(html, /<script[^>]+src=/i);
  assert.doesNotMatch(html, /url\(|@import/i, "no CSS fetches");
  assert.match(html, /^<!DOCTYPE html>/);
});

Deno.test("report: the embedded data is what the charts need, aggregated", async () => {
  const stats = await fixtureStats();
  const html = renderReport(stats, { topOperations: 5 });
  const data = embedded(html);
  const answered = stats.operations.filter((o) => o.latency !== undefined);
  assert.equal(data.histograms.length, answered.length);
  assert.equal(data.expected_charts, answered.length + 1);
  assert.match(html, new RegExp(`<body data-charts-expected="${answered.length + 1}">`));
  for (const h of data.histograms) {
    const o = stats.operations.find((x) => x.name === h.op)!;
    assert.equal(h.bins.reduce((a, b) => a + b[2]!, 0), o.latency!.count, `${h.op} bins`);
    assert.equal(h.count, o.latency!.count);
  }
  // Top 5 by count get their own series; the rest is one grey "other".
  const series = data.rate.series;
  assert.equal(series.length, 6);
  assert.equal(series[5]!.color, OTHER_COLOR);
  assert.match(series[5]!.name, /^other \(\d+ ops\)$/);
  assert.equal(series.reduce((a, s) => a + s.total, 0), stats.totals.operations);
  for (const s of series) assert.equal(s.counts.reduce((a, b) => a + b, 0), s.total);
  assert.ok(series[0]!.total >= series[4]!.total);
  // One div per histogram, and the rate chart's.
  assert.equal([...html.matchAll(/<div class="chart" id="hist-\d+">/g)].length, answered.length);
  assert.match(html, /<div class="chart" id="rate-chart">/);
});

Deno.test("report: summary, slowest requests and the error table", async () => {
  const stats = await fixtureStats();
  const html = renderReport(stats);
  assert.match(html, /<h1>vfstrace report: guest_session\.pcapng<\/h1>/);
  assert.ok(html.includes(`${stats.totals.bytesWritten} bytes (WRITE)`));
  const slow = /<table id="slowest">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? "";
  assert.equal([...slow.matchAll(/<tr><td>\d+<\/td>/g)].length, 25);
  // The slowest first, its arguments as show prints them, nodeid in its own column.
  const first = stats.slowest[0]!;
  assert.ok(slow.includes(`>${first.name}</td>`));
  assert.ok(!/<td class="args">nodeid=/.test(slow), "nodeid is not repeated in the arguments");
  const errors = /<table id="errors">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? "";
  assert.match(errors, /<th>ENOENT<\/th>/);
  assert.match(errors, /<th>ENOTEMPTY<\/th>/);
  const lookup = stats.operations.find((o) => o.name === "LOOKUP")!;
  assert.match(
    errors,
    new RegExp(`<td class="l">LOOKUP</td><td class="err">${lookup.errors}</td>`),
  );
  assert.match(html, /<table id="operations">/);
});

Deno.test("report: text is escaped in the page and in the embedded JSON", async () => {
  const name = `</script><script>alert("x")</script> & 'q'`;
  const stats = await fixtureStats(name);
  const html = renderReport(stats);
  assert.ok(!html.includes("<script>alert"), "no injected element");
  assert.ok(html.includes(escapeHtml(name)));
  assert.equal(embedded(html).capture, name, "the JSON survives intact");
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
});

Deno.test("report: an empty capture gives a page without charts", async () => {
  const stats = (await collectStats([], { name: "empty" })).stats;
  const data = reportData(stats);
  assert.equal(data.rate, undefined);
  assert.equal(data.histograms.length, 0);
  assert.equal(data.expectedCharts, 0);
  const html = renderReport(stats, { generatedAt: new Date(0) });
  assert.match(html, /data-charts-expected="0"/);
  assert.match(html, /No FUSE operations in this capture/);
  assert.match(html, /No operation failed/);
  assert.ok(html.includes("generated 1970-01-01T00:00:00.000Z"));
});
