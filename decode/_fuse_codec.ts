/**
 * FUSE request/reply decoding and encoding, driven by the table in
 * fuse_table.ts. Pure: bytes in, records out, and back.
 *
 * @module
 */

import { errnoName } from "../sys/errno.ts";
import {
  align8,
  decodeName,
  nameByteLength,
  type Plan,
  planOf,
  readStruct,
  Source,
  writeName,
} from "./_fuse_bytes.ts";
import { IoctlFlags } from "./fuse_flags.ts";
import { FuseEntryOut, Opcode } from "./fuse_layouts.ts";
import type { FuseSession } from "./fuse_session.ts";
import {
  type BodySpec,
  FUSE_EXT_GROUPS,
  FUSE_EXT_MINOR,
  FUSE_MAX_NR_SECCTX,
  FUSE_NAME_MAX,
  FUSE_NOTIFY,
  type FuseNotify,
  type FuseOp,
  fuseOp,
  type RequestSpec,
} from "./fuse_table.ts";
import { type Decoded, DecodeError, EncodeError, type FieldValue } from "./struct.ts";

/** Size of `fuse_in_header`. */
export const IN_HEADER_SIZE = 40;
/** Size of `fuse_out_header`. */
export const OUT_HEADER_SIZE = 16;
const DIRENT_SIZE = 24;
const IOCTL_RETRY = Number(IoctlFlags.bit("IOCTL_RETRY") ?? 4n);
const NEWEST = 63;
const SETXATTR_COMPAT_MINOR = 32;

// ---------------------------------------------------------------- records

/** A decoded `fuse_in_header`. */
export interface FuseInHeader {
  /** Total message length. */
  readonly len: number;
  /** Opcode (see {@link Opcode}). */
  readonly opcode: number;
  /** Request id; bit 63 marks a resend. */
  readonly unique: bigint;
  /** Target inode. */
  readonly nodeid: bigint;
  /** Caller's uid. */
  readonly uid: number;
  /** Caller's gid. */
  readonly gid: number;
  /** Caller's pid. */
  readonly pid: number;
  /** Extension length in 8-byte units (7.38+; padding before). */
  readonly "total_extlen": number;
  /** Reserved. */
  readonly padding: number;
}

/** A decoded `fuse_out_header`. */
export interface FuseOutHeader {
  /** Total message length. */
  readonly len: number;
  /** 0, a negated errno, or a notify code when unique is 0. */
  readonly error: number;
  /** The request's id; 0 for a notification. */
  readonly unique: bigint;
}

/** One security context of a FUSE_SECURITY_CTX extension. */
export interface FuseSecctxEntry {
  /** xattr name, e.g. `security.selinux`. */
  readonly name: string;
  /** Context bytes (often NUL-terminated text). */
  readonly value: Uint8Array;
}

/** A request extension (security contexts 7.36, supplementary groups 7.38, or unknown). */
export type FuseExtension =
  | { readonly kind: "secctx"; readonly contexts: readonly FuseSecctxEntry[] }
  | { readonly kind: "groups"; readonly groups: readonly number[] }
  | { readonly kind: "unknown"; readonly type: number; readonly data: Uint8Array };

/**
 * How much of a message a capture kept, on records decoded with
 * {@link FuseDecodeOptions.truncatedFrom}: `have` < `want`. Encoding such a
 * record writes what it holds (size fields recomputed), not the original.
 */
export interface FuseTruncation {
  /** Bytes of the message present (the input's length). */
  readonly have: number;
  /** Bytes of the whole message (its header's `len`). */
  readonly want: number;
}

/** Options of {@link decodeRequest} and {@link decodeReply}. */
export interface FuseDecodeOptions {
  /**
   * The input is the start of a message that was this many bytes long: a
   * capture record cut by its snap length (pass its `originalLength`). When it
   * is more than the input, the header's `len` must equal it, the header and
   * the op's struct must be whole, and the rest decodes as far as it goes:
   * names that end before the cut, the payload as a shorter view, entries and
   * items up to the last whole one; extensions after the cut are lost. The
   * record then carries `truncated`. Equal to the input's length (or absent):
   * the message must be whole, as without the option.
   */
  readonly truncatedFrom?: number | undefined;
}

/**
 * A decoded request. Every record has the same shape; parts the opcode does
 * not have are `undefined` / empty. An unknown opcode decodes with `op`
 * undefined and its whole argument area in `data`.
 */
export interface FuseRequest {
  /** The header as on the wire. */
  readonly header: FuseInHeader;
  /** Table entry; undefined for an unknown opcode. */
  readonly op: FuseOp | undefined;
  /** The opcode's struct (`fuse_write_in`, …). */
  readonly arg: Decoded | undefined;
  /** NUL-terminated strings, labelled by `op.request.names`. */
  readonly names: readonly string[];
  /** Payload (WRITE data, SETXATTR value, IOCTL input, …) as views of the input, never copied. */
  readonly data: readonly Uint8Array[];
  /** Counted elements (BATCH_FORGET, REMOVEMAPPING). */
  readonly items: readonly Decoded[];
  /** Request extensions (security contexts, supplementary groups). */
  readonly extensions: readonly FuseExtension[];
  /**
   * Present only when a capture cut the message (see
   * {@link FuseDecodeOptions.truncatedFrom}); whole records lack the property.
   */
  readonly truncated?: FuseTruncation;
}

/** A directory entry of a READDIR/READDIRPLUS reply. */
export interface FuseDirent {
  /** Inode number. */
  readonly ino: bigint;
  /** Offset cookie of the next entry. */
  readonly off: bigint;
  /** DT_* type. */
  readonly type: number;
  /** Name (see decodeName for non-UTF-8 bytes). */
  readonly name: string;
  /** READDIRPLUS: the entry's `fuse_entry_out`; undefined for READDIR. */
  readonly entry: Decoded | undefined;
}

/**
 * A decoded reply or notification. Same shape for all; error replies carry
 * only the header.
 */
export interface FuseReply {
  /** The header as on the wire. */
  readonly header: FuseOutHeader;
  /** Opcode of the request it answers (-1 when unpaired, 0 for a notification). */
  readonly opcode: number;
  /** Table entry of that opcode, if known. */
  readonly op: FuseOp | undefined;
  /** Notification table entry when unique is 0 and the code is known. */
  readonly notify: FuseNotify | undefined;
  /** The reply struct (`fuse_entry_out`, …). */
  readonly arg: Decoded | undefined;
  /** Names (notifications INVAL_ENTRY, DELETE). */
  readonly names: readonly string[];
  /** Raw bytes (READ data, READLINK target, xattr value, ioctl output, …), never copied. */
  readonly data: readonly Uint8Array[];
  /** Counted elements (ioctl iovecs, PRUNE node ids). */
  readonly items: readonly Decoded[];
  /** READDIR/READDIRPLUS entries. */
  readonly entries: readonly FuseDirent[];
  /**
   * Present only when a capture cut the message (see
   * {@link FuseDecodeOptions.truncatedFrom}); whole records lack the property.
   */
  readonly truncated?: FuseTruncation;
}

/** Struct values for encoding: field name → value; missing fields are 0. */
export type StructInit = Readonly<Record<string, FieldValue | undefined>>;

/** Header fields for {@link encodeRequest}; `len` and (7.38+) `total_extlen` are computed. */
export interface FuseInHeaderInit {
  /** Opcode. */
  readonly opcode: number;
  /** Request id. */
  readonly unique: bigint;
  /** Target inode (default 0). */
  readonly nodeid?: bigint;
  /** Caller uid (default 0). */
  readonly uid?: number;
  /** Caller gid (default 0). */
  readonly gid?: number;
  /** Caller pid (default 0). */
  readonly pid?: number;
  /** Ignored from 7.38 (computed); written as given before (it was padding). */
  readonly "total_extlen"?: number;
  /** Reserved (default 0). */
  readonly padding?: number;
  /** Ignored: computed. */
  readonly len?: number;
}

/** A request to encode; a decoded {@link FuseRequest} is one. */
export interface FuseRequestInit {
  /** Header fields. */
  readonly header: FuseInHeaderInit;
  /** The opcode's struct; size/count fields are computed from data/items. */
  readonly arg?: StructInit | undefined;
  /** Strings in the order of `op.request.names`. */
  readonly names?: readonly string[] | undefined;
  /** Payload, one buffer or segments (passed through uncopied by the *Segments encoders). */
  readonly data?: Uint8Array | readonly Uint8Array[] | undefined;
  /** Counted elements. */
  readonly items?: readonly StructInit[] | undefined;
  /** Request extensions. */
  readonly extensions?: readonly FuseExtension[] | undefined;
}

/** A directory entry to encode. */
export interface FuseDirentInit {
  /** Inode number. */
  readonly ino: bigint;
  /** Offset cookie. */
  readonly off: bigint;
  /** DT_* type. */
  readonly type: number;
  /** Name (non-empty, no `/`). */
  readonly name: string;
  /** READDIRPLUS: the `fuse_entry_out`. */
  readonly entry?: StructInit | undefined;
}

/** A reply or notification to encode; a decoded {@link FuseReply} is one. */
export interface FuseReplyInit {
  /** `unique` (0: notification, then `error` is the notify code) and `error` (default 0). */
  readonly header: { readonly unique: bigint; readonly error?: number; readonly len?: number };
  /** Reply struct; size/count/namelen fields are computed. */
  readonly arg?: StructInit | undefined;
  /** Names (notifications). */
  readonly names?: readonly string[] | undefined;
  /** Raw bytes. */
  readonly data?: Uint8Array | readonly Uint8Array[] | undefined;
  /** Counted elements. */
  readonly items?: readonly StructInit[] | undefined;
  /** Directory entries. */
  readonly entries?: readonly FuseDirentInit[] | undefined;
}

const NO_NAMES: readonly string[] = Object.freeze([]);
const NO_DATA: readonly Uint8Array[] = Object.freeze([]);
const NO_ITEMS: readonly Decoded[] = Object.freeze([]);
const NO_EXT: readonly FuseExtension[] = Object.freeze([]);
const NO_ENTRIES: readonly FuseDirent[] = Object.freeze([]);

// ---------------------------------------------------------------- decoding

/** Mutable scratch for the parts of one body. */
interface Parts {
  arg: Decoded | undefined;
  names: readonly string[];
  data: readonly Uint8Array[];
  items: readonly Decoded[];
}

function fieldNumber(arg: Decoded | undefined, field: string): number {
  const v = arg?.[field];
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0;
}

/**
 * Reads names, data and items after the struct (already in `parts.arg`);
 * returns the end position. Sized parts must fill the body exactly. Bytes
 * from `avail` (≤ `end`) on were cut by a capture: sizes are still checked
 * against `end`, but only what lies before `avail` is read.
 */
function readTail(
  src: Source,
  spec: BodySpec,
  pos: number,
  end: number,
  avail: number,
  version: number,
  ctx: string,
  parts: Parts,
): number {
  const structName = spec.struct?.name ?? "";
  if (spec.names !== undefined) {
    const names: string[] = [];
    for (const part of spec.names) {
      if (part.lenField !== undefined) {
        const n = fieldNumber(parts.arg, part.lenField);
        if (n > FUSE_NAME_MAX || n + 1 > end - pos) {
          throw new DecodeError(
            `${ctx}: ${structName}.${part.lenField} says ${n} bytes of ${part.label}, ${
              end - pos
            } bytes follow`,
            pos,
          );
        }
        if (n + 1 > avail - pos) {
          // Cut inside this name: it and everything after are lost.
          parts.names = names;
          return end;
        }
        const bytes = src.bytes(pos, n + 1);
        if (bytes[n] !== 0) {
          throw new DecodeError(`${ctx}: ${part.label} is not NUL-terminated`, pos + n);
        }
        names.push(decodeName(bytes, 0, n));
        pos += n + 1;
        continue;
      }
      const nul = src.indexOfNul(pos, avail);
      if (nul < 0) {
        if (avail < end) {
          parts.names = names;
          return end;
        }
        throw new DecodeError(`${ctx}: ${part.label} is not NUL-terminated`, pos);
      }
      src.reach(pos, nul - pos);
      names.push(decodeName(src.array, src.at, src.at + nul - pos));
      pos = nul + 1;
    }
    parts.names = names;
  }
  if (spec.data !== undefined) {
    const d = spec.data;
    let n = end - pos;
    if (d.sizeField !== undefined) {
      const want = fieldNumber(parts.arg, d.sizeField);
      if (want !== n) {
        throw new DecodeError(
          `${ctx}: ${structName}.${d.sizeField} says ${want} bytes of ${d.label}, ${n} bytes follow`,
          pos,
        );
      }
      n = want;
    }
    parts.data = src.views(pos, avail - pos < n ? avail - pos : n);
    pos += n;
  } else if (spec.items !== undefined) {
    const it = spec.items;
    const count = fieldNumber(parts.arg, it.countField);
    pos = readItems(
      src,
      planOf(it.layout, version),
      count,
      pos,
      end,
      avail,
      ctx,
      `${structName}.${it.countField}`,
      it.label,
      parts,
    );
  }
  return pos;
}

/** Reads `count` items filling [pos, end) exactly; only the whole ones before `avail`. */
function readItems(
  src: Source,
  plan: Plan,
  count: number,
  pos: number,
  end: number,
  avail: number,
  ctx: string,
  countName: string,
  label: string,
  parts: Parts,
): number {
  const need = count * plan.size;
  if (need !== end - pos) {
    throw new DecodeError(
      `${ctx}: ${countName} says ${count} ${label} (${need} bytes), ${end - pos} bytes follow`,
      pos,
    );
  }
  const items: Decoded[] = [];
  const whole = avail < end ? Math.floor((avail - pos) / plan.size) : count;
  for (let i = 0; i < whole; i++) {
    src.reach(pos + i * plan.size, plan.size);
    items.push(plan.decode(src.view, src.at));
  }
  parts.items = items;
  return pos + need;
}

function readExtensions(src: Source, pos: number, end: number, ctx: string): FuseExtension[] {
  const out: FuseExtension[] = [];
  let i = 0;
  while (pos < end) {
    const left = end - pos;
    if (left < 8) {
      throw new DecodeError(`${ctx}: extension #${i} header truncated, ${left} bytes left`, pos);
    }
    const size = src.u32(pos);
    const type = src.u32(pos + 4);
    if (size < 8 || size > left || size % 8 !== 0) {
      throw new DecodeError(
        `${ctx}: extension #${i} fuse_ext_header.size ${size} invalid (multiple of 8, 8..${left})`,
        pos,
      );
    }
    const xend = pos + size;
    if (type <= FUSE_MAX_NR_SECCTX) {
      out.push({ kind: "secctx", contexts: readSecctx(src, pos, xend, type, ctx) });
    } else if (type === FUSE_EXT_GROUPS) {
      if (size < 12) throw new DecodeError(`${ctx}: fuse_supp_groups truncated`, pos + 8);
      const nr = src.u32(pos + 8);
      const want = align8(12 + 4 * nr); // exact in doubles: nr < 2^32
      if (want !== size) {
        throw new DecodeError(
          `${ctx}: fuse_supp_groups.nr_groups ${nr} needs a ${want}-byte extension, header says ${size}`,
          pos + 8,
        );
      }
      const groups: number[] = [];
      for (let g = 0; g < nr; g++) groups.push(src.u32(pos + 12 + 4 * g));
      out.push({ kind: "groups", groups });
    } else {
      out.push({ kind: "unknown", type, data: src.bytes(pos + 8, size - 8).slice() });
    }
    pos = xend;
    i++;
  }
  return out;
}

function readSecctx(
  src: Source,
  start: number,
  end: number,
  nr: number,
  ctx: string,
): FuseSecctxEntry[] {
  const out: FuseSecctxEntry[] = [];
  let pos = start + 8;
  for (let k = 0; k < nr; k++) {
    if (end - pos < 8) {
      throw new DecodeError(`${ctx}: fuse_secctx #${k} truncated, ${end - pos} bytes left`, pos);
    }
    const ctxlen = src.u32(pos);
    const nul = src.indexOfNul(pos + 8, end);
    if (nul < 0) {
      throw new DecodeError(`${ctx}: fuse_secctx #${k} name is not NUL-terminated`, pos + 8);
    }
    const name = decodeName(src.bytes(pos + 8, nul - pos - 8));
    const vstart = nul + 1;
    if (ctxlen > end - vstart) {
      throw new DecodeError(
        `${ctx}: fuse_secctx #${k}.size says ${ctxlen} context bytes, ${end - vstart} left`,
        pos,
      );
    }
    out.push({ name, value: src.bytes(vstart, ctxlen).slice() });
    pos += align8(vstart + ctxlen - pos);
  }
  if (pos !== end) {
    throw new DecodeError(
      `${ctx}: fuse_secctx_header.size ${end - start} does not match its ${nr} contexts (${
        pos - start
      } bytes)`,
      start,
    );
  }
  return out;
}

function requestVersion(
  spec: RequestSpec,
  src: Source,
  pos: number,
  end: number,
  avail: number,
  session: FuseSession,
): number {
  if (spec.version === "init") {
    // fuse_init_in is sized by the kernel's own minor, carried inside it.
    return avail - pos >= 8 ? src.u32(pos + 4) : session.minor;
  }
  if (spec.version === "setxattr") {
    let ext = session.setxattrExt;
    if (ext === undefined) {
      // Flags unknown (a trace that starts after INIT): pick the form whose
      // name and value fill the body exactly. The 16-byte form's padding is
      // zero, which a name in the 8-byte form cannot be, so never both fit.
      const size = avail - pos >= 8 ? src.u32(pos) : 0;
      const nul16 = avail - pos >= 16 && src.u32(pos + 12) === 0
        ? src.indexOfNul(pos + 16, avail)
        : -1;
      ext = nul16 >= 0 && nul16 + 1 + size === end;
      // A cut before the name's end proves nothing: guess, but do not learn.
      if (nul16 >= 0 || avail === end) session.learnSetxattrExt(ext);
    }
    return ext ? NEWEST : SETXATTR_COMPAT_MINOR;
  }
  return session.minor;
}

function opLabel(op: FuseOp | undefined, opcode: number): string {
  return op === undefined ? `opcode ${opcode}` : op.name;
}

/** Error contexts of known opcodes by opcode, built once (a template per message is an allocation). */
const REQUEST_CTX: (string | undefined)[] = [];
const REPLY_CTX: (string | undefined)[] = [];
const CTX_OPCODES = 8192;

/** `FUSE LOOKUP request` / `FUSE LOOKUP reply`. */
function opContext(op: FuseOp | undefined, opcode: number, what: "request" | "reply"): string {
  if (op === undefined || !(opcode >= 0 && opcode < CTX_OPCODES)) {
    return `FUSE ${opLabel(op, opcode)} ${what}`;
  }
  const cache = what === "request" ? REQUEST_CTX : REPLY_CTX;
  let ctx = cache[opcode];
  if (ctx === undefined) cache[opcode] = ctx = `FUSE ${op.name} ${what}`;
  return ctx;
}

/**
 * Decodes one FUSE request (kernel → daemon). `input` is the message, whole
 * or as the readable segments of a descriptor chain; payloads come back as
 * views of it. Decoding INIT updates `session`. A message a capture cut
 * decodes as far as it goes with `options.truncatedFrom`.
 *
 * An unknown opcode is not an error: it decodes with `op` undefined and its
 * argument bytes in `data`. Throws only DecodeError.
 */
export function decodeRequest(
  input: Uint8Array | readonly Uint8Array[],
  session: FuseSession,
  options?: FuseDecodeOptions,
): FuseRequest {
  try {
    return decodeRequestUnchecked(Source.of(input), session, options);
  } catch (e) {
    throw asDecodeError(e, "FUSE request");
  }
}

/**
 * Judges a header `len` against the `total` bytes given: undefined when the
 * message is whole, its truncation when the caller vouches for a cut at
 * exactly `len` bytes, else a DecodeError (kept off the hot path).
 */
function cutOf(
  ctx: string,
  header: string,
  len: number,
  total: number,
  from: number | undefined,
): FuseTruncation | undefined {
  if (from === undefined || from === total) {
    if (len === total) return undefined;
    throw new DecodeError(`${ctx}: ${header}.len says ${len} bytes, the message has ${total}`, 0);
  }
  if (!(from > total) || !Number.isSafeInteger(from)) {
    throw new DecodeError(
      `${ctx}: truncatedFrom ${from} is not a length above the ${total} bytes given`,
      0,
    );
  }
  if (len !== from) {
    throw new DecodeError(
      `${ctx}: ${header}.len says ${len} bytes, the capture says the message had ${from} (${total} kept)`,
      0,
    );
  }
  return { have: total, want: len };
}

function cutContext(ctx: string, cut: FuseTruncation): string {
  return `${ctx} (cut at ${cut.have} of ${cut.want} bytes)`;
}

function decodeRequestUnchecked(
  src: Source,
  session: FuseSession,
  options: FuseDecodeOptions | undefined,
): FuseRequest {
  const total = src.total;
  if (total < IN_HEADER_SIZE) {
    throw new DecodeError(
      `FUSE request: fuse_in_header truncated, needs ${IN_HEADER_SIZE} bytes, ${total} available`,
      0,
    );
  }
  src.reach(0, IN_HEADER_SIZE);
  const v = src.view;
  const b = src.at;
  const header: FuseInHeader = {
    len: v.getUint32(b, true),
    opcode: v.getUint32(b + 4, true),
    unique: v.getBigUint64(b + 8, true),
    nodeid: v.getBigUint64(b + 16, true),
    uid: v.getUint32(b + 24, true),
    gid: v.getUint32(b + 28, true),
    pid: v.getUint32(b + 32, true),
    "total_extlen": v.getUint16(b + 36, true),
    padding: v.getUint16(b + 38, true),
  };
  const op = fuseOp(header.opcode);
  let ctx = opContext(op, header.opcode, "request");
  const len = header.len;
  let cut: FuseTruncation | undefined;
  const from = options?.truncatedFrom;
  if (len !== total || (from !== undefined && from !== total)) {
    cut = cutOf(ctx, "fuse_in_header", len, total, from);
    if (cut !== undefined) ctx = cutContext(ctx, cut);
  }
  const extBytes = session.minor >= FUSE_EXT_MINOR ? header.total_extlen * 8 : 0;
  if (IN_HEADER_SIZE + extBytes > len) {
    throw new DecodeError(
      `${ctx}: fuse_in_header.total_extlen ${header.total_extlen} (${extBytes} bytes) exceeds the ${
        len - IN_HEADER_SIZE
      }-byte body`,
      36,
    );
  }
  const end = len - extBytes;
  // Bytes of the arguments actually held: `end` unless a capture cut them.
  const avail = total < end ? total : end;
  const parts: Parts = { arg: undefined, names: NO_NAMES, data: NO_DATA, items: NO_ITEMS };
  let extensions = NO_EXT;
  let pos = IN_HEADER_SIZE;
  if (op === undefined) {
    parts.data = src.views(pos, avail - pos);
    pos = end;
  } else {
    const spec = op.request;
    if (spec.struct !== undefined) {
      const plan = planOf(spec.struct, requestVersion(spec, src, pos, end, avail, session));
      parts.arg = readStruct(src, plan, pos, end, avail, ctx);
      pos += plan.size;
    }
    pos = readTail(src, spec, pos, end, avail, session.minor, ctx, parts);
    if (spec.creates === true && pos < end && extBytes === 0) {
      // 7.36–7.37 put the security context inline, uncounted by the header;
      // a cut one is lost.
      if (cut === undefined) extensions = readExtensions(src, pos, end, ctx);
      pos = end;
    }
    if (pos !== end) {
      throw new DecodeError(`${ctx}: ${end - pos} unexpected bytes after the arguments`, pos);
    }
  }
  // Extensions end the message, so a cut message has lost (part of) them.
  if (extBytes > 0 && cut === undefined) extensions = readExtensions(src, end, total, ctx);
  if (header.opcode === Opcode.INIT && parts.arg !== undefined) {
    session.observeInitRequest(parts.arg);
  }
  const rec: FuseRequest = {
    header,
    op,
    arg: parts.arg,
    names: parts.names,
    data: parts.data,
    items: parts.items,
    extensions,
  };
  // Whole records keep one shape (no extra slot to allocate on the hot path).
  return cut === undefined ? rec : { ...rec, truncated: cut };
}

/**
 * Decodes one FUSE reply (daemon → kernel) against its request: pass the
 * decoded request (best: GETXATTR/LISTXATTR size probes and READ limits need
 * its arguments), or just its opcode. A message with unique 0 is a
 * notification and needs no request. Decoding the INIT reply updates
 * `session`. Throws only DecodeError.
 *
 * With only an opcode, a GETXATTR/LISTXATTR reply of exactly 8 bytes is taken
 * as a size probe answer (`fuse_getxattr_out`). A message a capture cut
 * decodes as far as it goes with `options.truncatedFrom`.
 */
export function decodeReply(
  input: Uint8Array | readonly Uint8Array[],
  request: FuseRequest | number | undefined,
  session: FuseSession,
  options?: FuseDecodeOptions,
): FuseReply {
  try {
    return decodeReplyUnchecked(Source.of(input), request, session, options);
  } catch (e) {
    throw asDecodeError(e, "FUSE reply");
  }
}

function decodeReplyUnchecked(
  src: Source,
  request: FuseRequest | number | undefined,
  session: FuseSession,
  options: FuseDecodeOptions | undefined,
): FuseReply {
  const total = src.total;
  if (total < OUT_HEADER_SIZE) {
    throw new DecodeError(
      `FUSE reply: fuse_out_header truncated, needs ${OUT_HEADER_SIZE} bytes, ${total} available`,
      0,
    );
  }
  src.reach(0, OUT_HEADER_SIZE);
  const v = src.view;
  const b = src.at;
  const header: FuseOutHeader = {
    len: v.getUint32(b, true),
    error: v.getInt32(b + 4, true),
    unique: v.getBigUint64(b + 8, true),
  };
  if (header.unique === 0n) return decodeNotify(src, header, session, options);
  const opcode = typeof request === "number" ? request : request?.header.opcode ?? -1;
  const op = opcode >= 0 ? fuseOp(opcode) : undefined;
  let ctx = request === undefined ? "FUSE reply (unpaired)" : opContext(op, opcode, "reply");
  const end = header.len;
  let cut: FuseTruncation | undefined;
  const from = options?.truncatedFrom;
  if (end !== total || (from !== undefined && from !== total)) {
    cut = cutOf(ctx, "fuse_out_header", end, total, from);
    if (cut !== undefined) ctx = cutContext(ctx, cut);
  }
  const parts: Parts = { arg: undefined, names: NO_NAMES, data: NO_DATA, items: NO_ITEMS };
  let entries = NO_ENTRIES;
  if (header.error !== 0) {
    if (header.error > 0 || header.error <= -512) {
      throw new DecodeError(
        `${ctx}: fuse_out_header.error ${header.error} is not a negated errno (-1..-511)`,
        4,
      );
    }
    if (end !== OUT_HEADER_SIZE) {
      throw new DecodeError(
        `${ctx}: error reply ${errnoName(-header.error)} carries ${
          end - OUT_HEADER_SIZE
        } body bytes`,
        OUT_HEADER_SIZE,
      );
    }
    return replyRecord(header, opcode, op, undefined, parts, entries, cut);
  }
  const pos = OUT_HEADER_SIZE;
  // `total` < `end` only when a capture cut the message.
  const avail = total;
  const reqArg = typeof request === "object" ? request.arg : undefined;
  if (op === undefined) {
    parts.data = src.views(pos, avail - pos);
    return replyRecord(header, opcode, op, undefined, parts, entries, cut);
  }
  const spec = op.reply;
  const body = end - pos;
  const limit = spec.limit !== undefined && reqArg !== undefined
    ? fieldNumber(reqArg, spec.limit)
    : Infinity;
  switch (spec.kind) {
    case "none":
    case "empty":
      if (body !== 0) {
        throw new DecodeError(
          `${ctx}: ${
            spec.kind === "none" ? "no reply is expected" : "expected no body"
          }, got ${body} bytes`,
          pos,
        );
      }
      break;
    case "data":
      checkLimit(body, limit, ctx, pos);
      parts.data = src.views(pos, avail - pos);
      break;
    case "xattr": {
      const probe = typeof request === "object" ? fieldNumber(reqArg, "size") === 0 : body === 8;
      if (probe && spec.struct !== undefined) {
        // The size probe answer is the struct alone.
        structBody(
          src,
          { struct: spec.struct },
          planOf(spec.struct, session.minor),
          pos,
          end,
          avail,
          ctx,
          parts,
          session.minor,
        );
      } else {
        checkLimit(body, limit, ctx, pos);
        parts.data = src.views(pos, avail - pos);
      }
      break;
    }
    case "dirents":
    case "direntplus":
      checkLimit(body, limit, ctx, pos);
      entries = readDirents(src, pos, end, avail, spec.kind === "direntplus", session.minor, ctx);
      break;
    case "ioctl": {
      if (spec.struct === undefined) break;
      const plan = planOf(spec.struct, session.minor);
      parts.arg = readStruct(src, plan, pos, end, avail, ctx);
      const p = pos + plan.size;
      if ((fieldNumber(parts.arg, "flags") & IOCTL_RETRY) !== 0 && spec.items !== undefined) {
        const count = fieldNumber(parts.arg, "in_iovs") + fieldNumber(parts.arg, "out_iovs");
        readItems(
          src,
          planOf(spec.items.layout, session.minor),
          count,
          p,
          end,
          avail,
          ctx,
          `${spec.struct.name}.in_iovs+out_iovs`,
          spec.items.label,
          parts,
        );
      } else {
        checkLimit(end - p, limit, ctx, p);
        parts.data = src.views(p, avail - p);
      }
      break;
    }
    case "struct": {
      if (spec.struct === undefined) break;
      let version = session.minor;
      if (spec.version === "init") {
        version = avail - pos >= 8 ? session.initOutMinor(src.u32(pos + 4)) : 0;
      }
      structBody(
        src,
        spec,
        planOf(spec.struct, version),
        pos,
        end,
        avail,
        ctx,
        parts,
        session.minor,
      );
      if (op.opcode === Opcode.INIT && parts.arg !== undefined) session.observeInitReply(parts.arg);
      break;
    }
  }
  return replyRecord(header, opcode, op, undefined, parts, entries, cut);
}

function structBody(
  src: Source,
  spec: BodySpec,
  plan: Plan,
  pos: number,
  end: number,
  avail: number,
  ctx: string,
  parts: Parts,
  version: number,
): void {
  parts.arg = readStruct(src, plan, pos, end, avail, ctx);
  const p = readTail(src, spec, pos + plan.size, end, avail, version, ctx, parts);
  if (p !== end) {
    throw new DecodeError(`${ctx}: ${end - p} unexpected bytes after ${plan.layout.name}`, p);
  }
}

function checkLimit(n: number, limit: number, ctx: string, pos: number): void {
  if (n > limit) {
    throw new DecodeError(`${ctx}: ${n} bytes exceed the ${limit} the request asked for`, pos);
  }
}

function replyRecord(
  header: FuseOutHeader,
  opcode: number,
  op: FuseOp | undefined,
  notify: FuseNotify | undefined,
  parts: Parts,
  entries: readonly FuseDirent[],
  truncated: FuseTruncation | undefined,
): FuseReply {
  const rec: FuseReply = {
    header,
    opcode,
    op,
    notify,
    arg: parts.arg,
    names: parts.names,
    data: parts.data,
    items: parts.items,
    entries,
  };
  // Whole records keep one shape (no extra slot to allocate on the hot path).
  return truncated === undefined ? rec : { ...rec, truncated };
}

function decodeNotify(
  src: Source,
  header: FuseOutHeader,
  session: FuseSession,
  options: FuseDecodeOptions | undefined,
): FuseReply {
  const total = src.total;
  const spec = FUSE_NOTIFY.get(header.error);
  let ctx = spec === undefined
    ? `FUSE notification with unknown code ${header.error}`
    : `FUSE notify ${spec.name}`;
  const end = header.len;
  let cut: FuseTruncation | undefined;
  const from = options?.truncatedFrom;
  if (end !== total || (from !== undefined && from !== total)) {
    cut = cutOf(ctx, "fuse_out_header", end, total, from);
    if (cut !== undefined) ctx = cutContext(ctx, cut);
  }
  const parts: Parts = { arg: undefined, names: NO_NAMES, data: NO_DATA, items: NO_ITEMS };
  let pos = OUT_HEADER_SIZE;
  if (spec === undefined) {
    parts.data = src.views(pos, total - pos);
    return replyRecord(header, 0, undefined, undefined, parts, NO_ENTRIES, cut);
  }
  if (spec.struct !== undefined) {
    const plan = planOf(spec.struct, session.minor);
    parts.arg = readStruct(src, plan, pos, end, total, ctx);
    pos += plan.size;
  }
  pos = readTail(src, spec, pos, end, total, session.minor, ctx, parts);
  if (pos !== end) {
    throw new DecodeError(`${ctx}: ${end - pos} unexpected bytes after the arguments`, pos);
  }
  return replyRecord(header, 0, undefined, spec, parts, NO_ENTRIES, cut);
}

/**
 * Reads the entries filling [pos, end); from `avail` (< end) on a capture cut
 * them: the whole entries before it are returned (an entry is whole once its
 * name is; the padding after carries nothing).
 */
function readDirents(
  src: Source,
  pos: number,
  end: number,
  avail: number,
  plus: boolean,
  version: number,
  ctx: string,
): FuseDirent[] {
  const out: FuseDirent[] = [];
  const entryPlan = plus ? planOf(FuseEntryOut, version) : undefined;
  const entrySize = entryPlan?.size ?? 0;
  const fixed = entrySize + DIRENT_SIZE;
  const what = plus ? "fuse_direntplus" : "fuse_dirent";
  for (let i = 0; pos < end; i++) {
    const left = end - pos;
    if (left < fixed) {
      throw new DecodeError(
        `${ctx}: ${what} #${i} truncated, needs ${fixed} bytes, ${left} left`,
        pos,
      );
    }
    if (avail - pos < fixed) break;
    src.reach(pos, fixed);
    const v = src.view;
    const b = src.at;
    const entry = entryPlan === undefined ? undefined : entryPlan.decode(v, b);
    const d = b + entrySize;
    const ino = v.getBigUint64(d, true);
    const off = v.getBigUint64(d + 8, true);
    const namelen = v.getUint32(d + 16, true);
    const type = v.getUint32(d + 20, true);
    if (namelen === 0 || namelen > FUSE_NAME_MAX) {
      throw new DecodeError(
        `${ctx}: ${what} #${i} namelen ${namelen} outside 1..${FUSE_NAME_MAX}`,
        pos + entrySize + 16,
      );
    }
    const reclen = align8(fixed + namelen);
    if (reclen > left) {
      throw new DecodeError(
        `${ctx}: ${what} #${i} with namelen ${namelen} needs ${reclen} bytes (8-aligned), ${left} left`,
        pos,
      );
    }
    if (avail - pos < fixed + namelen) break;
    src.reach(pos + fixed, namelen);
    const arr = src.array;
    const n0 = src.at;
    for (let k = n0; k < n0 + namelen; k++) {
      if (arr[k] === 0x2f) {
        throw new DecodeError(`${ctx}: ${what} #${i} name contains '/'`, pos + fixed);
      }
    }
    out.push({ ino, off, type, name: decodeName(arr, n0, n0 + namelen), entry });
    pos += reclen;
  }
  return out;
}

function asDecodeError(e: unknown, what: string): DecodeError {
  if (e instanceof DecodeError) return e;
  // A bug, not bad input: still honour the contract, but say so.
  return new DecodeError(`${what}: internal decoder error: ${String(e)}`, 0);
}
// ---------------------------------------------------------------- encoding

/**
 * Small outputs are carved from a shared slab: allocating an ArrayBuffer costs
 * ~200 ns, more than encoding a message. A slab is only ever bumped forward,
 * never reused, so outputs never alias; it is freed when its last view is.
 */
const SLAB_SIZE = 64 * 1024;
const SLAB_MAX = 4096;
let slab = new Uint8Array(SLAB_SIZE);
let slabView = new DataView(slab.buffer);
let slabPos = 0;

/** An output buffer being written: absolute positions in `buf`/`view`. */
class Out {
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly start: number;
  pos: number;

  constructor(size: number) {
    if (size <= SLAB_MAX) {
      if (slabPos + size > SLAB_SIZE) {
        slab = new Uint8Array(SLAB_SIZE);
        slabView = new DataView(slab.buffer);
        slabPos = 0;
      }
      this.buf = slab;
      this.view = slabView;
      this.start = slabPos;
      slabPos = align8(slabPos + size);
    } else {
      this.buf = new Uint8Array(size);
      this.view = new DataView(this.buf.buffer);
      this.start = 0;
    }
    this.pos = this.start;
  }

  /** The bytes written. */
  bytes(): Uint8Array {
    return this.buf.subarray(this.start, this.pos);
  }
}

function toSegments(data: Uint8Array | readonly Uint8Array[] | undefined): readonly Uint8Array[] {
  if (data === undefined) return NO_DATA;
  return data instanceof Uint8Array ? [data] : data;
}

function segmentsLength(segs: readonly Uint8Array[]): number {
  let n = 0;
  for (const s of segs) n += s.byteLength;
  return n;
}

function nonEmpty(segs: readonly Uint8Array[]): readonly Uint8Array[] {
  for (const s of segs) if (s.byteLength === 0) return segs.filter((x) => x.byteLength > 0);
  return segs;
}

function nameSize(s: string, ctx: string, label: string, nulTerminated: boolean): number {
  if (nulTerminated && s.indexOf("\0") >= 0) {
    throw new EncodeError(`${ctx}: ${label} contains NUL`);
  }
  return nameByteLength(s);
}

function extensionsSize(exts: readonly FuseExtension[], ctx: string): number {
  let n = 0;
  for (const x of exts) {
    if (x.kind === "secctx") {
      if (x.contexts.length > FUSE_MAX_NR_SECCTX) {
        throw new EncodeError(`${ctx}: ${x.contexts.length} security contexts (max 31)`);
      }
      n += 8;
      for (const c of x.contexts) {
        n += align8(8 + nameSize(c.name, ctx, "secctx name", true) + 1 + c.value.byteLength);
      }
    } else if (x.kind === "groups") {
      n += align8(12 + 4 * x.groups.length);
    } else {
      if (!Number.isInteger(x.type) || x.type <= FUSE_EXT_GROUPS || x.type > 0xffff_ffff) {
        throw new EncodeError(`${ctx}: extension type ${x.type} is reserved or invalid`);
      }
      n += 8 + align8(x.data.byteLength);
    }
  }
  return n;
}

function writeExtensions(o: Out, exts: readonly FuseExtension[], ctx: string): void {
  const v = o.view;
  for (const x of exts) {
    const start = o.pos;
    if (x.kind === "secctx") {
      v.setUint32(start + 4, x.contexts.length, true);
      let p = start + 8;
      for (const c of x.contexts) {
        v.setUint32(p, c.value.byteLength, true);
        v.setUint32(p + 4, 0, true);
        const q = writeName(o.buf, p + 8, c.name, ctx);
        o.buf[q] = 0;
        o.buf.set(c.value, q + 1);
        p += align8(q + 1 + c.value.byteLength - p);
      }
      v.setUint32(start, p - start, true);
      o.pos = p;
    } else if (x.kind === "groups") {
      const size = align8(12 + 4 * x.groups.length);
      v.setUint32(start, size, true);
      v.setUint32(start + 4, FUSE_EXT_GROUPS, true);
      v.setUint32(start + 8, x.groups.length, true);
      for (let k = 0; k < x.groups.length; k++) {
        const g = x.groups[k] ?? 0;
        if (!Number.isInteger(g) || g < 0 || g > 0xffff_ffff) {
          throw new EncodeError(`${ctx}: supplementary group ${g} is not a u32`);
        }
        v.setUint32(start + 12 + 4 * k, g, true);
      }
      o.pos = start + size;
    } else {
      const size = 8 + align8(x.data.byteLength);
      v.setUint32(start, size, true);
      v.setUint32(start + 4, x.type, true);
      o.buf.set(x.data, start + 8);
      o.pos = start + size;
    }
  }
}

/** What {@link writeBody} writes, measured first so the output is sized exactly. */
interface BodyPlan {
  plan: Plan | undefined;
  values: StructInit;
  names: readonly string[];
  data: readonly Uint8Array[];
  itemPlan: Plan | undefined;
  items: readonly StructInit[];
  /** Bytes of struct, names and items (everything but data). */
  size: number;
  dataLength: number;
}

const NO_VALUES: StructInit = Object.freeze({});

function withField(
  values: Record<string, FieldValue | undefined> | undefined,
  arg: StructInit | undefined,
  field: string,
  n: number,
): Record<string, FieldValue | undefined> {
  const out = values ?? { ...arg };
  out[field] = n;
  return out;
}

function planBody(
  spec: BodySpec,
  plan: Plan | undefined,
  arg: StructInit | undefined,
  names: readonly string[] | undefined,
  data: Uint8Array | readonly Uint8Array[] | undefined,
  items: readonly StructInit[] | undefined,
  version: number,
  ctx: string,
): BodyPlan {
  const segs = spec.data !== undefined ? toSegments(data) : NO_DATA;
  const dataLength = segmentsLength(segs);
  const list = spec.items !== undefined ? items ?? [] : [];
  // Size, count and name-length fields describe what follows: computed, not trusted.
  let values: Record<string, FieldValue | undefined> | undefined;
  if (spec.data?.sizeField !== undefined) {
    values = withField(values, arg, spec.data.sizeField, dataLength);
  }
  if (spec.items !== undefined && spec.items.countField.indexOf("+") < 0) {
    values = withField(values, arg, spec.items.countField, list.length);
  }
  let size = plan?.size ?? 0;
  const parts = spec.names;
  if (parts !== undefined) {
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k];
      const s = names?.[k];
      if (part === undefined) continue;
      if (s === undefined) throw new EncodeError(`${ctx}: missing ${part.label}`);
      const n = nameSize(s, ctx, part.label, part.lenField === undefined);
      if (part.lenField !== undefined) values = withField(values, arg, part.lenField, n);
      size += n + 1;
    }
  }
  const itemPlan = spec.items !== undefined ? planOf(spec.items.layout, version) : undefined;
  size += (itemPlan?.size ?? 0) * list.length;
  return {
    plan,
    values: values ?? arg ?? NO_VALUES,
    names: parts !== undefined && names !== undefined ? names.slice(0, parts.length) : NO_NAMES,
    data: segs,
    itemPlan,
    items: list,
    size,
    dataLength,
  };
}

function writeBody(o: Out, bp: BodyPlan, ctx: string): void {
  if (bp.plan !== undefined) {
    bp.plan.encode(o.view, o.pos, bp.values, ctx);
    o.pos += bp.plan.size;
  }
  for (const s of bp.names) {
    o.pos = writeName(o.buf, o.pos, s, ctx);
    o.buf[o.pos++] = 0;
  }
  if (bp.itemPlan !== undefined) {
    for (const it of bp.items) {
      bp.itemPlan.encode(o.view, o.pos, it, ctx);
      o.pos += bp.itemPlan.size;
    }
  }
}

function encodeVersion(
  spec: RequestSpec,
  arg: StructInit | undefined,
  session: FuseSession,
): number {
  if (spec.version === "init") return fieldNumber(arg as Decoded | undefined, "minor");
  if (spec.version === "setxattr") {
    return session.setxattrExt === true ? NEWEST : SETXATTR_COMPAT_MINOR;
  }
  return session.minor;
}

function u32Of(v: number | undefined, ctx: string, field: string): number {
  const n = v ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new EncodeError(`${ctx}: ${field}: cannot encode ${n} as u32`);
  }
  return n;
}

function u64Of(v: bigint | undefined, ctx: string, field: string): bigint {
  const n = v ?? 0n;
  if (typeof n !== "bigint" || n < 0n || n > 0xffff_ffff_ffff_ffffn) {
    throw new EncodeError(`${ctx}: ${field}: cannot encode ${String(n)} as u64`);
  }
  return n;
}

const RAW: BodySpec = { data: { label: "data" } };

/**
 * Encodes a request as segments: one buffer with header, struct, names and
 * items, then the payload segments as given (not copied), then extensions.
 * `len` and (7.38+) `total_extlen` are computed, as are size/count fields that
 * describe the payload. Encoding INIT updates `session`.
 *
 * Small outputs are views into a shared slab: use `byteOffset`/`byteLength`,
 * not `.buffer` alone.
 */
export function encodeRequestSegments(req: FuseRequestInit, session: FuseSession): Uint8Array[] {
  const h = req.header;
  const opcode = u32Of(h.opcode, "FUSE request", "fuse_in_header.opcode");
  const op = fuseOp(opcode);
  const ctx = `FUSE ${opLabel(op, opcode)} request`;
  const spec: RequestSpec = op?.request ?? RAW;
  const plan = spec.struct !== undefined
    ? planOf(spec.struct, encodeVersion(spec, req.arg, session))
    : undefined;
  const bp = planBody(spec, plan, req.arg, req.names, req.data, req.items, session.minor, ctx);
  const exts = req.extensions ?? NO_EXT;
  const extSize = exts.length === 0 ? 0 : extensionsSize(exts, ctx);
  const total = IN_HEADER_SIZE + bp.size + bp.dataLength + extSize;
  if (total > 0xffff_ffff) throw new EncodeError(`${ctx}: message of ${total} bytes is too long`);
  // From 7.38 total_extlen counts the extensions; before, it was padding, kept as given.
  const totalExtlen = session.minor >= FUSE_EXT_MINOR
    ? extSize / 8
    : u32Of(h.total_extlen, ctx, "fuse_in_header.total_extlen");
  if (totalExtlen > 0xffff) {
    throw new EncodeError(`${ctx}: fuse_in_header.total_extlen ${totalExtlen} is not a u16`);
  }
  const padding = u32Of(h.padding, ctx, "fuse_in_header.padding");
  if (padding > 0xffff) {
    throw new EncodeError(`${ctx}: fuse_in_header.padding ${padding} is not a u16`);
  }
  // Extensions follow the payload; with no payload they share the head buffer.
  const headExt = bp.dataLength === 0 ? extSize : 0;
  const o = new Out(IN_HEADER_SIZE + bp.size + headExt);
  const v = o.view;
  const b = o.start;
  v.setUint32(b, total, true);
  v.setUint32(b + 4, opcode, true);
  v.setBigUint64(b + 8, u64Of(h.unique, ctx, "fuse_in_header.unique"), true);
  v.setBigUint64(b + 16, u64Of(h.nodeid, ctx, "fuse_in_header.nodeid"), true);
  v.setUint32(b + 24, u32Of(h.uid, ctx, "fuse_in_header.uid"), true);
  v.setUint32(b + 28, u32Of(h.gid, ctx, "fuse_in_header.gid"), true);
  v.setUint32(b + 32, u32Of(h.pid, ctx, "fuse_in_header.pid"), true);
  v.setUint16(b + 36, totalExtlen, true);
  v.setUint16(b + 38, padding, true);
  o.pos = b + IN_HEADER_SIZE;
  writeBody(o, bp, ctx);
  if (headExt > 0) writeExtensions(o, exts, ctx);
  if (opcode === Opcode.INIT && req.arg !== undefined) {
    session.observeInitRequest(req.arg as Decoded);
  }
  if (bp.dataLength === 0) return [o.bytes()];
  const out = [o.bytes(), ...nonEmpty(bp.data)];
  if (extSize > 0) {
    const tail = new Out(extSize);
    writeExtensions(tail, exts, ctx);
    out.push(tail.bytes());
  }
  return out;
}

function concat(segs: readonly Uint8Array[]): Uint8Array {
  if (segs.length === 1 && segs[0] !== undefined) return segs[0];
  const out = new Uint8Array(segmentsLength(segs));
  let p = 0;
  for (const s of segs) {
    out.set(s, p);
    p += s.byteLength;
  }
  return out;
}

/** Encodes a request into one buffer (see {@link encodeRequestSegments}). */
export function encodeRequest(req: FuseRequestInit, session: FuseSession): Uint8Array {
  return concat(encodeRequestSegments(req, session));
}

/** Reply body shapes per op for encoding, built once. */
interface ReplyShapes {
  /** Success body (struct/data/items per the table). */
  readonly body: BodySpec;
  /** Alternative: xattr data form / ioctl retry (iovecs) form. */
  readonly alt: BodySpec;
}

const EMPTY_BODY: BodySpec = {};
const SHAPES = new Map<FuseOp, ReplyShapes>();

function shapesOf(op: FuseOp): ReplyShapes {
  let sh = SHAPES.get(op);
  if (sh !== undefined) return sh;
  const r = op.reply;
  const struct = r.struct !== undefined ? { struct: r.struct } : EMPTY_BODY;
  switch (r.kind) {
    case "none":
    case "empty":
    case "dirents":
    case "direntplus":
      sh = { body: EMPTY_BODY, alt: EMPTY_BODY };
      break;
    case "data":
      sh = { body: { data: r.data ?? RAW.data ?? { label: "data" } }, alt: EMPTY_BODY };
      break;
    case "xattr":
      sh = { body: struct, alt: { data: r.data ?? { label: "value" } } };
      break;
    case "ioctl":
      sh = {
        body: { ...struct, data: r.data ?? { label: "data" } },
        alt: r.items !== undefined ? { ...struct, items: r.items } : struct,
      };
      break;
    case "struct":
      sh = { body: r, alt: r };
      break;
  }
  SHAPES.set(op, sh);
  return sh;
}

/**
 * Encodes a reply or notification as segments: one buffer with header,
 * struct, names, items and directory entries, then data segments as given.
 * For unique ≠ 0, `request` (or its opcode) selects the reply shape; an error
 * reply (error ≠ 0) is the header alone. For unique 0, `header.error` is the
 * notify code. `len`, and size/count/namelen fields, are computed. Encoding
 * the INIT reply updates `session`.
 *
 * Small outputs are views into a shared slab: use `byteOffset`/`byteLength`,
 * not `.buffer` alone.
 */
export function encodeReplySegments(
  reply: FuseReplyInit,
  request: FuseRequest | number | undefined,
  session: FuseSession,
): Uint8Array[] {
  const h = reply.header;
  const unique = u64Of(h.unique, "FUSE reply", "fuse_out_header.unique");
  const error = h.error ?? 0;
  if (!Number.isInteger(error) || error < -0x8000_0000 || error > 0x7fff_ffff) {
    throw new EncodeError(`FUSE reply: fuse_out_header.error ${error} is not an i32`);
  }
  let ctx: string;
  let spec: BodySpec = EMPTY_BODY;
  let plan: Plan | undefined;
  let entries: readonly FuseDirentInit[] = NO_ENTRY_INITS;
  let plus = false;
  let opcode = -1;
  if (unique === 0n) {
    const notify = FUSE_NOTIFY.get(error);
    ctx = notify === undefined ? `FUSE notification ${error}` : `FUSE notify ${notify.name}`;
    spec = notify ?? RAW;
    if (spec.struct !== undefined) plan = planOf(spec.struct, session.minor);
  } else {
    opcode = typeof request === "number" ? request : request?.header.opcode ?? -1;
    const op = opcode >= 0 ? fuseOp(opcode) : undefined;
    ctx = `FUSE ${opLabel(op, opcode)} reply`;
    if (error !== 0) {
      if (error > 0 || error <= -512) {
        throw new EncodeError(`${ctx}: error ${error} is not a negated errno (-1..-511)`);
      }
    } else if (op === undefined) {
      spec = RAW;
    } else {
      const r = op.reply;
      const sh = shapesOf(op);
      spec = sh.body;
      if (r.kind === "none") throw new EncodeError(`${ctx}: ${op.name} takes no reply`);
      if (r.kind === "xattr" && reply.arg === undefined) spec = sh.alt;
      if (
        r.kind === "ioctl" &&
        (fieldNumber(reply.arg as Decoded | undefined, "flags") & IOCTL_RETRY) !== 0
      ) {
        spec = sh.alt;
      }
      if (r.kind === "dirents" || r.kind === "direntplus") {
        entries = reply.entries ?? NO_ENTRY_INITS;
        plus = r.kind === "direntplus";
      }
      if (spec.struct !== undefined) {
        const version = r.version === "init"
          ? session.initOutMinor(fieldNumber(reply.arg as Decoded | undefined, "minor"))
          : session.minor;
        plan = planOf(spec.struct, version);
      }
    }
  }
  const bp = planBody(
    spec,
    plan,
    reply.arg,
    reply.names,
    reply.data,
    reply.items,
    session.minor,
    ctx,
  );
  const entryPlan = plus ? planOf(FuseEntryOut, session.minor) : undefined;
  const fixed = (entryPlan?.size ?? 0) + DIRENT_SIZE;
  let entriesSize = 0;
  for (const e of entries) {
    const n = nameSize(e.name, ctx, "dirent name", false);
    if (n === 0 || n > FUSE_NAME_MAX || e.name.indexOf("/") >= 0) {
      throw new EncodeError(
        `${ctx}: dirent name ${JSON.stringify(e.name)} is empty, too long or has '/'`,
      );
    }
    entriesSize += align8(fixed + n);
  }
  const total = OUT_HEADER_SIZE + bp.size + entriesSize + bp.dataLength;
  if (total > 0xffff_ffff) throw new EncodeError(`${ctx}: message of ${total} bytes is too long`);
  const o = new Out(OUT_HEADER_SIZE + bp.size + entriesSize);
  const v = o.view;
  v.setUint32(o.start, total, true);
  v.setInt32(o.start + 4, error, true);
  v.setBigUint64(o.start + 8, unique, true);
  o.pos = o.start + OUT_HEADER_SIZE;
  writeBody(o, bp, ctx);
  for (const e of entries) {
    const start = o.pos;
    if (entryPlan !== undefined) entryPlan.encode(v, start, e.entry ?? NO_VALUES, ctx);
    const d = start + (entryPlan?.size ?? 0);
    v.setBigUint64(d, u64Of(e.ino, ctx, "fuse_dirent.ino"), true);
    v.setBigUint64(d + 8, u64Of(e.off, ctx, "fuse_dirent.off"), true);
    v.setUint32(d + 20, u32Of(e.type, ctx, "fuse_dirent.type"), true);
    const end = writeName(o.buf, d + DIRENT_SIZE, e.name, ctx);
    v.setUint32(d + 16, end - d - DIRENT_SIZE, true);
    o.pos = start + align8(end - start);
  }
  if (unique !== 0n && error === 0 && opcode === Opcode.INIT && reply.arg !== undefined) {
    session.observeInitReply(reply.arg as Decoded);
  }
  return bp.dataLength === 0 ? [o.bytes()] : [o.bytes(), ...nonEmpty(bp.data)];
}

const NO_ENTRY_INITS: readonly FuseDirentInit[] = Object.freeze([]);

/** Encodes a reply or notification into one buffer (see {@link encodeReplySegments}). */
export function encodeReply(
  reply: FuseReplyInit,
  request: FuseRequest | number | undefined,
  session: FuseSession,
): Uint8Array {
  return concat(encodeReplySegments(reply, request, session));
}

/** The 16-byte error reply `-errno` to request `unique` (errno 1..511). */
export function encodeErrorReply(unique: bigint, errno: number): Uint8Array {
  if (!Number.isInteger(errno) || errno <= 0 || errno >= 512) {
    throw new EncodeError(`FUSE reply: errno ${errno} outside 1..511`);
  }
  const o = new Out(OUT_HEADER_SIZE);
  o.view.setUint32(o.start, OUT_HEADER_SIZE, true);
  o.view.setInt32(o.start + 4, -errno, true);
  o.view.setBigUint64(o.start + 8, u64Of(unique, "FUSE reply", "fuse_out_header.unique"), true);
  o.pos = o.start + OUT_HEADER_SIZE;
  return o.bytes();
}
