/**
 * Guest memory as vhost-user describes it: a set of regions, each known by
 * its guest-physical address, its address in QEMU's process (the "user"
 * address), its size and its offset in the fd that was passed along. The
 * caller maps the fd (sys/ MemoryMapping) and hands in the region's bytes;
 * this map translates address ranges of either space into zero-copy views.
 *
 * Two address spaces matter: SET_VRING_ADDR gives ring addresses as QEMU
 * user (virtual) addresses, while descriptors carry guest-physical ones.
 *
 * A range must lie wholly inside one region. Ranges that leave a region,
 * straddle two adjacent regions, wrap around 2^64 or have absurd lengths
 * throw MemoryAccessError; nothing here reads outside a region's bytes.
 *
 * Lookups are the data-plane hot path (every descriptor is translated), so
 * addresses below 2^52 take a number-only path with a last-hit cache and a
 * binary search; bigints are used only at the API edge and for addresses
 * that do not fit a double exactly.
 *
 * @module
 */
import { type AddressSpace, MemoryAccessError, MemoryRegionError } from "./errors.ts";
import { MemoryMapping } from "../sys/memory.ts";

const TWO_52 = 2 ** 52;
const TWO_53 = 2 ** 53;
const TWO_64 = 1n << 64n;

/** What the caller knows about a region (one entry of SET_MEM_TABLE, or ADD_MEM_REG). */
export interface MemoryRegionInit {
  /** Guest-physical address of the first byte. */
  readonly guestPhysAddr: bigint | number;
  /** Size in bytes; must equal `bytes.byteLength`. */
  readonly size: bigint | number;
  /** Address of the first byte in QEMU's process (vhost-user "user address"). */
  readonly userAddr: bigint | number;
  /** Offset of the region in the passed fd (recorded, not used for access). */
  readonly mmapOffset?: bigint | number;
  /** The region's bytes, e.g. `mapping.view(mmapOffset, size)` of a MemoryMapping. */
  readonly bytes: Uint8Array;
}

/** How REM_MEM_REG names a region: guest address, user address and size (not the offset). */
export interface MemoryRegionKey {
  /** Guest-physical address of the first byte. */
  readonly guestPhysAddr: bigint | number;
  /** User address of the first byte. */
  readonly userAddr: bigint | number;
  /** Size in bytes. */
  readonly size: bigint | number;
}

/** One registered region. Immutable; removing it from the map does not unmap it. */
export class MemoryRegion {
  /** Guest-physical address of the first byte. */
  readonly guestPhysAddr: bigint;
  /** User (QEMU virtual) address of the first byte. */
  readonly userAddr: bigint;
  /** Offset in the fd it was mapped from. */
  readonly mmapOffset: bigint;
  /** Size in bytes. */
  readonly size: number;
  /** The region's bytes (zero-copy view of the mapping). */
  readonly bytes: Uint8Array;
  /** A DataView over exactly {@link bytes}, shared by all readers of this region. */
  readonly dataView: DataView;

  /** Validates `init`; throws MemoryRegionError on a bad size, address or detached view. */
  constructor(init: MemoryRegionInit) {
    const size = toSize(init.size);
    const gpa = toU64(init.guestPhysAddr, "guest address");
    const user = toU64(init.userAddr, "user address");
    const off = toU64(init.mmapOffset ?? 0n, "mmap offset");
    if (init.bytes.byteLength !== size) {
      throw new MemoryRegionError(
        `region at guest 0x${
          gpa.toString(16)
        }: ${init.bytes.byteLength} bytes given for size ${size}`,
      );
    }
    if (gpa + BigInt(size) > TWO_64 || user + BigInt(size) > TWO_64) {
      throw new MemoryRegionError(
        `region at guest 0x${gpa.toString(16)} / user 0x${
          user.toString(16)
        }, ${size} bytes, wraps around 2^64`,
      );
    }
    this.guestPhysAddr = gpa;
    this.userAddr = user;
    this.mmapOffset = off;
    this.size = size;
    this.bytes = init.bytes;
    this.dataView = new DataView(init.bytes.buffer, init.bytes.byteOffset, size);
  }

  /** One past the last guest-physical address. */
  get guestEnd(): bigint {
    return this.guestPhysAddr + BigInt(this.size);
  }

  /** One past the last user address. */
  get userEnd(): bigint {
    return this.userAddr + BigInt(this.size);
  }

  /** `guest 0x…-0x… user 0x… (N bytes)`, for messages. */
  toString(): string {
    return `guest 0x${this.guestPhysAddr.toString(16)}-0x${this.guestEnd.toString(16)} user 0x${
      this.userAddr.toString(16)
    } (${this.size} bytes)`;
  }
}

function toU64(v: bigint | number, what: string): bigint {
  if (typeof v === "number" && !Number.isSafeInteger(v)) {
    throw new MemoryRegionError(`${what} ${v} is not a safe integer (pass a bigint)`);
  }
  const b = BigInt(v);
  if (b < 0n || b >= TWO_64) throw new MemoryRegionError(`${what} ${b} outside [0, 2^64)`);
  return b;
}

function toSize(v: bigint | number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0 || BigInt(n) !== BigInt(v)) {
    throw new MemoryRegionError(`region size ${v} is not a positive safe integer`);
  }
  return n;
}

/**
 * Sorted index of the regions in one address space. Regions that end at or
 * below 2^53 are also kept in number arrays, so typical lookups never touch
 * a bigint.
 */
class AddressIndex {
  readonly space: AddressSpace;
  /** All regions, sorted by start in this space. */
  regions: MemoryRegion[] = [];
  #starts: bigint[] = [];
  #ends: bigint[] = [];
  /** Regions with exact number bounds, sorted by start. */
  #fast: MemoryRegion[] = [];
  #fastStart: number[] = [];
  #fastEnd: number[] = [];
  #last = 0;
  /** The region of the last successful lookup. */
  hit: MemoryRegion | null = null;

  constructor(space: AddressSpace) {
    this.space = space;
  }

  #start(r: MemoryRegion): bigint {
    return this.space === "user" ? r.userAddr : r.guestPhysAddr;
  }

  rebuild(regions: readonly MemoryRegion[]): void {
    this.regions = [...regions].sort((a, b) => {
      const x = this.#start(a);
      const y = this.#start(b);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    this.#starts = this.regions.map((r) => this.#start(r));
    this.#ends = this.regions.map((r) => this.#start(r) + BigInt(r.size));
    this.#fast = [];
    this.#fastStart = [];
    this.#fastEnd = [];
    for (let i = 0; i < this.regions.length; i++) {
      const end = this.#ends[i]!;
      // Regions beyond 2^53 are found by resolveBig (a fast-path miss falls through to it).
      if (end <= BigInt(TWO_53)) {
        this.#fast.push(this.regions[i]!);
        this.#fastStart.push(Number(this.#starts[i]!));
        this.#fastEnd.push(Number(end));
      }
    }
    this.#last = 0;
    this.hit = null;
  }

  /** First region overlapping [start, end) in this space, if any. */
  overlapping(start: bigint, end: bigint): MemoryRegion | undefined {
    for (let i = 0; i < this.regions.length; i++) {
      if (this.#starts[i]! < end && start < this.#ends[i]!) return this.regions[i];
    }
    return undefined;
  }

  /**
   * Offset of [addr, addr+len) in its region, which is left in {@link hit}.
   * `addr` and `len` must be integers in [0, 2^52]; otherwise use resolveBig.
   */
  resolveNumber(addr: number, len: number): number {
    const fs = this.#fastStart;
    const fe = this.#fastEnd;
    let i = this.#last;
    // Last hit first: consecutive descriptors almost always share a region.
    if (!(i < fs.length && addr >= fs[i]! && addr + len <= fe[i]!)) {
      let lo = 0;
      let hi = fs.length - 1;
      i = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (fs[mid]! <= addr) {
          i = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      // A zero-length range at the boundary of two adjacent regions may sit
      // at the end of the previous one; the search found the next.
      if (i < 0 || addr + len > fe[i]!) {
        return this.resolveBig(BigInt(addr), BigInt(len));
      }
      this.#last = i;
    }
    const r = this.#fast[i]!;
    if (r.bytes.byteLength !== r.size) throw this.#error(BigInt(addr), BigInt(len), "detached");
    this.hit = r;
    return addr - fs[i]!;
  }

  /** Like resolveNumber for any bigint range; the slow path, and the diagnosis of misses. */
  resolveBig(addr: bigint, len: bigint): number {
    if (addr < 0n || addr >= TWO_64) throw this.#error(clamp(addr), len, "bad-address");
    if (len < 0n || len > BigInt(TWO_52)) throw this.#error(addr, len, "bad-length");
    const end = addr + len;
    if (end > TWO_64) throw this.#error(addr, len, "wraps");
    for (let i = 0; i < this.regions.length; i++) {
      if (this.#starts[i]! <= addr && end <= this.#ends[i]!) {
        const r = this.regions[i]!;
        if (r.bytes.byteLength !== r.size) throw this.#error(addr, len, "detached");
        this.hit = r;
        return Number(addr - this.#starts[i]!);
      }
    }
    for (let i = 0; i < this.regions.length; i++) {
      const e = this.#ends[i]!;
      if (this.#starts[i]! <= addr && addr < e) {
        // Starts inside region i, ends past it: into a neighbour, or into nothing.
        const adjacent = this.#starts.some((s, j) => s <= e && e < this.#ends[j]!);
        throw this.#error(addr, len, adjacent ? "straddles-regions" : "leaves-region");
      }
    }
    throw this.#error(addr, len, "unmapped");
  }

  #error(addr: bigint, len: bigint, reason: MemoryAccessError["reason"]): MemoryAccessError {
    return new MemoryAccessError(this.space, addr, len, reason);
  }
}

function clamp(a: bigint): bigint {
  return a < 0n ? 0n : a >= TWO_64 ? TWO_64 - 1n : a;
}

/**
 * The guest's memory map: regions in both address spaces, and translation of
 * address ranges into zero-copy views.
 *
 * Register a region before the guest can use it and remove it before
 * unmapping its bytes; a region found detached anyway reads as a
 * MemoryAccessError ("detached"), never as a crash.
 */
export class GuestMemory {
  #guest = new AddressIndex("guest-physical");
  #user = new AddressIndex("user");
  #generation = 0;

  /** Creates a map, optionally with initial regions (validated like {@link setRegions}). */
  constructor(regions: readonly MemoryRegionInit[] = []) {
    if (regions.length > 0) this.setRegions(regions);
  }

  /** Registered regions, sorted by guest-physical address. */
  get regions(): readonly MemoryRegion[] {
    return this.#guest.regions;
  }

  /** Increases on every change of the map; queues re-translate their rings when it moves. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Adds one region (VHOST_USER_ADD_MEM_REG). Throws MemoryRegionError when it
   * overlaps a registered region in either address space.
   */
  addRegion(init: MemoryRegionInit): MemoryRegion {
    const r = new MemoryRegion(init);
    this.#checkOverlap(r, this.#guest.regions);
    this.#install([...this.#guest.regions, r]);
    return r;
  }

  /**
   * Removes the region with this guest address, user address and size
   * (VHOST_USER_REM_MEM_REG; the mmap offset is ignored) and returns it, so
   * the caller can unmap it. Throws MemoryRegionError when there is none.
   */
  removeRegion(key: MemoryRegionKey): MemoryRegion {
    const gpa = BigInt(key.guestPhysAddr);
    const user = BigInt(key.userAddr);
    const size = BigInt(key.size);
    const all = this.#guest.regions;
    const i = all.findIndex((r) =>
      r.guestPhysAddr === gpa && r.userAddr === user && BigInt(r.size) === size
    );
    if (i < 0) {
      throw new MemoryRegionError(
        `no region at guest 0x${gpa.toString(16)} user 0x${user.toString(16)} of ${size} bytes`,
      );
    }
    const removed = all[i]!;
    this.#install(all.filter((_, j) => j !== i));
    return removed;
  }

  /**
   * Replaces the whole map (VHOST_USER_SET_MEM_TABLE), all or nothing.
   * Returns the regions that were registered before.
   */
  setRegions(inits: readonly MemoryRegionInit[]): MemoryRegion[] {
    const fresh: MemoryRegion[] = [];
    for (const init of inits) {
      const r = new MemoryRegion(init);
      this.#checkOverlap(r, fresh);
      fresh.push(r);
    }
    const old = [...this.#guest.regions];
    this.#install(fresh);
    return old;
  }

  /** Removes every region; returns them. */
  clear(): MemoryRegion[] {
    return this.setRegions([]);
  }

  #checkOverlap(r: MemoryRegion, others: readonly MemoryRegion[]): void {
    for (const o of others) {
      const g = r.guestPhysAddr < o.guestEnd && o.guestPhysAddr < r.guestEnd;
      const u = r.userAddr < o.userEnd && o.userAddr < r.userEnd;
      if (g || u) {
        throw new MemoryRegionError(
          `region ${r} overlaps region ${o} in ${g ? "guest-physical" : "user"} space`,
        );
      }
    }
  }

  #install(regions: readonly MemoryRegion[]): void {
    this.#guest.rebuild(regions);
    this.#user.rebuild(regions);
    this.#generation++;
  }

  /**
   * Offset of the guest-physical range [addr, addr+length) inside its region;
   * the region is then {@link resolvedGuest}. The zero-allocation form of
   * {@link translateGuest} for hot loops. Throws MemoryAccessError.
   */
  resolveGuest(addr: bigint | number, length: number): number {
    return resolve(this.#guest, addr, length);
  }

  /** The region found by the last successful {@link resolveGuest} (or translateGuest). */
  get resolvedGuest(): MemoryRegion {
    const r = this.#guest.hit;
    if (r === null) throw new RangeError("resolvedGuest read before a successful resolveGuest");
    return r;
  }

  /** Like {@link resolveGuest} for user addresses; the region is then {@link resolvedUser}. */
  resolveUser(addr: bigint | number, length: number): number {
    return resolve(this.#user, addr, length);
  }

  /** The region found by the last successful {@link resolveUser} (or translateUser). */
  get resolvedUser(): MemoryRegion {
    const r = this.#user.hit;
    if (r === null) throw new RangeError("resolvedUser read before a successful resolveUser");
    return r;
  }

  /** A zero-copy view of guest-physical [addr, addr+length). Throws MemoryAccessError. */
  translateGuest(addr: bigint | number, length: bigint | number): Uint8Array {
    const off = resolve(this.#guest, addr, length);
    return this.#guest.hit!.bytes.subarray(off, off + Number(length));
  }

  /** A zero-copy view of user-address [addr, addr+length). Throws MemoryAccessError. */
  translateUser(addr: bigint | number, length: bigint | number): Uint8Array {
    const off = resolve(this.#user, addr, length);
    return this.#user.hit!.bytes.subarray(off, off + Number(length));
  }

  /** The view of [addr, addr+length) in `space`. */
  translate(space: AddressSpace, addr: bigint | number, length: bigint | number): Uint8Array {
    return space === "user" ? this.translateUser(addr, length) : this.translateGuest(addr, length);
  }

  /** The guest-physical address of user address `addr` ([addr, addr+length) must be mapped). */
  userToGuest(addr: bigint | number, length: bigint | number = 1): bigint {
    const off = resolve(this.#user, addr, length);
    return this.#user.hit!.guestPhysAddr + BigInt(off);
  }

  /** The user address of guest-physical `addr` ([addr, addr+length) must be mapped). */
  guestToUser(addr: bigint | number, length: bigint | number = 1): bigint {
    const off = resolve(this.#guest, addr, length);
    return this.#guest.hit!.userAddr + BigInt(off);
  }
}

function resolve(index: AddressIndex, addr: bigint | number, length: bigint | number): number {
  if (
    typeof addr === "number" && typeof length === "number" &&
    addr >= 0 && addr < TWO_52 && length >= 0 && length <= TWO_52 &&
    Number.isInteger(addr) && Number.isInteger(length)
  ) {
    return index.resolveNumber(addr, length);
  }
  return index.resolveBig(
    toBig(addr, index.space, "address"),
    toBig(length, index.space, "length"),
  );
}

function toBig(v: bigint | number, space: AddressSpace, what: "address" | "length"): bigint {
  if (typeof v === "bigint") return v;
  if (Number.isInteger(v)) return BigInt(v);
  // NaN, ±Infinity, fractions: reported, never converted.
  throw new MemoryAccessError(
    space,
    0n,
    0n,
    what === "address" ? "bad-address" : "bad-length",
    `${what} ${v}`,
  );
}

/** A memory region as vhost-user describes it (SET_MEM_TABLE, ADD_MEM_REG). */
export interface WireRegionLike {
  /** Guest-physical address. */
  readonly guestPhysAddr: bigint;
  /** Size in bytes. */
  readonly memorySize: bigint;
  /** The front-end's user address. */
  readonly userspaceAddr: bigint;
  /** Offset of the region in its fd; need not be page aligned. */
  readonly mmapOffset: bigint;
}

/** A region mapped from its fd: the mapping (the caller unmaps it) and its {@link GuestMemory} entry. */
export interface MappedRegion {
  /** The mmap, starting at the page boundary at or below the region's offset. */
  readonly mapping: MemoryMapping;
  /** What {@link GuestMemory.setRegions} / {@link GuestMemory.addRegion} take. */
  readonly init: MemoryRegionInit;
}

const PAGE = 4096n;

/**
 * Maps `fd` for `region`. mmap needs a page-aligned offset, so the mapping
 * starts at the page below and the region's bytes are a view past it. The fd
 * stays open (the caller may still pass it on).
 */
export function mapWireRegion(region: WireRegionLike, fd: number): MappedRegion {
  const aligned = (region.mmapOffset / PAGE) * PAGE;
  const delta = Number(region.mmapOffset - aligned);
  const size = Number(region.memorySize);
  const mapping = MemoryMapping.map(fd, size + delta, { offset: aligned });
  return {
    mapping,
    init: {
      guestPhysAddr: region.guestPhysAddr,
      size: region.memorySize,
      userAddr: region.userspaceAddr,
      mmapOffset: region.mmapOffset,
      bytes: mapping.view(delta, size),
    },
  };
}
