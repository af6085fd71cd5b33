/**
 * Counts over time per series (operations per time bucket, by opcode), in
 * constant memory: buckets start 1 ms wide and double (merging pairs)
 * whenever the span would need more than `maxBuckets` of them, so a
 * capture of any length ends with between maxBuckets/2 and maxBuckets
 * buckets. Samples may come out of time order (operations complete out of
 * order): a sample before the first bucket extends the series backwards.
 *
 * @module
 */

/** Options of {@link Timeline}. */
export interface TimelineOptions {
  /** Most buckets kept (600 by default; at least 2). */
  readonly maxBuckets?: number | undefined;
  /** Starting bucket width in ns (1 ms by default). */
  readonly bucketNs?: number | undefined;
}

/** A finished timeline: `series[name][i]` samples in bucket i. */
export interface TimelineSnapshot {
  /** Start of bucket 0, ns since the epoch (undefined when there were no samples). */
  readonly startNs: bigint | undefined;
  /** Bucket width in ns. */
  readonly bucketNs: number;
  /** Number of buckets. */
  readonly buckets: number;
  /** Counts per bucket, by series name. */
  readonly series: ReadonlyMap<string, readonly number[]>;
}

const DEFAULT_MAX = 600;
const DEFAULT_WIDTH = 1_000_000;

/** Counts of samples per time bucket and series. */
export class Timeline {
  #max: number;
  #width: number;
  /** Time the bucket indexes count from (the first sample's): keeps offsets small numbers. */
  #base: bigint | undefined = undefined;
  /** Index (in widths since #base, floored) of bucket 0 of every series. */
  #first = 0;
  #length = 0;
  #series = new Map<string, number[]>();

  /** An empty timeline. */
  constructor(options: TimelineOptions = {}) {
    this.#max = Math.max(2, Math.floor(options.maxBuckets ?? DEFAULT_MAX));
    this.#width = Math.max(1, Math.floor(options.bucketNs ?? DEFAULT_WIDTH));
  }

  /** Current bucket width in ns. */
  get bucketNs(): number {
    return this.#width;
  }

  /** Counts one sample (or `n`) of `series` at `timestampNs`. */
  add(series: string, timestampNs: bigint, n = 1): void {
    if (this.#base === undefined) this.#base = timestampNs;
    const offset = Number(timestampNs - this.#base);
    let i = Math.floor(offset / this.#width);
    if (this.#length === 0) {
      this.#first = i;
      this.#length = 1;
    } else if (i < this.#first) {
      this.#grow(i, this.#first + this.#length - 1);
      i = Math.floor(offset / this.#width);
    } else if (i >= this.#first + this.#length) {
      this.#grow(this.#first, i);
      i = Math.floor(offset / this.#width);
    }
    let counts = this.#series.get(series);
    if (counts === undefined) {
      counts = new Array<number>(this.#length).fill(0);
      this.#series.set(series, counts);
    }
    const at = i - this.#first;
    counts[at] = (counts[at] ?? 0) + n;
  }

  /**
   * The buckets so far, merged (doubling the width) until there are at
   * most `maxBuckets` of them (all kept buckets by default).
   */
  snapshot(maxBuckets?: number): TimelineSnapshot {
    let width = this.#width;
    let first = this.#first;
    let length = this.#length;
    const series = new Map<string, number[]>();
    for (const [name, counts] of this.#series) series.set(name, counts.slice());
    const limit = Math.max(1, Math.floor(maxBuckets ?? this.#max));
    while (length > limit) {
      const f = Math.floor(first / 2);
      const last = Math.floor((first + length - 1) / 2);
      for (const [name, counts] of series) series.set(name, halve(counts, first, f, last));
      first = f;
      length = last - f + 1;
      width *= 2;
    }
    const start = this.#base === undefined ? undefined : this.#base + BigInt(first) * BigInt(width);
    return { startNs: start, bucketNs: width, buckets: this.#length === 0 ? 0 : length, series };
  }

  /** Makes room for bucket indexes lo..hi (current width), doubling the width while too many. */
  #grow(lo: number, hi: number): void {
    while (hi - lo + 1 > this.#max) {
      const f = Math.floor(this.#first / 2);
      const last = Math.floor((this.#first + this.#length - 1) / 2);
      for (const [name, counts] of this.#series) {
        this.#series.set(name, halve(counts, this.#first, f, last));
      }
      this.#first = f;
      this.#length = last - f + 1;
      this.#width *= 2;
      lo = Math.floor(lo / 2);
      hi = Math.floor(hi / 2);
    }
    const newFirst = Math.min(lo, this.#first);
    const newLast = Math.max(hi, this.#first + this.#length - 1);
    const before = this.#first - newFirst;
    const length = newLast - newFirst + 1;
    for (const [name, counts] of this.#series) {
      const next = new Array<number>(length).fill(0);
      for (let j = 0; j < counts.length; j++) next[before + j] = counts[j]!;
      this.#series.set(name, next);
    }
    this.#first = newFirst;
    this.#length = length;
  }
}

/** Counts at indexes first.. merged in pairs: new indexes f..last (floor(i/2)). */
function halve(counts: readonly number[], first: number, f: number, last: number): number[] {
  const out = new Array<number>(last - f + 1).fill(0);
  for (let j = 0; j < counts.length; j++) {
    const k = Math.floor((first + j) / 2) - f;
    out[k] = (out[k] ?? 0) + counts[j]!;
  }
  return out;
}

/**
 * `snap` with pairs of buckets merged (width doubled) until it has at most
 * `maxBuckets`: fewer, wider points for a chart.
 */
export function coarsenTimeline(snap: TimelineSnapshot, maxBuckets: number): TimelineSnapshot {
  const limit = Math.max(1, Math.floor(maxBuckets));
  let width = snap.bucketNs;
  let length = snap.buckets;
  let series = new Map<string, readonly number[]>(snap.series);
  while (length > limit) {
    const next = new Map<string, readonly number[]>();
    for (const [name, counts] of series) next.set(name, halve(counts, 0, 0, (length - 1) >> 1));
    series = next;
    length = ((length - 1) >> 1) + 1;
    width *= 2;
  }
  return { startNs: snap.startNs, bucketNs: width, buckets: length, series };
}
