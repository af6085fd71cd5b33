import assert from "node:assert/strict";
import { LogHistogram, RELATIVE_ERROR } from "./histogram.ts";

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Exact nearest-rank quantile of sorted `xs`. */
function exact(xs: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * xs.length));
  return xs[Math.min(xs.length, rank) - 1]!;
}

const QUANTILES = [0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];

function checkAgainstExact(name: string, values: number[]): void {
  const h = new LogHistogram();
  for (const v of values) h.record(v);
  const sorted = [...values].sort((a, b) => a - b);
  assert.equal(h.count, values.length);
  assert.equal(h.min, sorted[0]);
  assert.equal(h.max, sorted[sorted.length - 1]);
  assert.equal(h.sum, values.reduce((a, b) => a + b, 0));
  for (const q of QUANTILES) {
    const want = exact(sorted, q);
    const got = h.quantile(q)!;
    const err = want === 0 ? got : Math.abs(got - want) / want;
    assert.ok(
      err <= RELATIVE_ERROR,
      `${name}: q${q} = ${got}, exact ${want}, relative error ${err} > ${RELATIVE_ERROR}`,
    );
  }
}

Deno.test("histogram: quantiles within the documented error of the exact ones", () => {
  const r = rng(42);
  // Latency-like: log-normal around 100 µs, with a long tail.
  const lognormal = Array.from({ length: 100_000 }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return Math.round(Math.exp(11.5 + 1.2 * z));
  });
  checkAgainstExact("log-normal", lognormal);
  // Uniform over 9 decades (1 ns … 1 s), and beyond 2^32 (the clz32 boundary).
  checkAgainstExact(
    "log-uniform",
    Array.from({ length: 50_000 }, () => Math.round(10 ** (9 * r()))),
  );
  checkAgainstExact(
    "beyond 2^32",
    Array.from({ length: 20_000 }, () => 2 ** 32 + Math.round(r() * 2 ** 44)),
  );
  // Two clusters: p50 falls between them.
  checkAgainstExact("bimodal", [
    ...Array.from({ length: 5_000 }, () => 20_000 + Math.round(r() * 5_000)),
    ...Array.from({ length: 5_001 }, () => 2_000_000 + Math.round(r() * 500_000)),
  ]);
});

Deno.test("histogram: the bound is tight where it should be, and exact below 128", () => {
  // The worst case: the lowest value of the first bucket of an octave, reported as the
  // bucket's middle: exactly the bound.
  const h = new LogHistogram();
  h.record(256);
  h.record(256);
  h.record(10_000);
  assert.equal(h.quantile(0.5), 258);
  assert.equal((258 - 256) / 256, RELATIVE_ERROR);
  // All samples equal: min = max clamps every quantile to the value itself.
  const same = new LogHistogram();
  for (let i = 0; i < 3; i++) same.record(1_234_567);
  for (const q of [0.01, 0.5, 0.99]) assert.equal(same.quantile(q), 1_234_567);
  const small = new LogHistogram();
  for (let v = 0; v < 128; v++) small.record(v);
  for (let v = 0; v < 128; v++) {
    assert.equal(small.quantile((v + 1) / 128), v, `exact below 128 (${v})`);
  }
});

Deno.test("histogram: empty, zero, negative and fractional samples", () => {
  const h = new LogHistogram();
  assert.equal(h.quantile(0.5), undefined);
  assert.equal(h.min, undefined);
  assert.equal(h.mean, undefined);
  h.record(-5);
  h.record(0);
  h.record(2.6);
  assert.equal(h.count, 3);
  assert.equal(h.min, 0);
  assert.equal(h.max, 3);
  assert.equal(h.quantile(1), 3);
  assert.equal(h.quantile(0), 0);
  h.record(7, 0); // n = 0: nothing
  assert.equal(h.count, 3);
});

Deno.test("histogram: memory stays bounded by the value range, not the sample count", () => {
  const h = new LogHistogram();
  const r = rng(7);
  for (let i = 0; i < 200_000; i++) h.record(Math.round(10 ** (3 + 6 * r())));
  const buckets = [...h.buckets()].length;
  // 10^3..10^9 spans 20 octaves of 64 sub-buckets.
  assert.ok(buckets <= 20 * 64 + 64, `${buckets} buckets`);
  assert.equal([...h.buckets()].reduce((a, b) => a + b.count, 0), 200_000);
});

Deno.test("histogram: chart bins cover 1/8 octave each, hold every sample, in order", () => {
  const h = new LogHistogram();
  const r = rng(3);
  for (let i = 0; i < 10_000; i++) h.record(Math.round(10 ** (1 + 5 * r())));
  const bins = h.bins(8);
  assert.equal(bins.reduce((a, b) => a + b.count, 0), 10_000);
  for (let i = 0; i < bins.length; i++) {
    const b = bins[i]!;
    assert.ok(b.lo < b.hi);
    if (i > 0) assert.ok(bins[i - 1]!.hi <= b.lo, `bins overlap at ${i}`);
    if (b.lo >= 16) {
      const octave = 2 ** Math.floor(Math.log2(b.lo));
      assert.equal(b.hi - b.lo, octave / 8, `bin ${b.lo}..${b.hi}`);
      assert.equal((b.lo - octave) % (octave / 8), 0, "aligned on the octave's eighths");
    }
  }
  // One sample: one bin around it.
  const one = new LogHistogram();
  one.record(123_456);
  const [b] = one.bins();
  assert.ok(b !== undefined && b.lo <= 123_456 && 123_456 < b.hi && b.count === 1);
});
