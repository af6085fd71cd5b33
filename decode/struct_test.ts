import assert from "node:assert/strict";
import { BitNames, DecodeError, EncodeError, formatField, layout, ValueNames } from "./struct.ts";

const hdr = layout("demo", [
  { name: "len", type: "u32" },
  { name: "opcode", type: "u32", display: { kind: "enum", set: new ValueNames("ops", { A: 1 }) } },
  { name: "unique", type: "u64", display: { kind: "hex" } },
  { name: "error", type: "i32" },
  { name: "tag", type: { bytes: 4 } },
  { name: "flags2", type: "u32", since: 36 },
]);

Deno.test("layout: sizes per version, round trip, versioned fields default to zero", () => {
  assert.equal(hdr.size(), 28);
  assert.equal(hdr.size(35), 24);
  assert.equal(hdr.offsets.get("unique"), 8);
  const v = {
    len: 28,
    opcode: 1,
    unique: 0xdead_beef_0000_0001n,
    error: -2,
    tag: new Uint8Array([1, 2]),
    flags2: 7,
  };
  const bytes = hdr.toBytes(v);
  const back = hdr.decode(new DataView(bytes.buffer), 0);
  assert.deepEqual(back, { ...v, tag: new Uint8Array([1, 2, 0, 0]) });
  const old = hdr.decode(new DataView(bytes.buffer), 0, 35);
  assert.equal(old.flags2, 0);
  assert.equal(hdr.toBytes(v, 35).byteLength, 24);
});

Deno.test("layout: truncation is a DecodeError with the offset; bad values are EncodeErrors", () => {
  const short = new DataView(new ArrayBuffer(30));
  assert.throws(() => hdr.decode(short, 4), (e: unknown) => {
    assert.ok(e instanceof DecodeError);
    assert.equal(e.offset, 4);
    assert.match(e.message, /demo: truncated, needs 28 bytes, 26 available/);
    return true;
  });
  assert.throws(() => hdr.toBytes({ len: -1 }), EncodeError);
  assert.throws(() => hdr.toBytes({ len: 2 ** 32 }), EncodeError);
  assert.throws(() => hdr.toBytes({ unique: -1n }), EncodeError);
  assert.throws(() => hdr.toBytes({ tag: new Uint8Array(5) }), EncodeError);
  assert.throws(() => hdr.toBytes({ len: 1.5 }), EncodeError);
});

Deno.test("bit and value names format, parse and keep unknown bits", () => {
  const flags = new BitNames("f", { A: 1, B: 4, HIGH: 1n << 40n });
  assert.equal(flags.format(0), "0");
  assert.equal(flags.format(5), "A|B");
  assert.equal(flags.format((1n << 40n) | 0x13n), "A|HIGH|0x12");
  assert.equal(flags.parse(["A", "HIGH"]), (1n << 40n) | 1n);
  assert.throws(() => flags.parse(["C"]), EncodeError);
  const ops = new ValueNames("ops", { LOOKUP: 1 });
  assert.equal(ops.format(1), "LOOKUP");
  assert.equal(ops.format(99), "99");
  assert.equal(ops.valueOf("LOOKUP"), 1);
  assert.equal(formatField(hdr.fields[1]!, 1), "A");
  assert.equal(formatField(hdr.fields[2]!, 255n), "0xff");
});
