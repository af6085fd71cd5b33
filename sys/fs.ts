/**
 * File-system calls relative to directory fds (the *at family), on raw fds,
 * for a file server that must never resolve a path it was not handed an fd
 * for: Deno's own fs API is path-based, so a server built on it could be
 * steered out of its directory by a symlink swapped in between two calls.
 *
 * Paths are `string` (UTF-8) or `Uint8Array` (raw bytes, no NUL): Linux names
 * are bytes, and a FUSE name need not be UTF-8. EINTR is retried; failures
 * throw SysError carrying errno, so a server can answer `-errno`.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { lastErrno, SysError } from "./error.ts";

/** open(2) flags (x86_64). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  ACCMODE: 3,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC: 0o4010000,
  PATH: 0o10000000,
  TMPFILE: 0o20200000,
} as const;

/** *at(2) flags and the current-directory pseudo fd. */
export const At = {
  FDCWD: -100,
  SYMLINK_NOFOLLOW: 0x100,
  REMOVEDIR: 0x200,
  SYMLINK_FOLLOW: 0x400,
  EMPTY_PATH: 0x1000,
} as const;

/** File type bits of st_mode. */
export const S = {
  IFMT: 0o170000,
  IFSOCK: 0o140000,
  IFLNK: 0o120000,
  IFREG: 0o100000,
  IFBLK: 0o060000,
  IFDIR: 0o040000,
  IFCHR: 0o020000,
  IFIFO: 0o010000,
} as const;

/** lseek whence values, including the sparse-file ones. */
export const Seek = { SET: 0, CUR: 1, END: 2, DATA: 3, HOLE: 4 } as const;

/** renameat2 flags. */
export const Rename = { NOREPLACE: 1, EXCHANGE: 2, WHITEOUT: 4 } as const;

/** utimensat special nanosecond values. */
export const Utime = { NOW: (1 << 30) - 1, OMIT: (1 << 30) - 2 } as const;

/** fcntl lock commands (open file description locks: owned by the open file, not the process). */
export const LockCmd = { F_OFD_GETLK: 36, F_OFD_SETLK: 37, F_OFD_SETLKW: 38 } as const;

/** struct flock l_type values. */
export const LockType = { F_RDLCK: 0, F_WRLCK: 1, F_UNLCK: 2 } as const;

/** flock(2) operations. */
export const Flock = { SH: 1, EX: 2, NB: 4, UN: 8 } as const;

/** `struct stat` (x86_64), times as seconds + nanoseconds. */
export interface Stat {
  /** Device. */
  dev: bigint;
  /** Inode number. */
  ino: bigint;
  /** Link count. */
  nlink: bigint;
  /** Type and permission bits. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Device number of a device node. */
  rdev: bigint;
  /** Size in bytes. */
  size: bigint;
  /** Preferred I/O size. */
  blksize: number;
  /** 512-byte blocks allocated. */
  blocks: bigint;
  /** Access time, seconds. */
  atime: bigint;
  /** Access time, nanoseconds. */
  atimeNsec: number;
  /** Modification time, seconds. */
  mtime: bigint;
  /** Modification time, nanoseconds. */
  mtimeNsec: number;
  /** Status change time, seconds. */
  ctime: bigint;
  /** Status change time, nanoseconds. */
  ctimeNsec: number;
}

/** `struct statfs` fields a file server reports. */
export interface StatFs {
  /** File-system type magic. */
  type: bigint;
  /** Block size. */
  bsize: bigint;
  /** Total blocks. */
  blocks: bigint;
  /** Free blocks. */
  bfree: bigint;
  /** Free blocks for unprivileged users. */
  bavail: bigint;
  /** Total inodes. */
  files: bigint;
  /** Free inodes. */
  ffree: bigint;
  /** Longest name. */
  namelen: bigint;
  /** Fragment size. */
  frsize: bigint;
}

/** One `struct linux_dirent64`. */
export interface Dirent64 {
  /** Inode number. */
  ino: bigint;
  /** Cookie to lseek to for the entry after this one. */
  off: bigint;
  /** DT_* type. */
  type: number;
  /** Name bytes (a view into the buffer given to {@link getdents64}). */
  name: Uint8Array;
}

/** A byte-range lock (`struct flock`, l_whence always SEEK_SET). */
export interface FileLock {
  /** F_RDLCK, F_WRLCK or F_UNLCK. */
  type: number;
  /** First byte. */
  start: bigint;
  /** Length; 0 means to end of file. */
  len: bigint;
  /** Holder's pid (-1 for OFD locks). */
  pid: number;
}

/** A timestamp for {@link utimensat}: seconds + nanoseconds, or now, or leave as is. */
export type TimeSpec = { sec: bigint; nsec: number } | "now" | "omit";

const encoder = new TextEncoder();

/** NUL-terminated bytes of `p`; an embedded NUL would cut the path short in C. */
export function cPath(p: string | Uint8Array): Uint8Array {
  const bytes = typeof p === "string" ? encoder.encode(p) : p;
  if (bytes.includes(0)) throw new SysError("path", Errno.EINVAL, "embedded NUL byte");
  const out = new Uint8Array(bytes.byteLength + 1);
  out.set(bytes);
  return out;
}

function show(p: string | Uint8Array): string {
  return typeof p === "string" ? p : new TextDecoder().decode(p);
}

/** Runs `fn` until it is not interrupted; throws SysError for -1, else returns the result. */
function sys(call: string, subject: string, fn: () => number | bigint): number {
  for (;;) {
    const ret = Number(fn());
    if (ret >= 0) return ret;
    const errno = lastErrno();
    if (errno !== Errno.EINTR) throw new SysError(call, errno, subject);
  }
}

function sysBig(call: string, subject: string, fn: () => bigint | number): bigint {
  for (;;) {
    const ret = BigInt(fn());
    if (ret >= 0n) return ret;
    const errno = lastErrno();
    if (errno !== Errno.EINTR) throw new SysError(call, errno, subject);
  }
}

/** openat(2); returns the new fd (O_CLOEXEC is always added). */
export function openat(dirfd: number, path: string | Uint8Array, flags: number, mode = 0): number {
  const c = cPath(path);
  return sys(
    "openat",
    `${dirfd}, ${show(path)}`,
    () => libc().openat(dirfd, c, flags | O.CLOEXEC, mode),
  );
}

/** /proc/self/fd/N: reopens an O_PATH fd with real access modes, or names it for path calls. */
export function procFdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

const STAT_SIZE = 144;

function parseStat(b: Uint8Array): Stat {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    dev: v.getBigUint64(0, true),
    ino: v.getBigUint64(8, true),
    nlink: v.getBigUint64(16, true),
    mode: v.getUint32(24, true),
    uid: v.getUint32(28, true),
    gid: v.getUint32(32, true),
    rdev: v.getBigUint64(40, true),
    size: v.getBigInt64(48, true),
    blksize: Number(v.getBigInt64(56, true)),
    blocks: v.getBigInt64(64, true),
    atime: v.getBigInt64(72, true),
    atimeNsec: Number(v.getBigInt64(80, true)),
    mtime: v.getBigInt64(88, true),
    mtimeNsec: Number(v.getBigInt64(96, true)),
    ctime: v.getBigInt64(104, true),
    ctimeNsec: Number(v.getBigInt64(112, true)),
  };
}

/** fstatat(2). */
export function fstatat(dirfd: number, path: string | Uint8Array, flags = 0): Stat {
  const c = cPath(path);
  const buf = new Uint8Array(STAT_SIZE);
  sys("fstatat", `${dirfd}, ${show(path)}`, () => libc().fstatat(dirfd, c, buf, flags));
  return parseStat(buf);
}

/** The stat of `fd` itself, O_PATH fds included (fstatat with AT_EMPTY_PATH). */
export function fstat(fd: number): Stat {
  return fstatat(fd, "", At.EMPTY_PATH | At.SYMLINK_NOFOLLOW);
}

/** statx(2) mask bits (`STATX_BASIC_STATS` is every field of a plain stat). */
export const StatxMask = {
  TYPE: 0x1,
  MODE: 0x2,
  NLINK: 0x4,
  UID: 0x8,
  GID: 0x10,
  ATIME: 0x20,
  MTIME: 0x40,
  CTIME: 0x80,
  INO: 0x100,
  SIZE: 0x200,
  BLOCKS: 0x400,
  BASIC_STATS: 0x7ff,
  BTIME: 0x800,
  MNT_ID: 0x1000,
} as const;

/** statx(2) flags choosing how fresh the answer must be (a network file system may cache). */
export const StatxSync = {
  AS_STAT: 0,
  FORCE_SYNC: 0x2000,
  DONT_SYNC: 0x4000,
  TYPE: 0x6000,
} as const;

/** One `struct statx_timestamp`. */
export interface StatxTime {
  /** Seconds since the epoch. */
  sec: bigint;
  /** Nanoseconds. */
  nsec: number;
}

/** `struct statx` (the fields up to the device numbers). */
export interface Statx {
  /** Which fields the file system filled. */
  mask: number;
  /** Preferred I/O size. */
  blksize: number;
  /** STATX_ATTR_* bits. */
  attributes: bigint;
  /** Link count. */
  nlink: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Type and permission bits. */
  mode: number;
  /** Inode number. */
  ino: bigint;
  /** Size in bytes. */
  size: bigint;
  /** 512-byte blocks allocated. */
  blocks: bigint;
  /** Which STATX_ATTR_* bits the file system supports. */
  attributesMask: bigint;
  /** Access time. */
  atime: StatxTime;
  /** Birth time (valid when mask has BTIME). */
  btime: StatxTime;
  /** Status change time. */
  ctime: StatxTime;
  /** Modification time. */
  mtime: StatxTime;
  /** Device number of a device node: major. */
  rdevMajor: number;
  /** Device number of a device node: minor. */
  rdevMinor: number;
  /** Device holding the file: major. */
  devMajor: number;
  /** Device holding the file: minor. */
  devMinor: number;
}

const STATX_SIZE = 256;

/** statx(2): `mask` asks for fields, `flags` are AT_* and AT_STATX_* bits. */
export function statx(
  dirfd: number,
  path: string | Uint8Array,
  flags: number,
  mask: number,
): Statx {
  const c = cPath(path);
  const buf = new Uint8Array(STATX_SIZE);
  sys("statx", `${dirfd}, ${show(path)}`, () => libc().statx(dirfd, c, flags, mask >>> 0, buf));
  const v = new DataView(buf.buffer);
  const ts = (off: number): StatxTime => ({
    sec: v.getBigInt64(off, true),
    nsec: v.getUint32(off + 8, true),
  });
  return {
    mask: v.getUint32(0, true),
    blksize: v.getUint32(4, true),
    attributes: v.getBigUint64(8, true),
    nlink: v.getUint32(16, true),
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    mode: v.getUint16(28, true),
    ino: v.getBigUint64(32, true),
    size: v.getBigUint64(40, true),
    blocks: v.getBigUint64(48, true),
    attributesMask: v.getBigUint64(56, true),
    atime: ts(64),
    btime: ts(80),
    ctime: ts(96),
    mtime: ts(112),
    rdevMajor: v.getUint32(128, true),
    rdevMinor: v.getUint32(132, true),
    devMajor: v.getUint32(136, true),
    devMinor: v.getUint32(140, true),
  };
}

/** readlinkat(2): the link's target bytes, whole however long. */
export function readlinkat(dirfd: number, path: string | Uint8Array): Uint8Array {
  const c = cPath(path);
  for (let size = 256;; size *= 4) {
    const buf = new Uint8Array(size);
    const n = sys(
      "readlinkat",
      `${dirfd}, ${show(path)}`,
      () => libc().readlinkat(dirfd, c, buf, BigInt(size)),
    );
    // A result filling the buffer may have been cut: ask again with more room.
    if (n < size) return buf.subarray(0, n);
    if (size > 1 << 20) throw new SysError("readlinkat", Errno.ENAMETOOLONG, show(path));
  }
}

/** mkdirat(2). */
export function mkdirat(dirfd: number, path: string | Uint8Array, mode: number): void {
  const c = cPath(path);
  sys("mkdirat", `${dirfd}, ${show(path)}`, () => libc().mkdirat(dirfd, c, mode));
}

/** mknodat(2). */
export function mknodat(
  dirfd: number,
  path: string | Uint8Array,
  mode: number,
  dev: bigint = 0n,
): void {
  const c = cPath(path);
  sys("mknodat", `${dirfd}, ${show(path)}`, () => libc().mknodat(dirfd, c, mode, dev));
}

/** symlinkat(2): creates `path` in `dirfd` pointing at `target`. */
export function symlinkat(
  target: string | Uint8Array,
  dirfd: number,
  path: string | Uint8Array,
): void {
  const t = cPath(target);
  const c = cPath(path);
  sys("symlinkat", `${dirfd}, ${show(path)}`, () => libc().symlinkat(t, dirfd, c));
}

/** linkat(2). */
export function linkat(
  olddirfd: number,
  oldpath: string | Uint8Array,
  newdirfd: number,
  newpath: string | Uint8Array,
  flags = 0,
): void {
  const o = cPath(oldpath);
  const n = cPath(newpath);
  sys(
    "linkat",
    `${olddirfd}, ${show(oldpath)} → ${newdirfd}, ${show(newpath)}`,
    () => libc().linkat(olddirfd, o, newdirfd, n, flags),
  );
}

/** unlinkat(2); `At.REMOVEDIR` for a directory. */
export function unlinkat(dirfd: number, path: string | Uint8Array, flags = 0): void {
  const c = cPath(path);
  sys("unlinkat", `${dirfd}, ${show(path)}`, () => libc().unlinkat(dirfd, c, flags));
}

/** renameat2(2); flags from {@link Rename}. */
export function renameat2(
  olddirfd: number,
  oldpath: string | Uint8Array,
  newdirfd: number,
  newpath: string | Uint8Array,
  flags = 0,
): void {
  const o = cPath(oldpath);
  const n = cPath(newpath);
  sys(
    "renameat2",
    `${olddirfd}, ${show(oldpath)} → ${newdirfd}, ${show(newpath)}`,
    () => libc().renameat2(olddirfd, o, newdirfd, n, flags),
  );
}

/** fchmodat(2) (flags must be 0 on Linux: symlink modes cannot change). */
export function fchmodat(dirfd: number, path: string | Uint8Array, mode: number): void {
  const c = cPath(path);
  sys("fchmodat", `${dirfd}, ${show(path)}`, () => libc().fchmodat(dirfd, c, mode, 0));
}

/** fchownat(2); -1 (0xffffffff) leaves that id unchanged. */
export function fchownat(
  dirfd: number,
  path: string | Uint8Array,
  uid: number,
  gid: number,
  flags = 0,
): void {
  const c = cPath(path);
  sys(
    "fchownat",
    `${dirfd}, ${show(path)}`,
    () => libc().fchownat(dirfd, c, uid >>> 0, gid >>> 0, flags),
  );
}

function timespec(v: DataView, at: number, t: TimeSpec): void {
  if (t === "now" || t === "omit") {
    v.setBigInt64(at, 0n, true);
    v.setBigInt64(at + 8, BigInt(t === "now" ? Utime.NOW : Utime.OMIT), true);
  } else {
    v.setBigInt64(at, t.sec, true);
    v.setBigInt64(at + 8, BigInt(t.nsec), true);
  }
}

/** utimensat(2): sets access and modification times. */
export function utimensat(
  dirfd: number,
  path: string | Uint8Array,
  atime: TimeSpec,
  mtime: TimeSpec,
  flags = 0,
): void {
  const c = cPath(path);
  const ts = new Uint8Array(32);
  const v = new DataView(ts.buffer);
  timespec(v, 0, atime);
  timespec(v, 16, mtime);
  sys("utimensat", `${dirfd}, ${show(path)}`, () => libc().utimensat(dirfd, c, ts, flags));
}

/** fsync(2), or fdatasync(2) with `dataOnly`. */
export function fsync(fd: number, dataOnly = false): void {
  sys(
    dataOnly ? "fdatasync" : "fsync",
    `fd ${fd}`,
    () => dataOnly ? libc().fdatasync(fd) : libc().fsync(fd),
  );
}

/** syncfs(2): flushes the whole file system `fd` is on. */
export function syncfs(fd: number): void {
  sys("syncfs", `fd ${fd}`, () => libc().syncfs(fd));
}

/** fstatfs(2) (works on O_PATH fds). */
export function fstatfs(fd: number): StatFs {
  const buf = new Uint8Array(120);
  sys("fstatfs", `fd ${fd}`, () => libc().fstatfs(fd, buf));
  const v = new DataView(buf.buffer);
  return {
    type: v.getBigInt64(0, true),
    bsize: v.getBigInt64(8, true),
    blocks: v.getBigUint64(16, true),
    bfree: v.getBigUint64(24, true),
    bavail: v.getBigUint64(32, true),
    files: v.getBigUint64(40, true),
    ffree: v.getBigUint64(48, true),
    namelen: v.getBigInt64(64, true),
    frsize: v.getBigInt64(72, true),
  };
}

/**
 * getdents64(2) into `buf`: the entries read from the directory's current
 * position, as views into `buf` (empty at the end of the directory).
 */
export function getdents64(fd: number, buf: Uint8Array): Dirent64[] {
  const n = sys("getdents64", `fd ${fd}`, () => libc().getdents64(fd, buf, BigInt(buf.byteLength)));
  const v = new DataView(buf.buffer, buf.byteOffset, n);
  const out: Dirent64[] = [];
  for (let pos = 0; pos + 19 <= n;) {
    const reclen = v.getUint16(pos + 16, true);
    if (reclen === 0) break;
    const nameStart = pos + 19;
    let end = nameStart;
    while (end < pos + reclen && buf[end] !== 0) end++;
    out.push({
      ino: v.getBigUint64(pos, true),
      off: v.getBigInt64(pos + 8, true),
      type: v.getUint8(pos + 18),
      name: buf.subarray(nameStart, end),
    });
    pos += reclen;
  }
  return out;
}

/** fallocate(2). */
export function fallocate(fd: number, mode: number, offset: bigint, length: bigint): void {
  sys("fallocate", `fd ${fd}`, () => libc().fallocate(fd, mode, offset, length));
}

/** lseek(2); returns the new offset. */
export function lseek(fd: number, offset: bigint, whence: number): bigint {
  return sysBig("lseek", `fd ${fd}`, () => libc().lseek(fd, offset, whence));
}

/** copy_file_range(2) between explicit offsets; returns the bytes copied. */
export function copyFileRange(
  fdIn: number,
  offIn: bigint,
  fdOut: number,
  offOut: bigint,
  length: bigint,
  flags = 0,
): number {
  const a = new BigInt64Array([offIn]);
  const b = new BigInt64Array([offOut]);
  const ab = new Uint8Array(a.buffer);
  const bb = new Uint8Array(b.buffer);
  return sys(
    "copy_file_range",
    `fd ${fdIn} → fd ${fdOut}`,
    () => libc().copy_file_range(fdIn, ab, fdOut, bb, length, flags),
  );
}

const IOV_MAX = 1024;

function iovecs(bufs: readonly Uint8Array[]): Uint8Array {
  const iov = new Uint8Array(16 * bufs.length);
  const v = new DataView(iov.buffer);
  bufs.forEach((b, i) => {
    const p = b.byteLength === 0 ? 0n : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    v.setBigUint64(i * 16, p, true);
    v.setBigUint64(i * 16 + 8, BigInt(b.byteLength), true);
  });
  return iov;
}

/**
 * preadv(2) straight into `bufs` (e.g. the writable segments of a
 * descriptor chain: no copy). Returns bytes read (short at end of file).
 * The buffers are referenced by the iovec array only for this synchronous
 * call, and `bufs` keeps them alive meanwhile.
 */
export function preadv(fd: number, bufs: readonly Uint8Array[], offset: bigint): number {
  if (bufs.length > IOV_MAX) throw new SysError("preadv", Errno.EINVAL, `${bufs.length} iovecs`);
  const iov = iovecs(bufs);
  return sys("preadv", `fd ${fd}`, () => libc().preadv(fd, iov, bufs.length, offset));
}

/** pwritev(2) from `bufs` (e.g. a chain's readable segments); returns bytes written. */
export function pwritev(fd: number, bufs: readonly Uint8Array[], offset: bigint): number {
  if (bufs.length > IOV_MAX) throw new SysError("pwritev", Errno.EINVAL, `${bufs.length} iovecs`);
  const iov = iovecs(bufs);
  return sys("pwritev", `fd ${fd}`, () => libc().pwritev(fd, iov, bufs.length, offset));
}

/**
 * fcntl with a `struct flock`: `LockCmd.F_OFD_GETLK` returns the conflicting
 * lock (type F_UNLCK when none); SETLK returns `lock`. EAGAIN/EACCES on a
 * conflict are thrown like any errno.
 */
export function fcntlLock(fd: number, cmd: number, lock: FileLock): FileLock {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setInt16(0, lock.type, true);
  v.setInt16(2, Seek.SET, true);
  v.setBigInt64(8, lock.start, true);
  v.setBigInt64(16, lock.len, true);
  // OFD locks require l_pid 0 on input.
  v.setInt32(24, 0, true);
  sys("fcntl(lock)", `fd ${fd}`, () => libc().fcntl_lock(fd, cmd, b));
  return {
    type: v.getInt16(0, true),
    start: v.getBigInt64(8, true),
    len: v.getBigInt64(16, true),
    pid: v.getInt32(24, true),
  };
}

/** flock(2); with `Flock.NB` a conflict throws EWOULDBLOCK (EAGAIN). */
export function flock(fd: number, operation: number): void {
  sys("flock", `fd ${fd}`, () => libc().flock(fd, operation));
}

/**
 * getxattr(2) following the path (use it on /proc/self/fd/N). `buf` null
 * probes the size. Returns the value's length.
 */
export function getxattr(path: string, name: Uint8Array | string, buf: Uint8Array | null): number {
  const p = cPath(path);
  const n = cPath(name);
  return sys(
    "getxattr",
    `${path}, ${show(name)}`,
    () => libc().getxattr(p, n, buf, BigInt(buf?.byteLength ?? 0)),
  );
}

/** setxattr(2) following the path; flags 0, XATTR_CREATE or XATTR_REPLACE. */
export function setxattr(
  path: string,
  name: Uint8Array | string,
  value: Uint8Array,
  flags: number,
): void {
  const p = cPath(path);
  const n = cPath(name);
  sys(
    "setxattr",
    `${path}, ${show(name)}`,
    () => libc().setxattr(p, n, value, BigInt(value.byteLength), flags),
  );
}

/** listxattr(2): NUL-separated names into `buf` (null probes the size); returns the length. */
export function listxattr(path: string, buf: Uint8Array | null): number {
  const p = cPath(path);
  return sys("listxattr", path, () => libc().listxattr(p, buf, BigInt(buf?.byteLength ?? 0)));
}

/** removexattr(2) following the path. */
export function removexattr(path: string, name: Uint8Array | string): void {
  const p = cPath(path);
  const n = cPath(name);
  sys("removexattr", `${path}, ${show(name)}`, () => libc().removexattr(p, n));
}

const RLIMIT_NOFILE = 7;

/** The open-file limit: soft and hard. */
export function getRlimitNofile(): { soft: bigint; hard: bigint } {
  const b = new BigUint64Array(2);
  sys(
    "getrlimit",
    "RLIMIT_NOFILE",
    () => libc().getrlimit(RLIMIT_NOFILE, new Uint8Array(b.buffer)),
  );
  return { soft: b[0]!, hard: b[1]! };
}

/**
 * Sets the open-file limit (soft and hard) to `n`: a file server keeps one
 * fd per inode the guest holds. Raising the hard limit needs privilege (EPERM).
 */
export function setRlimitNofile(n: number): void {
  const b = new BigUint64Array([BigInt(n), BigInt(n)]);
  sys(
    "setrlimit",
    `RLIMIT_NOFILE ${n}`,
    () => libc().setrlimit(RLIMIT_NOFILE, new Uint8Array(b.buffer)),
  );
}
