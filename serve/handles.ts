/**
 * Open file and directory handles (FUSE `fh`): real fds opened through
 * /proc/self/fd of an inode's O_PATH fd.
 *
 * @module
 */
import { close } from "../sys/mod.ts";

/** One open handle. */
export interface Handle {
  /** The fh given to the kernel. */
  readonly fh: bigint;
  /** Node id it was opened on. */
  readonly nodeid: bigint;
  /** The open fd. */
  readonly fd: number;
  /** A directory handle (OPENDIR) or a file handle (OPEN/CREATE). */
  readonly dir: boolean;
}

/** fh → open fd. */
export class HandleTable {
  #handles = new Map<bigint, Handle>();
  #next = 1n;

  /** Handles open. */
  get size(): number {
    return this.#handles.size;
  }

  /** Registers `fd`; returns its handle. */
  add(nodeid: bigint, fd: number, dir: boolean): Handle {
    const h: Handle = { fh: this.#next++, nodeid, fd, dir };
    this.#handles.set(h.fh, h);
    return h;
  }

  /** The handle `fh`, if open. */
  get(fh: bigint): Handle | undefined {
    return this.#handles.get(fh);
  }

  /** Closes and forgets `fh`; false if it was not open. */
  release(fh: bigint): boolean {
    const h = this.#handles.get(fh);
    if (h === undefined) return false;
    this.#handles.delete(fh);
    close(h.fd);
    return true;
  }

  /** Closes every handle. */
  reset(): void {
    for (const h of this.#handles.values()) close(h.fd);
    this.#handles.clear();
  }
}
