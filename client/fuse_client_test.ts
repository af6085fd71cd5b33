import assert from "node:assert/strict";
import { EventLoop, socketpair } from "../sys/mod.ts";
import {
  decodeRequest,
  encodeErrorReply,
  encodeReply,
  FuseSession,
  Opcode,
} from "../decode/fuse.ts";
import { FakeBackend, type FakeBackendOptions } from "./_fake_backend.ts";
import { VhostUserFrontend } from "./frontend.ts";
import { DEFAULT_INIT_FLAGS, FuseClient, FuseErrnoError } from "./fuse_client.ts";
import { ProtocolError } from "./errors.ts";
import { formatComparison, median, summarizeLatency } from "./bench.ts";

/**
 * A tiny FUSE server for the fake back-end: INIT, LOOKUP ("x" exists as
 * nodeid 5, anything else ENOENT), GETATTR, READ (bytes = offset & 0xff),
 * and `unique + 1000` for opcode 200 (a broken daemon).
 */
function fuseServer(seen: number[]): (bytes: Uint8Array) => Uint8Array {
  const session = new FuseSession();
  return (bytes) => {
    const req = decodeRequest(bytes, session);
    const { opcode, unique } = req.header;
    seen.push(opcode);
    switch (opcode) {
      case Opcode.INIT:
        return encodeReply(
          {
            header: { unique },
            arg: { major: 7, minor: 31, max_write: 65536, flags: Number(req.arg!.flags) & 0xff },
          },
          req,
          session,
        );
      case Opcode.LOOKUP:
        if (req.names[0] !== "x") return encodeErrorReply(unique, 2);
        return encodeReply(
          { header: { unique }, arg: { nodeid: 5n, mode: 0o100644, size: 3n } },
          req,
          session,
        );
      case Opcode.GETATTR:
        return encodeReply(
          { header: { unique }, arg: { ino: req.header.nodeid, mode: 0o40755 } },
          req,
          session,
        );
      case Opcode.READ: {
        const off = Number(req.arg!.offset);
        const data = new Uint8Array(Number(req.arg!.size)).fill(off & 0xff);
        return encodeReply({ header: { unique }, data }, req, session);
      }
      case 200:
        return encodeErrorReply(unique + 1000n, 5);
      default:
        return encodeErrorReply(unique, 38);
    }
  };
}

async function withClient(
  fake: Partial<Omit<FakeBackendOptions, "fd" | "loop">>,
  fn: (c: FuseClient, seen: number[]) => Promise<void>,
): Promise<void> {
  const loop = new EventLoop();
  const running = loop.run();
  const [a, b] = socketpair();
  const seen: number[] = [];
  const server = fuseServer(seen);
  const backend = new FakeBackend({ fd: b, loop, serve: (r) => server(r), ...fake });
  const fe = new VhostUserFrontend(a, { loop });
  try {
    await fe.start({ queueSize: 64 });
    const c = new FuseClient(fe);
    await fn(c, seen);
  } finally {
    await fe.close();
    backend.close();
    loop.stop();
    await running;
    await loop.close();
  }
}

Deno.test("FuseClient: INIT first with the default flags, the session follows the reply", async () => {
  await withClient({}, async (c, seen) => {
    assert.equal(c.initReply, undefined);
    const out = await c.init();
    assert.deepEqual(seen, [Opcode.INIT]);
    assert.equal(out.minor, 31);
    assert.equal(c.session.minor, 31);
    assert.equal(c.session.flags, DEFAULT_INIT_FLAGS & 0xffn);
    assert.equal(c.maxWrite, 65536);
    assert.deepEqual(c.requestQueues, [1]);
  });
});

Deno.test("FuseClient: typed helpers, errors as FuseErrnoError, ENOSYS as a result", async () => {
  await withClient({}, async (c) => {
    await c.init();
    const e = await c.lookup(1n, "x");
    assert.equal(e.nodeid, 5n);
    assert.equal(e.out.size, 3n);
    await assert.rejects(c.lookup(1n, "y"), (err: unknown) => {
      assert.ok(err instanceof FuseErrnoError);
      assert.equal(err.errno, 2);
      assert.equal(err.errnoName, "ENOENT");
      assert.match(err.message, /FUSE LOOKUP nodeid 1: ENOENT/);
      return true;
    });
    assert.equal((await c.getattr(7n)).ino, 7n);
    const r = await c.send({ opcode: Opcode.STATFS, nodeid: 1n });
    assert.equal(r.errno, 38);
    assert.ok(r.latencyMs >= 0);
  });
});

Deno.test("FuseClient: replies completed out of order are matched to their requests", async () => {
  await withClient({ reorder: true }, async (c) => {
    await c.init();
    const reads = Array.from({ length: 20 }, (_, i) => c.read(5n, 0n, i, 8));
    const got = await Promise.all(reads);
    got.forEach((d, i) => assert.deepEqual([...d], new Array(8).fill(i)));
    assert.ok(c.frontend.queue(1)!.stats.peakInFlight > 1);
  });
});

Deno.test("FuseClient: a reply with another unique is a ProtocolError; FORGET goes to hiprio", async () => {
  await withClient({}, async (c, seen) => {
    await c.init();
    await assert.rejects(c.send({ opcode: 200, nodeid: 1n }), (err: unknown) => {
      assert.ok(err instanceof ProtocolError);
      assert.match(err.message, /reply carries unique/);
      return true;
    });
    const hiprio = c.frontend.queue(0)!;
    const before = hiprio.stats.completed;
    await c.forget(5n, 2n);
    assert.equal(hiprio.stats.completed, before + 1);
    assert.equal(seen.at(-1), Opcode.FORGET);
  });
});

Deno.test("bench helpers: median, latency percentiles, the comparison table", () => {
  assert.equal(median([]), 0);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  const s = summarizeLatency([Float64Array.from([5, 1, 3]), Float64Array.from([2, 4])]);
  assert.deepEqual(s, { count: 5, p50: 3, p90: 5, p99: 5, max: 5, mean: 3 });
  assert.equal(summarizeLatency([]).count, 0);
  const text = formatComparison({
    workload: "rand",
    depth: 4,
    rounds: 3,
    durationMs: 1500,
    backends: [
      { label: "a", rounds: [], opsPerSec: 1000, mbPerSec: 4.1, latencyUs: s, ratio: 1 },
      { label: "bb", rounds: [], opsPerSec: 1500, mbPerSec: 6.1, latencyUs: s, ratio: 1.5 },
    ],
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "rand, depth 4: 3 interleaved rounds of 1.5 s, medians");
  assert.match(lines[2]!, /^ {2}a +1000 +4\.1 +3 +5 +5 +5 +1\.000$/);
  assert.match(lines[3]!, /^ {2}bb +1500 +6\.1 .* 1\.500$/);
});
