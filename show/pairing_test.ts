import assert from "node:assert/strict";
import { encodeRequest, FuseSession, Opcode } from "../decode/fuse.ts";
import { encodeMessage } from "../decode/vhost_user.ts";
import { CaptureBuilder, T0 } from "./_testing.ts";
import {
  type FuseOperation,
  Pairer,
  pairRecords,
  type ShowEvent,
  type ShowRecord,
} from "./pairing.ts";

const entry = { nodeid: 7n, mode: 0o100644, size: 7n, nlink: 1 };

function ops(events: ShowEvent[]): FuseOperation[] {
  return events.filter((e): e is FuseOperation => e.type === "fuse");
}

function lookup(b: CaptureBuilder, unique: bigint, name: string, queue = 1): CaptureBuilder {
  return b.request(queue, { header: { opcode: Opcode.LOOKUP, unique, nodeid: 1n }, names: [name] });
}

Deno.test("pairing: replies pair by unique; lines come in reply order, or request order", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "a");
  lookup(b, 4n, "b");
  b.reply(1, Opcode.LOOKUP, { header: { unique: 4n }, arg: entry }, 3_000);
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n, error: -2 } }, 5_000);
  const recs = await b.records();

  const byReply = ops(pairRecords(recs));
  assert.deepEqual(byReply.map((o) => o.unique), [4n, 2n]);
  const [first, second] = byReply;
  assert.equal(first?.status, "ok");
  assert.equal(first?.name, "LOOKUP");
  assert.equal(first?.request?.decoded?.names[0], "b");
  assert.equal(first?.reply?.decoded?.arg?.nodeid, 7n);
  assert.equal(first?.latencyNs, 3_000);
  assert.equal(first?.timestampNs, T0 + 1_000n, "the time is the request's");
  assert.equal(second?.status, "error");
  assert.equal(second?.errno, 2);
  assert.equal(second?.latencyNs, 5_000);

  const byRequest = ops(pairRecords(recs, { order: "request" }));
  assert.deepEqual(byRequest.map((o) => o.unique), [2n, 4n]);
});

Deno.test("pairing: latency falls back to the timestamp difference when aux is 0", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "a");
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry }, 0, T0 + 42_000n);
  const [op] = ops(pairRecords(await b.records()));
  assert.equal(op?.latencyNs, 42_000);
});

Deno.test("pairing: the same unique on two queues is two operations", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "on-q1", 1);
  lookup(b, 2n, "on-q2", 2);
  b.reply(2, Opcode.LOOKUP, { header: { unique: 2n, error: -13 } });
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry });
  const got = ops(pairRecords(await b.records()));
  assert.deepEqual(
    got.map((o) => [o.queue, o.request?.decoded?.names[0], o.status]),
    [[2, "on-q2", "error"], [1, "on-q1", "ok"]],
  );
});

Deno.test("pairing: FORGETs end with 0-byte used entries, oldest first, without a result", async () => {
  const b = new CaptureBuilder();
  for (const [u, n] of [[10n, 3n], [12n, 4n]] as const) {
    b.request(0, { header: { opcode: Opcode.FORGET, unique: u, nodeid: n }, arg: { nlookup: 2n } });
  }
  b.request(0, {
    header: { opcode: Opcode.BATCH_FORGET, unique: 14n },
    items: [{ nodeid: 5n, nlookup: 1n }, { nodeid: 6n, nlookup: 1n }],
  });
  b.rawReply(0, new Uint8Array(0), 229_000);
  b.rawReply(0, new Uint8Array(0), 185_000);
  b.rawReply(0, new Uint8Array(0), 100_000);
  const got = ops(pairRecords(await b.records()));
  assert.deepEqual(got.map((o) => [o.name, o.nodeid, o.status, o.noReply, o.latencyNs]), [
    ["FORGET", 3n, "ok", true, 229_000],
    ["FORGET", 4n, "ok", true, 185_000],
    ["BATCH_FORGET", 0n, "ok", true, 100_000],
  ]);
  assert.equal(got[0]?.reply?.decoded, undefined);
  assert.equal(got[2]?.request?.decoded?.items.length, 2);
});

Deno.test("pairing: 0-byte used entries end the FORGET with the same descriptor head", async () => {
  const b = new CaptureBuilder();
  for (const [u, n, head] of [[10n, 3n, 5], [12n, 4n, 6], [14n, 5n, 7]] as const) {
    b.request(
      0,
      { header: { opcode: Opcode.FORGET, unique: u, nodeid: n }, arg: { nlookup: 1n } },
      undefined,
      head,
    );
  }
  // The back-end returns the chains out of order.
  b.rawReply(0, new Uint8Array(0), 100, undefined, 6);
  b.rawReply(0, new Uint8Array(0), 200, undefined, 7);
  b.rawReply(0, new Uint8Array(0), 300, undefined, 5);
  const got = ops(pairRecords(await b.records()));
  assert.deepEqual(got.map((o) => [o.nodeid, o.latencyNs]), [[4n, 100], [5n, 200], [3n, 300]]);
  assert.equal(got[0]?.reply?.record.head, 6);
});

Deno.test("pairing: requests without a reply come out unanswered at the end, in request order", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "a");
  lookup(b, 4n, "b");
  b.request(0, { header: { opcode: Opcode.FORGET, unique: 6n, nodeid: 3n }, arg: { nlookup: 1n } });
  lookup(b, 8n, "c");
  b.reply(1, Opcode.LOOKUP, { header: { unique: 4n }, arg: entry });
  const events: ShowEvent[] = [];
  const pairer = new Pairer({ onEvent: (e) => events.push(e) });
  for (const r of await b.records()) pairer.push(r);
  assert.equal(pairer.stats.inFlight, 3);
  assert.equal(ops(events).length, 1);
  pairer.finish();
  pairer.finish(); // idempotent
  const got = ops(events);
  assert.deepEqual(got.map((o) => [o.unique, o.status]), [
    [4n, "ok"],
    [2n, "unanswered"],
    [6n, "unanswered"],
    [8n, "unanswered"],
  ]);
  assert.equal(got[1]?.reply, undefined);
  assert.equal(got[1]?.latencyNs, undefined);
  assert.equal(pairer.stats.unanswered, 3);
  assert.equal(pairer.stats.inFlight, 0);
  assert.throws(() => pairer.push(got[0]!.request!.record), /after finish/);
});

Deno.test("pairing: a reply without its request is shown with the reason", async () => {
  const b = new CaptureBuilder();
  b.reply(1, Opcode.LOOKUP, { header: { unique: 0x86n, error: -2 } }, 7_000);
  b.reply(1, Opcode.GETATTR, { header: { unique: 0x88n }, arg: { mode: 0o40755 } });
  const events = pairRecords(await b.records());
  const got = ops(events);
  assert.equal(got.length, 2);
  assert.equal(got[0]?.request, undefined);
  assert.equal(got[0]?.status, "error", "the error is still known");
  assert.equal(got[0]?.errno, 2);
  assert.equal(got[0]?.latencyNs, 7_000);
  assert.match(got[0]?.problem ?? "", /no request with unique 0x86 on queue 1/);
  assert.equal(got[1]?.status, "undecodable");
  assert.equal(got[1]?.unique, 0x88n);
});

Deno.test("pairing: an undecodable request still pairs by its header and keeps the reason", async () => {
  const b = new CaptureBuilder();
  const session = new FuseSession({ minor: 38, flags: 0n });
  const good = encodeRequest(
    { header: { opcode: Opcode.LOOKUP, unique: 2n, nodeid: 1n }, names: ["abc"] },
    session,
  );
  const bad = good.slice();
  bad[bad.length - 1] = 0x41; // the name loses its NUL
  b.rawRequest(1, bad);
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry });
  b.rawRequest(1, new Uint8Array(12)); // shorter than a header
  const [op, tiny] = ops(pairRecords(await b.records()));
  assert.equal(op?.name, "LOOKUP");
  assert.equal(op?.nodeid, 1n);
  assert.equal(op?.request?.decoded, undefined);
  assert.match(op?.request?.problem ?? "", /NUL/);
  assert.equal(op?.status, "undecodable");
  assert.equal(op?.reply?.decoded?.arg?.nodeid, 7n, "the reply decodes with the header's opcode");
  assert.equal(tiny?.status, "undecodable");
  assert.match(tiny?.problem ?? "", /shorter than fuse_in_header/);
});

Deno.test("pairing: a body cut by the snap length decodes as far as it goes", async () => {
  const b = new CaptureBuilder(38, 4096);
  b.request(1, {
    header: { opcode: Opcode.WRITE, unique: 2n, nodeid: 12n },
    arg: { fh: 3n, offset: 0n },
    data: new Uint8Array(65536),
  });
  b.reply(1, Opcode.WRITE, { header: { unique: 2n }, arg: { size: 65536 } });
  const recs = await b.records();
  assert.ok(recs[0]!.originalLength > recs[0]!.body.byteLength, "the writer cut the body");
  const [op] = ops(pairRecords(recs));
  assert.equal(op?.status, "ok");
  assert.equal(op?.problem, undefined);
  assert.equal(op?.request?.decoded?.arg?.size, 65536);
  assert.equal(op?.request?.decoded?.truncated?.want, 65536 + 80);
});

Deno.test("pairing: the in-flight cap evicts the oldest request as unanswered", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "a");
  lookup(b, 4n, "b");
  lookup(b, 6n, "c");
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry });
  b.reply(1, Opcode.LOOKUP, { header: { unique: 6n }, arg: entry });
  const events: ShowEvent[] = [];
  const pairer = new Pairer({ onEvent: (e) => events.push(e), maxInFlight: 2 });
  for (const r of await b.records()) pairer.push(r);
  pairer.finish();
  const got = ops(events);
  assert.deepEqual(got.map((o) => [o.unique, o.status, o.request !== undefined]), [
    [2n, "unanswered", true],
    [2n, "undecodable", false], // its reply arrives after the eviction
    [6n, "ok", true],
    [4n, "unanswered", true],
  ]);
  assert.match(got[0]?.problem ?? "", /evicted: more than 2 requests in flight/);
  assert.equal(pairer.stats.evicted, 1);
  assert.equal(pairer.stats.orphanReplies, 1);
});

Deno.test("pairing: request order holds completed operations behind an earlier one, bounded", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "slow");
  for (let i = 0; i < 5; i++) {
    lookup(b, BigInt(4 + 2 * i), `f${i}`);
    b.reply(1, Opcode.LOOKUP, { header: { unique: BigInt(4 + 2 * i) }, arg: entry });
  }
  const recs = await b.records();
  const events: ShowEvent[] = [];
  const pairer = new Pairer({ onEvent: (e) => events.push(e), order: "request" });
  for (const r of recs) pairer.push(r);
  assert.equal(events.length, 0, "everything waits for the first request");
  pairer.finish();
  assert.deepEqual(ops(events).map((o) => o.unique), [2n, 4n, 6n, 8n, 10n, 12n]);

  // With a window of 3 the first is given up as unanswered before the end.
  const bounded: ShowEvent[] = [];
  const p2 = new Pairer({ onEvent: (e) => bounded.push(e), order: "request", maxInFlight: 3 });
  for (const r of recs) p2.push(r);
  assert.ok(bounded.length >= 1);
  assert.equal((bounded[0] as FuseOperation).unique, 2n);
  assert.equal((bounded[0] as FuseOperation).status, "unanswered");
  p2.finish();
  assert.deepEqual(ops(bounded).map((o) => o.unique), [2n, 4n, 6n, 8n, 10n, 12n]);
});

Deno.test("pairing: INIT sets the session's minor; later structs follow it", async () => {
  const b = new CaptureBuilder(45);
  b.request(1, {
    header: { opcode: Opcode.INIT, unique: 2n },
    arg: { major: 7, minor: 38, max_readahead: 131072, flags: 1 },
  });
  b.session.observeInitRequest({ major: 7, minor: 38 });
  b.reply(1, Opcode.INIT, {
    header: { unique: 2n },
    arg: { major: 7, minor: 36, max_write: 1048576, flags: 1 },
  });
  const events: ShowEvent[] = [];
  const pairer = new Pairer({ onEvent: (e) => events.push(e) });
  for (const r of await b.records()) pairer.push(r);
  assert.equal(pairer.session.minor, 36);
  const [init] = ops(events);
  assert.equal(init?.request?.decoded?.arg?.minor, 38);
  assert.equal(init?.reply?.decoded?.arg?.minor, 36);
});

Deno.test("pairing: vhost-user messages, notes and seq gaps are control events in file order", async () => {
  const b = new CaptureBuilder();
  b.note({ type: "start", version: "0.1.0" });
  b.vhostUser(0, encodeMessage({ channel: "frontend", request: "GET_FEATURES" }));
  b.vhostUser(
    1,
    encodeMessage({
      channel: "frontend",
      request: "GET_FEATURES",
      isReply: true,
      payload: { kind: "u64", value: 1n << 32n },
    }),
  );
  b.lose(3);
  b.vhostUser(0, new Uint8Array([1, 2, 3])); // not a message
  lookup(b, 2n, "a");
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry });
  const events = pairRecords(await b.records());
  assert.deepEqual(events.map((e) => e.type), [
    "note",
    "vhost-user",
    "vhost-user",
    "gap",
    "vhost-user",
    "fuse",
  ]);
  const [note, req, rep, gap, bad] = events;
  assert.equal(note?.type === "note" && note.note?.type, "start");
  assert.equal(req?.type === "vhost-user" && req.message?.name, "GET_FEATURES");
  assert.equal(rep?.type === "vhost-user" && rep.message?.isReply, true);
  assert.deepEqual(gap?.type === "gap" && [gap.firstSeq, gap.count], [3, 3]);
  assert.ok(bad?.type === "vhost-user" && bad.message === undefined && bad.problem !== undefined);
});

Deno.test("pairing: unknown record kinds pass through as `record` events", () => {
  const rec: ShowRecord = {
    timestampNs: T0,
    kind: 42,
    flags: 0,
    queue: 0xffff,
    fdCount: 0,
    direction: 0,
    seq: 0,
    aux: 0n,
    body: new Uint8Array(3),
    originalLength: 3,
  };
  const [ev] = pairRecords([rec]);
  assert.equal(ev?.type, "record");
});

Deno.test("pairing: a request waiting long stops pinning the reader's buffer", async () => {
  const b = new CaptureBuilder();
  lookup(b, 2n, "waits");
  for (let i = 0; i < 9000; i++) {
    lookup(b, BigInt(4 + 2 * i), "x");
    b.reply(1, Opcode.LOOKUP, { header: { unique: BigInt(4 + 2 * i), error: -2 } });
  }
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry });
  const recs = await b.records();
  const shared = recs[0]!.body.buffer;
  const got = ops(pairRecords(recs));
  const waited = got[got.length - 1];
  assert.equal(waited?.unique, 2n);
  assert.equal(waited?.request?.decoded?.names[0], "waits");
  assert.notEqual(waited?.request?.record.body.buffer, shared, "its body was copied out");
  assert.equal(got[0]?.request?.record.body.buffer, shared, "short-lived ones are not copied");
});
