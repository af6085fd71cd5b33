/**
 * Split virtqueues (virtio 1.2 §2.7) over mapped guest memory, device side.
 *
 * A queue of size N (a power of two, at most 32768) has three parts, each
 * contiguous in guest memory:
 *
 * | part             | align | bytes                                          |
 * | ---------------- | ----- | ---------------------------------------------- |
 * | descriptor table | 16    | 16·N: {addr u64, len u32, flags u16, next u16} |
 * | avail ring       | 2     | 4 + 2·N (+2 for used_event with EVENT_IDX)     |
 * | used ring        | 4     | 4 + 8·N (+2 for avail_event with EVENT_IDX)    |
 *
 * Ring addresses come in either address space: vhost-user SET_VRING_ADDR
 * passes QEMU user addresses (`space: "user"`), a driver of our own uses
 * guest-physical ones (`space: "guest-physical"`). Descriptor addresses are
 * always guest-physical.
 *
 * Memory ordering: the guest's vCPUs run concurrently with us. Index fields
 * are read with Atomics.load and published with Atomics.exchange; see
 * _ring16.ts for why that is sound on a non-shared mmap'd buffer.
 *
 * @module
 */
import {
  type AddressSpace,
  AvailIndexError,
  MemoryAccessError,
  RingConfigError,
} from "./errors.ts";
import { ringFeatures } from "./features.ts";
import type { GuestMemory, MemoryRegion } from "./memory.ts";
import { Ring16 } from "./_ring16.ts";

/** Descriptor flags (virtq_desc.flags). */
export const DescFlags = {
  /** The chain continues at `next`. */
  NEXT: 1,
  /** Device-writable buffer (otherwise device-readable). */
  WRITE: 2,
  /** `addr`/`len` point at a table of descriptors. */
  INDIRECT: 4,
} as const;

/** Avail ring flags: VIRTQ_AVAIL_F_NO_INTERRUPT. */
export const AvailFlags = { NO_INTERRUPT: 1 } as const;

/** Used ring flags: VIRTQ_USED_F_NO_NOTIFY. */
export const UsedFlags = { NO_NOTIFY: 1 } as const;

/** Bytes per descriptor (virtq_desc). */
export const DESC_SIZE = 16;
/** Bytes per used element (virtq_used_elem). */
export const USED_ELEM_SIZE = 8;
/** Largest queue size the spec allows. */
export const MAX_QUEUE_SIZE = 32768;
/** Minimum alignment of each part. */
export const RingAlign = { desc: 16, avail: 2, used: 4 } as const;

/** Offsets (bytes, from the part's start) and sizes of a split ring's parts. */
export interface SplitRingLayout {
  /** Queue size. */
  readonly size: number;
  /** Whether the EVENT_IDX fields (used_event, avail_event) are counted. */
  readonly eventIdx: boolean;
  /** Descriptor table size: 16·N. */
  readonly descBytes: number;
  /** Avail ring size: 4 + 2·N, +2 with EVENT_IDX. */
  readonly availBytes: number;
  /** Used ring size: 4 + 8·N, +2 with EVENT_IDX. */
  readonly usedBytes: number;
  /** Offsets inside the avail ring; `usedEvent` is -1 without EVENT_IDX. */
  readonly avail: {
    readonly flags: 0;
    readonly idx: 2;
    readonly ring: 4;
    readonly usedEvent: number;
  };
  /** Offsets inside the used ring; `availEvent` is -1 without EVENT_IDX. */
  readonly used: {
    readonly flags: 0;
    readonly idx: 2;
    readonly ring: 4;
    readonly availEvent: number;
  };
}

/** True when `size` is a valid split queue size: a power of two in [1, 32768]. */
export function isValidQueueSize(size: number): boolean {
  return Number.isInteger(size) && size >= 1 && size <= MAX_QUEUE_SIZE && (size & (size - 1)) === 0;
}

/** Throws RingConfigError unless `size` is a valid queue size. */
export function validateQueueSize(size: number): void {
  if (!isValidQueueSize(size)) {
    throw new RingConfigError(
      "size",
      `queue size ${size} is not a power of two in [1, ${MAX_QUEUE_SIZE}]`,
    );
  }
}

/** The layout of a split ring of `size` entries, with or without the EVENT_IDX fields. */
export function splitRingLayout(size: number, eventIdx = true): SplitRingLayout {
  validateQueueSize(size);
  const ev = eventIdx ? 2 : 0;
  return {
    size,
    eventIdx,
    descBytes: DESC_SIZE * size,
    availBytes: 4 + 2 * size + ev,
    usedBytes: 4 + USED_ELEM_SIZE * size + ev,
    avail: { flags: 0, idx: 2, ring: 4, usedEvent: eventIdx ? 4 + 2 * size : -1 },
    used: { flags: 0, idx: 2, ring: 4, availEvent: eventIdx ? 4 + USED_ELEM_SIZE * size : -1 },
  };
}

/**
 * Offsets of the legacy contiguous layout (desc, avail, padding to
 * `queueAlign`, used), which drivers also use for modern devices when they
 * allocate one block; `total` is the block's size.
 */
export function contiguousRingLayout(
  size: number,
  queueAlign = 4096,
): { desc: number; avail: number; used: number; total: number } {
  validateQueueSize(size);
  if (!(queueAlign >= 1 && Number.isInteger(Math.log2(queueAlign)))) {
    throw new RangeError(`queue align ${queueAlign} is not a power of two`);
  }
  const up = (x: number) => Math.ceil(x / queueAlign) * queueAlign;
  const avail = DESC_SIZE * size;
  const used = up(avail + 6 + 2 * size);
  return { desc: 0, avail, used, total: up(used + 6 + USED_ELEM_SIZE * size) };
}

/**
 * vring_need_event: true when `newIdx` has passed `eventIdx` since `oldIdx`,
 * i.e. eventIdx ∈ [oldIdx, newIdx) modulo 2^16.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

/** A used ring element. */
export interface UsedElement {
  /** Head index of the chain that was used. */
  readonly id: number;
  /** Bytes written into the chain's device-writable buffers. */
  readonly len: number;
}

/** Where a queue's rings are and how it was negotiated. */
export interface SplitQueueOptions {
  /** Queue size (SET_VRING_NUM). */
  readonly size: number;
  /** Descriptor table address. */
  readonly desc: bigint | number;
  /** Avail (driver) ring address. */
  readonly avail: bigint | number;
  /** Used (device) ring address. */
  readonly used: bigint | number;
  /** Address space of the three ring addresses: "user" for vhost-user SET_VRING_ADDR. */
  readonly space: AddressSpace;
  /**
   * Negotiated features; refuses VIRTIO_F_RING_PACKED and supplies
   * {@link eventIdx} when that is not given.
   */
  readonly features?: bigint;
  /** VIRTIO_F_EVENT_IDX negotiated (default: from `features`, else false). */
  readonly eventIdx?: boolean;
  /** Initial last_avail_idx (SET_VRING_BASE), default 0. */
  readonly lastAvailIdx?: number;
}

interface Part {
  region: MemoryRegion;
  offset: number;
}

/**
 * Device-side view of one split virtqueue: reads the driver's avail ring,
 * writes the used ring, tracks last_avail_idx and the used idx, and handles
 * notification suppression both ways.
 *
 * The ring memory belongs to the guest and may change under us at any time;
 * every value read from it is validated before use. The ring translations
 * are cached and redone when the GuestMemory map changes.
 */
export class SplitQueue {
  /** Queue size N. */
  readonly size: number;
  /** VIRTIO_F_EVENT_IDX in effect. */
  readonly eventIdx: boolean;
  /** Address space of {@link addresses}. */
  readonly space: AddressSpace;
  /** Ring addresses as given. */
  readonly addresses: { readonly desc: bigint; readonly avail: bigint; readonly used: bigint };
  /** Layout for {@link size} and {@link eventIdx}. */
  readonly layout: SplitRingLayout;

  #memory: GuestMemory;
  #mask: number;
  #generation = -1;
  #desc!: Part;
  #avail!: Part;
  #used!: Part;
  #availDv!: DataView;
  #availBase = 0;
  #usedDv!: DataView;
  #usedBase = 0;
  #availFields!: Ring16;
  #usedFields!: Ring16;

  #lastAvail: number;
  /** avail idx as last read; popping does not re-read it until the ring looks empty. */
  #shadowAvail: number;
  #nextUsed = 0;
  #publishedUsed = 0;
  #signalledUsed = 0;
  #signalledValid = false;

  /**
   * Validates size, alignment and placement (RingConfigError) and maps the
   * rings. The used idx is taken from the ring, so a queue re-attached to a
   * running guest continues where the previous device stopped.
   */
  constructor(memory: GuestMemory, options: SplitQueueOptions) {
    validateQueueSize(options.size);
    const negotiated = options.features === undefined
      ? undefined
      : ringFeatures(options.features, "split queue");
    const eventIdx = options.eventIdx ?? negotiated?.eventIdx ?? false;
    this.size = options.size;
    this.#mask = options.size - 1;
    this.eventIdx = eventIdx;
    this.space = options.space;
    this.layout = splitRingLayout(options.size, eventIdx);
    this.addresses = {
      desc: ringAddress("desc", options.desc),
      avail: ringAddress("avail", options.avail),
      used: ringAddress("used", options.used),
    };
    for (const part of ["desc", "avail", "used"] as const) {
      const align = BigInt(RingAlign[part]);
      if (this.addresses[part] % align !== 0n) {
        throw new RingConfigError(
          part,
          `${part} ring address 0x${
            this.addresses[part].toString(16)
          } is not ${align}-byte aligned`,
        );
      }
    }
    this.#memory = memory;
    this.#map();
    const base = options.lastAvailIdx ?? 0;
    checkIdx(base, "lastAvailIdx");
    this.#lastAvail = base;
    this.#shadowAvail = base;
    this.#nextUsed = this.#usedFields.load(1);
    this.#publishedUsed = this.#nextUsed;
  }

  #translate(field: "desc" | "avail" | "used", length: number): Part {
    const addr = this.addresses[field];
    try {
      if (this.space === "user") {
        const offset = this.#memory.resolveUser(addr, length);
        return { region: this.#memory.resolvedUser, offset };
      }
      const offset = this.#memory.resolveGuest(addr, length);
      return { region: this.#memory.resolvedGuest, offset };
    } catch (e) {
      if (!(e instanceof MemoryAccessError)) throw e;
      throw new RingConfigError(
        field,
        `${field} ring (${this.space} 0x${
          addr.toString(16)
        }, ${length} bytes) not in guest memory: ${e.message}`,
        { cause: e },
      );
    }
  }

  #map(): void {
    const l = this.layout;
    this.#desc = this.#translate("desc", l.descBytes);
    this.#avail = this.#translate("avail", l.availBytes);
    this.#used = this.#translate("used", l.usedBytes);
    this.#availDv = this.#avail.region.dataView;
    this.#availBase = this.#avail.offset;
    this.#usedDv = this.#used.region.dataView;
    this.#usedBase = this.#used.offset;
    this.#availFields = new Ring16(this.#avail.region, this.#avail.offset, l.availBytes >> 1);
    this.#usedFields = new Ring16(this.#used.region, this.#used.offset, l.usedBytes >> 1);
    this.#generation = this.#memory.generation;
  }

  /**
   * Re-translates the rings if the memory map changed (or a region was
   * released under us); every method calls it first. Throws RingConfigError
   * when a ring is no longer mapped.
   */
  refresh(): void {
    if (
      this.#generation !== this.#memory.generation ||
      // A detached region reads as length 0: catch it before a DataView throws TypeError.
      this.#desc.region.bytes.byteLength === 0 ||
      this.#avail.region.bytes.byteLength === 0 ||
      this.#used.region.bytes.byteLength === 0
    ) {
      this.#map();
    }
  }

  /** The memory map the queue reads through. */
  get memory(): GuestMemory {
    return this.#memory;
  }

  /** DataView of the region holding the descriptor table (valid after {@link refresh}). */
  get descDataView(): DataView {
    return this.#desc.region.dataView;
  }

  /** Byte offset of descriptor 0 in {@link descDataView}. */
  get descByteOffset(): number {
    return this.#desc.offset;
  }

  // ---- avail ring (driver-owned; read only) ----

  /** avail->flags. */
  availFlags(): number {
    this.refresh();
    return this.#availFields.load(0);
  }

  /** avail->idx (ordered load: ring entries read afterwards are at least as new). */
  availIdx(): number {
    this.refresh();
    return this.#availFields.load(1);
  }

  /** avail->ring[slot mod N]: a chain head, as the driver wrote it (not validated). */
  availRing(slot: number): number {
    this.refresh();
    return this.#availDv.getUint16(this.#availBase + 4 + 2 * (slot & this.#mask), true);
  }

  /** avail->used_event (EVENT_IDX only). */
  usedEvent(): number {
    this.#requireEventIdx("used_event");
    this.refresh();
    return this.#availFields.load(2 + this.size);
  }

  // ---- used ring (device-owned) ----

  /** used->flags. */
  usedFlags(): number {
    this.refresh();
    return this.#usedFields.load(0);
  }

  /** Writes used->flags (ordered). */
  setUsedFlags(flags: number): void {
    checkIdx(flags, "used flags");
    this.refresh();
    this.#usedFields.store(0, flags);
  }

  /** used->idx as it is in guest memory. */
  usedIdx(): number {
    this.refresh();
    return this.#usedFields.load(1);
  }

  /**
   * Writes used->idx (ordered) and makes it the queue's used idx; for
   * restoring state. Normal operation uses {@link push} and {@link publish}.
   */
  setUsedIdx(idx: number): void {
    checkIdx(idx, "used idx");
    this.refresh();
    this.#usedFields.store(1, idx);
    this.#nextUsed = idx;
    this.#publishedUsed = idx;
    this.#signalledValid = false;
  }

  /** used->ring[slot mod N]. */
  readUsed(slot: number): UsedElement {
    this.refresh();
    const o = this.#usedBase + 4 + USED_ELEM_SIZE * (slot & this.#mask);
    return { id: this.#usedDv.getUint32(o, true), len: this.#usedDv.getUint32(o + 4, true) };
  }

  /** Writes used->ring[slot mod N] (plain stores; published by the next idx update). */
  writeUsed(slot: number, id: number, len: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new RangeError(`used id ${id} outside queue of size ${this.size}`);
    }
    if (!Number.isInteger(len) || len < 0 || len > 0xffff_ffff) {
      throw new RangeError(`used len ${len} is not a u32`);
    }
    this.refresh();
    const o = this.#usedBase + 4 + USED_ELEM_SIZE * (slot & this.#mask);
    this.#usedDv.setUint32(o, id, true);
    this.#usedDv.setUint32(o + 4, len, true);
  }

  /** used->avail_event (EVENT_IDX only). */
  availEvent(): number {
    this.#requireEventIdx("avail_event");
    this.refresh();
    return this.#usedFields.load(2 + 4 * this.size);
  }

  /** Writes used->avail_event (ordered; EVENT_IDX only). */
  setAvailEvent(idx: number): void {
    this.#requireEventIdx("avail_event");
    checkIdx(idx, "avail_event");
    this.refresh();
    this.#usedFields.store(2 + 4 * this.size, idx);
  }

  #requireEventIdx(field: string): void {
    if (!this.eventIdx) {
      throw new RangeError(`${field} does not exist without VIRTIO_F_EVENT_IDX`);
    }
  }

  // ---- device state ----

  /** The next avail slot the device will take (last_avail_idx). */
  get lastAvailIdx(): number {
    return this.#lastAvail;
  }

  /** The used idx the next {@link push} writes at (pushed, not necessarily published). */
  get nextUsedIdx(): number {
    return this.#nextUsed;
  }

  /** The used idx last published to the guest. */
  get publishedUsedIdx(): number {
    return this.#publishedUsed;
  }

  /** VHOST_USER_SET_VRING_BASE: sets last_avail_idx (taken mod 2^16). */
  setBase(num: number): void {
    if (!Number.isInteger(num) || num < 0) throw new RangeError(`vring base ${num} is invalid`);
    this.#lastAvail = num & 0xffff;
    this.#shadowAvail = this.#lastAvail;
    this.#signalledValid = false;
  }

  /** VHOST_USER_GET_VRING_BASE: the current last_avail_idx. */
  getBase(): number {
    return this.#lastAvail;
  }

  /** Re-reads used idx from the ring into the device state (after a reconnect). */
  syncUsedIdx(): void {
    this.refresh();
    this.#nextUsed = this.#usedFields.load(1);
    this.#publishedUsed = this.#nextUsed;
    this.#signalledValid = false;
  }

  /**
   * Number of chains available and not yet popped. Throws AvailIndexError
   * when avail idx is more than N ahead of last_avail_idx.
   */
  pending(): number {
    this.refresh();
    return this.#readAvail();
  }

  #readAvail(): number {
    const idx = this.#availFields.load(1);
    const n = (idx - this.#lastAvail) & 0xffff;
    if (n > this.size) throw new AvailIndexError(idx, this.#lastAvail, this.size);
    this.#shadowAvail = idx;
    return n;
  }

  /**
   * Takes the next available head (advancing last_avail_idx), or returns -1
   * when there is none. The head is returned as the driver wrote it; the
   * chain walker validates it. Throws AvailIndexError on a corrupt avail idx.
   */
  popHead(): number {
    this.refresh();
    const last = this.#lastAvail;
    if (this.#shadowAvail === last && this.#readAvail() === 0) return -1;
    this.#lastAvail = (last + 1) & 0xffff;
    return this.#availDv.getUint16(this.#availBase + 4 + 2 * (last & this.#mask), true);
  }

  /** Gives back the last popped head (last_avail_idx - 1), e.g. when no buffer space was free. */
  unpop(): void {
    this.#lastAvail = (this.#lastAvail - 1) & 0xffff;
  }

  /**
   * Writes a used element for chain `id` with `len` bytes written, at the
   * next used slot. Not visible to the driver until {@link publish}.
   */
  push(id: number, len: number): void {
    this.writeUsed(this.#nextUsed, id, len);
    this.#nextUsed = (this.#nextUsed + 1) & 0xffff;
  }

  /**
   * Makes pushed elements visible: stores used->idx with a full barrier, so
   * the elements are visible first and a following {@link needNotify} reads
   * used_event / flags after the driver can see the new idx. Returns the idx.
   */
  publish(): number {
    this.refresh();
    if (this.#nextUsed !== this.#publishedUsed) {
      this.#usedFields.store(1, this.#nextUsed);
      this.#publishedUsed = this.#nextUsed;
    }
    return this.#publishedUsed;
  }

  /**
   * Whether the driver wants a used-buffer notification for what was
   * published since the last call. With EVENT_IDX: vring_need_event(
   * used_event, new used idx, used idx at the last call); the first call
   * after a (re)start always says yes. Without: unless avail->flags has
   * VRING_AVAIL_F_NO_INTERRUPT. Nothing newly published: no.
   */
  needNotify(): boolean {
    this.refresh();
    const newIdx = this.#publishedUsed;
    const old = this.#signalledUsed;
    const valid = this.#signalledValid;
    this.#signalledUsed = newIdx;
    this.#signalledValid = true;
    if (valid && newIdx === old) return false;
    if (this.eventIdx) {
      const usedEvent = this.#availFields.load(2 + this.size);
      return !valid || vringNeedEvent(usedEvent, newIdx, old);
    }
    return (this.#availFields.load(0) & AvailFlags.NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver not to kick while the device is busy polling the ring.
   * Without EVENT_IDX: sets VRING_USED_F_NO_NOTIFY. With EVENT_IDX the flag
   * must stay 0; avail_event simply is not advanced, so kicks stop after the
   * next one.
   */
  disableNotify(): void {
    this.refresh();
    if (!this.eventIdx) {
      this.#usedFields.store(0, this.#usedFields.load(0) | UsedFlags.NO_NOTIFY);
    }
  }

  /**
   * Asks for a kick on the next buffer (avail_event = last_avail_idx with
   * EVENT_IDX, else clears NO_NOTIFY), then re-reads avail idx after a full
   * barrier. Returns true when buffers arrived in the meantime: the caller
   * must keep processing, as no kick will come for them. Throws
   * AvailIndexError on a corrupt avail idx.
   */
  enableNotify(): boolean {
    this.refresh();
    if (this.eventIdx) {
      this.#usedFields.store(2 + 4 * this.size, this.#lastAvail);
    } else {
      this.#usedFields.store(0, this.#usedFields.load(0) & ~UsedFlags.NO_NOTIFY);
    }
    return this.#readAvail() !== 0;
  }
}

function ringAddress(field: string, v: bigint | number): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new RingConfigError(field, `${field} ring address ${v} is not a safe integer`);
  }
  const b = BigInt(v);
  if (b < 0n || b >= 1n << 64n) {
    throw new RingConfigError(field, `${field} ring address ${b} outside [0, 2^64)`);
  }
  return b;
}

function checkIdx(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new RangeError(`${what} ${v} is not a u16`);
  }
}
