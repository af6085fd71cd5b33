/**
 * `vfstrace stats --json`: the statistics as one JSON document.
 *
 * Conventions are those of `vfstrace show --json`: snake_case keys; times
 * as `*_ns` decimal strings (ns since the epoch exceed 2^53) plus an ISO
 * 8601 UTC text; durations as integer nanoseconds (`*_ns` numbers); absent
 * values are `null` (a latency summary of an operation never answered, the
 * residence of a capture without residence measurements). Quantiles are
 * within `quantile_relative_error` of the exact ones.
 *
 * @module
 */
import { isoTime, type Json, jsonBigint } from "../show/mod.ts";
import type { CaptureStats, LatencySummary, SlowOperation } from "./aggregator.ts";
import { compareOperations, type StatsSort } from "./table.ts";

/** Version of the document's shape; bumped when a key changes meaning or goes away. */
export const STATS_JSON_VERSION = 1;

/** A latency summary as JSON (null when there are no samples). */
export function latencyJson(l: LatencySummary | undefined): Json {
  if (l === undefined) return null;
  return {
    count: l.count,
    total_ns: l.totalNs,
    min_ns: l.min,
    p50_ns: l.p50,
    p90_ns: l.p90,
    p99_ns: l.p99,
    max_ns: l.max,
    mean_ns: Math.round(l.mean),
  };
}

function timeJson(ns: bigint | undefined): Json {
  return ns === undefined ? null : { ns: ns.toString(), iso: isoTime(ns) };
}

/** One slow operation as JSON. */
export function slowJson(s: SlowOperation): { [key: string]: Json } {
  return {
    timestamp_ns: s.timestampNs.toString(),
    time: isoTime(s.timestampNs),
    queue: s.queue,
    op: s.name,
    nodeid: jsonBigint(s.nodeid),
    unique: jsonBigint(s.unique),
    latency_ns: s.latencyNs,
    status: s.status,
    error: s.errno ?? null,
    summary: s.summary,
  };
}

/** The whole document; operations in `sort` order (total time by default). */
export function statsJson(stats: CaptureStats, sort: StatsSort = "time"): { [key: string]: Json } {
  const t = stats.totals;
  const c = stats.control;
  return {
    version: STATS_JSON_VERSION,
    capture: stats.name ?? null,
    records: stats.records ?? null,
    first: timeJson(stats.firstNs),
    last: timeJson(stats.lastNs),
    duration_ns: stats.durationNs,
    quantile_relative_error: stats.relativeError,
    totals: {
      operations: t.operations,
      ok: t.ok,
      errors: t.errors,
      unanswered: t.unanswered,
      undecodable: t.undecodable,
      orphan_replies: t.orphanReplies,
      fuse_records: t.fuseRecords,
      bytes_read: t.bytesRead,
      bytes_written: t.bytesWritten,
      latency: latencyJson(t.latency),
    },
    operations: [...stats.operations].sort(compareOperations(sort)).map((r) => ({
      op: r.name,
      opcode: r.opcode,
      count: r.count,
      ok: r.ok,
      errors: r.errors,
      unanswered: r.unanswered,
      undecodable: r.undecodable,
      errnos: Object.fromEntries(r.errnos.map((e) => [e.errno, e.count])),
      latency: latencyJson(r.latency),
      bytes_read: r.bytesRead,
      bytes_written: r.bytesWritten,
      residence: latencyJson(r.residence),
    })),
    queues: stats.queues.map((q) => ({
      queue: q.queue,
      label: q.label,
      count: q.count,
      errors: q.errors,
      unanswered: q.unanswered,
      latency: latencyJson(q.latency),
    })),
    control: {
      vhost_user: c.vhostUser,
      notes: c.notes,
      notifications: c.notifications,
      unknown_records: c.unknownRecords,
      gaps: c.gaps,
      lost_records: c.lostRecords,
    },
    residence: stats.residence === undefined ? null : {
      request: latencyJson(stats.residence.request),
      reply: latencyJson(stats.residence.reply),
    },
    slowest: stats.slowest.map(slowJson),
  };
}
