/**
 * Descriptor chains: the device-side walker, and a driver-side builder.
 *
 * The walker turns a head index into zero-copy views of the chain's
 * buffers, enforcing the split-ring rules (virtio 1.2 §2.7.5): indices in
 * range, no loops, device-readable before device-writable, one level of
 * indirection, INDIRECT never with NEXT, indirect tables of a whole,
 * non-zero number of descriptors, lengths that add up to at most 2^32 - 1,
 * every buffer wholly inside one memory region. The table is guest memory
 * the guest may rewrite while we walk: each descriptor is read exactly once
 * into locals, and whatever it says is checked before it is used. Any
 * violation is a ChainError; no other exception can escape for any bytes
 * of the table.
 *
 * The builder (SplitQueueDriver) plays the guest for tests and the built-in
 * test driver: a free list of descriptors, chains written directly or as
 * indirect tables, the avail ring and its idx, used entries collected back.
 *
 * @module
 */
import { ChainError, DriverError, MemoryAccessError } from "./errors.ts";
import type { GuestMemory, MemoryRegion } from "./memory.ts";
import {
  DESC_SIZE,
  DescFlags,
  MAX_QUEUE_SIZE,
  type SplitQueue,
  type SplitRingLayout,
  splitRingLayout,
  USED_ELEM_SIZE,
  type UsedElement,
  UsedFlags,
  vringNeedEvent,
} from "./split.ts";
import { Ring16 } from "./_ring16.ts";

const TWO_32 = 4294967296;

/** One descriptor of a walked chain, for recordings. */
export interface ChainDescriptor {
  /** Index in its table (the ring's table, or the indirect table). */
  readonly index: number;
  /** Guest-physical address. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly len: number;
  /** Flags as read (DescFlags bits; unknown bits kept). */
  readonly flags: number;
  /** `next` as read (meaningful with NEXT only). */
  readonly next: number;
  /** True for descriptors inside an indirect table. */
  readonly indirect: boolean;
}

/** A validated descriptor chain: views of its buffers, readable ones first. */
export interface DescriptorChain {
  /** Head index (the id to push to the used ring). */
  readonly head: number;
  /** Device-readable buffers, zero-copy views into guest memory, in chain order. */
  readonly readable: Uint8Array[];
  /** Device-writable buffers, zero-copy views into guest memory, in chain order. */
  readonly writable: Uint8Array[];
  /** Sum of the readable lengths. */
  readonly readableLength: number;
  /** Sum of the writable lengths. */
  readonly writableLength: number;
  /**
   * Every descriptor read, including the one pointing at an indirect table
   * (flag INDIRECT); empty when the walker was created with `record: false`.
   */
  readonly descriptors: ChainDescriptor[];
  /** True when the chain went through an indirect table. */
  readonly indirect: boolean;
}

/** Limits and negotiated features for {@link ChainWalker}. */
export interface ChainWalkerOptions {
  /** VIRTIO_F_INDIRECT_DESC negotiated (default true); without it INDIRECT is an error. */
  readonly indirect?: boolean;
  /**
   * Most buffer descriptors in one chain, direct and indirect together
   * (default: the queue size, as the spec bounds chains by it).
   */
  readonly maxDescriptors?: number;
  /** Most bytes in one chain, readable and writable together (default 2^32 - 1). */
  readonly maxTotalLength?: number;
  /** Largest indirect table accepted, in descriptors (default 32768). */
  readonly maxIndirectEntries?: number;
  /** Fill {@link DescriptorChain.descriptors} (default true); off saves an object a descriptor. */
  readonly record?: boolean;
}

const NO_DESCRIPTORS: ChainDescriptor[] = [];
Object.freeze(NO_DESCRIPTORS);

/**
 * Walks descriptor chains of one SplitQueue. Reuses its loop-detection
 * state between walks, so one walker per queue; not re-entrant.
 */
export class ChainWalker {
  #queue: SplitQueue;
  #indirect: boolean;
  #maxDescriptors: number;
  #maxTotal: number;
  #maxIndirect: number;
  #record: boolean;
  /** Per-descriptor stamp of the walk that last visited it: loop detection without clearing. */
  #seen: Uint32Array;
  #seenIndirect = new Uint32Array(0);
  #stamp = 0;

  /** Creates a walker for `queue`; throws RangeError on nonsensical limits. */
  constructor(queue: SplitQueue, options: ChainWalkerOptions = {}) {
    this.#queue = queue;
    this.#indirect = options.indirect ?? true;
    this.#maxDescriptors = limit(options.maxDescriptors ?? queue.size, "maxDescriptors");
    this.#maxTotal = limit(options.maxTotalLength ?? 0xffff_ffff, "maxTotalLength");
    this.#maxIndirect = limit(options.maxIndirectEntries ?? MAX_QUEUE_SIZE, "maxIndirectEntries");
    if (this.#maxIndirect > 0x0fff_ffff) throw new RangeError("maxIndirectEntries too large");
    this.#record = options.record ?? true;
    this.#seen = new Uint32Array(queue.size);
  }

  /** The queue this walker reads. */
  get queue(): SplitQueue {
    return this.#queue;
  }

  /**
   * Pops the next available head and walks it; null when the ring is empty.
   * Throws AvailIndexError (corrupt avail idx) or ChainError (the head was
   * consumed: the caller decides whether to return it used with length 0).
   */
  pop(): DescriptorChain | null {
    const head = this.#queue.popHead();
    return head < 0 ? null : this.walk(head);
  }

  /** Walks the chain starting at `head`. Throws ChainError when it is malformed. */
  walk(head: number): DescriptorChain {
    const q = this.#queue;
    q.refresh();
    const size = q.size;
    if (!(Number.isInteger(head) && head >= 0 && head < size)) {
      throw new ChainError(
        "head-out-of-range",
        head,
        -1,
        false,
        `head ${head} ≥ queue size ${size}`,
      );
    }
    const mem = q.memory;
    let stamp = ++this.#stamp;
    if (stamp === 0xffff_ffff) {
      this.#seen.fill(0);
      this.#seenIndirect.fill(0);
      this.#stamp = stamp = 1;
    }
    const record = this.#record;
    const descriptors = record ? [] as ChainDescriptor[] : NO_DESCRIPTORS;
    const readable: Uint8Array[] = [];
    const writable: Uint8Array[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let count = 0;
    let sawWritable = false;

    let seen = this.#seen;
    let dv = q.descDataView;
    let base = q.descByteOffset;
    let entries = size;
    let inIndirect = false;
    let i = head;

    for (;;) {
      if (seen[i] === stamp) {
        throw new ChainError("loop", head, i, inIndirect, `descriptor ${i} reached twice`);
      }
      seen[i] = stamp;
      // Read the whole descriptor once: the guest may rewrite it behind us.
      const o = base + DESC_SIZE * i;
      const lo = dv.getUint32(o, true);
      const hi = dv.getUint32(o + 4, true);
      const len = dv.getUint32(o + 8, true);
      const flags = dv.getUint16(o + 12, true);
      const next = dv.getUint16(o + 14, true);
      // Below 2^52 an address is an exact number: the lookup stays bigint-free.
      const addr: number | bigint = hi < 0x10_0000
        ? hi * TWO_32 + lo
        : (BigInt(hi) << 32n) | BigInt(lo);

      if ((flags & DescFlags.INDIRECT) !== 0) {
        if (inIndirect) {
          throw new ChainError(
            "nested-indirect",
            head,
            i,
            true,
            "INDIRECT inside an indirect table",
          );
        }
        if (!this.#indirect) {
          throw new ChainError(
            "indirect-not-negotiated",
            head,
            i,
            false,
            "INDIRECT without VIRTIO_F_INDIRECT_DESC",
          );
        }
        if ((flags & DescFlags.NEXT) !== 0) {
          throw new ChainError("indirect-with-next", head, i, false, "INDIRECT together with NEXT");
        }
        if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > this.#maxIndirect) {
          throw new ChainError(
            "bad-indirect-length",
            head,
            i,
            false,
            `indirect table of ${len} bytes (needs a non-zero multiple of 16, at most ${this.#maxIndirect} entries)`,
          );
        }
        const off = this.#resolve(mem, addr, len, head, i, false, "indirect table");
        if (record) {
          descriptors.push({ index: i, addr: BigInt(addr), len, flags, next, indirect: false });
        }
        entries = len / DESC_SIZE;
        dv = mem.resolvedGuest.dataView;
        base = off;
        inIndirect = true;
        seen = this.#indirectSeen(entries);
        i = 0;
        continue;
      }

      if (++count > this.#maxDescriptors) {
        throw new ChainError(
          "chain-too-long",
          head,
          i,
          inIndirect,
          `more than ${this.#maxDescriptors} descriptors`,
        );
      }
      const isWrite = (flags & DescFlags.WRITE) !== 0;
      if (isWrite) {
        sawWritable = true;
      } else if (sawWritable) {
        throw new ChainError(
          "writable-before-readable",
          head,
          i,
          inIndirect,
          "device-readable descriptor after a device-writable one",
        );
      }
      if (readableLength + writableLength + len > this.#maxTotal) {
        throw new ChainError(
          "length-overflow",
          head,
          i,
          inIndirect,
          `chain length ${readableLength + writableLength + len} exceeds ${this.#maxTotal}`,
        );
      }
      const off = this.#resolve(mem, addr, len, head, i, inIndirect, "buffer");
      const rb = mem.resolvedGuest.bytes;
      // The constructor is cheaper than subarray (no species lookup); same view.
      const view = new Uint8Array(rb.buffer, rb.byteOffset + off, len);
      if (isWrite) {
        writable.push(view);
        writableLength += len;
      } else {
        readable.push(view);
        readableLength += len;
      }
      if (record) {
        descriptors.push({ index: i, addr: BigInt(addr), len, flags, next, indirect: inIndirect });
      }
      if ((flags & DescFlags.NEXT) === 0) break;
      if (next >= entries) {
        throw new ChainError(
          "next-out-of-range",
          head,
          i,
          inIndirect,
          `next ${next} ≥ ${inIndirect ? "indirect table entries" : "queue size"} ${entries}`,
        );
      }
      i = next;
    }
    return {
      head,
      readable,
      writable,
      readableLength,
      writableLength,
      descriptors,
      indirect: inIndirect,
    };
  }

  #resolve(
    mem: GuestMemory,
    addr: number | bigint,
    len: number,
    head: number,
    index: number,
    indirect: boolean,
    what: string,
  ): number {
    try {
      return mem.resolveGuest(addr, len);
    } catch (e) {
      if (!(e instanceof MemoryAccessError)) throw e;
      throw new ChainError("address-out-of-range", head, index, indirect, `${what}: ${e.message}`, {
        cause: e,
      });
    }
  }

  #indirectSeen(entries: number): Uint32Array {
    if (this.#seenIndirect.length < entries) {
      // Grows to the largest table seen (at most maxIndirectEntries); zeros never match a stamp.
      this.#seenIndirect = new Uint32Array(Math.max(entries, this.#seenIndirect.length * 2, 64));
    }
    return this.#seenIndirect;
  }
}

function limit(v: number, what: string): number {
  if (!(Number.isSafeInteger(v) && v >= 1)) throw new RangeError(`${what} ${v} must be ≥ 1`);
  return v;
}

// ---------------------------------------------------------------------------
// Driver side

/** A guest buffer: guest-physical address and length. */
export interface BufferSpec {
  /** Guest-physical address. */
  readonly addr: bigint | number;
  /** Length in bytes (u32). */
  readonly len: number;
}

/** A descriptor exactly as written to a table; nothing is checked (for malformed rings). */
export interface RawDescriptor {
  /** Guest-physical address (u64). */
  readonly addr: bigint | number;
  /** Length (u32). */
  readonly len: number;
  /** Flags (u16). */
  readonly flags: number;
  /** Next index (u16). */
  readonly next: number;
}

/** Where the driver's rings are (guest-physical addresses). */
export interface SplitQueueDriverOptions {
  /** Queue size. */
  readonly size: number;
  /** Descriptor table address (16-aligned). */
  readonly desc: bigint | number;
  /** Avail ring address (2-aligned). */
  readonly avail: bigint | number;
  /** Used ring address (4-aligned). */
  readonly used: bigint | number;
  /** VIRTIO_F_EVENT_IDX negotiated (default false). */
  readonly eventIdx?: boolean;
  /** Zero the three parts first, as a driver allocating them does (default true). */
  readonly initialize?: boolean;
}

/** Options of {@link SplitQueueDriver.addChain}. */
export interface AddChainOptions {
  /**
   * Write the buffers as an indirect table at this guest-physical address
   * (16 bytes per buffer) and use one ring descriptor for the chain.
   */
  readonly indirectTable?: bigint | number;
}

/**
 * The driver (guest) side of a split queue, for tests and the built-in test
 * driver: it mirrors what the walker checks. Descriptors come from a free
 * list kept outside guest memory, so a device scribbling on the table
 * cannot corrupt it.
 */
export class SplitQueueDriver {
  /** Queue size. */
  readonly size: number;
  /** VIRTIO_F_EVENT_IDX in effect. */
  readonly eventIdx: boolean;
  /** The ring layout. */
  readonly layout: SplitRingLayout;
  #memory: GuestMemory;
  #mask: number;
  #descDv: DataView;
  #descBase: number;
  #availDv: DataView;
  #availBase: number;
  #usedDv: DataView;
  #usedBase: number;
  #availFields: Ring16;
  #usedFields: Ring16;
  #freeNext: Uint16Array;
  #freeHead = 0;
  #free: number;
  #chainTail: Uint16Array;
  #chainCount: Uint16Array;
  #outstanding: Uint8Array;
  #availIdx = 0;
  #added = 0;
  #lastUsed = 0;
  #kicked = 0;
  #kickedValid = false;

  /** Maps the rings (MemoryAccessError if they are not in memory) and sets up the free list. */
  constructor(memory: GuestMemory, options: SplitQueueDriverOptions) {
    this.layout = splitRingLayout(options.size, options.eventIdx ?? false);
    this.size = options.size;
    this.eventIdx = options.eventIdx ?? false;
    this.#memory = memory;
    this.#mask = options.size - 1;
    const desc = part(memory, options.desc, this.layout.descBytes);
    const avail = part(memory, options.avail, this.layout.availBytes);
    const used = part(memory, options.used, this.layout.usedBytes);
    if (options.initialize ?? true) {
      desc.region.bytes.fill(0, desc.offset, desc.offset + this.layout.descBytes);
      avail.region.bytes.fill(0, avail.offset, avail.offset + this.layout.availBytes);
      used.region.bytes.fill(0, used.offset, used.offset + this.layout.usedBytes);
    }
    this.#descDv = desc.region.dataView;
    this.#descBase = desc.offset;
    this.#availDv = avail.region.dataView;
    this.#availBase = avail.offset;
    this.#usedDv = used.region.dataView;
    this.#usedBase = used.offset;
    this.#availFields = new Ring16(avail.region, avail.offset, this.layout.availBytes >> 1);
    this.#usedFields = new Ring16(used.region, used.offset, this.layout.usedBytes >> 1);
    this.#freeNext = new Uint16Array(options.size);
    for (let i = 0; i < options.size; i++) this.#freeNext[i] = (i + 1) & 0xffff;
    this.#free = options.size;
    this.#chainTail = new Uint16Array(options.size);
    this.#chainCount = new Uint16Array(options.size);
    this.#outstanding = new Uint8Array(options.size);
    this.#availIdx = this.#availFields.load(1);
    this.#lastUsed = this.#usedFields.load(1);
  }

  /** Free descriptors left. */
  get freeCount(): number {
    return this.#free;
  }

  /** avail idx as last published. */
  get availIdx(): number {
    return this.#availIdx;
  }

  /** Heads added since the last {@link publish}. */
  get unpublished(): number {
    return this.#added;
  }

  /**
   * Writes a chain of `readable` then `writable` buffers into free
   * descriptors (or into an indirect table) and queues its head in the avail
   * ring; {@link publish} makes it visible. Returns the head. Throws
   * DriverError when there are not enough free descriptors.
   */
  addChain(
    readable: readonly BufferSpec[],
    writable: readonly BufferSpec[],
    options: AddChainOptions = {},
  ): number {
    const total = readable.length + writable.length;
    if (total === 0) throw new DriverError("a chain needs at least one buffer");
    if (this.#added >= this.size) throw new DriverError("avail ring full of unpublished heads");
    const tableAddr = options.indirectTable;
    const n = tableAddr !== undefined ? 1 : total;
    if (n > this.#free) {
      throw new DriverError(`chain of ${n} descriptors, ${this.#free} free`);
    }
    const head = this.#freeHead;
    if (tableAddr !== undefined) {
      const table = this.#memory.translateGuest(tableAddr, DESC_SIZE * total);
      const tdv = new DataView(table.buffer, table.byteOffset, table.byteLength);
      let k = 0;
      for (const list of [readable, writable]) {
        for (const b of list) {
          const last = k === total - 1;
          writeDesc(tdv, DESC_SIZE * k, {
            addr: b.addr,
            len: b.len,
            flags: (list === writable ? DescFlags.WRITE : 0) | (last ? 0 : DescFlags.NEXT),
            next: last ? 0 : k + 1,
          });
          k++;
        }
      }
      writeDesc(this.#descDv, this.#descBase + DESC_SIZE * head, {
        addr: tableAddr,
        len: DESC_SIZE * total,
        flags: DescFlags.INDIRECT,
        next: 0,
      });
      this.#chainTail[head] = head;
      this.#freeHead = this.#freeNext[head]!;
    } else {
      let cur = head;
      let k = 0;
      let tail = head;
      for (const list of [readable, writable]) {
        for (const b of list) {
          const last = k === total - 1;
          const next = this.#freeNext[cur]!;
          writeDesc(this.#descDv, this.#descBase + DESC_SIZE * cur, {
            addr: b.addr,
            len: b.len,
            flags: (list === writable ? DescFlags.WRITE : 0) | (last ? 0 : DescFlags.NEXT),
            next: last ? 0 : next,
          });
          tail = cur;
          cur = next;
          k++;
        }
      }
      this.#chainTail[head] = tail;
      this.#freeHead = cur;
    }
    this.#free -= n;
    this.#chainCount[head] = n;
    this.#outstanding[head] = 1;
    this.pushAvail(head);
    return head;
  }

  /**
   * Puts `head` into the next avail slot without any bookkeeping (raw: for
   * malformed rings); {@link publish} exposes it.
   */
  pushAvail(head: number): void {
    const slot = (this.#availIdx + this.#added) & this.#mask;
    this.#availDv.setUint16(this.#availBase + 4 + 2 * slot, head & 0xffff, true);
    this.#added++;
  }

  /** Exposes the queued heads: avail->idx += added, ordered after the ring writes. Returns idx. */
  publish(): number {
    this.#availIdx = (this.#availIdx + this.#added) & 0xffff;
    this.#added = 0;
    this.#availFields.store(1, this.#availIdx);
    return this.#availIdx;
  }

  /**
   * Whether the device wants a kick for what was published since the last
   * call: vring_need_event(avail_event, idx, idx at last call) with
   * EVENT_IDX, else unless used->flags has NO_NOTIFY.
   */
  needKick(): boolean {
    const newIdx = this.#availIdx;
    const old = this.#kicked;
    const valid = this.#kickedValid;
    this.#kicked = newIdx;
    this.#kickedValid = true;
    if (valid && newIdx === old) return false;
    if (this.eventIdx) {
      return !valid || vringNeedEvent(this.#usedFields.load(2 + 4 * this.size), newIdx, old);
    }
    return (this.#usedFields.load(0) & UsedFlags.NO_NOTIFY) === 0;
  }

  /**
   * Takes the used elements published since the last call and frees their
   * descriptors. Throws DriverError when the device returned an id that is
   * not an outstanding head, or moved used idx by more than the queue size.
   */
  collectUsed(): UsedElement[] {
    const idx = this.#usedFields.load(1);
    const n = (idx - this.#lastUsed) & 0xffff;
    if (n > this.size) throw new DriverError(`used idx jumped by ${n} > size ${this.size}`);
    const out: UsedElement[] = [];
    for (let k = 0; k < n; k++) {
      const o = this.#usedBase + 4 + USED_ELEM_SIZE * ((this.#lastUsed + k) & this.#mask);
      const id = this.#usedDv.getUint32(o, true);
      const len = this.#usedDv.getUint32(o + 4, true);
      if (id >= this.size || this.#outstanding[id] !== 1) {
        throw new DriverError(`device used id ${id}, which is not an outstanding head`);
      }
      this.#outstanding[id] = 0;
      this.#freeNext[this.#chainTail[id]!] = this.#freeHead;
      this.#freeHead = id;
      this.#free += this.#chainCount[id]!;
      out.push({ id, len });
    }
    this.#lastUsed = idx;
    return out;
  }

  /**
   * Re-reads avail idx and used idx from the rings into the driver's state
   * (after the indices were set from outside, e.g. to test wrap-around).
   */
  resync(): void {
    this.#availIdx = this.#availFields.load(1);
    this.#added = 0;
    this.#lastUsed = this.#usedFields.load(1);
    this.#kickedValid = false;
  }

  /** Writes descriptor `index` of the ring's table verbatim (raw). */
  writeDescriptor(index: number, d: RawDescriptor): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`descriptor ${index} outside queue of size ${this.size}`);
    }
    writeDesc(this.#descDv, this.#descBase + DESC_SIZE * index, d);
  }

  /** Writes `entries` verbatim as a descriptor table at guest-physical `addr` (raw). */
  writeTable(addr: bigint | number, entries: readonly RawDescriptor[]): void {
    const t = this.#memory.translateGuest(addr, DESC_SIZE * entries.length);
    const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
    entries.forEach((d, k) => writeDesc(dv, DESC_SIZE * k, d));
  }

  /** Writes avail->idx verbatim (raw; e.g. to make it jump). */
  setAvailIdx(idx: number): void {
    this.#availIdx = idx & 0xffff;
    this.#added = 0;
    this.#availFields.store(1, this.#availIdx);
  }

  /** Writes avail->flags (VRING_AVAIL_F_NO_INTERRUPT). */
  setAvailFlags(flags: number): void {
    this.#availFields.store(0, flags & 0xffff);
  }

  /** Writes avail->used_event (EVENT_IDX). */
  setUsedEvent(idx: number): void {
    if (!this.eventIdx) throw new RangeError("used_event does not exist without EVENT_IDX");
    this.#availFields.store(2 + this.size, idx & 0xffff);
  }
}

function part(
  memory: GuestMemory,
  addr: bigint | number,
  length: number,
): { region: MemoryRegion; offset: number } {
  const offset = memory.resolveGuest(addr, length);
  return { region: memory.resolvedGuest, offset };
}

function writeDesc(dv: DataView, o: number, d: RawDescriptor): void {
  const a = BigInt(d.addr);
  dv.setBigUint64(o, BigInt.asUintN(64, a), true);
  dv.setUint32(o + 8, d.len >>> 0, true);
  dv.setUint16(o + 12, d.flags & 0xffff, true);
  dv.setUint16(o + 14, d.next & 0xffff, true);
}
