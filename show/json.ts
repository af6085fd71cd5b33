/**
 * NDJSON for `vfstrace show --json`: one object per event, every decoded
 * field.
 *
 * Conventions (stable, for jq and scripts):
 * - keys are snake_case; struct fields keep their C names;
 * - 64-bit values are JSON numbers when they are at most 2^53 − 1 (exact in
 *   every JSON reader), else decimal strings; `timestamp_ns` is therefore a
 *   string (ns since the epoch exceed 2^53) and `time` the same instant as
 *   an ISO 8601 UTC text with nanoseconds;
 * - byte arrays inside structs are lowercase hex strings; payloads (WRITE
 *   data, READ replies) are not included, only their `data_bytes` count;
 * - padding fields are left out; flags, modes and enums stay raw numbers
 *   (the names are in the table of decode/fuse_flags.ts), except the
 *   operation name, `errno` name and directions, which are given by name.
 *
 * @module
 */
import type {
  Decoded,
  FieldValue,
  FuseReply,
  FuseRequest,
  Layout,
  RequestSpec,
} from "../decode/fuse.ts";
import { FuseInHeader, FuseOutHeader } from "../decode/fuse_layouts.ts";
import {
  HEAD_NONE,
  NOTIFY_DIRECTION,
  RECORD_KIND,
  VHOST_USER_DIRECTION,
} from "../decode/pcapng.ts";
import { formatPayload } from "../decode/vhost_user.ts";
import { hexBytes } from "../decode/struct.ts";
import { errnoName } from "../sys/errno.ts";
import type { ControlEvent, FuseOperation, ShowEvent, ShowRecord } from "./pairing.ts";

/** A JSON value as this module builds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** A bigint as a JSON number when exact, else a decimal string. */
export function jsonBigint(v: bigint): number | string {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v.toString();
}

/** A decoded field value for JSON: numbers, safe bigints as numbers, bytes as hex. */
export function jsonField(v: FieldValue): number | string {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return jsonBigint(v);
  return hexBytes(v);
}

let lastSec: bigint | undefined;
let lastPrefix = "";

/** ISO 8601 UTC with nanoseconds: `2026-11-25T15:00:21.123456789Z`. */
export function isoTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns - sec * 1_000_000_000n;
  if (sec !== lastSec) {
    // Date formatting is slow and times come in order: the last second's text is reused.
    const iso = new Date(Number(sec) * 1000).toISOString(); // …T15:00:21.000Z
    lastSec = sec;
    lastPrefix = iso.slice(0, iso.length - 4);
  }
  return lastPrefix + frac.toString().padStart(9, "0") + "Z";
}

function structJson(layout: Layout | undefined, values: object): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  const vals = values as Readonly<Record<string, unknown>>;
  if (layout === undefined) {
    for (const [k, v] of Object.entries(vals)) {
      if (typeof v === "number" || typeof v === "bigint" || v instanceof Uint8Array) {
        out[k] = jsonField(v);
      }
    }
    return out;
  }
  for (const f of layout.fields) {
    if (f.pad === true) continue;
    const v = vals[f.name];
    if (typeof v === "number" || typeof v === "bigint" || v instanceof Uint8Array) {
      out[f.name] = jsonField(v);
    }
  }
  return out;
}

function itemsJson(layout: Layout | undefined, items: readonly Decoded[]): Json[] {
  return items.map((it) => structJson(layout, it));
}

function bytesOf(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  return n;
}

function recordJson(r: ShowRecord): { [key: string]: Json } {
  const out: { [key: string]: Json } = { seq: r.seq };
  if (r.offset !== undefined) out.offset = r.offset;
  out.length = r.body.byteLength;
  out.original_length = r.originalLength;
  out.flags = r.flags;
  if (r.head !== undefined && r.head !== HEAD_NONE) out.head = r.head;
  if (r.residenceNs !== undefined) out.residence_ns = r.residenceNs;
  return out;
}

function extensionsJson(extensions: FuseRequest["extensions"]): Json[] {
  return extensions.map((x): Json => {
    if (x.kind === "secctx") {
      return {
        kind: "secctx",
        contexts: x.contexts.map((c) => ({ name: c.name, value: hexBytes(c.value) })),
      };
    }
    if (x.kind === "groups") return { kind: "groups", groups: [...x.groups] };
    return { kind: "unknown", type: x.type, data: hexBytes(x.data) };
  });
}

function requestJson(req: FuseRequest, out: { [key: string]: Json }): void {
  out.header = structJson(FuseInHeader, req.header);
  const spec = req.op?.request;
  if (req.arg !== undefined) out.arg = structJson(spec?.struct, req.arg);
  if (req.names.length > 0) {
    const names: { [key: string]: Json } = {};
    for (let i = 0; i < req.names.length; i++) {
      names[spec?.names?.[i]?.label ?? `name${i}`] = req.names[i]!;
    }
    out.names = names;
  }
  if (req.data.length > 0) out.data_bytes = bytesOf(req.data);
  if (req.items.length > 0) out.items = itemsJson(spec?.items?.layout, req.items);
  if (req.extensions.length > 0) out.extensions = extensionsJson(req.extensions);
  if (req.truncated !== undefined) {
    out.truncated = { have: req.truncated.have, want: req.truncated.want };
  }
}

function replyJson(rep: FuseReply, out: { [key: string]: Json }): void {
  out.header = structJson(FuseOutHeader, rep.header);
  if (rep.notify !== undefined) out.notify = rep.notify.name;
  const struct = rep.notify?.struct ?? rep.op?.reply.struct;
  if (rep.arg !== undefined) out.arg = structJson(struct, rep.arg);
  if (rep.names.length > 0) out.names = [...rep.names];
  if (rep.data.length > 0) out.data_bytes = bytesOf(rep.data);
  if (rep.items.length > 0) out.items = itemsJson(rep.op?.reply.items?.layout, rep.items);
  if (rep.entries.length > 0) {
    out.entries = rep.entries.map((e) => {
      const o: { [key: string]: Json } = {
        ino: jsonBigint(e.ino),
        off: jsonBigint(e.off),
        type: e.type,
        name: e.name,
      };
      if (e.entry !== undefined) o.entry = structJson(struct, e.entry);
      return o;
    });
  }
  if (rep.truncated !== undefined) {
    out.truncated = { have: rep.truncated.have, want: rep.truncated.want };
  }
}

/** The JSON object of one FUSE operation. */
export function operationJson(op: FuseOperation): { [key: string]: Json } {
  const o: { [key: string]: Json } = {
    type: "fuse",
    time: isoTime(op.timestampNs),
    "timestamp_ns": op.timestampNs.toString(),
    queue: op.queue,
    unique: jsonBigint(op.unique),
    op: op.name,
    opcode: op.opcode,
    nodeid: jsonBigint(op.nodeid),
    status: op.status,
  };
  if (op.errno !== undefined) {
    o.errno = op.errno;
    o.error = errnoName(op.errno);
  }
  if (op.latencyNs !== undefined) o.latency_ns = op.latencyNs;
  if (op.problem !== undefined) o.problem = op.problem;
  if (op.request !== undefined) {
    const r = recordJson(op.request.record);
    if (op.request.decoded !== undefined) requestJson(op.request.decoded, r);
    if (op.request.problem !== undefined) r.problem = op.request.problem;
    o.request = r;
  }
  if (op.reply !== undefined) {
    const r = recordJson(op.reply.record);
    if (op.reply.decoded !== undefined) replyJson(op.reply.decoded, r);
    if (op.reply.problem !== undefined) r.problem = op.reply.problem;
    o.reply = r;
  }
  return o;
}

const SNAKE = new Map<string, string>();

function snake(key: string): string {
  let s = SNAKE.get(key);
  if (s === undefined) {
    s = key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
    // Payload keys come from the codec's tables: few. Bounded all the same.
    if (SNAKE.size < 4096) SNAKE.set(key, s);
  }
  return s;
}

/** Any decoded value (vhost-user payloads) as JSON, camelCase keys as snake_case. */
function anyJson(v: unknown): Json {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return jsonBigint(v);
  if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (v instanceof Uint8Array) return hexBytes(v);
  if (Array.isArray(v)) return v.map(anyJson);
  if (typeof v === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) out[snake(k)] = anyJson(x);
    return out;
  }
  return String(v);
}

/** The JSON object of a control event. */
export function controlJson(ev: ControlEvent): { [key: string]: Json } {
  const o: { [key: string]: Json } = {
    type: ev.type,
    time: isoTime(ev.timestampNs),
    "timestamp_ns": ev.timestampNs.toString(),
  };
  switch (ev.type) {
    case "vhost-user": {
      o.seq = ev.record.seq;
      o.direction = VHOST_USER_DIRECTION.format(ev.direction);
      o.fds = ev.fdCount;
      const m = ev.message;
      if (m !== undefined) {
        o.name = m.name;
        o.request = m.request;
        o.reply = m.isReply;
        o.need_reply = m.needReply;
        o.size = m.size;
        o.payload = anyJson(m.payload);
        o.text = formatPayload(m.payload, m.form);
      }
      if (ev.latencyNs !== undefined) o.latency_ns = ev.latencyNs;
      if (ev.problem !== undefined) o.problem = ev.problem;
      break;
    }
    case "note":
      o.seq = ev.record.seq;
      // Notes are JSON already: kept exactly as written.
      if (ev.note !== undefined) o.note = ev.note as unknown as Json;
      if (ev.problem !== undefined) o.problem = ev.problem;
      break;
    case "notify":
      o.seq = ev.record.seq;
      o.queue = ev.queue;
      o.direction = NOTIFY_DIRECTION.format(ev.direction);
      o.value = jsonBigint(ev.value);
      break;
    case "gap":
      o.first_seq = ev.firstSeq;
      o.count = ev.count;
      break;
    case "record":
      o.seq = ev.record.seq;
      o.kind = RECORD_KIND.format(ev.record.kind);
      o.length = ev.record.body.byteLength;
      break;
  }
  return o;
}

// ------------------------------------------------------------------ the NDJSON writer
//
// `show --json` writes a million events a second, each line ~800 bytes. Text
// built by concatenation is a tree of small strings that must be flattened,
// then encoded, which cost more than the decoding; so the writer puts the
// bytes straight into the output buffer: constant keys as bytes, numbers as
// digits, strings through a fast path when they are plain ASCII. The object
// builders above stay the reference: a line is byte for byte
// `JSON.stringify(operationJson(op))` (json_test.ts compares them on real and
// damaged captures), same keys in the same order, same omissions.

const encoder = new TextEncoder();

/**
 * A growable buffer of output bytes, filled by {@link writeJsonLine} (and
 * {@link LineBuffer.text} for lines built as strings). The owner writes
 * `bytes.subarray(0, length)` out and calls {@link clear}.
 */
export class LineBuffer {
  /** The buffer; valid up to {@link length}. Replaced when it grows. */
  bytes: Uint8Array;
  /** A DataView of {@link bytes} (4-byte stores of constant keys). */
  view: DataView;
  /** Bytes held. */
  length = 0;

  /** A buffer of `capacity` bytes to start with (it grows as needed). */
  constructor(capacity = 1 << 16) {
    this.bytes = new Uint8Array(Math.max(64, capacity));
    this.view = new DataView(this.bytes.buffer);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.byteLength) return;
    const next = new Uint8Array(Math.max(2 * this.bytes.byteLength, this.length + n));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends `s` as UTF-8. */
  text(s: string): void {
    const n = s.length;
    this.reserve(3 * n);
    const b = this.bytes;
    let p = this.length;
    // Encoded here, not by a TextEncoder call per line: lines are short and
    // mostly ASCII (`µs`, `→` aside); surrogates go to the encoder.
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        b[p++] = c;
      } else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        p += encoder.encodeInto(s.slice(i), b.subarray(p)).written;
        break;
      }
    }
    this.length = p;
  }

  /** Appends one byte (`\n`). */
  byte(b: number): void {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** Empties the buffer (keeping its memory). */
  clear(): void {
    this.length = 0;
  }
}

/** Most bytes a number takes as JSON text (`-1.7976931348623157e+308`). */
const NUMBER_MAX = 24;

/** "00" to "99" as ASCII pairs: two digits per division. */
const DIGIT_PAIRS = Uint8Array.from(
  { length: 200 },
  (_, i) => 48 + (i & 1 ? (i >> 1) % 10 : ((i >> 1) / 10) | 0),
);

/** Writes an integer 0 ≤ n < 2^31 at b[p]; returns the new position. */
function putInt31(b: Uint8Array, p: number, n: number): number {
  if (n < 10) {
    b[p] = 48 + n;
    return p + 1;
  }
  if (n < 100) {
    b[p] = DIGIT_PAIRS[n << 1]!;
    b[p + 1] = DIGIT_PAIRS[(n << 1) + 1]!;
    return p + 2;
  }
  const len = n < 1000
    ? 3
    : n < 10000
    ? 4
    : n < 100000
    ? 5
    : n < 1000000
    ? 6
    : n < 10000000
    ? 7
    : n < 100000000
    ? 8
    : n < 1000000000
    ? 9
    : 10;
  let q = p + len;
  // Int32 arithmetic: V8 turns the division by 100 into a multiplication.
  while (n >= 100) {
    const t = (n / 100) | 0;
    const r = (n - t * 100) << 1;
    b[--q] = DIGIT_PAIRS[r + 1]!;
    b[--q] = DIGIT_PAIRS[r]!;
    n = t;
  }
  if (n >= 10) {
    b[q - 1] = DIGIT_PAIRS[(n << 1) + 1]!;
    b[q - 2] = DIGIT_PAIRS[n << 1]!;
  } else {
    b[q - 1] = 48 + n;
  }
  return p + len;
}

/** Writes 0 ≤ n < 10^8 as 8 digits, zero-padded. */
function putDigits8(b: Uint8Array, p: number, n: number): number {
  for (let q = p + 7; q >= p; q--) {
    const t = (n / 10) | 0;
    b[q] = 48 + n - t * 10;
    n = t;
  }
  return p + 8;
}

/** Writes a number as JSON.stringify does at b[p]; returns the new position. */
function putNumber(b: Uint8Array, p: number, n: number): number {
  if (n >= 0 && n < 0x80000000 && (n | 0) === n) return putInt31(b, p, n);
  if (Number.isSafeInteger(n)) {
    if (n < 0) {
      b[p++] = 45; // -
      n = -n;
      if (n < 0x80000000) return putInt31(b, p, n);
    }
    // Two exact halves below 2^31: digits above the last 8, then the last 8.
    const hi = Math.floor(n / 1e8);
    return putDigits8(b, putNumber(b, p, hi), n - hi * 1e8);
  }
  return putAscii(b, p, Number.isFinite(n) ? "" + n : "null");
}

/** Writes an ASCII string (digits, names known to be plain) at b[p]. */
function putAscii(b: Uint8Array, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  return p;
}

/** Writes a bigint as {@link jsonBigint} gives it: a number when exact, else a quoted decimal. */
function putBig(b: Uint8Array, p: number, v: bigint): number {
  const n = Number(v);
  if (n >= 0 && n < 0x80000000) return putInt31(b, p, n);
  // Number(v) is safe exactly when |v| ≤ 2^53 − 1: then its digits are v's.
  if (Number.isSafeInteger(n)) return putNumber(b, p, n);
  b[p] = 34;
  p = putAscii(b, p + 1, v.toString());
  b[p] = 34;
  return p + 1;
}

const HEX = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0));

/** Writes bytes as a quoted lowercase hex string ({@link hexBytes}). */
function putHex(b: Uint8Array, p: number, v: Uint8Array): number {
  b[p++] = 34;
  for (let i = 0; i < v.byteLength; i++) {
    const x = v[i]!;
    b[p++] = HEX[x >> 4]!;
    b[p++] = HEX[x & 15]!;
  }
  b[p] = 34;
  return p + 1;
}

/**
 * Appends `s` as a JSON string. Plain ASCII without quotes, backslashes or
 * controls is copied as is; anything else (escapes, UTF-8, lone
 * surrogates) is JSON.stringify's text, encoded.
 */
function putString(out: LineBuffer, s: string): void {
  const n = s.length;
  out.reserve(n + 2);
  const b = out.bytes;
  let p = out.length;
  b[p++] = 34;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 34 || c === 92 || c >= 0x7f) {
      out.text(JSON.stringify(s));
      return;
    }
    b[p++] = c;
  }
  b[p++] = 34;
  out.length = p;
}

/** Appends bytes known to be ASCII (cached names). */
function putBytes(out: LineBuffer, k: Uint8Array): void {
  out.reserve(k.byteLength);
  out.length = cp(out.bytes, out.length, k);
}

/** Writes a constant at b[p] (room reserved); returns the new position. */
type Const = (b: Uint8Array, p: number) => number;

/** The longest constant of {@link K}, reserved by {@link putKey}. */
const CONST_MAX = 64;

/**
 * Compiles the copy of a constant into straight-line stores: a loop over
 * the constant's bytes was the single largest cost of a JSON line. The
 * source holds only the byte values (numbers).
 */
function constant(s: string): Const {
  const k = encoder.encode(s);
  if (k.byteLength > CONST_MAX) throw new Error(`constant too long: ${s}`);
  const stores = Array.from(k, (x, i) => `b[p + ${i}] = ${x};`).join(" ");
  return new Function("b", "p", `"use strict"; ${stores} return p + ${k.byteLength};`) as Const;
}

/** Appends an ASCII constant (keys and punctuation). */
function putKey(out: LineBuffer, k: Const): void {
  out.reserve(CONST_MAX);
  out.length = k(out.bytes, out.length);
}

/** Copies an ASCII constant to b[p] (room reserved by the caller); returns the new position. */
function cp(b: Uint8Array, p: number, k: Uint8Array): number {
  const n = k.length;
  // A loop beats TypedArray.prototype.set (a call into C++) up to ~16 bytes.
  if (n > 16) {
    b.set(k, p);
    return p + n;
  }
  for (let i = 0; i < n; i++) b[p + i] = k[i]!;
  return p + n;
}

const ascii = (s: string): Uint8Array => encoder.encode(s);

type StructWriter = (out: LineBuffer, values: object) => void;

/** The parts a compiled struct writer calls. */
const STRUCT_HELPERS = { putNumber, putBig, putHex };

/**
 * Compiles {@link structJson} for fields `names` into straight-line code:
 * constant property loads (a loop over the fields makes them megamorphic)
 * and the `"key":` bytes stored as constants, four at a time. The source is
 * made only of the field names, JSON-quoted, and numbers (as
 * decode/_fuse_bytes.ts compiles its decoders).
 */
function compileStruct(
  names: readonly string[],
  types?: readonly ("number" | "bigint")[],
): StructWriter {
  let max = 2;
  const lines: string[] = [];
  for (const name of names) {
    const key = ascii(JSON.stringify(name) + ":");
    max += 1 + key.byteLength + NUMBER_MAX;
    const words: string[] = [];
    let i = 0;
    for (; i + 4 <= key.byteLength; i += 4) {
      const w = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
      words.push(`d.setUint32(p + ${i}, ${w >>> 0}, true);`);
    }
    for (; i < key.byteLength; i++) words.push(`b[p + ${i}] = ${key[i]};`);
    const stores = words.join(" ");
    const put = `if (c) b[p++] = 44; else c = true; ${stores} p += ${key.byteLength};`;
    lines.push(
      `v = o[${JSON.stringify(name)}];`,
      `if (typeof v === "number") { ${put} p = h.putNumber(b, p, v); }`,
      `else if (typeof v === "bigint") { ${put} p = h.putBig(b, p, v); }`,
      `else if (v instanceof Uint8Array) {`,
      `  out.length = p; out.reserve(2 * v.byteLength + 2 + ${max}); b = out.bytes; d = out.view;`,
      `  ${put} p = h.putHex(b, p, v);`,
      `}`,
    );
  }
  const body = new Function(
    "out",
    "o",
    "h",
    `"use strict";\nout.reserve(${max});\nlet b = out.bytes, d = out.view, p = out.length, c = false, v;\n` +
      `b[p++] = 123;\n${lines.join("\n")}\nb[p++] = 125;\nout.length = p;`,
  ) as (out: LineBuffer, o: object, h: typeof STRUCT_HELPERS) => void;
  if (types === undefined) return (out, o) => body(out, o, STRUCT_HELPERS);
  const fast = compileTyped(names, types);
  // The general writer when a value is not of its field's type (objects built by hand).
  return (out, o) => {
    if (!fast(out, o)) body(out, o, STRUCT_HELPERS);
  };
}

/**
 * The writer of a struct whose fields are all numbers and bigints of known
 * types, as decoding makes them: no per-field comma flag or type dispatch,
 * one reservation, each `,"key":` stored as constant words. Returns false,
 * having written nothing, when a value is missing or of another type.
 */
function compileTyped(
  names: readonly string[],
  types: readonly ("number" | "bigint")[],
): (out: LineBuffer, o: object) => boolean {
  let max = 2;
  const lines: string[] = [];
  names.forEach((name, n) => {
    const key = ascii((n === 0 ? "{" : ",") + JSON.stringify(name) + ":");
    max += key.byteLength + NUMBER_MAX;
    const words: string[] = [];
    let i = 0;
    for (; i + 4 <= key.byteLength; i += 4) {
      const w = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
      words.push(`d.setUint32(p + ${i}, ${w >>> 0}, true);`);
    }
    for (; i < key.byteLength; i++) words.push(`b[p + ${i}] = ${key[i]};`);
    const type = types[n]!;
    lines.push(
      `v = o[${JSON.stringify(name)}];`,
      `if (typeof v !== "${type}") return false;`,
      `${words.join(" ")} p = ${
        type === "number" ? "putNumber" : "putBig"
      }(b, p + ${key.byteLength}, v);`,
    );
  });
  // The helpers are bound once, in the closure: calls to known functions, which the
  // compiler inlines, where loads from a parameter object were not.
  const make = new Function(
    "h",
    `"use strict";\nconst putNumber = h.putNumber, putBig = h.putBig;\n` +
      `return function (out, o) {\nout.reserve(${max});\nconst b = out.bytes, d = out.view;\nlet p = out.length, v;\n` +
      `${lines.join("\n")}\nb[p++] = 125;\nout.length = p;\nreturn true;\n};`,
  ) as (h: typeof STRUCT_HELPERS) => (out: LineBuffer, o: object) => boolean;
  return make(STRUCT_HELPERS);
}

const LAYOUT_WRITERS = new Map<Layout, StructWriter>();

function layoutWriter(layout: Layout): StructWriter {
  let w = LAYOUT_WRITERS.get(layout);
  if (w === undefined) {
    const fields = layout.fields.filter((f) => f.pad !== true);
    // Decoding gives u64/i64 as bigints, the other scalars as numbers; byte arrays vary in size.
    const types = fields.length > 0 && fields.every((f) => typeof f.type === "string")
      ? fields.map((f) =>
        f.type === "u64" || f.type === "i64" ? "bigint" as const : "number" as const
      )
      : undefined;
    w = compileStruct(fields.map((f) => f.name), types);
    LAYOUT_WRITERS.set(layout, w);
  }
  return w;
}

/** Writers of structs without a layout, by their keys (READDIRPLUS entries: one shape). */
const SHAPES: { keys: string[]; write: StructWriter }[] = [];
const MAX_SHAPES = 64;

function shapeWriter(values: object): StructWriter {
  // Object.entries' order, which structJson follows, is Object.keys'.
  const keys = Object.keys(values);
  for (const s of SHAPES) {
    const k = s.keys;
    if (k.length !== keys.length) continue;
    let i = 0;
    while (i < k.length && k[i] === keys[i]) i++;
    if (i === k.length) return s.write;
  }
  const write = compileStruct(keys);
  if (SHAPES.length < MAX_SHAPES) SHAPES.push({ keys, write });
  return write;
}

/** Appends {@link structJson} of `values`. */
function putStruct(out: LineBuffer, layout: Layout | undefined, values: object): void {
  (layout === undefined ? shapeWriter(values) : layoutWriter(layout))(out, values);
}

function putItems(out: LineBuffer, layout: Layout | undefined, items: readonly Decoded[]): void {
  out.byte(91); // [
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out.byte(44);
    putStruct(out, layout, items[i]!);
  }
  out.byte(93);
}

/** Appends a number (the caller reserved room). */
function putNum(out: LineBuffer, n: number): void {
  out.length = putNumber(out.bytes, out.length, n);
}

const K = {
  fuse: constant('{"type":"fuse","time":"'),
  timestamp: constant('","timestamp_ns":"'),
  queue: constant('","queue":'),
  unique: constant(',"unique":'),
  op: constant(',"op":'),
  opcode: constant(',"opcode":'),
  nodeid: constant(',"nodeid":'),
  status: constant(',"status":'),
  errno: constant(',"errno":'),
  error: constant(',"error":'),
  latency: constant(',"latency_ns":'),
  problem: constant(',"problem":'),
  request: constant(',"request":{"seq":'),
  reply: constant(',"reply":{"seq":'),
  offset: constant(',"offset":'),
  length: constant(',"length":'),
  originalLength: constant(',"original_length":'),
  flags: constant(',"flags":'),
  head: constant(',"head":'),
  residence: constant(',"residence_ns":'),
  header: constant(',"header":'),
  arg: constant(',"arg":'),
  names: constant(',"names":'),
  dataBytes: constant(',"data_bytes":'),
  items: constant(',"items":'),
  extensions: constant(',"extensions":'),
  truncated: constant(',"truncated":{"have":'),
  want: constant(',"want":'),
  notify: constant(',"notify":'),
  entries: constant(',"entries":['),
  ino: constant('{"ino":'),
  off: constant(',"off":'),
  type: constant(',"type":'),
  name: constant(',"name":'),
  entry: constant(',"entry":'),
  notifyEvent: constant('{"type":"notify","time":"'),
  seq: constant('","seq":'),
  notifyQueue: constant(',"queue":'),
  direction: constant(',"direction":'),
  value: constant(',"value":'),
};

/** Room for a key and a number. */
const KEY_NUMBER = 32;

/** Cached JSON text of names that repeat (operation, errno, status, direction). */
const NAME_BYTES = new Map<string, Uint8Array>();

function putName(out: LineBuffer, name: string): void {
  let t = NAME_BYTES.get(name);
  if (t === undefined) {
    t = encoder.encode(JSON.stringify(name));
    if (NAME_BYTES.size < 4096) NAME_BYTES.set(name, t);
  }
  putBytes(out, t);
}

let isoSec = -1n;
/** isoSec in ns, and its number of seconds. */
let isoSecNs = -1n;
let isoSecNumber = 0;
let isoPrefix = new Uint8Array(0);

/** Room for the bounded parts of a line (keys, numbers, times) between two reservations. */
const BOUNDED = 512;

/**
 * Writes `ISO-time","timestamp_ns":"ns` for `ns` ≥ 0 ({@link isoTime} and
 * its decimal) at b[p] (room reserved), the date of the last second cached
 * (Date formatting is slow).
 */
function putTimes(b: Uint8Array, p: number, ns: bigint): number {
  // Times come in order: one subtraction finds the nanoseconds within the last second,
  // where a division and a product (three BigInts) would be needed otherwise.
  let frac = isoSecNs >= 0n ? Number(ns - isoSecNs) : -1;
  if (!(frac >= 0 && frac < 1_000_000_000)) {
    const sec = ns / 1_000_000_000n;
    if (sec !== isoSec) {
      const iso = new Date(Number(sec) * 1000).toISOString();
      isoPrefix = encoder.encode(iso.slice(0, iso.length - 4));
      isoSec = sec;
      isoSecNs = sec * 1_000_000_000n;
      // Exact: seconds since the epoch stay far below 2^53.
      isoSecNumber = Number(sec);
    }
    frac = Number(ns - isoSecNs);
  }
  p = putFrac(b, cp(b, p, isoPrefix), frac);
  b[p++] = 90; // Z
  p = K.timestamp(b, p);
  return isoSecNumber === 0
    ? putNumber(b, p, frac)
    : putFrac(b, putNumber(b, p, isoSecNumber), frac);
}

/** {@link putTimes} for any time (a negative one takes the slow path). */
function putTimesOf(out: LineBuffer, ns: bigint): void {
  if (ns < 0n) {
    out.text(isoTime(ns));
    putKey(out, K.timestamp);
    out.text(ns.toString());
    return;
  }
  out.reserve(BOUNDED);
  out.length = putTimes(out.bytes, out.length, ns);
}

/** Nine digits, zero-padded (0 ≤ frac < 10^9). */
function putFrac(b: Uint8Array, p: number, frac: number): number {
  for (let q = p + 8; q >= p; q--) {
    const t = (frac / 10) | 0;
    b[q] = 48 + frac - t * 10;
    frac = t;
  }
  return p + 9;
}

/** Writes the record fields (after `{"seq":`) at b[p] (room reserved). */
function putRecord(b: Uint8Array, p: number, r: ShowRecord): number {
  p = putNumber(b, p, r.seq);
  const offset = r.offset;
  if (offset !== undefined) p = putNumber(b, K.offset(b, p), offset);
  p = putNumber(b, K.length(b, p), r.body.byteLength);
  p = putNumber(b, K.originalLength(b, p), r.originalLength);
  p = putNumber(b, K.flags(b, p), r.flags);
  const head = r.head;
  if (head !== undefined && head !== HEAD_NONE) p = putNumber(b, K.head(b, p), head);
  const residence = r.residenceNs;
  if (residence !== undefined) p = putNumber(b, K.residence(b, p), residence);
  return p;
}

function putTruncated(out: LineBuffer, t: { have: number; want: number }): void {
  putKey(out, K.truncated);
  out.reserve(2 * KEY_NUMBER);
  putNum(out, t.have);
  putKey(out, K.want);
  putNum(out, t.want);
  out.byte(125);
}

function labelOf(spec: RequestSpec | undefined, i: number): string {
  return spec?.names?.[i]?.label ?? `name${i}`;
}

/** Labels of `n` names by request spec, when all differ (cached: built once per spec). */
const LABELS = new Map<RequestSpec | undefined, (readonly string[] | undefined)[]>();

function namesLabels(spec: RequestSpec | undefined, n: number): readonly string[] | undefined {
  let bySize = LABELS.get(spec);
  if (bySize === undefined) LABELS.set(spec, bySize = []);
  if (n < 16 && n in bySize) return bySize[n];
  const labels: string[] = [];
  for (let i = 0; i < n; i++) labels.push(labelOf(spec, i));
  const unique = new Set(labels).size === n ? labels : undefined;
  if (n < 16) bySize[n] = unique;
  return unique;
}

function putRequest(out: LineBuffer, req: FuseRequest): void {
  putKey(out, K.header);
  layoutWriter(FuseInHeader)(out, req.header);
  const spec = req.op?.request;
  if (req.arg !== undefined) {
    putKey(out, K.arg);
    putStruct(out, spec?.struct, req.arg);
  }
  const names = req.names;
  if (names.length > 0) {
    putKey(out, K.names);
    const labels = namesLabels(spec, names.length);
    if (labels !== undefined) {
      out.byte(123);
      for (let i = 0; i < names.length; i++) {
        if (i > 0) out.byte(44);
        putName(out, labels[i]!);
        out.byte(58);
        putString(out, names[i]!);
      }
      out.byte(125);
    } else {
      // A label given twice keeps one key (the last value), as an object does.
      const o: { [key: string]: string } = {};
      for (let i = 0; i < names.length; i++) o[labelOf(spec, i)] = names[i]!;
      out.text(JSON.stringify(o));
    }
  }
  if (req.data.length > 0) {
    putKey(out, K.dataBytes);
    out.reserve(KEY_NUMBER);
    putNum(out, bytesOf(req.data));
  }
  if (req.items.length > 0) {
    putKey(out, K.items);
    putItems(out, spec?.items?.layout, req.items);
  }
  if (req.extensions.length > 0) {
    putKey(out, K.extensions);
    out.text(JSON.stringify(extensionsJson(req.extensions)));
  }
  if (req.truncated !== undefined) putTruncated(out, req.truncated);
}

function putReply(out: LineBuffer, rep: FuseReply): void {
  putKey(out, K.header);
  layoutWriter(FuseOutHeader)(out, rep.header);
  if (rep.notify !== undefined) {
    putKey(out, K.notify);
    putString(out, rep.notify.name);
  }
  const struct = rep.notify?.struct ?? rep.op?.reply.struct;
  if (rep.arg !== undefined) {
    putKey(out, K.arg);
    putStruct(out, struct, rep.arg);
  }
  if (rep.names.length > 0) {
    putKey(out, K.names);
    out.text(JSON.stringify(rep.names));
  }
  if (rep.data.length > 0) {
    putKey(out, K.dataBytes);
    out.reserve(KEY_NUMBER);
    putNum(out, bytesOf(rep.data));
  }
  if (rep.items.length > 0) {
    putKey(out, K.items);
    putItems(out, rep.op?.reply.items?.layout, rep.items);
  }
  const entries = rep.entries;
  if (entries.length > 0) {
    putKey(out, K.entries);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (i > 0) out.byte(44);
      putKey(out, K.ino);
      out.reserve(4 * KEY_NUMBER);
      out.length = putBig(out.bytes, out.length, e.ino);
      putKey(out, K.off);
      out.length = putBig(out.bytes, out.length, e.off);
      putKey(out, K.type);
      putNum(out, e.type);
      putKey(out, K.name);
      putString(out, e.name);
      if (e.entry !== undefined) {
        putKey(out, K.entry);
        putStruct(out, struct, e.entry);
      }
      out.byte(125);
    }
    out.byte(93);
  }
  if (rep.truncated !== undefined) putTruncated(out, rep.truncated);
}

function putOperation(out: LineBuffer, op: FuseOperation): void {
  if (op.timestampNs < 0n) {
    putKey(out, K.fuse);
    putTimesOf(out, op.timestampNs);
  } else {
    out.reserve(BOUNDED);
    out.length = putTimes(out.bytes, K.fuse(out.bytes, out.length), op.timestampNs);
  }
  let b = out.bytes;
  let p = putNumber(b, K.queue(b, out.length), op.queue);
  p = putBig(b, K.unique(b, p), op.unique);
  out.length = K.op(b, p);
  putName(out, op.name);
  out.reserve(BOUNDED);
  b = out.bytes;
  p = putNumber(b, K.opcode(b, out.length), op.opcode);
  p = putBig(b, K.nodeid(b, p), op.nodeid);
  out.length = K.status(b, p);
  putName(out, op.status);
  if (op.errno !== undefined) {
    out.reserve(BOUNDED);
    out.length = K.error(
      out.bytes,
      putNumber(out.bytes, K.errno(out.bytes, out.length), op.errno),
    );
    putName(out, errnoName(op.errno));
  }
  if (op.latencyNs !== undefined) {
    out.reserve(BOUNDED);
    out.length = putNumber(out.bytes, K.latency(out.bytes, out.length), op.latencyNs);
  }
  if (op.problem !== undefined) {
    putKey(out, K.problem);
    putString(out, op.problem);
  }
  const rq = op.request;
  if (rq !== undefined) {
    out.reserve(BOUNDED);
    out.length = putRecord(out.bytes, K.request(out.bytes, out.length), rq.record);
    if (rq.decoded !== undefined) putRequest(out, rq.decoded);
    if (rq.problem !== undefined) {
      putKey(out, K.problem);
      putString(out, rq.problem);
    }
    out.byte(125);
  }
  const rp = op.reply;
  if (rp !== undefined) {
    out.reserve(BOUNDED);
    out.length = putRecord(out.bytes, K.reply(out.bytes, out.length), rp.record);
    if (rp.decoded !== undefined) putReply(out, rp.decoded);
    if (rp.problem !== undefined) {
      putKey(out, K.problem);
      putString(out, rp.problem);
    }
    out.byte(125);
  }
  out.byte(125);
}

/**
 * Appends the NDJSON line of any event (without the newline) to `out`:
 * the text of {@link jsonLine}, as bytes, without building strings.
 */
export function writeJsonLine(ev: ShowEvent, out: LineBuffer): void {
  if (ev.type === "fuse") return putOperation(out, ev);
  if (ev.type === "notify") {
    // Notifications can be as many as operations (`--all`): written directly too.
    putKey(out, K.notifyEvent);
    putTimesOf(out, ev.timestampNs);
    putKey(out, K.seq);
    out.reserve(4 * KEY_NUMBER);
    putNum(out, ev.record.seq);
    putKey(out, K.notifyQueue);
    putNum(out, ev.queue);
    putKey(out, K.direction);
    putName(out, NOTIFY_DIRECTION.format(ev.direction));
    putKey(out, K.value);
    out.reserve(KEY_NUMBER);
    out.length = putBig(out.bytes, out.length, ev.value);
    out.byte(125);
    return;
  }
  out.text(JSON.stringify(controlJson(ev)));
}

const scratch = new LineBuffer();
const decoder = new TextDecoder();

/** One NDJSON line (no newline) for any event. */
export function jsonLine(ev: ShowEvent): string {
  scratch.clear();
  writeJsonLine(ev, scratch);
  return decoder.decode(scratch.bytes.subarray(0, scratch.length));
}
