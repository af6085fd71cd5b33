/**
 * Shared memory: memfd_create, ftruncate, and mmap with zero-copy views.
 *
 * Guest RAM arrives from QEMU as memfds; vfstrace maps them and reads the
 * rings and buffers in place through {@link MemoryMapping.bytes}.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { lastErrno, SysError } from "./error.ts";
import { must } from "./fd.ts";

/** mmap protection bits. */
export const Prot = { NONE: 0, READ: 1, WRITE: 2 } as const;

/** mmap flags (x86_64). */
export const MapFlags = {
  SHARED: 0x01,
  PRIVATE: 0x02,
  ANONYMOUS: 0x20,
  NORESERVE: 0x4000,
  POPULATE: 0x8000,
} as const;

/** memfd_create flags. */
export const MemfdFlags = { CLOEXEC: 1, ALLOW_SEALING: 2 } as const;

const encoder = new TextEncoder();

/** Creates an anonymous memory file (close-on-exec by default); returns its fd. */
export function memfdCreate(name: string, flags: number = MemfdFlags.CLOEXEC): number {
  const cname = encoder.encode(`${name}\0`);
  return must("memfd_create", name, () => libc().memfd_create(cname, flags));
}

/** Sets the size of the file behind `fd`. */
export function ftruncate(fd: number, size: number | bigint): void {
  must("ftruncate", `fd ${fd}`, () => libc().ftruncate(fd, BigInt(size)));
}

/** Options for {@link MemoryMapping.map}. */
export interface MapOptions {
  /** Offset in the file, a multiple of the page size (default 0). */
  offset?: number | bigint;
  /** Protection, default read + write. */
  prot?: number;
  /** Flags, default MAP_SHARED. */
  flags?: number;
}

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/**
 * A live mmap of a file (or anonymous memory). {@link bytes} is a view of the
 * mapped pages themselves: writes are visible to every other mapping of the
 * same file, in this process or another.
 *
 * {@link unmap} detaches the view before releasing the pages, so a stale view
 * reads as empty (length 0) instead of faulting the process.
 */
export class MemoryMapping {
  #pointer: Deno.PointerObject | null;
  #buffer: ArrayBuffer;
  #bytes: Uint8Array;
  /** Length of the mapping in bytes. */
  readonly size: number;
  /** The fd that was mapped (-1 for anonymous memory); not owned by the mapping. */
  readonly fd: number;

  private constructor(pointer: Deno.PointerObject, size: number, fd: number) {
    this.#pointer = pointer;
    this.size = size;
    this.fd = fd;
    this.#buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, size);
    this.#bytes = new Uint8Array(this.#buffer);
  }

  /** Maps `size` bytes of `fd` (or anonymous memory when `fd` is -1). */
  static map(fd: number, size: number, options: MapOptions = {}): MemoryMapping {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`mmap of fd ${fd}: invalid size ${size}`);
    }
    const prot = options.prot ?? (Prot.READ | Prot.WRITE);
    let flags = options.flags ?? MapFlags.SHARED;
    if (fd < 0) flags |= MapFlags.ANONYMOUS;
    const ptr = libc().mmap(null, BigInt(size), prot, flags, fd, BigInt(options.offset ?? 0));
    if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
      throw new SysError("mmap", lastErrno() || Errno.EINVAL, `fd ${fd}, ${size} bytes`);
    }
    return new MemoryMapping(ptr, size, fd);
  }

  /** Anonymous private memory of `size` bytes (zero-filled). */
  static anonymous(size: number): MemoryMapping {
    return MemoryMapping.map(-1, size, { flags: MapFlags.PRIVATE });
  }

  /** True until {@link unmap} is called. */
  get mapped(): boolean {
    return this.#pointer !== null;
  }

  /** The whole mapping as bytes, without copying. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** The mapping's address in this process (for structures that hold pointers). */
  get address(): bigint {
    if (this.#pointer === null) throw new Error("mapping already unmapped");
    return BigInt(Deno.UnsafePointer.value(this.#pointer));
  }

  /** A zero-copy view of `length` bytes at `offset`; throws RangeError when out of bounds. */
  view(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.#bytes.byteLength) {
      throw new RangeError(
        `view [${offset}, +${length}) outside mapping of ${this.#bytes.byteLength} bytes`,
      );
    }
    return this.#bytes.subarray(offset, offset + length);
  }

  /** Releases the pages. Views obtained earlier become empty. Idempotent. */
  unmap(): void {
    const ptr = this.#pointer;
    if (ptr === null) return;
    this.#pointer = null;
    // Detach first: any Uint8Array on this buffer now has length 0.
    this.#buffer.transfer(0);
    this.#bytes = new Uint8Array(0);
    if (libc().munmap(ptr, BigInt(this.size)) < 0) {
      throw new SysError("munmap", lastErrno(), `${this.size} bytes`);
    }
  }

  /** `using` support: unmaps. */
  [Symbol.dispose](): void {
    this.unmap();
  }
}
