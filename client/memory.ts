/**
 * Guest memory of the built-in front-end: memfds we create, map and share
 * with the back-end (SET_MEM_TABLE or ADD_MEM_REG), and an allocator of
 * guest-physical buffers inside them for rings and request/reply buffers.
 *
 * Each region gets a guest-physical base and a fake "user address": the
 * back-end only uses them to translate ring (user) and descriptor
 * (guest-physical) addresses into its own mapping, so they need not be
 * where anything is mapped in this process. Addresses stay below 2^52 so
 * they are exact numbers all the way.
 *
 * @module
 */
import { closeAll, ftruncate, memfdCreate, MemfdFlags, MemoryMapping } from "../sys/mod.ts";
import { GuestMemory } from "../virtq/mod.ts";
import type { MemoryRegion as WireRegion } from "../decode/vhost_user.ts";
import { GuestMemoryExhaustedError } from "./errors.ts";

const PAGE = 4096;
const GIB = 1 << 30;
const MAX_ADDR = 2 ** 52;

interface Extent {
  start: number;
  end: number;
}

/**
 * First-fit allocator of one address range, with coalescing on free. Knows
 * nothing of memory: it hands out numbers in [base, base + size).
 */
export class GuestAllocator {
  /** First address managed. */
  readonly base: number;
  /** Bytes managed. */
  readonly size: number;
  #free: Extent[];
  #used = new Map<number, number>();
  #freeBytes: number;

  /** Manages [base, base + size); throws RangeError for an empty or unsafe range. */
  constructor(base: number, size: number) {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`allocator range 0x${base.toString(16)}+${size} is invalid`);
    }
    this.base = base;
    this.size = size;
    this.#free = [{ start: base, end: base + size }];
    this.#freeBytes = size;
  }

  /** Bytes not allocated (possibly fragmented). */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /** Allocations outstanding. */
  get allocations(): number {
    return this.#used.size;
  }

  /** Allocates `size` bytes aligned to `align` (a power of two); undefined when nothing fits. */
  tryAlloc(size: number, align = 16): number | undefined {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`allocation of ${size} bytes`);
    }
    if (!Number.isSafeInteger(align) || align <= 0 || (align & (align - 1)) !== 0) {
      throw new RangeError(`alignment ${align} is not a power of two`);
    }
    const free = this.#free;
    for (let i = 0; i < free.length; i++) {
      const e = free[i]!;
      const at = Math.ceil(e.start / align) * align;
      if (at + size > e.end) continue;
      // Split the extent into what is left before and after the allocation.
      const pieces: Extent[] = [];
      if (at > e.start) pieces.push({ start: e.start, end: at });
      if (at + size < e.end) pieces.push({ start: at + size, end: e.end });
      free.splice(i, 1, ...pieces);
      this.#used.set(at, size);
      this.#freeBytes -= size;
      return at;
    }
    return undefined;
  }

  /** Like {@link tryAlloc}; throws GuestMemoryExhaustedError when nothing fits. */
  alloc(size: number, align = 16): number {
    const at = this.tryAlloc(size, align);
    if (at === undefined) throw new GuestMemoryExhaustedError(size, align, this.#freeBytes);
    return at;
  }

  /** True when `addr` is the start of an outstanding allocation. */
  owns(addr: number): boolean {
    return this.#used.has(addr);
  }

  /** Releases the allocation starting at `addr`; RangeError if there is none (double free). */
  free(addr: number): void {
    const size = this.#used.get(addr);
    if (size === undefined) {
      throw new RangeError(`free of 0x${addr.toString(16)}: not an outstanding allocation`);
    }
    this.#used.delete(addr);
    this.#freeBytes += size;
    const free = this.#free;
    // Binary search for the first extent after the freed range.
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (free[mid]!.start < addr) lo = mid + 1;
      else hi = mid;
    }
    const ext: Extent = { start: addr, end: addr + size };
    const prev = free[lo - 1];
    const next = free[lo];
    if (prev !== undefined && prev.end === ext.start) {
      prev.end = ext.end;
      if (next !== undefined && next.start === prev.end) {
        prev.end = next.end;
        free.splice(lo, 1);
      }
    } else if (next !== undefined && next.start === ext.end) {
      next.start = ext.start;
    } else {
      free.splice(lo, 0, ext);
    }
  }
}

/** Options of {@link FrontendMemory.create}. */
export interface FrontendMemoryOptions {
  /** Total bytes (default 64 MiB), split evenly between the regions, page multiples. */
  size?: number;
  /** Number of regions (default 1, at most 8 for SET_MEM_TABLE). */
  regions?: number;
  /** Guest-physical address of region 0 (default 0x4000_0000); regions follow back to back. */
  guestPhysBase?: number;
  /** Fake user address of region 0 (default 0x7f00_0000_0000); regions 1 GiB-aligned apart. */
  userBase?: number;
  /**
   * One memfd for all regions, each at its own offset (as QEMU does for one
   * RAM block split around a hole); default false: one memfd per region.
   */
  oneFile?: boolean;
  /** memfd name (shows in /proc/PID/maps), default "vfstrace-guest-ram". */
  name?: string;
}

/** One shared region. */
export interface FrontendRegion {
  /** Position in {@link FrontendMemory.regions}. */
  readonly index: number;
  /** The memfd to send (owned by the FrontendMemory). */
  readonly fd: number;
  /** Guest-physical address of the first byte. */
  readonly guestPhysAddr: bigint;
  /** Fake user address of the first byte. */
  readonly userAddr: bigint;
  /** Size in bytes. */
  readonly size: number;
  /** Offset of the region in its fd. */
  readonly mmapOffset: bigint;
  /** The region's bytes in this process. */
  readonly bytes: Uint8Array;
}

/** A buffer allocated in guest memory. */
export interface GuestBuffer {
  /** Guest-physical address. */
  readonly addr: number;
  /** Size in bytes. */
  readonly size: number;
  /** Zero-copy view of the bytes (shared with the back-end). */
  readonly bytes: Uint8Array;
}

/**
 * Guest RAM owned by the front-end: memfds, their mappings, the virtq
 * {@link GuestMemory} map over them, and one allocator per region (a buffer
 * never straddles two regions, which the back-end would refuse).
 */
export class FrontendMemory {
  /** The memory map (guest-physical and user), for SplitQueueDriver and translation. */
  readonly guest: GuestMemory;
  #regions: FrontendRegion[];
  #allocators: GuestAllocator[];
  #mappings: MemoryMapping[];
  #fds: number[];
  #closed = false;

  private constructor(
    regions: FrontendRegion[],
    mappings: MemoryMapping[],
    fds: number[],
  ) {
    this.#regions = regions;
    this.#mappings = mappings;
    this.#fds = fds;
    this.guest = new GuestMemory(regions.map((r) => ({
      guestPhysAddr: r.guestPhysAddr,
      userAddr: r.userAddr,
      size: r.size,
      mmapOffset: r.mmapOffset,
      bytes: r.bytes,
    })));
    this.#allocators = regions.map((r) => new GuestAllocator(Number(r.guestPhysAddr), r.size));
  }

  /** Creates, sizes and maps the memfd(s). Throws SysError / RangeError; nothing leaks. */
  static create(options: FrontendMemoryOptions = {}): FrontendMemory {
    const count = options.regions ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 8) {
      throw new RangeError(`guest memory: ${count} regions (1 to 8)`);
    }
    const total = options.size ?? 64 * 1024 * 1024;
    const each = Math.floor(total / count / PAGE) * PAGE;
    if (!Number.isSafeInteger(total) || each < PAGE) {
      throw new RangeError(`guest memory: ${total} bytes cannot make ${count} page-sized regions`);
    }
    const gpaBase = options.guestPhysBase ?? 0x4000_0000;
    const userBase = options.userBase ?? 0x7f00_0000_0000;
    const userStride = Math.ceil(each / GIB) * GIB;
    if (gpaBase + count * each > MAX_ADDR || userBase + count * userStride > MAX_ADDR) {
      throw new RangeError("guest memory: addresses must stay below 2^52");
    }
    const name = options.name ?? "vfstrace-guest-ram";
    const fds: number[] = [];
    const mappings: MemoryMapping[] = [];
    const regions: FrontendRegion[] = [];
    try {
      if (options.oneFile) {
        const fd = memfdCreate(name, MemfdFlags.CLOEXEC);
        fds.push(fd);
        ftruncate(fd, each * count);
        mappings.push(MemoryMapping.map(fd, each * count));
      } else {
        for (let i = 0; i < count; i++) {
          const fd = memfdCreate(`${name}-${i}`, MemfdFlags.CLOEXEC);
          fds.push(fd);
          ftruncate(fd, each);
          mappings.push(MemoryMapping.map(fd, each));
        }
      }
      for (let i = 0; i < count; i++) {
        const shared = options.oneFile === true;
        const offset = shared ? i * each : 0;
        regions.push({
          index: i,
          fd: fds[shared ? 0 : i]!,
          guestPhysAddr: BigInt(gpaBase + i * each),
          userAddr: BigInt(userBase + i * userStride),
          size: each,
          mmapOffset: BigInt(offset),
          bytes: mappings[shared ? 0 : i]!.view(offset, each),
        });
      }
      return new FrontendMemory(regions, mappings, fds);
    } catch (err) {
      for (const m of mappings) m.unmap();
      closeAll(fds);
      throw err;
    }
  }

  /** The regions, in guest-physical order. */
  get regions(): readonly FrontendRegion[] {
    return this.#regions;
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The regions as SET_MEM_TABLE / ADD_MEM_REG describe them. */
  wireRegions(): WireRegion[] {
    return this.#regions.map((r) => ({
      guestPhysAddr: r.guestPhysAddr,
      memorySize: BigInt(r.size),
      userspaceAddr: r.userAddr,
      mmapOffset: r.mmapOffset,
    }));
  }

  /** Free bytes over all regions. */
  get freeBytes(): number {
    return this.#allocators.reduce((n, a) => n + a.freeBytes, 0);
  }

  /** Outstanding allocations over all regions. */
  get allocations(): number {
    return this.#allocators.reduce((n, a) => n + a.allocations, 0);
  }

  /**
   * Allocates `size` bytes aligned to `align` in the first region with room.
   * The bytes are not cleared. Throws GuestMemoryExhaustedError.
   */
  alloc(size: number, align = 16): GuestBuffer {
    this.#assertOpen();
    for (let i = 0; i < this.#allocators.length; i++) {
      const addr = this.#allocators[i]!.tryAlloc(size, align);
      if (addr !== undefined) return { addr, size, bytes: this.view(addr, size) };
    }
    throw new GuestMemoryExhaustedError(size, align, this.freeBytes);
  }

  /** Releases a buffer from {@link alloc} (ignored after {@link close}). */
  free(buffer: GuestBuffer | number): void {
    if (this.#closed) return;
    const addr = typeof buffer === "number" ? buffer : buffer.addr;
    const a = this.#allocators.find((x) => x.owns(addr));
    if (a === undefined) {
      throw new RangeError(`guest memory: free of 0x${addr.toString(16)}, not allocated`);
    }
    a.free(addr);
  }

  /** Zero-copy view of guest-physical [addr, addr + length). Throws MemoryAccessError. */
  view(addr: number | bigint, length: number): Uint8Array {
    return this.guest.translateGuest(addr, length);
  }

  /** The fake user address of guest-physical `addr` (what SET_VRING_ADDR carries). */
  guestToUser(addr: number | bigint, length = 1): bigint {
    return this.guest.guestToUser(addr, length);
  }

  /** Unmaps and closes the memfds. Idempotent. Views handed out read as empty afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.guest.clear();
    for (const m of this.#mappings) m.unmap();
    closeAll(this.#fds);
    this.#mappings = [];
    this.#fds = [];
  }

  /** `using` support. */
  [Symbol.dispose](): void {
    this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new RangeError("guest memory already closed");
  }
}
