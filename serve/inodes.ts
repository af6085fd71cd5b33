/**
 * The server's inode table: FUSE node ids ↔ host inodes, keyed by
 * (st_dev, st_ino) so hard links and repeated lookups share one entry. Each
 * entry holds an O_PATH|O_NOFOLLOW fd, and every later operation works
 * relative to that fd: nothing is ever resolved by a host path, so a symlink
 * or rename on the host cannot steer the server outside the shared directory.
 *
 * @module
 */
import { close, fstat, O, openat, S, type Stat } from "../sys/mod.ts";

/** One host inode the guest knows. */
export interface Inode {
  /** FUSE node id (1 is the shared directory). */
  readonly id: bigint;
  /** O_PATH fd of the inode. */
  readonly fd: number;
  /** st_dev. */
  readonly dev: bigint;
  /** st_ino. */
  readonly ino: bigint;
  /** File type bits (S_IFMT part of st_mode). */
  readonly type: number;
  /** Lookups the kernel holds (FORGET subtracts). */
  refs: bigint;
}

/** FUSE_ROOT_ID. */
export const ROOT_ID = 1n;

function key(dev: bigint, ino: bigint): string {
  return `${dev}:${ino}`;
}

/** Node ids ↔ O_PATH fds, with lookup counts. */
export class InodeTable {
  #byId = new Map<bigint, Inode>();
  #byKey = new Map<string, Inode>();
  #next = 2n;
  #root: Inode;

  /** Opens `dir` (the shared directory) as the root inode. */
  constructor(dir: string) {
    const fd = openat(-100, dir, O.PATH | O.DIRECTORY);
    const st = fstat(fd);
    this.#root = {
      id: ROOT_ID,
      fd,
      dev: st.dev,
      ino: st.ino,
      type: st.mode & S.IFMT,
      // The root is never forgotten: the kernel does not count its lookups.
      refs: 1n << 62n,
    };
    this.#byId.set(ROOT_ID, this.#root);
    this.#byKey.set(key(st.dev, st.ino), this.#root);
  }

  /** The shared directory. */
  get root(): Inode {
    return this.#root;
  }

  /** Entries held (root included). */
  get size(): number {
    return this.#byId.size;
  }

  /** The inode of node id `id`, if the kernel holds it. */
  get(id: bigint): Inode | undefined {
    return this.#byId.get(id);
  }

  /**
   * Looks `name` (one component, no '/') up under `parent` without following
   * a symlink, and counts one lookup. Throws SysError (ENOENT, …).
   */
  lookup(parent: Inode, name: Uint8Array): { inode: Inode; stat: Stat } {
    const fd = openat(parent.fd, name, O.PATH | O.NOFOLLOW);
    let st: Stat;
    try {
      st = fstat(fd);
    } catch (e) {
      close(fd);
      throw e;
    }
    return { inode: this.adopt(fd, st), stat: st };
  }

  /**
   * Takes `fd` (an O_PATH fd with stat `st`) into the table and counts one
   * lookup; when the inode is known already, `fd` is closed and the known
   * entry counted instead.
   */
  adopt(fd: number, st: Stat): Inode {
    const k = key(st.dev, st.ino);
    const known = this.#byKey.get(k);
    if (known !== undefined) {
      close(fd);
      known.refs++;
      return known;
    }
    const inode: Inode = {
      id: this.#next++,
      fd,
      dev: st.dev,
      ino: st.ino,
      type: st.mode & S.IFMT,
      refs: 1n,
    };
    this.#byId.set(inode.id, inode);
    this.#byKey.set(k, inode);
    return inode;
  }

  /** Drops `n` lookups of `id`; at zero the entry and its fd go. */
  forget(id: bigint, n: bigint): void {
    const inode = this.#byId.get(id);
    if (inode === undefined || inode === this.#root) return;
    inode.refs -= n;
    if (inode.refs > 0n) return;
    this.#byId.delete(id);
    this.#byKey.delete(key(inode.dev, inode.ino));
    close(inode.fd);
  }

  /** Closes every fd but the root's and forgets every entry (the guest reconnects afresh). */
  reset(): void {
    for (const inode of this.#byId.values()) {
      if (inode !== this.#root) close(inode.fd);
    }
    this.#byId.clear();
    this.#byKey.clear();
    this.#byId.set(ROOT_ID, this.#root);
    this.#byKey.set(key(this.#root.dev, this.#root.ino), this.#root);
  }

  /** Releases everything, root included. */
  close(): void {
    this.reset();
    close(this.#root.fd);
    this.#byId.clear();
    this.#byKey.clear();
  }
}
