import assert from "node:assert/strict";
import { type InFlightEntry, InFlightTable } from "./_in_flight.ts";

interface E extends InFlightEntry {
  readonly n: number;
}

function entry(key: number | string, n: number): E {
  return { key, n, prev: undefined, next: undefined };
}

function order(t: InFlightTable<E>): number[] {
  const out: number[] = [];
  for (let e = t.oldest; e !== undefined; e = e.next as E | undefined) out.push(e.n);
  return out;
}

Deno.test("in-flight table: agrees with a Map (insertion order included) under random churn", () => {
  const t = new InFlightTable<E>();
  const ref = new Map<number | string, E>();
  let seed = 7;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  // Keys as the pairer makes them: (unique·2^16 + queue), some near 2^53, some strings.
  const keyOf = (i: number): number | string =>
    i % 97 === 0 ? `1:${i}:0` : i % 13 === 0 ? Number.MAX_SAFE_INTEGER - i : i * 65536 + (i % 3);
  for (let step = 0; step < 200_000; step++) {
    const i = rand(3000);
    const key = keyOf(i);
    const held = ref.get(key);
    assert.equal(t.get(key), held);
    if (held !== undefined) {
      t.remove(held);
      ref.delete(key);
    } else if (ref.size < 2000) {
      const e = entry(key, step);
      t.add(e);
      ref.set(key, e);
    }
    assert.equal(t.size, ref.size);
    if (step % 10_000 === 0) assert.deepEqual(order(t), [...ref.values()].map((e) => e.n));
  }
  assert.deepEqual(order(t), [...ref.values()].map((e) => e.n));
  assert.equal(t.oldest, ref.values().next().value);
  // Removing the oldest repeatedly empties it in insertion order.
  const want = [...ref.values()].map((e) => e.n);
  const got: number[] = [];
  for (let e = t.oldest; e !== undefined; e = t.oldest) {
    got.push(e.n);
    t.remove(e);
  }
  assert.deepEqual(got, want);
  assert.equal(t.size, 0);
  assert.equal(t.get(keyOf(1)), undefined);
  t.add(entry(0, 1));
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.oldest, undefined);
  assert.equal(t.get(0), undefined);
});
