/**
 * A log-bucketed histogram of non-negative integers (nanoseconds), HDR
 * style: constant memory whatever the sample count, quantiles with a
 * bounded relative error.
 *
 * Buckets. Values below 128 each have their own bucket (exact). Above, every
 * power of two [2^e, 2^(e+1)) is split into 64 equal sub-buckets of width
 * 2^(e-6), so a bucket is never wider than 1/64 of its lower bound. A
 * quantile is reported as the middle of the bucket holding the exact
 * (nearest-rank) sample, clamped to the exact min and max: it differs from
 * the exact quantile by at most half a bucket, i.e. at most
 * {@link RELATIVE_ERROR} = 1/128 ≈ 0.78% of it. Count, sum (hence mean), min
 * and max are exact.
 *
 * Memory: one counter per bucket up to the largest value seen, about 64
 * per power of two: ≈ 2300 counters (18 KiB) for values up to 2^40 ns
 * (18 minutes).
 *
 * @module
 */

/** Sub-buckets per power of two: 2^SUB_BITS. */
const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
/** Values below this are counted exactly (one bucket each). */
const EXACT = 2 * SUB;
const TWO32 = 0x1_0000_0000;

/**
 * Largest relative difference between a quantile a {@link LogHistogram}
 * reports and the exact one: half a bucket over its lower bound, 1/128.
 */
export const RELATIVE_ERROR: number = 1 / (2 * SUB);

/** Bucket index of a value ≥ 0 (integer). */
function indexOf(v: number): number {
  if (v < EXACT) return v;
  // floor(log2 v) without floating point error for v < 2^53.
  const e = v < TWO32 ? 31 - Math.clz32(v) : 63 - Math.clz32(Math.floor(v / TWO32));
  const m = Math.floor(v / 2 ** (e - SUB_BITS)); // in [64, 128)
  return (e - SUB_BITS) * SUB + m;
}

/** Lower bound of bucket `i`. */
function lowerOf(i: number): number {
  if (i < EXACT) return i;
  const shift = Math.floor(i / SUB) - 1; // e - SUB_BITS
  const m = (i % SUB) + SUB;
  return m * 2 ** shift;
}

/** Width of bucket `i`. */
function widthOf(i: number): number {
  return i < EXACT ? 1 : 2 ** (Math.floor(i / SUB) - 1);
}

/** One bucket (or a merge of adjacent ones): values in [lo, hi). */
export interface HistogramBin {
  /** Smallest value counted here. */
  readonly lo: number;
  /** First value above the bin. */
  readonly hi: number;
  /** Samples in the bin. */
  readonly count: number;
}

/** Streaming histogram of non-negative integers (see the module doc for the error bound). */
export class LogHistogram {
  #counts = new Float64Array(256);
  #top = -1;
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  /** Samples recorded. */
  get count(): number {
    return this.#count;
  }

  /** Sum of the samples (exact up to 2^53). */
  get sum(): number {
    return this.#sum;
  }

  /** Smallest sample (exact); undefined when empty. */
  get min(): number | undefined {
    return this.#count === 0 ? undefined : this.#min;
  }

  /** Largest sample (exact); undefined when empty. */
  get max(): number | undefined {
    return this.#count === 0 ? undefined : this.#max;
  }

  /** Mean (exact); undefined when empty. */
  get mean(): number | undefined {
    return this.#count === 0 ? undefined : this.#sum / this.#count;
  }

  /** Adds `n` samples of `value` (negative values count as 0, fractions are rounded). */
  record(value: number, n = 1): void {
    if (!(n > 0)) return;
    const v = value > 0 ? Math.round(Math.min(value, Number.MAX_SAFE_INTEGER)) : 0;
    const i = indexOf(v);
    if (i >= this.#counts.length) {
      let size = this.#counts.length * 2;
      while (size <= i) size *= 2;
      const next = new Float64Array(size);
      next.set(this.#counts);
      this.#counts = next;
    }
    this.#counts[i]! += n;
    if (i > this.#top) this.#top = i;
    this.#count += n;
    this.#sum += v * n;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /**
   * The q-quantile (0 ≤ q ≤ 1) by nearest rank: the sample at rank
   * ⌈q·count⌉, within {@link RELATIVE_ERROR} of it. Undefined when empty.
   */
  quantile(q: number): number | undefined {
    if (this.#count === 0) return undefined;
    if (q <= 0) return this.#min;
    if (q >= 1) return this.#max;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    const c = this.#counts;
    for (let i = 0; i <= this.#top; i++) {
      seen += c[i]!;
      if (seen >= rank) {
        const mid = lowerOf(i) + Math.floor(widthOf(i) / 2);
        return Math.min(this.#max, Math.max(this.#min, mid));
      }
    }
    return this.#max;
  }

  /** The non-empty buckets, in increasing order. */
  *buckets(): IterableIterator<HistogramBin> {
    const c = this.#counts;
    for (let i = 0; i <= this.#top; i++) {
      const n = c[i]!;
      if (n > 0) {
        const lo = lowerOf(i);
        yield { lo, hi: lo + widthOf(i), count: n };
      }
    }
  }

  /**
   * The non-empty buckets merged into `perOctave` (a power of two, at most
   * 64) equal bins per power of two, each bin given its full bounds (below
   * 2·perOctave, where a bin would be narrower than 1, each value is its
   * own): coarse enough for a chart on a log axis. Empty bins are left out.
   */
  bins(perOctave = 8): HistogramBin[] {
    // Powers of two only: then bins are unions of whole buckets.
    const per = 2 ** Math.round(Math.log2(Math.min(SUB, Math.max(1, perOctave))));
    const out: HistogramBin[] = [];
    let key = NaN;
    let bin: { lo: number; hi: number; count: number } | undefined;
    for (const b of this.buckets()) {
      const k = binKey(b.lo, per);
      if (k !== key || bin === undefined) {
        if (bin !== undefined) out.push(bin);
        key = k;
        bin = { ...binBounds(b, per), count: 0 };
      }
      bin.count += b.count;
    }
    if (bin !== undefined) out.push(bin);
    return out;
  }
}

/** Power of two at or below `v` ≥ 1, exact even where log2 rounds. */
function octave(v: number): number {
  let b = 2 ** Math.floor(Math.log2(v));
  if (b > v) b /= 2;
  else if (2 * b <= v) b *= 2;
  return b;
}

/** The bounds of the coarse bin of the bucket `b`: a 1/perOctave slice of its octave. */
function binBounds(b: HistogramBin, perOctave: number): { lo: number; hi: number } {
  if (b.lo < 1) return { lo: b.lo, hi: b.hi };
  const base = octave(b.lo);
  const width = base / perOctave;
  // Below perOctave a slice is narrower than one value: the bucket is its own bin.
  if (width < 1) return { lo: b.lo, hi: b.hi };
  const lo = base + Math.floor((b.lo - base) / width) * width;
  return { lo, hi: lo + width };
}

/** The coarse bin a bucket starting at `lo` belongs to. */
function binKey(lo: number, perOctave: number): number {
  if (lo < 1) return -1;
  const b = octave(lo);
  return Math.log2(b) * perOctave + Math.floor(((lo - b) * perOctave) / b);
}
