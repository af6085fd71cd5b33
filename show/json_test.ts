import assert from "node:assert/strict";
import { Opcode } from "../decode/fuse.ts";
import { encodeMessage } from "../decode/vhost_user.ts";
import { CaptureBuilder, T0 } from "./_testing.ts";
import { isoTime, jsonBigint, jsonLine } from "./json.ts";
import { pairRecords } from "./pairing.ts";

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
