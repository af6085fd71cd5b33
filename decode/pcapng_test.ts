import assert from "node:assert/strict";
import { DecodeError, EncodeError } from "./struct.ts";
import {
  BYTE_ORDER_MAGIC,
  decodeBlock,
  decodeBlocks,
  decodeCapture,
  type DecodedCapture,
  decodeNote,
  decodeRecord,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeNote,
  encodeRecord,
  encodeSectionHeader,
  encodeStreamInterface,
  type EnhancedPacket,
  EPB_LAYOUT,
  EPB_RESIDENCE_OFFSET,
  formatDirection,
  HEAD_NONE,
  IDB_LAYOUT,
  LINKTYPE_USER0,
  MAX_CHAINED_BODY,
  MAX_PACKET_DATA,
  MAX_RECORD_BODY,
  NOTIFY_DIRECTION,
  packRequestAux,
  PCAPNG_BLOCK,
  PcapngChainError,
  PcapngDecodeError,
  type PcapngErrorReason,
  PcapngParser,
  PcapngRecordVersionError,
  QUEUE_STREAM_BASE,
  RECORD_FLAGS,
  RECORD_HEADER_SIZE,
  RECORD_KIND,
  RECORD_LAYOUT,
  RECORD_MAGIC,
  RECORD_VERSION,
  RecordEncoder,
  RecordFlag,
  type RecordInput,
  RecordKind,
  recordStream,
  RESIDENCE_MAX,
  residenceField,
  SHB_LAYOUT,
  Stream,
  STREAM_NAMES,
  STREAM_OF_CHAIN,
  streamDescription,
  streamName,
  streamOfName,
  streamQueue,
  timestampToNs,
  TSRESOL_NANOSECONDS,
  unpackRequestAux,
  VHOST_USER_DIRECTION,
} from "./pcapng.ts";
import {
  assertRecord,
  bigWrite,
  bodyOf,
  buildCapture,
  concat,
  firstDifference,
  miniChain,
  Rng,
  SAMPLE_EPOCH_NS,
  sampleHeader,
  sampleRecords,
  sampleWithChains,
  versionOneCapture,
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

Deno.test("record header: vfstrace_record v2 is 32 bytes at the documented offsets", () => {
  assert.equal(RECORD_LAYOUT.name, "vfstrace_record");
  assert.equal(RECORD_VERSION, 2);
  assert.equal(RECORD_HEADER_SIZE, 32);
  assert.deepEqual(Object.fromEntries(RECORD_LAYOUT.offsets), {
    magic: 0,
    version: 2,
    kind: 3,
    flags: 4,
    queue: 6,
    fd_count: 8,
    direction: 10,
    reserved: 11,
    head: 12,
    reserved2: 14,
    seq: 16,
    residence_ns: 20,
    aux: 24,
  });
  // aux is 8-byte aligned within the packet data.
  assert.equal(RECORD_LAYOUT.offsets.get("aux")! % 8, 0);
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
    head: 0x0bad,
    seq: 0xdeadbeef,
    residenceNs: 0x1234_5678,
    aux: 0x0102030405060708n,
    body: Uint8Array.of(9, 9),
  });
  const h = RECORD_LAYOUT.decode(new DataView(epb.buffer), EPB_LAYOUT.size());
  assert.deepEqual(h, {
    magic: RECORD_MAGIC,
    version: 2,
    kind: 3,
    flags: 4,
    queue: 3,
    fd_count: 2,
    direction: 1,
    reserved: 0,
    head: 0x0bad,
    reserved2: 0,
    seq: 0xdeadbeef,
    residence_ns: 0x1234_5678,
    aux: 0x0102030405060708n,
  });
  assert.equal(
    new DataView(epb.buffer).getUint32(EPB_RESIDENCE_OFFSET, true),
    0x1234_5678,
    "EPB_RESIDENCE_OFFSET points at residence_ns",
  );
  // Defaults: no head, residence not measured.
  const bare = decodeRecord(decodeBlock(encodeRecord({ kind: 4 })) as EnhancedPacket);
  assert.equal(bare.head, HEAD_NONE);
  assert.equal(bare.residenceNs, undefined);
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
    ["CONTINUATION", 6],
  ]);
  assert.equal(RECORD_FLAGS.format(RecordFlag.TRUNCATED | RecordFlag.PAIRED), "TRUNCATED|PAIRED");
  assert.equal(RECORD_FLAGS.format(RecordFlag.CONTINUED), "CONTINUED");
  assert.equal(RECORD_FLAGS.format(0x70), "CONTINUED|0x60");
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
  const optStart = 28 + 36; // fixed part + padded 33-byte packet
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
  // No packet exceeds Wireshark's cap, whatever limit is asked for: the first of the chain
  // is full and tells the whole size.
  const big = new Uint8Array(MAX_PACKET_DATA * 2);
  const e = decodeBlock(encodeRecord({ kind: 2, body: big }, Infinity)) as EnhancedPacket;
  assert.equal(e.capturedLength, MAX_PACKET_DATA);
  assert.equal(e.originalLength, MAX_PACKET_DATA * 2 + RECORD_HEADER_SIZE);
  assert.equal(decodeRecord(e).body.byteLength, MAX_RECORD_BODY);
  assert.equal(decodeRecord(e).flags, RecordFlag.CONTINUED);
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
    // A chain part given as is must fit one packet.
    { kind: RecordKind.CONTINUATION, body: new Uint8Array(MAX_RECORD_BODY + 1) },
    { kind: 2, flags: RecordFlag.CONTINUED, body: new Uint8Array(MAX_RECORD_BODY + 1) },
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

Deno.test("FUSE_REQUEST aux packs the descriptor count and writable bytes in u32 halves", () => {
  const aux = packRequestAux(3, 0x0012_3456);
  assert.equal(aux, 0x0012_3456_0000_0003n);
  assert.deepEqual(unpackRequestAux(aux), { descriptors: 3, writable: 0x123456 });
  assert.deepEqual(unpackRequestAux(packRequestAux(0xffff, 0xffffffff)), {
    descriptors: 0xffff,
    writable: 0xffffffff,
  });
  assert.throws(() => packRequestAux(0x10000, 0), EncodeError);
  assert.throws(() => packRequestAux(0, 2 ** 32), EncodeError);
});

Deno.test("residence_ns: measured values saturate at u32, a measured 0 is 1, absent is 0", () => {
  assert.equal(residenceField(0n), 1);
  assert.equal(residenceField(-5n), 1);
  assert.equal(residenceField(1234n), 1234);
  assert.equal(residenceField(0xffffffffn), RESIDENCE_MAX);
  assert.equal(residenceField(1n << 40n), RESIDENCE_MAX);
  assert.equal(residenceField(2 ** 40), RESIDENCE_MAX);
  assert.equal(residenceField(12.7), 12);
  const residence = (r: RecordInput) =>
    decodeRecord(decodeBlock(encodeRecord(r)) as EnhancedPacket).residenceNs;
  assert.equal(residence({ kind: 2 }), undefined);
  assert.equal(residence({ kind: 2, residenceNs: 0 }), 1);
  assert.equal(residence({ kind: 2, residenceNs: 77n }), 77);
  assert.equal(residence({ kind: 2, residenceNs: 10n ** 12n }), RESIDENCE_MAX);
  assert.throws(() => encodeRecord({ kind: 2, residenceNs: -1 }), EncodeError);
  assert.throws(() => encodeRecord({ kind: 2, residenceNs: 1.5 }), EncodeError);
  assert.throws(() => encodeRecord({ kind: 2, head: 0x10000 }), EncodeError);
  assert.throws(() => encodeRecord({ kind: 2, interfaceId: -1 }), EncodeError);
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
  ver[header.byteLength + 28 + 2] = 3;
  cases.push(["record version 3", ver, "bad-version", header.byteLength + 30]);
  // A version-1 packet with no body is 24 bytes: it says its version, not "too short".
  const v1 = new Uint8Array(24);
  new DataView(v1.buffer).setUint16(0, RECORD_MAGIC, true);
  v1[2] = 1;
  v1[3] = RecordKind.NOTIFY;
  const old = concat([header, encodeEnhancedPacket({ timestamp: 0n, data: v1 })]);
  cases.push(["record version 1", old, "bad-version", header.byteLength + 30]);
  const opt = concat([header, encodeRecord({ kind: 1, comment: "abcd" })]);
  new DataView(opt.buffer).setUint16(header.byteLength + 28 + 32 + 2, 200, true);
  cases.push(["option past its block", opt, "bad-options", header.byteLength + 60]);
  const origSmall = concat([header, rec]);
  new DataView(origSmall.buffer).setUint32(header.byteLength + 24, 3, true);
  cases.push(["original < captured", origSmall, "bad-record", header.byteLength + 24]);

  for (const [name, bytes, want, offset] of cases) {
    const d = decodeCapture(bytes);
    assert.equal(d.error?.reason, want, `${name}: ${d.error?.message}`);
    assert.equal(d.error?.offset, offset, `${name}: ${d.error?.message}`);
    assert.equal(d.truncatedAt, undefined, name);
    const blocks = decodeBlocks(bytes);
    if (want !== "bad-interface" && want !== "bad-record" && !name.startsWith("record version")) {
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
    [
      "shb",
      "idb",
      "idb",
      "unknown",
      "unknown",
      ...decodeBlocks(second.bytes).blocks.map((b) => b.type).filter((t) => t !== "epb"),
    ],
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

// ---------------------------------------------------------------------------
// Chains: bodies longer than one packet

/** Whole capture of `inputs`, each encoded as the writer would (chains split). */
function capture(inputs: readonly RecordInput[]): { bytes: Uint8Array; starts: number[] } {
  return buildCapture(inputs);
}

/** The EPBs after the file header, with their decoded records. */
function packets(
  bytes: Uint8Array,
): { epb: EnhancedPacket; rec: ReturnType<typeof decodeRecord> }[] {
  const { blocks, error } = decodeBlocks(bytes);
  assert.equal(error, undefined);
  return blocks.filter((b): b is EnhancedPacket => b.type === "epb").map((epb) => ({
    epb,
    rec: decodeRecord(epb),
  }));
}

Deno.test("chain: a 1 MiB FUSE WRITE is split into packets of at most 262144 bytes, as documented", () => {
  const w = bigWrite(41); // fuse_in_header.len 1048656, like a Linux 6.1 guest's
  const body = bodyOf(w);
  assert.equal(body.byteLength, 1048656);
  assert.equal(new DataView(body.buffer).getUint32(0, true), 1048656);
  const bytes = encodeRecord(w);
  const ps = packets(concat([sampleHeader(), bytes]));
  const n = Math.ceil(body.byteLength / MAX_RECORD_BODY);
  assert.equal(ps.length, n);
  assert.equal(n, 5);
  let joined = 0;
  ps.forEach(({ epb, rec }, i) => {
    assert.ok(epb.capturedLength <= MAX_PACKET_DATA);
    assert.equal(rec.timestampNs, w.timestampNs, "one timestamp for the whole chain");
    assert.equal(rec.queue, 1);
    assert.equal(rec.direction, 0);
    assert.equal(rec.seq, 41 + i, "continuations take the next seqs");
    const last = i === n - 1;
    if (i === 0) {
      assert.equal(rec.kind, RecordKind.FUSE_REQUEST);
      assert.equal(rec.flags, RecordFlag.CONTINUED);
      assert.equal(rec.aux, BigInt(w.aux!));
      assert.equal(epb.capturedLength, MAX_PACKET_DATA);
      // Tools that ignore chains still see the true size.
      assert.equal(epb.originalLength, RECORD_HEADER_SIZE + body.byteLength);
      assert.equal(rec.comment, w.comment);
    } else {
      assert.equal(rec.kind, RecordKind.CONTINUATION);
      assert.equal(rec.flags, last ? 0 : RecordFlag.CONTINUED);
      assert.equal(rec.aux, 41n, "aux = seq of the first record");
      assert.equal(rec.fdCount, 0);
      assert.equal(epb.originalLength, epb.capturedLength, "a continuation is whole");
      assert.equal(rec.comment, undefined);
      if (!last) assert.equal(epb.capturedLength, MAX_PACKET_DATA);
    }
    assert.equal(firstDifference(rec.body, body.subarray(joined)), -1, `packet ${i}`);
    joined += rec.body.byteLength;
  });
  assert.equal(joined, body.byteLength);
});

Deno.test("chain: 1 MiB and 5 MiB bodies round-trip byte for byte; raw mode gives the packets", () => {
  for (const size of [1 << 20, 5 << 20]) {
    const records = [
      ...sampleRecords(5, 3),
      { ...bigWrite(5, size), seq: 5 },
      { kind: RecordKind.FUSE_REPLY, seq: 5 + Math.ceil((size + 80) / MAX_RECORD_BODY), queue: 1 },
    ];
    const { bytes, starts } = capture(records);
    const d = decodeCapture(bytes);
    assert.equal(d.error, undefined);
    assert.equal(d.truncatedAt, undefined);
    assert.equal(d.records.length, records.length);
    d.records.forEach((r, i) => {
      assertRecord(r, records[i]!);
      assert.equal(r.offset, starts[i]);
    });
    const big = d.records[5]!;
    assert.equal(big.continuations, Math.ceil((size + 80) / MAX_RECORD_BODY) - 1);
    assert.equal(big.originalLength, size + 80);
    // Seq accounting: the next record follows the chain's last continuation.
    assert.equal(d.records[6]!.seq, big.seq + big.continuations + 1);
    // A fresh array, not a view of the input.
    assert.notEqual(big.body.buffer, bytes.buffer);

    const raw = decodeCapture(bytes, { raw: true });
    assert.equal(raw.error, undefined);
    assert.equal(raw.records.length, records.length + big.continuations);
    const parts = raw.records.slice(5, 6 + big.continuations);
    assert.deepEqual(parts.map((r) => r.kind), [
      RecordKind.FUSE_REQUEST,
      ...Array(big.continuations).fill(RecordKind.CONTINUATION),
    ]);
    assert.ok(parts.every((r) => r.continuations === 0));
    assert.equal(parts[0]!.flags, RecordFlag.CONTINUED);
    assert.equal(parts[0]!.originalLength, size + 80);
    assert.equal(
      firstDifference(concat(parts.map((r) => r.body)), big.body),
      -1,
      "the packets are the body, in order",
    );
  }
});

Deno.test("chain: body sizes at packet boundaries, and bodies given as many odd segments", () => {
  const M = MAX_RECORD_BODY;
  for (const size of [M - 1, M, M + 1, 2 * M - 1, 2 * M, 2 * M + 1, 3 * M + 17]) {
    const rng = new Rng(size);
    const whole = rng.bytes(size);
    const segs: Uint8Array[] = [];
    for (let o = 0; o < size;) {
      const n = Math.min(size - o, 1 + rng.below(70_000));
      segs.push(whole.subarray(o, o + n));
      o += n;
    }
    const asOne = encodeRecord({ kind: 3, body: whole, seq: 9 });
    assert.deepEqual(encodeRecord({ kind: 3, body: segs, seq: 9 }), asOne, `size ${size}`);
    const d = decodeCapture(concat([sampleHeader(), asOne]));
    assert.equal(d.records.length, 1);
    assertRecord(d.records[0]!, { kind: 3, body: whole, seq: 9 });
    assert.equal(d.records[0]!.continuations, size <= M ? 0 : Math.ceil(size / M) - 1);
  }
});

Deno.test("chain: a limit (snap length) cuts the logical body; only the packets it needs are written", () => {
  const w = bigWrite(0);
  const size = bodyOf(w).byteLength;
  for (const limit of [40, 1000, MAX_RECORD_BODY, MAX_RECORD_BODY + 1, 300_000, size, size + 5]) {
    const bytes = encodeRecord(w, limit);
    const ps = packets(concat([sampleHeader(), bytes]));
    const kept = Math.min(limit, size);
    assert.equal(ps.length, Math.max(1, Math.ceil(kept / MAX_RECORD_BODY)), `limit ${limit}`);
    assert.equal(ps[0]!.epb.originalLength, RECORD_HEADER_SIZE + size);
    const got = decodeCapture(concat([sampleHeader(), bytes])).records;
    assert.equal(got.length, 1);
    assertRecord(got[0]!, w, limit);
    assert.equal(got[0]!.flags & RecordFlag.TRUNCATED, kept < size ? RecordFlag.TRUNCATED : 0);
  }
  // No chain holds more than MAX_CHAINED_BODY bytes (measured, not written: 64 MiB).
  const enc = new RecordEncoder();
  const len = enc.measure({ kind: 1, body: new Uint8Array(MAX_CHAINED_BODY + 100) });
  assert.equal(enc.capturedBodyLength, MAX_CHAINED_BODY);
  assert.equal(enc.blockCount, Math.ceil(MAX_CHAINED_BODY / MAX_RECORD_BODY));
  let sum = 0;
  for (let i = 0; i < enc.blockCount; i++) sum += enc.blockLength(i);
  assert.equal(len, sum);
  assert.throws(
    () => enc.writeBlock(1, new Uint8Array(len), new DataView(new ArrayBuffer(len)), 0, 0, 0, 0),
    /out of order/,
  );
});

Deno.test("chain: a capture cut inside a chain ends at the chain's first block (truncatedAt)", () => {
  const before = sampleRecords(6, 2);
  const w = { ...bigWrite(6), comment: "cut me" };
  const after = { kind: RecordKind.NOTE, seq: 11, body: encodeNote({ type: "stop" }) };
  const { bytes, starts } = capture([...before, w, after]);
  const chainAt = starts[6]!;
  const chainEnd = starts[7]!;
  // Every block boundary inside the chain, then random bytes.
  const cuts = new Set<number>();
  for (let p = chainAt; p < chainEnd; p += decodeBlock(bytes, p).length) cuts.add(p);
  assert.equal(cuts.size, 5);
  const rng = new Rng(606);
  for (let i = 0; i < 150; i++) cuts.add(chainAt + rng.below(chainEnd - chainAt));
  for (const cut of cuts) {
    const d = decodeCapture(bytes.subarray(0, cut));
    assert.equal(d.error, undefined, `cut ${cut}: ${d.error?.message}`);
    assert.equal(d.records.length, 6, `cut ${cut}`);
    assert.equal(d.truncatedAt, cut === chainAt ? undefined : chainAt, `cut ${cut}`);
    for (const recover of [true, false]) {
      const r = decodeCapture(bytes.subarray(0, cut), { recover });
      assert.equal(r.recoveries.length, 0);
      assert.equal(r.truncatedAt, d.truncatedAt);
    }
    // Raw mode sees the whole packets that are there.
    const raw = decodeCapture(bytes.subarray(0, cut), { raw: true });
    assert.equal(raw.error, undefined);
    assert.ok(raw.records.length >= 6);
  }
  const whole = decodeCapture(bytes.subarray(0, chainEnd));
  assert.equal(whole.truncatedAt, undefined);
  assert.equal(whole.records.length, 7);
});

/** A capture of `inputs` encoded packet by packet as given (chain parts raw). */
function rawCapture(inputs: readonly (RecordInput | Uint8Array)[]): {
  bytes: Uint8Array;
  starts: number[];
} {
  const parts = [sampleHeader()];
  const starts: number[] = [];
  let off = parts[0]!.byteLength;
  for (const r of inputs) {
    const b = r instanceof Uint8Array ? r : encodeRecord(r);
    starts.push(off);
    off += b.byteLength;
    parts.push(b);
  }
  return { bytes: concat(parts), starts };
}

Deno.test("chain: parts of any size reassemble; continuations need not be full packets", () => {
  const rng = new Rng(3);
  const c = miniChain(100, [10, 1, 300, 7], rng);
  const { bytes, starts } = rawCapture([{ kind: 4, seq: 99 }, ...c.parts, { kind: 4, seq: 104 }]);
  const d = decodeCapture(bytes);
  assert.equal(d.error, undefined);
  assert.equal(d.records.length, 3);
  assertRecord(d.records[1]!, c.logical, undefined, 3);
  assert.equal(d.records[1]!.offset, starts[1]);
  assert.equal(d.records[2]!.seq, d.records[1]!.seq + d.records[1]!.continuations + 1);
});

Deno.test("chain errors: orphans, mismatches and interruptions are bad-chain, or skipped with recover", () => {
  const rng = new Rng(12);
  const before: RecordInput = { kind: RecordKind.NOTE, seq: 1, body: encodeNote({ type: "a" }) };
  const after: RecordInput = { kind: RecordKind.NOTIFY, seq: 50, queue: 2 };
  const c = miniChain(10, [100, 100, 100], rng);
  const [p0, p1, p2] = c.parts as [RecordInput, RecordInput, RecordInput];
  const foreignIdb = encodeInterfaceDescription({ linkType: 1 });
  const foreignPacket = encodeEnhancedPacket({
    interfaceId: 1,
    timestamp: 1n,
    data: new Uint8Array(60),
  });
  const unknown = block(PCAPNG_BLOCK.CB, Uint8Array.of(1, 2, 3, 4));
  type Case = {
    name: string;
    inputs: (RecordInput | Uint8Array)[];
    /** Index in `inputs` of the block where the error shows. */
    at: number;
    /** Field offset within that block's packet data, when the error names a field. */
    field?: number;
    /** The recovered records' seqs. */
    kept: number[];
    /** Skipped stretches: [first input index, input index where reading resumed]. */
    skipped: [number, number][];
    match: RegExp;
  };
  const cases: Case[] = [
    {
      name: "orphan continuation",
      inputs: [before, p1, p2, after],
      at: 1,
      kept: [1, 50],
      skipped: [[1, 3]], // both orphans in one stretch
      match: /CONTINUATION record \(seq 11, of seq 10\) follows no record with CONTINUED/,
    },
    {
      name: "interrupted by another record",
      inputs: [before, p0, p1, after, p2],
      at: 3,
      kept: [1, 50],
      skipped: [[1, 3], [4, 5]], // the chain's head; the NOTIFY is kept; p2 is an orphan
      match: /seq 10 at offset \d+ has CONTINUED, but a NOTIFY record \(seq 50\) follows/,
    },
    {
      name: "interrupted by an unknown block",
      inputs: [foreignIdb, before, p0, unknown, p1, p2, after],
      at: 3,
      kept: [1, 50],
      skipped: [[2, 3], [4, 6]], // the head, then the tail after the block
      match: /but a CB block follows/,
    },
    {
      name: "interrupted by a packet of another link type",
      inputs: [foreignIdb, before, p0, foreignPacket, p1, p2, after],
      at: 3,
      kept: [1, 50],
      skipped: [[2, 3], [4, 6]],
      match: /but a packet on interface 1 \(link type 1\) follows/,
    },
    {
      name: "interrupted by a new section",
      inputs: [before, p0, encodeSectionHeader(), encodeInterfaceDescription(), after],
      at: 2,
      kept: [1, 50],
      skipped: [[1, 2]],
      match: /but a SHB block follows/,
    },
    {
      name: "aux names another record",
      inputs: [before, p0, { ...p1, aux: 9 }, p2, after],
      at: 2,
      field: 24,
      kept: [1, 50],
      skipped: [[1, 4]], // the rest of the chain folded in
      match: /\(seq 11\) continues seq 9: it does not continue the FUSE_REPLY record seq 10/,
    },
    {
      name: "seq out of order",
      inputs: [before, p0, p2, after],
      at: 2,
      field: 16,
      kept: [1, 50],
      skipped: [[1, 3]],
      match: /has seq 12, expected 11/,
    },
    {
      name: "another queue",
      inputs: [before, p0, { ...p1, queue: 7 }, p2, after],
      at: 2,
      field: 6,
      kept: [1, 50],
      skipped: [[1, 4]],
      match: /has queue 7 direction 0/,
    },
    {
      name: "another head",
      inputs: [before, p0, { ...p1, head: 4321 }, p2, after],
      at: 2,
      field: 12,
      kept: [1, 50],
      skipped: [[1, 4]],
      match: /\(seq 11\) has head 4321, not \d+/,
    },
    {
      name: "longer than its original length",
      inputs: [before, { ...p0, originalLength: 150 }, p1, p2, after],
      at: 2,
      kept: [1, 50],
      skipped: [[1, 4]],
      match: /reaches 200 body bytes, more than its original length 150/,
    },
  ];
  for (const k of cases) {
    const { bytes, starts } = rawCapture(k.inputs);
    const d = decodeCapture(bytes);
    assert.ok(d.error instanceof PcapngChainError, `${k.name}: ${d.error}`);
    assert.equal(d.error.reason, "bad-chain", k.name);
    assert.match(d.error.message, k.match, k.name);
    assert.equal(
      d.error.offset,
      starts[k.at]! + (k.field === undefined ? 0 : 28 + k.field),
      k.name,
    );
    assert.equal(d.truncatedAt, undefined, k.name);
    const r = decodeCapture(bytes, { recover: true });
    assert.equal(r.error, undefined, k.name);
    assert.deepEqual(r.records.map((x) => x.seq), k.kept, k.name);
    const at = (i: number) => starts[i] ?? bytes.byteLength;
    const want = k.skipped.map(([a, b]) => ({ offset: at(a), resumedAt: at(b) }));
    assert.deepEqual(
      r.recoveries.map((x) => ({ offset: x.offset, resumedAt: x.resumedAt })),
      want,
      k.name,
    );
    assert.ok(r.recoveries.every((x) => x.reason === "bad-chain"), k.name);
  }
});

Deno.test("chain errors: a chain longer than the reader's limit is bad-chain", () => {
  const { bytes, starts } = capture([bigWrite(0, 600_000), { kind: 4, seq: 3 }]);
  assert.equal(decodeCapture(bytes).records.length, 2);
  const d = decodeCapture(bytes, { maxBodyLength: 500_000 });
  assert.equal(d.error?.reason, "bad-chain");
  assert.match(
    d.error?.message ?? "",
    /reaches 524224 body bytes, more than the 500000-byte limit/,
  );
  const r = decodeCapture(bytes, { maxBodyLength: 500_000, recover: true });
  assert.deepEqual(r.records.map((x) => x.seq), [3]);
  // Reading resumes at the note's stream's IDB, right before the note.
  const idb = encodeStreamInterface(Stream.VFSTRACE).byteLength;
  assert.deepEqual(r.recoveries.map((x) => [x.offset, x.resumedAt]), [[
    starts[0],
    starts[1]! - idb,
  ]]);
});

Deno.test("chain recover: a lost first packet or a broken middle drops the chain as one stretch", () => {
  const w = bigWrite(1);
  const recs = [{ kind: 4, seq: 0 }, w, { kind: 4, seq: 6 }];
  const { bytes, starts } = capture(recs);
  const blocks: number[] = [];
  for (let p = starts[1]!; p < starts[2]!; p += decodeBlock(bytes, p).length) blocks.push(p);
  assert.equal(blocks.length, 5);
  // The first packet's record magic smashed: bad-record, then 4 orphans folded into it.
  const magic = bytes.slice();
  magic[starts[1]! + 28] = 0;
  const a = decodeCapture(magic, { recover: true });
  assert.deepEqual(a.records.map((x) => x.seq), [0, 6]);
  assert.deepEqual(
    a.recoveries.map((x) => [x.reason, x.offset, x.resumedAt]),
    [["bad-record", starts[1], starts[2]]],
  );
  // A middle packet's length smashed: framing lost inside the chain; the stretch starts at the
  // chain, and the continuations after the resync point are folded in.
  const len = bytes.slice();
  new DataView(len.buffer).setUint32(blocks[2]! + 4, 12345, true);
  const b = decodeCapture(len, { recover: true });
  assert.deepEqual(b.records.map((x) => x.seq), [0, 6]);
  assert.deepEqual(b.recoveries.map((x) => [x.offset, x.resumedAt]), [[starts[1], starts[2]]]);
  // Strictly: the first problem stops decoding, and the incomplete chain is not yielded.
  const strict = decodeCapture(len);
  assert.equal(strict.error?.reason, "bad-length");
  assert.deepEqual(strict.records.map((x) => x.seq), [0]);
});

Deno.test("chain: PcapngParser exposes the chain being assembled", () => {
  const rng = new Rng(8);
  const c = miniChain(0, [5, 6, 7], rng);
  const { bytes, starts } = rawCapture(c.parts);
  const parser = new PcapngParser();
  const view = new DataView(bytes.buffer);
  const out: (number | null)[] = [];
  let pos = 0;
  while (pos < bytes.byteLength) {
    const len = parser.frame(view, pos, bytes.byteLength, 0);
    const rec = parser.consume(bytes, view, pos, len, 0);
    out.push(rec === null ? null : rec.body.byteLength);
    if (pos === starts[1]) assert.equal(parser.pendingChain, starts[0]);
    pos += len;
  }
  assert.deepEqual(out, [null, null, null, null, 18]);
  assert.equal(parser.pendingChain, undefined);
  assert.equal(parser.abandonChain(), undefined);
});

Deno.test("chain: sample captures with chains read the same whole and through any prefix", () => {
  const { packets: inputs, logical, firstPacket } = sampleWithChains(200, 4);
  const { bytes, starts } = rawCapture(inputs);
  const d = decodeCapture(bytes);
  assert.equal(d.error, undefined);
  assert.equal(d.records.length, logical.length);
  d.records.forEach((r, i) => {
    const parts = (firstPacket[i + 1] ?? inputs.length) - firstPacket[i]!;
    assertRecord(r, logical[i]!, undefined, parts - 1);
    assert.equal(r.offset, starts[firstPacket[i]!]);
  });
  // Cut at every block boundary: the records before, and truncatedAt at an open chain.
  const chainOf = new Map<number, number>();
  firstPacket.forEach((p, i) => {
    for (let k = p; k < (firstPacket[i + 1] ?? inputs.length); k++) chainOf.set(k, i);
  });
  starts.forEach((cut, k) => {
    const got = decodeCapture(bytes.subarray(0, cut));
    const i = chainOf.get(k)!;
    const inChain = firstPacket[i] !== k;
    assert.equal(got.records.length, i, `cut at packet ${k}`);
    assert.equal(
      got.truncatedAt,
      inChain ? starts[firstPacket[i]!] : undefined,
      `cut at packet ${k}`,
    );
  });
});

Deno.test("streams: one table of names, virtqueues by rule, every record kind on its stream", () => {
  assert.deepEqual([...STREAM_NAMES.entries()], [
    ["vfstrace", Stream.VFSTRACE],
    ["vhost-user.frontend", Stream.VHOST_USER_FRONTEND],
    ["vhost-user.backend", Stream.VHOST_USER_BACKEND],
    ["backend-channel", Stream.BACKEND_CHANNEL],
  ]);
  assert.equal(streamName(QUEUE_STREAM_BASE), "hiprio");
  assert.equal(streamName(QUEUE_STREAM_BASE + 1), "request.0");
  assert.equal(streamName(QUEUE_STREAM_BASE + 17), "request.16");
  for (const s of [0, 1, 2, 3, QUEUE_STREAM_BASE, QUEUE_STREAM_BASE + 1, QUEUE_STREAM_BASE + 999]) {
    assert.equal(streamOfName(streamName(s)), s, streamName(s));
    assert.ok(streamDescription(s).length > 10);
  }
  for (
    const bad of ["", "request.01", "requests.0", "request.-1", "request.", "hiprio.0", "eth0"]
  ) {
    assert.equal(streamOfName(bad), undefined, bad);
  }
  assert.equal(streamQueue(QUEUE_STREAM_BASE + 2), 2);
  assert.equal(streamQueue(Stream.BACKEND_CHANNEL), undefined);
  assert.match(streamDescription(QUEUE_STREAM_BASE + 1), /virtqueue 1 \(request\.0\)/);
  const V = VHOST_USER_DIRECTION;
  const cases: [number, number, number, number][] = [
    [RecordKind.VHOST_USER, V.valueOf("FRONTEND_TO_BACKEND")!, 0xffff, Stream.VHOST_USER_FRONTEND],
    [RecordKind.VHOST_USER, V.valueOf("BACKEND_TO_FRONTEND")!, 0xffff, Stream.VHOST_USER_BACKEND],
    [RecordKind.VHOST_USER, V.valueOf("BACKEND_CHANNEL_REQUEST")!, 0xffff, Stream.BACKEND_CHANNEL],
    [RecordKind.VHOST_USER, V.valueOf("BACKEND_CHANNEL_REPLY")!, 0xffff, Stream.BACKEND_CHANNEL],
    [RecordKind.VHOST_USER, 9, 0xffff, Stream.VFSTRACE],
    [RecordKind.FUSE_REQUEST, 0, 0, QUEUE_STREAM_BASE],
    [RecordKind.FUSE_REPLY, 0, 3, QUEUE_STREAM_BASE + 3],
    [RecordKind.NOTIFY, 2, 1, QUEUE_STREAM_BASE + 1],
    [RecordKind.NOTIFY, 2, 0xffff, Stream.VFSTRACE],
    [RecordKind.NOTE, 0, 0xffff, Stream.VFSTRACE],
    [RecordKind.CONTINUATION, 0, 1, STREAM_OF_CHAIN],
    [77, 0, 1, Stream.VFSTRACE],
  ];
  for (const [kind, dir, queue, want] of cases) {
    assert.equal(recordStream(kind, dir, queue), want, `kind ${kind} dir ${dir} queue ${queue}`);
  }
});

/** Blocks of `bytes` with, for EPBs, the stream their record says (chains: the first's). */
function interfaceLayout(bytes: Uint8Array): {
  idbs: { name: string | undefined; at: number; block: number }[];
  epbs: { iface: number; stream: number; block: number }[];
} {
  const { blocks, error } = decodeBlocks(bytes);
  assert.equal(error, undefined);
  const idbs: { name: string | undefined; at: number; block: number }[] = [];
  const epbs: { iface: number; stream: number; block: number }[] = [];
  let last = -1;
  blocks.forEach((b, i) => {
    if (b.type === "idb") idbs.push({ name: b.name, at: b.offset, block: i });
    if (b.type !== "epb") return;
    const r = decodeRecord(b);
    let stream = recordStream(r.kind, r.direction, r.queue);
    if (stream === STREAM_OF_CHAIN) stream = last;
    last = stream;
    epbs.push({ iface: b.interfaceId, stream, block: i });
  });
  return { idbs, epbs };
}

Deno.test("interfaces: one IDB per stream, named for it, right before the stream's first packet", () => {
  const { packets, logical } = sampleWithChains(300, 17);
  const { bytes } = buildCapture(packets);
  const { idbs, epbs } = interfaceLayout(bytes);
  // Each stream once; names unique.
  const names = idbs.map((i) => i.name);
  assert.equal(new Set(names).size, names.length);
  assert.ok(names.includes("vfstrace") && names.includes("hiprio"), names.join(","));
  assert.ok(names.includes("request.0") && names.includes("request.1"), names.join(","));
  assert.ok(names.includes("vhost-user.frontend") && names.includes("backend-channel"));
  for (const e of epbs) {
    const idb = idbs[e.iface];
    assert.ok(idb !== undefined, `EPB on interface ${e.iface}`);
    assert.equal(idb.name, streamName(e.stream), `block ${e.block}`);
    assert.ok(idb.block < e.block, "the IDB comes before its first use");
  }
  // Lazily: each IDB is immediately followed by the first packet on it.
  idbs.forEach((idb, id) => {
    const first = epbs.find((e) => e.iface === id);
    assert.equal(first?.block, idb.block + 1, `interface ${id} (${idb.name})`);
  });
  // Readers give each record its interface's name; chains stay on one interface.
  const d = decodeCapture(bytes);
  assert.equal(d.error, undefined);
  assert.equal(d.records.length, logical.length);
  d.records.forEach((r, i) => {
    assertRecord(r, logical[i]!, undefined, r.continuations);
    const stream = recordStream(r.kind, r.direction, r.queue);
    assert.equal(r.interfaceName, streamName(stream), `record ${i}`);
    assert.equal(idbs[r.interfaceId]?.name, r.interfaceName);
  });
  // A record's stream from its own header agrees with the interface (self-contained records).
  const epb = decodeBlock(bytes, d.records[0]!.offset) as EnhancedPacket;
  assert.equal(decodeRecord(epb, 9, "x").interfaceName, "x");
  assert.equal(decodeRecord(epb).interfaceId, epb.interfaceId);
});

Deno.test("versions: a version-1 capture is rejected with a clear message, even with recover", () => {
  const old = versionOneCapture(5);
  for (const recover of [false, true]) {
    const d = decodeCapture(old, { recover });
    assert.ok(d.error instanceof PcapngRecordVersionError, String(d.error));
    assert.equal(d.error.reason, "bad-version");
    assert.equal(d.error.version, 1);
    assert.equal(d.error.offset, sampleHeader().byteLength + 28 + 2);
    assert.match(
      d.error.message,
      /vfstrace record version 1 is not supported \(this vfstrace reads version 2 only; an older vfstrace wrote it/,
    );
    assert.equal(d.records.length, 0);
    assert.equal(d.recoveries.length, 0);
  }
  assert.throws(
    () => decodeRecord(decodeBlock(old, sampleHeader().byteLength) as EnhancedPacket),
    PcapngRecordVersionError,
  );
  // A newer version says so.
  const newer = encodeRecord({ kind: 4 });
  newer[28 + 2] = RECORD_VERSION + 1;
  const n = decodeCapture(concat([sampleHeader(), newer]));
  assert.match(n.error?.message ?? "", /version 3 is not supported.*a newer vfstrace wrote it/);
  // After good records, one record with a bad version byte is corruption: recover skips it.
  const recs = sampleRecords(6, 5);
  const { bytes, starts } = buildCapture(recs);
  bytes[starts[3]! + 28 + 2] = 1;
  assert.equal(decodeCapture(bytes).error?.reason, "bad-version");
  const r = decodeCapture(bytes, { recover: true });
  assert.equal(r.error, undefined);
  assert.deepEqual(r.records.map((x) => x.seq), [0, 1, 2, 4, 5]);
  assert.deepEqual(r.recoveries.map((x) => [x.reason, x.offset]), [["bad-version", starts[3]]]);
});

Deno.test("recover: a lost or unreadable IDB keeps its place; resync finds an IDB after garbage", () => {
  const recs = sampleRecords(40, 23);
  const { bytes, starts } = buildCapture(recs);
  const { idbs } = interfaceLayout(bytes);
  assert.ok(idbs.length >= 5);
  const names = (d: DecodedCapture) => d.records.map((r) => r.interfaceName);
  const want = names(decodeCapture(bytes));
  const lostId = 2;
  const lost = idbs[lostId]!;
  const lostName = lost.name;
  const idbEnd = lost.at + encodeStreamInterface(streamOfName(lostName!)!).byteLength;
  // 1. The IDB removed: strictly an error; recovering, its stream's records are read
  //    unnamed and every other stream keeps its name.
  const cut = concat([bytes.subarray(0, lost.at), bytes.subarray(idbEnd)]);
  assert.equal(decodeCapture(cut).error?.reason, "bad-interface");
  const a = decodeCapture(cut, { recover: true });
  assert.equal(a.error, undefined);
  assert.deepEqual(a.recoveries, []);
  assert.deepEqual(names(a), want.map((n) => (n === lostName ? undefined : n)));
  // 2. The IDB's options broken (framing sound): skipped, its place kept.
  const badOpt = bytes.slice();
  new DataView(badOpt.buffer).setUint16(lost.at + 16 + 2, 0x7ff0, true);
  const b = decodeCapture(badOpt, { recover: true });
  assert.deepEqual(b.recoveries.map((x) => [x.reason, x.offset]), [["bad-options", lost.at]]);
  assert.deepEqual(names(b), want.map((n) => (n === lostName ? undefined : n)));
  // 3. The block before the IDB loses its framing: the scan stops at the IDB, not past it.
  const before = starts.filter((s) => s < lost.at).at(-1)!;
  const smashed = bytes.slice();
  new DataView(smashed.buffer).setUint32(before + 4, 0x1234, true);
  const c = decodeCapture(smashed, { recover: true });
  assert.deepEqual(c.recoveries.map((x) => [x.offset, x.resumedAt]), [[before, lost.at]]);
  const i = starts.indexOf(before);
  assert.deepEqual(names(c), [...want.slice(0, i), ...want.slice(i + 1)]);
  // Through the parser's resync directly: an IDB naming no stream is not a landing place.
  const parser = new PcapngParser({ assumeInterface: true });
  const foreign = concat([new Uint8Array(8), encodeInterfaceDescription({ name: "eth0" })]);
  const fv = new DataView(foreign.buffer);
  assert.equal(parser.resync(fv, 0, foreign.byteLength, true), -1);
  const ours = concat([new Uint8Array(8), encodeStreamInterface(Stream.BACKEND_CHANNEL)]);
  assert.equal(parser.resync(new DataView(ours.buffer), 0, ours.byteLength, true), 8);
});
