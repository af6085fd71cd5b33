/**
 * THE FUSE table: opcode → name, request parts, reply shape, and the protocol
 * minor that introduced it; and notify code → body. The codec, the printer,
 * the dissector and the backend all read this table, so an opcode is described
 * once.
 *
 * A message body is read in this order, each part optional:
 * `struct` → `names` → `data` | `items` (→ request extensions).
 *
 * @module
 */

import {
  CuseInitIn,
  CuseInitOut,
  FuseAccessIn,
  FuseAttrOut,
  FuseBatchForgetIn,
  FuseBmapIn,
  FuseBmapOut,
  FuseCopyFileRangeIn,
  FuseCopyFileRangeOut,
  FuseCreateIn,
  FuseCreateOut,
  FuseEntryOut,
  FuseFallocateIn,
  FuseFlushIn,
  FuseForgetIn,
  FuseForgetOne,
  FuseFsyncIn,
  FuseGetattrIn,
  FuseGetxattrIn,
  FuseGetxattrOut,
  FuseInitIn,
  FuseInitOut,
  FuseInterruptIn,
  FuseIoctlIn,
  FuseIoctlIovec,
  FuseIoctlOut,
  FuseLinkIn,
  FuseLkIn,
  FuseLkOut,
  FuseLseekIn,
  FuseLseekOut,
  FuseMkdirIn,
  FuseMknodIn,
  FuseNodeId,
  FuseNotifyDeleteOut,
  FuseNotifyInvalEntryOut,
  FuseNotifyInvalInodeOut,
  FuseNotifyPollWakeupOut,
  FuseNotifyPruneOut,
  FuseNotifyRetrieveIn,
  FuseNotifyRetrieveOut,
  FuseNotifyStoreOut,
  FuseOpenIn,
  FuseOpenOut,
  FusePollIn,
  FusePollOut,
  FuseReadIn,
  FuseReleaseIn,
  FuseRemovemappingIn,
  FuseRemovemappingOne,
  FuseRename2In,
  FuseRenameIn,
  FuseSetattrIn,
  FuseSetupmappingIn,
  FuseSetxattrIn,
  FuseStatfsOut,
  FuseStatxIn,
  FuseStatxOut,
  FuseSyncfsIn,
  FuseWriteIn,
  FuseWriteOut,
  Opcode,
  type OpcodeName,
} from "./fuse_layouts.ts";
import type { Layout } from "./struct.ts";

/** The protocol major version this codec speaks. */
export const FUSE_KERNEL_VERSION = 7;
/** The newest protocol minor this codec knows (Linux include/uapi/linux/fuse.h). */
export const FUSE_KERNEL_MINOR_VERSION = 45;
/** Minor that added `fuse_in_header.total_extlen` and request extensions. */
export const FUSE_EXT_MINOR = 38;
/** `fuse_ext_header.type` values 0..FUSE_MAX_NR_SECCTX are security-context headers. */
export const FUSE_MAX_NR_SECCTX = 31;
/** `fuse_ext_header.type` of the supplementary-groups extension. */
export const FUSE_EXT_GROUPS = 32;
/** The kernel's limit on a name in a dirent or notification. */
export const FUSE_NAME_MAX = 1024;
/** Bit 63 of `unique` marks a resent request (7.40, FUSE_HAS_RESEND). */
export const FUSE_UNIQUE_RESEND: bigint = 1n << 63n;
/** The node id of the root directory. */
export const FUSE_ROOT_ID = 1n;

/** A string in the body: NUL-terminated, or `lenField` bytes long plus a NUL. */
export interface NamePart {
  /** What the string is, for people (`"name"`, `"newname"`, `"target"`). */
  readonly label: string;
  /** Struct field that gives the byte length (notifications); else the NUL ends it. */
  readonly lenField?: string;
}

/** Opaque bytes in the body. */
export interface DataPart {
  /** What the bytes are (`"data"`, `"value"`). */
  readonly label: string;
  /** Struct field that gives the byte count (computed when encoding); else all remaining bytes. */
  readonly sizeField?: string;
}

/** A counted array of structs in the body. */
export interface ItemsPart {
  /** What the elements are (`"forgets"`). */
  readonly label: string;
  /** Layout of one element. */
  readonly layout: Layout;
  /**
   * Struct field that gives the element count (computed when encoding); for
   * IOCTL replies `in_iovs+out_iovs`, a sum the encoder takes as given.
   */
  readonly countField: string;
}

/** The parts of a message body after its header. */
export interface BodySpec {
  /** The fixed struct first, if any. */
  readonly struct?: Layout;
  /** Strings after the struct, in order. */
  readonly names?: readonly NamePart[];
  /** Bytes after the names. */
  readonly data?: DataPart;
  /** Or a counted array after the names. */
  readonly items?: ItemsPart;
}

/**
 * How the struct's wire size is chosen beyond the negotiated minor:
 * `"init"` — by the minor inside the INIT message itself;
 * `"setxattr"` — by whether FUSE_SETXATTR_EXT was negotiated (init flags).
 */
export type VersionRule = "init" | "setxattr";

/** A request body. */
export interface RequestSpec extends BodySpec {
  /**
   * The request creates an inode (MKNOD, MKDIR, SYMLINK, CREATE, TMPFILE) and
   * may carry a security context / supplementary groups: from 7.38 as
   * extensions counted by total_extlen, at 7.36–7.37 inline after the names.
   */
  readonly creates?: boolean;
  /** Size rule for the struct. */
  readonly version?: VersionRule;
}

/**
 * How a successful reply's body is shaped.
 * - `none`: the kernel expects no reply (FORGET, BATCH_FORGET, NOTIFY_REPLY; INTERRUPT only errors).
 * - `empty`: header only.
 * - `struct`: `struct`, then optional `data`/`items`.
 * - `data`: raw bytes (READ, READLINK).
 * - `xattr`: `fuse_getxattr_out` if the request asked for size 0, else the raw value/list.
 * - `dirents` / `direntplus`: `fuse_dirent` / `fuse_direntplus` records, 8-byte aligned.
 * - `ioctl`: `fuse_ioctl_out`, then output data, or iovecs when IOCTL_RETRY is set.
 */
export type ReplyKind =
  | "none"
  | "empty"
  | "struct"
  | "data"
  | "xattr"
  | "dirents"
  | "direntplus"
  | "ioctl";

/** A reply body. */
export interface ReplySpec extends BodySpec {
  /** Shape of the body. */
  readonly kind: ReplyKind;
  /** Size rule for the struct. */
  readonly version?: "init";
  /** Request struct field that bounds the data/entries byte count (READ size, ioctl out_size). */
  readonly limit?: string;
}

/** One FUSE operation. */
export interface FuseOp {
  /** Opcode number. */
  readonly opcode: number;
  /** Name without the `FUSE_` prefix (`"LOOKUP"`, `"CUSE_INIT"`). */
  readonly name: OpcodeName;
  /** Protocol minor that introduced it (0: present from the start). */
  readonly since: number;
  /** The request body. */
  readonly request: RequestSpec;
  /** The successful reply body. */
  readonly reply: ReplySpec;
}

/** One FUSE notification (a daemon→kernel message with unique 0). */
export interface FuseNotify extends BodySpec {
  /** Notify code (carried in `fuse_out_header.error`). */
  readonly code: number;
  /** Name without the `FUSE_NOTIFY_` prefix (`"INVAL_ENTRY"`). */
  readonly name: string;
  /** Protocol minor that introduced it. */
  readonly since: number;
}

const NAME: NamePart = { label: "name" };
const OLDNAME: NamePart = { label: "oldname" };
const NEWNAME: NamePart = { label: "newname" };
const EMPTY: ReplySpec = { kind: "empty" };
const NONE: ReplySpec = { kind: "none" };
const ENTRY: ReplySpec = { kind: "struct", struct: FuseEntryOut };
const ATTR: ReplySpec = { kind: "struct", struct: FuseAttrOut };
const OPEN: ReplySpec = { kind: "struct", struct: FuseOpenOut };
const LK: ReplySpec = { kind: "struct", struct: FuseLkOut };
const CREATED: ReplySpec = { kind: "struct", struct: FuseCreateOut };
const XATTR: ReplySpec = {
  kind: "xattr",
  struct: FuseGetxattrOut,
  data: { label: "value" },
  limit: "size",
};

function op(name: OpcodeName, since: number, request: RequestSpec, reply: ReplySpec): FuseOp {
  return { opcode: Opcode[name], name, since, request, reply };
}

const OPS: readonly FuseOp[] = [
  op("LOOKUP", 0, { names: [NAME] }, ENTRY),
  op("FORGET", 0, { struct: FuseForgetIn }, NONE),
  op("GETATTR", 0, { struct: FuseGetattrIn }, ATTR),
  op("SETATTR", 1, { struct: FuseSetattrIn }, ATTR),
  op("READLINK", 0, {}, { kind: "data", data: { label: "target" } }),
  op("SYMLINK", 1, { names: [NAME, { label: "target" }], creates: true }, ENTRY),
  op("MKNOD", 1, { struct: FuseMknodIn, names: [NAME], creates: true }, ENTRY),
  op("MKDIR", 1, { struct: FuseMkdirIn, names: [NAME], creates: true }, ENTRY),
  op("UNLINK", 1, { names: [NAME] }, EMPTY),
  op("RMDIR", 1, { names: [NAME] }, EMPTY),
  op("RENAME", 1, { struct: FuseRenameIn, names: [OLDNAME, NEWNAME] }, EMPTY),
  op("LINK", 1, { struct: FuseLinkIn, names: [NEWNAME] }, ENTRY),
  op("OPEN", 1, { struct: FuseOpenIn }, OPEN),
  op("READ", 1, { struct: FuseReadIn }, { kind: "data", data: { label: "data" }, limit: "size" }),
  op("WRITE", 1, { struct: FuseWriteIn, data: { label: "data", sizeField: "size" } }, {
    kind: "struct",
    struct: FuseWriteOut,
  }),
  op("STATFS", 0, {}, { kind: "struct", struct: FuseStatfsOut }),
  op("RELEASE", 1, { struct: FuseReleaseIn }, EMPTY),
  op("FSYNC", 1, { struct: FuseFsyncIn }, EMPTY),
  op("SETXATTR", 1, {
    struct: FuseSetxattrIn,
    names: [NAME],
    data: { label: "value", sizeField: "size" },
    version: "setxattr",
  }, EMPTY),
  op("GETXATTR", 1, { struct: FuseGetxattrIn, names: [NAME] }, XATTR),
  op("LISTXATTR", 1, { struct: FuseGetxattrIn }, XATTR),
  op("REMOVEXATTR", 1, { names: [NAME] }, EMPTY),
  op("FLUSH", 1, { struct: FuseFlushIn }, EMPTY),
  op("INIT", 0, { struct: FuseInitIn, version: "init" }, {
    kind: "struct",
    struct: FuseInitOut,
    version: "init",
  }),
  op("OPENDIR", 1, { struct: FuseOpenIn }, OPEN),
  op("READDIR", 1, { struct: FuseReadIn }, { kind: "dirents", limit: "size" }),
  op("RELEASEDIR", 1, { struct: FuseReleaseIn }, EMPTY),
  op("FSYNCDIR", 2, { struct: FuseFsyncIn }, EMPTY),
  op("GETLK", 7, { struct: FuseLkIn }, LK),
  op("SETLK", 7, { struct: FuseLkIn }, EMPTY),
  op("SETLKW", 7, { struct: FuseLkIn }, EMPTY),
  op("ACCESS", 3, { struct: FuseAccessIn }, EMPTY),
  op("CREATE", 3, { struct: FuseCreateIn, names: [NAME], creates: true }, CREATED),
  op("INTERRUPT", 7, { struct: FuseInterruptIn }, NONE),
  op("BMAP", 8, { struct: FuseBmapIn }, { kind: "struct", struct: FuseBmapOut }),
  op("DESTROY", 8, {}, EMPTY),
  op("IOCTL", 11, { struct: FuseIoctlIn, data: { label: "data", sizeField: "in_size" } }, {
    kind: "ioctl",
    struct: FuseIoctlOut,
    data: { label: "data" },
    items: { label: "iovecs", layout: FuseIoctlIovec, countField: "in_iovs+out_iovs" },
    limit: "out_size",
  }),
  op("POLL", 11, { struct: FusePollIn }, { kind: "struct", struct: FusePollOut }),
  op("NOTIFY_REPLY", 15, {
    struct: FuseNotifyRetrieveIn,
    data: { label: "data", sizeField: "size" },
  }, NONE),
  op("BATCH_FORGET", 16, {
    struct: FuseBatchForgetIn,
    items: { label: "forgets", layout: FuseForgetOne, countField: "count" },
  }, NONE),
  op("FALLOCATE", 19, { struct: FuseFallocateIn }, EMPTY),
  op("READDIRPLUS", 21, { struct: FuseReadIn }, { kind: "direntplus", limit: "size" }),
  op("RENAME2", 23, { struct: FuseRename2In, names: [OLDNAME, NEWNAME] }, EMPTY),
  op("LSEEK", 24, { struct: FuseLseekIn }, { kind: "struct", struct: FuseLseekOut }),
  op("COPY_FILE_RANGE", 28, { struct: FuseCopyFileRangeIn }, {
    kind: "struct",
    struct: FuseWriteOut,
  }),
  op("SETUPMAPPING", 31, { struct: FuseSetupmappingIn }, EMPTY),
  op("REMOVEMAPPING", 31, {
    struct: FuseRemovemappingIn,
    items: { label: "mappings", layout: FuseRemovemappingOne, countField: "count" },
  }, EMPTY),
  op("SYNCFS", 34, { struct: FuseSyncfsIn }, EMPTY),
  op("TMPFILE", 37, { struct: FuseCreateIn, names: [NAME], creates: true }, CREATED),
  op("STATX", 39, { struct: FuseStatxIn }, { kind: "struct", struct: FuseStatxOut }),
  op("COPY_FILE_RANGE_64", 45, { struct: FuseCopyFileRangeIn }, {
    kind: "struct",
    struct: FuseCopyFileRangeOut,
  }),
  op("CUSE_INIT", 12, { struct: CuseInitIn }, {
    kind: "struct",
    struct: CuseInitOut,
    data: { label: "info" },
  }),
];

/** Every FUSE operation by opcode. Unknown opcodes are absent. */
export const FUSE_OPS: ReadonlyMap<number, FuseOp> = new Map(OPS.map((o) => [o.opcode, o]));

// Dense lookup for the hot path; CUSE_INIT (4096) goes through the map.
const DENSE: (FuseOp | undefined)[] = [];
for (const o of OPS) if (o.opcode < 64) DENSE[o.opcode] = o;

/** The operation for `opcode`, or undefined when unknown. */
export function fuseOp(opcode: number): FuseOp | undefined {
  return opcode < 64 ? DENSE[opcode] : FUSE_OPS.get(opcode);
}

/** The operation named `name` (`"LOOKUP"`). */
export function fuseOpByName(name: OpcodeName): FuseOp {
  const o = FUSE_OPS.get(Opcode[name]);
  if (o === undefined) throw new Error(`fuse table: no ${name}`);
  return o;
}

/** Every FUSE notification by code. Unknown codes are absent. */
export const FUSE_NOTIFY: ReadonlyMap<number, FuseNotify> = new Map(
  ([
    { code: 1, name: "POLL", since: 11, struct: FuseNotifyPollWakeupOut },
    { code: 2, name: "INVAL_INODE", since: 12, struct: FuseNotifyInvalInodeOut },
    {
      code: 3,
      name: "INVAL_ENTRY",
      since: 12,
      struct: FuseNotifyInvalEntryOut,
      names: [{ label: "name", lenField: "namelen" }],
    },
    {
      code: 4,
      name: "STORE",
      since: 15,
      struct: FuseNotifyStoreOut,
      data: { label: "data", sizeField: "size" },
    },
    { code: 5, name: "RETRIEVE", since: 15, struct: FuseNotifyRetrieveOut },
    {
      code: 6,
      name: "DELETE",
      since: 18,
      struct: FuseNotifyDeleteOut,
      names: [{ label: "name", lenField: "namelen" }],
    },
    { code: 7, name: "RESEND", since: 40 },
    { code: 8, name: "INC_EPOCH", since: 44 },
    {
      code: 9,
      name: "PRUNE",
      since: 45,
      struct: FuseNotifyPruneOut,
      items: { label: "nodeids", layout: FuseNodeId, countField: "count" },
    },
  ] satisfies FuseNotify[]).map((n) => [n.code, n]),
);
