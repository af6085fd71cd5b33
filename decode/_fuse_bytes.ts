/**
 * Byte plumbing for the FUSE codec: a reader over descriptor-chain segments
 * that copies only what straddles a boundary, per-version struct plans, and a
 * lossless name codec.
 *
 * @module
 */

import { type Decoded, DecodeError, EncodeError, type FieldValue, type Layout } from "./struct.ts";

// ---------------------------------------------------------------- segmented source

const EMPTY_BYTES = new Uint8Array(0);
const NO_SEGS: readonly Uint8Array[] = [];
const NO_STARTS: number[] = [];
const NO_VIEWS: (DataView | undefined)[] = [];

/** A DataView and a Uint8Array over a whole buffer. */
interface Whole {
  readonly buffer: ArrayBufferLike;
  readonly view: DataView;
  readonly array: Uint8Array;
}

let lastWhole: Whole | undefined;

/** Views over all of `buffer`, reused while messages keep coming from the same buffer. */
function wholeOf(buffer: ArrayBufferLike): Whole {
  const w = lastWhole;
  if (w !== undefined && w.buffer === buffer) return w;
  const fresh = { buffer, view: new DataView(buffer), array: new Uint8Array(buffer) };
  lastWhole = fresh;
  return fresh;
}

/**
 * Read access to a message held in one or more byte segments. `reach` makes
 * `n` bytes at `pos` addressable through `view`/`at` — in place when they sit
 * in one segment, else through a small copy.
 */
export class Source {
  /** Total bytes. */
  readonly total: number;
  // One segment (the common case) needs no segment bookkeeping.
  #single: Uint8Array | undefined;
  /** Where #single starts in #view/#array (which span its whole ArrayBuffer). */
  #base = 0;
  #segs: readonly Uint8Array[];
  #starts: number[] = NO_STARTS;
  #views: (DataView | undefined)[] = NO_VIEWS;
  #view: DataView;
  #array: Uint8Array;
  #at = 0;

  private constructor(single: Uint8Array | undefined, segs: readonly Uint8Array[], total: number) {
    this.#single = single;
    this.#segs = segs;
    this.total = total;
    if (single !== undefined) {
      // Messages read from a capture are views into a few large chunks: one DataView per
      // chunk, not one per message.
      const whole = wholeOf(single.buffer);
      this.#view = whole.view;
      this.#array = whole.array;
      this.#base = single.byteOffset;
      this.#at = single.byteOffset;
      return;
    }
    const first = segs[0] ?? EMPTY_BYTES;
    this.#view = new DataView(first.buffer, first.byteOffset, first.byteLength);
    this.#array = first;
    let s = 0;
    this.#starts = [];
    for (const seg of segs) {
      this.#starts.push(s);
      s += seg.byteLength;
    }
    this.#views = new Array(segs.length);
    this.#views[0] = this.#view;
  }

  /** Wraps one buffer or a list of segments (empty segments are skipped). */
  static of(input: Uint8Array | readonly Uint8Array[]): Source {
    if (input instanceof Uint8Array) return new Source(input, NO_SEGS, input.byteLength);
    let total = 0;
    let empty = false;
    for (const s of input) {
      total += s.byteLength;
      if (s.byteLength === 0) empty = true;
    }
    const segs = empty ? input.filter((s) => s.byteLength > 0) : input;
    const only = segs.length === 1 ? segs[0] : undefined;
    return only !== undefined
      ? new Source(only, NO_SEGS, total)
      : new Source(undefined, segs, total);
  }

  /** DataView set by the last {@link reach}. */
  get view(): DataView {
    return this.#view;
  }

  /** The bytes behind {@link view}, indexed like it (set by the last {@link reach}). */
  get array(): Uint8Array {
    return this.#array;
  }

  /** Offset within {@link view} and {@link array} set by the last {@link reach}. */
  get at(): number {
    return this.#at;
  }

  #segIndex(pos: number): number {
    const starts = this.#starts;
    let i = starts.length - 1;
    while (i > 0 && (starts[i] ?? 0) > pos) i--;
    return i;
  }

  /** Makes bytes [pos, pos+n) addressable as `view` at `at`. Caller checks bounds. */
  reach(pos: number, n: number): void {
    if (this.#single !== undefined) {
      this.#at = this.#base + pos;
      return;
    }
    const i = this.#segIndex(pos);
    const seg = this.#segs[i] ?? EMPTY_BYTES;
    const off = pos - (this.#starts[i] ?? 0);
    if (off + n <= seg.byteLength) {
      let v = this.#views[i];
      if (v === undefined) {
        v = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
        this.#views[i] = v;
      }
      this.#view = v;
      this.#array = seg;
      this.#at = off;
      return;
    }
    const copy = this.#gather(pos, n);
    this.#view = new DataView(copy.buffer);
    this.#array = copy;
    this.#at = 0;
  }

  #gather(pos: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    let done = 0;
    let i = this.#segIndex(pos);
    let off = pos - (this.#starts[i] ?? 0);
    while (done < n) {
      const seg = this.#segs[i++];
      if (seg === undefined) break;
      const take = Math.min(n - done, seg.byteLength - off);
      out.set(seg.subarray(off, off + take), done);
      done += take;
      off = 0;
    }
    return out;
  }

  /** Bytes [pos, pos+n) contiguous: a view when possible, else a copy. */
  bytes(pos: number, n: number): Uint8Array {
    if (this.#single !== undefined) return this.#single.subarray(pos, pos + n);
    const i = this.#segIndex(pos);
    const seg = this.#segs[i] ?? EMPTY_BYTES;
    const off = pos - (this.#starts[i] ?? 0);
    if (off + n <= seg.byteLength) return seg.subarray(off, off + n);
    return this.#gather(pos, n);
  }

  /** Bytes [pos, pos+n) as views of the segments, never copied. */
  views(pos: number, n: number): Uint8Array[] {
    if (n === 0) return [];
    if (this.#single !== undefined) return [this.#single.subarray(pos, pos + n)];
    const segs = this.#segs;
    const out: Uint8Array[] = [];
    let i = this.#segIndex(pos);
    let off = pos - (this.#starts[i] ?? 0);
    let left = n;
    while (left > 0) {
      const seg = segs[i++];
      if (seg === undefined) break;
      const take = Math.min(left, seg.byteLength - off);
      // A whole segment is passed on as is: no view to allocate.
      if (take === seg.byteLength) out.push(seg);
      else if (take > 0) out.push(seg.subarray(off, off + take));
      left -= take;
      off = 0;
    }
    return out;
  }

  /** Absolute index of the first NUL in [pos, end), or -1. */
  indexOfNul(pos: number, end: number): number {
    if (this.#single !== undefined) {
      const k = this.#single.indexOf(0, pos);
      return k >= 0 && k < end ? k : -1;
    }
    const segs = this.#segs;
    let i = this.#segIndex(pos);
    let off = pos - (this.#starts[i] ?? 0);
    for (; i < segs.length; i++, off = 0) {
      const base = this.#starts[i] ?? 0;
      if (base >= end) return -1;
      const k = (segs[i] ?? EMPTY_BYTES).indexOf(0, off);
      if (k >= 0) return base + k < end ? base + k : -1;
    }
    return -1;
  }

  /** Little-endian u32 at `pos` (bounds checked by the caller). */
  u32(pos: number): number {
    this.reach(pos, 4);
    return this.#view.getUint32(this.#at, true);
  }
}

// ---------------------------------------------------------------- struct plans

const WIDTH: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, i32: 4, i64: 8 };

type DecodeFn = (v: DataView, base: number) => Decoded;
type EncodeFn = (
  v: DataView,
  base: number,
  values: Readonly<Record<string, FieldValue | undefined>>,
  w: Writers,
  context: string,
) => void;

/** `context: layout.field: cannot encode …` */
function bad(context: string, field: string, x: unknown, type: string): EncodeError {
  return new EncodeError(`${context}: ${field}: cannot encode ${String(x)} as ${type}`);
}

function int(x: unknown): number {
  return typeof x === "number" ? x : typeof x === "bigint" ? Number(x) : x === undefined ? 0 : NaN;
}

function big(x: unknown): bigint | undefined {
  if (typeof x === "bigint") return x;
  if (typeof x === "number" && Number.isInteger(x)) return BigInt(x);
  return x === undefined ? 0n : undefined;
}

/** Validating field writers the compiled encoders call (`field` is `layout.field`). */
const WRITERS = {
  u8(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const n = int(x);
    if (!Number.isInteger(n) || n < 0 || n > 0xff) throw bad(ctx, field, x, "u8");
    v.setUint8(p, n);
  },
  u16(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const n = int(x);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw bad(ctx, field, x, "u16");
    v.setUint16(p, n, true);
  },
  u32(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const n = int(x);
    if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw bad(ctx, field, x, "u32");
    v.setUint32(p, n, true);
  },
  i32(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const n = int(x);
    if (!Number.isInteger(n) || n < -0x8000_0000 || n > 0x7fff_ffff) {
      throw bad(ctx, field, x, "i32");
    }
    v.setInt32(p, n, true);
  },
  u64(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const b = big(x);
    if (b === undefined || b < 0n || b > 0xffff_ffff_ffff_ffffn) throw bad(ctx, field, x, "u64");
    v.setBigUint64(p, b, true);
  },
  i64(v: DataView, p: number, x: unknown, field: string, ctx: string): void {
    const b = big(x);
    if (b === undefined || b < -(1n << 63n) || b >= 1n << 63n) throw bad(ctx, field, x, "i64");
    v.setBigInt64(p, b, true);
  },
  bytes(v: DataView, p: number, x: unknown, field: string, ctx: string, len: number): void {
    const bytes = x ?? EMPTY_BYTES;
    if (!(bytes instanceof Uint8Array) || bytes.byteLength > len) {
      throw bad(ctx, field, x, `${len} bytes`);
    }
    const dst = new Uint8Array(v.buffer, v.byteOffset + p, len);
    dst.fill(0);
    dst.set(bytes);
  },
};
type Writers = typeof WRITERS;

const READ: Record<string, string> = {
  u8: "v.getUint8(P)",
  u16: "v.getUint16(P, true)",
  u32: "v.getUint32(P, true)",
  i32: "v.getInt32(P, true)",
  u64: "v.getBigUint64(P, true)",
  i64: "v.getBigInt64(P, true)",
};

/**
 * A layout resolved for one protocol minor: the fields present and their
 * offsets; absent fields decode as 0 and are not encoded.
 *
 * Decoding builds one object literal per struct. A generic loop assigning
 * `out[name]` costs ~100 ns per field (megamorphic keyed stores), so each plan
 * is compiled once into a straight-line function; the source is generated
 * only from the layout's own field names (JSON-quoted) and numeric offsets.
 */
export class Plan {
  /** The layout. */
  readonly layout: Layout;
  /** Wire size at this minor. */
  readonly size: number;
  /** Decodes the struct at `base` of `v`; the caller has checked that `size` bytes exist. */
  readonly decode: DecodeFn;
  #encode: EncodeFn;

  /** Resolves and compiles `layout` at `version`. */
  constructor(layout: Layout, version: number) {
    this.layout = layout;
    const props: string[] = [];
    const stores: string[] = [];
    let off = 0;
    for (const f of layout.fields) {
      const key = JSON.stringify(f.name);
      const owner = JSON.stringify(`${layout.name}.${f.name}`);
      const present = (f.since ?? 0) <= version;
      if (typeof f.type === "string") {
        const wide = f.type === "u64" || f.type === "i64";
        props.push(
          `${key}: ${
            present ? (READ[f.type] ?? "0").replace("P", `b + ${off}`) : wide ? "0n" : "0"
          }`,
        );
        if (present) stores.push(`w.${f.type}(v, b + ${off}, o[${key}], ${owner}, c);`);
      } else {
        const n = f.type.bytes;
        props.push(
          `${key}: ${
            present
              ? `new Uint8Array(v.buffer, v.byteOffset + b + ${off}, ${n}).slice()`
              : `new Uint8Array(${n})`
          }`,
        );
        if (present) stores.push(`w.bytes(v, b + ${off}, o[${key}], ${owner}, c, ${n});`);
      }
      if (present) off += typeof f.type === "string" ? (WIDTH[f.type] ?? 4) : f.type.bytes;
    }
    this.size = off;
    this.decode = new Function(
      "v",
      "b",
      `"use strict"; return { ${props.join(", ")} };`,
    ) as DecodeFn;
    this.#encode = new Function(
      "v",
      "b",
      "o",
      "w",
      "c",
      `"use strict"; ${stores.join("\n")}`,
    ) as EncodeFn;
  }

  /**
   * Encodes `values` at `base` of `v` (missing fields as 0). Throws
   * EncodeError for values that do not fit, naming `context` and the field.
   */
  encode(
    v: DataView,
    base: number,
    values: Readonly<Record<string, FieldValue | undefined>>,
    context: string,
  ): void {
    this.#encode(v, base, values, WRITERS, context);
  }
}

const PLANS = new Map<Layout, Plan[]>();
const NEWEST = 63;

/** The plan of `layout` at minor `version` (cached; versions above 63 mean newest). */
export function planOf(layout: Layout, version: number): Plan {
  let byVersion = PLANS.get(layout);
  if (byVersion === undefined) {
    byVersion = [];
    PLANS.set(layout, byVersion);
  }
  const v = version >= NEWEST || !(version >= 0) ? NEWEST : Math.floor(version);
  let plan = byVersion[v];
  if (plan === undefined) {
    plan = new Plan(layout, v);
    byVersion[v] = plan;
  }
  return plan;
}

/**
 * Decodes a struct, throwing DecodeError when fewer than its size bytes remain
 * before `end` (the message's end by its header) or before `avail` (≤ end: the
 * bytes actually held, when a capture cut the message).
 */
export function readStruct(
  src: Source,
  plan: Plan,
  pos: number,
  end: number,
  avail: number,
  context: string,
): Decoded {
  if (pos + plan.size > avail) throw structShort(plan, pos, end, avail, context);
  src.reach(pos, plan.size);
  return plan.decode(src.view, src.at);
}

function structShort(
  plan: Plan,
  pos: number,
  end: number,
  avail: number,
  context: string,
): DecodeError {
  const name = plan.layout.name;
  if (pos + plan.size > end) {
    return new DecodeError(
      `${context}: ${name} truncated, needs ${plan.size} bytes, ${
        Math.max(0, end - pos)
      } available`,
      pos,
    );
  }
  // The header says the struct is there; the capture lost it.
  return new DecodeError(
    `${context}: ${name} was cut by the capture, needs ${plan.size} bytes, ${
      Math.max(0, avail - pos)
    } kept`,
    avail,
  );
}

// ---------------------------------------------------------------- names

/**
 * Decodes a file name losslessly: valid UTF-8 becomes text; each byte that is
 * not part of valid UTF-8 becomes a lone surrogate U+DC80–U+DCFF (as Python's
 * surrogateescape), which {@link encodeName} turns back into that byte.
 */
export function decodeName(b: Uint8Array, start = 0, end = b.byteLength): string {
  for (let i = start; i < end; i++) {
    if ((b[i] ?? 0) >= 0x80) return decodeUtf8Escaped(b, start, end);
  }
  // ASCII: fixed-arity fromCharCode is ~2x faster than apply() for short names.
  let s = "";
  let i = start;
  for (; i + 8 <= end; i += 8) {
    s += String.fromCharCode(
      b[i] ?? 0,
      b[i + 1] ?? 0,
      b[i + 2] ?? 0,
      b[i + 3] ?? 0,
      b[i + 4] ?? 0,
      b[i + 5] ?? 0,
      b[i + 6] ?? 0,
      b[i + 7] ?? 0,
    );
  }
  for (; i < end; i++) s += String.fromCharCode(b[i] ?? 0);
  return s;
}

function cont(x: number): boolean {
  return (x & 0xc0) === 0x80;
}

function decodeUtf8Escaped(b: Uint8Array, start: number, end: number): string {
  const units: number[] = [];
  let i = start;
  while (i < end) {
    const b0 = b[i] ?? 0;
    if (b0 < 0x80) {
      units.push(b0);
      i++;
      continue;
    }
    const b1 = i + 1 < end ? (b[i + 1] ?? 0) : -1;
    const b2 = i + 2 < end ? (b[i + 2] ?? 0) : -1;
    const b3 = i + 3 < end ? (b[i + 3] ?? 0) : -1;
    if (b0 >= 0xc2 && b0 <= 0xdf && b1 >= 0 && cont(b1)) {
      units.push(((b0 & 0x1f) << 6) | (b1 & 0x3f));
      i += 2;
      continue;
    }
    if (
      b0 >= 0xe0 && b0 <= 0xef && b1 >= 0 && b2 >= 0 && cont(b1) && cont(b2) &&
      !(b0 === 0xe0 && b1 < 0xa0) && !(b0 === 0xed && b1 >= 0xa0)
    ) {
      units.push(((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f));
      i += 3;
      continue;
    }
    if (
      b0 >= 0xf0 && b0 <= 0xf4 && b1 >= 0 && b2 >= 0 && b3 >= 0 && cont(b1) && cont(b2) &&
      cont(b3) && !(b0 === 0xf0 && b1 < 0x90) && !(b0 === 0xf4 && b1 >= 0x90)
    ) {
      const cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
      units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
      i += 4;
      continue;
    }
    units.push(0xdc00 + b0);
    i++;
  }
  let s = "";
  for (let k = 0; k < units.length; k += 4096) {
    s += String.fromCharCode.apply(null, units.slice(k, k + 4096));
  }
  return s;
}

/** Byte length of {@link encodeName}(s) without building it. */
export function nameByteLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3; // rejected by writeName
    } else if (c >= 0xdc80 && c <= 0xdcff) n += 1;
    else n += 3;
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `pos` of `out`, escaped bytes (U+DC80–U+DCFF) as the raw
 * byte; returns the end position. Other lone surrogates are an EncodeError.
 */
export function writeName(out: Uint8Array, pos: number, s: string, context: string): number {
  let p = pos;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      out[p++] = c;
    } else if (c < 0x800) {
      out[p++] = 0xc0 | (c >> 6);
      out[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) {
        throw new EncodeError(`${context}: lone surrogate in name`);
      }
      const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      out[p++] = 0xf0 | (cp >> 18);
      out[p++] = 0x80 | ((cp >> 12) & 0x3f);
      out[p++] = 0x80 | ((cp >> 6) & 0x3f);
      out[p++] = 0x80 | (cp & 0x3f);
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      out[p++] = c - 0xdc00;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw new EncodeError(`${context}: lone surrogate in name`);
    } else {
      out[p++] = 0xe0 | (c >> 12);
      out[p++] = 0x80 | ((c >> 6) & 0x3f);
      out[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p;
}

/** A name as bytes (see {@link decodeName} for the escaping). */
export function encodeName(s: string): Uint8Array {
  const out = new Uint8Array(nameByteLength(s));
  writeName(out, 0, s, "name");
  return out;
}

/** Rounds up to the FUSE record alignment (8). */
export function align8(n: number): number {
  // Arithmetic, not `& ~7`: sizes computed from u32 counts exceed 2^31.
  const r = n % 8;
  return r === 0 ? n : n + 8 - r;
}
