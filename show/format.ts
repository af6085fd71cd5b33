/**
 * The one formatter of `vfstrace show` and of `vfstrace trace`'s live
 * output: {@link ShowEvent}s → strace-like lines.
 *
 * ```
 * 15:00:21.123456 q1 LOOKUP      nodeid=1 "tree" = -ENOENT <12.3µs>
 * 15:00:21.123502 q1 WRITE       nodeid=12 fh=3 off=0 size=1048576 = 1048576 <1.2ms>
 * 15:00:21.123612 hiprio FORGET  nodeid=3 nlookup=1 <229µs>
 * 15:00:21.123700 vhost-user → SET_MEM_TABLE regions=2 [2 fds]
 * ```
 *
 * A line is `time queue OPERATION arguments = result <latency>`; the time
 * is the request's, the line is printed when the operation completes
 * (see show/pairing.ts). Queue 0 is `hiprio`. Results: `-ERRNO` for errors,
 * `?` when unanswered; FORGET-like operations have none. Problems (a body
 * that did not decode, an evicted request) follow in brackets.
 *
 * Built for throughput: strings are concatenated directly, opcode and queue
 * labels are cached, the clock is recomputed once per second of capture.
 * The verbose tree (every field of both structs, formatted by the layouts'
 * display metadata) and hex dumps are off the hot path.
 *
 * @module
 */
import {
  type Decoded,
  decodeName,
  type FieldSpec,
  type FieldValue,
  FopenFlags,
  formatField,
  formatMode,
  formatOpenFlags,
  formatRdev,
  fuseOp,
  type FuseReply,
  type FuseRequest,
  initFlagsOf,
  type Layout,
  LockType,
  Opcode,
  SeekWhence,
  SetattrValid,
} from "../decode/fuse.ts";
import {
  AccessMask,
  DirentType,
  FallocateMode,
  FsyncFlags,
  OpenInFlags,
  PollEvents,
  ReleaseFlags,
  RenameFlags,
  WriteFlags,
  XattrFlags,
} from "../decode/fuse_flags.ts";
import { FuseInHeader, FuseOutHeader } from "../decode/fuse_layouts.ts";
import { HEAD_NONE, NOTIFY_DIRECTION, RECORD_KIND, VhostUserDirection } from "../decode/pcapng.ts";
import { formatMessage, formatPayload, type VhostUserMessage } from "../decode/vhost_user.ts";
import { errnoName } from "../sys/errno.ts";
import type { ControlEvent, FuseOperation, ShowEvent, ShowRecord } from "./pairing.ts";

/** The colour functions a formatter uses; picocolors' `Colors` is one. */
export interface Palette {
  /** Errors. */
  readonly red: (s: string) => string;
  /** Slow operations, unanswered ones. */
  readonly yellow: (s: string) => string;
  /** Timestamps, details. */
  readonly dim: (s: string) => string;
  /** vhost-user lines. */
  readonly cyan: (s: string) => string;
  /** Notes and gaps. */
  readonly magenta: (s: string) => string;
}

const same = (s: string): string => s;
/** No colour at all. */
export const NO_COLORS: Palette = { red: same, yellow: same, dim: same, cyan: same, magenta: same };

/**
 * The time column: `absolute` wall-clock time of day (`15:00:21.123456`),
 * `relative` seconds since the origin (the first record), `delta` seconds
 * since the previous line (negative when requests overlap, since lines come
 * in completion order but show request times).
 */
export type TimeMode = "absolute" | "relative" | "delta";

/** Options of {@link LineFormatter}. */
export interface FormatOptions {
  /** Time column (absolute by default). */
  readonly time?: TimeMode | undefined;
  /** Time zone of absolute times: the machine's (default) or UTC. */
  readonly timeZone?: "local" | "utc" | undefined;
  /** Colours ({@link NO_COLORS} by default). */
  readonly colors?: Palette | undefined;
  /** Latency from which an operation is marked slow (yellow); 10 ms by default. */
  readonly slowNs?: number | undefined;
  /** Add the tree of every field of both messages under each line. */
  readonly verbose?: boolean | undefined;
  /** Add a hex dump of the bodies under each line. */
  readonly hex?: boolean | undefined;
  /** Bytes of each body the hex dump shows (1024 by default; 0: all). */
  readonly hexLimit?: number | undefined;
  /** Origin of `relative` times (default: the first event formatted). */
  readonly originNs?: bigint | undefined;
}

const DEFAULT_SLOW_NS = 10_000_000;
const DEFAULT_HEX_LIMIT = 1024;
const NAME_WIDTH = 11; // READDIRPLUS
const DAY_NS = 86_400_000_000_000;

const ZEROS = "000000";
const SPACES = "            ";

function pad6(n: number): string {
  const s = String(n);
  return s.length >= 6 ? s : ZEROS.slice(s.length) + s;
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** Seconds with microseconds (`2.500013`, `-0.000012`) from nanoseconds. */
function seconds(ns: number): string {
  const neg = ns < 0;
  const a = neg ? -ns : ns;
  const s = Math.floor(a / 1e9);
  const us = Math.floor((a - s * 1e9) / 1000);
  const text = (neg ? "-" : "") + s + "." + pad6(us);
  return text.length >= 10 ? text : SPACES.slice(0, 10 - text.length) + text;
}

/** Value with up to 3 significant digits, trailing zeros dropped (`12.3`, `40`, `1.2`). */
function sig3(v: number): string {
  if (v >= 100) return String(Math.round(v));
  if (v >= 10) {
    const x = Math.round(v * 10);
    return x % 10 === 0 ? String(x / 10) : String(Math.floor(x / 10)) + "." + (x % 10);
  }
  const x = Math.round(v * 100);
  if (x % 100 === 0) return String(x / 100);
  const int = Math.floor(x / 100);
  const frac = x % 100;
  return frac % 10 === 0 ? int + "." + frac / 10 : int + "." + (frac < 10 ? "0" + frac : frac);
}

/**
 * A duration for people, 3 significant digits: `850ns`, `12.3µs`, `40µs`,
 * `1.2ms`, `2.5s`.
 */
export function formatDuration(ns: number): string {
  if (ns < 0) return "-" + formatDuration(-ns);
  if (ns < 1000) return Math.round(ns) + "ns";
  // Round first, so 999.96µs reads 1ms, not 1000µs.
  if (ns < 999_500) return sig3(ns / 1e3) + "µs";
  if (ns < 999_500_000) return sig3(ns / 1e6) + "ms";
  return sig3(ns / 1e9) + "s";
}

function escapeName(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x0d) out += "\\r";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + c.toString(16).padStart(2, "0");
    // decodeName keeps bytes that are not UTF-8 as U+DC80..U+DCFF: show the byte.
    else if (c >= 0xdc80 && c <= 0xdcff) out += "\\x" + (c - 0xdc00).toString(16);
    else out += s[i];
  }
  return out;
}

/** A file name in double quotes, C escapes for quotes, controls and bytes that are not UTF-8. */
export function quoteName(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x7f || (c >= 0xdc80 && c <= 0xdcff)) {
      return '"' + escapeName(s) + '"';
    }
  }
  return '"' + s + '"';
}

const FILE_TYPES: Readonly<Record<number, string>> = {
  0o140000: "S_IFSOCK",
  0o120000: "S_IFLNK",
  0o100000: "S_IFREG",
  0o060000: "S_IFBLK",
  0o040000: "S_IFDIR",
  0o020000: "S_IFCHR",
  0o010000: "S_IFIFO",
};

/** A mode argument as strace shows it: `0644`, `S_IFCHR|0620`. */
export function formatModeArg(mode: number): string {
  const perm = mode & 0o7777;
  const oct = perm.toString(8);
  const p = "0" + (oct.length >= 3 ? oct : "000".slice(oct.length) + oct);
  const type = mode & 0o170000;
  if (type === 0) return p;
  return (FILE_TYPES[type] ?? `0${type.toString(8)}`) + "|" + p;
}

function num(v: FieldValue | undefined): number {
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0;
}

function str(v: FieldValue | undefined): string {
  return v === undefined || v instanceof Uint8Array ? "?" : String(v);
}

function popcount(v: bigint): number {
  let n = 0;
  for (let x = v; x > 0n; x >>= 1n) if ((x & 1n) === 1n) n++;
  return n;
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? `1 ${one}` : `${n} ${many}`;
}

function fdsLabel(n: number): string {
  return n === 0 ? "" : n === 1 ? " [1 fd]" : ` [${n} fds]`;
}

function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** A SETATTR time: `now` (…_NOW bit), else `seconds.nanoseconds`. */
function timeTag(op: Decoded, which: "atime" | "mtime" | "ctime", nowBit: number): string {
  if (nowBit !== 0) return "now";
  return str(op[which]) + "." + String(num(op[which + "nsec"])).padStart(9, "0");
}

const QUEUE_LABELS: string[] = [];
function queueLabel(q: number): string {
  let l = QUEUE_LABELS[q];
  if (l === undefined) {
    l = q === 0 ? "hiprio" : q === 0xffff ? "-" : "q" + q;
    if (q < 4096) QUEUE_LABELS[q] = l;
  }
  return l;
}

const NAME_LABELS: string[] = [];
/**
 * The operation name padded so that queue + name form one column whatever
 * the queue label's width (`q1 LOOKUP      `, `hiprio FORGET  `).
 */
function paddedName(opcode: number, name: string, queueWidth: number): string {
  if (queueWidth === 2 && opcode >= 0 && opcode < 64) {
    let l = NAME_LABELS[opcode];
    if (l === undefined) l = NAME_LABELS[opcode] = name.padEnd(NAME_WIDTH);
    return l;
  }
  return name.padEnd(NAME_WIDTH + 2 - queueWidth);
}

/** A mode whose file type the operation implies (CREATE: S_IFREG): permissions only. */
function permArg(mode: number, implied: number): string {
  return formatModeArg((mode & 0o170000) === implied ? mode & 0o7777 : mode);
}

const VALID = {
  MODE: Number(SetattrValid.bit("FATTR_MODE")),
  UID: Number(SetattrValid.bit("FATTR_UID")),
  GID: Number(SetattrValid.bit("FATTR_GID")),
  SIZE: Number(SetattrValid.bit("FATTR_SIZE")),
  ATIME: Number(SetattrValid.bit("FATTR_ATIME")),
  MTIME: Number(SetattrValid.bit("FATTR_MTIME")),
  FH: Number(SetattrValid.bit("FATTR_FH")),
  ATIME_NOW: Number(SetattrValid.bit("FATTR_ATIME_NOW")),
  MTIME_NOW: Number(SetattrValid.bit("FATTR_MTIME_NOW")),
  LOCKOWNER: Number(SetattrValid.bit("FATTR_LOCKOWNER")),
  CTIME: Number(SetattrValid.bit("FATTR_CTIME")),
};

/** ` flags` when nonzero, else nothing. */
function flagsArg(set: { format(v: number | bigint): string }, v: FieldValue | undefined): string {
  const n = num(v);
  return n === 0 ? "" : " " + set.format(n);
}

/** Request arguments after the name (each part starts with a space). */
function requestArgs(op: FuseOperation, req: FuseRequest | undefined): string {
  let s = op.nodeid === 0n ? "" : " nodeid=" + op.nodeid;
  if (req === undefined) {
    return op.request === undefined ? " unique=0x" + op.unique.toString(16) : s;
  }
  const a = req.arg;
  const n = req.names;
  switch (op.opcode) {
    case Opcode.LOOKUP:
    case Opcode.UNLINK:
    case Opcode.RMDIR:
    case Opcode.REMOVEXATTR:
      return n[0] === undefined ? s : s + " " + quoteName(n[0]);
    case Opcode.FORGET:
      return s + " nlookup=" + str(a?.nlookup);
    case Opcode.BATCH_FORGET:
      return s + " count=" + req.items.length;
    case Opcode.GETATTR:
      return a !== undefined && (num(a.getattr_flags) & 1) !== 0 ? s + " fh=" + str(a.fh) : s;
    case Opcode.SETATTR:
      return a === undefined ? s : s + setattrArgs(a);
    case Opcode.SYMLINK:
      return s + " " + quoteName(n[0] ?? "") + " → " + quoteName(n[1] ?? "");
    case Opcode.MKNOD: {
      if (a === undefined) return s;
      const mode = num(a.mode);
      const t = mode & 0o170000;
      s += " " + quoteName(n[0] ?? "") + " " + formatModeArg(mode);
      return t === 0o020000 || t === 0o060000 ? s + " rdev=" + formatRdev(num(a.rdev)) : s;
    }
    case Opcode.MKDIR:
      return a === undefined
        ? s
        : s + " " + quoteName(n[0] ?? "") + " " + permArg(num(a.mode), 0o040000);
    case Opcode.RENAME:
    case Opcode.RENAME2:
      if (a === undefined) return s;
      s += " " + quoteName(n[0] ?? "") + " → " + str(a.newdir) + "/" + quoteName(n[1] ?? "");
      return op.opcode === Opcode.RENAME2 ? s + flagsArg(RenameFlags, a.flags) : s;
    case Opcode.LINK:
      return a === undefined
        ? s
        : s + " " + quoteName(n[0] ?? "") + " oldnodeid=" + str(a.oldnodeid);
    case Opcode.OPEN:
    case Opcode.OPENDIR:
      return a === undefined
        ? s
        : s + " " + formatOpenFlags(num(a.flags)) + flagsArg(OpenInFlags, a.open_flags);
    case Opcode.CREATE:
    case Opcode.TMPFILE:
      if (a === undefined) return s;
      return s + (n[0] === undefined ? "" : " " + quoteName(n[0])) + " " +
        permArg(num(a.mode), 0o100000) + " " + formatOpenFlags(num(a.flags));
    case Opcode.READ:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS:
      return a === undefined
        ? s
        : s + " fh=" + str(a.fh) + " off=" + str(a.offset) + " size=" + str(a.size);
    case Opcode.WRITE:
      return a === undefined ? s : s + " fh=" + str(a.fh) + " off=" + str(a.offset) + " size=" +
        str(a.size) + flagsArg(WriteFlags, a.write_flags);
    case Opcode.RELEASE:
    case Opcode.RELEASEDIR:
      return a === undefined ? s : s + " fh=" + str(a.fh) + " " + formatOpenFlags(num(a.flags)) +
        flagsArg(ReleaseFlags, a.release_flags);
    case Opcode.FSYNC:
    case Opcode.FSYNCDIR:
      return a === undefined ? s : s + " fh=" + str(a.fh) + flagsArg(FsyncFlags, a.fsync_flags);
    case Opcode.FLUSH:
      return a === undefined ? s : s + " fh=" + str(a.fh);
    case Opcode.SETXATTR:
      return a === undefined
        ? s
        : s + " " + quoteName(n[0] ?? "") + " size=" + str(a.size) + flagsArg(XattrFlags, a.flags);
    case Opcode.GETXATTR:
      return a === undefined ? s : s + " " + quoteName(n[0] ?? "") + " size=" + str(a.size);
    case Opcode.LISTXATTR:
      return a === undefined ? s : s + " size=" + str(a.size);
    case Opcode.INIT:
      return a === undefined ? s : s + " " + str(a.major) + "." + str(a.minor) + " (" +
        plural(popcount(initFlagsOf(a)), "flag", "flags") + ")";
    case Opcode.GETLK:
    case Opcode.SETLK:
    case Opcode.SETLKW:
      return a === undefined
        ? s
        : s + " fh=" + str(a.fh) + " owner=0x" + num(a.owner).toString(16) +
          " " + lockArgs(a) + ((num(a.lk_flags) & 1) !== 0 ? " LK_FLOCK" : "");
    case Opcode.ACCESS:
      return a === undefined
        ? s
        : s + " " + (num(a.mask) === 0 ? "F_OK" : AccessMask.format(num(a.mask)));
    case Opcode.INTERRUPT:
      return a === undefined ? s : s + " unique=0x" + num(a.unique).toString(16);
    case Opcode.BMAP:
      return a === undefined ? s : s + " block=" + str(a.block) + " blocksize=" + str(a.blocksize);
    case Opcode.IOCTL:
      return a === undefined ? s : s + " fh=" + str(a.fh) + " cmd=0x" + num(a.cmd).toString(16) +
        " arg=0x" + num(a.arg).toString(16) + " in=" + str(a.in_size) + " out=" + str(a.out_size);
    case Opcode.POLL:
      return a === undefined ? s : s + " fh=" + str(a.fh) + flagsArg(PollEvents, a.events);
    case Opcode.FALLOCATE:
      return a === undefined ? s : s + " fh=" + str(a.fh) + " off=" + str(a.offset) + " len=" +
        str(a.length) + flagsArg(FallocateMode, a.mode);
    case Opcode.LSEEK:
      return a === undefined
        ? s
        : s + " fh=" + str(a.fh) + " off=" + str(a.offset) + " " + SeekWhence.format(num(a.whence));
    case Opcode.COPY_FILE_RANGE:
    case Opcode.COPY_FILE_RANGE_64:
      return a === undefined ? s : s + " fh=" + str(a.fh_in) + " off=" + str(a.off_in) +
        " → nodeid=" + str(a.nodeid_out) + " fh=" + str(a.fh_out) + " off=" + str(a.off_out) +
        " len=" + str(a.len) + (num(a.flags) === 0 ? "" : " flags=0x" + num(a.flags).toString(16));
    case Opcode.READLINK:
    case Opcode.STATFS:
    case Opcode.DESTROY:
    case Opcode.SYNCFS:
      return s;
    default:
      return s + genericArgs(req);
  }
}

function lockArgs(a: Decoded): string {
  return LockType.format(num(a.type)) + " start=" + str(a.start) + " end=" + str(a.end) + " pid=" +
    str(a.pid);
}

function setattrArgs(a: Decoded): string {
  const v = num(a.valid);
  let s = " " + (v === 0 ? "0" : SetattrValid.format(v));
  if (v & VALID.MODE) s += " mode=" + formatModeArg(num(a.mode));
  if (v & VALID.UID) s += " uid=" + str(a.uid);
  if (v & VALID.GID) s += " gid=" + str(a.gid);
  if (v & VALID.SIZE) s += " size=" + str(a.size);
  if (v & VALID.ATIME) s += " atime=" + timeTag(a, "atime", v & VALID.ATIME_NOW);
  if (v & VALID.MTIME) s += " mtime=" + timeTag(a, "mtime", v & VALID.MTIME_NOW);
  if (v & VALID.CTIME) s += " ctime=" + timeTag(a, "ctime", 0);
  if (v & VALID.FH) s += " fh=" + str(a.fh);
  if (v & VALID.LOCKOWNER) s += " lock_owner=0x" + num(a.lock_owner).toString(16);
  return s;
}

/** Every non-padding field of the op's struct, `name=value`; then names and a byte count. */
function genericArgs(req: FuseRequest): string {
  let s = "";
  const a = req.arg;
  const layout = req.op?.request.struct;
  if (a !== undefined && layout !== undefined) s += fieldsInline(layout, a);
  const labels = req.op?.request.names;
  for (let i = 0; i < req.names.length; i++) {
    s += " " + (labels?.[i]?.label ?? "name") + "=" + quoteName(req.names[i]!);
  }
  let bytes = 0;
  for (const d of req.data) bytes += d.byteLength;
  if (bytes > 0) s += " [" + bytes + " bytes]";
  if (req.items.length > 0) s += " [" + req.items.length + " items]";
  return s;
}

function fieldsInline(layout: Layout, values: Decoded): string {
  let s = "";
  for (const f of layout.fields) {
    if (f.pad === true) continue;
    const v = values[f.name];
    if (v !== undefined) s += " " + f.name + "=" + formatField(f, v);
  }
  return s;
}

/** The result after ` = `, for a successful reply. */
function replyResult(op: FuseOperation, rep: FuseReply, req: FuseRequest | undefined): string {
  const a = rep.arg;
  switch (op.opcode) {
    case Opcode.LOOKUP:
    case Opcode.MKNOD:
    case Opcode.MKDIR:
    case Opcode.SYMLINK:
    case Opcode.LINK:
      return a === undefined
        ? "0"
        : "nodeid " + str(a.nodeid) + " " + formatMode(num(a.mode)) + " size=" + str(a.size);
    case Opcode.GETATTR:
    case Opcode.SETATTR:
      return a === undefined ? "0" : "0 mode=" + formatMode(num(a.mode)) + " size=" + str(a.size);
    case Opcode.STATX:
      return a === undefined ? "0" : "0 mode=" + formatMode(num(a.mode)) + " size=" + str(a.size);
    case Opcode.OPEN:
    case Opcode.OPENDIR:
      return a === undefined ? "0" : "fh=" + str(a.fh) + flagsArg(FopenFlags, a.open_flags) +
        (num(a.backing_id) === 0 ? "" : " backing_id=" + str(a.backing_id));
    case Opcode.CREATE:
    case Opcode.TMPFILE:
      return a === undefined
        ? "0"
        : "nodeid " + str(a.nodeid) + " fh=" + str(a.fh) + flagsArg(FopenFlags, a.open_flags);
    case Opcode.READ:
      return String(rep.header.len - 16);
    case Opcode.WRITE:
    case Opcode.COPY_FILE_RANGE:
      return a === undefined ? "0" : str(a.size);
    case Opcode.COPY_FILE_RANGE_64:
      return a === undefined ? "0" : str(a.bytes_copied);
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      const n = rep.entries.length;
      return rep.truncated === undefined
        ? plural(n, "entry", "entries")
        : n + "+ entries (reply cut at " + rep.truncated.have + " of " + rep.truncated.want +
          " bytes)";
    }
    case Opcode.READLINK:
      return rep.data.length === 0 ? '""' : quoteName(decodeName(joinBytes(rep.data)));
    case Opcode.GETXATTR:
    case Opcode.LISTXATTR:
      return a !== undefined && num(req?.arg?.size) === 0
        ? str(a.size)
        : String(rep.header.len - 16);
    case Opcode.STATFS:
      return a === undefined ? "0" : "0 bsize=" + str(a.bsize) + " blocks=" + str(a.blocks) +
        " bfree=" + str(a.bfree) + " bavail=" + str(a.bavail) + " files=" + str(a.files) +
        " ffree=" + str(a.ffree) + " namelen=" + str(a.namelen);
    case Opcode.INIT:
      return a === undefined ? "0" : str(a.major) + "." + str(a.minor) + " (" +
        plural(popcount(initFlagsOf(a)), "flag", "flags") + ") max_write=" + str(a.max_write);
    case Opcode.LSEEK:
      return a === undefined ? "0" : str(a.offset);
    case Opcode.GETLK:
      return a === undefined ? "0" : lockArgs(a);
    case Opcode.BMAP:
      return a === undefined ? "0" : "block " + str(a.block);
    case Opcode.POLL:
      return a === undefined ? "0" : PollEvents.format(num(a.revents));
    case Opcode.IOCTL:
      return a === undefined ? "0" : str(a.result);
    default: {
      if (rep.notify !== undefined && rep.arg !== undefined && rep.notify.struct !== undefined) {
        return "0" + fieldsInline(rep.notify.struct, rep.arg);
      }
      return "0";
    }
  }
}

function hexLine(bytes: Uint8Array, start: number, end: number, indent: string): string {
  let h = "";
  let t = "";
  for (let i = start; i < start + 16; i++) {
    if (i === start + 8) h += " ";
    if (i < end) {
      const b = bytes[i]!;
      h += (b < 16 ? "0" : "") + b.toString(16) + " ";
      t += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
    } else {
      h += "   ";
    }
  }
  return indent + start.toString(16).padStart(6, "0") + "  " + h + " |" + t + "|";
}

/** Hex dump lines of `bytes` (at most `limit` bytes; 0: all), each prefixed by `indent`. */
export function hexDump(bytes: Uint8Array, limit: number, indent = ""): string[] {
  const end = limit > 0 && bytes.byteLength > limit ? limit : bytes.byteLength;
  const out: string[] = [];
  for (let i = 0; i < end; i += 16) out.push(hexLine(bytes, i, Math.min(end, i + 16), indent));
  if (end < bytes.byteLength) out.push(`${indent}… ${bytes.byteLength - end} more bytes`);
  return out;
}

function recordWhere(r: ShowRecord): string {
  let s = "seq " + r.seq;
  if (r.offset !== undefined) s += ", offset " + r.offset;
  s += ", " + r.body.byteLength + " bytes";
  if (r.originalLength > r.body.byteLength) s += " of " + r.originalLength + " (cut)";
  if (r.head !== undefined && r.head !== HEAD_NONE) s += ", head " + r.head;
  if (r.residenceNs !== undefined) s += ", proxy residence " + formatDuration(r.residenceNs);
  return s;
}

function structTree(
  out: string[],
  indent: string,
  title: string,
  fields: readonly FieldSpec[],
  values: object,
): void {
  out.push(indent + title);
  for (const f of fields) {
    if (f.pad === true) continue;
    const v = (values as Readonly<Record<string, unknown>>)[f.name];
    if (typeof v === "number" || typeof v === "bigint" || v instanceof Uint8Array) {
      out.push(indent + "  " + f.name + ": " + formatField(f, v));
    }
  }
}

function requestTree(out: string[], op: FuseOperation): void {
  const side = op.request;
  if (side === undefined) return;
  out.push("  request: " + recordWhere(side.record));
  const req = side.decoded;
  if (req === undefined) {
    out.push("    undecodable: " + (side.problem ?? "?"));
    return;
  }
  structTree(out, "    ", FuseInHeader.name, FuseInHeader.fields, req.header);
  const spec = req.op?.request;
  if (req.arg !== undefined && spec?.struct !== undefined) {
    structTree(out, "    ", spec.struct.name, spec.struct.fields, req.arg);
  }
  for (let i = 0; i < req.names.length; i++) {
    out.push("    " + (spec?.names?.[i]?.label ?? "name") + ": " + quoteName(req.names[i]!));
  }
  if (req.data.length > 0) {
    let n = 0;
    for (const d of req.data) n += d.byteLength;
    out.push("    " + (spec?.data?.label ?? "data") + ": " + n + " bytes");
  }
  itemsTree(out, spec?.items?.label ?? "items", spec?.items?.layout, req.items);
  for (const x of req.extensions) {
    if (x.kind === "secctx") {
      for (const c of x.contexts) {
        out.push("    security context: " + c.name + " = " + quoteName(decodeName(c.value)));
      }
    } else if (x.kind === "groups") {
      out.push("    supplementary groups: " + x.groups.join(","));
    } else {
      out.push("    extension " + x.type + ": " + x.data.byteLength + " bytes");
    }
  }
  if (req.truncated !== undefined) {
    out.push(`    cut: ${req.truncated.have} of ${req.truncated.want} bytes captured`);
  }
}

function itemsTree(
  out: string[],
  label: string,
  layout: Layout | undefined,
  items: readonly Decoded[],
): void {
  if (items.length === 0) return;
  out.push("    " + label + " (" + items.length + "):");
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    out.push("      [" + i + "]" + (layout === undefined ? "" : fieldsInline(layout, it)));
  }
}

function replyTree(out: string[], op: FuseOperation, lat: string): void {
  const side = op.reply;
  if (side === undefined) {
    out.push("  reply: none");
    return;
  }
  out.push("  reply: " + recordWhere(side.record) + (lat === "" ? "" : ", latency " + lat));
  const rep = side.decoded;
  if (rep === undefined) {
    if (side.problem !== undefined) out.push("    undecodable: " + side.problem);
    else if (side.record.originalLength === 0) out.push("    (used entry without reply bytes)");
    return;
  }
  structTree(out, "    ", FuseOutHeader.name, FuseOutHeader.fields, rep.header);
  const struct = rep.notify?.struct ?? rep.op?.reply.struct;
  if (rep.arg !== undefined && struct !== undefined) {
    structTree(out, "    ", struct.name, struct.fields, rep.arg);
  }
  for (const name of rep.names) out.push("    name: " + quoteName(name));
  if (rep.data.length > 0) {
    let n = 0;
    for (const d of rep.data) n += d.byteLength;
    out.push("    " + (rep.op?.reply.data?.label ?? "data") + ": " + n + " bytes");
  }
  itemsTree(out, rep.op?.reply.items?.label ?? "items", rep.op?.reply.items?.layout, rep.items);
  if (rep.entries.length > 0) {
    out.push("    entries (" + rep.entries.length + "):");
    const entryLayout = rep.op?.reply.struct ?? fuseOp(Opcode.LOOKUP)?.reply.struct;
    for (let i = 0; i < rep.entries.length; i++) {
      const e = rep.entries[i]!;
      out.push(
        "      [" + i + "] " + quoteName(e.name) + " ino=" + e.ino + " off=" + e.off + " type=" +
          DirentType.format(e.type),
      );
      if (e.entry !== undefined && entryLayout !== undefined) {
        out.push("         " + fieldsInline(entryLayout, e.entry).slice(1));
      }
    }
  }
  if (rep.truncated !== undefined) {
    out.push(`    cut: ${rep.truncated.have} of ${rep.truncated.want} bytes captured`);
  }
}

/** Stateful formatter: keeps the clock cache and the origin/previous time of the time column. */
export class LineFormatter {
  #mode: TimeMode;
  #utc: boolean;
  #c: Palette;
  #slowNs: number;
  #verbose: boolean;
  #hex: boolean;
  #hexLimit: number;
  #origin: bigint | undefined;
  #prev: bigint | undefined = undefined;
  #baseNs = 0n;
  #baseSec = NaN;
  #cachedSec = NaN;
  #cachedHms = "";

  /** A formatter with `options`. */
  constructor(options: FormatOptions = {}) {
    this.#mode = options.time ?? "absolute";
    this.#utc = options.timeZone === "utc";
    this.#c = options.colors ?? NO_COLORS;
    this.#slowNs = options.slowNs ?? DEFAULT_SLOW_NS;
    this.#verbose = options.verbose ?? false;
    this.#hex = options.hex ?? false;
    this.#hexLimit = options.hexLimit ?? DEFAULT_HEX_LIMIT;
    this.#origin = options.originNs;
  }

  /** Origin of relative times; set it to the first record's time before formatting. */
  get origin(): bigint | undefined {
    return this.#origin;
  }

  set origin(ns: bigint | undefined) {
    this.#origin = ns;
  }

  /** The line(s) of any event. */
  format(ev: ShowEvent): string {
    return ev.type === "fuse" ? this.formatOperation(ev) : this.formatControl(ev);
  }

  /** The time column for `ts` (advances the `delta` state). */
  time(ts: bigint): string {
    switch (this.#mode) {
      case "relative":
        if (this.#origin === undefined) this.#origin = ts;
        return seconds(Number(ts - this.#origin));
      case "delta": {
        const prev = this.#prev ?? ts;
        this.#prev = ts;
        return seconds(Number(ts - prev));
      }
      default:
        return this.#clock(ts);
    }
  }

  #clock(ts: bigint): string {
    let off = Number(ts - this.#baseNs);
    if (!(off >= 0 && off < DAY_NS)) {
      // A new base a day at most behind: the offset stays exact as a double.
      this.#baseSec = Number(ts / 1_000_000_000n);
      this.#baseNs = BigInt(this.#baseSec) * 1_000_000_000n;
      this.#cachedSec = NaN;
      off = Number(ts - this.#baseNs);
    }
    const s = Math.floor(off / 1e9);
    if (s !== this.#cachedSec) {
      this.#cachedSec = s;
      const d = new Date((this.#baseSec + s) * 1000);
      this.#cachedHms = this.#utc
        ? pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds())
        : pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
    }
    return this.#cachedHms + "." + pad6(Math.floor((off - s * 1e9) / 1000));
  }

  /** The line of a FUSE operation (plus the tree and hex dump when asked). */
  formatOperation(op: FuseOperation): string {
    const c = this.#c;
    const req = op.request?.decoded;
    const q = queueLabel(op.queue);
    let line = c.dim(this.time(op.timestampNs)) + " " + q + " " +
      paddedName(op.opcode, op.name, q.length) + requestArgs(op, req);
    const rep = op.reply?.decoded;
    if (op.reply === undefined) {
      line += c.yellow(" = ? <unanswered>");
    } else if (op.errno !== undefined) {
      line += " = " + c.red("-" + errnoName(op.errno));
    } else if (rep !== undefined) {
      line += " = " + replyResult(op, rep, req);
    } else if (!op.noReply) {
      line += " = ?";
    }
    let lat = "";
    if (op.latencyNs !== undefined) {
      lat = formatDuration(op.latencyNs);
      line += op.latencyNs >= this.#slowNs ? " " + c.yellow("<" + lat + ">") : " <" + lat + ">";
    }
    if (op.problem !== undefined) line += " " + c.red("[" + op.problem + "]");
    if (!this.#verbose && !this.#hex) return line;
    const out = [line];
    if (this.#verbose) {
      requestTree(out, op);
      replyTree(out, op, lat);
    }
    if (this.#hex) {
      if (op.request !== undefined) this.#dump(out, "request", op.request.record);
      if (op.reply !== undefined) this.#dump(out, "reply", op.reply.record);
    }
    return out.join("\n");
  }

  #dump(out: string[], what: string, r: ShowRecord): void {
    out.push("  " + what + " body, " + r.body.byteLength + " bytes:");
    for (const l of hexDump(r.body, this.#hexLimit, "    ")) out.push(l);
  }

  /** The line of a vhost-user message, note, notification, gap or unknown record. */
  formatControl(ev: ControlEvent): string {
    const c = this.#c;
    const t = c.dim(this.time(ev.timestampNs)) + " ";
    let line: string;
    let message: VhostUserMessage | undefined;
    switch (ev.type) {
      case "vhost-user": {
        message = ev.message;
        line = t + c.cyan(vhostLabel(ev.direction)) + " " + vhostText(ev.message, ev) +
          fdsLabel(ev.fdCount);
        if (ev.latencyNs !== undefined) line += " <" + formatDuration(ev.latencyNs) + ">";
        if (ev.problem !== undefined) line += " " + c.red("[" + ev.problem + "]");
        break;
      }
      case "note":
        line = t + c.magenta("note") + " " +
          (ev.note === undefined ? c.red("[" + (ev.problem ?? "?") + "]") : noteText(ev.note));
        break;
      case "notify":
        line = t + queueLabel(ev.queue) + " notify " + NOTIFY_DIRECTION.format(ev.direction) +
          " value=" + ev.value;
        break;
      case "gap":
        line = t + c.magenta(
          "--- " + plural(ev.count, "record", "records") + " missing (seq " + ev.firstSeq +
            (ev.count > 1 ? "-" + (ev.firstSeq + ev.count - 1) : "") + ") ---",
        );
        break;
      case "record":
        line = t + "record " + RECORD_KIND.format(ev.record.kind) + ", " +
          ev.record.body.byteLength + " bytes";
        break;
    }
    if (!this.#verbose && !this.#hex) return line;
    const out = [line];
    if (this.#verbose && message !== undefined) out.push("  " + formatMessage(message));
    if (this.#hex && ev.type !== "gap") this.#dump(out, "record", ev.record);
    return out.join("\n");
  }
}

function vhostLabel(direction: number): string {
  switch (direction) {
    case VhostUserDirection.FRONTEND_TO_BACKEND:
      return "vhost-user →";
    case VhostUserDirection.BACKEND_TO_FRONTEND:
      return "vhost-user ←";
    case VhostUserDirection.BACKEND_CHANNEL_REQUEST:
      return "backend-channel ←";
    case VhostUserDirection.BACKEND_CHANNEL_REPLY:
      return "backend-channel →";
    default:
      return "vhost-user dir " + direction;
  }
}

function vhostText(m: VhostUserMessage | undefined, ev: { record: ShowRecord }): string {
  if (m === undefined) return "? (" + ev.record.body.byteLength + " bytes)";
  const p = m.payload;
  let body: string;
  switch (p.kind) {
    case "empty":
      body = "";
      break;
    case "memory_table":
      body = "regions=" + p.regions.length;
      break;
    case "vring_index":
      body = "vring=" + p.index + (p.noFd ? " nofd" : "");
      break;
    default:
      body = formatPayload(p, m.form);
  }
  if (m.isReply) return m.name + " = " + (body === "" ? "0" : body);
  return body === "" ? m.name : m.name + " " + body;
}

function noteValue(v: unknown): string {
  if (typeof v === "string") return v === "" || /[\s"]/.test(v) ? JSON.stringify(v) : v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) {
    return v.join(",");
  }
  return JSON.stringify(v);
}

/** `features_masked virtio: VHOST_F_LOG_ALL`, `stop closed_by=frontend requests=119`. */
function noteText(note: Readonly<Record<string, unknown>>): string {
  const type = String(note.type);
  if (type === "features_masked" && typeof note.what === "string") {
    return type + " " + note.what + ": " + noteValue(note.masked ?? note.names ?? "");
  }
  let s = type;
  for (const k of Object.keys(note)) {
    if (k !== "type") s += " " + k + "=" + noteValue(note[k]);
  }
  return s;
}

/**
 * The line of one operation with `options` (stateless: `relative` needs
 * `options.originNs`, `delta` shows 0). For a stream, keep a
 * {@link LineFormatter}.
 */
export function formatOperation(op: FuseOperation, options: FormatOptions = {}): string {
  return new LineFormatter(options).formatOperation(op);
}

/** The line of one control event with `options` (see {@link formatOperation}). */
export function formatControl(ev: ControlEvent, options: FormatOptions = {}): string {
  return new LineFormatter(options).formatControl(ev);
}
