/**
 * The FUSE file server: answers each FUSE request by acting on the shared
 * directory through fds (see inodes.ts), writing the reply straight into the
 * descriptor chain's writable buffers. READ data goes from the file into
 * guest memory with one preadv, WRITE data from guest memory to the file with
 * one pwritev: no copy in between.
 *
 * ACCESS is decided from the inode's mode bits and the caller's uid/gid
 * (see {@link accessAllowed}): the server cannot take on the caller's
 * credentials per request.
 *
 * Opcodes answered ENOSYS, as the reference daemons do, so the guest kernel
 * falls back or remembers the lack: IOCTL, POLL, BMAP (no block devices),
 * SETUPMAPPING and REMOVEMAPPING (DAX needs a shared memory window this
 * device does not offer), NOTIFY_REPLY, COPY_FILE_RANGE_64, CUSE_INIT,
 * unknown opcodes; the xattr family without `xattr`; GETLK/SETLK/SETLKW
 * without `posixLock` (never sent then: the kernel keeps locks local unless
 * POSIX_LOCKS is negotiated).
 *
 * @module
 */
import {
  At,
  close,
  copyFileRange,
  dup,
  fallocate,
  fchmodat,
  fchownat,
  fcntlLock,
  Flock,
  flock,
  fstat,
  fstatfs,
  fsync,
  ftruncate,
  getdents64,
  getRlimitNofile,
  getxattr,
  linkat,
  listxattr,
  LockCmd,
  LockType,
  lseek,
  mkdirat,
  mknodat,
  O,
  openat,
  preadv,
  procFdPath,
  pwritev,
  readlinkat,
  removexattr,
  renameat2,
  S,
  Seek,
  setxattr,
  type Stat,
  statx,
  StatxMask,
  StatxSync,
  symlinkat,
  syncfs,
  SysError,
  type TimeSpec,
  unlinkat,
  utimensat,
} from "../sys/mod.ts";
import { Errno } from "../sys/errno.ts";
import {
  decodeName,
  decodeRequest,
  encodeErrorReply,
  encodeName,
  encodeReplySegments,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  type FuseDirentInit,
  fuseOp,
  type FuseReplyInit,
  type FuseRequest,
  FuseSession,
  InitFlags,
  Opcode,
  OUT_HEADER_SIZE,
  type StructInit,
} from "../decode/fuse.ts";
import { type Inode, InodeTable } from "./inodes.ts";
import { HandleTable } from "./handles.ts";

/** How long the guest may cache entries and attributes (virtiofsd's `--cache`). */
export type CacheMode = "auto" | "always" | "metadata" | "never";

/** Options of {@link FileServer}. */
export interface FileServerOptions {
  /** The shared directory. */
  sharedDir: string;
  /** Caching policy (default auto). */
  cache?: CacheMode;
  /** Serve extended attributes (default false: the xattr family answers ENOSYS). */
  xattr?: boolean;
  /** Refuse every change with EROFS. */
  readonly?: boolean;
  /** Tell the guest about submounts (FUSE_SUBMOUNTS, FUSE_ATTR_SUBMOUNT on mount points). */
  announceSubmounts?: boolean;
  /** Serve POSIX byte-range locks (negotiates POSIX_LOCKS). */
  posixLock?: boolean;
  /** Serve flock(2) locks (negotiates FLOCK_LOCKS). */
  flock?: boolean;
  /**
   * POSIX ACLs (negotiates POSIX_ACL; needs `xattr`): the guest checks and
   * sets them, as system.posix_acl_* xattrs passed through to the host.
   */
  posixAcl?: boolean;
  /** Let the guest cache writes (negotiates WRITEBACK_CACHE). */
  writeback?: boolean;
  /** Allow opening device nodes (default false: EPERM). */
  allowDevices?: boolean;
  /**
   * Most fds the guest may make the server hold (inodes, open handles, lock
   * owners); past it, requests that would open one more answer EMFILE.
   * Default: the open-file limit less {@link FD_RESERVE}.
   */
  maxFds?: number;
  /** Diagnostics. */
  log?: (message: string) => void;
}

/** fds kept for the server itself (event loop, socket, eventfds, capture) below the limit. */
export const FD_RESERVE = 256;

/** Opcodes that make the server hold one more fd. */
const OPENS_FD: ReadonlySet<number> = new Set([
  Opcode.LOOKUP,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.SYMLINK,
  Opcode.LINK,
  Opcode.OPEN,
  Opcode.OPENDIR,
  Opcode.CREATE,
  Opcode.TMPFILE,
]);

/** Oldest protocol minor served: 7.31 brought the fuse_init_out this server relies on. */
export const MIN_MINOR = 31;
/** Largest WRITE (and READ) the server negotiates: 1 MiB. */
export const MAX_WRITE = 1 << 20;
const PAGE = 4096;

const FATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  KILL_SUIDGID: 1 << 11,
} as const;
const OPEN_KILL_SUIDGID = 1;
const WRITE_KILL_SUIDGID = 4;
const FOPEN = { DIRECT_IO: 1, KEEP_CACHE: 2, CACHE_DIR: 8 } as const;
const GETATTR_FH = 1;
const FSYNC_FDATASYNC = 1;
const RELEASE_FLOCK_UNLOCK = 2;
const LK_FLOCK = 1;
const ATTR_SUBMOUNT = 1;
/** OFFSET_MAX: a FUSE lock range ending here runs to the end of the file. */
const OFFSET_MAX = 0x7fff_ffff_ffff_ffffn;
const DIRENT_HEAD = 24;
const ENTRY_OUT_SIZE = 128;
const SETLKW_RETRY_MS = 10;
const CAPABILITY_XATTR = new TextEncoder().encode("security.capability");
const ACL_ACCESS = "system.posix_acl_access";
const ACL_DEFAULT = new TextEncoder().encode("system.posix_acl_default");
const SETXATTR_ACL_KILL_SGID = 1;
/** statx fields `struct fuse_statx` carries: the basic ones and btime. */
const STATX_CARRIED = StatxMask.BASIC_STATS | StatxMask.BTIME;

const flag = (name: string): bigint => InitFlags.bit(name) ?? 0n;

/** An error a handler throws to answer `-errno`. */
export class FuseError extends Error {
  /** errno to answer. */
  readonly errno: number;
  /** Creates the error. */
  constructor(errno: number, message: string) {
    super(message);
    this.name = "FuseError";
    this.errno = errno;
  }
}

/** What {@link FileServer.handle} did with one request. */
export interface Served {
  /** The request as decoded (undefined when it did not decode). */
  request: FuseRequest | undefined;
  /** Bytes written to the writable buffers (0: no reply, e.g. FORGET). */
  len: number;
}

function u64(v: bigint): bigint {
  return BigInt.asUintN(64, v);
}

function attrOf(st: Stat, flags = 0): StructInit {
  return {
    ino: st.ino,
    size: u64(st.size),
    blocks: u64(st.blocks),
    atime: u64(st.atime),
    mtime: u64(st.mtime),
    ctime: u64(st.ctime),
    atimensec: st.atimeNsec,
    mtimensec: st.mtimeNsec,
    ctimensec: st.ctimeNsec,
    mode: st.mode,
    nlink: Number(BigInt.asUintN(32, st.nlink)),
    uid: st.uid,
    gid: st.gid,
    // The kernel's 32-bit dev encoding equals glibc's low word for usual numbers.
    rdev: Number(BigInt.asUintN(32, st.rdev)),
    blksize: st.blksize,
    flags,
  };
}

/** Writes `data` across `buffers` from their start; returns the bytes written. */
export function scatter(data: readonly Uint8Array[], buffers: readonly Uint8Array[]): number {
  let bi = 0;
  let bo = 0;
  let total = 0;
  for (const d of data) {
    let off = 0;
    while (off < d.byteLength && bi < buffers.length) {
      const b = buffers[bi]!;
      const n = Math.min(b.byteLength - bo, d.byteLength - off);
      b.set(d.subarray(off, off + n), bo);
      off += n;
      bo += n;
      total += n;
      if (bo === b.byteLength) {
        bi++;
        bo = 0;
      }
    }
  }
  return total;
}

/** Views of `buffers` covering bytes [start, start + length) of their concatenation. */
export function sliceViews(
  buffers: readonly Uint8Array[],
  start: number,
  length: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = start;
  let left = length;
  for (const b of buffers) {
    if (left <= 0) break;
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    const n = Math.min(b.byteLength - skip, left);
    out.push(b.subarray(skip, skip + n));
    left -= n;
    skip = 0;
  }
  return out;
}

function nameBytes(name: string): Uint8Array {
  const b = encodeName(name);
  // One component only: '/' or an empty name would reach outside the table's fds.
  if (b.byteLength === 0 || b.includes(0x2f)) {
    throw new FuseError(Errno.EINVAL, `invalid name ${JSON.stringify(name)}`);
  }
  return b;
}

/** A new entry's name: also not "." or "..", which cannot be created. */
function newName(name: string): Uint8Array {
  const b = nameBytes(name);
  if (name === "." || name === "..") throw new FuseError(Errno.EEXIST, `cannot create ${name}`);
  return b;
}

function num(v: unknown): number {
  return typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : 0;
}

function big(v: unknown): bigint {
  return typeof v === "bigint" ? v : typeof v === "number" ? BigInt(v) : 0n;
}

interface PendingLock {
  unique: bigint;
  timer: ReturnType<typeof setTimeout>;
  finish: (errno: number) => void;
}

/**
 * One FUSE connection's file server. {@link handle} serves a request given
 * as a chain's readable and writable buffers; SETLKW may answer later (a
 * Promise), everything else answers at once.
 */
export class FileServer {
  readonly #opts: FileServerOptions;
  readonly #inodes: InodeTable;
  readonly #handles = new HandleTable();
  readonly #cache: CacheMode;
  readonly #timeout: bigint;
  readonly #log: (m: string) => void;
  readonly #asRoot: boolean;
  readonly #maxFds: number;
  #lockFdCount = 0;
  #session = new FuseSession();
  /** INIT answered: before it only INIT is served, after it INIT is refused (EIO, as libfuse). */
  #initialized = false;
  #pending = new Map<bigint, PendingLock>();
  /** POSIX lock owners' own open file descriptions, per node id (see #ownerFd). */
  #lockFds = new Map<bigint, Map<bigint, number>>();
  #dirBuf = new Uint8Array(64 * 1024);

  /** Opens the shared directory; throws SysError when it cannot. */
  constructor(options: FileServerOptions) {
    this.#opts = options;
    this.#inodes = new InodeTable(options.sharedDir);
    this.#cache = options.cache ?? "auto";
    // virtiofsd's timeouts: never 0, auto/metadata 1 s, always a day.
    this.#timeout = this.#cache === "never" ? 0n : this.#cache === "always" ? 86400n : 1n;
    this.#log = options.log ?? (() => {});
    let uid = -1;
    try {
      uid = Deno.uid() ?? -1;
    } catch {
      // Without --allow-sys=uid: assume unprivileged, files keep our ownership.
    }
    this.#asRoot = uid === 0;
    let limit = 1024;
    try {
      limit = Number(getRlimitNofile().soft);
    } catch { /* the usual default */ }
    this.#maxFds = options.maxFds ?? Math.max(64, Math.min(limit, 1 << 20) - FD_RESERVE);
  }

  /** fds the guest makes the server hold now (inodes but the root, handles, lock owners). */
  get heldFds(): number {
    return this.#inodes.size - 1 + this.#handles.size + this.#lockFdCount;
  }

  #fdAvailable(): boolean {
    return this.heldFds < this.#maxFds;
  }

  /** The FUSE session (negotiated minor and flags once INIT was served). */
  get session(): FuseSession {
    return this.#session;
  }

  /** Inodes the guest holds (root included). */
  get inodeCount(): number {
    return this.#inodes.size;
  }

  /** Open handles. */
  get handleCount(): number {
    return this.#handles.size;
  }

  /** Forgets every inode and handle (DESTROY, device reset, disconnect). */
  reset(): void {
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    this.#dropLocks();
    this.#handles.reset();
    this.#inodes.reset();
    this.#session = new FuseSession();
    this.#initialized = false;
  }

  /** Releases everything, the shared directory's fd included. */
  close(): void {
    this.reset();
    this.#inodes.close();
  }

  /**
   * Serves one request: `readable` holds it (fuse_in_header first),
   * `writable` receives the reply. Returns what was written, or a Promise of
   * it for a request that waits (SETLKW).
   */
  handle(
    readable: readonly Uint8Array[],
    writable: readonly Uint8Array[],
  ): Served | Promise<Served> {
    let req: FuseRequest;
    try {
      req = decodeRequest(readable, this.#session);
    } catch (err) {
      this.#log(`undecodable request: ${(err as Error).message}`);
      const unique = uniqueOf(readable);
      // FORGET and BATCH_FORGET never get a reply, however mangled; unique 0 is a notification's.
      if (
        unique === undefined || unique === 0n ||
        fuseOp(opcodeOf(readable))?.reply.kind === "none"
      ) {
        return { request: undefined, len: 0 };
      }
      return {
        request: undefined,
        len: scatter([encodeErrorReply(unique, Errno.EINVAL)], writable),
      };
    }
    const unique = req.header.unique;
    if (unique === 0n) {
      // A reply with unique 0 would read as a notification: the chain goes back empty.
      this.#log(`${req.op?.name ?? req.header.opcode} with unique 0`);
      return { request: req, len: 0 };
    }
    if (this.#initialized === (req.header.opcode === Opcode.INIT)) {
      this.#log(
        `${req.op?.name ?? req.header.opcode} ${this.#initialized ? "after" : "before"} INIT`,
      );
      if (req.op?.reply.kind === "none") return { request: req, len: 0 };
      return { request: req, len: scatter([encodeErrorReply(unique, Errno.EIO)], writable) };
    }
    try {
      const out = this.#dispatch(req, writable);
      if (out instanceof Promise) {
        return out.then((len) => ({ request: req, len }));
      }
      return { request: req, len: out };
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === undefined) {
        this.#log(`${req.op?.name ?? req.header.opcode}: ${(err as Error).stack ?? err}`);
      }
      if (req.op?.reply.kind === "none") return { request: req, len: 0 };
      return {
        request: req,
        len: scatter([encodeErrorReply(unique, errno ?? Errno.EIO)], writable),
      };
    }
  }

  #reply(
    req: FuseRequest,
    writable: readonly Uint8Array[],
    reply: Omit<FuseReplyInit, "header">,
  ): number {
    const segs = encodeReplySegments(
      { header: { unique: req.header.unique }, ...reply },
      req,
      this.#session,
    );
    // A reply that does not fit the guest's buffers would arrive cut, its header lying.
    const need = segs.reduce((n, x) => n + x.byteLength, 0);
    if (need > writable.reduce((n, x) => n + x.byteLength, 0)) {
      throw new FuseError(Errno.ERANGE, `reply of ${need} bytes does not fit the reply buffers`);
    }
    return scatter(segs, writable);
  }

  #inode(id: bigint): Inode {
    const inode = this.#inodes.get(id);
    if (inode === undefined) throw new FuseError(Errno.ESTALE, `unknown node id ${id}`);
    return inode;
  }

  #fd(fh: unknown, dir: boolean): number {
    const h = this.#handles.get(big(fh));
    if (h === undefined || h.dir !== dir) throw new FuseError(Errno.EBADF, `unknown fh ${fh}`);
    return h.fd;
  }

  #writable(): void {
    if (this.#opts.readonly) throw new FuseError(Errno.EROFS, "read-only share");
  }

  #entry(inode: Inode, st: Stat, parent?: Inode): StructInit {
    const sub = this.#opts.announceSubmounts === true && parent !== undefined &&
        (st.mode & S.IFMT) === S.IFDIR && st.dev !== parent.dev
      ? ATTR_SUBMOUNT
      : 0;
    return {
      nodeid: inode.id,
      generation: 0,
      "entry_valid": this.#timeout,
      "attr_valid": this.#timeout,
      ...attrOf(st, sub),
    };
  }

  #lookup(parent: Inode, name: string): { inode: Inode; stat: Stat } {
    if (name === ".") {
      const st = fstat(parent.fd);
      return { inode: this.#inodes.adopt(dup(parent.fd), st), stat: st };
    }
    // ".." of the shared directory is itself: nothing above it is reachable.
    if (name === ".." && parent.id === this.#inodes.root.id) {
      return this.#lookup(parent, ".");
    }
    return this.#inodes.lookup(parent, nameBytes(name));
  }

  /**
   * The mode to create an entry with in `parent`, and whether to force it
   * afterwards (our own umask may have cut bits). With POSIX ACLs the guest
   * leaves the umask to the server: a parent with a default ACL gives the
   * new entry its permissions (the host kernel combines it with the mode,
   * ignoring any umask), otherwise the caller's umask applies.
   */
  #createMode(parent: Inode, a: Record<string, unknown>): { mode: number; exact: boolean } {
    const mode = num(a.mode);
    if (this.#session.has("POSIX_ACL") === true && this.#hasDefaultAcl(parent)) {
      return { mode, exact: false };
    }
    return { mode: mode & ~num(a.umask), exact: true };
  }

  #hasDefaultAcl(dir: Inode): boolean {
    try {
      return getxattr(procFdPath(dir.fd), ACL_DEFAULT, null) > 0;
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === Errno.ENODATA || errno === Errno.EOPNOTSUPP) return false;
      throw e;
    }
  }

  /** After creating an entry: the caller's ownership (when we may give it) and exact mode. */
  #own(parent: Inode, name: Uint8Array, req: FuseRequest): void {
    if (!this.#asRoot) return;
    const { uid, gid } = req.header;
    if (uid === 0 && gid === 0) return;
    // A set-group-ID directory hands its group down, as the kernel would.
    const pst = fstat(parent.fd);
    const g = (pst.mode & 0o2000) !== 0 ? pst.gid : gid;
    fchownat(parent.fd, name, uid, g, At.SYMLINK_NOFOLLOW);
  }

  #dispatch(req: FuseRequest, w: readonly Uint8Array[]): number | Promise<number> {
    const h = req.header;
    const a = req.arg ?? {};
    if (OPENS_FD.has(h.opcode) && !this.#fdAvailable()) {
      // A guest holding too much gets EMFILE, not the host's fds (CVE-2020-10717).
      throw new FuseError(Errno.EMFILE, `the guest holds ${this.heldFds} fds already`);
    }
    switch (h.opcode) {
      case Opcode.INIT:
        return this.#init(req, w);
      case Opcode.DESTROY:
        this.#dropLocks();
        this.#handles.reset();
        this.#inodes.reset();
        // An unmount: the next mount on this device starts with INIT again.
        this.#initialized = false;
        return this.#reply(req, w, {});
      case Opcode.LOOKUP: {
        const parent = this.#inode(h.nodeid);
        const { inode, stat } = this.#lookup(parent, req.names[0] ?? "");
        return this.#reply(req, w, { arg: this.#entry(inode, stat, parent) });
      }
      case Opcode.FORGET:
        this.#forget(h.nodeid, big(a.nlookup));
        return 0;
      case Opcode.BATCH_FORGET:
        for (const f of req.items) this.#forget(big(f.nodeid), big(f.nlookup));
        return 0;
      case Opcode.GETATTR: {
        const inode = this.#inode(h.nodeid);
        const fd = (num(a.getattr_flags) & GETATTR_FH) !== 0 && this.#handles.get(big(a.fh))
          ? this.#handles.get(big(a.fh))!.fd
          : inode.fd;
        return this.#reply(req, w, {
          arg: { "attr_valid": this.#timeout, ...attrOf(fstat(fd)) },
        });
      }
      case Opcode.STATX:
        return this.#statx(req, w);
      case Opcode.ACCESS: {
        const st = fstat(this.#inode(h.nodeid).fd);
        const mask = num(a.mask);
        const type = st.mode & S.IFMT;
        if (
          (mask & ACCESS.W) !== 0 && this.#opts.readonly &&
          (type === S.IFREG || type === S.IFDIR || type === S.IFLNK)
        ) {
          throw new FuseError(Errno.EROFS, "read-only share");
        }
        if (!accessAllowed(st, h.uid, h.gid, mask)) {
          throw new FuseError(Errno.EACCES, `access ${mask} denied to ${h.uid}:${h.gid}`);
        }
        return this.#reply(req, w, {});
      }
      case Opcode.SETATTR:
        return this.#setattr(req, w);
      case Opcode.READLINK: {
        const inode = this.#inode(h.nodeid);
        return this.#reply(req, w, { data: readlinkat(inode.fd, "") });
      }
      case Opcode.SYMLINK: {
        this.#writable();
        const parent = this.#inode(h.nodeid);
        const name = newName(req.names[0] ?? "");
        symlinkat(encodeName(req.names[1] ?? ""), parent.fd, name);
        this.#own(parent, name, req);
        return this.#created(req, w, parent, name);
      }
      case Opcode.MKNOD: {
        this.#writable();
        const parent = this.#inode(h.nodeid);
        const name = newName(req.names[0] ?? "");
        const { mode, exact } = this.#createMode(parent, a);
        mknodat(parent.fd, name, mode, BigInt(num(a.rdev)));
        this.#own(parent, name, req);
        return this.#created(req, w, parent, name, exact ? mode & 0o7777 : undefined);
      }
      case Opcode.MKDIR: {
        this.#writable();
        const parent = this.#inode(h.nodeid);
        const name = newName(req.names[0] ?? "");
        const { mode, exact } = this.#createMode(parent, a);
        mkdirat(parent.fd, name, mode & 0o7777);
        this.#own(parent, name, req);
        return this.#created(req, w, parent, name, exact ? mode & 0o7777 : undefined);
      }
      case Opcode.UNLINK:
      case Opcode.RMDIR: {
        this.#writable();
        const parent = this.#inode(h.nodeid);
        unlinkat(
          parent.fd,
          nameBytes(req.names[0] ?? ""),
          h.opcode === Opcode.RMDIR ? At.REMOVEDIR : 0,
        );
        return this.#reply(req, w, {});
      }
      case Opcode.RENAME:
      case Opcode.RENAME2: {
        this.#writable();
        const parent = this.#inode(h.nodeid);
        const newParent = this.#inode(big(a.newdir));
        renameat2(
          parent.fd,
          nameBytes(req.names[0] ?? ""),
          newParent.fd,
          newName(req.names[1] ?? ""),
          h.opcode === Opcode.RENAME2 ? num(a.flags) : 0,
        );
        return this.#reply(req, w, {});
      }
      case Opcode.LINK: {
        this.#writable();
        const target = this.#inode(big(a.oldnodeid));
        const parent = this.#inode(h.nodeid);
        const name = newName(req.names[0] ?? "");
        // Through /proc: linkat(fd, "", AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH.
        linkat(At.FDCWD, procFdPath(target.fd), parent.fd, name, At.SYMLINK_FOLLOW);
        return this.#created(req, w, parent, name);
      }
      case Opcode.OPEN:
      case Opcode.OPENDIR:
        return this.#open(req, w, h.opcode === Opcode.OPENDIR);
      case Opcode.CREATE:
        return this.#create(req, w);
      case Opcode.TMPFILE:
        return this.#tmpfile(req, w);
      case Opcode.READ:
        return this.#read(req, w);
      case Opcode.WRITE: {
        this.#writable();
        const fd = this.#fd(a.fh, false);
        if ((num(a.write_flags) & WRITE_KILL_SUIDGID) !== 0) this.#killPriv(fd);
        const n = pwritev(fd, req.data, big(a.offset));
        return this.#reply(req, w, { arg: { size: n } });
      }
      case Opcode.STATFS: {
        const s = fstatfs(this.#inode(h.nodeid).fd);
        return this.#reply(req, w, {
          arg: {
            blocks: s.blocks,
            bfree: s.bfree,
            bavail: s.bavail,
            files: s.files,
            ffree: s.ffree,
            bsize: Number(s.bsize),
            namelen: Number(s.namelen),
            frsize: Number(s.frsize),
          },
        });
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        const fh = big(a.fh);
        const handle = this.#handles.get(fh);
        if (handle !== undefined && (num(a.release_flags) & RELEASE_FLOCK_UNLOCK) !== 0) {
          try {
            flock(handle.fd, Flock.UN);
          } catch { /* closing releases it anyway */ }
        }
        this.#handles.release(fh);
        return this.#reply(req, w, {});
      }
      case Opcode.FLUSH: {
        // Closing a duplicate runs the host file system's flush.
        close(dup(this.#fd(a.fh, false)));
        // A close(2) in the guest drops every POSIX lock its process holds on the file.
        this.#dropOwner(h.nodeid, big(a.lock_owner));
        return this.#reply(req, w, {});
      }
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR: {
        const fd = this.#fd(a.fh, h.opcode === Opcode.FSYNCDIR);
        fsync(fd, (num(a.fsync_flags) & FSYNC_FDATASYNC) !== 0);
        return this.#reply(req, w, {});
      }
      case Opcode.READDIR:
      case Opcode.READDIRPLUS:
        return this.#readdir(req, w, h.opcode === Opcode.READDIRPLUS);
      case Opcode.GETXATTR:
      case Opcode.LISTXATTR:
      case Opcode.SETXATTR:
      case Opcode.REMOVEXATTR:
        return this.#xattr(req, w);
      case Opcode.GETLK:
      case Opcode.SETLK:
      case Opcode.SETLKW:
        return this.#lock(req, w);
      case Opcode.INTERRUPT: {
        // Only a waiting SETLKW can be interrupted; everything else already answered.
        const p = this.#pending.get(big(a.unique));
        p?.finish(Errno.EINTR);
        return 0;
      }
      case Opcode.FALLOCATE: {
        this.#writable();
        fallocate(this.#fd(a.fh, false), num(a.mode), big(a.offset), big(a.length));
        return this.#reply(req, w, {});
      }
      case Opcode.LSEEK: {
        const fd = this.#fd(a.fh, false);
        const whence = num(a.whence);
        if (whence !== Seek.DATA && whence !== Seek.HOLE) {
          // The kernel handles SET/CUR/END itself; anything else is not a seek we know.
          if (whence > Seek.HOLE) throw new FuseError(Errno.EINVAL, `whence ${whence}`);
        }
        const off = lseek(fd, big(a.offset), whence);
        return this.#reply(req, w, { arg: { offset: off } });
      }
      case Opcode.COPY_FILE_RANGE: {
        this.#writable();
        const n = copyFileRange(
          this.#fd(a.fh_in, false),
          big(a.off_in),
          this.#fd(a.fh_out, false),
          big(a.off_out),
          big(a.len),
          Number(big(a.flags)),
        );
        return this.#reply(req, w, { arg: { size: n } });
      }
      case Opcode.SYNCFS: {
        // syncfs needs a real fd; the root's O_PATH fd is not one.
        const fd = openat(At.FDCWD, procFdPath(this.#inodes.root.fd), O.RDONLY | O.DIRECTORY);
        try {
          syncfs(fd);
        } finally {
          close(fd);
        }
        return this.#reply(req, w, {});
      }
      default:
        throw new FuseError(Errno.ENOSYS, `${req.op?.name ?? `opcode ${h.opcode}`} not served`);
    }
  }

  #init(req: FuseRequest, w: readonly Uint8Array[]): number {
    const a = req.arg ?? {};
    const major = num(a.major);
    const minor = num(a.minor);
    if (major !== FUSE_KERNEL_VERSION) {
      // A newer major: answer ours and let the kernel send INIT again (the protocol's rule).
      if (major > FUSE_KERNEL_VERSION) {
        return this.#reply(req, w, {
          arg: { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION },
        });
      }
      throw new FuseError(Errno.EPROTO, `FUSE ${major}.${minor} not supported`);
    }
    if (minor < MIN_MINOR) {
      throw new FuseError(Errno.EPROTO, `FUSE 7.${minor} is older than 7.${MIN_MINOR}`);
    }
    const kernel = (BigInt(num(a.flags)) & 0xffff_ffffn) |
      ((BigInt(num(a.flags)) & flag("INIT_EXT")) !== 0n ? BigInt(num(a.flags2)) << 32n : 0n);
    let want = flag("ASYNC_READ") | flag("ATOMIC_O_TRUNC") | flag("BIG_WRITES") |
      flag("DO_READDIRPLUS") | flag("READDIRPLUS_AUTO") | flag("PARALLEL_DIROPS") |
      flag("MAX_PAGES") | flag("ABORT_ERROR") | flag("HAS_IOCTL_DIR") | flag("ASYNC_DIO");
    if (this.#opts.writeback) want |= flag("WRITEBACK_CACHE");
    if (this.#cache === "auto") want |= flag("AUTO_INVAL_DATA");
    if (this.#cache === "always") want |= flag("CACHE_SYMLINKS");
    if (this.#opts.posixLock) want |= flag("POSIX_LOCKS");
    if (this.#opts.flock) want |= flag("FLOCK_LOCKS");
    if (this.#opts.announceSubmounts) want |= flag("SUBMOUNTS");
    // The server clears set-id bits on write/truncate itself (see #killPriv).
    want |= flag("HANDLE_KILLPRIV_V2");
    if (this.#opts.xattr) want |= flag("SETXATTR_EXT");
    if (this.#opts.xattr && this.#opts.posixAcl) want |= flag("POSIX_ACL");
    const flags = want & kernel;
    const maxPages = MAX_WRITE / PAGE;
    const len = this.#reply(req, w, {
      arg: {
        major: FUSE_KERNEL_VERSION,
        minor: Math.min(minor, FUSE_KERNEL_MINOR_VERSION),
        "max_readahead": num(a.max_readahead),
        flags: Number(flags & 0xffff_ffffn),
        "max_background": 64,
        "congestion_threshold": 48,
        "max_write": MAX_WRITE,
        "time_gran": 1,
        "max_pages": maxPages,
        flags2: Number(flags >> 32n),
      },
    });
    this.#initialized = true;
    return len;
  }

  #created(
    req: FuseRequest,
    w: readonly Uint8Array[],
    parent: Inode,
    name: Uint8Array,
    mode?: number,
  ): number {
    const { inode, stat } = this.#inodes.lookup(parent, name);
    let st = stat;
    // Our process umask may have cut bits the guest asked for: set the exact mode, keeping
    // the set-group-ID bit a new directory inherits from a set-group-ID parent.
    const want = mode === undefined
      ? undefined
      : mode | (inode.type === S.IFDIR ? st.mode & 0o2000 : 0);
    if (want !== undefined && (st.mode & 0o7777) !== want && inode.type !== S.IFLNK) {
      fchmodat(At.FDCWD, procFdPath(inode.fd), want);
      st = fstat(inode.fd);
    }
    return this.#reply(req, w, { arg: this.#entry(inode, st, parent) });
  }

  #openFlags(flags: number): number {
    // Creation is CREATE's job; O_NOFOLLOW would refuse the /proc magic link itself.
    let f = flags & ~(O.CREAT | O.EXCL | O.NOCTTY | O.NOFOLLOW | O.PATH);
    if (this.#opts.readonly && ((f & O.ACCMODE) !== O.RDONLY || (f & O.TRUNC) !== 0)) {
      throw new FuseError(Errno.EROFS, "read-only share");
    }
    f &= ~O.CLOEXEC;
    return this.#writebackFlags(f);
  }

  /**
   * With the guest caching writes, it reads pages of files opened write-only
   * and keeps the file size itself: open them read-write, and without
   * O_APPEND (its offsets already point at the end).
   */
  #writebackFlags(f: number): number {
    if (!this.#opts.writeback) return f;
    if ((f & O.ACCMODE) === O.WRONLY) f = (f & ~O.ACCMODE) | O.RDWR;
    return f & ~O.APPEND;
  }

  #open(req: FuseRequest, w: readonly Uint8Array[], dir: boolean): number {
    const inode = this.#inode(req.header.nodeid);
    if (
      !this.#opts.allowDevices && (inode.type === S.IFCHR || inode.type === S.IFBLK)
    ) {
      throw new FuseError(Errno.EPERM, "device nodes are not served");
    }
    if (inode.type === S.IFIFO || inode.type === S.IFSOCK) {
      // Opening a FIFO would block the whole server; the guest handles them locally.
      throw new FuseError(Errno.ENXIO, "special file");
    }
    const flags = dir ? O.RDONLY | O.DIRECTORY : this.#openFlags(num(req.arg?.flags));
    const fd = openat(At.FDCWD, procFdPath(inode.fd), flags);
    if (!dir && (num(req.arg?.open_flags) & OPEN_KILL_SUIDGID) !== 0 && (flags & O.TRUNC) !== 0) {
      try {
        this.#killPriv(fd);
      } catch (e) {
        close(fd);
        throw e;
      }
    }
    const handle = this.#handles.add(inode.id, fd, dir);
    let openFlags = 0;
    if (!dir) {
      if (this.#cache === "never") openFlags |= FOPEN.DIRECT_IO;
      if (this.#cache === "always") openFlags |= FOPEN.KEEP_CACHE;
    } else if (this.#cache === "always") openFlags |= FOPEN.CACHE_DIR;
    return this.#reply(req, w, { arg: { fh: handle.fh, "open_flags": openFlags } });
  }

  #create(req: FuseRequest, w: readonly Uint8Array[]): number {
    this.#writable();
    const a = req.arg ?? {};
    const parent = this.#inode(req.header.nodeid);
    const name = newName(req.names[0] ?? "");
    const created = this.#createMode(parent, a);
    const mode = created.mode & 0o7777;
    const flags = this.#writebackFlags(
      (num(a.flags) & ~(O.NOCTTY | O.PATH)) | O.CREAT | O.NOFOLLOW,
    );
    const fd = openat(parent.fd, name, flags & ~O.CLOEXEC, mode);
    let entry: StructInit;
    try {
      this.#own(parent, name, req);
      // CREATE of an existing file with O_TRUNC truncates it: the same rule as OPEN.
      if ((num(a.open_flags) & OPEN_KILL_SUIDGID) !== 0 && (flags & O.TRUNC) !== 0) {
        this.#killPriv(fd);
      }
      const { inode, stat } = this.#inodes.lookup(parent, name);
      let st = stat;
      if (created.exact && (st.mode & 0o7777) !== mode && (num(a.flags) & O.EXCL) !== 0) {
        fchmodat(At.FDCWD, procFdPath(inode.fd), mode);
        st = fstat(inode.fd);
      }
      entry = this.#entry(inode, st, parent);
    } catch (e) {
      close(fd);
      throw e;
    }
    const handle = this.#handles.add(big(entry.nodeid), fd, false);
    let openFlags = 0;
    if (this.#cache === "never") openFlags |= FOPEN.DIRECT_IO;
    if (this.#cache === "always") openFlags |= FOPEN.KEEP_CACHE;
    return this.#reply(req, w, { arg: { ...entry, fh: handle.fh, "open_flags": openFlags } });
  }

  /** O_TMPFILE in the directory (Linux ≥ 6.6 guests): a nameless file, opened, LINK-able. */
  #tmpfile(req: FuseRequest, w: readonly Uint8Array[]): number {
    this.#writable();
    const a = req.arg ?? {};
    const parent = this.#inode(req.header.nodeid);
    const created = this.#createMode(parent, a);
    const mode = created.mode & 0o7777;
    const flags = (num(a.flags) & ~(O.NOCTTY | O.PATH | O.CREAT | O.CLOEXEC | O.DIRECTORY)) |
      O.TMPFILE;
    const fd = openat(parent.fd, ".", flags, mode);
    let entry: StructInit;
    try {
      if (this.#asRoot && (req.header.uid !== 0 || req.header.gid !== 0)) {
        const pst = fstat(parent.fd);
        const gid = (pst.mode & 0o2000) !== 0 ? pst.gid : req.header.gid;
        fchownat(fd, "", req.header.uid, gid, At.EMPTY_PATH);
      }
      const path = openat(At.FDCWD, procFdPath(fd), O.PATH);
      let st = fstat(path);
      const inode = this.#inodes.adopt(path, st);
      if (created.exact && (st.mode & 0o7777) !== mode) {
        fchmodat(At.FDCWD, procFdPath(inode.fd), mode);
        st = fstat(inode.fd);
      }
      entry = this.#entry(inode, st, parent);
    } catch (e) {
      close(fd);
      throw e;
    }
    const handle = this.#handles.add(big(entry.nodeid), fd, false);
    return this.#reply(req, w, { arg: { ...entry, fh: handle.fh, "open_flags": 0 } });
  }

  /**
   * With HANDLE_KILLPRIV_V2 the guest kernel leaves to the server what it
   * would do on a write or truncate by a caller without CAP_FSETID: clear
   * set-user-ID, and set-group-ID when group-execute is set (without it the
   * bit means mandatory locking, kept), on regular files; and drop
   * security.capability. The server itself may hold CAP_FSETID, so the
   * host kernel would not do it for us.
   */
  #killPriv(fd: number): void {
    if (!this.#session.has("HANDLE_KILLPRIV_V2")) return;
    const st = fstat(fd);
    if ((st.mode & S.IFMT) !== S.IFREG) return;
    let mode = st.mode & 0o7777 & ~0o4000;
    if ((st.mode & 0o010) !== 0) mode &= ~0o2000;
    const path = procFdPath(fd);
    if (mode !== (st.mode & 0o7777)) fchmodat(At.FDCWD, path, mode);
    try {
      removexattr(path, CAPABILITY_XATTR);
    } catch (e) {
      const errno = errnoOf(e);
      // None there, or no xattrs here, or no CAP_SETFCAP (the host kernel's own write and
      // truncate drop it then, whoever writes): nothing more to do.
      if (errno !== Errno.ENODATA && errno !== Errno.EOPNOTSUPP && errno !== Errno.EPERM) throw e;
    }
  }

  /**
   * STATX (Linux ≥ 6.6 guests, for btime): the host's statx of the inode.
   * The basic fields are always asked for, as the guest kernel only takes
   * attributes from a reply carrying all of them; the caller's sync mode is
   * passed on, its other flags are not (the O_PATH fd is the file itself,
   * never followed).
   */
  #statx(req: FuseRequest, w: readonly Uint8Array[]): number {
    const a = req.arg ?? {};
    const inode = this.#inode(req.header.nodeid);
    const handle = (num(a.getattr_flags) & GETATTR_FH) !== 0
      ? this.#handles.get(big(a.fh))
      : undefined;
    const fd = handle?.fd ?? inode.fd;
    const sx = statx(
      fd,
      "",
      At.EMPTY_PATH | At.SYMLINK_NOFOLLOW | (num(a.sx_flags) & StatxSync.TYPE),
      (num(a.sx_mask) & STATX_CARRIED) | StatxMask.BASIC_STATS,
    );
    const time = (p: string, t: { sec: bigint; nsec: number }): StructInit => ({
      [`${p}_sec`]: t.sec,
      [`${p}_nsec`]: t.nsec,
    });
    return this.#reply(req, w, {
      arg: {
        "attr_valid": this.#timeout,
        "attr_valid_nsec": 0,
        flags: 0,
        // Only what fuse_statx has room for: a host mount id means nothing to the guest.
        mask: sx.mask & STATX_CARRIED,
        blksize: sx.blksize,
        attributes: sx.attributes,
        nlink: sx.nlink,
        uid: sx.uid,
        gid: sx.gid,
        mode: sx.mode,
        ino: sx.ino,
        size: sx.size,
        blocks: sx.blocks,
        "attributes_mask": sx.attributesMask,
        ...time("atime", sx.atime),
        ...time("btime", sx.btime),
        ...time("ctime", sx.ctime),
        ...time("mtime", sx.mtime),
        "rdev_major": sx.rdevMajor,
        "rdev_minor": sx.rdevMinor,
        "dev_major": sx.devMajor,
        "dev_minor": sx.devMinor,
      },
    });
  }

  #read(req: FuseRequest, w: readonly Uint8Array[]): number {
    const a = req.arg ?? {};
    const fd = this.#fd(a.fh, false);
    const want = Math.min(num(a.size), MAX_WRITE);
    // Straight into guest memory after the reply header.
    const views = sliceViews(w, OUT_HEADER_SIZE, want);
    const n = views.length === 0 ? 0 : preadv(fd, views, big(a.offset));
    const head = new Uint8Array(OUT_HEADER_SIZE);
    const v = new DataView(head.buffer);
    v.setUint32(0, OUT_HEADER_SIZE + n, true);
    v.setBigUint64(8, req.header.unique, true);
    scatter([head], w);
    return OUT_HEADER_SIZE + n;
  }

  #setattr(req: FuseRequest, w: readonly Uint8Array[]): number {
    this.#writable();
    const a = req.arg ?? {};
    const valid = num(a.valid);
    const inode = this.#inode(req.header.nodeid);
    const handle = (valid & FATTR.FH) !== 0 ? this.#handles.get(big(a.fh)) : undefined;
    const path = procFdPath(handle?.fd ?? inode.fd);
    if ((valid & FATTR.MODE) !== 0) fchmodat(At.FDCWD, path, num(a.mode) & 0o7777);
    if ((valid & (FATTR.UID | FATTR.GID)) !== 0) {
      fchownat(
        inode.fd,
        "",
        (valid & FATTR.UID) !== 0 ? num(a.uid) : -1,
        (valid & FATTR.GID) !== 0 ? num(a.gid) : -1,
        At.EMPTY_PATH,
      );
    }
    if ((valid & FATTR.SIZE) !== 0) {
      if (handle !== undefined) ftruncate(handle.fd, big(a.size));
      else {
        if (inode.type !== S.IFREG) throw new FuseError(Errno.EINVAL, "truncate of a non-file");
        const fd = openat(At.FDCWD, path, O.WRONLY);
        try {
          ftruncate(fd, big(a.size));
        } finally {
          close(fd);
        }
      }
    }
    // A truncate by a caller without CAP_FSETID; a mode given in the same request wins.
    if ((valid & FATTR.KILL_SUIDGID) !== 0 && (valid & FATTR.MODE) === 0) {
      this.#killPriv(handle?.fd ?? inode.fd);
    }
    if ((valid & (FATTR.ATIME | FATTR.MTIME)) !== 0) {
      const t = (set: number, now: number, sec: unknown, nsec: unknown): TimeSpec =>
        (valid & set) === 0 ? "omit" : (valid & now) !== 0 ? "now" : {
          sec: BigInt.asIntN(64, big(sec)),
          nsec: num(nsec),
        };
      const atime = t(FATTR.ATIME, FATTR.ATIME_NOW, a.atime, a.atimensec);
      const mtime = t(FATTR.MTIME, FATTR.MTIME_NOW, a.mtime, a.mtimensec);
      if (inode.type === S.IFLNK) {
        throw new FuseError(Errno.EPERM, "times of a symlink are not settable here");
      }
      utimensat(At.FDCWD, path, atime, mtime);
    }
    return this.#reply(req, w, {
      arg: { "attr_valid": this.#timeout, ...attrOf(fstat(inode.fd)) },
    });
  }

  #readdir(req: FuseRequest, w: readonly Uint8Array[], plus: boolean): number {
    const a = req.arg ?? {};
    const fd = this.#fd(a.fh, true);
    const dir = this.#inode(req.header.nodeid);
    const limit = Math.min(
      num(a.size),
      Math.max(0, (w.reduce((n, b) => n + b.byteLength, 0)) - OUT_HEADER_SIZE),
    );
    const entries: FuseDirentInit[] = [];
    let used = 0;
    // d_off cookies from getdents64 are what lseek takes back: offsets stay valid across calls.
    lseek(fd, big(a.offset), Seek.SET);
    outer: for (;;) {
      const batch = getdents64(fd, this.#dirBuf);
      if (batch.length === 0) break;
      for (const d of batch) {
        const size = align8(DIRENT_HEAD + d.name.byteLength + (plus ? ENTRY_OUT_SIZE : 0));
        if (used + size > limit) break outer;
        const name = decodeName(d.name);
        let entry: StructInit | undefined;
        if (plus) {
          const isDot = name === "." || name === "..";
          entry = { nodeid: 0 };
          if (!isDot && this.#fdAvailable()) {
            try {
              const { inode, stat } = this.#inodes.lookup(dir, d.name);
              entry = this.#entry(inode, stat, dir);
            } catch (e) {
              // Gone since getdents: still listed, without attributes (nodeid 0).
              if (errnoOf(e) === undefined) throw e;
            }
          }
        }
        entries.push({ ino: d.ino, off: u64(d.off), type: d.type, name, entry });
        used += size;
      }
    }
    return this.#reply(req, w, { entries });
  }

  #xattr(req: FuseRequest, w: readonly Uint8Array[]): number {
    if (!this.#opts.xattr) throw new FuseError(Errno.ENOSYS, "xattr not enabled");
    const a = req.arg ?? {};
    const inode = this.#inode(req.header.nodeid);
    const path = procFdPath(inode.fd);
    const name = req.names[0] === undefined ? new Uint8Array(0) : encodeName(req.names[0]);
    switch (req.header.opcode) {
      case Opcode.GETXATTR:
      case Opcode.LISTXATTR: {
        const size = num(a.size);
        const list = req.header.opcode === Opcode.LISTXATTR;
        if (size === 0) {
          const n = list ? listxattr(path, null) : getxattr(path, name, null);
          return this.#reply(req, w, { arg: { size: n } });
        }
        const buf = new Uint8Array(size);
        const n = list ? listxattr(path, buf) : getxattr(path, name, buf);
        return this.#reply(req, w, { data: buf.subarray(0, n) });
      }
      case Opcode.SETXATTR: {
        this.#writable();
        const value = req.data.length === 1 ? req.data[0]! : concat(req.data);
        setxattr(path, name, value, num(a.flags));
        // Setting an access ACL by a caller outside the file's group, without CAP_FSETID:
        // the kernel would drop set-group-ID; the host does not for us, who may hold it.
        if (
          (num(a.setxattr_flags) & SETXATTR_ACL_KILL_SGID) !== 0 &&
          req.names[0] === ACL_ACCESS && this.#session.has("SETXATTR_EXT") === true
        ) {
          const st = fstat(inode.fd);
          if ((st.mode & 0o2000) !== 0) fchmodat(At.FDCWD, path, st.mode & 0o7777 & ~0o2000);
        }
        return this.#reply(req, w, {});
      }
      default:
        this.#writable();
        removexattr(path, name);
        return this.#reply(req, w, {});
    }
  }

  #lock(req: FuseRequest, w: readonly Uint8Array[]): number | Promise<number> {
    if (!this.#opts.posixLock && !this.#opts.flock) {
      throw new FuseError(Errno.ENOSYS, "locks not enabled");
    }
    const a = req.arg ?? {};
    const fd = this.#fd(a.fh, false);
    const type = num(a.type);
    const op = req.header.opcode;
    if ((num(a.lk_flags) & LK_FLOCK) !== 0 && op !== Opcode.GETLK) {
      const how = type === LockType.F_UNLCK
        ? Flock.UN
        : type === LockType.F_RDLCK
        ? Flock.SH
        : Flock.EX;
      return this.#retrying(req, w, op === Opcode.SETLKW, () => flock(fd, how | Flock.NB));
    }
    const start = big(a.start);
    const end = big(a.end);
    const len = end >= OFFSET_MAX ? 0n : end - start + 1n;
    const owner = this.#ownerFd(req.header.nodeid, big(a.owner), fd);
    if (op === Opcode.GETLK) {
      const got = fcntlLock(owner, LockCmd.F_OFD_GETLK, { type, start, len, pid: 0 });
      return this.#reply(req, w, {
        arg: {
          start: u64(got.start),
          end: got.type === LockType.F_UNLCK
            ? 0n
            : got.len === 0n
            ? OFFSET_MAX
            : got.start + got.len - 1n,
          type: got.type,
          pid: got.pid < 0 ? 0 : got.pid,
        },
      });
    }
    return this.#retrying(
      req,
      w,
      op === Opcode.SETLKW,
      () => void fcntlLock(owner, LockCmd.F_OFD_SETLK, { type, start, len, pid: 0 }),
    );
  }

  /**
   * The open file description holding POSIX locks for lock owner `owner`
   * (one guest process) on node `nodeid`. POSIX locks belong to a process,
   * not to an open file: two processes sharing one handle (after fork) must
   * contend, and one process's two handles must not. So each owner gets its
   * own OFD, opened afresh from the handle's fd, and OFD locks on it stand
   * for that process's locks.
   */
  #ownerFd(nodeid: bigint, owner: bigint, handleFd: number): number {
    let owners = this.#lockFds.get(nodeid);
    const known = owners?.get(owner);
    if (known !== undefined) return known;
    if (!this.#fdAvailable()) throw new FuseError(Errno.ENOLCK, "no fd left for a lock owner");
    let fd = -1;
    // Read and write locks need read and write access: ask for both, settle for what is allowed.
    for (const mode of [O.RDWR, O.RDONLY, O.WRONLY]) {
      try {
        fd = openat(At.FDCWD, procFdPath(handleFd), mode);
        break;
      } catch (e) {
        const errno = errnoOf(e);
        const denied = errno === Errno.EACCES || errno === Errno.EPERM || errno === Errno.EROFS;
        if (!denied && errno !== Errno.ETXTBSY) throw e;
      }
    }
    if (fd < 0) throw new FuseError(Errno.EACCES, "no access mode allows locking");
    if (owners === undefined) this.#lockFds.set(nodeid, owners = new Map());
    owners.set(owner, fd);
    this.#lockFdCount++;
    return fd;
  }

  /** Releases the POSIX locks `owner` holds on `nodeid` (closing its OFD). */
  #dropOwner(nodeid: bigint, owner: bigint): void {
    const owners = this.#lockFds.get(nodeid);
    const fd = owners?.get(owner);
    if (owners === undefined || fd === undefined) return;
    owners.delete(owner);
    if (owners.size === 0) this.#lockFds.delete(nodeid);
    this.#lockFdCount--;
    close(fd);
  }

  #dropLocks(): void {
    for (const owners of this.#lockFds.values()) for (const fd of owners.values()) close(fd);
    this.#lockFds.clear();
    this.#lockFdCount = 0;
  }

  #forget(id: bigint, n: bigint): void {
    this.#inodes.forget(id, n);
    if (this.#inodes.get(id) !== undefined) return;
    const owners = this.#lockFds.get(id);
    if (owners === undefined) return;
    for (const fd of owners.values()) close(fd);
    this.#lockFdCount -= owners.size;
    this.#lockFds.delete(id);
  }

  /**
   * Runs a nonblocking lock attempt; for a waiting request (SETLKW) retries
   * it on a timer instead of blocking the server, until it succeeds, fails
   * otherwise, or an INTERRUPT ends it.
   */
  #retrying(
    req: FuseRequest,
    w: readonly Uint8Array[],
    wait: boolean,
    attempt: () => void,
  ): number | Promise<number> {
    const busy = (e: unknown) => {
      const errno = errnoOf(e);
      return errno === Errno.EAGAIN || errno === Errno.EACCES;
    };
    try {
      attempt();
      return this.#reply(req, w, {});
    } catch (e) {
      if (!wait || !busy(e)) throw e;
    }
    const unique = req.header.unique;
    return new Promise<number>((resolve) => {
      const finish = (errno: number) => {
        const p = this.#pending.get(unique);
        if (p === undefined) return;
        clearTimeout(p.timer);
        this.#pending.delete(unique);
        resolve(
          errno === 0 ? this.#reply(req, w, {}) : scatter([encodeErrorReply(unique, errno)], w),
        );
      };
      const tick = () => {
        try {
          attempt();
          finish(0);
        } catch (e) {
          if (!busy(e)) finish(errnoOf(e) ?? Errno.EIO);
          else {
            const p = this.#pending.get(unique);
            if (p !== undefined) p.timer = setTimeout(tick, SETLKW_RETRY_MS);
          }
        }
      };
      this.#pending.set(unique, { unique, timer: setTimeout(tick, SETLKW_RETRY_MS), finish });
    });
  }
}

/** access(2) mask bits; 0 (F_OK) only asks whether the file exists. */
const ACCESS = { X: 1, W: 2, R: 4 } as const;

/**
 * Whether the caller `uid`:`gid` may access `st` for `mask` (R/W/X bits), as
 * the kernel's mode-bit check decides it: the owner's bits for the owner,
 * else the group's for the group, else the others'. Root may read and write
 * anything and execute anything with an x bit, and search any directory.
 * An approximation: a FUSE request names one group only, so supplementary
 * groups are not counted, and ACLs are not read.
 */
export function accessAllowed(st: Stat, uid: number, gid: number, mask: number): boolean {
  const want = mask & (ACCESS.R | ACCESS.W | ACCESS.X);
  if (want === 0) return true;
  if (uid === 0) {
    return (want & ACCESS.X) === 0 || (st.mode & S.IFMT) === S.IFDIR || (st.mode & 0o111) !== 0;
  }
  const bits = uid === st.uid
    ? (st.mode >> 6) & 7
    : gid === st.gid
    ? (st.mode >> 3) & 7
    : st.mode & 7;
  return (want & ~bits) === 0;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function errnoOf(err: unknown): number | undefined {
  if (err instanceof SysError || err instanceof FuseError) return err.errno;
  return undefined;
}

function opcodeOf(readable: readonly Uint8Array[]): number {
  const first = readable[0];
  if (first === undefined || first.byteLength < 8) return -1;
  return new DataView(first.buffer, first.byteOffset, 8).getUint32(4, true);
}

function uniqueOf(readable: readonly Uint8Array[]): bigint | undefined {
  const first = readable[0];
  if (first === undefined || first.byteLength < 16) return undefined;
  return new DataView(first.buffer, first.byteOffset, 16).getBigUint64(8, true);
}
