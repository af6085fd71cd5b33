/**
 * Ordered access to the 16-bit index and flag fields of a ring.
 *
 * Guest memory is a plain (non-shared) ArrayBuffer over an mmap, so there is
 * no SharedArrayBuffer and no Atomics.wait; but the Atomics read/write
 * operations are defined on any integer typed array, and V8 emits the same
 * sequentially consistent machine instructions for them whatever the buffer
 * (on x86-64 a plain load, and an `xchg`, which is a full barrier, for
 * exchange; ldar/stlxr on arm64). They are also barriers for the JIT, which
 * may otherwise move DataView accesses across each other. That is what the
 * virtio memory-barrier rules need:
 *
 * - device reads avail idx, then ring entries and descriptors: Atomics.load
 *   (acquire) of idx, plain reads after it;
 * - device writes used elements, then used idx: plain writes, then
 *   Atomics.exchange of idx (release, and on x86 a full fence);
 * - device publishes used idx (or avail_event / flags), then reads
 *   used_event / avail idx / flags: exchange then Atomics.load, whose
 *   store→load order only a full barrier gives (the "mb()" of the spec).
 *
 * A field whose host address is odd (a region handed in at an odd offset)
 * cannot be an element of a Uint16Array; such rings fall back to DataView
 * with no ordering guarantee, which no real mapping triggers (mmap is page
 * aligned and rings are 2- or 4-aligned).
 *
 * @module
 */
import type { MemoryRegion } from "./memory.ts";

/** True on little-endian hosts, where a Uint16Array element is already in virtio byte order. */
export const LITTLE_ENDIAN_HOST: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swap16(v: number): number {
  return ((v & 0xff) << 8) | (v >>> 8);
}

/** The 16-bit fields of one ring part, `count` of them from byte `offset` of `region`. */
export class Ring16 {
  #u16: Uint16Array | null;
  #dv: DataView;
  #base: number;

  constructor(region: MemoryRegion, offset: number, count: number) {
    this.#dv = region.dataView;
    this.#base = offset;
    const b = region.bytes;
    this.#u16 = (b.byteOffset + offset) % 2 === 0
      ? new Uint16Array(b.buffer, b.byteOffset + offset, count)
      : null;
  }

  /** Ordered (acquire / seq-cst) load of field `i`. */
  load(i: number): number {
    const u = this.#u16;
    if (u === null) return this.#dv.getUint16(this.#base + 2 * i, true);
    const v = Atomics.load(u, i);
    return LITTLE_ENDIAN_HOST ? v : swap16(v);
  }

  /** Ordered (full-barrier) store of field `i`. */
  store(i: number, value: number): void {
    const u = this.#u16;
    if (u === null) {
      this.#dv.setUint16(this.#base + 2 * i, value, true);
      return;
    }
    Atomics.exchange(u, i, LITTLE_ENDIAN_HOST ? value : swap16(value));
  }
}
