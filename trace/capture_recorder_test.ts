import assert from "node:assert/strict";
import {
  CaptureWriter,
  decodeCapture,
  MAX_RECORD_BODY,
  RecordFlag,
  RecordKind,
  unpackRequestAux,
} from "../capture/mod.ts";
import { bigWrite, bodyOf, concat } from "../decode/_pcapng_samples.ts";
import { CaptureRecorder, requestKeep } from "./capture_recorder.ts";
import { MemoryRecorder } from "./recorder.ts";

function memoryWriter(snaplen?: number): { writer: CaptureWriter; bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  const writer = new CaptureWriter({
    writeSync: (p) => {
      chunks.push(p.slice());
      return p.byteLength;
    },
  }, snaplen === undefined ? {} : { snaplen });
  return { writer, bytes: () => concat(chunks) };
}

const WRITE = bigWrite(0); // fuse_in_header.len 1048656: header, fuse_write_in, 256 pages
const SEGMENTS = WRITE.body as Uint8Array[];

Deno.test("recorder: a 1 MiB FUSE WRITE and a 1 MiB READ reply are recorded whole", async () => {
  const { writer, bytes } = memoryWriter();
  const rec = new CaptureRecorder(writer);
  const seq = rec.request({
    queue: 1,
    head: 7,
    descriptors: SEGMENTS.length,
    writableCapacity: 16 + 24,
    body: SEGMENTS,
    length: 1048656,
    residenceNs: 0n,
  });
  assert.equal(seq, 0);
  const data = new Uint8Array(1 << 20).map((_, i) => i % 251);
  const out = new Uint8Array(16);
  new DataView(out.buffer).setUint32(0, 16 + data.byteLength, true);
  // The device-written buffers are larger than what the backend used: cut to `length`.
  rec.reply({
    queue: 1,
    head: 7,
    body: [out, data.subarray(0, 500_000), data.subarray(500_000), new Uint8Array(4096)],
    length: 16 + data.byteLength,
    latencyNs: 1234n,
    requestSeq: seq,
  });
  await writer.close();
  const d = decodeCapture(bytes());
  assert.equal(d.error, undefined);
  assert.equal(d.records.length, 2);
  const [req, rep] = d.records as [typeof d.records[0], typeof d.records[0]];
  assert.equal(req.kind, RecordKind.FUSE_REQUEST);
  assert.deepEqual(req.body, bodyOf(WRITE));
  assert.equal(req.continuations, Math.ceil(1048656 / MAX_RECORD_BODY) - 1);
  assert.deepEqual(unpackRequestAux(req.aux), { descriptors: 257, writable: 40 });
  assert.equal(req.head, 7);
  assert.equal(req.residenceNs, 1, "a measured 0 ns is stored as 1 (0: not measured)");
  assert.equal(req.interfaceName, "request.0");
  assert.equal(rep.kind, RecordKind.FUSE_REPLY);
  assert.equal(rep.seq, req.seq + req.continuations + 1);
  assert.equal(rep.flags, RecordFlag.PAIRED);
  assert.equal(rep.aux, 1234n);
  assert.equal(rep.head, 7);
  assert.equal(rep.residenceNs, undefined, "no replyResidence: not measured");
  assert.deepEqual(rep.body, concat([out, data]));
});

Deno.test("recorder: under a snap length a request keeps its header and its op struct", async () => {
  assert.equal(requestKeep(SEGMENTS), 40 + 40); // fuse_in_header + fuse_write_in
  assert.equal(requestKeep([Uint8Array.of(1, 2)]), 40);
  const { writer, bytes } = memoryWriter(0);
  const rec = new CaptureRecorder(writer);
  rec.request({
    queue: 1,
    head: 0,
    descriptors: 1,
    writableCapacity: 16,
    body: SEGMENTS,
    length: 1048656,
    residenceNs: 0n,
  });
  await writer.close();
  const [r] = decodeCapture(bytes()).records;
  assert.equal(r!.body.byteLength, 80);
  assert.equal(r!.originalLength, 1048656);
  assert.equal(r!.flags, RecordFlag.TRUNCATED);
  assert.equal(r!.continuations, 0);
});

Deno.test("recorder: a batch holds the capture so replyResidence stamps its replies", async () => {
  const { writer, bytes } = memoryWriter();
  const calls: string[] = [];
  const tap = new class extends MemoryRecorder {
    override beginBatch(): void {
      calls.push("begin");
    }
    override endBatch(): void {
      calls.push("end");
    }
    override replyResidence(seqs: readonly number[], ns: bigint): void {
      calls.push(`residence ${seqs.join(",")} ${ns}`);
    }
  }();
  const rec = new CaptureRecorder(writer, { tap });
  const getattr = new Uint8Array(48);
  new DataView(getattr.buffer).setUint32(0, 48, true);
  new DataView(getattr.buffer).setUint32(4, 3, true);
  const req = rec.request({
    queue: 0,
    head: 12,
    descriptors: 2,
    writableCapacity: 4096,
    body: [getattr],
    length: 48,
    residenceNs: 2500n,
  });
  const reply = (head: number, size: number) =>
    rec.reply({
      queue: 0,
      head,
      body: [new Uint8Array(size)],
      length: size,
      latencyNs: 10n,
      requestSeq: req,
    });
  rec.beginBatch();
  assert.ok(writer.held);
  const seqs = [reply(12, 16), reply(13, 600_000), reply(14, 16)];
  rec.replyResidence(seqs, 3100n);
  rec.endBatch();
  assert.ok(!writer.held);
  // Outside a batch, a reply that was written out before its residence keeps 0.
  const late = reply(15, 16);
  await writer.flush();
  rec.replyResidence([late], 99n);
  await writer.close();
  const recs = decodeCapture(bytes()).records;
  assert.deepEqual(
    recs.map((r) => [r.kind, r.head, r.residenceNs, r.interfaceName]),
    [
      [RecordKind.FUSE_REQUEST, 12, 2500, "hiprio"],
      [RecordKind.FUSE_REPLY, 12, 3100, "hiprio"],
      [RecordKind.FUSE_REPLY, 13, 3100, "hiprio"],
      [RecordKind.FUSE_REPLY, 14, 3100, "hiprio"],
      [RecordKind.FUSE_REPLY, 15, undefined, "hiprio"],
    ],
  );
  assert.deepEqual(unpackRequestAux(recs[0]!.aux), { descriptors: 2, writable: 4096 });
  // The tap sees the batch and the residences (seqs are the capture's: the chain took 3).
  assert.deepEqual(calls, ["begin", "residence 1,2,5 3100", "end", "residence 6 99"]);
});

Deno.test("recorder: a request whose fuse_in_header lies is flagged MALFORMED, with a note", async () => {
  const { writer, bytes } = memoryWriter();
  const rec = new CaptureRecorder(writer);
  const request = (b: Uint8Array) =>
    rec.request({
      queue: 1,
      head: 3,
      descriptors: 2,
      writableCapacity: 4096,
      body: [b.subarray(0, 5), b.subarray(5)],
      length: b.byteLength,
      residenceNs: 1n,
    });
  const header = (len: number, opcode: number, size = 56) => {
    const b = new Uint8Array(size);
    new DataView(b.buffer).setUint32(0, len, true);
    new DataView(b.buffer).setUint32(4, opcode, true);
    return b;
  };
  request(header(56, 3)); // GETATTR, whole: not flagged
  request(header(40, 3)); // len shorter than the chain
  request(header(56, 4242)); // unknown opcode
  request(header(40, 3, 20)); // shorter than the header itself
  await writer.close();
  const recs = decodeCapture(bytes()).records;
  const reqs = recs.filter((r) => r.kind === RecordKind.FUSE_REQUEST);
  assert.deepEqual(reqs.map((r) => r.flags & RecordFlag.MALFORMED), [
    0,
    RecordFlag.MALFORMED,
    RecordFlag.MALFORMED,
    RecordFlag.MALFORMED,
  ]);
  const notes = recs.filter((r) => r.kind === RecordKind.NOTE).map((r) =>
    JSON.parse(new TextDecoder().decode(r.body))
  );
  assert.deepEqual(notes.map((n) => n.type), Array(3).fill("malformed_request"));
  assert.match(notes[0].reason, /fuse_in_header.len 40, but the chain holds 56 bytes/);
  assert.match(notes[1].reason, /unknown opcode 4242/);
  assert.match(notes[2].reason, /20 bytes, shorter than fuse_in_header/);
  assert.equal(notes[0].seq, reqs[1]!.seq);
});

Deno.test("recorder: a failing capture is reported once and never thrown at the proxy", () => {
  let fail = false;
  const writer = new CaptureWriter({
    writeSync: (p) => {
      if (fail) throw new Error("No space left on device (os error 28)");
      return p.byteLength;
    },
  }, { bufferSize: 4096 });
  const errors: string[] = [];
  const rec = new CaptureRecorder(writer, { onWriteError: (e) => errors.push(e.message) });
  const body = new Uint8Array(1000);
  new DataView(body.buffer).setUint32(0, 1000, true);
  new DataView(body.buffer).setUint32(4, 3, true);
  const request = () =>
    rec.request({
      queue: 1,
      head: 0,
      descriptors: 1,
      writableCapacity: 0,
      body: [body],
      length: 1000,
      residenceNs: 1n,
    });
  request();
  fail = true;
  for (let i = 0; i < 50; i++) {
    request();
    rec.beginBatch();
    rec.endBatch();
    rec.note({ type: "x" });
  }
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /No space left on device/);
  assert.ok(writer.dropped > 40);
});
