/**
 * The pairer's table of requests in flight, keyed by (queue, unique), kept
 * in arrival order.
 *
 * A `Map` would do, but a million set/delete pairs on one long-lived Map
 * make V8's scavenges copy and promote megabytes of garbage each time
 * (measured: ~600 ms of young-generation GC per million records, against
 * ~40 ms with this table). So: open addressing over a Float64Array of keys
 * (the pairer's number keys are exact integers below 2^53), an intrusive
 * doubly linked list through the entries for arrival order (oldest first,
 * O(1) removal), and a Map only for the rare string keys (uniques of 2^37
 * and more, resends).
 *
 * @module
 */

/** What the table holds: linked by the table itself. */
export interface InFlightEntry {
  /** (queue, unique) as the pairer computes it: an integer in [0, 2^53), or a string. */
  readonly key: number | string;
  /** Older neighbour in arrival order (the table's). */
  prev: InFlightEntry | undefined;
  /** Younger neighbour in arrival order (the table's). */
  next: InFlightEntry | undefined;
}

const EMPTY = -1;
const DELETED = -2;
const MIN_CAPACITY = 64;

/** Requests in flight by key, oldest first. Keys are unique in the table. */
export class InFlightTable<T extends InFlightEntry> {
  #keys = new Float64Array(MIN_CAPACITY).fill(EMPTY);
  #values: (T | undefined)[] = new Array(MIN_CAPACITY).fill(undefined);
  #mask = MIN_CAPACITY - 1;
  /** Live number keys. */
  #count = 0;
  /** Deleted slots still marked. */
  #deleted = 0;
  #strings = new Map<string, T>();
  #oldest: T | undefined = undefined;
  #newest: T | undefined = undefined;

  /** Entries held. */
  get size(): number {
    return this.#count + this.#strings.size;
  }

  /** The oldest entry (first added of those still held). */
  get oldest(): T | undefined {
    return this.#oldest;
  }

  /** The entry of `key`. */
  get(key: number | string): T | undefined {
    if (typeof key === "string") return this.#strings.get(key);
    const keys = this.#keys;
    const mask = this.#mask;
    for (let i = hash(key) & mask;; i = (i + 1) & mask) {
      const k = keys[i]!;
      if (k === key) return this.#values[i];
      if (k === EMPTY) return undefined;
    }
  }

  /** Adds `entry` as the newest; its key must not be held. */
  add(entry: T): void {
    const key = entry.key;
    if (typeof key === "string") {
      this.#strings.set(key, entry);
    } else {
      if (2 * (this.#count + this.#deleted + 1) > this.#keys.length) this.#rehash();
      const keys = this.#keys;
      const mask = this.#mask;
      let i = hash(key) & mask;
      while (keys[i]! >= 0) i = (i + 1) & mask;
      if (keys[i] === DELETED) this.#deleted--;
      keys[i] = key;
      this.#values[i] = entry;
      this.#count++;
    }
    entry.prev = this.#newest;
    entry.next = undefined;
    if (this.#newest !== undefined) this.#newest.next = entry;
    else this.#oldest = entry;
    this.#newest = entry;
  }

  /** Removes `entry` (held under its key). */
  remove(entry: T): void {
    const key = entry.key;
    if (typeof key === "string") {
      this.#strings.delete(key);
    } else {
      const keys = this.#keys;
      const mask = this.#mask;
      for (let i = hash(key) & mask;; i = (i + 1) & mask) {
        const k = keys[i]!;
        if (k === EMPTY) return; // not held
        if (k === key) {
          keys[i] = DELETED;
          this.#values[i] = undefined;
          this.#count--;
          this.#deleted++;
          break;
        }
      }
    }
    const { prev, next } = entry;
    if (prev !== undefined) prev.next = next;
    else this.#oldest = next as T | undefined;
    if (next !== undefined) next.prev = prev;
    else this.#newest = prev as T | undefined;
    entry.prev = undefined;
    entry.next = undefined;
  }

  /** Empties the table. */
  clear(): void {
    this.#keys = new Float64Array(MIN_CAPACITY).fill(EMPTY);
    this.#values = new Array(MIN_CAPACITY).fill(undefined);
    this.#mask = MIN_CAPACITY - 1;
    this.#count = 0;
    this.#deleted = 0;
    this.#strings.clear();
    this.#oldest = undefined;
    this.#newest = undefined;
  }

  /** Rebuilds the number slots without deleted marks, at a size for the live count. */
  #rehash(): void {
    let cap = MIN_CAPACITY;
    while (4 * (this.#count + 1) > cap) cap *= 2;
    const keys = new Float64Array(cap).fill(EMPTY);
    const values: (T | undefined)[] = new Array(cap).fill(undefined);
    const mask = cap - 1;
    for (let e = this.#oldest; e !== undefined; e = e.next as T | undefined) {
      const key = e.key;
      if (typeof key === "string") continue;
      let i = hash(key) & mask;
      while (keys[i] !== EMPTY) i = (i + 1) & mask;
      keys[i] = key;
      values[i] = e;
    }
    this.#keys = keys;
    this.#values = values;
    this.#mask = mask;
    this.#deleted = 0;
  }
}

/** Mixes the two 32-bit halves of an integer in [0, 2^53). */
function hash(key: number): number {
  // ToInt32 keeps the low 32 bits of an integer this size; `%` would be a slow fmod.
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  let h = Math.imul(lo ^ Math.imul(hi, 0x27d4eb2d), 0x9e3779b1);
  h ^= h >>> 15;
  return h >>> 0;
}
