/**
 * The streaming aggregator behind `vfstrace stats` and `vfstrace report`:
 * fed with show's events ({@link ShowEvent}, as the {@link Pairer} emits
 * them), it keeps per-operation, per-queue and total counters, latency
 * histograms ({@link LogHistogram}: constant memory, quantiles within
 * {@link RELATIVE_ERROR}), a {@link Timeline} of operations over time and,
 * when asked, the N slowest operations. Memory does not grow with the
 * capture: it grows with the number of distinct operation names, queues
 * and errnos, all small.
 *
 * Counting rules:
 * - a row per operation name (`LOOKUP`; `?` for replies without their
 *   request; `NOTIFY_…` for notifications; `opcode 99` for unknown opcodes);
 * - latency: every answered operation (errors included, as strace -c
 *   counts failed calls' time); unanswered ones have none;
 * - bytes read: READ replies' data lengths (from the reply header's `len`,
 *   so a capture cut by a snap length still counts the real size);
 *   bytes written: WRITE requests' `size` argument (the reply's count when
 *   the request did not decode); failed READs and WRITEs count nothing;
 * - residence (the proxy's own time, capture format v2): feature-detected
 *   on the records (`residenceNs`); absent everywhere → undefined ("n/a").
 *
 * @module
 */
import { Opcode } from "../decode/fuse.ts";
import type { FuseOperation, PairerStats, ShowEvent, ShowRecord } from "../show/mod.ts";
import { errnoName } from "../sys/errno.ts";
import { LogHistogram, RELATIVE_ERROR } from "./histogram.ts";
import { operationSummary } from "./_summary.ts";
import { Timeline, type TimelineSnapshot } from "./timeline.ts";

/** Latency (or residence) summary of a set of samples, in ns. */
export interface LatencySummary {
  /** Samples. */
  readonly count: number;
  /** Sum of the samples (strace -c's "seconds"). */
  readonly totalNs: number;
  /** Exact minimum. */
  readonly min: number;
  /** Median (within {@link RELATIVE_ERROR}). */
  readonly p50: number;
  /** 90th percentile (within {@link RELATIVE_ERROR}). */
  readonly p90: number;
  /** 99th percentile (within {@link RELATIVE_ERROR}). */
  readonly p99: number;
  /** Exact maximum. */
  readonly max: number;
  /** Exact mean. */
  readonly mean: number;
}

/** Counts of one errno. */
export interface ErrnoCount {
  /** `ENOENT`, or `errno N` when unknown. */
  readonly errno: string;
  /** Operations that failed with it. */
  readonly count: number;
}

/** Everything counted for one operation name. */
export interface OperationStats {
  /** `LOOKUP`, `?`, `NOTIFY_INVAL_ENTRY`, `opcode 99`. */
  readonly name: string;
  /** FUSE opcode (-1: unknown, 0: notification). */
  readonly opcode: number;
  /** Operations. */
  readonly count: number;
  /** Answered without error. */
  readonly ok: number;
  /** Answered with an errno. */
  readonly errors: number;
  /** Never answered in the capture. */
  readonly unanswered: number;
  /** Not fully decodable (and not an error). */
  readonly undecodable: number;
  /** Errors by errno, most frequent first. */
  readonly errnos: readonly ErrnoCount[];
  /** Latency of the answered ones; undefined when none. */
  readonly latency: LatencySummary | undefined;
  /** The latency histogram itself (for charts). */
  readonly histogram: LogHistogram;
  /** READ reply data bytes. */
  readonly bytesRead: number;
  /** WRITE request data bytes. */
  readonly bytesWritten: number;
  /** The proxy's residence per operation (request + reply side); undefined when not measured. */
  readonly residence: LatencySummary | undefined;
}

/** Per-queue counters. */
export interface QueueStats {
  /** Virtqueue index (0 is hiprio). */
  readonly queue: number;
  /** `hiprio`, `q1`, … */
  readonly label: string;
  /** Operations. */
  readonly count: number;
  /** Failed operations. */
  readonly errors: number;
  /** Unanswered operations. */
  readonly unanswered: number;
  /** Latency; undefined when none answered. */
  readonly latency: LatencySummary | undefined;
}

/** All operations together. */
export interface TotalStats {
  /** Operations. */
  readonly operations: number;
  /** Answered without error. */
  readonly ok: number;
  /** Answered with an errno. */
  readonly errors: number;
  /** Never answered. */
  readonly unanswered: number;
  /** Not fully decodable. */
  readonly undecodable: number;
  /** Replies whose request is not in the capture (the `?` row). */
  readonly orphanReplies: number;
  /** FUSE_REQUEST and FUSE_REPLY records behind the operations. */
  readonly fuseRecords: number;
  /** Latency of every answered operation. */
  readonly latency: LatencySummary | undefined;
  /** READ reply data bytes. */
  readonly bytesRead: number;
  /** WRITE request data bytes. */
  readonly bytesWritten: number;
}

/** Events that are not FUSE operations. */
export interface ControlStats {
  /** vhost-user messages (both channels). */
  readonly vhostUser: number;
  /** NOTE records. */
  readonly notes: number;
  /** Kick/call notifications. */
  readonly notifications: number;
  /** Records of kinds this version does not know. */
  readonly unknownRecords: number;
  /** Gaps in the record sequence. */
  readonly gaps: number;
  /** Records missing according to those gaps. */
  readonly lostRecords: number;
}

/** The proxy's residence, when the capture measured it. */
export interface ResidenceStats {
  /** Requests: kick seen → back-end kicked. Undefined when none measured. */
  readonly request: LatencySummary | undefined;
  /** Replies: call seen → guest notified. Undefined when none measured. */
  readonly reply: LatencySummary | undefined;
}

/** One of the slowest operations. */
export interface SlowOperation {
  /** Request time (ns since the epoch). */
  readonly timestampNs: bigint;
  /** Virtqueue. */
  readonly queue: number;
  /** Operation name. */
  readonly name: string;
  /** Node id (0 when unknown). */
  readonly nodeid: bigint;
  /** Request unique. */
  readonly unique: bigint;
  /** Latency in ns. */
  readonly latencyNs: number;
  /** How it ended. */
  readonly status: FuseOperation["status"];
  /** Errno name when it failed. */
  readonly errno: string | undefined;
  /** Arguments and result as `vfstrace show` prints them (`nodeid=1 "tree" = -ENOENT`). */
  readonly summary: string;
}

/** The result of an aggregation. */
export interface CaptureStats {
  /** The capture's name (its path), when known. */
  readonly name: string | undefined;
  /** Earliest event time (ns since the epoch); undefined for an empty capture. */
  readonly firstNs: bigint | undefined;
  /** Latest event time (a reply's included). */
  readonly lastNs: bigint | undefined;
  /** lastNs − firstNs (0 when empty). */
  readonly durationNs: number;
  /** Records read (when the caller passed the pairer's counters), else undefined. */
  readonly records: number | undefined;
  /** Totals. */
  readonly totals: TotalStats;
  /** One entry per operation name, by name. */
  readonly operations: readonly OperationStats[];
  /** One entry per queue, by index. */
  readonly queues: readonly QueueStats[];
  /** Control events. */
  readonly control: ControlStats;
  /** Residence; undefined when the capture has no residence measurements. */
  readonly residence: ResidenceStats | undefined;
  /** Operations over time, by name. */
  readonly timeline: TimelineSnapshot;
  /** The slowest operations, slowest first (empty unless `slowest` was set). */
  readonly slowest: readonly SlowOperation[];
  /** The quantiles' bound relative error ({@link RELATIVE_ERROR}). */
  readonly relativeError: number;
}

/** Options of {@link StatsAggregator}. */
export interface AggregatorOptions {
  /** Keep the N slowest operations (0, the default: none). */
  readonly slowest?: number | undefined;
  /** Most timeline buckets (600 by default). */
  readonly timelineBuckets?: number | undefined;
  /** The capture's name. */
  readonly name?: string | undefined;
}

/** Mutable counters of one operation name. */
interface OpRow {
  readonly name: string;
  readonly opcode: number;
  count: number;
  ok: number;
  errors: number;
  unanswered: number;
  undecodable: number;
  readonly errnos: Map<string, number>;
  readonly latency: LogHistogram;
  readonly residence: LogHistogram;
  bytesRead: number;
  bytesWritten: number;
}

function newOpRow(name: string, opcode: number): OpRow {
  return {
    name,
    opcode,
    count: 0,
    ok: 0,
    errors: 0,
    unanswered: 0,
    undecodable: 0,
    errnos: new Map(),
    latency: new LogHistogram(),
    residence: new LogHistogram(),
    bytesRead: 0,
    bytesWritten: 0,
  };
}

/** Mutable counters of one queue. */
interface QueueRow {
  count: number;
  errors: number;
  unanswered: number;
  readonly latency: LogHistogram;
}

/** Summary of a histogram; undefined when empty. */
export function summarize(h: LogHistogram): LatencySummary | undefined {
  if (h.count === 0) return undefined;
  return {
    count: h.count,
    totalNs: h.sum,
    min: h.min!,
    p50: h.quantile(0.5)!,
    p90: h.quantile(0.9)!,
    p99: h.quantile(0.99)!,
    max: h.max!,
    mean: h.mean!,
  };
}

/** `hiprio` for queue 0, `q1`…, `-` for none. */
export function queueLabel(queue: number): string {
  return queue === 0 ? "hiprio" : queue === 0xffff ? "-" : `q${queue}`;
}

/** A record's `residenceNs` (capture format v2), feature-detected; undefined when unmeasured. */
function residenceOf(rec: ShowRecord | undefined): number | undefined {
  if (rec === undefined || !("residenceNs" in rec)) return undefined;
  const v = (rec as { readonly residenceNs?: unknown }).residenceNs;
  if (typeof v === "number") return v > 0 ? v : undefined;
  if (typeof v === "bigint") return v > 0n ? Number(v) : undefined;
  return undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
}

const OUT_HEADER = 16;

/** Data bytes of a successful READ reply: the header's len says it even when the capture cut it. */
function readBytes(op: FuseOperation): number {
  const rep = op.reply;
  if (rep === undefined || op.errno !== undefined) return 0;
  const len = rep.decoded?.header.len ?? rep.record.originalLength;
  return Math.max(0, len - OUT_HEADER);
}

/** Data bytes of a WRITE that did not fail: the request's size argument. */
function writeBytes(op: FuseOperation): number {
  if (op.errno !== undefined) return 0;
  const size = num(op.request?.decoded?.arg?.size) ?? num(op.reply?.decoded?.arg?.size);
  return size ?? 0;
}

/** A min-heap of the N slowest operations by latency. */
class Slowest {
  #n: number;
  #heap: SlowOperation[] = [];

  constructor(n: number) {
    this.#n = n;
  }

  /** Whether an operation of `latencyNs` would enter (so the summary is only built then). */
  wants(latencyNs: number): boolean {
    return this.#n > 0 && (this.#heap.length < this.#n || latencyNs > this.#heap[0]!.latencyNs);
  }

  add(s: SlowOperation): void {
    const h = this.#heap;
    if (h.length < this.#n) {
      h.push(s);
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (h[p]!.latencyNs <= h[i]!.latencyNs) break;
        [h[p], h[i]] = [h[i]!, h[p]!];
        i = p;
      }
      return;
    }
    h[0] = s;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.latencyNs < h[m]!.latencyNs) m = l;
      if (r < h.length && h[r]!.latencyNs < h[m]!.latencyNs) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }

  sorted(): SlowOperation[] {
    return [...this.#heap].sort((a, b) =>
      b.latencyNs - a.latencyNs || (a.timestampNs < b.timestampNs ? -1 : 1)
    );
  }
}

/**
 * Aggregates {@link ShowEvent}s. Give it to a Pairer as `onEvent` (or call
 * {@link push} from yours), then call {@link result}.
 */
export class StatsAggregator {
  #name: string | undefined;
  #ops = new Map<string, OpRow>();
  #queues = new Map<number, QueueRow>();
  #total = new LogHistogram();
  #resRequest = new LogHistogram();
  #resReply = new LogHistogram();
  #timeline: Timeline;
  #slowest: Slowest;
  #first: bigint | undefined = undefined;
  #last: bigint | undefined = undefined;
  #vhostUser = 0;
  #notes = 0;
  #notifications = 0;
  #unknown = 0;
  #gaps = 0;
  #lost = 0;
  #fuseRecords = 0;

  /** An empty aggregator. */
  constructor(options: AggregatorOptions = {}) {
    this.#name = options.name;
    this.#timeline = new Timeline({ maxBuckets: options.timelineBuckets });
    this.#slowest = new Slowest(Math.max(0, Math.floor(options.slowest ?? 0)));
  }

  /** The aggregator as a Pairer `onEvent` callback. */
  readonly onEvent = (event: ShowEvent): void => this.push(event);

  /** Counts one event. */
  push(ev: ShowEvent): void {
    this.#seen(ev.timestampNs);
    switch (ev.type) {
      case "fuse":
        this.#operation(ev);
        return;
      case "vhost-user":
        this.#vhostUser++;
        return;
      case "note":
        this.#notes++;
        return;
      case "notify":
        this.#notifications++;
        return;
      case "gap":
        this.#gaps++;
        this.#lost += ev.count;
        return;
      case "record":
        this.#unknown++;
        return;
    }
  }

  #seen(ts: bigint): void {
    if (this.#first === undefined || ts < this.#first) this.#first = ts;
    if (this.#last === undefined || ts > this.#last) this.#last = ts;
  }

  #operation(op: FuseOperation): void {
    if (op.reply !== undefined) this.#seen(op.reply.record.timestampNs);
    this.#fuseRecords += (op.request === undefined ? 0 : 1) + (op.reply === undefined ? 0 : 1);
    let row = this.#ops.get(op.name);
    if (row === undefined) this.#ops.set(op.name, row = newOpRow(op.name, op.opcode));
    let q = this.#queues.get(op.queue);
    if (q === undefined) {
      this.#queues.set(
        op.queue,
        q = { count: 0, errors: 0, unanswered: 0, latency: new LogHistogram() },
      );
    }
    row.count++;
    q.count++;
    switch (op.status) {
      case "ok":
        row.ok++;
        break;
      case "error": {
        row.errors++;
        q.errors++;
        const name = op.errno === undefined ? "?" : errnoName(op.errno);
        row.errnos.set(name, (row.errnos.get(name) ?? 0) + 1);
        break;
      }
      case "unanswered":
        row.unanswered++;
        q.unanswered++;
        break;
      case "undecodable":
        row.undecodable++;
        break;
    }
    const lat = op.latencyNs;
    if (lat !== undefined) {
      row.latency.record(lat);
      q.latency.record(lat);
      this.#total.record(lat);
      if (this.#slowest.wants(lat)) {
        this.#slowest.add({
          timestampNs: op.timestampNs,
          queue: op.queue,
          name: op.name,
          nodeid: op.nodeid,
          unique: op.unique,
          latencyNs: lat,
          status: op.status,
          errno: op.errno === undefined ? undefined : errnoName(op.errno),
          summary: operationSummary(op),
        });
      }
    }
    if (op.opcode === Opcode.READ && op.request !== undefined) row.bytesRead += readBytes(op);
    else if (op.opcode === Opcode.WRITE) row.bytesWritten += writeBytes(op);
    const rq = residenceOf(op.request?.record);
    const rp = residenceOf(op.reply?.record);
    if (rq !== undefined) this.#resRequest.record(rq);
    if (rp !== undefined) this.#resReply.record(rp);
    if (rq !== undefined || rp !== undefined) row.residence.record((rq ?? 0) + (rp ?? 0));
    this.#timeline.add(op.name, op.timestampNs);
  }

  /**
   * The statistics so far. `pairer`: the Pairer's counters, for the record
   * count (lost records come from the gap events either way).
   */
  result(pairer?: PairerStats): CaptureStats {
    let ok = 0;
    let errors = 0;
    let unanswered = 0;
    let undecodable = 0;
    let bytesRead = 0;
    let bytesWritten = 0;
    let operations = 0;
    const rows: OperationStats[] = [];
    for (const r of this.#ops.values()) {
      operations += r.count;
      ok += r.ok;
      errors += r.errors;
      unanswered += r.unanswered;
      undecodable += r.undecodable;
      bytesRead += r.bytesRead;
      bytesWritten += r.bytesWritten;
      rows.push({
        name: r.name,
        opcode: r.opcode,
        count: r.count,
        ok: r.ok,
        errors: r.errors,
        unanswered: r.unanswered,
        undecodable: r.undecodable,
        errnos: [...r.errnos].map(([errno, count]) => ({ errno, count }))
          .sort((a, b) => b.count - a.count || (a.errno < b.errno ? -1 : 1)),
        latency: summarize(r.latency),
        histogram: r.latency,
        bytesRead: r.bytesRead,
        bytesWritten: r.bytesWritten,
        residence: summarize(r.residence),
      });
    }
    rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const queues: QueueStats[] = [...this.#queues].sort((a, b) => a[0] - b[0]).map((
      [queue, q],
    ) => ({
      queue,
      label: queueLabel(queue),
      count: q.count,
      errors: q.errors,
      unanswered: q.unanswered,
      latency: summarize(q.latency),
    }));
    const request = summarize(this.#resRequest);
    const reply = summarize(this.#resReply);
    const first = this.#first;
    const last = this.#last;
    return {
      name: this.#name,
      firstNs: first,
      lastNs: last,
      durationNs: first === undefined || last === undefined ? 0 : Number(last - first),
      records: pairer?.records,
      totals: {
        operations,
        ok,
        errors,
        unanswered,
        undecodable,
        orphanReplies: this.#ops.get("?")?.count ?? 0,
        fuseRecords: this.#fuseRecords,
        latency: summarize(this.#total),
        bytesRead,
        bytesWritten,
      },
      operations: rows,
      queues,
      control: {
        vhostUser: this.#vhostUser,
        notes: this.#notes,
        notifications: this.#notifications,
        unknownRecords: this.#unknown,
        gaps: this.#gaps,
        lostRecords: this.#lost,
      },
      residence: request === undefined && reply === undefined ? undefined : { request, reply },
      timeline: this.#timeline.snapshot(),
      slowest: this.#slowest.sorted(),
      relativeError: RELATIVE_ERROR,
    };
  }
}
