import assert from "node:assert/strict";
import { DecodeError, EncodeError } from "./struct.ts";
import {
  BYTE_ORDER_MAGIC,
  decodeBlock,
  decodeBlocks,
  decodeCapture,
  decodeNote,
  decodeRecord,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeNote,
  encodeRecord,
  encodeSectionHeader,
  type EnhancedPacket,
  EPB_LAYOUT,
  formatDirection,
  IDB_LAYOUT,
  LINKTYPE_USER0,
  MAX_PACKET_DATA,
  MAX_RECORD_BODY,
  NOTIFY_DIRECTION,
  packRequestAux,
  PCAPNG_BLOCK,
  PcapngDecodeError,
  type PcapngErrorReason,
  RECORD_FLAGS,
  RECORD_HEADER_SIZE,
  RECORD_KIND,
  RECORD_LAYOUT,
  RECORD_MAGIC,
  RecordEncoder,
  RecordFlag,
  type RecordInput,
  RecordKind,
  SHB_LAYOUT,
  timestampToNs,
  TSRESOL_NANOSECONDS,
  unpackRequestAux,
  VHOST_USER_DIRECTION,
} from "./pcapng.ts";
import {
  assertRecord,
  buildCapture,
  concat,
  SAMPLE_EPOCH_NS,
  sampleHeader,
  sampleRecords,
} from "./_pcapng_samples.ts";

function reason(e: unknown): PcapngErrorReason {
  assert.ok(e instanceof PcapngDecodeError, `not a PcapngDecodeError: ${String(e)}`);
  assert.ok(e instanceof DecodeError);
  return e.reason;
}

/** A minimal big-endian Section Header Block, as a big-endian machine writes it. */
function bigEndianShb(): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAPNG_BLOCK.SHB, false);
  v.setUint32(4, 28, false);
  v.setUint32(8, BYTE_ORDER_MAGIC, false);
  v.setUint16(12, 1, false);
  v.setUint16(14, 0, false);
  v.setBigInt64(16, -1n, false);
  v.setUint32(24, 28, false);
  return b;
}

function block(type: number, body: Uint8Array): Uint8Array {
  const len = 12 + ((body.byteLength + 3) & ~3);
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, len, true);
  b.set(body, 8);
  v.setUint32(len - 4, len, true);
  return b;
}

Deno.test("record header: vfstrace_record layout is 24 bytes at the documented offsets", () => {
  assert.equal(RECORD_LAYOUT.name, "vfstrace_record");
  assert.equal(RECORD_HEADER_SIZE, 24);
  assert.deepEqual(Object.fromEntries(RECORD_LAYOUT.offsets), {
    magic: 0,
    version: 2,
    kind: 3,
    flags: 4,
    queue: 6,
    fd_count: 8,
    direction: 10,
    reserved: 11,
    seq: 12,
    aux: 16,
  });
  assert.equal(EPB_LAYOUT.size(), 28);
  assert.equal(SHB_LAYOUT.size(), 24);
  assert.equal(IDB_LAYOUT.size(), 16);
  // The hot-path encoder and the layout agree byte for byte.
  const epb = encodeRecord({
    kind: RecordKind.FUSE_REPLY,
    flags: RecordFlag.PAIRED,
    queue: 3,
    fdCount: 2,
    direction: 1,
    seq: 0xdeadbeef,
    aux: 0x0102030405060708n,
    body: Uint8Array.of(9, 9),
  });
  const h = RECORD_LAYOUT.decode(new DataView(epb.buffer), EPB_LAYOUT.size());
  assert.deepEqual(h, {
    magic: RECORD_MAGIC,
    version: 1,
    kind: 3,
    flags: 4,
    queue: 3,
    fd_count: 2,
    direction: 1,
    reserved: 0,
    seq: 0xdeadbeef,
    aux: 0x0102030405060708n,
  });
  // "VF" in the u16, so the bytes on disk read "FV".
  assert.deepEqual([...epb.subarray(28, 30)], [0x46, 0x56]);
});

Deno.test("tables: kinds, flags and per-kind directions have one name each", () => {
  assert.deepEqual([...RECORD_KIND.entries()], [
    ["VHOST_USER", 1],
    ["FUSE_REQUEST", 2],
    ["FUSE_REPLY", 3],
    ["NOTE", 4],
    ["NOTIFY", 5],
  ]);
  assert.equal(RECORD_FLAGS.format(RecordFlag.TRUNCATED | RecordFlag.PAIRED), "TRUNCATED|PAIRED");
  assert.equal(RECORD_FLAGS.format(0x30), "0x30");
  assert.equal(VHOST_USER_DIRECTION.format(2), "BACKEND_CHANNEL_REQUEST");
  assert.equal(NOTIFY_DIRECTION.format(3), "CALL_TO_GUEST");
  assert.equal(formatDirection(RecordKind.VHOST_USER, 1), "BACKEND_TO_FRONTEND");
  assert.equal(formatDirection(RecordKind.NOTIFY, 0), "GUEST_KICK");
  assert.equal(formatDirection(RecordKind.FUSE_REQUEST, 0), "0");
  // The layout's display points at the same tables (the printer and dissector read them).
  const kindField = RECORD_LAYOUT.fields.find((f) => f.name === "kind");
  assert.deepEqual(kindField?.display, { kind: "enum", set: RECORD_KIND });
});

Deno.test("SHB and IDB: encoded with options, decoded back", () => {
  const shb = encodeSectionHeader({
    userAppl: "vfstrace 0.1.0",
    os: "Linux 6.1",
    hardware: "x86_64",
    comment: "héllo",
  });
  assert.equal(shb.byteLength % 4, 0);
  const s = decodeBlock(shb);
  assert.equal(s.type, "shb");
  if (s.type !== "shb") return;
  assert.equal(s.length, shb.byteLength);
  assert.equal(s.majorVersion, 1);
  assert.equal(s.minorVersion, 0);
  assert.equal(s.sectionLength, -1n);
  assert.equal(s.userAppl, "vfstrace 0.1.0");
  assert.equal(s.os, "Linux 6.1");
  assert.equal(s.hardware, "x86_64");
  assert.equal(s.comment, "héllo");
  const fixed = SHB_LAYOUT.decode(new DataView(shb.buffer), 0);
  assert.equal(fixed.byte_order_magic, BYTE_ORDER_MAGIC);

  const idb = encodeInterfaceDescription({ description: "proxy on /run/vfs.sock" });
  const i = decodeBlock(idb);
  assert.equal(i.type, "idb");
  if (i.type !== "idb") return;
  assert.equal(i.linkType, LINKTYPE_USER0);
  assert.equal(i.snaplen, 0);
  assert.equal(i.name, "vfstrace");
  assert.equal(i.description, "proxy on /run/vfs.sock");
  assert.equal(i.tsresol, TSRESOL_NANOSECONDS);
  // Without options: tsresol defaults to microseconds as pcapng says.
  const bare = concat([block(PCAPNG_BLOCK.IDB, Uint8Array.of(147, 0, 0, 0, 0, 0, 0, 0))]);
  const b = decodeBlock(bare);
  assert.equal(b.type === "idb" && b.tsresol, 6);
});

Deno.test("EPB: a generic packet with a comment round-trips; unknown options are skipped", () => {
  const data = Uint8Array.of(1, 2, 3, 4, 5);
  const epb = encodeEnhancedPacket({
    timestamp: 0x1234_5678_9abc_def0n,
    data,
    originalLength: 9,
    comment: "c",
    interfaceId: 2,
  });
  const e = decodeBlock(epb);
  assert.equal(e.type, "epb");
  if (e.type !== "epb") return;
  assert.equal(e.interfaceId, 2);
  assert.equal(e.timestampHigh, 0x12345678);
  assert.equal(e.timestampLow, 0x9abcdef0);
  assert.equal(e.capturedLength, 5);
  assert.equal(e.originalLength, 9);
  assert.deepEqual(e.data, data);
  assert.equal(e.comment, "c");
  // Insert an unknown option (code 0x7777) before the comment: still read.
  const rec = encodeRecord({ kind: 4, body: Uint8Array.of(1), comment: "x" });
  const optStart = 28 + 28; // fixed part + padded 25-byte packet
  const unknown = Uint8Array.of(0x77, 0x77, 3, 0, 0xaa, 0xbb, 0xcc, 0);
  const patched = concat([rec.subarray(0, optStart), unknown, rec.subarray(optStart)]);
  const pv = new DataView(patched.buffer);
  pv.setUint32(4, patched.byteLength, true);
  pv.setUint32(patched.byteLength - 4, patched.byteLength, true);
  const p = decodeBlock(patched) as EnhancedPacket;
  assert.equal(decodeRecord(p).comment, "x");
});

Deno.test("records of every kind round-trip through encodeRecord and decodeRecord", () => {
  const records = sampleRecords(400, 7);
  for (const r of records) {
    const epb = encodeRecord(r);
    assert.equal(epb.byteLength % 4, 0);
    const b = decodeBlock(epb);
    assert.equal(b.type, "epb");
    assertRecord(decodeRecord(b as EnhancedPacket), r);
  }
  const { bytes, starts } = buildCapture(records);
  const d = decodeCapture(bytes);
  assert.equal(d.error, undefined);
  assert.equal(d.truncatedAt, undefined);
  assert.equal(d.records.length, records.length);
  d.records.forEach((got, i) => {
    assertRecord(got, records[i]!);
    assert.equal(got.offset, starts[i]);
  });
  assert.equal(d.section?.userAppl, "vfstrace test");
  const kinds = new Set(d.records.map((r) => r.kind));
  assert.deepEqual([...kinds].sort(), [1, 2, 3, 4, 5]);
});

Deno.test("body segments, limits, truncation flag and original length", () => {
  const a = Uint8Array.of(1, 2, 3);
  const b = Uint8Array.of(4, 5);
  const whole = encodeRecord({ kind: 2, body: concat([a, b]), seq: 1 });
  assert.deepEqual(encodeRecord({ kind: 2, body: [a, b], seq: 1 }), whole);
  const cut = decodeRecord(
    decodeBlock(encodeRecord({ kind: 2, body: [a, b] }, 4)) as EnhancedPacket,
  );
  assert.deepEqual([...cut.body], [1, 2, 3, 4]);
  assert.equal(cut.originalLength, 5);
  assert.equal(cut.flags, RecordFlag.TRUNCATED);
  const pre = decodeRecord(
    decodeBlock(encodeRecord({ kind: 3, body: a, originalLength: 4096 })) as EnhancedPacket,
  );
  assert.equal(pre.originalLength, 4096);
  assert.equal(pre.flags, RecordFlag.TRUNCATED);
  // Nothing exceeds Wireshark's packet cap, whatever limit is asked for.
  const big = new Uint8Array(MAX_PACKET_DATA * 2);
  const e = decodeBlock(encodeRecord({ kind: 2, body: big }, Infinity)) as EnhancedPacket;
  assert.equal(e.capturedLength, MAX_PACKET_DATA);
  assert.equal(e.originalLength, MAX_PACKET_DATA * 2 + RECORD_HEADER_SIZE);
  assert.equal(decodeRecord(e).body.byteLength, MAX_RECORD_BODY);
  // A number aux and a bigint aux encode the same.
  assert.deepEqual(
    encodeRecord({ kind: 5, aux: 2 ** 40 + 5 }),
    encodeRecord({ kind: 5, aux: 2n ** 40n + 5n }),
  );
  // Padding bytes are zero even when the encoder's target held garbage.
  const enc = new RecordEncoder();
  const len = enc.measure({ kind: 1, body: Uint8Array.of(7) });
  const target = new Uint8Array(len).fill(0xff);
  enc.write(target, new DataView(target.buffer), 0, 0, 0, 0);
  assert.deepEqual(target, encodeRecord({ kind: 1, body: Uint8Array.of(7) }));
});

Deno.test("encoding rejects values that do not fit with EncodeError", () => {
  const bad: RecordInput[] = [
    { kind: 256 },
    { kind: -1 },
    { kind: 1, flags: 0x10000 },
    { kind: 1, queue: 0x10000 },
    { kind: 1, fdCount: 1.5 },
    { kind: 1, direction: 256 },
    { kind: 1, aux: -1n },
    { kind: 1, aux: 1n << 64n },
    { kind: 1, aux: 2 ** 53 },
    { kind: 1, aux: -1 },
    { kind: 1, body: Uint8Array.of(1, 2), originalLength: 1 },
    { kind: 1, seq: 2 ** 32 },
    { kind: 1, timestampNs: -1n },
    { kind: 1, comment: "x".repeat(65536) },
  ];
  for (const r of bad) assert.throws(() => encodeRecord(r), EncodeError, JSON.stringify(r, bigint));
  assert.throws(
    () => encodeEnhancedPacket({ timestamp: 0n, data: Uint8Array.of(1), originalLength: 0 }),
    EncodeError,
  );
  assert.throws(() => encodeInterfaceDescription({ tsresol: 300 }), EncodeError);
});

function bigint(_k: string, v: unknown) {
  return typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? [...v] : v;
}

Deno.test("FUSE_REQUEST aux packs head, descriptor count and writable bytes", () => {
  const aux = packRequestAux(0x1234, 3, 0x0012_3456);
  assert.equal(aux, 0x0012_3456_0003_1234n);
  assert.deepEqual(unpackRequestAux(aux), { head: 0x1234, descriptors: 3, writable: 0x123456 });
  assert.deepEqual(unpackRequestAux(packRequestAux(0xffff, 0xffff, 0xffffffff)), {
    head: 0xffff,
    descriptors: 0xffff,
    writable: 0xffffffff,
  });
  assert.throws(() => packRequestAux(0x10000, 0, 0), EncodeError);
  assert.throws(() => packRequestAux(0, 0, 2 ** 32), EncodeError);
});

Deno.test("NOTE bodies are JSON objects with a type", () => {
  const note = { type: "malformed_chain", queue: 1, head: 17, reason: "loop in descriptors" };
  assert.deepEqual(decodeNote(encodeNote(note)), note);
  assert.throws(() => encodeNote({ type: "" }), EncodeError);
  const enc = (s: string) => new TextEncoder().encode(s);
  for (
    const body of [enc("{"), enc("[1]"), enc('{"x":1}'), enc('{"type":3}'), Uint8Array.of(0xff)]
  ) {
    assert.throws(() => decodeNote(body), DecodeError);
  }
});

Deno.test("timestamps convert from any if_tsresol to nanoseconds", () => {
  const hi = 0x18eb_f2a1;
  const lo = 0x1234_5678;
  const ticks = (BigInt(hi) << 32n) | BigInt(lo);
  assert.equal(timestampToNs(hi, lo, 9), ticks);
  assert.equal(timestampToNs(hi, lo, 6), ticks * 1000n);
  assert.equal(timestampToNs(0, 5, 0), 5_000_000_000n);
  assert.equal(timestampToNs(0, 123456, 12), 123n);
  assert.equal(timestampToNs(0, 3 << 20, 0x80 | 20), 3_000_000_000n);
  // Nanosecond values above 2^53 survive exactly.
  const ts = SAMPLE_EPOCH_NS + 1n;
  const e = decodeBlock(encodeRecord({ kind: 4, timestampNs: ts })) as EnhancedPacket;
  assert.equal(decodeRecord(e).timestampNs, ts);
});

Deno.test("block errors: each names its reason and offset", () => {
  const header = sampleHeader();
  const rec = encodeRecord({ kind: 1, body: new Uint8Array(12) });
  const cases: [string, Uint8Array, PcapngErrorReason, number][] = [];
  cases.push([
    "not pcapng",
    new TextEncoder().encode("hello world, not a capture"),
    "not-pcapng",
    0,
  ]);
  cases.push(["big-endian", concat([bigEndianShb(), rec]), "big-endian", 8]);
  const badMagic = header.slice();
  new DataView(badMagic.buffer).setUint32(8, 0x11223344, true);
  cases.push(["bad magic", badMagic, "bad-magic", 8]);
  const v2 = header.slice();
  new DataView(v2.buffer).setUint16(12, 2, true);
  cases.push(["pcapng 2.0", v2, "bad-version", 12]);
  const type0 = concat([header, new Uint8Array(16)]);
  cases.push(["block type 0", type0, "bad-type", header.byteLength]);
  const odd = concat([header, rec]);
  new DataView(odd.buffer).setUint32(header.byteLength + 4, rec.byteLength + 2, true);
  cases.push(["length not a multiple of 4", odd, "bad-length", header.byteLength + 4]);
  const small = concat([header, rec]);
  new DataView(small.buffer).setUint32(header.byteLength + 4, 8, true);
  cases.push(["length below minimum", small, "bad-length", header.byteLength + 4]);
  const trailer = concat([header, rec]);
  new DataView(trailer.buffer).setUint32(trailer.byteLength - 4, 4, true);
  cases.push(["trailing length disagrees", trailer, "bad-length", header.byteLength]);
  const huge = concat([header, rec]);
  new DataView(huge.buffer).setUint32(header.byteLength + 4, 0x7fff_fff0, true);
  cases.push(["length above the limit", huge, "too-long", header.byteLength + 4]);
  const capBig = concat([header, rec]);
  new DataView(capBig.buffer).setUint32(header.byteLength + 20, rec.byteLength, true);
  cases.push(["captured length past the block", capBig, "bad-length", header.byteLength + 20]);
  const noIdb = concat([encodeSectionHeader(), rec]);
  cases.push(["EPB without IDB", noIdb, "bad-interface", encodeSectionHeader().byteLength + 8]);
  const notRecord = concat([
    header,
    encodeEnhancedPacket({ timestamp: 0n, data: new Uint8Array(30) }),
  ]);
  cases.push([
    "USER0 packet that is not a record",
    notRecord,
    "bad-record",
    header.byteLength + 28,
  ]);
  const short = concat([header, encodeEnhancedPacket({ timestamp: 0n, data: new Uint8Array(5) })]);
  cases.push([
    "packet shorter than the record header",
    short,
    "bad-record",
    header.byteLength + 28,
  ]);
  const ver = concat([header, rec]);
  ver[header.byteLength + 28 + 2] = 2;
  cases.push(["record version 2", ver, "bad-record", header.byteLength + 30]);
  const opt = concat([header, encodeRecord({ kind: 1, comment: "abcd" })]);
  new DataView(opt.buffer).setUint16(header.byteLength + 28 + 24 + 2, 200, true);
  cases.push(["option past its block", opt, "bad-options", header.byteLength + 52]);
  const origSmall = concat([header, rec]);
  new DataView(origSmall.buffer).setUint32(header.byteLength + 24, 3, true);
  cases.push(["original < captured", origSmall, "bad-record", header.byteLength + 24]);

  for (const [name, bytes, want, offset] of cases) {
    const d = decodeCapture(bytes);
    assert.equal(d.error?.reason, want, `${name}: ${d.error?.message}`);
    assert.equal(d.error?.offset, offset, `${name}: ${d.error?.message}`);
    assert.equal(d.truncatedAt, undefined, name);
    const blocks = decodeBlocks(bytes);
    if (want !== "bad-interface" && want !== "bad-record") {
      assert.equal(blocks.error?.reason, want, `${name} (decodeBlocks)`);
    }
  }
  const be = decodeCapture(concat([bigEndianShb(), rec]), { recover: true });
  assert.match(be.error?.message ?? "", /big-endian.*only little-endian/);
});

Deno.test("unknown blocks, foreign link types and new sections are read through", () => {
  const recs = sampleRecords(6, 3);
  const custom = block(PCAPNG_BLOCK.CB, Uint8Array.of(1, 2, 3, 4, 5));
  const isb = block(PCAPNG_BLOCK.ISB, new Uint8Array(12));
  const ether = encodeInterfaceDescription({ linkType: 1, name: "eth0" });
  const etherPacket = encodeEnhancedPacket({
    interfaceId: 1,
    timestamp: 1n,
    data: new Uint8Array(60),
  });
  const second = buildCapture(recs.slice(3));
  const bytes = concat([
    sampleHeader(),
    ether,
    encodeRecord(recs[0]!),
    custom,
    etherPacket,
    encodeRecord(recs[1]!),
    isb,
    encodeRecord(recs[2]!),
    second.bytes,
  ]);
  const d = decodeCapture(bytes);
  assert.equal(d.error, undefined);
  assert.equal(d.skippedBlocks, 3);
  assert.equal(d.records.length, 6);
  d.records.forEach((r, i) => assertRecord(r, recs[i]!));
  const blocks = decodeBlocks(bytes);
  assert.equal(blocks.error, undefined);
  assert.deepEqual(
    blocks.blocks.map((b) => b.type).filter((t) => t !== "epb"),
    ["shb", "idb", "idb", "unknown", "unknown", "shb", "idb"],
  );
});

Deno.test("a capture cut at every byte of its last block reads back to the last whole record", () => {
  const records = sampleRecords(12, 11);
  records.push({ kind: 3, seq: 12, body: new Uint8Array(301).fill(7), comment: "last" });
  const { bytes, starts } = buildCapture(records);
  const last = starts[starts.length - 1]!;
  for (let cut = last; cut < bytes.byteLength; cut++) {
    const d = decodeCapture(bytes.subarray(0, cut));
    assert.equal(d.error, undefined, `cut ${cut}: ${d.error?.message}`);
    assert.equal(d.records.length, records.length - 1, `cut ${cut}`);
    assert.equal(d.truncatedAt, cut === last ? undefined : last, `cut ${cut}`);
    const blocks = decodeBlocks(bytes.subarray(0, cut));
    assert.equal(blocks.error?.reason, cut === last ? undefined : "truncated");
  }
  assert.equal(decodeCapture(bytes).records.length, records.length);
  // Any prefix of the file header is a capture cut early, not an error.
  const header = sampleHeader();
  for (let cut = 0; cut < header.byteLength; cut++) {
    const d = decodeCapture(bytes.subarray(0, cut));
    assert.equal(d.error, undefined, `header cut ${cut}: ${d.error?.message}`);
    assert.equal(d.records.length, 0);
  }
});

Deno.test("decodeBlock reports truncation for a block longer than the bytes", () => {
  const rec = encodeRecord({ kind: 1, body: new Uint8Array(40) });
  for (const cut of [0, 3, 8, rec.byteLength - 1]) {
    assert.throws(() => decodeBlock(rec.subarray(0, cut)), (e) => reason(e) === "truncated");
  }
});

Deno.test("recover: garbage in the middle is skipped, later records are kept", () => {
  const records = sampleRecords(40, 5);
  const { bytes, starts } = buildCapture(records);
  const garbage = new Uint8Array(37).map((_, i) => (i * 151 + 7) & 0xff);
  const at = starts[10]!;
  const dirty = concat([bytes.subarray(0, at), garbage, bytes.subarray(at)]);
  const strict = decodeCapture(dirty);
  assert.ok(strict.error instanceof PcapngDecodeError);
  assert.equal(strict.error.offset >= at, true);
  assert.ok(strict.error.offset < at + 8, `error at ${strict.error.offset}`);
  assert.equal(strict.records.length, 10);
  const rec = decodeCapture(dirty, { recover: true });
  assert.equal(rec.error, undefined);
  assert.equal(rec.records.length, 40);
  rec.records.forEach((r, i) => assertRecord(r, records[i]!));
  assert.equal(rec.recoveries.length, 1);
  assert.equal(rec.recoveries[0]!.offset, at);
  assert.equal(rec.recoveries[0]!.resumedAt, at + garbage.byteLength);

  // Overwrite the middle of block 20 (its framing survives: content error, one block lost).
  const hit = bytes.slice();
  hit.fill(0xee, starts[20]! + 28, starts[20]! + 30); // record magic
  const r2 = decodeCapture(hit, { recover: true });
  assert.equal(r2.records.length, 39);
  assert.deepEqual(r2.recoveries.map((x) => x.reason), ["bad-record"]);
  // Smash block 25's length: framing lost, resynchronised at block 26.
  const smashed = bytes.slice();
  new DataView(smashed.buffer).setUint32(starts[25]! + 4, 0x99, true);
  const r3 = decodeCapture(smashed, { recover: true });
  assert.equal(r3.records.length, 39);
  assert.deepEqual(r3.recoveries.map((x) => [x.offset, x.resumedAt]), [[starts[25], starts[26]]]);
  // Garbage to the end of file: everything before is kept.
  const tail = concat([bytes, new Uint8Array(1000).fill(0x42)]);
  const r4 = decodeCapture(tail, { recover: true });
  assert.equal(r4.records.length, 40);
  assert.equal(r4.recoveries[0]!.resumedAt, tail.byteLength);
});

Deno.test("recover: a lost file header still yields the records after it", () => {
  const records = sampleRecords(10, 9);
  const { bytes } = buildCapture(records);
  const broken = bytes.slice();
  broken.fill(0, 0, 64); // SHB and part of the IDB
  assert.equal(decodeCapture(broken).error?.reason, "not-pcapng");
  const d = decodeCapture(broken, { recover: true });
  assert.equal(d.records.length, 10);
  d.records.forEach((r, i) => assertRecord(r, records[i]!));
});
