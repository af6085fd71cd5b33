/**
 * Test support for the FUSE codec, not public API: one valid request per
 * opcode (several where the shape varies) with its successful replies, and one
 * sample per notification, at a chosen protocol minor and INIT flags. Every
 * struct field gets a distinct value; computed fields (sizes, counts, name
 * lengths) are set consistently, so a decoded record can be compared with
 * its sample.
 *
 * @module
 */

import type {
  FuseDirentInit,
  FuseExtension,
  FuseReplyInit,
  FuseRequestInit,
} from "./_fuse_codec.ts";
import { InitFlags, IoctlFlags } from "./fuse_flags.ts";
import { Opcode } from "./fuse_layouts.ts";
import { FuseSession } from "./fuse_session.ts";
import { FUSE_EXT_MINOR, FUSE_NOTIFY, FUSE_OPS, type FuseOp } from "./fuse_table.ts";
import type { Decoded, FieldValue, Layout } from "./struct.ts";

/** A request with the replies that may answer it. */
export interface FuseSample {
  /** Opcode name plus variant. */
  readonly label: string;
  /** The table entry. */
  readonly op: FuseOp;
  /** The request (header fields complete, computed ones included). */
  readonly request: FuseRequestInit;
  /** Successful replies (none for opcodes that take no reply). */
  readonly replies: readonly FuseReplyInit[];
}

/** Connection state the samples are built for. */
export interface SampleConfig {
  /** Negotiated minor. */
  readonly minor: number;
  /** Negotiated INIT flags. */
  readonly flags: bigint;
}

/** A fresh session in the state `config` describes. */
export function sessionFor(config: SampleConfig): FuseSession {
  return new FuseSession({ minor: config.minor, flags: config.flags });
}

/** The flags a Linux 6.1 guest offers (brief), for samples that want realistic ones. */
export const LINUX_6_1_FLAGS: bigint = InitFlags.parse([
  "ASYNC_READ",
  "POSIX_LOCKS",
  "ATOMIC_O_TRUNC",
  "EXPORT_SUPPORT",
  "BIG_WRITES",
  "DONT_MASK",
  "SPLICE_WRITE",
  "SPLICE_MOVE",
  "SPLICE_READ",
  "FLOCK_LOCKS",
  "HAS_IOCTL_DIR",
  "AUTO_INVAL_DATA",
  "DO_READDIRPLUS",
  "READDIRPLUS_AUTO",
  "ASYNC_DIO",
  "WRITEBACK_CACHE",
  "NO_OPEN_SUPPORT",
  "PARALLEL_DIROPS",
  "HANDLE_KILLPRIV",
  "POSIX_ACL",
  "ABORT_ERROR",
  "MAX_PAGES",
  "CACHE_SYMLINKS",
  "NO_OPENDIR_SUPPORT",
  "EXPLICIT_INVAL_DATA",
  "HANDLE_KILLPRIV_V2",
  "SETXATTR_EXT",
  "INIT_EXT",
  "SECURITY_CTX",
  "SUBMOUNTS",
]);

/**
 * Distinct values for every field of `layout` at `minor`; absent fields are 0
 * (as the decoder returns them), padding is 0 (as senders zero it).
 */
export function fill(layout: Layout, minor: number, seed: number): Decoded {
  const out: Decoded = {};
  let k = seed * 31 + 7;
  for (const f of layout.fields) {
    k++;
    const present = (f.since ?? 0) <= minor;
    const zero = !present || f.pad === true;
    let v: FieldValue;
    switch (f.type) {
      case "u8":
        v = zero ? 0 : k & 0xff;
        break;
      case "u16":
        v = zero ? 0 : (k * 257) & 0xffff;
        break;
      case "u32":
        v = zero ? 0 : Math.imul(k, 0x9e3779b1) >>> 0;
        break;
      case "i32":
        v = zero ? 0 : Math.imul(k, 0x9e3779b1) | 0;
        break;
      case "u64":
        v = zero ? 0n : (BigInt(k) * 0x9e3779b97f4a7c15n) & 0xffff_ffff_ffff_ffffn;
        break;
      case "i64":
        v = zero ? 0n : BigInt.asIntN(64, BigInt(k) * 0x9e3779b97f4a7c15n);
        break;
      default:
        v = new Uint8Array(f.type.bytes);
        if (!zero) v.forEach((_, i, a) => (a[i] = (k + i) & 0xff));
    }
    out[f.name] = v;
  }
  return out;
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed) & 0xff;
  return b;
}

/** Request extensions a creating request carries at `minor`. */
export function sampleExtensions(minor: number): FuseExtension[] {
  const secctx: FuseExtension = {
    kind: "secctx",
    contexts: [{
      name: "security.selinux",
      value: new TextEncoder().encode("system_u:object_r:tmp_t:s0\0"),
    }],
  };
  if (minor >= FUSE_EXT_MINOR) return [secctx, { kind: "groups", groups: [1000, 4] }];
  return minor >= 36 ? [secctx] : [];
}

const LOW32 = 0xffff_ffffn;
const align8 = (n: number) => Math.ceil(n / 8) * 8;

/** Wire size of one extension (fuse.h: header, entries padded to 8). */
function extensionSize(x: FuseExtension): number {
  switch (x.kind) {
    case "groups":
      return align8(12 + 4 * x.groups.length);
    case "secctx":
      return 8 +
        x.contexts.reduce((m, c) => m + align8(8 + c.name.length + 1 + c.value.byteLength), 0);
    case "unknown":
      return 8 + align8(x.data.byteLength);
  }
}

/** Every opcode's samples for `config`. */
export function fuseSamples(config: SampleConfig): FuseSample[] {
  const { minor } = config;
  const setxattrExt = (config.flags & (InitFlags.bit("SETXATTR_EXT") ?? 0n)) !== 0n;
  const out: FuseSample[] = [];
  let seed = 1;
  for (const op of FUSE_OPS.values()) {
    const unique = BigInt(2 * seed);
    const header = {
      opcode: op.opcode,
      unique,
      nodeid: BigInt(seed * 3),
      uid: 1000 + seed,
      gid: 100 + seed,
      pid: 4000 + seed,
      "total_extlen": 0,
      padding: 0,
    };
    const version = op.request.version === "setxattr" ? (setxattrExt ? 63 : 32) : minor;
    const arg = op.request.struct !== undefined
      ? fill(op.request.struct, version, seed)
      : undefined;
    const names = (op.request.names ?? []).map((p, i) =>
      i === 0 && op.opcode === Opcode.LOOKUP ? `café-\udcff-${seed}` : `${p.label}-${seed}.txt`
    );
    let data: Uint8Array | undefined;
    let items: Decoded[] | undefined;
    if (op.request.data !== undefined) data = bytes(37 + seed, seed);
    if (op.request.items !== undefined) {
      items = [0, 1, 2].map((i) => fill(op.request.items!.layout, minor, seed * 10 + i));
    }
    if (arg !== undefined && op.request.data?.sizeField !== undefined) {
      arg[op.request.data.sizeField] = data?.byteLength ?? 0;
    }
    if (arg !== undefined && op.request.items !== undefined) {
      arg[op.request.items.countField] = items?.length ?? 0;
    }
    const extensions = op.request.creates === true ? sampleExtensions(minor) : [];
    const extBytes = extensions.reduce((n, x) => n + extensionSize(x), 0);
    if (minor >= FUSE_EXT_MINOR) header["total_extlen"] = extBytes / 8;
    const replies: FuseReplyInit[] = [];
    const rh = { unique, error: 0 };
    const r = op.reply;
    const variants: { label: string; arg: Decoded | undefined; replies: FuseReplyInit[] }[] = [];
    switch (r.kind) {
      case "none":
        break;
      case "empty":
        replies.push({ header: rh });
        break;
      case "data":
        replies.push({ header: rh, data: bytes(100, seed) });
        break;
      case "struct": {
        const rv = r.version === "init" ? minor : minor;
        const ra = r.struct !== undefined ? fill(r.struct, rv, seed + 100) : undefined;
        replies.push({
          header: rh,
          arg: ra,
          ...(r.data !== undefined ? { data: bytes(20, seed) } : {}),
        });
        break;
      }
      case "dirents":
      case "direntplus":
        replies.push({
          header: rh,
          entries: sampleDirents(3, r.kind === "direntplus", minor, seed),
        });
        replies.push({ header: rh, entries: [] });
        break;
      case "xattr":
      case "ioctl":
        break; // variants below
    }
    if (arg !== undefined && r.limit !== undefined) arg[r.limit] = 4096;
    if (op.opcode === Opcode.INIT && arg !== undefined) {
      arg.major = 7;
      arg.minor = minor;
      arg.flags = Number(config.flags & LOW32);
      if (minor >= 36) arg.flags2 = Number(config.flags >> 32n);
      const ra = replies[0]?.arg as Decoded | undefined;
      if (ra !== undefined) {
        ra.major = 7;
        ra.minor = minor;
        if (minor >= 5) ra.flags = Number(config.flags & LOW32);
        if (minor >= 23) ra.flags2 = Number(config.flags >> 32n);
      }
    }
    if (r.kind === "xattr" && arg !== undefined && r.struct !== undefined) {
      variants.push({ label: "data", arg, replies: [{ header: rh, data: bytes(60, seed) }] });
      variants.push({
        label: "size probe",
        arg: { ...arg, size: 0 },
        replies: [{ header: rh, arg: fill(r.struct, minor, seed + 100) }],
      });
    } else if (r.kind === "ioctl" && arg !== undefined && r.struct !== undefined) {
      const plain = fill(r.struct, minor, seed + 100);
      plain.flags = 0;
      const retry = {
        ...plain,
        flags: Number(IoctlFlags.bit("IOCTL_RETRY")),
        "in_iovs": 1,
        "out_iovs": 2,
      };
      variants.push({
        label: "",
        arg,
        replies: [
          { header: rh, arg: plain, data: bytes(64, seed) },
          {
            header: rh,
            arg: retry,
            items: [0, 1, 2].map((i) => fill(r.items!.layout, minor, seed + i)),
          },
        ],
      });
    } else {
      variants.push({ label: "", arg, replies });
    }
    for (const v of variants) {
      out.push({
        label: v.label === "" ? op.name : `${op.name} ${v.label}`,
        op,
        request: {
          header,
          arg: v.arg,
          names,
          ...(data !== undefined ? { data } : {}),
          ...(items !== undefined ? { items } : {}),
          extensions,
        },
        replies: v.replies,
      });
    }
    seed++;
  }
  return out;
}

/** `n` directory entries (with `fuse_entry_out` when `plus`). */
export function sampleDirents(
  n: number,
  plus: boolean,
  minor: number,
  seed: number,
): FuseDirentInit[] {
  const entryLayout = FUSE_OPS.get(Opcode.LOOKUP)?.reply.struct;
  return Array.from({ length: n }, (_, i) => ({
    ino: BigInt(1000 + i),
    off: BigInt(i + 1),
    type: [4, 8, 10][i % 3] ?? 8,
    name: i === 0 ? "." : `entry-${seed}-${"x".repeat(i)}`,
    entry: plus && entryLayout !== undefined ? fill(entryLayout, minor, seed * 7 + i) : undefined,
  }));
}

/** One notification of every known code (unique 0). */
export function notifySamples(minor: number): { label: string; reply: FuseReplyInit }[] {
  const out: { label: string; reply: FuseReplyInit }[] = [];
  for (const n of FUSE_NOTIFY.values()) {
    const arg = n.struct !== undefined ? fill(n.struct, minor, n.code) : undefined;
    const names = (n.names ?? []).map((_, i) => `gone-${n.code}-${i}`);
    for (const p of n.names ?? []) {
      if (arg !== undefined && p.lenField !== undefined) arg[p.lenField] = names[0]?.length ?? 0;
    }
    const data = n.data !== undefined ? bytes(33, n.code) : undefined;
    if (arg !== undefined && n.data?.sizeField !== undefined) {
      arg[n.data.sizeField] = data?.byteLength ?? 0;
    }
    const items = n.items !== undefined
      ? [1, 2].map((i) => fill(n.items!.layout, minor, i))
      : undefined;
    if (arg !== undefined && n.items !== undefined) arg[n.items.countField] = items?.length ?? 0;
    out.push({
      label: n.name,
      reply: {
        header: { unique: 0n, error: n.code },
        arg,
        names,
        ...(data !== undefined ? { data } : {}),
        ...(items !== undefined ? { items } : {}),
      },
    });
  }
  return out;
}
