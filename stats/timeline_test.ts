import assert from "node:assert/strict";
import { coarsenTimeline, Timeline, type TimelineSnapshot } from "./timeline.ts";

const T = 1_795_618_800_000_000_000n;
const MS = 1_000_000n;

function total(s: TimelineSnapshot, name: string): number {
  return (s.series.get(name) ?? []).reduce((a, b) => a + b, 0);
}

/** The bucket a timestamp falls in, by the snapshot's own geometry. */
function bucketOf(s: TimelineSnapshot, ts: bigint): number {
  return Number((ts - s.startNs!) / BigInt(s.bucketNs));
}

Deno.test("timeline: 1 ms buckets while the span fits", () => {
  const t = new Timeline({ maxBuckets: 100 });
  t.add("LOOKUP", T);
  t.add("LOOKUP", T + 500_000n);
  t.add("READ", T + 5n * MS);
  const s = t.snapshot();
  assert.equal(s.bucketNs, 1_000_000);
  assert.equal(s.startNs, T);
  assert.equal(s.buckets, 6);
  assert.deepEqual(s.series.get("LOOKUP"), [2, 0, 0, 0, 0, 0]);
  assert.deepEqual(s.series.get("READ"), [0, 0, 0, 0, 0, 1]);
});

Deno.test("timeline: long spans double the width; counts and placement survive", () => {
  const t = new Timeline({ maxBuckets: 50 });
  const times: bigint[] = [];
  for (let i = 0; i < 1000; i++) {
    const ts = T + BigInt(i) * 7n * MS + BigInt(i % 13) * 1000n;
    times.push(ts);
    t.add(i % 3 === 0 ? "WRITE" : "READ", ts);
  }
  const s = t.snapshot();
  assert.ok(s.buckets <= 50 && s.buckets > 25, `${s.buckets} buckets`);
  assert.equal(s.bucketNs, 2 ** Math.ceil(Math.log2((7 * 999) / 50)) * 1_000_000);
  assert.equal(total(s, "READ") + total(s, "WRITE"), 1000);
  assert.equal(total(s, "WRITE"), 334);
  // Each sample in the bucket its time says.
  const expect = new Array<number>(s.buckets).fill(0);
  for (const ts of times) expect[bucketOf(s, ts)]! += 1;
  const got = expect.map((_, i) =>
    (s.series.get("READ")![i] ?? 0) + (s.series.get("WRITE")![i] ?? 0)
  );
  assert.deepEqual(got, expect);
});

Deno.test("timeline: samples out of order extend it backwards", () => {
  const t = new Timeline({ maxBuckets: 40 });
  t.add("A", T + 10n * MS);
  t.add("A", T + 3n * MS); // completed later, requested earlier
  t.add("B", T - 25n * MS);
  t.add("A", T + 12n * MS);
  const s = t.snapshot();
  assert.ok(s.startNs! <= T - 25n * MS);
  assert.ok(s.startNs! + BigInt(s.bucketNs * s.buckets) > T + 12n * MS);
  assert.equal(total(s, "A"), 3);
  assert.equal(s.series.get("B")![bucketOf(s, T - 25n * MS)], 1);
  assert.equal(s.series.get("A")![bucketOf(s, T + 3n * MS)], 1);
});

Deno.test("timeline: coarsening keeps the totals and the start", () => {
  const t = new Timeline({ maxBuckets: 600 });
  for (let i = 0; i < 500; i++) t.add(i % 2 === 0 ? "X" : "Y", T + BigInt(i) * MS);
  const s = t.snapshot();
  const c = coarsenTimeline(s, 60);
  assert.ok(c.buckets <= 60);
  assert.equal(c.bucketNs, s.bucketNs * 16);
  assert.equal(c.startNs, s.startNs);
  assert.equal(total(c, "X"), 250);
  assert.equal(total(c, "Y"), 250);
  assert.equal(new Timeline().snapshot().buckets, 0);
});
