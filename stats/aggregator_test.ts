import assert from "node:assert/strict";
import { Opcode } from "../decode/fuse.ts";
import { RecordKind } from "../decode/pcapng.ts";
import { RecordMaker, T0 } from "./_testing.ts";
import { type CaptureStats, type OperationStats, RELATIVE_ERROR } from "./mod.ts";
import { collectStats } from "./collect.ts";

const entry = { nodeid: 7n, mode: 0o100644, size: 7n, nlink: 1 };

function op(stats: CaptureStats, name: string): OperationStats {
  const r = stats.operations.find((o) => o.name === name);
  assert.ok(r !== undefined, `no ${name} row in ${stats.operations.map((o) => o.name)}`);
  return r;
}

function lookup(m: RecordMaker, unique: bigint, name: string, error: number, lat: number): void {
  m.request(1, { header: { opcode: Opcode.LOOKUP, unique, nodeid: 1n }, names: [name] });
  m.reply(
    1,
    Opcode.LOOKUP,
    error === 0 ? { header: { unique }, arg: entry } : { header: { unique, error } },
    lat,
  );
}

Deno.test("aggregator: errors by errno name, per operation and in total", async () => {
  const m = new RecordMaker();
  let u = 2n;
  for (const e of [-2, -2, 0, -2, -13, 0]) lookup(m, u += 2n, "x", e, 50_000);
  m.request(1, { header: { opcode: Opcode.RMDIR, unique: u += 2n, nodeid: 1n }, names: ["d"] });
  m.reply(1, Opcode.RMDIR, { header: { unique: u, error: -39 } }, 90_000);
  const { stats } = await collectStats(m.records);
  const l = op(stats, "LOOKUP");
  assert.equal(l.count, 6);
  assert.equal(l.ok, 2);
  assert.equal(l.errors, 4);
  assert.deepEqual(l.errnos, [{ errno: "ENOENT", count: 3 }, { errno: "EACCES", count: 1 }]);
  assert.deepEqual(op(stats, "RMDIR").errnos, [{ errno: "ENOTEMPTY", count: 1 }]);
  assert.equal(stats.totals.errors, 5);
  assert.equal(stats.totals.ok, 2);
  assert.equal(stats.totals.operations, 7);
  assert.equal(stats.totals.fuseRecords, 14);
});

Deno.test("aggregator: bytes from READ reply lengths and WRITE sizes, even when cut", async () => {
  const m = new RecordMaker();
  const MiB = 1 << 20;
  // A 1 MiB WRITE whose capture kept 80 bytes (a snap length): its size argument still counts.
  m.request(1, {
    header: { opcode: Opcode.WRITE, unique: 2n, nodeid: 8n },
    arg: { fh: 0n, offset: 0n },
    data: new Uint8Array(MiB),
  }, { snaplen: 80 });
  m.reply(1, Opcode.WRITE, { header: { unique: 2n }, arg: { size: MiB } }, 500_000);
  for (const [unique, n] of [[4n, 7], [6n, 7]] as const) {
    m.request(1, {
      header: { opcode: Opcode.WRITE, unique, nodeid: 9n },
      arg: { fh: 1n, offset: 0n },
      data: new Uint8Array(n),
    });
    m.reply(1, Opcode.WRITE, { header: { unique }, arg: { size: n } }, 20_000);
  }
  // A failed WRITE wrote nothing.
  m.request(1, {
    header: { opcode: Opcode.WRITE, unique: 8n, nodeid: 9n },
    arg: { fh: 1n, offset: 0n },
    data: new Uint8Array(4096),
  });
  m.reply(1, Opcode.WRITE, { header: { unique: 8n, error: -28 } }, 20_000);
  // READs: one whole, one whose reply data the capture cut to 64 bytes, one short (EOF).
  const read = (unique: bigint, size: number, got: number, snaplen?: number) => {
    m.request(1, {
      header: { opcode: Opcode.READ, unique, nodeid: 8n },
      arg: { fh: 0n, offset: 0n, size },
    });
    m.reply(1, Opcode.READ, { header: { unique }, data: new Uint8Array(got) }, 30_000, {
      snaplen,
    });
  };
  read(10n, 131072, 131072);
  read(12n, 131072, 131072, 64);
  read(14n, 4096, 100);
  const { stats } = await collectStats(m.records);
  assert.equal(op(stats, "WRITE").bytesWritten, MiB + 7 + 7);
  assert.equal(op(stats, "WRITE").errors, 1);
  assert.equal(op(stats, "READ").bytesRead, 131072 * 2 + 100);
  assert.equal(stats.totals.bytesWritten, MiB + 14);
  assert.equal(stats.totals.bytesRead, 262244);
});

Deno.test("aggregator: latency quantiles within the histogram's error of the exact ones", async () => {
  const m = new RecordMaker();
  const lat: number[] = [];
  let seed = 12345;
  for (let i = 0; i < 3000; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const v = 20_000 + Math.round((seed / 2147483648) ** 4 * 5_000_000); // long tail
    lat.push(v);
    const unique = BigInt(2 * i + 2);
    m.request(1, { header: { opcode: Opcode.FLUSH, unique, nodeid: 1n }, arg: { fh: 0n } });
    m.reply(1, Opcode.FLUSH, { header: { unique } }, v);
  }
  const { stats } = await collectStats(m.records);
  const l = op(stats, "FLUSH").latency!;
  const sorted = [...lat].sort((a, b) => a - b);
  const exact = (q: number) => sorted[Math.ceil(q * sorted.length) - 1]!;
  for (const [q, got] of [[0.5, l.p50], [0.9, l.p90], [0.99, l.p99]] as const) {
    const want = exact(q);
    assert.ok(Math.abs(got - want) / want <= RELATIVE_ERROR, `p${q * 100}: ${got} vs ${want}`);
  }
  assert.equal(l.min, sorted[0]);
  assert.equal(l.max, sorted[sorted.length - 1]);
  assert.equal(l.totalNs, lat.reduce((a, b) => a + b, 0));
  assert.equal(l.count, 3000);
  assert.deepEqual(stats.totals.latency, l);
});

Deno.test("aggregator: queues, FORGETs, unanswered requests, orphan replies, lost records", async () => {
  const m = new RecordMaker();
  m.request(0, { header: { opcode: Opcode.FORGET, unique: 2n, nodeid: 3n }, arg: { nlookup: 1n } });
  m.used(0, 200_000);
  lookup(m, 4n, "a", 0, 40_000);
  m.lose(3);
  m.request(2, { header: { opcode: Opcode.LOOKUP, unique: 4n, nodeid: 1n }, names: ["b"] });
  m.reply(1, Opcode.LOOKUP, { header: { unique: 99n, error: -2 } }, 10_000); // no request
  const { stats, pairer } = await collectStats(m.records);
  assert.deepEqual(
    stats.queues.map((q) => [q.label, q.count, q.errors, q.unanswered]),
    [["hiprio", 1, 0, 0], ["q1", 2, 1, 0], ["q2", 1, 0, 1]],
  );
  assert.equal(op(stats, "FORGET").latency?.max, 200_000);
  assert.equal(op(stats, "LOOKUP").unanswered, 1);
  assert.equal(op(stats, "LOOKUP").latency?.count, 1, "unanswered: no latency");
  assert.equal(op(stats, "?").errors, 1);
  assert.equal(stats.totals.orphanReplies, 1);
  assert.equal(stats.totals.unanswered, 1);
  assert.equal(stats.control.lostRecords, 3);
  assert.equal(stats.control.gaps, 1);
  assert.equal(pairer.lostRecords, 3);
  assert.equal(stats.records, 6);
});

Deno.test("aggregator: time span from the earliest to the latest event, replies included", async () => {
  const m = new RecordMaker();
  m.other(RecordKind.NOTE, { at: T0 });
  m.request(1, { header: { opcode: Opcode.FLUSH, unique: 2n, nodeid: 3n }, arg: { fh: 0n } }, {
    at: T0 + 1_000_000n,
  });
  m.reply(1, Opcode.FLUSH, { header: { unique: 2n } }, 0, { at: T0 + 9_000_000n });
  const { stats } = await collectStats(m.records);
  assert.equal(stats.firstNs, T0);
  assert.equal(stats.lastNs, T0 + 9_000_000n);
  assert.equal(stats.durationNs, 9_000_000);
  assert.equal(op(stats, "FLUSH").latency?.p50, 8_000_000, "timestamp difference when aux is 0");
  assert.equal(stats.control.notes, 1);
});

Deno.test("aggregator: residence when records carry it, undefined when none does", async () => {
  const m = new RecordMaker();
  for (let i = 0; i < 100; i++) {
    const unique = BigInt(2 * i + 2);
    m.request(1, { header: { opcode: Opcode.FLUSH, unique, nodeid: 3n }, arg: { fh: 0n } }, {
      residenceNs: 1000 + i * 10,
    });
    m.reply(1, Opcode.FLUSH, { header: { unique } }, 50_000, { residenceNs: 500 });
  }
  const { stats } = await collectStats(m.records);
  assert.ok(stats.residence !== undefined);
  assert.equal(stats.residence.request?.count, 100);
  assert.equal(stats.residence.request?.min, 1000);
  assert.equal(stats.residence.request?.max, 1990);
  assert.ok(Math.abs(stats.residence.request!.p50 - 1490) / 1490 <= RELATIVE_ERROR);
  assert.equal(stats.residence.reply?.p99, 500);
  assert.equal(op(stats, "FLUSH").residence?.min, 1500, "request + reply side");

  const bare = new RecordMaker();
  bare.request(1, { header: { opcode: Opcode.FLUSH, unique: 2n, nodeid: 3n }, arg: { fh: 0n } });
  bare.reply(1, Opcode.FLUSH, { header: { unique: 2n } }, 50_000);
  const none = (await collectStats(bare.records)).stats;
  assert.equal(none.residence, undefined);
  assert.equal(op(none, "FLUSH").residence, undefined);
});

Deno.test("aggregator: the N slowest, slowest first, with show's argument text", async () => {
  const m = new RecordMaker();
  const lats = [5, 900, 30, 700, 800, 10, 600];
  lats.forEach((l, i) => lookup(m, BigInt(2 * i + 2), `n${i}`, i === 1 ? -2 : 0, l * 1000));
  const { stats } = await collectStats(m.records, { slowest: 3 });
  assert.deepEqual(stats.slowest.map((s) => s.latencyNs), [900_000, 800_000, 700_000]);
  const [first] = stats.slowest;
  assert.equal(first?.summary, 'nodeid=1 "n1" = -ENOENT');
  assert.equal(first?.errno, "ENOENT");
  assert.equal(stats.slowest[1]?.summary, 'nodeid=1 "n4" = nodeid 7 -rw-r--r-- size=7');
  assert.deepEqual((await collectStats(m.records)).stats.slowest, [], "none unless asked");
});

Deno.test("aggregator: the timeline counts operations by name at their request time", async () => {
  const m = new RecordMaker();
  for (let i = 0; i < 10; i++) {
    lookup(m, BigInt(2 * i + 2), "a", 0, 1000);
    m.now += 10_000_000n;
  }
  const { stats } = await collectStats(m.records);
  const tl = stats.timeline;
  assert.equal(tl.series.get("LOOKUP")?.reduce((a, b) => a + b, 0), 10);
  assert.equal(tl.startNs, T0);
  assert.equal(tl.bucketNs, 1_000_000);
});
