/**
 * `vfstrace stats` as text: a summary, then one aligned row per operation
 * (like `strace -c`), the errors by errno, the queues and the proxy's
 * residence.
 *
 * ```
 * operation    calls errors  % time    total     min     p50     p90     p99     max     read  written
 * LOOKUP          20     15   21.02   4.13ms  54.6µs   113µs   410µs   537µs   537µs        -        -
 * ```
 *
 * @module
 */
import { formatDuration, isoTime, NO_COLORS, type Palette } from "../show/mod.ts";
import type { CaptureStats, LatencySummary, OperationStats } from "./aggregator.ts";

/** Order of the operation rows. */
export type StatsSort = "time" | "count" | "errors" | "name";

/** The orders {@link StatsSort} allows, for option parsing. */
export const STATS_SORTS: readonly StatsSort[] = ["time", "count", "errors", "name"];

/** Options of {@link formatStatsTable}. */
export interface TableOptions {
  /** Row order: total time (default), count, errors (most first) or name. */
  readonly sort?: StatsSort | undefined;
  /** Colours (none by default). */
  readonly colors?: Palette | undefined;
}

/**
 * A byte count for people: `35 B`, `1.5 KiB`, `1 MiB` (3 significant
 * digits); `compact`: without the space (`1MiB`), for table cells.
 */
export function formatBytes(n: number, compact = false): string {
  if (n < 1024) return compact ? `${n}B` : `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1023.5 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = v >= 100 ? String(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  // 1.00 → 1, 1.50 → 1.5: trailing zeros say nothing.
  return `${text.includes(".") ? text.replace(/\.?0+$/, "") : text}${compact ? "" : " "}${
    units[u]
  }`;
}

/** Compares rows for `sort`; ties by name. */
export function compareOperations(
  sort: StatsSort,
): (a: OperationStats, b: OperationStats) => number {
  const byName = (a: OperationStats, b: OperationStats) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  switch (sort) {
    case "count":
      return (a, b) => b.count - a.count || byName(a, b);
    case "errors":
      return (a, b) => b.errors - a.errors || b.count - a.count || byName(a, b);
    case "name":
      return byName;
    default:
      return (a, b) =>
        (b.latency?.totalNs ?? 0) - (a.latency?.totalNs ?? 0) || b.count - a.count ||
        byName(a, b);
  }
}

type Align = "l" | "r";

/** Lays out rows of cells in columns (first column left, the others right-aligned). */
function layout(rows: readonly (readonly string[])[], align: readonly Align[]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  }
  return rows.map((r) =>
    r.map((cell, i) => {
      const w = widths[i] ?? 0;
      const pad = " ".repeat(Math.max(0, w - [...cell].length));
      return (align[i] ?? "r") === "l" ? cell + pad : pad + cell;
    }).join("  ").trimEnd()
  );
}

function dur(v: number | undefined): string {
  return v === undefined ? "-" : formatDuration(v);
}

function bytes(n: number): string {
  return n === 0 ? "-" : formatBytes(n, true);
}

function percent(part: number, whole: number): string {
  return whole > 0 ? ((100 * part) / whole).toFixed(2) : "-";
}

function latencyCells(l: LatencySummary | undefined): string[] {
  return [dur(l?.totalNs), dur(l?.min), dur(l?.p50), dur(l?.p90), dur(l?.p99), dur(l?.max)];
}

function quantiles(l: LatencySummary | undefined): string {
  if (l === undefined) return "none";
  return `min ${dur(l.min)}  p50 ${dur(l.p50)}  p90 ${dur(l.p90)}  p99 ${dur(l.p99)}  ` +
    `max ${dur(l.max)}  mean ${dur(l.mean)}`;
}

/** The time span line: `2026-…T15:00:49.96Z → …T15:00:50.93Z (968ms)`. */
function span(stats: CaptureStats): string {
  if (stats.firstNs === undefined || stats.lastNs === undefined) return "empty";
  return `${isoTime(stats.firstNs)} → ${isoTime(stats.lastNs)} (${
    formatDuration(stats.durationNs)
  })`;
}

/** The whole `vfstrace stats` text (ends with a newline). */
export function formatStatsTable(stats: CaptureStats, options: TableOptions = {}): string {
  const c = options.colors ?? NO_COLORS;
  const t = stats.totals;
  const out: string[] = [];
  const head: [string, string][] = [];
  if (stats.name !== undefined) head.push(["capture", stats.name]);
  head.push(["time span", span(stats)]);
  const ctl = stats.control;
  head.push([
    "records",
    (stats.records === undefined ? "" : `${stats.records}: `) +
    `${t.fuseRecords} FUSE, ${ctl.vhostUser} vhost-user, ${ctl.notes} notes, ` +
    `${ctl.notifications} notifications` +
    (ctl.lostRecords > 0 ? c.red(`, ${ctl.lostRecords} lost`) : ", none lost"),
  ]);
  const errText = `${t.errors} errors`;
  head.push([
    "operations",
    `${t.operations}: ${t.ok} ok, ${t.errors > 0 ? c.red(errText) : errText}, ` +
    `${t.unanswered} unanswered, ` +
    `${t.undecodable} undecodable` +
    (t.orphanReplies > 0 ? `, ${t.orphanReplies} replies without request` : ""),
  ]);
  head.push(["latency", `${quantiles(t.latency)}  (quantiles ±${relErr(stats)})`]);
  head.push([
    "bytes",
    `read ${t.bytesRead} (${formatBytes(t.bytesRead)}), ` +
    `written ${t.bytesWritten} (${formatBytes(t.bytesWritten)})`,
  ]);
  const res = stats.residence;
  head.push([
    "residence",
    res === undefined
      ? "n/a (the capture has no proxy residence measurements)"
      : `requests ${residence(res.request)}; replies ${residence(res.reply)}`,
  ]);
  const hw = Math.max(...head.map(([k]) => k.length));
  for (const [k, v] of head) out.push(`${k.padEnd(hw)}  ${v}`);
  out.push("");

  const withResidence = res !== undefined;
  const rows = [...stats.operations].sort(compareOperations(options.sort ?? "time"));
  const totalNs = t.latency?.totalNs ?? 0;
  const header = [
    "operation",
    "calls",
    "errors",
    "% time",
    "total",
    "min",
    "p50",
    "p90",
    "p99",
    "max",
    "read",
    "written",
    ...(withResidence ? ["res p50", "res p99"] : []),
  ];
  const cells: string[][] = [header];
  for (const r of rows) {
    cells.push([
      r.name,
      String(r.count),
      r.errors === 0 ? "-" : String(r.errors),
      percent(r.latency?.totalNs ?? 0, totalNs),
      ...latencyCells(r.latency),
      bytes(r.bytesRead),
      bytes(r.bytesWritten),
      ...(withResidence ? [dur(r.residence?.p50), dur(r.residence?.p99)] : []),
    ]);
  }
  cells.push([
    "total",
    String(t.operations),
    t.errors === 0 ? "-" : String(t.errors),
    totalNs > 0 ? "100.00" : "-",
    ...latencyCells(t.latency),
    bytes(t.bytesRead),
    bytes(t.bytesWritten),
    ...(withResidence ? ["", ""] : []),
  ]);
  const align: Align[] = ["l"];
  const lines = layout(cells, align);
  const rule = "-".repeat(Math.max(...lines.map((l) => [...l].length)));
  out.push(lines[0]!, rule, ...lines.slice(1, -1), rule, lines[lines.length - 1]!);

  const errs = [...stats.operations].filter((r) => r.errors > 0);
  if (errs.length > 0) {
    out.push("", "errors by errno");
    const e: string[][] = [];
    for (const r of errs.sort(compareOperations("errors"))) {
      for (const x of r.errnos) e.push(["  " + r.name, x.errno, String(x.count)]);
    }
    for (const l of layout(e, ["l", "l", "r"])) out.push(c.red(l));
  }

  out.push("", "queues");
  const q: string[][] = [["  queue", "calls", "errors", "unanswered", "p50", "p99", "max"]];
  for (const x of stats.queues) {
    q.push([
      "  " + x.label,
      String(x.count),
      String(x.errors),
      String(x.unanswered),
      dur(x.latency?.p50),
      dur(x.latency?.p99),
      dur(x.latency?.max),
    ]);
  }
  if (stats.queues.length === 0) q.push(["  (none)"]);
  out.push(...layout(q, ["l"]));
  return out.join("\n") + "\n";
}

function residence(l: LatencySummary | undefined): string {
  return l === undefined
    ? "n/a"
    : `p50 ${dur(l.p50)} p99 ${dur(l.p99)} max ${dur(l.max)} (${l.count} measured)`;
}

function relErr(stats: CaptureStats): string {
  return `${(stats.relativeError * 100).toFixed(2)}%`;
}
