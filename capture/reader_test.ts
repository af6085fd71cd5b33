import assert from "node:assert/strict";
import {
  BYTE_ORDER_MAGIC,
  CaptureReader,
  CaptureReadError,
  type CaptureRecord,
  CaptureWriter,
  decodeCapture,
  encodeEnhancedPacket,
  encodeRecord,
  HEAD_NONE,
  MAX_BATCH,
  MAX_PACKET_DATA,
  MAX_RECORD_BODY,
  PCAPNG_BLOCK,
  type ReadSource,
  RECORD_HEADER_SIZE,
  RECORD_KIND,
  RecordFlag,
  type RecordInput,
  RecordKind,
  recordStream,
  streamName,
  unpackRequestAux,
} from "./mod.ts";
import {
  assertRecord,
  bigWrite,
  bodyOf,
  buildCapture,
  concat,
  miniChain,
  Rng,
  sampleHeader,
  sampleRecords,
  sampleStreams,
  sampleWithChains,
  versionOneCapture,
} from "../decode/_pcapng_samples.ts";

/** Serves `bytes` in reads of random size up to `maxRead`. */
class MemorySource implements ReadSource {
  #bytes: Uint8Array;
  #pos = 0;
  #rng: Rng;
  #max: number;
  constructor(bytes: Uint8Array, maxRead = Infinity, seed = 1) {
    this.#bytes = bytes;
    this.#rng = new Rng(seed);
    this.#max = maxRead;
  }
  read(p: Uint8Array): Promise<number | null> {
    const left = this.#bytes.byteLength - this.#pos;
    if (left === 0) return Promise.resolve(null);
    const cap = Number.isFinite(this.#max) ? 1 + this.#rng.below(this.#max) : Infinity;
    const n = Math.min(p.byteLength, left, cap);
    p.set(this.#bytes.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return Promise.resolve(n);
  }
}

async function readAll(reader: CaptureReader): Promise<CaptureRecord[]> {
  const out: CaptureRecord[] = [];
  for await (const r of reader) out.push(r);
  return out;
}

async function tempFile(): Promise<string> {
  return await Deno.makeTempFile({ prefix: "vfstrace-capture-", suffix: ".pcapng" });
}

function bigEndianShb(): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint32(0, PCAPNG_BLOCK.SHB, false);
  v.setUint32(4, 28, false);
  v.setUint32(8, BYTE_ORDER_MAGIC, false);
  v.setUint16(12, 1, false);
  v.setBigInt64(16, -1n, false);
  v.setUint32(24, 28, false);
  return b;
}

Deno.test("reader: same records as the whole-buffer decoder, whatever the read sizes", async () => {
  const records = sampleRecords(600, 21, 30_000);
  const { bytes, starts } = buildCapture(records);
  for (const [maxRead, chunkSize] of [[Infinity, 4096], [7, 4096], [5000, 65536], [1, 8192]]) {
    const reader = new CaptureReader(new MemorySource(bytes, maxRead, maxRead), { chunkSize });
    const got = await readAll(reader);
    assert.equal(got.length, records.length, `maxRead ${maxRead}`);
    got.forEach((r, i) => {
      assertRecord(r, records[i]!);
      assert.equal(r.offset, starts[i]);
    });
    assert.equal(reader.truncatedAt, undefined);
    assert.equal(reader.stats.bytesRead, bytes.byteLength);
    assert.equal(reader.stats.records, records.length);
    assert.equal(reader.section?.userAppl, "vfstrace test");
    assert.deepEqual(
      reader.interfaces.map((i) => i.block?.name),
      sampleStreams(records).map(streamName),
    );
  }
});

Deno.test("reader: bodies stay valid after the iteration moves on", async () => {
  const records = sampleRecords(300, 4, 5000);
  const { bytes } = buildCapture(records);
  const reader = new CaptureReader(new MemorySource(bytes, 3000), { chunkSize: 4096 });
  const kept = await readAll(reader);
  kept.forEach((r, i) => assertRecord(r, records[i]!));
});

Deno.test("reader: a file cut at every byte of its last block reads to the last whole record", async () => {
  const records = sampleRecords(30, 13, 2000);
  records.push({ kind: RecordKind.FUSE_REPLY, seq: 30, body: new Uint8Array(157).fill(9) });
  const { bytes, starts } = buildCapture(records);
  const last = starts[starts.length - 1]!;
  const path = await tempFile();
  try {
    for (let cut = last; cut <= bytes.byteLength; cut++) {
      await Deno.writeFile(path, bytes.subarray(0, cut));
      const reader = await CaptureReader.open(path, { chunkSize: 4096 });
      const got = await readAll(reader);
      const whole = cut === bytes.byteLength ? records.length : records.length - 1;
      assert.equal(got.length, whole, `cut ${cut}`);
      assert.equal(reader.truncatedAt, cut === last || whole === records.length ? undefined : last);
      // The same through tiny reads.
      const small = new CaptureReader(new MemorySource(bytes.subarray(0, cut), 5, cut));
      assert.equal((await readAll(small)).length, whole);
      assert.equal(small.truncatedAt, reader.truncatedAt);
    }
    // An empty file is a capture cut before its header: no records, not an error.
    await Deno.writeFile(path, new Uint8Array(0));
    const empty = await CaptureReader.open(path);
    assert.equal((await readAll(empty)).length, 0);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("reader: garbage in the middle throws CaptureReadError, or is skipped with recover", async () => {
  const records = sampleRecords(200, 17, 3000);
  const { bytes, starts } = buildCapture(records);
  const at = starts[120]!;
  const dirty = concat([
    bytes.subarray(0, at),
    new Uint8Array(1001).map((_, i) => (i * 37) & 0xff),
    bytes.subarray(at),
  ]);
  const path = await tempFile();
  try {
    await Deno.writeFile(path, dirty);
    const strict = await CaptureReader.open(path, { chunkSize: 4096 });
    const got: CaptureRecord[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of strict) got.push(r);
      })(),
      (e) => {
        assert.ok(e instanceof CaptureReadError, String(e));
        assert.equal(e.path, path);
        assert.ok(e.offset >= at && e.offset < at + 8, `offset ${e.offset}`);
        assert.match(e.message, new RegExp(`capture ${path}: pcapng: .*at offset ${e.offset}`));
        return true;
      },
    );
    assert.equal(got.length, 120);

    const lenient = await CaptureReader.open(path, { chunkSize: 4096, recover: true });
    const all = await readAll(lenient);
    assert.equal(all.length, 200);
    all.forEach((r, i) => assertRecord(r, records[i]!));
    assert.deepEqual(
      lenient.recoveries.map((r) => [r.offset, r.resumedAt]),
      [[at, at + 1001]],
    );
    assert.equal(lenient.stats.recoveries, 1);
    // Offsets after the garbage are file offsets.
    assert.equal(all[120]!.offset, at + 1001);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("reader: batches() gives the records of records(), the ones before damage first", async () => {
  const records = sampleRecords(600, 21, 30_000);
  const { bytes, starts } = buildCapture(records);
  for (const [maxRead, chunkSize] of [[Infinity, 1 << 20], [7, 4096], [5000, 65536]]) {
    const reader = new CaptureReader(new MemorySource(bytes, maxRead, maxRead), { chunkSize });
    const got: CaptureRecord[] = [];
    let batches = 0;
    for await (const batch of reader.batches()) {
      assert.ok(batch.length > 0 && batch.length <= MAX_BATCH);
      batches++;
      got.push(...batch);
    }
    assert.equal(got.length, records.length, `maxRead ${maxRead}`);
    got.forEach((r, i) => {
      assertRecord(r, records[i]!);
      assert.equal(r.offset, starts[i]);
    });
    assert.equal(reader.stats.records, records.length);
    // Fewer awaits than records: that is the point.
    if (maxRead === Infinity) assert.ok(batches < records.length / 4, `${batches} batches`);
  }
  // Garbage after record 120: the 120 records come out, then the error.
  const at = starts[120]!;
  const dirty = concat([bytes.subarray(0, at), new Uint8Array(64).fill(0xee), bytes.subarray(at)]);
  const strict = new CaptureReader(new MemorySource(dirty), { chunkSize: 1 << 20 });
  const before: CaptureRecord[] = [];
  await assert.rejects(
    (async () => {
      for await (const batch of strict.batches()) before.push(...batch);
    })(),
    CaptureReadError,
  );
  assert.equal(before.length, 120);
  before.forEach((r, i) => assertRecord(r, records[i]!));
});

Deno.test("reader: recover resynchronises across chunk boundaries and many corruptions", async () => {
  const records = sampleRecords(2000, 23, 6000);
  const { bytes, starts } = buildCapture(records);
  const rng = new Rng(77);
  const dirty = bytes.slice();
  const hit = new Set<number>();
  for (let k = 0; k < 40; k++) {
    const i = 1 + rng.below(records.length - 2);
    hit.add(i);
    // Break the length of block i: its framing is lost, the scan finds block i+1.
    // Half are plausible lengths that only the trailing copy contradicts.
    const len = starts[i + 1]! - starts[i]!;
    const bad = rng.below(2) ? rng.u32() | 1 : len + 4 * (1 + rng.below(8));
    new DataView(dirty.buffer).setUint32(starts[i]! + 4, bad, true);
  }
  for (const maxRead of [Infinity, 333]) {
    const reader = new CaptureReader(new MemorySource(dirty, maxRead), {
      chunkSize: 4096,
      recover: true,
    });
    const got = await readAll(reader);
    assert.deepEqual(
      got.map((r) => r.seq),
      records.map((r) => r.seq!).filter((s) => !hit.has(s)),
    );
    const whole = decodeCapture(dirty, { recover: true });
    assert.deepEqual(reader.recoveries, whole.recoveries);
  }
});

Deno.test("reader: a big-endian capture is rejected with a clear message, even with recover", async () => {
  const bytes = concat([bigEndianShb(), encodeRecord({ kind: 1 })]);
  for (const recover of [false, true]) {
    const reader = new CaptureReader(new MemorySource(bytes), { name: "be.pcapng", recover });
    await assert.rejects(readAll(reader), (e) => {
      assert.ok(e instanceof CaptureReadError);
      assert.equal(e.reason, "big-endian");
      assert.equal(e.offset, 8);
      assert.match(e.message, /be\.pcapng: pcapng: big-endian section .* only little-endian/);
      return true;
    });
  }
  const text = new TextEncoder().encode("# not a capture\n");
  await assert.rejects(
    readAll(new CaptureReader(new MemorySource(text))),
    (e) => e instanceof CaptureReadError && e.reason === "not-pcapng" && e.offset === 0,
  );
});

Deno.test("reader: read errors are CaptureReadError(io); a reader iterates once", async () => {
  const { bytes } = buildCapture(sampleRecords(10, 1));
  let served = false;
  const failing: ReadSource = {
    read(p) {
      if (served) return Promise.reject(new Error("Input/output error (os error 5)"));
      served = true;
      p.set(bytes.subarray(0, 100));
      return Promise.resolve(100);
    },
  };
  const reader = new CaptureReader(failing, { name: "disk" });
  await assert.rejects(readAll(reader), (e) => {
    assert.ok(e instanceof CaptureReadError);
    assert.equal(e.reason, "io");
    assert.equal(e.offset, 100);
    return true;
  });
  await assert.rejects(readAll(reader), /iterates only once/);
  await assert.rejects(CaptureReader.open("/nonexistent/x.pcapng"), CaptureReadError);
});

Deno.test("reader: an aborted signal ends the iteration without an error", async () => {
  const { bytes } = buildCapture(sampleRecords(100, 3));
  const ac = new AbortController();
  const reader = new CaptureReader(new MemorySource(bytes), { signal: ac.signal });
  let n = 0;
  for await (const _ of reader) if (++n === 10) ac.abort();
  assert.equal(n, 10);
});

/**
 * A source that serves `total` bytes of synthetic capture without holding
 * them: the file header, then a ~1 MiB pattern of whole records, repeated.
 */
class SyntheticCapture implements ReadSource {
  readonly records: number;
  readonly total: number;
  #header = sampleHeader();
  #pattern: Uint8Array;
  #patternRecords: number;
  #pos = 0;
  constructor(total: number) {
    const rng = new Rng(99);
    const parts: Uint8Array[] = [];
    let size = 0;
    while (size < 1 << 20) {
      const body = rng.below(10) === 0 ? 20_000 + rng.below(100_000) : 100 + rng.below(400);
      const b = encodeRecord({
        kind: RecordKind.FUSE_REPLY,
        seq: parts.length,
        body: new Uint8Array(body).fill(parts.length & 0xff),
      });
      parts.push(b);
      size += b.byteLength;
    }
    this.#pattern = concat(parts);
    this.#patternRecords = parts.length;
    const repeats = Math.ceil((total - this.#header.byteLength) / this.#pattern.byteLength);
    this.total = this.#header.byteLength + repeats * this.#pattern.byteLength;
    this.records = repeats * this.#patternRecords;
  }
  read(p: Uint8Array): Promise<number | null> {
    if (this.#pos >= this.total) return Promise.resolve(null);
    let n = 0;
    while (n < p.byteLength && this.#pos < this.total) {
      const h = this.#header.byteLength;
      const [src, off] = this.#pos < h
        ? [this.#header, this.#pos]
        : [this.#pattern, (this.#pos - h) % this.#pattern.byteLength];
      const k = Math.min(p.byteLength - n, src.byteLength - off);
      p.set(src.subarray(off, off + k), n);
      n += k;
      this.#pos += k;
    }
    return Promise.resolve(n);
  }
}

Deno.test("reader: a 200 MB capture streams in constant memory", async () => {
  const source = new SyntheticCapture(200 << 20);
  const chunkSize = 256 << 10;
  const reader = new CaptureReader(source, { chunkSize });
  let records = 0;
  let bodyBytes = 0;
  let maxBody = 0;
  for await (const r of reader) {
    records++;
    bodyBytes += r.body.byteLength;
    if (r.body.byteLength > maxBody) maxBody = r.body.byteLength;
  }
  assert.equal(records, source.records);
  assert.equal(reader.stats.bytesRead, source.total);
  assert.ok(source.total >= 200 << 20);
  assert.ok(bodyBytes > 150 << 20);
  // The reader never held more than a chunk (a block bigger than a chunk would need more).
  assert.ok(maxBody < chunkSize);
  assert.ok(reader.peakBufferedBytes <= chunkSize, `peak ${reader.peakBufferedBytes}`);
  console.log(
    `  ${records} records, ${(source.total / 2 ** 20).toFixed(0)} MiB, ` +
      `peak buffer ${reader.peakBufferedBytes} bytes`,
  );
});

Deno.test("reader: follow mode sees records appended by a concurrent writer", async () => {
  const path = await tempFile();
  try {
    // Raw appends split at random bytes: the reader waits inside partial blocks, and
    // inside a chain until its last packet is there.
    const records: RecordInput[] = sampleRecords(300, 31, 3000);
    records.push(bigWrite(300), { kind: RecordKind.NOTE, seq: 305, body: new Uint8Array(9) });
    const { bytes } = buildCapture(records);
    const ac = new AbortController();
    const reader = await CaptureReader.open(path, { follow: true, pollMs: 2, signal: ac.signal });
    const got: CaptureRecord[] = [];
    const done = (async () => {
      for await (const r of reader) {
        got.push(r);
        if (got.length === records.length) ac.abort();
      }
    })();
    const rng = new Rng(5);
    const file = await Deno.open(path, { write: true, append: true });
    let pos = 0;
    while (pos < bytes.byteLength) {
      const n = Math.min(
        bytes.byteLength - pos,
        1 + rng.below(pos > bytes.byteLength - (1 << 20) ? 200_000 : 4000),
      );
      await file.write(bytes.subarray(pos, pos + n));
      pos += n;
      if (rng.below(3) === 0) await new Promise((r) => setTimeout(r, 1));
    }
    file.close();
    const timeout = setTimeout(() => ac.abort(), 20_000);
    await done;
    clearTimeout(timeout);
    assert.equal(got.length, records.length);
    got.forEach((r, i) => assertRecord(r, records[i]!));
    assert.equal(reader.truncatedAt, undefined);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("reader: follow mode with CaptureWriter, then stops on abort at a partial block", async () => {
  const path = await tempFile();
  try {
    const writer = CaptureWriter.create(path, { flushIntervalMs: 2 });
    const ac = new AbortController();
    const reader = await CaptureReader.open(path, { follow: true, pollMs: 2, signal: ac.signal });
    const seqs: number[] = [];
    const done = (async () => {
      for await (const r of reader) seqs.push(r.seq);
    })();
    for (let i = 0; i < 200; i++) {
      writer.append({ kind: RecordKind.NOTIFY, aux: i });
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 3));
    }
    await writer.close();
    const deadline = Date.now() + 20_000;
    while (seqs.length < 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(seqs.length, 200);
    assert.deepEqual(seqs, Array.from({ length: 200 }, (_, i) => i));
    // Half a block more, then stop: the partial block is reported, not thrown.
    const size = (await Deno.stat(path)).size;
    const extra = encodeRecord({ kind: RecordKind.NOTE, body: new Uint8Array(40) });
    const f = await Deno.open(path, { write: true, append: true });
    await f.write(extra.subarray(0, 30));
    f.close();
    await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await done;
    assert.equal(reader.truncatedAt, size);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("reader: 1 MiB and 5 MiB chains reassemble byte for byte, in bounded memory", async () => {
  for (const size of [1 << 20, 5 << 20]) {
    const records: RecordInput[] = sampleRecords(10, 2, 2000);
    const big = bigWrite(10, size);
    const n = Math.ceil(bodyOf(big).byteLength / MAX_RECORD_BODY);
    records.push(big, { kind: RecordKind.NOTIFY, seq: 10 + n });
    const { bytes, starts } = buildCapture(records);
    const runs: [number, number][] = [[Infinity, 1 << 20], [50_000, 4096], [7777, 65536]];
    for (const [maxRead, chunkSize] of runs) {
      const reader = new CaptureReader(new MemorySource(bytes, maxRead, size), { chunkSize });
      const got = await readAll(reader);
      assert.equal(got.length, records.length);
      got.forEach((r, i) => {
        assertRecord(r, records[i]!);
        assert.equal(r.offset, starts[i]);
      });
      assert.equal(got[10]!.continuations, n - 1);
      assert.equal(got[11]!.seq, got[10]!.seq + got[10]!.continuations + 1);
      assert.equal(reader.stats.records, records.length);
      assert.equal(reader.truncatedAt, undefined);
      // The buffer holds about a chunk or a packet, not the chain.
      assert.ok(reader.peakBufferedBytes <= Math.max(chunkSize, 2 * MAX_PACKET_DATA));
    }
  }
});

Deno.test("reader: raw mode yields the packets of a chain as they are", async () => {
  const { bytes } = buildCapture([{ kind: RecordKind.NOTE, seq: 0 }, bigWrite(1)]);
  const raw = await readAll(new CaptureReader(new MemorySource(bytes, 9000), { raw: true }));
  assert.deepEqual(raw.map((r) => [r.kind, r.seq, r.flags, r.continuations]), [
    [RecordKind.NOTE, 0, 0, 0],
    [RecordKind.FUSE_REQUEST, 1, RecordFlag.CONTINUED, 0],
    [RecordKind.CONTINUATION, 2, RecordFlag.CONTINUED, 0],
    [RecordKind.CONTINUATION, 3, RecordFlag.CONTINUED, 0],
    [RecordKind.CONTINUATION, 4, RecordFlag.CONTINUED, 0],
    [RecordKind.CONTINUATION, 5, 0, 0],
  ]);
  assert.ok(raw.slice(2).every((r) => r.aux === 1n));
  const whole = decodeCapture(bytes, { raw: true }).records;
  assert.deepEqual(raw.map((r) => r.offset), whole.map((r) => r.offset));
});

Deno.test("reader: a file cut inside a chain reads to the record before it; truncatedAt = chain start", async () => {
  const records: RecordInput[] = sampleRecords(8, 3, 1000);
  records.push(bigWrite(8, 700_000), { kind: RecordKind.NOTIFY, seq: 11 });
  const { bytes, starts } = buildCapture(records);
  const chainAt = starts[8]!;
  const chainEnd = starts[9]!;
  const blocks = decodeCapture(bytes, { raw: true }).records.map((r) => r.offset)
    .filter((o) => o >= chainAt && o < chainEnd);
  assert.equal(blocks.length, 3);
  const rng = new Rng(17);
  const cuts = [...blocks, ...blocks.map((b) => b + 1), chainEnd - 1];
  for (let i = 0; i < 40; i++) cuts.push(chainAt + rng.below(chainEnd - chainAt));
  const path = await tempFile();
  try {
    for (const cut of cuts) {
      await Deno.writeFile(path, bytes.subarray(0, cut));
      const reader = await CaptureReader.open(path, { chunkSize: 65536 });
      const got = await readAll(reader);
      assert.equal(got.length, 8, `cut ${cut}`);
      assert.equal(reader.truncatedAt, cut === chainAt ? undefined : chainAt, `cut ${cut}`);
      const small = new CaptureReader(new MemorySource(bytes.subarray(0, cut), 3000, cut), {
        recover: cut % 2 === 0,
      });
      assert.equal((await readAll(small)).length, 8);
      assert.equal(small.truncatedAt, reader.truncatedAt);
      assert.equal(small.recoveries.length, 0);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("reader: a broken chain is CaptureReadError bad-chain, or dropped with recover", async () => {
  const rng = new Rng(5);
  const c = miniChain(1, [100, 200, 300], rng);
  const before: RecordInput = { kind: RecordKind.NOTE, seq: 0 };
  const after: RecordInput = { kind: RecordKind.NOTE, seq: 4 };
  // The chain's second packet is missing: a seq gap inside it.
  const parts = [before, c.parts[0]!, c.parts[2]!, after, c.parts[1]!];
  const bytes = concat([sampleHeader(), ...parts.map((r) => encodeRecord(r))]);
  const strict = new CaptureReader(new MemorySource(bytes, 100), { name: "chain.pcapng" });
  const got: CaptureRecord[] = [];
  await assert.rejects(
    (async () => {
      for await (const r of strict) got.push(r);
    })(),
    (e) => {
      assert.ok(e instanceof CaptureReadError);
      assert.equal(e.reason, "bad-chain");
      assert.match(
        e.message,
        /chain\.pcapng: pcapng: CONTINUATION record \(seq 3\) has seq 3, expected 2/,
      );
      const want = decodeCapture(bytes).error!;
      assert.equal(e.offset, want.offset);
      return true;
    },
  );
  assert.deepEqual(got.map((r) => r.seq), [0]);
  for (const maxRead of [Infinity, 100]) {
    const lenient = new CaptureReader(new MemorySource(bytes, maxRead), { recover: true });
    const all = await readAll(lenient);
    assert.deepEqual(all.map((r) => r.seq), [0, 4]);
    const whole = decodeCapture(bytes, { recover: true });
    assert.deepEqual(lenient.recoveries, whole.recoveries);
    assert.equal(lenient.stats.recoveries, 2); // the chain's head, and the orphan after the NOTE
  }
});

Deno.test("reader: captures with chains agree with decodeCapture, whatever the read sizes", async () => {
  const { packets } = sampleWithChains(300, 9, 3000);
  const { bytes } = buildCapture(packets);
  const want = decodeCapture(bytes);
  assert.ok(want.records.some((r) => r.continuations > 0));
  for (const maxRead of [Infinity, 1, 333]) {
    const got = await readAll(
      new CaptureReader(new MemorySource(bytes, maxRead), { chunkSize: 4096 }),
    );
    assert.deepEqual(got, want.records);
  }
});

const TSHARK = "/usr/bin/tshark";
const hasTshark = await Deno.stat(TSHARK).then(() => true, () => false);
if (!hasTshark) {
  console.log(
    `capture/reader_test.ts: ${TSHARK} not found; the Wireshark compatibility tests are ignored ` +
      "(apt-get install tshark to run them)",
  );
}

async function tshark(path: string, fields: string[]): Promise<{ code: number; out: string }> {
  const args = ["-r", path, "-T", "fields", ...fields.flatMap((f) => ["-e", f])];
  const { code, stdout, stderr } = await new Deno.Command(TSHARK, { args, stdin: "null" })
    .output();
  const err = new TextDecoder().decode(stderr);
  return { code, out: new TextDecoder().decode(stdout) + (code ? err : "") };
}

Deno.test({
  name: "tshark reads a vfstrace capture: one frame per record, lengths, ns timestamps, comments",
  ignore: !hasTshark,
  async fn() {
    const path = await tempFile();
    try {
      const writer = CaptureWriter.create(path, { snaplen: 100 });
      const records = sampleRecords(500, 61, 300_000);
      records.push({ kind: RecordKind.NOTE, body: new Uint8Array(3), comment: "a comment" });
      for (const r of records) writer.append(r);
      await writer.close();
      const ours = await readAll(await CaptureReader.open(path));
      assert.equal(ours.length, records.length);
      const { code, out } = await tshark(path, [
        "frame.len",
        "frame.cap_len",
        "frame.time_epoch",
        "frame.comment",
      ]);
      assert.equal(code, 0, out);
      const lines = out.trimEnd().split("\n");
      assert.equal(lines.length, ours.length);
      lines.forEach((line, i) => {
        const [len, cap, epoch, comment] = line.split("\t");
        const r = ours[i]!;
        assert.equal(Number(len), RECORD_HEADER_SIZE + r.originalLength, `frame ${i + 1}`);
        assert.equal(Number(cap), RECORD_HEADER_SIZE + r.body.byteLength, `frame ${i + 1}`);
        const s = r.timestampNs / 1_000_000_000n;
        const ns = (r.timestampNs % 1_000_000_000n).toString().padStart(9, "0");
        assert.equal(epoch, `${s}.${ns}`, `frame ${i + 1}`);
        assert.equal(comment || undefined, r.comment, `frame ${i + 1}`);
      });
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "tshark opens a capture with a 1 MiB body: one frame per packet, none above its cap",
  ignore: !hasTshark,
  async fn() {
    const path = await tempFile();
    try {
      const writer = CaptureWriter.create(path);
      writer.append({ kind: RecordKind.NOTIFY });
      const w = bigWrite(1);
      writer.append(w);
      writer.append({ kind: RecordKind.FUSE_REPLY, body: new Uint8Array(1 << 20).fill(5) });
      writer.append({ kind: RecordKind.NOTE, body: new Uint8Array(3) });
      await writer.close();
      const raw = await readAll(await CaptureReader.open(path, { raw: true }));
      const ours = await readAll(await CaptureReader.open(path));
      assert.equal(ours.length, 4);
      assert.equal(raw.length, 1 + 5 + 5 + 1);
      const ok = await tshark(path, ["frame.cap_len", "frame.len"]);
      assert.equal(ok.code, 0, ok.out);
      const frames = ok.out.trimEnd().split("\n").map((l) => l.split("\t").map(Number));
      // One frame per physical packet: cap_len is the packet, len the true size of a
      // chain's first packet (the whole body), a continuation's own size.
      assert.deepEqual(
        frames,
        raw.map((r) => [
          RECORD_HEADER_SIZE + r.body.byteLength,
          RECORD_HEADER_SIZE +
          (r.kind === RecordKind.CONTINUATION ? r.body.byteLength : r.originalLength),
        ]),
      );
      assert.ok(frames.every(([cap]) => cap! <= MAX_PACKET_DATA));
      assert.deepEqual(frames[1], [MAX_PACKET_DATA, RECORD_HEADER_SIZE + bodyOf(w).byteLength]);
      // One byte more than the cap and Wireshark refuses the file: the reason for chains.
      const bigger = concat([
        sampleHeader(),
        encodeEnhancedPacket({ timestamp: 1n, data: new Uint8Array(MAX_PACKET_DATA + 1) }),
      ]);
      await Deno.writeFile(path, bigger);
      const bad = await tshark(path, ["frame.len"]);
      console.log(`  tshark on a ${MAX_PACKET_DATA + 1}-byte packet: exit ${bad.code}`);
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test({
  name: "tshark shows each packet's stream as its interface name (frame.interface_name)",
  ignore: !hasTshark,
  async fn() {
    const path = await tempFile();
    try {
      const writer = CaptureWriter.create(path);
      const records = sampleRecords(200, 91, 2000);
      records.push({ ...bigWrite(0), queue: 3 }); // a chain: every packet on request.2
      for (const r of records) writer.append(r);
      await writer.close();
      const raw = await readAll(await CaptureReader.open(path, { raw: true }));
      const { code, out } = await tshark(path, ["frame.interface_id", "frame.interface_name"]);
      assert.equal(code, 0, out);
      const frames = out.trimEnd().split("\n").map((l) => l.split("\t"));
      assert.deepEqual(frames, raw.map((r) => [String(r.interfaceId), r.interfaceName]));
      const names = new Set(frames.map((f) => f[1]));
      assert.deepEqual([...names].sort(), [
        "backend-channel",
        "hiprio",
        "request.0",
        "request.1",
        "request.2",
        "vfstrace",
        "vhost-user.backend",
        "vhost-user.frontend",
      ]);
      assert.deepEqual(frames.slice(-5).map((f) => f[1]), Array(5).fill("request.2"));
    } finally {
      await Deno.remove(path);
    }
  },
});

Deno.test("reader: a version-1 capture is a CaptureReadError bad-version, even with recover", async () => {
  const old = versionOneCapture(20);
  for (const recover of [false, true]) {
    const reader = new CaptureReader(new MemorySource(old, 100), { recover });
    await assert.rejects(readAll(reader), (e) => {
      assert.ok(e instanceof CaptureReadError, String(e));
      assert.equal(e.reason, "bad-version");
      assert.match(
        e.message,
        /^capture capture: pcapng: vfstrace record version 1 is not supported/,
      );
      assert.match(e.message, /reads version 2 only; an older vfstrace wrote it/);
      return true;
    });
    assert.equal(reader.stats.records, 0);
  }
});

const FIXTURE = decodeURIComponent(
  new URL("../tests/fixtures/guest_session.pcapng", import.meta.url).pathname,
);

Deno.test("the golden session: one interface per stream; requests and replies carry head and residence", async () => {
  const reader = await CaptureReader.open(FIXTURE);
  const records = await readAll(reader);
  assert.equal(reader.truncatedAt, undefined);
  const names = reader.interfaces.map((i) => i.block?.name);
  assert.deepEqual(
    [...names].sort(),
    ["hiprio", "request.0", "vfstrace", "vhost-user.backend", "vhost-user.frontend"],
  );
  const heads = new Map<number, Set<number>>();
  let requests = 0;
  let replies = 0;
  for (const r of records) {
    const what = `record seq ${r.seq} (${RECORD_KIND.format(r.kind)})`;
    assert.equal(r.interfaceName, streamName(recordStream(r.kind, r.direction, r.queue)), what);
    if (r.kind === RecordKind.FUSE_REQUEST) {
      requests++;
      assert.notEqual(r.head, HEAD_NONE, what);
      assert.ok(r.residenceNs !== undefined && r.residenceNs > 0, what);
      // FORGETs offer no reply buffer; every other request room for a fuse_out_header.
      const { descriptors, writable } = unpackRequestAux(r.aux);
      assert.ok(descriptors >= 1 && (writable === 0 || writable >= 16), what);
      if (!heads.has(r.queue)) heads.set(r.queue, new Set());
      heads.get(r.queue)!.add(r.head);
    } else if (r.kind === RecordKind.FUSE_REPLY) {
      replies++;
      // Recorded before the guest was notified, amended after: every reply has one.
      assert.ok(r.residenceNs !== undefined && r.residenceNs > 0, what);
      assert.ok(heads.get(r.queue)?.has(r.head), `${what}: head ${r.head} was never requested`);
    } else {
      assert.equal(r.head, HEAD_NONE, what);
      assert.equal(r.residenceNs, undefined, what);
      if (r.kind === RecordKind.VHOST_USER) assert.equal(r.aux, 0n, what);
    }
  }
  assert.equal(requests, 119);
  assert.equal(replies, 119);
});

Deno.test({
  name: "tshark on the golden session: the interface names of the streams",
  ignore: !hasTshark,
  async fn() {
    const raw = await readAll(await CaptureReader.open(FIXTURE, { raw: true }));
    const { code, out } = await tshark(FIXTURE, ["frame.number", "frame.interface_name"]);
    assert.equal(code, 0, out);
    const frames = out.trimEnd().split("\n").map((l) => l.split("\t"));
    assert.deepEqual(frames.map((f) => f[1]), raw.map((r) => r.interfaceName));
    assert.deepEqual(frames.slice(0, 3).map((f) => f[1]), [
      "vfstrace",
      "vhost-user.frontend",
      "vhost-user.backend",
    ]);
  },
});
