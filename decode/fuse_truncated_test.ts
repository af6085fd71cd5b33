import assert from "node:assert/strict";
import {
  DecodeError,
  decodeReply,
  decodeRequest,
  encodeName,
  encodeReply,
  encodeRequest,
  FuseEntryOut,
  type FuseOp,
  type FuseReply,
  type FuseRequest,
  FuseSession,
  IN_HEADER_SIZE,
  InitFlags,
  Opcode,
  OUT_HEADER_SIZE,
} from "./fuse.ts";
import {
  fuseSamples,
  LINUX_6_1_FLAGS,
  notifySamples,
  type SampleConfig,
  sessionFor,
} from "./_fuse_samples.ts";

function flat(segs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(segs.reduce((n, s) => n + s.byteLength, 0));
  let p = 0;
  for (const s of segs) {
    out.set(s, p);
    p += s.byteLength;
  }
  return out;
}

/** Odd cuts go in as three segments, so both Source paths see cut input. */
function shaped(b: Uint8Array, c: number): Uint8Array | Uint8Array[] {
  if (c % 2 === 0) return b;
  const x = Math.floor(b.byteLength / 3);
  const y = Math.floor((2 * b.byteLength) / 3);
  return [b.subarray(0, x), b.subarray(x, y), b.subarray(y)];
}

const SETXATTR_EXT = InitFlags.bit("SETXATTR_EXT") ?? 0n;

/** Header plus op struct: the part a cut may not reach into. */
function requestFixed(op: FuseOp, whole: FuseRequest, config: SampleConfig): number {
  const spec = op.request;
  if (spec.struct === undefined) return IN_HEADER_SIZE;
  const version = spec.version === "init"
    ? Number(whole.arg?.minor)
    : spec.version === "setxattr"
    ? ((config.flags & SETXATTR_EXT) !== 0n ? 63 : 32)
    : config.minor;
  return IN_HEADER_SIZE + spec.struct.size(version);
}

function replyFixed(whole: FuseReply, request: FuseRequest | undefined, minor: number): number {
  if (whole.header.unique === 0n) {
    return OUT_HEADER_SIZE + (whole.notify?.struct?.size(minor) ?? 0);
  }
  const r = whole.op?.reply;
  if (r === undefined || r.struct === undefined) return OUT_HEADER_SIZE;
  if (r.kind === "xattr" && Number(request?.arg?.size) !== 0) return OUT_HEADER_SIZE;
  if (r.kind !== "struct" && r.kind !== "ioctl" && r.kind !== "xattr") return OUT_HEADER_SIZE;
  const version = r.version === "init" ? Math.min(Number(whole.arg?.minor), minor) : minor;
  return OUT_HEADER_SIZE + r.struct.size(version);
}

function namesSize(names: readonly string[]): number {
  return names.reduce((n, s) => n + encodeName(s).byteLength + 1, 0);
}

/**
 * Checks that a cut record is the start of the whole one: same header and
 * struct, names/items/entries a prefix, data a prefix as long as the cut
 * allows, extensions lost, and the marker.
 */
function assertPrefix(
  cut: FuseRequest | FuseReply,
  whole: FuseRequest | FuseReply,
  c: number,
  fixed: number,
  minor: number,
  what: string,
): void {
  const len = whole.header.len;
  assert.deepEqual(cut.truncated, { have: c, want: len }, `${what}: marker`);
  assert.deepEqual(cut.header, whole.header, `${what}: header`);
  assert.deepEqual(cut.arg, whole.arg, `${what}: arg`);
  assert.deepEqual(cut.names, whole.names.slice(0, cut.names.length), `${what}: names`);
  assert.deepEqual(cut.items, whole.items.slice(0, cut.items.length), `${what}: items`);
  const data = flat(cut.data);
  const wholeData = flat(whole.data);
  assert.deepEqual(data, wholeData.subarray(0, data.byteLength), `${what}: data`);
  if (cut.names.length === whole.names.length) {
    // All the payload bytes, and every whole item, the cut kept come back.
    const start = fixed + namesSize(whole.names);
    if (whole.items.length === 0) {
      const expect = Math.max(0, Math.min(wholeData.byteLength, c - start));
      assert.equal(data.byteLength, expect, `${what}: data length`);
    } else {
      const itemSize = (len - start) / whole.items.length; // no extensions with items
      const expect = Math.max(0, Math.floor((c - start) / itemSize));
      assert.equal(cut.items.length, expect, `${what}: items kept`);
    }
  }
  if ("extensions" in cut && "extensions" in whole) {
    assert.deepEqual(cut.extensions, [], `${what}: extensions after a cut are lost`);
  }
  if ("entries" in cut && "entries" in whole) {
    assert.deepEqual(cut.entries, whole.entries.slice(0, cut.entries.length), `${what}: entries`);
    // Every entry whose name ends before the cut is kept.
    const plus = whole.op?.reply.kind === "direntplus";
    const entrySize = plus ? FuseEntryOut.size(minor) : 0;
    let p = OUT_HEADER_SIZE;
    let keep = 0;
    for (const e of whole.entries) {
      const n = encodeName(e.name).byteLength;
      if (p + entrySize + 24 + n > c) break;
      keep++;
      p += Math.ceil((entrySize + 24 + n) / 8) * 8;
    }
    assert.equal(cut.entries.length, keep, `${what}: entries kept`);
  }
}

/**
 * Decodes every cut of `bytes` with truncatedFrom: those inside the fixed
 * part are DecodeErrors, every longer one is a prefix of the whole record.
 */
function checkCuts(
  bytes: Uint8Array,
  fixed: number,
  decode: (input: Uint8Array | Uint8Array[], truncatedFrom: number) => FuseRequest | FuseReply,
  whole: FuseRequest | FuseReply,
  minor: number,
  what: string,
): number {
  let n = 0;
  for (let c = 0; c < bytes.byteLength; c++) {
    const input = shaped(bytes.subarray(0, c), c);
    if (c < fixed) {
      assert.throws(() => decode(input, bytes.byteLength), DecodeError, `${what} cut at ${c}`);
      continue;
    }
    let rec: FuseRequest | FuseReply;
    try {
      rec = decode(input, bytes.byteLength);
    } catch (e) {
      throw new Error(`${what} cut at ${c} (fixed part ${fixed}): ${String(e)}`);
    }
    assertPrefix(rec, whole, c, fixed, minor, `${what} cut at ${c}`);
    n++;
  }
  // The option on a whole message changes nothing.
  const again = decode(shaped(bytes, 0), bytes.byteLength);
  assert.equal(again.truncated, undefined, `${what}: whole`);
  assert.equal("truncated" in again, false, `${what}: whole records have no marker slot`);
  return n;
}

const CONFIGS: SampleConfig[] = [
  { minor: 45, flags: InitFlags.parse(InitFlags.bits.map(([, n]) => n)) },
  { minor: 38, flags: LINUX_6_1_FLAGS },
  { minor: 36, flags: LINUX_6_1_FLAGS },
];

Deno.test("fuse truncated: every cut of every sample decodes as the start of the whole record", () => {
  let cuts = 0;
  for (const config of CONFIGS) {
    for (const s of fuseSamples(config)) {
      const what = `${s.label} @7.${config.minor}`;
      const bytes = encodeRequest(s.request, sessionFor(config));
      const whole = decodeRequest(bytes, sessionFor(config));
      cuts += checkCuts(
        bytes,
        requestFixed(s.op, whole, config),
        (input, truncatedFrom) => decodeRequest(input, sessionFor(config), { truncatedFrom }),
        whole,
        config.minor,
        what,
      );
      for (const [i, reply] of s.replies.entries()) {
        const rb = encodeReply(reply, whole, sessionFor(config));
        const rwhole = decodeReply(rb, whole, sessionFor(config));
        cuts += checkCuts(
          rb,
          replyFixed(rwhole, whole, config.minor),
          (input, truncatedFrom) =>
            decodeReply(input, whole, sessionFor(config), { truncatedFrom }),
          rwhole,
          config.minor,
          `${what} reply ${i}`,
        );
      }
    }
    for (const n of notifySamples(config.minor)) {
      const nb = encodeReply(n.reply, undefined, sessionFor(config));
      const nwhole = decodeReply(nb, undefined, sessionFor(config));
      cuts += checkCuts(
        nb,
        replyFixed(nwhole, undefined, config.minor),
        (input, truncatedFrom) =>
          decodeReply(input, undefined, sessionFor(config), { truncatedFrom }),
        nwhole,
        config.minor,
        `notify ${n.label}`,
      );
    }
  }
  assert.ok(cuts > 5000, `${cuts} cuts checked`);
});

/** The 1 MiB WRITE of the guest fixture, as the capture keeps it: 262120 of 1048656 bytes. */
function bigWrite(session: FuseSession): { bytes: Uint8Array; payload: Uint8Array } {
  const payload = new Uint8Array(1 << 20).map((_, i) => (i * 31 + 7) & 0xff);
  const bytes = encodeRequest({
    header: { opcode: Opcode.WRITE, unique: 134n, nodeid: 8n, pid: 129 },
    arg: { fh: 0n, offset: 0n, flags: 0o100001 },
    data: payload,
  }, session);
  return { bytes, payload };
}

Deno.test("fuse truncated: a 1 MiB WRITE cut at 262120 bytes keeps its struct and a payload view", () => {
  const s = new FuseSession({ minor: 36, flags: LINUX_6_1_FLAGS });
  const { bytes, payload } = bigWrite(s);
  assert.equal(bytes.byteLength, 1048656);
  const kept = bytes.subarray(0, 262120);
  // Without the option the cut is an error, as before.
  assert.throws(
    () => decodeRequest(kept, s),
    (e: unknown) =>
      e instanceof DecodeError &&
      e.message.includes("fuse_in_header.len says 1048656 bytes, the message has 262120"),
  );
  // One buffer, and the pages a descriptor chain delivers.
  const pages = [kept.subarray(0, 40), kept.subarray(40, 80)];
  for (let p = 80; p < kept.byteLength; p += 4096) {
    pages.push(kept.subarray(p, Math.min(kept.byteLength, p + 4096)));
  }
  for (const input of [kept, pages]) {
    const rec = decodeRequest(input, s, { truncatedFrom: 1048656 });
    assert.deepEqual(rec.truncated, { have: 262120, want: 1048656 });
    assert.equal(rec.op?.name, "WRITE");
    assert.equal(rec.arg?.size, 1048576);
    assert.equal(rec.arg?.offset, 0n);
    const data = flat(rec.data);
    assert.equal(data.byteLength, 262120 - 80);
    assert.deepEqual(data, payload.subarray(0, 262040));
    for (const d of rec.data) assert.equal(d.buffer, bytes.buffer, "payload not copied");
  }
  // Its reply is whole and pairs with the cut request.
  const req = decodeRequest(kept, s, { truncatedFrom: 1048656 });
  const reply = encodeReply({ header: { unique: 134n }, arg: { size: 1048576 } }, req, s);
  const out = decodeReply(reply, req, s, { truncatedFrom: reply.byteLength });
  assert.equal(out.op?.name, "WRITE");
  assert.equal(out.arg?.size, 1048576);
  assert.equal(out.truncated, undefined);
});

Deno.test("fuse truncated: names, items, entries and extensions stop at the cut", () => {
  const s = () => new FuseSession({ minor: 38, flags: LINUX_6_1_FLAGS });
  // RENAME: fuse_rename_in (8) then "old\0" "newname\0"; cut inside the second name.
  const rename = encodeRequest({
    header: { opcode: Opcode.RENAME, unique: 2n },
    arg: { newdir: 1n },
    names: ["old", "newname"],
  }, s());
  const r = decodeRequest(rename.subarray(0, 48 + 4 + 3), s(), {
    truncatedFrom: rename.byteLength,
  });
  assert.deepEqual(r.names, ["old"]);
  assert.deepEqual(r.truncated, { have: 55, want: rename.byteLength });
  // BATCH_FORGET: the whole fuse_forget_one records before the cut.
  const forget = encodeRequest({
    header: { opcode: Opcode.BATCH_FORGET, unique: 2n },
    arg: {},
    items: [1n, 2n, 3n].map((n) => ({ nodeid: n, nlookup: 1n })),
  }, s());
  const f = decodeRequest(forget.subarray(0, 48 + 16 + 15), s(), {
    truncatedFrom: forget.byteLength,
  });
  assert.equal(f.arg?.count, 3);
  assert.deepEqual(f.items, [{ nodeid: 1n, nlookup: 1n }]);
  // 7.38 CREATE: extensions end the message, so any cut loses them.
  const create = encodeRequest({
    header: { opcode: Opcode.CREATE, unique: 2n },
    arg: { mode: 0o100644 },
    names: ["f"],
    extensions: [{ kind: "groups", groups: [1000] }],
  }, s());
  const c = decodeRequest(create.subarray(0, create.byteLength - 1), s(), {
    truncatedFrom: create.byteLength,
  });
  assert.deepEqual(c.names, ["f"]);
  assert.deepEqual(c.extensions, []);
  assert.equal(c.header["total_extlen"], 2);
  // READDIRPLUS: entries up to the last whole one.
  const rd = decodeRequest(
    encodeRequest({ header: { opcode: Opcode.READDIRPLUS, unique: 4n }, arg: { size: 4096 } }, s()),
    s(),
  );
  const entries = ["a", "bb", "ccc"].map((name, i) => ({
    ino: BigInt(10 + i),
    off: BigInt(i + 1),
    type: 8,
    name,
    entry: { nodeid: BigInt(10 + i), mode: 0o100644 },
  }));
  const rb = encodeReply({ header: { unique: 4n }, entries }, rd, s());
  const one = 128 + 24 + 8; // fuse_entry_out, fuse_dirent, name padded to 8
  const got = decodeReply(rb.subarray(0, 16 + one + one - 1), rd, s(), {
    truncatedFrom: rb.byteLength,
  });
  assert.deepEqual(got.entries.map((e) => e.name), ["a", "bb"], "the padding is not needed");
  const got1 = decodeReply(rb.subarray(0, 16 + one + 128 + 24 + 1), rd, s(), {
    truncatedFrom: rb.byteLength,
  });
  assert.deepEqual(got1.entries.map((e) => e.name), ["a"], "a name cut short is dropped");
  assert.deepEqual(got1.truncated, { have: 16 + one + 153, want: rb.byteLength });
});

Deno.test("fuse truncated: the len checks still hold; bad cuts are DecodeErrors", () => {
  const s = () => new FuseSession({ minor: 38, flags: LINUX_6_1_FLAGS });
  const write = encodeRequest({
    header: { opcode: Opcode.WRITE, unique: 2n },
    arg: {},
    data: new Uint8Array(1000),
  }, s());
  const read = decodeRequest(
    encodeRequest({ header: { opcode: Opcode.READ, unique: 6n }, arg: { size: 100 } }, s()),
    s(),
  );
  const readReply = encodeReply({ header: { unique: 6n }, data: new Uint8Array(100) }, read, s());
  const setLen = (b: Uint8Array, len: number) => {
    const c = b.slice();
    new DataView(c.buffer).setUint32(0, len, true);
    return c;
  };
  const cases: [string, () => unknown, string][] = [
    [
      "bytes longer than len",
      () => decodeRequest(setLen(write, 500), s(), { truncatedFrom: write.byteLength }),
      "fuse_in_header.len says 500 bytes, the message has 1080",
    ],
    [
      "bytes longer than len, claimed as a cut at len",
      () => decodeRequest(setLen(write, 500), s(), { truncatedFrom: 500 }),
      "truncatedFrom 500 is not a length above the 1080 bytes given",
    ],
    [
      "len is not the capture's length",
      () => decodeRequest(write.subarray(0, 200), s(), { truncatedFrom: 2000 }),
      "fuse_in_header.len says 1080 bytes, the capture says the message had 2000 (200 kept)",
    ],
    [
      "a whole message the capture says was longer",
      () => decodeRequest(write, s(), { truncatedFrom: 2000 }),
      "fuse_in_header.len says 1080 bytes, the capture says the message had 2000 (1080 kept)",
    ],
    [
      "truncatedFrom below the bytes given",
      () => decodeRequest(write, s(), { truncatedFrom: 100 }),
      "truncatedFrom 100 is not a length above the 1080 bytes given",
    ],
    [
      "truncatedFrom not an integer",
      () => decodeRequest(write.subarray(0, 100), s(), { truncatedFrom: NaN }),
      "truncatedFrom NaN",
    ],
    [
      "header cut",
      () => decodeRequest(write.subarray(0, 30), s(), { truncatedFrom: 1080 }),
      "fuse_in_header truncated, needs 40 bytes, 30 available",
    ],
    [
      "len smaller than header and struct",
      () => decodeRequest(setLen(write, 60).subarray(0, 50), s(), { truncatedFrom: 60 }),
      "fuse_write_in truncated, needs 40 bytes, 20 available",
    ],
    [
      "struct cut",
      () => decodeRequest(write.subarray(0, 60), s(), { truncatedFrom: 1080 }),
      "WRITE request (cut at 60 of 1080 bytes): fuse_write_in was cut by the capture, needs 40 bytes, 20 kept",
    ],
    [
      "size field against len, not the bytes kept",
      () =>
        decodeRequest(
          setLen(write, 2080).subarray(0, 500),
          s(),
          { truncatedFrom: 2080 },
        ),
      "fuse_write_in.size says 1000 bytes of data, 2000 bytes follow",
    ],
    [
      "total_extlen beyond len",
      () => {
        const b = write.slice(0, 300);
        new DataView(b.buffer).setUint16(36, 200, true);
        return decodeRequest(b, s(), { truncatedFrom: 1080 });
      },
      "total_extlen 200 (1600 bytes) exceeds the 1040-byte body",
    ],
    [
      "READ reply len above the request's size",
      () => decodeReply(setLen(readReply, 500), read, s(), { truncatedFrom: 500 }),
      "READ reply (cut at 116 of 500 bytes): 484 bytes exceed the 100 the request asked for",
    ],
    [
      "error reply with a body",
      () => {
        const b = setLen(readReply, 500);
        new DataView(b.buffer).setInt32(4, -5, true);
        return decodeReply(b, read, s(), { truncatedFrom: 500 });
      },
      "error reply EIO carries 484 body bytes",
    ],
    [
      "empty-reply op with a body",
      () => decodeReply(setLen(readReply, 500), Opcode.FLUSH, s(), { truncatedFrom: 500 }),
      "expected no body, got 484 bytes",
    ],
    [
      "dirent namelen 0 before the cut",
      () => {
        const b = new Uint8Array(16 + 24 + 8);
        const v = new DataView(b.buffer);
        v.setUint32(0, 4000, true);
        v.setBigUint64(8, 4n, true);
        return decodeReply(b, Opcode.READDIR, s(), { truncatedFrom: 4000 });
      },
      "fuse_dirent #0 namelen 0 outside 1..1024",
    ],
    [
      "notification struct cut",
      () => {
        const b = new Uint8Array(20);
        const v = new DataView(b.buffer);
        v.setUint32(0, 100, true);
        v.setInt32(4, 4, true); // NOTIFY_STORE
        return decodeReply(b, undefined, s(), { truncatedFrom: 100 });
      },
      "notify STORE (cut at 20 of 100 bytes): fuse_notify_store_out was cut by the capture",
    ],
  ];
  for (const [name, f, fragment] of cases) {
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof DecodeError, `${name}: ${String(e)}`);
      assert.ok(e.message.includes(fragment), `${name}: "${e.message}" lacks "${fragment}"`);
      return true;
    });
  }
});
