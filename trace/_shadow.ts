/**
 * Shadow virtqueues: rings in the proxy's own memory that the backend serves
 * instead of the guest's. The proxy plays the driver here.
 *
 * Every guest chain is placed as ONE indirect descriptor at the same index as
 * its guest head; the indirect table (a validated copy of the guest's
 * descriptors, still pointing at guest buffers) lives in a per-head slot of
 * the shadow region. Head numbers therefore map 1:1 between the two rings and
 * the shadow ring can never run out of descriptors before the guest's does.
 *
 * Layout of the shadow region (one memfd, shared with the backend as an
 * extra memory region): per queue, a 64 KiB ring area (descriptor table,
 * avail ring, used ring for up to 1024 entries) followed by 1024 indirect
 * tables of {@link SHADOW_MAX_CHAIN} descriptors each. The file is sparse:
 * untouched tables cost no memory.
 *
 * @module
 */
import { close, ftruncate, memfdCreate, MemoryMapping } from "../sys/mod.ts";

/** Largest queue a shadow ring supports (QEMU's VIRTQUEUE_MAX_SIZE). */
export const SHADOW_MAX_QUEUE_SIZE = 1024;
/** Most descriptors in one relayed chain (Linux virtio-fs uses at most ~260). */
export const SHADOW_MAX_CHAIN = 1024;

const DESC = 16;
const RING_AREA = 64 * 1024;
const TABLE_BYTES = SHADOW_MAX_CHAIN * DESC;
const QUEUE_SLOT = RING_AREA + SHADOW_MAX_QUEUE_SIZE * TABLE_BYTES;
const F_NEXT = 1;
const F_WRITE = 2;
const F_INDIRECT = 4;
const USED_F_NO_NOTIFY = 1;

/** The proxy's memory region holding every shadow ring. */
export class ShadowRegion {
  /** memfd shared with the backend. */
  readonly fd: number;
  /** Size in bytes. */
  readonly size: number;
  /** Queues it has room for. */
  readonly queues: number;
  /** Guest-physical address the backend is told (outside guest RAM). */
  guestPhysAddr = 0n;
  /** "User address" the backend is told (outside QEMU's user ranges). */
  userAddr = 0n;
  #mapping: MemoryMapping;

  /** Creates a sparse memfd with room for `queues` queues. */
  constructor(queues: number) {
    this.queues = queues;
    this.size = queues * QUEUE_SLOT;
    this.fd = memfdCreate("vfstrace-shadow-rings");
    try {
      ftruncate(this.fd, this.size);
      this.#mapping = MemoryMapping.map(this.fd, this.size);
    } catch (err) {
      close(this.fd);
      throw err;
    }
  }

  /** The region's bytes. */
  get bytes(): Uint8Array {
    return this.#mapping.bytes;
  }

  /**
   * Places the region after every range given (guest-physical and user), so
   * the backend's address translation can never confuse it with guest RAM.
   */
  placeAfter(ranges: readonly { guestPhysAddr: bigint; userAddr: bigint; size: bigint }[]): void {
    const align = 1n << 30n;
    const up = (v: bigint) => ((v + align - 1n) / align) * align;
    let gpa = 1n << 40n;
    let user = 1n << 46n;
    for (const r of ranges) {
      if (r.guestPhysAddr + r.size > gpa) gpa = up(r.guestPhysAddr + r.size);
      if (r.userAddr + r.size > user) user = up(r.userAddr + r.size);
    }
    this.guestPhysAddr = gpa;
    this.userAddr = user;
  }

  /** Byte offset of queue `q`'s slot. */
  slotOffset(q: number): number {
    if (q < 0 || q >= this.queues) {
      throw new RangeError(`queue ${q}: shadow region holds ${this.queues}`);
    }
    return q * QUEUE_SLOT;
  }

  /** Unmaps and closes. */
  close(): void {
    this.#mapping.unmap();
    close(this.fd);
  }
}

/** One descriptor to relay: a guest buffer. */
export interface RelayDescriptor {
  /** Guest-physical address. */
  addr: bigint;
  /** Length. */
  len: number;
  /** Device-writable. */
  writable: boolean;
}

/** A used element read from the shadow ring. */
export interface ShadowUsed {
  /** Head index (= guest head). */
  id: number;
  /** Bytes the backend wrote. */
  len: number;
}

/** The driver side of one shadow split ring (no EVENT_IDX towards the backend). */
export class ShadowRing {
  /** Queue index. */
  readonly queue: number;
  /** Queue size. */
  readonly size: number;
  #region: ShadowRegion;
  #base: number;
  #dv: DataView;
  #u16: Uint16Array;
  #availOff: number;
  #usedOff: number;
  #availIdx = 0;
  #lastUsed = 0;
  #inFlight = 0;

  /** Lays out queue `queue` of `size` entries; rings are zeroed, both indexes set to `base`. */
  constructor(region: ShadowRegion, queue: number, size: number, base: number) {
    if (size < 1 || size > SHADOW_MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) {
      throw new RangeError(
        `queue ${queue}: size ${size} is not a power of two ≤ ${SHADOW_MAX_QUEUE_SIZE}`,
      );
    }
    this.queue = queue;
    this.size = size;
    this.#region = region;
    this.#base = region.slotOffset(queue);
    const bytes = region.bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#u16 = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 1);
    this.#availOff = this.#base + DESC * size;
    // used ring 4-aligned; keep it on its own page for clarity in dumps.
    this.#usedOff = this.#base + 32 * 1024;
    bytes.fill(0, this.#base, this.#base + RING_AREA);
    this.#availIdx = base & 0xffff;
    this.#lastUsed = base & 0xffff;
    this.#store16(this.#availOff + 2, this.#availIdx);
    this.#store16(this.#usedOff + 2, this.#lastUsed);
  }

  /** User addresses of desc, avail and used, as SET_VRING_ADDR gives them to the backend. */
  get addresses(): { desc: bigint; avail: bigint; used: bigint } {
    const u = this.#region.userAddr;
    return {
      desc: u + BigInt(this.#base),
      avail: u + BigInt(this.#availOff),
      used: u + BigInt(this.#usedOff),
    };
  }

  /** Chains placed and not yet returned by the backend. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The avail idx the backend will see after {@link publish}. */
  get availIdx(): number {
    return this.#availIdx;
  }

  /** Places a chain at `head` as one indirect descriptor; visible after {@link publish}. */
  place(head: number, descriptors: readonly RelayDescriptor[]): void {
    const n = descriptors.length;
    if (n === 0 || n > SHADOW_MAX_CHAIN) throw new RangeError(`chain of ${n} descriptors`);
    const dv = this.#dv;
    const table = this.#base + RING_AREA + head * TABLE_BYTES;
    for (let i = 0; i < n; i++) {
      const d = descriptors[i]!;
      const o = table + i * DESC;
      dv.setBigUint64(o, d.addr, true);
      dv.setUint32(o + 8, d.len, true);
      dv.setUint16(o + 12, (d.writable ? F_WRITE : 0) | (i + 1 < n ? F_NEXT : 0), true);
      dv.setUint16(o + 14, i + 1 < n ? i + 1 : 0, true);
    }
    const o = this.#base + head * DESC;
    dv.setBigUint64(o, this.#region.guestPhysAddr + BigInt(table), true);
    dv.setUint32(o + 8, n * DESC, true);
    dv.setUint16(o + 12, F_INDIRECT, true);
    dv.setUint16(o + 14, 0, true);
    dv.setUint16(this.#availOff + 4 + 2 * (this.#availIdx & (this.size - 1)), head, true);
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    this.#inFlight++;
  }

  /**
   * Moves the avail idx to `base` (SET_VRING_BASE after SET_VRING_ADDR). The
   * used idx stays: the back-end may have read it from the ring already.
   * Only before anything is placed.
   */
  rebase(base: number): void {
    if (this.#inFlight !== 0) {
      throw new RangeError(`queue ${this.queue}: rebase with ${this.#inFlight} chains in flight`);
    }
    this.#availIdx = base & 0xffff;
    this.#store16(this.#availOff + 2, this.#availIdx);
  }

  /** Stores avail idx with a full barrier (entries first, then the index). */
  publish(): void {
    this.#store16(this.#availOff + 2, this.#availIdx);
  }

  /** Whether the backend wants a kick (it sets VRING_USED_F_NO_NOTIFY while busy). */
  needKick(): boolean {
    return (this.#load16(this.#usedOff) & USED_F_NO_NOTIFY) === 0;
  }

  /** Reads the used elements the backend published since the last call. */
  takeUsed(out: ShadowUsed[]): number {
    const idx = this.#load16(this.#usedOff + 2);
    const pending = (idx - this.#lastUsed) & 0xffff;
    if (pending > this.#inFlight) {
      throw new RangeError(
        `queue ${this.queue}: backend used idx ${idx} is ${pending} ahead of ${this.#lastUsed} ` +
          `with only ${this.#inFlight} chains in flight`,
      );
    }
    let n = 0;
    while (this.#lastUsed !== idx) {
      const o = this.#usedOff + 4 + 8 * (this.#lastUsed & (this.size - 1));
      const e = out[n] ?? (out[n] = { id: 0, len: 0 });
      e.id = this.#dv.getUint32(o, true);
      e.len = this.#dv.getUint32(o + 4, true);
      this.#lastUsed = (this.#lastUsed + 1) & 0xffff;
      this.#inFlight--;
      n++;
    }
    return n;
  }

  #load16(byteOffset: number): number {
    return Atomics.load(this.#u16, byteOffset >> 1);
  }

  #store16(byteOffset: number, v: number): void {
    Atomics.exchange(this.#u16, byteOffset >> 1, v);
  }
}
