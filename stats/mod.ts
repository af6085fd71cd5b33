/**
 * stats: what a capture adds up to, in constant memory. The engine behind
 * `vfstrace stats` (text like `strace -c`, or JSON) and `vfstrace report`:
 *
 * - {@link StatsAggregator} (aggregator.ts): show's events → per-operation,
 *   per-queue and total counts, errnos, bytes, latency and residence
 *   quantiles, operations over time, the slowest operations;
 * - {@link LogHistogram} (histogram.ts): the log-bucketed histogram behind
 *   the quantiles (within {@link RELATIVE_ERROR} = 1/128 of the exact ones);
 * - {@link Timeline} (timeline.ts): counts per time bucket, self-coarsening;
 * - {@link collectStats} (collect.ts): records → {@link CaptureStats};
 * - {@link formatStatsTable} (table.ts), {@link statsJson} (json.ts).
 *
 * @example
 * ```ts
 * const { stats } = await collectStats(await CaptureReader.open("run.pcapng"));
 * console.log(formatStatsTable(stats, { sort: "count" }));
 * ```
 *
 * @module
 */
export * from "./aggregator.ts";
export * from "./histogram.ts";
export * from "./timeline.ts";
export * from "./collect.ts";
export * from "./table.ts";
export * from "./json.ts";
