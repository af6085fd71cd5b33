/**
 * Records → statistics in one pass: a {@link Pairer} feeding a
 * {@link StatsAggregator}. The record source is any (async) iterable of
 * records in file order, typically a CaptureReader, whose errors
 * (CaptureReadError for a corrupt capture) propagate to the caller.
 *
 * @module
 */
import { CaptureReader } from "../capture/reader.ts";
import { Pairer, type PairerStats, type ShowRecord } from "../show/mod.ts";
import { type AggregatorOptions, type CaptureStats, StatsAggregator } from "./aggregator.ts";

/** Options of {@link collectStats}. */
export interface CollectOptions extends AggregatorOptions {
  /** Requests awaiting a reply kept before the oldest counts as unanswered (16384). */
  readonly maxInFlight?: number | undefined;
}

/** What {@link collectStats} returns. */
export interface CollectResult {
  /** The statistics. */
  readonly stats: CaptureStats;
  /** The pairer's counters (unanswered, evicted, orphan replies, lost records). */
  readonly pairer: PairerStats;
}

/** Pairs and aggregates every record of `records`. */
export async function collectStats(
  records: AsyncIterable<ShowRecord> | Iterable<ShowRecord>,
  options: CollectOptions = {},
): Promise<CollectResult> {
  const agg = new StatsAggregator(options);
  const pairer = new Pairer({ onEvent: agg.onEvent, maxInFlight: options.maxInFlight });
  if (records instanceof CaptureReader) {
    // One await per chunk read, not per record.
    for await (const batch of records.batches()) {
      for (let i = 0; i < batch.length; i++) pairer.push(batch[i]!);
    }
  } else {
    for await (const rec of records) pairer.push(rec);
  }
  pairer.finish();
  const stats = pairer.stats;
  return { stats: agg.result(stats), pairer: stats };
}
