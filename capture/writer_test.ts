import assert from "node:assert/strict";
import {
  type AsyncSink,
  CaptureReader,
  CaptureWriteError,
  CaptureWriter,
  decodeBlocks,
  decodeCapture,
  decodeNote,
  EncodeError,
  encodeStreamInterface,
  FUSE_IN_HEADER_SIZE,
  FUSE_OUT_HEADER_SIZE,
  MAX_RECORD_BODY,
  QUEUE_STREAM_BASE,
  RECORD_HEADER_SIZE,
  RecordFlag,
  type RecordInput,
  RecordKind,
  RESIDENCE_MAX,
  type SyncSink,
} from "./mod.ts";
import {
  assertRecord,
  bigWrite,
  bodyOf,
  buildCapture,
  concat,
  Rng,
  SAMPLE_SECTION,
  sampleRecords,
  sampleStreams,
  sampleWithChains,
} from "../decode/_pcapng_samples.ts";

/** An in-memory sync sink that records every write call. */
class MemorySink implements SyncSink {
  chunks: Uint8Array[] = [];
  /** Accept at most this many bytes per call (short writes). */
  maxPerCall = Infinity;
  writeSync(p: Uint8Array): number {
    const n = Math.min(p.byteLength, this.maxPerCall);
    this.chunks.push(p.slice(0, n));
    return n;
  }
  get bytes(): Uint8Array {
    return concat(this.chunks);
  }
}

/** A sync sink with room for `capacity` bytes, then ENOSPC like a full disk. */
class FullDiskSink implements SyncSink {
  written: Uint8Array[] = [];
  #left: number;
  constructor(capacity: number) {
    this.#left = capacity;
  }
  writeSync(p: Uint8Array): number {
    if (this.#left === 0) {
      throw Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
    }
    const n = Math.min(this.#left, p.byteLength);
    this.written.push(p.slice(0, n));
    this.#left -= n;
    return n;
  }
}

async function tempFile(): Promise<string> {
  return await Deno.makeTempFile({ prefix: "vfstrace-capture-", suffix: ".pcapng" });
}

Deno.test("writer: records of every kind round-trip through a file", async () => {
  const path = await tempFile();
  try {
    const records = sampleRecords(2000, 42, 20_000);
    const writer = CaptureWriter.create(path, { bufferSize: 16 << 10 });
    for (const r of records) assert.equal(writer.append(r), r.seq);
    await writer.close();
    assert.deepEqual(
      { ...writer.stats, bytes: 0 },
      { records: 2000, written: 2000, dropped: 0, bytes: 0, pendingBytes: 0 },
    );
    const bytes = await Deno.readFile(path);
    assert.equal(writer.stats.bytes, bytes.byteLength);
    const d = decodeCapture(bytes);
    assert.equal(d.error, undefined);
    assert.equal(d.truncatedAt, undefined);
    assert.equal(d.records.length, records.length);
    d.records.forEach((got, i) => assertRecord(got, records[i]!));
    assert.match(d.section?.userAppl ?? "", /^vfstrace \d+\.\d+\.\d+/);
    assert.ok(d.section?.os);
    assert.equal(d.section?.hardware, Deno.build.arch);
    // And through the streaming reader.
    const reader = await CaptureReader.open(path);
    let i = 0;
    for await (const got of reader) assertRecord(got, records[i++]!);
    assert.equal(i, records.length);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("writer: default clock is epoch ns, monotonic, sub-millisecond", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink);
  const before = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < 5000; i++) writer.append({ kind: RecordKind.NOTIFY });
  const now = writer.nowNs();
  await writer.close();
  const after = BigInt(Date.now()) * 1_000_000n;
  const ts = decodeCapture(sink.bytes).records.map((r) => r.timestampNs);
  assert.equal(ts.length, 5000);
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!, `not monotonic at ${i}`);
  assert.ok(ts[0]! >= before - 2_000_000n && ts[ts.length - 1]! <= after + 2_000_000n);
  assert.ok(now >= ts[ts.length - 1]!);
  // Sub-millisecond: many distinct values inside one millisecond.
  assert.ok(new Set(ts).size > 100, `${new Set(ts).size} distinct timestamps`);
  assert.ok(ts.some((t) => t % 1_000_000n !== 0n));
});

Deno.test("writer: an explicit clock and explicit timestamps are used as given", async () => {
  const sink = new MemorySink();
  let t = 5n;
  const writer = new CaptureWriter(sink, { clock: () => (t += 10n) });
  writer.append({ kind: 4 });
  writer.append({ kind: 4, timestampNs: 1n << 62n });
  await writer.close();
  assert.deepEqual(decodeCapture(sink.bytes).records.map((r) => r.timestampNs), [15n, 1n << 62n]);
});

Deno.test("writer: snaplen cuts FUSE data but keeps headers; other kinds are never cut", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { snaplen: 64 });
  const big = new Uint8Array(5000).map((_, i) => i & 0xff);
  writer.append({ kind: RecordKind.FUSE_REQUEST, body: big });
  writer.append({ kind: RecordKind.FUSE_REQUEST, body: big, keep: 200 });
  writer.append({ kind: RecordKind.FUSE_REPLY, body: big });
  writer.append({ kind: RecordKind.VHOST_USER, body: big });
  writer.append({ kind: RecordKind.NOTE, body: big });
  writer.append({ kind: RecordKind.FUSE_REQUEST, body: big.subarray(0, 30) });
  await writer.close();
  const small = new CaptureWriter(new MemorySink(), { snaplen: 0 });
  small.append({ kind: RecordKind.FUSE_REQUEST, body: big });
  await small.close();
  const got = decodeCapture(sink.bytes).records.map((r) => [r.body.byteLength, r.originalLength]);
  assert.deepEqual(got, [[64, 5000], [200, 5000], [64, 5000], [5000, 5000], [5000, 5000], [
    30,
    30,
  ]]);
  const recs = decodeCapture(sink.bytes).records;
  assert.equal(recs[0]!.flags, RecordFlag.TRUNCATED);
  assert.equal(recs[3]!.flags, 0);
  assert.deepEqual(recs[0]!.body, big.subarray(0, 64));
  // snaplen 0 still keeps the FUSE headers.
  const z = new MemorySink();
  const w0 = new CaptureWriter(z, { snaplen: 0 });
  w0.append({ kind: RecordKind.FUSE_REQUEST, body: big });
  w0.append({ kind: RecordKind.FUSE_REPLY, body: big });
  await w0.close();
  assert.deepEqual(
    decodeCapture(z.bytes).records.map((r) => r.body.byteLength),
    [FUSE_IN_HEADER_SIZE, FUSE_OUT_HEADER_SIZE],
  );
});

Deno.test("writer: large bodies are stored whole as chains; writes stay one packet big", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { bufferSize: 4096 });
  const body = new Uint8Array(128 << 10).fill(3);
  const huge = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
  assert.equal(writer.append({ kind: RecordKind.FUSE_REQUEST, body }), 0);
  assert.equal(writer.append({ kind: RecordKind.FUSE_REQUEST, body: huge }), 1);
  // 1 MiB takes 5 packets, so 5 seqs.
  assert.equal(writer.nextSeq, 6);
  assert.equal(writer.append({ kind: RecordKind.FUSE_REPLY, body: Uint8Array.of(1) }), 6);
  await writer.close();
  assert.deepEqual(
    { ...writer.stats, bytes: 0 },
    { records: 3, written: 3, dropped: 0, bytes: 0, pendingBytes: 0 },
  );
  const r = decodeCapture(sink.bytes).records;
  assert.equal(r.length, 3);
  assert.equal(r[0]!.body.byteLength, 128 << 10);
  assert.deepEqual(r[1]!.body, huge);
  assert.equal(r[1]!.originalLength, 1 << 20);
  assert.equal(r[1]!.continuations, 4);
  assert.equal(r[1]!.flags, 0);
  assert.equal(r[2]!.seq, r[1]!.seq + r[1]!.continuations + 1);
  // No packet above Wireshark's cap, and the chain never sat whole in the buffer.
  const raw = decodeCapture(sink.bytes, { raw: true }).records;
  assert.equal(raw.length, 7);
  assert.ok(raw.every((x) => x.body.byteLength <= MAX_RECORD_BODY));
  assert.ok(Math.max(...sink.chunks.map((c) => c.byteLength)) <= 512 << 10);
});

Deno.test("writer: 1 MiB and 5 MiB FUSE writes round-trip byte for byte through a file", async () => {
  const path = await tempFile();
  try {
    for (const size of [1 << 20, 5 << 20]) {
      const records = [...sampleRecords(20, 5, 3000)];
      let seq = 20;
      const big = bigWrite(seq, size);
      records.push(big);
      seq += Math.ceil(bodyOf(big).byteLength / MAX_RECORD_BODY);
      for (const r of sampleRecords(20, 6, 3000)) records.push({ ...r, seq: seq++ });
      const writer = CaptureWriter.create(path);
      for (const r of records) assert.equal(writer.append(r), r.seq);
      await writer.close();
      const d = decodeCapture(await Deno.readFile(path));
      assert.equal(d.error, undefined);
      assert.equal(d.records.length, records.length);
      d.records.forEach((got, i) => assertRecord(got, records[i]!));
      const reader = await CaptureReader.open(path, { chunkSize: 64 << 10 });
      let i = 0;
      for await (const got of reader) assertRecord(got, records[i++]!);
      assert.equal(i, records.length);
      assert.equal(reader.truncatedAt, undefined);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("writer: snaplen cuts big FUSE bodies to the packets it needs; other kinds stay whole", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { snaplen: 300_000 });
  const w = bigWrite(0);
  const size = bodyOf(w).byteLength;
  writer.append(w);
  writer.append({ ...w, kind: RecordKind.FUSE_REPLY });
  writer.append({ kind: RecordKind.VHOST_USER, body: bodyOf(w) });
  await writer.close();
  const recs = decodeCapture(sink.bytes).records;
  assert.deepEqual(
    recs.map((r) => [r.body.byteLength, r.originalLength, r.continuations, r.flags]),
    [
      [300_000, size, 1, RecordFlag.TRUNCATED],
      [300_000, size, 1, RecordFlag.TRUNCATED],
      [size, size, 4, 0],
    ],
  );
  assert.deepEqual(recs[0]!.body, bodyOf(w).subarray(0, 300_000));
  assert.deepEqual(recs.map((r) => r.seq), [0, 2, 4]);
  // A snap length within one packet makes no chain at all.
  const small = new MemorySink();
  const w2 = new CaptureWriter(small, { snaplen: 4096 });
  w2.append(w);
  await w2.close();
  const raw = decodeCapture(small.bytes, { raw: true }).records;
  assert.deepEqual(raw.map((r) => [r.kind, r.body.byteLength, r.flags]), [[
    RecordKind.FUSE_REQUEST,
    4096,
    RecordFlag.TRUNCATED,
  ]]);
});

Deno.test("writer: a crash at any write inside a chain leaves a file readable to the record before", async () => {
  for (const maxPerCall of [Infinity, 100_000]) {
    const sink = new MemorySink();
    sink.maxPerCall = maxPerCall;
    const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
    const records = sampleRecords(30, 9, 3000);
    const big = bigWrite(30, 3 << 20);
    records.push(big, { kind: RecordKind.NOTE, seq: 43, body: new Uint8Array(5) });
    const ends: number[] = [];
    for (const r of records) {
      writer.append(r);
      ends.push(sink.bytes.byteLength);
    }
    await writer.close();
    const bytes = sink.bytes;
    const all = decodeCapture(bytes).records;
    const chainAt = all[30]!.offset;
    const chainEnd = all[31]!.offset;
    assert.equal(all[30]!.continuations, 12);
    // Every write the writer made ends a block; the ones inside the chain leave it open.
    let offset = 0;
    let inside = 0;
    for (const c of sink.chunks) {
      offset += c.byteLength;
      if (maxPerCall !== Infinity) continue; // short writes split blocks: covered below
      const d = decodeCapture(bytes.subarray(0, offset));
      assert.equal(d.error, undefined);
      if (offset > chainAt && offset < chainEnd) {
        inside++;
        assert.equal(d.truncatedAt, chainAt, `write ending at ${offset}`);
        assert.equal(d.records.length, 30);
      } else {
        assert.equal(d.truncatedAt, undefined, `write ending at ${offset}`);
      }
    }
    if (maxPerCall === Infinity) assert.ok(inside >= 10, `${inside} writes inside the chain`);
    // And at random bytes.
    const rng = new Rng(4);
    for (let k = 0; k < 100; k++) {
      const cut = chainAt + 1 + rng.below(chainEnd - chainAt - 1);
      const d = decodeCapture(bytes.subarray(0, cut));
      assert.equal(d.error, undefined);
      assert.equal(d.records.length, 30, `cut ${cut}`);
      assert.equal(d.truncatedAt, chainAt, `cut ${cut}`);
    }
    assert.equal(decodeCapture(bytes).records.length, 32);
  }
});

Deno.test("writer: a full disk inside a chain loses that record, counted, with its seq", async () => {
  const records: RecordInput[] = [];
  for (let i = 0; i < 5; i++) records.push({ kind: RecordKind.NOTIFY, aux: i });
  records.push(bigWrite(0));
  for (let i = 0; i < 5; i++) records.push({ kind: RecordKind.NOTIFY, aux: 10 + i });
  const rng = new Rng(31);
  let midChain = 0;
  for (let k = 0; k < 60; k++) {
    const capacity = 600 + rng.below(1_100_000);
    const sink = new FullDiskSink(capacity);
    const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
    let thrown: CaptureWriteError | undefined;
    const seqs: number[] = [];
    for (const r of records) {
      try {
        seqs.push(writer.append(r));
      } catch (e) {
        assert.ok(e instanceof CaptureWriteError, String(e));
        thrown = e;
        seqs.push(-1);
      }
    }
    await writer.close().catch((e) => {
      assert.ok(e instanceof CaptureWriteError);
      thrown ??= e;
    });
    const onDisk = decodeCapture(concat(sink.written));
    assert.equal(onDisk.error, undefined, `capacity ${capacity}`);
    const whole = onDisk.records.length;
    if (whole === records.length) continue;
    assert.ok(thrown, `capacity ${capacity}`);
    // The first record lost: the one after the last whole record on disk (chains: its first seq).
    const want = whole === 5 ? 5 : whole < 5 ? whole : 5 + 5 + (whole - 6);
    assert.equal(thrown.seq, want, `capacity ${capacity}`);
    // After the 5 NOTIFYs: the chain's stream's IDB, then the chain.
    const afterFive = (onDisk.records[4]?.offset ?? 0) + 28 + RECORD_HEADER_SIZE + 4;
    const chainAt = afterFive + encodeStreamInterface(QUEUE_STREAM_BASE + 1).byteLength;
    if (whole === 5 && concat(sink.written).byteLength > chainAt) {
      assert.equal(onDisk.truncatedAt, chainAt, `capacity ${capacity}`);
      midChain++;
    }
    assert.equal(writer.dropped + whole, records.length, `capacity ${capacity}`);
    assert.equal(writer.stats.written, whole, `capacity ${capacity}`);
  }
  assert.ok(midChain > 30, `${midChain} capacities inside the chain`);
});

Deno.test("writer: an async sink failing inside a chain names the chain's seq", async () => {
  for (let failAt = 2; failAt <= 6; failAt++) {
    let calls = 0;
    const sink: AsyncSink = {
      write(p) {
        if (++calls >= failAt) {
          return Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" }));
        }
        return Promise.resolve(p.byteLength);
      },
    };
    const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
    writer.append({ kind: RecordKind.NOTIFY }); // seq 0
    writer.append(bigWrite(0)); // seqs 1-5, one queued buffer per packet
    writer.append({ kind: RecordKind.NOTIFY }); // seq 6
    assert.equal(calls, 1, "the header is being written, the rest queued");
    await assert.rejects(writer.close(), (e) => {
      assert.ok(e instanceof CaptureWriteError);
      // Call 1 is the file header, 2 seq 0, 3-5 a packet of the chain each (no record ends
      // in them), 6 the chain's last two packets and seq 6.
      assert.equal(e.seq, failAt === 2 ? 0 : 1, `fail at call ${failAt}`);
      assert.equal(e.dropped, 3 - writer.stats.written);
      return true;
    });
  }
});

Deno.test("writer: every write ends on a block boundary, short writes included", async () => {
  for (const maxPerCall of [Infinity, 1000, 7]) {
    const sink = new MemorySink();
    sink.maxPerCall = maxPerCall;
    const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
    const records = sampleRecords(300, 8, 3000);
    const boundaries: number[] = [];
    for (const r of records) {
      const before = sink.chunks.length;
      writer.append(r);
      if (sink.chunks.length !== before) boundaries.push(sink.bytes.byteLength);
    }
    await writer.close();
    boundaries.push(sink.bytes.byteLength);
    assert.ok(boundaries.length > 10);
    // A crash after any flush leaves a file that reads back cleanly.
    for (const end of boundaries) {
      const d = decodeCapture(sink.bytes.subarray(0, end));
      assert.equal(d.truncatedAt, undefined, `flush ending at ${end} (max ${maxPerCall})`);
      assert.equal(d.error, undefined);
    }
    assert.equal(decodeCapture(sink.bytes).records.length, 300);
  }
});

Deno.test("writer: buffered records reach the file within flushIntervalMs", async () => {
  const path = await tempFile();
  const writer = CaptureWriter.create(path, { flushIntervalMs: 200 });
  try {
    const headerSize = (await Deno.stat(path)).size;
    assert.ok(headerSize > 0, "the file header is written at open");
    writer.append({ kind: RecordKind.NOTE, body: new Uint8Array(10) });
    assert.equal((await Deno.stat(path)).size, headerSize, "buffered, not yet written");
    const deadline = Date.now() + 5000;
    while ((await Deno.stat(path)).size === headerSize && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(decodeCapture(await Deno.readFile(path)).records.length, 1);
  } finally {
    await writer.close();
    await Deno.remove(path);
  }
});

Deno.test("writer: a full disk (ENOSPC) is a CaptureWriteError and dropped records are counted", async () => {
  // Every capacity from 3000 to 3400 bytes: the disk fills mid-record and exactly at record ends.
  for (let capacity = 3000; capacity < 3400; capacity++) {
    const sink = new FullDiskSink(capacity);
    const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
    let thrown: CaptureWriteError | undefined;
    let appended = 0;
    for (let i = 0; i < 100; i++) {
      try {
        writer.append({ kind: RecordKind.FUSE_REPLY, body: new Uint8Array(100 + (i % 7)) });
      } catch (e) {
        assert.ok(e instanceof CaptureWriteError, String(e));
        assert.equal(thrown, undefined, "thrown once only");
        thrown = e;
      }
      appended++;
    }
    assert.ok(thrown, "the failure surfaced");
    assert.equal(thrown.code, "ENOSPC");
    assert.equal(thrown.path, "capture");
    assert.match(thrown.message, /write failed at record seq \d+: No space left.*dropped/);
    const onDisk = decodeCapture(concat(sink.written));
    assert.equal(onDisk.error, undefined);
    // The first record lost is the one after the last whole record on disk.
    assert.equal(thrown.seq, onDisk.records.length, `capacity ${capacity}`);
    assert.ok(thrown.dropped > 0);
    await assert.rejects(writer.close(), (e) => {
      assert.ok(e instanceof CaptureWriteError);
      assert.equal(e.seq, thrown!.seq);
      // Nothing silently lost: on disk + dropped = everything appended.
      assert.equal(e.dropped, appended - onDisk.records.length, `capacity ${capacity}`);
      return true;
    });
    assert.equal(writer.dropped + onDisk.records.length, appended);
    assert.equal(writer.stats.written, onDisk.records.length);
  }
});

/** Whether this process may write /dev/full (Deno asks for --allow-all for devices). */
function devFullWritable(): string | undefined {
  try {
    Deno.openSync("/dev/full", { write: true }).close();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
const devFullProblem = devFullWritable();
if (devFullProblem !== undefined) {
  console.log(
    `capture/writer_test.ts: a real ENOSPC on /dev/full is ignored: ${devFullProblem} ` +
      "(the full-disk sink test covers the logic)",
  );
}

Deno.test({
  name: "writer: /dev/full fails at open with CaptureWriteError ENOSPC",
  ignore: devFullProblem !== undefined,
  fn() {
    assert.throws(() => CaptureWriter.create("/dev/full"), (e) => {
      assert.ok(e instanceof CaptureWriteError);
      assert.equal(e.code, "ENOSPC");
      assert.equal(e.path, "/dev/full");
      assert.equal(e.seq, 0);
      return true;
    });
  },
});

Deno.test("writer: a read-only file fails at open with CaptureWriteError", async () => {
  const path = await tempFile();
  const readOnly = await Deno.open(path, { read: true });
  try {
    assert.throws(() => new CaptureWriter(readOnly, { name: path }), (e) => {
      assert.ok(e instanceof CaptureWriteError);
      assert.equal(e.path, path);
      assert.match(e.message, /write failed at record seq 0/);
      return true;
    });
  } finally {
    readOnly.close();
    await Deno.remove(path);
  }
});

Deno.test("writer: async sink errors surface on the next call and at close", async () => {
  let calls = 0;
  const sink: AsyncSink = {
    write(p) {
      calls++;
      if (calls > 2) return Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" }));
      return Promise.resolve(p.byteLength);
    },
  };
  const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
  for (let i = 0; i < 40; i++) writer.append({ kind: 3, body: new Uint8Array(300) });
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(writer.error, "the background write failed");
  assert.throws(() => writer.append({ kind: 3 }), CaptureWriteError);
  writer.append({ kind: 3 }); // later appends count as dropped without throwing again
  await assert.rejects(writer.close(), (e) => {
    assert.ok(e instanceof CaptureWriteError);
    assert.equal(e.code, "EIO");
    assert.equal(e.dropped, 42 - writer.stats.written);
    return true;
  });
});

Deno.test("writer: a slow async sink drops under backpressure and says so in the file", async () => {
  const chunks: Uint8Array[] = [];
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  const sink: AsyncSink = {
    async write(p) {
      await gate;
      chunks.push(p.slice());
      return p.byteLength;
    },
  };
  const writer = new CaptureWriter(sink, {
    bufferSize: 4096,
    maxPendingBytes: 16 << 10,
    flushIntervalMs: 0,
  });
  for (let i = 0; i < 300; i++) writer.append({ kind: 2, body: new Uint8Array(200) });
  assert.ok(writer.dropped > 0, "some records dropped");
  const dropped = writer.dropped;
  release();
  gate = Promise.resolve();
  await writer.flush();
  writer.append({ kind: 2, body: new Uint8Array(200) }); // carries the drop report first
  await writer.close();
  const d = decodeCapture(concat(chunks));
  assert.equal(d.error, undefined);
  const notes = d.records.filter((r) => r.kind === RecordKind.NOTE);
  assert.equal(notes.length, 1);
  const note = decodeNote(notes[0]!.body);
  assert.equal(note.type, "dropped");
  assert.equal(note.count, dropped);
  assert.equal(notes[0]!.flags, RecordFlag.SYNTHETIC);
  // The seq gap in the file is exactly the reported range.
  const seqs = new Set(d.records.map((r) => r.seq));
  for (let s = note.first_seq as number; s <= (note.last_seq as number); s++) {
    assert.ok(!seqs.has(s), `seq ${s} should be missing`);
  }
  assert.equal(d.records.length - 1 + dropped, 301);
});

Deno.test("writer: a chain dropped under backpressure is reported with all its seqs", async () => {
  const chunks: Uint8Array[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const sink: AsyncSink = {
    async write(p) {
      await gate;
      chunks.push(p.slice());
      return p.byteLength;
    },
  };
  const writer = new CaptureWriter(sink, { maxPendingBytes: 1 << 20, flushIntervalMs: 0 });
  assert.equal(writer.append(bigWrite(0, 600_000)), 0); // 3 packets: fits
  assert.equal(writer.append(bigWrite(0)), 3); // 5 packets: beyond 1 MiB pending, dropped whole
  assert.equal(writer.dropped, 1);
  release();
  await writer.flush();
  assert.equal(writer.append({ kind: RecordKind.NOTIFY }), 9); // after the report (seq 8)
  await writer.close();
  const d = decodeCapture(concat(chunks));
  assert.equal(d.error, undefined);
  const note = decodeNote(d.records.find((r) => r.kind === RecordKind.NOTE)!.body);
  assert.deepEqual([note.count, note.first_seq, note.last_seq], [1, 3, 7]);
  // Logical records and their seqs: the gap is exactly 3-7.
  assert.deepEqual(d.records.map((r) => [r.seq, r.continuations]), [[0, 2], [8, 0], [9, 0]]);
});

Deno.test("writer: bad fields throw EncodeError without using a seq; close is idempotent", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink);
  assert.throws(() => writer.append({ kind: 300 }), EncodeError);
  assert.equal(writer.append({ kind: 1 }), 0);
  assert.equal(writer.note({ type: "stop", reason: "test" }), 1);
  await writer.close();
  await writer.close();
  assert.throws(() => writer.append({ kind: 1 }), /append after close/);
  const recs = decodeCapture(sink.bytes).records;
  assert.deepEqual(recs.map((r) => r.seq), [0, 1]);
  assert.deepEqual(decodeNote(recs[1]!.body), { type: "stop", reason: "test" });
});

Deno.test("writer: one IDB per stream, written with the stream's first record; same bytes as buildCapture", async () => {
  const { packets } = sampleWithChains(400, 77, 3000);
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { ...SAMPLE_SECTION, bufferSize: 4096 });
  assert.equal(
    decodeBlocks(sink.bytes).blocks.map((b) => b.type).join(),
    "shb",
    "the file header is the SHB alone",
  );
  for (const p of packets) assert.equal(writer.append(p), p.seq);
  await writer.close();
  assert.deepEqual(sink.bytes, buildCapture(packets).bytes);
  assert.deepEqual(writer.streams, sampleStreams(packets));
  // A crash after any write leaves IDBs only for streams whose records follow.
  const ends: number[] = [];
  let off = 0;
  for (const c of sink.chunks) ends.push(off += c.byteLength);
  for (const end of ends) {
    const { blocks } = decodeBlocks(sink.bytes.subarray(0, end));
    const last = blocks.at(-1);
    assert.ok(last?.type !== "idb" || end === 0, `a write ends with an IDB at ${end}`);
  }
});

Deno.test("writer: hold keeps records in memory; amendResidence patches them, chains at their first", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 20 });
  const header = sink.bytes.byteLength;
  writer.hold();
  assert.ok(writer.held);
  const a = writer.append({
    kind: RecordKind.FUSE_REPLY,
    queue: 1,
    head: 3,
    body: new Uint8Array(40),
  });
  const b = writer.append({ ...bigWrite(0), kind: RecordKind.FUSE_REPLY });
  const c = writer.append({ kind: RecordKind.FUSE_REPLY, queue: 0, body: new Uint8Array(9000) });
  // Past bufferSize and past the flush interval: nothing written while held.
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(sink.bytes.byteLength, header);
  assert.ok(writer.stats.pendingBytes > (1 << 20));
  assert.equal(writer.amendResidence(a, 500n), true);
  assert.equal(writer.amendResidence(b, 6_000_000_000n), true);
  assert.equal(writer.amendResidence(c, 0), true);
  assert.equal(writer.amendResidence(b + 1, 1n), false, "a continuation's seq is not a record");
  assert.equal(writer.amendResidence(999, 1n), false);
  // Nested holds: only the outer release lets it go.
  writer.hold();
  writer.release();
  assert.equal(sink.bytes.byteLength, header);
  writer.release();
  assert.ok(!writer.held);
  assert.ok(sink.bytes.byteLength > (1 << 20), "a buffer past bufferSize goes out at release");
  assert.equal(writer.amendResidence(a, 7n), false, "written out: too late");
  const d = writer.append({ kind: RecordKind.FUSE_REPLY, queue: 1, body: new Uint8Array(20) });
  assert.equal(writer.amendResidence(d, 42n), true, "still buffered: amendable without a hold");
  await writer.close();
  assert.equal(writer.amendResidence(d, 1n), false);
  const recs = decodeCapture(sink.bytes).records;
  assert.deepEqual(recs.map((r) => r.residenceNs), [500, RESIDENCE_MAX, 1, 42]);
  assert.equal(recs[0]!.head, 3);
  const raw = decodeCapture(sink.bytes, { raw: true }).records;
  assert.ok(
    raw.filter((r) => r.kind === RecordKind.CONTINUATION).every((r) => r.residenceNs === undefined),
  );
  writer.release(); // unbalanced: ignored
});

Deno.test("writer: the flush interval resumes at release; a held capture is still flushed by flush()", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, { flushIntervalMs: 20 });
  const header = sink.bytes.byteLength;
  writer.hold();
  writer.append({ kind: RecordKind.NOTE, body: new Uint8Array(5) });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sink.bytes.byteLength, header);
  writer.release();
  const deadline = Date.now() + 2000;
  while (sink.bytes.byteLength === header && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(decodeCapture(sink.bytes).records.length, 1);
  writer.hold();
  const s = writer.append({ kind: RecordKind.NOTE, body: new Uint8Array(5) });
  await writer.flush();
  assert.equal(decodeCapture(sink.bytes).records.length, 2, "flush() writes held records");
  assert.equal(writer.amendResidence(s, 1n), false);
  writer.release();
  await writer.close();
});

Deno.test("writer: past maxHeldBytes a held buffer is written anyway; amends of those records fail", async () => {
  const sink = new MemorySink();
  const writer = new CaptureWriter(sink, {
    bufferSize: 4096,
    maxHeldBytes: 64 << 10,
    flushIntervalMs: 0,
  });
  const header = sink.bytes.byteLength;
  writer.hold();
  const seqs: number[] = [];
  for (let i = 0; i < 20; i++) {
    seqs.push(
      writer.append({ kind: RecordKind.FUSE_REPLY, queue: 1, body: new Uint8Array(10_000) }),
    );
  }
  assert.ok(sink.bytes.byteLength > header, "the cap forced a write");
  assert.ok(writer.stats.pendingBytes <= 64 << 10);
  const amended = seqs.map((s) => writer.amendResidence(s, 1000 + s));
  const first = amended.indexOf(true);
  assert.ok(first > 0, "the oldest records went out");
  assert.ok(amended.slice(first).every((x) => x), "the rest are still held");
  // A chain longer than the cap goes out too (its first block included): not amendable.
  const big = writer.append({ ...bigWrite(0), kind: RecordKind.FUSE_REPLY });
  assert.equal(writer.amendResidence(big, 1n), false);
  writer.release();
  await writer.close();
  const recs = decodeCapture(sink.bytes).records;
  assert.equal(recs.length, 21);
  recs.slice(0, 20).forEach((r, i) => {
    assert.equal(r.residenceNs, amended[i] ? 1000 + seqs[i]! : undefined, `record ${i}`);
  });
  assert.equal(recs[20]!.residenceNs, 1234, "as appended: the amend changed nothing");
});

Deno.test("writer: an async sink is not written while held either", async () => {
  const chunks: Uint8Array[] = [];
  const sink: AsyncSink = {
    write(p) {
      chunks.push(p.slice());
      return Promise.resolve(p.byteLength);
    },
  };
  const writer = new CaptureWriter(sink, { bufferSize: 4096, flushIntervalMs: 0 });
  await writer.flush();
  const before = chunks.length;
  writer.hold();
  const seqs = [];
  for (let i = 0; i < 10; i++) {
    seqs.push(writer.append({ kind: RecordKind.FUSE_REPLY, queue: 2, body: new Uint8Array(3000) }));
  }
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(chunks.length, before);
  assert.ok(seqs.every((s) => writer.amendResidence(s, 99n)));
  writer.release();
  await writer.close();
  const recs = decodeCapture(concat(chunks)).records;
  assert.deepEqual(
    recs.map((r) => [r.residenceNs, r.interfaceName]),
    seqs.map(() => [99, "request.1"]),
  );
});
