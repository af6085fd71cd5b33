import assert from "node:assert/strict";
import { type CaptureRecord, decodeCapture } from "../capture/mod.ts";
import { Opcode } from "../decode/fuse.ts";
import { encodeMessage } from "../decode/vhost_user.ts";
import { CaptureBuilder, T0 } from "./_testing.ts";
import {
  controlJson,
  isoTime,
  jsonBigint,
  jsonLine,
  LineBuffer,
  operationJson,
  writeJsonLine,
} from "./json.ts";
import { pairRecords, type ShowEvent } from "./pairing.ts";

Deno.test("json: 64-bit values are numbers when exact, else strings", () => {
  assert.equal(jsonBigint(42n), 42);
  assert.equal(jsonBigint(9007199254740991n), 9007199254740991);
  assert.equal(jsonBigint(9007199254740992n), "9007199254740992");
  assert.equal(jsonBigint(-5n), -5);
  assert.equal(isoTime(T0 + 123_456_789n), "2026-11-25T15:00:00.123456789Z");
});

Deno.test("json: an operation carries every decoded field", async () => {
  const b = new CaptureBuilder();
  const resend = (1n << 63n) | 6n;
  b.request(1, {
    header: { opcode: Opcode.RENAME2, unique: resend, nodeid: 8n, uid: 1000, pid: 77 },
    arg: { newdir: 9n, flags: 1 },
    names: ["a", "b"],
  }, T0);
  b.reply(1, Opcode.RENAME2, { header: { unique: resend, error: -17 } }, 12_300);
  b.request(1, {
    header: { opcode: Opcode.READDIRPLUS, unique: 8n, nodeid: 2n },
    arg: { fh: 0n, size: 4096 },
  });
  b.reply(1, Opcode.READDIRPLUS, {
    header: { unique: 8n },
    entries: [{
      ino: 10n,
      off: 0xffffffffffffffffn >> 1n,
      type: 8,
      name: "f1",
      entry: { nodeid: 10n, mode: 0o100644, size: 7n },
    }],
  });
  const [rename, readdir] = pairRecords(await b.records()).map((e) => JSON.parse(jsonLine(e)));
  assert.equal(rename.type, "fuse");
  assert.equal(rename.op, "RENAME2");
  assert.equal(rename.opcode, Opcode.RENAME2);
  assert.equal(rename.unique, "9223372036854775814", "the resend bit makes it unsafe");
  assert.equal(rename.nodeid, 8);
  assert.equal(rename.status, "error");
  assert.equal(rename.errno, 17);
  assert.equal(rename.error, "EEXIST");
  assert.equal(rename.latency_ns, 12_300);
  assert.equal(rename.time, "2026-11-25T15:00:00.000000000Z");
  assert.equal(rename.timestamp_ns, T0.toString());
  assert.deepEqual(rename.request.header, {
    len: 40 + 16 + 4,
    opcode: Opcode.RENAME2,
    unique: "9223372036854775814",
    nodeid: 8,
    uid: 1000,
    gid: 0,
    pid: 77,
    total_extlen: 0,
  });
  assert.deepEqual(rename.request.arg, { newdir: 9, flags: 1 }, "padding is left out");
  assert.deepEqual(rename.request.names, { oldname: "a", newname: "b" });
  assert.deepEqual(rename.reply.header, { len: 16, error: -17, unique: "9223372036854775814" });
  assert.equal(rename.reply.seq, 1);
  assert.equal(typeof rename.reply.offset, "number");

  assert.equal(readdir.reply.entries.length, 1);
  const [e] = readdir.reply.entries;
  assert.equal(e.name, "f1");
  assert.equal(e.off, "9223372036854775807");
  assert.equal(e.entry.nodeid, 10);
  assert.equal(e.entry.mode, 0o100644);
  assert.equal(readdir.request.arg.size, 4096);
});

Deno.test("json: control events", async () => {
  const b = new CaptureBuilder();
  b.vhostUser(
    1,
    encodeMessage({
      channel: "frontend",
      request: "GET_VRING_BASE",
      isReply: true,
      payload: { kind: "vring_state", index: 1, num: 105 },
    }),
    0,
    T0,
  );
  b.note({ type: "stop", closed_by: "frontend" });
  const [vu, note] = pairRecords(await b.records()).map((e) => JSON.parse(jsonLine(e)));
  assert.equal(vu.type, "vhost-user");
  assert.equal(vu.direction, "BACKEND_TO_FRONTEND");
  assert.equal(vu.name, "GET_VRING_BASE");
  assert.equal(vu.reply, true);
  assert.deepEqual(vu.payload, { kind: "vring_state", index: 1, num: 105 });
  assert.equal(vu.text, "index=1 num=105");
  assert.deepEqual(note.note, { type: "stop", closed_by: "frontend" });
});

/** The reference text of an event: JSON.stringify of the object builders. */
function reference(e: ShowEvent): string {
  return JSON.stringify(e.type === "fuse" ? operationJson(e) : controlJson(e));
}

/** Every event's line, written one after the other into a buffer that starts tiny. */
function assertSameText(events: readonly ShowEvent[], what: string): void {
  const out = new LineBuffer(1);
  for (const e of events) {
    const start = out.length;
    writeJsonLine(e, out);
    const line = new TextDecoder().decode(out.bytes.subarray(start, out.length));
    const want = reference(e);
    assert.equal(line, want, `${what}: ${want}`);
    assert.equal(jsonLine(e), want, what);
    out.byte(10);
  }
}

async function awkwardRecords(): Promise<CaptureRecord[]> {
  const b = new CaptureBuilder(38, 200); // cuts the WRITE and READ data
  const file = { nodeid: 7n, mode: 0o100644, size: (1n << 60n) + 3n, nlink: 1, ino: 7n };
  let u = 2n;
  const pair = (op: keyof typeof Opcode, req: object, rep: object, err = 0, queue = 1) => {
    b.request(queue, { ...req, header: { opcode: Opcode[op], unique: u, nodeid: 1n << 62n } });
    b.reply(queue, Opcode[op], { ...rep, header: { unique: u, error: err } }, 1234);
    u += 2n;
  };
  pair("LOOKUP", { names: ['quote" back\\slash\nnewline\u0001'] }, { arg: file });
  pair("LOOKUP", { names: ["ünïcödé → 😀", "ignored"].slice(0, 1) }, {}, -2);
  pair("LOOKUP", { names: ["bytes \udcff\udc80 not UTF-8"] }, { arg: file });
  pair("RENAME2", { names: ["a", "b"], arg: { newdir: 3n, flags: 1 } }, {}, -17);
  pair("CREATE", { names: ["c"], arg: { flags: 0o101, mode: 0o100644 } }, {
    arg: { ...file, fh: 1n },
  });
  pair("WRITE", { arg: { fh: 1n, offset: 1n << 63n }, data: new Uint8Array(300) }, {
    arg: { size: 300 },
  });
  pair("READ", { arg: { fh: 1n, size: 4096 } }, { data: new Uint8Array(200) });
  pair("READDIRPLUS", { arg: { fh: 1n, size: 4096 } }, {
    entries: [{ ino: 1n, off: 1n, type: 4, name: ".", entry: file }],
  });
  b.request(0, {
    header: { opcode: Opcode.BATCH_FORGET, unique: u, nodeid: 0n },
    items: [{ nodeid: 5n, nlookup: 1n }, { nodeid: 6n, nlookup: 2n }],
  });
  b.rawReply(0, new Uint8Array(0));
  pair("SETXATTR", { names: ["user.a"], data: new Uint8Array(4) }, {}, -95);
  pair("GETLK", { arg: { fh: 1n } }, { arg: { type: 2, pid: 4 } });
  b.rawRequest(1, new Uint8Array(20)); // shorter than a header
  b.rawReply(1, new Uint8Array(16)); // no request
  b.request(1, { header: { opcode: 4000, unique: u, nodeid: 1n }, data: new Uint8Array(3) });
  b.request(0, { header: { opcode: Opcode.FORGET, unique: u + 2n, nodeid: 3n }, arg: {} });
  b.rawReply(0, new Uint8Array(0));
  b.vhostUser(0, encodeMessage({ channel: "frontend", request: "SET_OWNER" }), 0);
  b.note({ type: "stop", closed_by: "frontend", "1": "integer-like key first" });
  b.lose(2);
  b.request(1, { header: { opcode: Opcode.GETATTR, unique: u + 4n, nodeid: 1n }, arg: {} });
  return await b.records();
}

Deno.test("json: the written text is JSON.stringify of the object builders, byte for byte", async () => {
  const fixture = decodeCapture(
    await Deno.readFile(new URL("../tests/fixtures/guest_session.pcapng", import.meta.url)),
  );
  assertSameText(pairRecords(fixture.records), "fixture");
  assertSameText(pairRecords(fixture.records, { order: "request" }), "fixture, request order");
  const awkward = pairRecords(await awkwardRecords());
  assert.ok(awkward.length >= 18, String(awkward.length));
  assertSameText(awkward, "awkward");
  // Times the writer takes other paths for: the first second of the epoch, before it.
  const op = awkward.find((e) => e.type === "fuse")!;
  for (const ns of [0n, 999n, 1_000_000_001n, -1n, -1_500_000_000n]) {
    assertSameText([{ ...op, timestampNs: ns }], `time ${ns}`);
  }
});

Deno.test("json: damaged captures write the same text as the object builders", async () => {
  const recs = await awkwardRecords();
  let x = 12345;
  const r = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  for (let round = 0; round < 200; round++) {
    const damaged = recs.map((rec) => {
      if (r() > 0.3) return rec;
      const body = rec.body.slice();
      for (let i = 0; i < 3 && body.length > 0; i++) {
        body[Math.floor(r() * body.length)] = r() * 256;
      }
      return { ...rec, body };
    });
    assertSameText(pairRecords(damaged, { maxInFlight: 1 + (round % 5) }), `round ${round}`);
  }
});

Deno.test("json: numbers at every digit boundary are written as JSON.stringify writes them", () => {
  const values: bigint[] = [0n, 1n, 2n ** 64n - 1n, -1n, -(2n ** 63n)];
  for (let d = 1n; d < 10n ** 20n; d *= 10n) values.push(d - 1n, d, d + 1n);
  for (const e of [31n, 32n, 52n, 53n, 63n]) values.push(2n ** e - 1n, 2n ** e, 2n ** e + 1n);
  const out = new LineBuffer();
  const dec = new TextDecoder();
  for (const value of values) {
    for (const ns of [0n, 999_999_999n, T0, T0 + 999_999_999n, T0 - 1n]) {
      const ev: ShowEvent = {
        type: "notify",
        record: { seq: 3, body: new Uint8Array(0) } as unknown as CaptureRecord,
        timestampNs: ns,
        queue: 1,
        direction: 0,
        value,
      };
      out.clear();
      writeJsonLine(ev, out);
      assert.equal(
        dec.decode(out.bytes.subarray(0, out.length)),
        JSON.stringify(controlJson(ev)),
        `${value} at ${ns}`,
      );
    }
  }
});
