/**
 * A small declarative layout language for the little-endian C structs of
 * FUSE, vhost-user and virtio. One layout drives decoding, encoding,
 * printing and the Wireshark dissector, so a field is described once.
 *
 * Layouts have no implicit padding: the protocol headers pad explicitly, and
 * so do these tables (`pad` fields).
 *
 * @module
 */

/** Scalar wire types. 64-bit fields decode to bigint, narrower ones to number. */
export type ScalarType = "u8" | "u16" | "u32" | "u64" | "i32" | "i64";

/** How a field's value is shown to people (the printer and dissector read this). */
export type Display =
  | { kind: "dec" }
  | { kind: "hex" }
  | { kind: "flags"; set: BitNames }
  | { kind: "enum"; set: ValueNames }
  | { kind: "custom"; name: string; format: (value: number | bigint) => string };

/** One field of a layout. */
export interface FieldSpec {
  /** snake_case name as in the C header. */
  readonly name: string;
  /** Wire type, or a byte count for fixed-size opaque arrays (`{ bytes: n }`). */
  readonly type: ScalarType | { readonly bytes: number };
  /** How to print it; decimal by default. */
  readonly display?: Display;
  /** Protocol minor version that added the field; absent fields decode as 0. */
  readonly since?: number;
  /** Reserved / padding: decoded, kept for round trips, hidden when printing. */
  readonly pad?: boolean;
}

/** A decoded field value. */
export type FieldValue = number | bigint | Uint8Array;

/** A decoded struct: field name → value. */
export type Decoded = Record<string, FieldValue>;

const SIZES: Record<ScalarType, number> = { u8: 1, u16: 2, u32: 4, u64: 8, i32: 4, i64: 8 };

/** Byte size of one field. */
export function fieldSize(f: FieldSpec): number {
  return typeof f.type === "string" ? SIZES[f.type] : f.type.bytes;
}

/** A struct layout: ordered fields with computed offsets. */
export class Layout {
  /** C name, e.g. `"fuse_in_header"`. */
  readonly name: string;
  /** Fields in wire order. */
  readonly fields: readonly FieldSpec[];
  /** Offset of each field for the newest version. */
  readonly offsets: ReadonlyMap<string, number>;
  #sizeCache = new Map<number, number>();

  /** Builds a layout; field names must be unique. */
  constructor(name: string, fields: readonly FieldSpec[]) {
    this.name = name;
    this.fields = fields;
    const offsets = new Map<string, number>();
    let off = 0;
    for (const f of fields) {
      if (offsets.has(f.name)) throw new Error(`layout ${name}: duplicate field ${f.name}`);
      offsets.set(f.name, off);
      off += fieldSize(f);
    }
    this.offsets = offsets;
  }

  /**
   * Wire size for protocol minor `version` (newest when omitted): fields
   * added later than `version` are absent. Fields with `since` must come last.
   */
  size(version = Infinity): number {
    let s = this.#sizeCache.get(version);
    if (s === undefined) {
      s = 0;
      for (const f of this.fields) if ((f.since ?? 0) <= version) s += fieldSize(f);
      this.#sizeCache.set(version, s);
    }
    return s;
  }

  /**
   * Decodes the struct at `offset` of `view`. Throws DecodeError (never a
   * RangeError) when the bytes are too few.
   */
  decode(view: DataView, offset: number, version = Infinity, context = ""): Decoded {
    const need = this.size(version);
    if (offset < 0 || offset + need > view.byteLength) {
      throw new DecodeError(
        `${context}${this.name}: truncated, needs ${need} bytes, ${
          Math.max(0, view.byteLength - offset)
        } available`,
        offset,
      );
    }
    const out: Decoded = {};
    let off = offset;
    for (const f of this.fields) {
      if ((f.since ?? 0) > version) {
        out[f.name] = typeof f.type === "string"
          ? (f.type === "u64" || f.type === "i64" ? 0n : 0)
          : new Uint8Array(f.type.bytes);
        continue;
      }
      out[f.name] = readField(view, off, f);
      off += fieldSize(f);
    }
    return out;
  }

  /**
   * Encodes `values` at `offset` of `view`; missing fields are written as 0.
   * Returns the number of bytes written.
   */
  encode(
    view: DataView,
    offset: number,
    values: Readonly<Record<string, FieldValue | undefined>>,
    version = Infinity,
  ): number {
    let off = offset;
    for (const f of this.fields) {
      if ((f.since ?? 0) > version) continue;
      writeField(view, off, f, values[f.name], this.name);
      off += fieldSize(f);
    }
    return off - offset;
  }

  /** Encodes into a new byte array of exactly {@link size} bytes. */
  toBytes(
    values: Readonly<Record<string, FieldValue | undefined>>,
    version = Infinity,
  ): Uint8Array {
    const buf = new Uint8Array(this.size(version));
    this.encode(new DataView(buf.buffer), 0, values, version);
    return buf;
  }
}

/** Shorthand constructor for {@link Layout}. */
export function layout(name: string, fields: readonly FieldSpec[]): Layout {
  return new Layout(name, fields);
}

function readField(view: DataView, off: number, f: FieldSpec): FieldValue {
  switch (f.type) {
    case "u8":
      return view.getUint8(off);
    case "u16":
      return view.getUint16(off, true);
    case "u32":
      return view.getUint32(off, true);
    case "i32":
      return view.getInt32(off, true);
    case "u64":
      return view.getBigUint64(off, true);
    case "i64":
      return view.getBigInt64(off, true);
    default:
      return new Uint8Array(view.buffer, view.byteOffset + off, f.type.bytes).slice();
  }
}

function writeField(
  view: DataView,
  off: number,
  f: FieldSpec,
  value: FieldValue | undefined,
  owner: string,
): void {
  const bad = () =>
    new EncodeError(`${owner}.${f.name}: cannot encode ${String(value)} as ${describeType(f)}`);
  if (typeof f.type !== "string") {
    const bytes = value ?? new Uint8Array(0);
    if (!(bytes instanceof Uint8Array) || bytes.byteLength > f.type.bytes) throw bad();
    new Uint8Array(view.buffer, view.byteOffset + off, f.type.bytes).fill(0).set(bytes);
    return;
  }
  if (value instanceof Uint8Array) throw bad();
  const v = value ?? 0;
  switch (f.type) {
    case "u64":
    case "i64": {
      const b = BigInt(v);
      if (f.type === "u64" ? b < 0n || b >= 1n << 64n : b < -(1n << 63n) || b >= 1n << 63n) {
        throw bad();
      }
      if (f.type === "u64") view.setBigUint64(off, b, true);
      else view.setBigInt64(off, b, true);
      return;
    }
    default: {
      const n = Number(v);
      const [lo, hi] = f.type === "i32"
        ? [-(2 ** 31), 2 ** 31 - 1]
        : [0, 2 ** (8 * SIZES[f.type]) - 1];
      if (!Number.isInteger(n) || n < lo || n > hi) throw bad();
      if (f.type === "u8") view.setUint8(off, n);
      else if (f.type === "u16") view.setUint16(off, n, true);
      else if (f.type === "u32") view.setUint32(off, n, true);
      else view.setInt32(off, n, true);
    }
  }
}

function describeType(f: FieldSpec): string {
  return typeof f.type === "string" ? f.type : `${f.type.bytes} bytes`;
}

/** Bytes that do not form a valid message; `offset` is where decoding stopped. */
export class DecodeError extends Error {
  /** Byte offset in the input where the problem is. */
  readonly offset: number;
  /** Creates the error; `message` should name the protocol, message type and field. */
  constructor(message: string, offset: number) {
    super(`${message} (at offset ${offset})`);
    this.name = "DecodeError";
    this.offset = offset;
  }
}

/** A value that cannot be put on the wire (out of range, wrong type, too long). */
export class EncodeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EncodeError";
  }
}

/** Names of single bits of a flags word; unknown bits print as hex. */
export class BitNames {
  /** Table name, e.g. `"fuse_init_flags"`. */
  readonly name: string;
  /** [bit value, name] pairs. */
  readonly bits: readonly (readonly [bigint, string])[];
  #byName: Map<string, bigint>;

  /** Builds the table from name → bit value. */
  constructor(name: string, bits: Readonly<Record<string, number | bigint>>) {
    this.name = name;
    this.bits = Object.entries(bits).map(([n, v]) => [BigInt(v), n] as const);
    this.#byName = new Map(this.bits.map(([v, n]) => [n, v]));
  }

  /** Names of the bits set in `value`, plus a hex remainder for unknown bits. */
  names(value: number | bigint): string[] {
    let rest = BigInt(value);
    const out: string[] = [];
    for (const [bit, name] of this.bits) {
      if (bit !== 0n && (rest & bit) === bit) {
        out.push(name);
        rest &= ~bit;
      }
    }
    if (rest !== 0n) out.push(`0x${rest.toString(16)}`);
    return out;
  }

  /** `A|B|0x40`, or `0` when no bit is set. */
  format(value: number | bigint): string {
    const names = this.names(value);
    return names.length === 0 ? "0" : names.join("|");
  }

  /** The bit value of `name`, or undefined. */
  bit(name: string): bigint | undefined {
    return this.#byName.get(name);
  }

  /** ORs the named bits together; throws EncodeError on an unknown name. */
  parse(names: Iterable<string>): bigint {
    let v = 0n;
    for (const n of names) {
      const bit = this.#byName.get(n);
      if (bit === undefined) throw new EncodeError(`${this.name}: unknown flag ${n}`);
      v |= bit;
    }
    return v;
  }
}

/** Names of enumerated values; unknown values print as numbers. */
export class ValueNames {
  /** Table name, e.g. `"fuse_opcode"`. */
  readonly name: string;
  #byValue: Map<number, string>;
  #byName: Map<string, number>;

  /** Builds the table from name → value. */
  constructor(name: string, values: Readonly<Record<string, number>>) {
    this.name = name;
    this.#byName = new Map(Object.entries(values));
    this.#byValue = new Map(Object.entries(values).map(([n, v]) => [v, n]));
  }

  /** Name of `value`, or undefined when unknown. */
  nameOf(value: number): string | undefined {
    return this.#byValue.get(value);
  }

  /** Value of `name`, or undefined when unknown. */
  valueOf(name: string): number | undefined {
    return this.#byName.get(name);
  }

  /** Name of `value`, or its number when unknown. */
  format(value: number | bigint): string {
    return this.#byValue.get(Number(value)) ?? String(value);
  }

  /** All [name, value] pairs. */
  entries(): IterableIterator<[string, number]> {
    return this.#byName.entries();
  }
}

/** Formats a field value for people, per its {@link Display}. */
export function formatField(f: FieldSpec, value: FieldValue): string {
  if (value instanceof Uint8Array) return hexBytes(value);
  const d = f.display ?? { kind: "dec" };
  switch (d.kind) {
    case "dec":
      return String(value);
    case "hex":
      return `0x${value.toString(16)}`;
    case "flags":
      return d.set.format(value);
    case "enum":
      return d.set.format(value);
    case "custom":
      return d.format(value);
  }
}

/** Lower-case hex of `bytes`, space-free. */
export function hexBytes(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
