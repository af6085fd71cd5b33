/**
 * The C structs of the FUSE protocol (Linux include/uapi/linux/fuse.h, through
 * protocol 7.45) as {@link Layout}s. Nested structs are flattened: the fields of
 * `fuse_attr` appear directly in `fuse_entry_out` (`mode`, not `attr.mode`),
 * which is unambiguous in every struct that embeds one.
 *
 * Every layout is a plain {@link Layout}; decoded values are `Decoded`
 * records keyed by the C field names.
 *
 * `since` marks when a field first appeared *on the wire*; a field that
 * replaced reserved space (e.g. `fuse_attr.flags`, formerly padding) keeps the
 * version in which the space appeared, because the size is what decoding needs.
 *
 * @module
 */

import {
  AccessMask,
  AttrFlags,
  CuseInitFlags,
  DirentType,
  FallocateMode,
  FopenFlags,
  FsyncFlags,
  GetattrFlags,
  InitFlags2,
  InitFlagsLow,
  InvalEntryFlags,
  IoctlFlags,
  LkFlags,
  LockType,
  OpenInFlags,
  PollEvents,
  PollFlags,
  ReadFlags,
  ReleaseFlags,
  RenameFlags,
  SeekWhence,
  SetattrValid,
  SetupmappingFlags,
  SetxattrExtFlags,
  show,
  StatxAttributes,
  StatxFlags,
  StatxMask,
  WriteFlags,
  XattrFlags,
} from "./fuse_flags.ts";
import { type FieldSpec, Layout, ValueNames } from "./struct.ts";

function def(name: string, fields: readonly FieldSpec[]): Layout {
  return new Layout(name, fields);
}

/** A FUSE opcode name such as `"LOOKUP"` (no `FUSE_` prefix). */
export type OpcodeName =
  | "LOOKUP"
  | "FORGET"
  | "GETATTR"
  | "SETATTR"
  | "READLINK"
  | "SYMLINK"
  | "MKNOD"
  | "MKDIR"
  | "UNLINK"
  | "RMDIR"
  | "RENAME"
  | "LINK"
  | "OPEN"
  | "READ"
  | "WRITE"
  | "STATFS"
  | "RELEASE"
  | "FSYNC"
  | "SETXATTR"
  | "GETXATTR"
  | "LISTXATTR"
  | "REMOVEXATTR"
  | "FLUSH"
  | "INIT"
  | "OPENDIR"
  | "READDIR"
  | "RELEASEDIR"
  | "FSYNCDIR"
  | "GETLK"
  | "SETLK"
  | "SETLKW"
  | "ACCESS"
  | "CREATE"
  | "INTERRUPT"
  | "BMAP"
  | "DESTROY"
  | "IOCTL"
  | "POLL"
  | "NOTIFY_REPLY"
  | "BATCH_FORGET"
  | "FALLOCATE"
  | "READDIRPLUS"
  | "RENAME2"
  | "LSEEK"
  | "COPY_FILE_RANGE"
  | "SETUPMAPPING"
  | "REMOVEMAPPING"
  | "SYNCFS"
  | "TMPFILE"
  | "STATX"
  | "COPY_FILE_RANGE_64"
  | "CUSE_INIT";

/** FUSE opcode numbers by name (`Opcode.LOOKUP` → 1). */
export const Opcode: Readonly<Record<OpcodeName, number>> = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
  CUSE_INIT: 4096,
};

/** Opcode names for display (`fuse_in_header.opcode`). */
export const OpcodeNames: ValueNames = new ValueNames("fuse_opcode", Opcode);

// ---------------------------------------------------------------- headers

/** `struct fuse_in_header` (total_extlen was padding before 7.38). */
export const FuseInHeader: Layout = def(
  "fuse_in_header",
  [
    { name: "len", type: "u32" },
    { name: "opcode", type: "u32", display: show.enumOf(OpcodeNames) },
    { name: "unique", type: "u64", display: show.hex },
    { name: "nodeid", type: "u64" },
    { name: "uid", type: "u32" },
    { name: "gid", type: "u32" },
    { name: "pid", type: "u32" },
    { name: "total_extlen", type: "u16" },
    { name: "padding", type: "u16", pad: true },
  ],
);

/** `struct fuse_out_header`; `error` is a negated errno, or a notify code when unique is 0. */
export const FuseOutHeader: Layout = def(
  "fuse_out_header",
  [
    { name: "len", type: "u32" },
    { name: "error", type: "i32", display: show.outError },
    { name: "unique", type: "u64", display: show.hex },
  ],
);

// ---------------------------------------------------------------- attributes

const ATTR: readonly FieldSpec[] = [
  { name: "ino", type: "u64" },
  { name: "size", type: "u64" },
  { name: "blocks", type: "u64" },
  { name: "atime", type: "u64" },
  { name: "mtime", type: "u64" },
  { name: "ctime", type: "u64" },
  { name: "atimensec", type: "u32" },
  { name: "mtimensec", type: "u32" },
  { name: "ctimensec", type: "u32" },
  { name: "mode", type: "u32", display: show.mode },
  { name: "nlink", type: "u32" },
  { name: "uid", type: "u32" },
  { name: "gid", type: "u32" },
  { name: "rdev", type: "u32", display: show.rdev },
  { name: "blksize", type: "u32", since: 9 },
  { name: "flags", type: "u32", since: 9, display: show.flags(AttrFlags) },
];

/** `struct fuse_attr` (80 bytes before 7.9: no blksize, no flags). */
export const FuseAttr: Layout = def("fuse_attr", ATTR);

const ENTRY_OUT: readonly FieldSpec[] = [
  { name: "nodeid", type: "u64" },
  { name: "generation", type: "u64" },
  { name: "entry_valid", type: "u64" },
  { name: "attr_valid", type: "u64" },
  { name: "entry_valid_nsec", type: "u32" },
  { name: "attr_valid_nsec", type: "u32" },
  ...ATTR,
];

/** `struct fuse_entry_out` with its `fuse_attr` flattened (FUSE_COMPAT_ENTRY_OUT_SIZE 120 before 7.9). */
export const FuseEntryOut: Layout = def("fuse_entry_out", ENTRY_OUT);

/** `struct fuse_attr_out` with its `fuse_attr` flattened (FUSE_COMPAT_ATTR_OUT_SIZE 96 before 7.9). */
export const FuseAttrOut: Layout = def(
  "fuse_attr_out",
  [
    { name: "attr_valid", type: "u64" },
    { name: "attr_valid_nsec", type: "u32" },
    { name: "dummy", type: "u32", pad: true },
    ...ATTR,
  ],
);

const OPEN_OUT: readonly FieldSpec[] = [
  { name: "fh", type: "u64" },
  { name: "open_flags", type: "u32", display: show.flags(FopenFlags) },
  { name: "backing_id", type: "i32" },
];

/** `struct fuse_open_out` (backing_id was padding before 7.40). */
export const FuseOpenOut: Layout = def("fuse_open_out", OPEN_OUT);

/** The CREATE/TMPFILE reply: `fuse_entry_out` followed by `fuse_open_out`, as one record. */
export const FuseCreateOut: Layout = def(
  "fuse_entry_out+fuse_open_out",
  [...ENTRY_OUT, ...OPEN_OUT],
);

// ---------------------------------------------------------------- requests

/** `struct fuse_forget_in`. */
export const FuseForgetIn: Layout = def("fuse_forget_in", [{ name: "nlookup", type: "u64" }]);

/** `struct fuse_forget_one` (BATCH_FORGET list element). */
export const FuseForgetOne: Layout = def(
  "fuse_forget_one",
  [
    { name: "nodeid", type: "u64" },
    { name: "nlookup", type: "u64" },
  ],
);

/** `struct fuse_batch_forget_in`; `count` elements of {@link FuseForgetOne} follow. */
export const FuseBatchForgetIn: Layout = def(
  "fuse_batch_forget_in",
  [
    { name: "count", type: "u32" },
    { name: "dummy", type: "u32", pad: true },
  ],
);

/** `struct fuse_getattr_in` (GETATTR had no argument before 7.9). */
export const FuseGetattrIn: Layout = def(
  "fuse_getattr_in",
  [
    { name: "getattr_flags", type: "u32", since: 9, display: show.flags(GetattrFlags) },
    { name: "dummy", type: "u32", since: 9, pad: true },
    { name: "fh", type: "u64", since: 9 },
  ],
);

/** `struct fuse_mknod_in` (FUSE_COMPAT_MKNOD_IN_SIZE 8 before 7.12). */
export const FuseMknodIn: Layout = def(
  "fuse_mknod_in",
  [
    { name: "mode", type: "u32", display: show.mode },
    { name: "rdev", type: "u32", display: show.rdev },
    { name: "umask", type: "u32", since: 12, display: show.octal },
    { name: "padding", type: "u32", since: 12, pad: true },
  ],
);

/** `struct fuse_mkdir_in`. */
export const FuseMkdirIn: Layout = def(
  "fuse_mkdir_in",
  [
    { name: "mode", type: "u32", display: show.mode },
    { name: "umask", type: "u32", display: show.octal },
  ],
);

/** `struct fuse_rename_in`; old and new names follow. */
export const FuseRenameIn: Layout = def("fuse_rename_in", [{ name: "newdir", type: "u64" }]);

/** `struct fuse_rename2_in`; old and new names follow. */
export const FuseRename2In: Layout = def(
  "fuse_rename2_in",
  [
    { name: "newdir", type: "u64" },
    { name: "flags", type: "u32", display: show.flags(RenameFlags) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_link_in`; the new name follows. */
export const FuseLinkIn: Layout = def("fuse_link_in", [{ name: "oldnodeid", type: "u64" }]);

/** `struct fuse_setattr_in`. */
export const FuseSetattrIn: Layout = def(
  "fuse_setattr_in",
  [
    { name: "valid", type: "u32", display: show.flags(SetattrValid) },
    { name: "padding", type: "u32", pad: true },
    { name: "fh", type: "u64" },
    { name: "size", type: "u64" },
    { name: "lock_owner", type: "u64", display: show.hex },
    { name: "atime", type: "u64" },
    { name: "mtime", type: "u64" },
    { name: "ctime", type: "u64" },
    { name: "atimensec", type: "u32" },
    { name: "mtimensec", type: "u32" },
    { name: "ctimensec", type: "u32" },
    { name: "mode", type: "u32", display: show.mode },
    { name: "unused4", type: "u32", pad: true },
    { name: "uid", type: "u32" },
    { name: "gid", type: "u32" },
    { name: "unused5", type: "u32", pad: true },
  ],
);

/** `struct fuse_open_in` (open_flags was unused before 7.33). */
export const FuseOpenIn: Layout = def(
  "fuse_open_in",
  [
    { name: "flags", type: "u32", display: show.openFlags },
    { name: "open_flags", type: "u32", display: show.flags(OpenInFlags) },
  ],
);

/** `struct fuse_create_in` (the size of fuse_open_in before 7.12); the name follows. */
export const FuseCreateIn: Layout = def(
  "fuse_create_in",
  [
    { name: "flags", type: "u32", display: show.openFlags },
    { name: "mode", type: "u32", display: show.mode },
    { name: "umask", type: "u32", since: 12, display: show.octal },
    { name: "open_flags", type: "u32", since: 12, display: show.flags(OpenInFlags) },
  ],
);

/** `struct fuse_release_in` (RELEASE and RELEASEDIR). */
export const FuseReleaseIn: Layout = def(
  "fuse_release_in",
  [
    { name: "fh", type: "u64" },
    { name: "flags", type: "u32", display: show.openFlags },
    { name: "release_flags", type: "u32", display: show.flags(ReleaseFlags) },
    { name: "lock_owner", type: "u64", display: show.hex },
  ],
);

/** `struct fuse_flush_in`. */
export const FuseFlushIn: Layout = def(
  "fuse_flush_in",
  [
    { name: "fh", type: "u64" },
    { name: "unused", type: "u32", pad: true },
    { name: "padding", type: "u32", pad: true },
    { name: "lock_owner", type: "u64", display: show.hex },
  ],
);

/** `struct fuse_read_in` (READ, READDIR, READDIRPLUS). */
export const FuseReadIn: Layout = def(
  "fuse_read_in",
  [
    { name: "fh", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "size", type: "u32" },
    { name: "read_flags", type: "u32", display: show.flags(ReadFlags) },
    { name: "lock_owner", type: "u64", display: show.hex },
    { name: "flags", type: "u32", display: show.openFlags },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_write_in` (FUSE_COMPAT_WRITE_IN_SIZE 24 before 7.9); `size` data bytes follow. */
export const FuseWriteIn: Layout = def(
  "fuse_write_in",
  [
    { name: "fh", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "size", type: "u32" },
    { name: "write_flags", type: "u32", display: show.flags(WriteFlags) },
    { name: "lock_owner", type: "u64", since: 9, display: show.hex },
    { name: "flags", type: "u32", since: 9, display: show.openFlags },
    { name: "padding", type: "u32", since: 9, pad: true },
  ],
);

/** `struct fuse_write_out` (WRITE and COPY_FILE_RANGE replies). */
export const FuseWriteOut: Layout = def(
  "fuse_write_out",
  [
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_statfs_out` = `struct fuse_kstatfs` (FUSE_COMPAT_STATFS_SIZE 48 before 7.4). */
export const FuseStatfsOut: Layout = def(
  "fuse_statfs_out",
  [
    { name: "blocks", type: "u64" },
    { name: "bfree", type: "u64" },
    { name: "bavail", type: "u64" },
    { name: "files", type: "u64" },
    { name: "ffree", type: "u64" },
    { name: "bsize", type: "u32" },
    { name: "namelen", type: "u32" },
    { name: "frsize", type: "u32", since: 4 },
    { name: "padding", type: "u32", since: 4, pad: true },
    { name: "spare", type: { bytes: 24 }, since: 4, pad: true },
  ],
);

/** `struct fuse_fsync_in` (FSYNC and FSYNCDIR). */
export const FuseFsyncIn: Layout = def(
  "fuse_fsync_in",
  [
    { name: "fh", type: "u64" },
    { name: "fsync_flags", type: "u32", display: show.flags(FsyncFlags) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/**
 * `struct fuse_setxattr_in`; name and `size` value bytes follow. The last two
 * fields are sent only when FUSE_SETXATTR_EXT was negotiated (FUSE_COMPAT_SETXATTR_IN_SIZE 8).
 */
export const FuseSetxattrIn: Layout = def(
  "fuse_setxattr_in",
  [
    { name: "size", type: "u32" },
    { name: "flags", type: "u32", display: show.flags(XattrFlags) },
    { name: "setxattr_flags", type: "u32", since: 33, display: show.flags(SetxattrExtFlags) },
    { name: "padding", type: "u32", since: 33, pad: true },
  ],
);

/** `struct fuse_getxattr_in` (GETXATTR, with a name following, and LISTXATTR). */
export const FuseGetxattrIn: Layout = def(
  "fuse_getxattr_in",
  [
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_getxattr_out`: the reply to a size probe (request size 0). */
export const FuseGetxattrOut: Layout = def(
  "fuse_getxattr_out",
  [
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

const FILE_LOCK: readonly FieldSpec[] = [
  { name: "start", type: "u64" },
  { name: "end", type: "u64" },
  { name: "type", type: "u32", display: show.enumOf(LockType) },
  { name: "pid", type: "u32" },
];

/** `struct fuse_lk_in` with its `fuse_file_lock` flattened (GETLK, SETLK, SETLKW). */
export const FuseLkIn: Layout = def(
  "fuse_lk_in",
  [
    { name: "fh", type: "u64" },
    { name: "owner", type: "u64", display: show.hex },
    ...FILE_LOCK,
    { name: "lk_flags", type: "u32", display: show.flags(LkFlags) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_lk_out` = `struct fuse_file_lock`. */
export const FuseLkOut: Layout = def("fuse_lk_out", FILE_LOCK);

/** `struct fuse_access_in`. */
export const FuseAccessIn: Layout = def(
  "fuse_access_in",
  [
    { name: "mask", type: "u32", display: show.flags(AccessMask) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/**
 * `struct fuse_init_in`: 8 bytes before 7.6, 16 before 7.36, then 64. Its size
 * follows the minor it carries itself.
 */
export const FuseInitIn: Layout = def(
  "fuse_init_in",
  [
    { name: "major", type: "u32" },
    { name: "minor", type: "u32" },
    { name: "max_readahead", type: "u32", since: 6 },
    { name: "flags", type: "u32", since: 6, display: show.flags(InitFlagsLow) },
    { name: "flags2", type: "u32", since: 36, display: show.flags(InitFlags2) },
    { name: "unused", type: { bytes: 44 }, since: 36, pad: true },
  ],
);

/**
 * `struct fuse_init_out`: 8 bytes before 7.5 (FUSE_COMPAT_INIT_OUT_SIZE), 24
 * before 7.23 (FUSE_COMPAT_22_INIT_OUT_SIZE), then 64. Later fields took over
 * reserved space: max_pages 7.28, map_alignment 7.31, flags2 7.36,
 * max_stack_depth 7.40, request_timeout 7.43.
 */
export const FuseInitOut: Layout = def(
  "fuse_init_out",
  [
    { name: "major", type: "u32" },
    { name: "minor", type: "u32" },
    { name: "max_readahead", type: "u32", since: 5 },
    { name: "flags", type: "u32", since: 5, display: show.flags(InitFlagsLow) },
    { name: "max_background", type: "u16", since: 5 },
    { name: "congestion_threshold", type: "u16", since: 5 },
    { name: "max_write", type: "u32", since: 5 },
    { name: "time_gran", type: "u32", since: 23 },
    { name: "max_pages", type: "u16", since: 23 },
    { name: "map_alignment", type: "u16", since: 23 },
    { name: "flags2", type: "u32", since: 23, display: show.flags(InitFlags2) },
    { name: "max_stack_depth", type: "u32", since: 23 },
    { name: "request_timeout", type: "u16", since: 23 },
    { name: "unused", type: { bytes: 22 }, since: 23, pad: true },
  ],
);

/** `struct cuse_init_in`. */
export const CuseInitIn: Layout = def(
  "cuse_init_in",
  [
    { name: "major", type: "u32" },
    { name: "minor", type: "u32" },
    { name: "unused", type: "u32", pad: true },
    { name: "flags", type: "u32", display: show.flags(CuseInitFlags) },
  ],
);

/** `struct cuse_init_out`; NUL-separated device info strings follow. */
export const CuseInitOut: Layout = def(
  "cuse_init_out",
  [
    { name: "major", type: "u32" },
    { name: "minor", type: "u32" },
    { name: "unused", type: "u32", pad: true },
    { name: "flags", type: "u32", display: show.flags(CuseInitFlags) },
    { name: "max_read", type: "u32" },
    { name: "max_write", type: "u32" },
    { name: "dev_major", type: "u32" },
    { name: "dev_minor", type: "u32" },
    { name: "spare", type: { bytes: 40 }, pad: true },
  ],
);

/** `struct fuse_interrupt_in`. */
export const FuseInterruptIn: Layout = def(
  "fuse_interrupt_in",
  [
    { name: "unique", type: "u64", display: show.hex },
  ],
);

/** `struct fuse_bmap_in`. */
export const FuseBmapIn: Layout = def(
  "fuse_bmap_in",
  [
    { name: "block", type: "u64" },
    { name: "blocksize", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_bmap_out`. */
export const FuseBmapOut: Layout = def("fuse_bmap_out", [{ name: "block", type: "u64" }]);

/** `struct fuse_ioctl_in`; `in_size` bytes of input data follow. */
export const FuseIoctlIn: Layout = def(
  "fuse_ioctl_in",
  [
    { name: "fh", type: "u64" },
    { name: "flags", type: "u32", display: show.flags(IoctlFlags) },
    { name: "cmd", type: "u32", display: show.hex },
    { name: "arg", type: "u64", display: show.hex },
    { name: "in_size", type: "u32" },
    { name: "out_size", type: "u32" },
  ],
);

/** `struct fuse_ioctl_iovec` (IOCTL_RETRY replies). */
export const FuseIoctlIovec: Layout = def(
  "fuse_ioctl_iovec",
  [
    { name: "base", type: "u64", display: show.hex },
    { name: "len", type: "u64" },
  ],
);

/** `struct fuse_ioctl_out`; output data, or with IOCTL_RETRY in_iovs+out_iovs iovecs, follow. */
export const FuseIoctlOut: Layout = def(
  "fuse_ioctl_out",
  [
    { name: "result", type: "i32" },
    { name: "flags", type: "u32", display: show.flags(IoctlFlags) },
    { name: "in_iovs", type: "u32" },
    { name: "out_iovs", type: "u32" },
  ],
);

/** `struct fuse_poll_in` (events was padding before 7.21). */
export const FusePollIn: Layout = def(
  "fuse_poll_in",
  [
    { name: "fh", type: "u64" },
    { name: "kh", type: "u64", display: show.hex },
    { name: "flags", type: "u32", display: show.flags(PollFlags) },
    { name: "events", type: "u32", display: show.flags(PollEvents) },
  ],
);

/** `struct fuse_poll_out`. */
export const FusePollOut: Layout = def(
  "fuse_poll_out",
  [
    { name: "revents", type: "u32", display: show.flags(PollEvents) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_fallocate_in`. */
export const FuseFallocateIn: Layout = def(
  "fuse_fallocate_in",
  [
    { name: "fh", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "length", type: "u64" },
    { name: "mode", type: "u32", display: show.flags(FallocateMode) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_lseek_in`. */
export const FuseLseekIn: Layout = def(
  "fuse_lseek_in",
  [
    { name: "fh", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "whence", type: "u32", display: show.enumOf(SeekWhence) },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_lseek_out`. */
export const FuseLseekOut: Layout = def("fuse_lseek_out", [{ name: "offset", type: "u64" }]);

/** `struct fuse_copy_file_range_in` (COPY_FILE_RANGE and COPY_FILE_RANGE_64). */
export const FuseCopyFileRangeIn: Layout = def(
  "fuse_copy_file_range_in",
  [
    { name: "fh_in", type: "u64" },
    { name: "off_in", type: "u64" },
    { name: "nodeid_out", type: "u64" },
    { name: "fh_out", type: "u64" },
    { name: "off_out", type: "u64" },
    { name: "len", type: "u64" },
    { name: "flags", type: "u64", display: show.hex },
  ],
);

/** `struct fuse_copy_file_range_out` (COPY_FILE_RANGE_64 reply, 7.45). */
export const FuseCopyFileRangeOut: Layout = def(
  "fuse_copy_file_range_out",
  [
    { name: "bytes_copied", type: "u64" },
  ],
);

/** `struct fuse_setupmapping_in` (virtio-fs DAX). */
export const FuseSetupmappingIn: Layout = def(
  "fuse_setupmapping_in",
  [
    { name: "fh", type: "u64" },
    { name: "foffset", type: "u64" },
    { name: "len", type: "u64" },
    { name: "flags", type: "u64", display: show.flags(SetupmappingFlags) },
    { name: "moffset", type: "u64" },
  ],
);

/** `struct fuse_removemapping_in` (4 bytes: the entries follow unaligned). */
export const FuseRemovemappingIn: Layout = def(
  "fuse_removemapping_in",
  [
    { name: "count", type: "u32" },
  ],
);

/** `struct fuse_removemapping_one`. */
export const FuseRemovemappingOne: Layout = def(
  "fuse_removemapping_one",
  [
    { name: "moffset", type: "u64" },
    { name: "len", type: "u64" },
  ],
);

/** `struct fuse_syncfs_in`. */
export const FuseSyncfsIn: Layout = def(
  "fuse_syncfs_in",
  [
    { name: "padding", type: "u64", pad: true },
  ],
);

/** `struct fuse_statx_in`. */
export const FuseStatxIn: Layout = def(
  "fuse_statx_in",
  [
    { name: "getattr_flags", type: "u32", display: show.flags(GetattrFlags) },
    { name: "reserved", type: "u32", pad: true },
    { name: "fh", type: "u64" },
    { name: "sx_flags", type: "u32", display: show.flags(StatxFlags) },
    { name: "sx_mask", type: "u32", display: show.flags(StatxMask) },
  ],
);

function sxTime(p: string): FieldSpec[] {
  return [
    { name: `${p}_sec`, type: "i64" },
    { name: `${p}_nsec`, type: "u32" },
    { name: `${p}_reserved`, type: "i32", pad: true },
  ];
}

/**
 * `struct fuse_statx_out` with its `fuse_statx` flattened; each `fuse_sx_time`
 * becomes `<name>_sec`, `<name>_nsec`, `<name>_reserved`.
 */
export const FuseStatxOut: Layout = def(
  "fuse_statx_out",
  [
    { name: "attr_valid", type: "u64" },
    { name: "attr_valid_nsec", type: "u32" },
    { name: "flags", type: "u32" },
    { name: "spare", type: { bytes: 16 }, pad: true },
    { name: "mask", type: "u32", display: show.flags(StatxMask) },
    { name: "blksize", type: "u32" },
    { name: "attributes", type: "u64", display: show.flags(StatxAttributes) },
    { name: "nlink", type: "u32" },
    { name: "uid", type: "u32" },
    { name: "gid", type: "u32" },
    { name: "mode", type: "u16", display: show.mode },
    { name: "spare0", type: "u16", pad: true },
    { name: "ino", type: "u64" },
    { name: "size", type: "u64" },
    { name: "blocks", type: "u64" },
    { name: "attributes_mask", type: "u64", display: show.flags(StatxAttributes) },
    ...sxTime("atime"),
    ...sxTime("btime"),
    ...sxTime("ctime"),
    ...sxTime("mtime"),
    { name: "rdev_major", type: "u32" },
    { name: "rdev_minor", type: "u32" },
    { name: "dev_major", type: "u32" },
    { name: "dev_minor", type: "u32" },
    { name: "spare2", type: { bytes: 112 }, pad: true },
  ],
);

// ---------------------------------------------------------------- notifications

/** `struct fuse_notify_poll_wakeup_out`. */
export const FuseNotifyPollWakeupOut: Layout = def(
  "fuse_notify_poll_wakeup_out",
  [
    { name: "kh", type: "u64", display: show.hex },
  ],
);

/** `struct fuse_notify_inval_inode_out`. */
export const FuseNotifyInvalInodeOut: Layout = def(
  "fuse_notify_inval_inode_out",
  [
    { name: "ino", type: "u64" },
    { name: "off", type: "i64" },
    { name: "len", type: "i64" },
  ],
);

/** `struct fuse_notify_inval_entry_out`; `namelen` name bytes and a NUL follow. */
export const FuseNotifyInvalEntryOut: Layout = def(
  "fuse_notify_inval_entry_out",
  [
    { name: "parent", type: "u64" },
    { name: "namelen", type: "u32" },
    { name: "flags", type: "u32", display: show.flags(InvalEntryFlags) },
  ],
);

/** `struct fuse_notify_delete_out`; `namelen` name bytes and a NUL follow. */
export const FuseNotifyDeleteOut: Layout = def(
  "fuse_notify_delete_out",
  [
    { name: "parent", type: "u64" },
    { name: "child", type: "u64" },
    { name: "namelen", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_notify_store_out`; `size` data bytes follow. */
export const FuseNotifyStoreOut: Layout = def(
  "fuse_notify_store_out",
  [
    { name: "nodeid", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_notify_retrieve_out`. */
export const FuseNotifyRetrieveOut: Layout = def(
  "fuse_notify_retrieve_out",
  [
    { name: "notify_unique", type: "u64", display: show.hex },
    { name: "nodeid", type: "u64" },
    { name: "offset", type: "u64" },
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_notify_retrieve_in` (the NOTIFY_REPLY request); `size` data bytes follow. */
export const FuseNotifyRetrieveIn: Layout = def(
  "fuse_notify_retrieve_in",
  [
    { name: "dummy1", type: "u64", pad: true },
    { name: "offset", type: "u64" },
    { name: "size", type: "u32" },
    { name: "dummy2", type: "u32", pad: true },
    { name: "dummy3", type: "u64", pad: true },
    { name: "dummy4", type: "u64", pad: true },
  ],
);

/** `struct fuse_notify_prune_out` (7.45); `count` node ids follow. */
export const FuseNotifyPruneOut: Layout = def(
  "fuse_notify_prune_out",
  [
    { name: "count", type: "u32" },
    { name: "padding", type: "u32", pad: true },
    { name: "spare", type: "u64", pad: true },
  ],
);

/** One node id of a PRUNE notification. */
export const FuseNodeId: Layout = def("fuse_nodeid", [{ name: "nodeid", type: "u64" }]);

// ---------------------------------------------------------------- directory entries

/** `struct fuse_dirent` without its name; `namelen` bytes follow, the record padded to 8. */
export const FuseDirentHead: Layout = def(
  "fuse_dirent",
  [
    { name: "ino", type: "u64" },
    { name: "off", type: "u64" },
    { name: "namelen", type: "u32" },
    { name: "type", type: "u32", display: show.enumOf(DirentType) },
  ],
);

// ---------------------------------------------------------------- request extensions (7.38)

/** `struct fuse_ext_header`: `size` includes the header; types 0–31 are security contexts. */
export const FuseExtHeader: Layout = def(
  "fuse_ext_header",
  [
    { name: "size", type: "u32" },
    { name: "type", type: "u32" },
  ],
);

/** `struct fuse_secctx_header` (a `fuse_ext_header` whose type is the context count). */
export const FuseSecctxHeader: Layout = def(
  "fuse_secctx_header",
  [
    { name: "size", type: "u32" },
    { name: "nr_secctx", type: "u32" },
  ],
);

/** `struct fuse_secctx`; the xattr name (NUL-terminated) and `size` context bytes follow, padded to 8. */
export const FuseSecctx: Layout = def(
  "fuse_secctx",
  [
    { name: "size", type: "u32" },
    { name: "padding", type: "u32", pad: true },
  ],
);

/** `struct fuse_supp_groups`; `nr_groups` u32 group ids follow. */
export const FuseSuppGroups: Layout = def(
  "fuse_supp_groups",
  [
    { name: "nr_groups", type: "u32" },
  ],
);

/** Every FUSE layout by C name, for the dissector and printers. */
export const FUSE_LAYOUTS: ReadonlyMap<string, Layout> = new Map(
  [
    FuseInHeader,
    FuseOutHeader,
    FuseAttr,
    FuseEntryOut,
    FuseAttrOut,
    FuseOpenOut,
    FuseCreateOut,
    FuseForgetIn,
    FuseForgetOne,
    FuseBatchForgetIn,
    FuseGetattrIn,
    FuseMknodIn,
    FuseMkdirIn,
    FuseRenameIn,
    FuseRename2In,
    FuseLinkIn,
    FuseSetattrIn,
    FuseOpenIn,
    FuseCreateIn,
    FuseReleaseIn,
    FuseFlushIn,
    FuseReadIn,
    FuseWriteIn,
    FuseWriteOut,
    FuseStatfsOut,
    FuseFsyncIn,
    FuseSetxattrIn,
    FuseGetxattrIn,
    FuseGetxattrOut,
    FuseLkIn,
    FuseLkOut,
    FuseAccessIn,
    FuseInitIn,
    FuseInitOut,
    CuseInitIn,
    CuseInitOut,
    FuseInterruptIn,
    FuseBmapIn,
    FuseBmapOut,
    FuseIoctlIn,
    FuseIoctlIovec,
    FuseIoctlOut,
    FusePollIn,
    FusePollOut,
    FuseFallocateIn,
    FuseLseekIn,
    FuseLseekOut,
    FuseCopyFileRangeIn,
    FuseCopyFileRangeOut,
    FuseSetupmappingIn,
    FuseRemovemappingIn,
    FuseRemovemappingOne,
    FuseSyncfsIn,
    FuseStatxIn,
    FuseStatxOut,
    FuseNotifyPollWakeupOut,
    FuseNotifyInvalInodeOut,
    FuseNotifyInvalEntryOut,
    FuseNotifyDeleteOut,
    FuseNotifyStoreOut,
    FuseNotifyRetrieveOut,
    FuseNotifyRetrieveIn,
    FuseNotifyPruneOut,
    FuseNodeId,
    FuseDirentHead,
    FuseExtHeader,
    FuseSecctxHeader,
    FuseSecctx,
    FuseSuppGroups,
  ].map((l) => [l.name, l]),
);
