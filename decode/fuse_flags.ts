/**
 * Symbolic names for the numbers inside FUSE messages: flag words, enumerations,
 * file modes and errno values. The FUSE layouts reference these through their
 * `display`, so the printer and the dissector show `O_RDWR|O_CREAT` or
 * `drwxr-xr-x` without knowing FUSE.
 *
 * Names of FUSE-defined flags drop the `FUSE_` prefix (`ASYNC_READ`, `GETATTR_FH`);
 * names borrowed from Linux keep theirs (`O_CREAT`, `FATTR_MODE`, `F_RDLCK`).
 *
 * @module
 */

import { errnoName } from "../sys/errno.ts";
import { BitNames, type Display, ValueNames } from "./struct.ts";

/** FUSE INIT flags, both words as one 64-bit set (bits 32–63 travel in `flags2`). */
export const InitFlags: BitNames = new BitNames("fuse_init_flags", {
  ASYNC_READ: 1n << 0n,
  POSIX_LOCKS: 1n << 1n,
  FILE_OPS: 1n << 2n,
  ATOMIC_O_TRUNC: 1n << 3n,
  EXPORT_SUPPORT: 1n << 4n,
  BIG_WRITES: 1n << 5n,
  DONT_MASK: 1n << 6n,
  SPLICE_WRITE: 1n << 7n,
  SPLICE_MOVE: 1n << 8n,
  SPLICE_READ: 1n << 9n,
  FLOCK_LOCKS: 1n << 10n,
  HAS_IOCTL_DIR: 1n << 11n,
  AUTO_INVAL_DATA: 1n << 12n,
  DO_READDIRPLUS: 1n << 13n,
  READDIRPLUS_AUTO: 1n << 14n,
  ASYNC_DIO: 1n << 15n,
  WRITEBACK_CACHE: 1n << 16n,
  NO_OPEN_SUPPORT: 1n << 17n,
  PARALLEL_DIROPS: 1n << 18n,
  HANDLE_KILLPRIV: 1n << 19n,
  POSIX_ACL: 1n << 20n,
  ABORT_ERROR: 1n << 21n,
  MAX_PAGES: 1n << 22n,
  CACHE_SYMLINKS: 1n << 23n,
  NO_OPENDIR_SUPPORT: 1n << 24n,
  EXPLICIT_INVAL_DATA: 1n << 25n,
  MAP_ALIGNMENT: 1n << 26n,
  SUBMOUNTS: 1n << 27n,
  HANDLE_KILLPRIV_V2: 1n << 28n,
  SETXATTR_EXT: 1n << 29n,
  INIT_EXT: 1n << 30n,
  INIT_RESERVED: 1n << 31n,
  SECURITY_CTX: 1n << 32n,
  HAS_INODE_DAX: 1n << 33n,
  CREATE_SUPP_GROUP: 1n << 34n,
  HAS_EXPIRE_ONLY: 1n << 35n,
  DIRECT_IO_ALLOW_MMAP: 1n << 36n,
  PASSTHROUGH: 1n << 37n,
  NO_EXPORT_SUPPORT: 1n << 38n,
  HAS_RESEND: 1n << 39n,
  ALLOW_IDMAP: 1n << 40n,
  OVER_IO_URING: 1n << 41n,
  REQUEST_TIMEOUT: 1n << 42n,
});

function wordOf(set: BitNames, name: string, shift: bigint): BitNames {
  const out: Record<string, bigint> = {};
  for (const [bit, n] of set.bits) {
    const b = bit >> shift;
    if (b > 0n && b <= 0xffff_ffffn) out[n] = b;
  }
  return new BitNames(name, out);
}

/** The low word of {@link InitFlags}, for `fuse_init_in/out.flags`. */
export const InitFlagsLow: BitNames = wordOf(InitFlags, "fuse_init_flags", 0n);
/** The high word of {@link InitFlags} shifted down, for `fuse_init_in/out.flags2`. */
export const InitFlags2: BitNames = wordOf(InitFlags, "fuse_init_flags2", 32n);

/** `fuse_setattr_in.valid`. */
export const SetattrValid: BitNames = new BitNames("fuse_setattr_valid", {
  FATTR_MODE: 1 << 0,
  FATTR_UID: 1 << 1,
  FATTR_GID: 1 << 2,
  FATTR_SIZE: 1 << 3,
  FATTR_ATIME: 1 << 4,
  FATTR_MTIME: 1 << 5,
  FATTR_FH: 1 << 6,
  FATTR_ATIME_NOW: 1 << 7,
  FATTR_MTIME_NOW: 1 << 8,
  FATTR_LOCKOWNER: 1 << 9,
  FATTR_CTIME: 1 << 10,
  FATTR_KILL_SUIDGID: 1 << 11,
});

/** `fuse_open_out.open_flags` (FOPEN_*). */
export const FopenFlags: BitNames = new BitNames("fuse_fopen_flags", {
  FOPEN_DIRECT_IO: 1 << 0,
  FOPEN_KEEP_CACHE: 1 << 1,
  FOPEN_NONSEEKABLE: 1 << 2,
  FOPEN_CACHE_DIR: 1 << 3,
  FOPEN_STREAM: 1 << 4,
  FOPEN_NOFLUSH: 1 << 5,
  FOPEN_PARALLEL_DIRECT_WRITES: 1 << 6,
  FOPEN_PASSTHROUGH: 1 << 7,
});

/** `fuse_open_in/create_in.open_flags` (FUSE_OPEN_*). */
export const OpenInFlags: BitNames = new BitNames("fuse_open_in_flags", {
  OPEN_KILL_SUIDGID: 1 << 0,
});

/** `fuse_getattr_in.getattr_flags`. */
export const GetattrFlags: BitNames = new BitNames("fuse_getattr_flags", { GETATTR_FH: 1 << 0 });

/** `fuse_read_in.read_flags`. */
export const ReadFlags: BitNames = new BitNames("fuse_read_flags", { READ_LOCKOWNER: 1 << 1 });

/** `fuse_write_in.write_flags`. */
export const WriteFlags: BitNames = new BitNames("fuse_write_flags", {
  WRITE_CACHE: 1 << 0,
  WRITE_LOCKOWNER: 1 << 1,
  WRITE_KILL_SUIDGID: 1 << 2,
});

/** `fuse_release_in.release_flags`. */
export const ReleaseFlags: BitNames = new BitNames("fuse_release_flags", {
  RELEASE_FLUSH: 1 << 0,
  RELEASE_FLOCK_UNLOCK: 1 << 1,
});

/** `fuse_fsync_in.fsync_flags`. */
export const FsyncFlags: BitNames = new BitNames("fuse_fsync_flags", {
  FSYNC_FDATASYNC: 1 << 0,
});

/** `fuse_lk_in.lk_flags`. */
export const LkFlags: BitNames = new BitNames("fuse_lk_flags", { LK_FLOCK: 1 << 0 });

/** `fuse_ioctl_in/out.flags`. */
export const IoctlFlags: BitNames = new BitNames("fuse_ioctl_flags", {
  IOCTL_COMPAT: 1 << 0,
  IOCTL_UNRESTRICTED: 1 << 1,
  IOCTL_RETRY: 1 << 2,
  IOCTL_32BIT: 1 << 3,
  IOCTL_DIR: 1 << 4,
  IOCTL_COMPAT_X32: 1 << 5,
});

/** `fuse_poll_in.flags`. */
export const PollFlags: BitNames = new BitNames("fuse_poll_flags", {
  POLL_SCHEDULE_NOTIFY: 1 << 0,
});

/** poll(2) event bits (`fuse_poll_in.events`, `fuse_poll_out.revents`). */
export const PollEvents: BitNames = new BitNames("poll_events", {
  POLLIN: 0x1,
  POLLPRI: 0x2,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  POLLRDNORM: 0x40,
  POLLRDBAND: 0x80,
  POLLWRNORM: 0x100,
  POLLWRBAND: 0x200,
  POLLMSG: 0x400,
  POLLRDHUP: 0x2000,
});

/** `fuse_attr.flags` (the field was padding before 7.32). */
export const AttrFlags: BitNames = new BitNames("fuse_attr_flags", {
  ATTR_SUBMOUNT: 1 << 0,
  ATTR_DAX: 1 << 1,
});

/** `fuse_setxattr_in.setxattr_flags`. */
export const SetxattrExtFlags: BitNames = new BitNames("fuse_setxattr_flags", {
  SETXATTR_ACL_KILL_SGID: 1 << 0,
});

/** setxattr(2) flags (`fuse_setxattr_in.flags`). */
export const XattrFlags: BitNames = new BitNames("xattr_flags", {
  XATTR_CREATE: 1,
  XATTR_REPLACE: 2,
});

/** renameat2(2) flags (`fuse_rename2_in.flags`). */
export const RenameFlags: BitNames = new BitNames("rename_flags", {
  RENAME_NOREPLACE: 1 << 0,
  RENAME_EXCHANGE: 1 << 1,
  RENAME_WHITEOUT: 1 << 2,
});

/** fallocate(2) modes (`fuse_fallocate_in.mode`). */
export const FallocateMode: BitNames = new BitNames("fallocate_mode", {
  FALLOC_FL_KEEP_SIZE: 0x01,
  FALLOC_FL_PUNCH_HOLE: 0x02,
  FALLOC_FL_NO_HIDE_STALE: 0x04,
  FALLOC_FL_COLLAPSE_RANGE: 0x08,
  FALLOC_FL_ZERO_RANGE: 0x10,
  FALLOC_FL_INSERT_RANGE: 0x20,
  FALLOC_FL_UNSHARE_RANGE: 0x40,
});

/** access(2) mask (`fuse_access_in.mask`); 0 is F_OK. */
export const AccessMask: BitNames = new BitNames("access_mask", { X_OK: 1, W_OK: 2, R_OK: 4 });

/** `fuse_setupmapping_in.flags`. */
export const SetupmappingFlags: BitNames = new BitNames("fuse_setupmapping_flags", {
  SETUPMAPPING_FLAG_WRITE: 1 << 0,
  SETUPMAPPING_FLAG_READ: 1 << 1,
});

/** `fuse_notify_inval_entry_out.flags`. */
export const InvalEntryFlags: BitNames = new BitNames("fuse_notify_inval_entry_flags", {
  EXPIRE_ONLY: 1 << 0,
});

/** CUSE INIT flags. */
export const CuseInitFlags: BitNames = new BitNames("cuse_init_flags", {
  CUSE_UNRESTRICTED_IOCTL: 1 << 0,
});

/** statx(2) mask bits (`fuse_statx_in.sx_mask`, `fuse_statx.mask`). */
export const StatxMask: BitNames = new BitNames("statx_mask", {
  STATX_TYPE: 0x1,
  STATX_MODE: 0x2,
  STATX_NLINK: 0x4,
  STATX_UID: 0x8,
  STATX_GID: 0x10,
  STATX_ATIME: 0x20,
  STATX_MTIME: 0x40,
  STATX_CTIME: 0x80,
  STATX_INO: 0x100,
  STATX_SIZE: 0x200,
  STATX_BLOCKS: 0x400,
  STATX_BTIME: 0x800,
  STATX_MNT_ID: 0x1000,
  STATX_DIOALIGN: 0x2000,
  STATX_MNT_ID_UNIQUE: 0x4000,
  STATX_SUBVOL: 0x8000,
  STATX_WRITE_ATOMIC: 0x10000,
  STATX_DIO_READ_ALIGN: 0x20000,
});

/** statx(2) `flags` argument (`fuse_statx_in.sx_flags`). */
export const StatxFlags: BitNames = new BitNames("statx_flags", {
  AT_SYMLINK_NOFOLLOW: 0x100,
  AT_NO_AUTOMOUNT: 0x800,
  AT_EMPTY_PATH: 0x1000,
  AT_STATX_FORCE_SYNC: 0x2000,
  AT_STATX_DONT_SYNC: 0x4000,
});

/** statx(2) attribute bits (`fuse_statx.attributes`, `attributes_mask`). */
export const StatxAttributes: BitNames = new BitNames("statx_attributes", {
  STATX_ATTR_COMPRESSED: 0x4,
  STATX_ATTR_IMMUTABLE: 0x10,
  STATX_ATTR_APPEND: 0x20,
  STATX_ATTR_NODUMP: 0x40,
  STATX_ATTR_ENCRYPTED: 0x800,
  STATX_ATTR_AUTOMOUNT: 0x1000,
  STATX_ATTR_MOUNT_ROOT: 0x2000,
  STATX_ATTR_VERITY: 0x100000,
  STATX_ATTR_DAX: 0x200000,
  STATX_ATTR_WRITE_ATOMIC: 0x400000,
});

/** fcntl lock types (`fuse_file_lock.type`). */
export const LockType: ValueNames = new ValueNames("lock_type", {
  F_RDLCK: 0,
  F_WRLCK: 1,
  F_UNLCK: 2,
});

/** lseek(2) whence (`fuse_lseek_in.whence`). */
export const SeekWhence: ValueNames = new ValueNames("seek_whence", {
  SEEK_SET: 0,
  SEEK_CUR: 1,
  SEEK_END: 2,
  SEEK_DATA: 3,
  SEEK_HOLE: 4,
});

/** Directory entry types (`fuse_dirent.type`). */
export const DirentType: ValueNames = new ValueNames("dirent_type", {
  DT_UNKNOWN: 0,
  DT_FIFO: 1,
  DT_CHR: 2,
  DT_DIR: 4,
  DT_BLK: 6,
  DT_REG: 8,
  DT_LNK: 10,
  DT_SOCK: 12,
  DT_WHT: 14,
});

/**
 * open(2) flags other than the access mode (x86-64 / asm-generic values).
 * The access mode is a 2-bit number, not a flag: see {@link formatOpenFlags}.
 */
export const OpenFlags: BitNames = new BitNames("open_flags", {
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_NOCTTY: 0o400,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  // O_SYNC is __O_SYNC|O_DSYNC; listing it first names the pair as one flag.
  O_SYNC: 0o4010000,
  O_DSYNC: 0o10000,
  FASYNC: 0o20000,
  O_DIRECT: 0o40000,
  O_LARGEFILE: 0o100000,
  // O_TMPFILE is __O_TMPFILE|O_DIRECTORY, same trick.
  O_TMPFILE: 0o20200000,
  O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000,
  O_NOATIME: 0o1000000,
  O_CLOEXEC: 0o2000000,
  O_PATH: 0o10000000,
});

const ACCESS_MODES = ["O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"] as const;

/** open(2) flags as `O_RDWR|O_CREAT|O_TRUNC` (access mode first, always present). */
export function formatOpenFlags(flags: number | bigint): string {
  const n = Number(BigInt.asUintN(32, BigInt(flags)));
  const rest = n & ~3;
  const mode = ACCESS_MODES[n & 3] ?? "O_RDONLY";
  return rest === 0 ? mode : `${mode}|${OpenFlags.format(rest >>> 0)}`;
}

const S_IFMT = 0o170000;
const TYPE_CHARS: Readonly<Record<number, string>> = {
  0o140000: "s",
  0o120000: "l",
  0o100000: "-",
  0o060000: "b",
  0o040000: "d",
  0o020000: "c",
  0o010000: "p",
};

/**
 * A file mode as ls(1) shows it: `drwxr-xr-x`, `-rwsr-x--T`. The type is `?`
 * when the mode carries no (or an unknown) type, as in a SETATTR mode.
 */
export function formatMode(mode: number | bigint): string {
  const m = Number(BigInt.asUintN(32, BigInt(mode)));
  const t = TYPE_CHARS[m & S_IFMT] ?? "?";
  const bit = (mask: number, c: string) => (m & mask ? c : "-");
  const special = (x: number, s: number, set: string, unset: string) =>
    m & s ? (m & x ? set : unset) : (m & x ? "x" : "-");
  return t + bit(0o400, "r") + bit(0o200, "w") + special(0o100, 0o4000, "s", "S") +
    bit(0o40, "r") + bit(0o20, "w") + special(0o10, 0o2000, "s", "S") +
    bit(0o4, "r") + bit(0o2, "w") + special(0o1, 0o1000, "t", "T");
}

/** A device number in the kernel's new_encode_dev form, as `major:minor`. */
export function formatRdev(dev: number | bigint): string {
  const d = Number(BigInt.asUintN(32, BigInt(dev)));
  const major = (d & 0xfff00) >>> 8;
  const minor = (d & 0xff) | ((d >>> 12) & 0xfff00);
  return `${major}:${minor}`;
}

/** FUSE notification codes (carried in `fuse_out_header.error` when unique is 0). */
export const NotifyCode: ValueNames = new ValueNames("fuse_notify_code", {
  POLL: 1,
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  STORE: 4,
  RETRIEVE: 5,
  DELETE: 6,
  RESEND: 7,
  INC_EPOCH: 8,
  PRUNE: 9,
});

/**
 * `fuse_out_header.error`: 0, a negated errno (`-2` → `-ENOENT`), or, in a
 * notification, a positive notify code (`NOTIFY_INVAL_ENTRY`).
 */
export function formatOutError(error: number | bigint): string {
  const e = Number(error);
  if (e === 0) return "0";
  if (e < 0) return `-${errnoName(-e)}`;
  const code = NotifyCode.nameOf(e);
  return code === undefined ? String(e) : `NOTIFY_${code}`;
}

/** Display helpers for layouts: flags, enums and the custom formatters above. */
export interface Show {
  /** Show a field as flag names. */
  readonly flags: (set: BitNames) => Display;
  /** Show a field as an enumerated name. */
  readonly enumOf: (set: ValueNames) => Display;
  /** Show in hex. */
  readonly hex: Display;
  /** Show as `drwxr-xr-x`. */
  readonly mode: Display;
  /** Show in octal (umask). */
  readonly octal: Display;
  /** Show as `O_RDWR|O_CREAT`. */
  readonly openFlags: Display;
  /** Show as `major:minor`. */
  readonly rdev: Display;
  /** Show a fuse_out_header.error. */
  readonly outError: Display;
}

/** The {@link Show} helpers. */
export const show: Show = {
  flags: (set: BitNames): Display => ({ kind: "flags", set }),
  enumOf: (set: ValueNames): Display => ({ kind: "enum", set }),
  hex: { kind: "hex" } as Display,
  mode: { kind: "custom", name: "mode", format: formatMode } as Display,
  octal: { kind: "custom", name: "octal", format: (v) => `0${v.toString(8)}` } as Display,
  openFlags: { kind: "custom", name: "open_flags", format: formatOpenFlags } as Display,
  rdev: { kind: "custom", name: "rdev", format: formatRdev } as Display,
  outError: { kind: "custom", name: "fuse_error", format: formatOutError } as Display,
};
