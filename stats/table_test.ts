/**
 * The table and JSON on the real guest session (tests/fixtures/guest_session.pcapng,
 * workload tests/fixtures/session.sh). Facts that vary between recordings
 * (latencies, some lookup counts) are cross-checked against the records
 * themselves rather than pinned.
 */
import assert from "node:assert/strict";
import { CaptureReader, RecordKind } from "../capture/mod.ts";
import { Opcode } from "../decode/fuse.ts";
import { type FuseOperation, pairRecords, type ShowRecord } from "../show/mod.ts";
import { RecordMaker } from "./_testing.ts";
import {
  type CaptureStats,
  collectStats,
  formatStatsTable,
  RELATIVE_ERROR,
  statsJson,
  type StatsSort,
} from "./mod.ts";

const FIXTURE = decodeURIComponent(
  new URL("../tests/fixtures/guest_session.pcapng", import.meta.url).pathname,
);
/** session.sh: `echo "file $i"` into f1…f5 (7 bytes each), then a 1 MiB dd. */
const WRITTEN = 1048576 + 5 * 7;

async function fixture(): Promise<{ records: ShowRecord[]; stats: CaptureStats }> {
  const records: ShowRecord[] = [];
  for await (const r of await CaptureReader.open(FIXTURE)) records.push(r);
  const { stats } = await collectStats(records, { name: "guest_session.pcapng", slowest: 10 });
  return { records, stats };
}

function rowOf(table: string, name: string): string[] {
  const line = table.split("\n").find((l) => l.startsWith(name + " "));
  assert.ok(line !== undefined, `no ${name} row in\n${table}`);
  return line.trim().split(/\s+/);
}

Deno.test("stats on the guest session: the workload's real numbers", async () => {
  const { records, stats } = await fixture();
  const byName = new Map(stats.operations.map((o) => [o.name, o]));
  const requests = records.filter((r) => r.kind === RecordKind.FUSE_REQUEST).length;
  assert.equal(stats.totals.operations, requests, "one operation per request");
  assert.equal(stats.operations.reduce((a, o) => a + o.count, 0), requests);
  assert.equal(stats.totals.unanswered, 0);
  assert.equal(stats.totals.undecodable, 0);
  assert.equal(stats.records, records.length);
  // f1…f5 and big.
  assert.equal(byName.get("CREATE")?.count, 6);
  assert.equal(byName.get("CREATE")?.errors, 0);
  const lookup = byName.get("LOOKUP")!;
  const enoent = lookup.errnos.find((e) => e.errno === "ENOENT")?.count ?? 0;
  assert.ok(enoent >= 7, `tree, f1…f5, big and nope are missing first: ${enoent}`);
  assert.equal(lookup.errors, enoent, "LOOKUP fails only with ENOENT");
  assert.deepEqual(byName.get("RMDIR")?.errnos, [{ errno: "ENOTEMPTY", count: 1 }]);
  assert.equal(byName.get("WRITE")?.bytesWritten, WRITTEN);
  assert.equal(stats.totals.bytesWritten, WRITTEN);
  assert.equal(byName.get("READ")?.bytesRead, 1048576, "md5sum reads big back, whole");
  assert.equal(stats.totals.bytesRead, 1048576);
  assert.equal(byName.get("INIT")?.count, 1);
  assert.deepEqual(stats.queues.map((q) => q.label), ["hiprio", "q1"]);
  assert.equal(stats.queues[0]!.count, byName.get("FORGET")?.count, "hiprio carries the FORGETs");
  assert.ok(stats.control.vhostUser > 10);
  assert.equal(stats.control.lostRecords, 0);
  assert.ok(stats.firstNs! <= records[0]!.timestampNs);
  assert.equal(stats.lastNs, records.reduce((m, r) => r.timestampNs > m ? r.timestampNs : m, 0n));
});

Deno.test("stats on the guest session: quantiles within the bound of the exact latencies", async () => {
  const { records, stats } = await fixture();
  const byOp = new Map<string, number[]>();
  for (const ev of pairRecords(records)) {
    if (ev.type !== "fuse" || ev.latencyNs === undefined) continue;
    const op = ev as FuseOperation;
    byOp.set(op.name, [...(byOp.get(op.name) ?? []), op.latencyNs!]);
  }
  for (const o of stats.operations) {
    const xs = (byOp.get(o.name) ?? []).sort((a, b) => a - b);
    const l = o.latency!;
    assert.equal(l.count, xs.length);
    assert.equal(l.min, xs[0]);
    assert.equal(l.max, xs[xs.length - 1]);
    for (const [q, got] of [[0.5, l.p50], [0.9, l.p90], [0.99, l.p99]] as const) {
      const want = xs[Math.ceil(q * xs.length) - 1]!;
      assert.ok(
        Math.abs(got - want) <= want * RELATIVE_ERROR,
        `${o.name} p${q}: ${got} vs ${want}`,
      );
    }
  }
});

Deno.test("stats table: the summary, one row per operation, errors, queues", async () => {
  const { stats } = await fixture();
  const table = formatStatsTable(stats);
  assert.match(table, /^capture +guest_session\.pcapng$/m);
  assert.match(
    table,
    /^time span +2\d{3}-\d\d-\d\dT[\d:.]+Z → 2\d{3}-[\d-]+T[\d:.]+Z \([\d.]+m?s\)$/m,
  );
  assert.match(
    table,
    new RegExp(`^bytes +read 1048576 \\(1 MiB\\), written ${WRITTEN} \\(1 MiB\\)$`, "m"),
  );
  assert.match(table, /^operations +\d+: \d+ ok, \d+ errors, 0 unanswered, 0 undecodable$/m);
  const create = rowOf(table, "CREATE");
  assert.equal(create[1], "6", "calls");
  assert.equal(create[2], "-", "no errors");
  const write = rowOf(table, "WRITE");
  const bytes = stats.residence === undefined ? write.slice(-2) : write.slice(-4, -2);
  assert.deepEqual(bytes, ["-", "1MiB"], "read -, written 1 MiB");
  const lookup = stats.operations.find((o) => o.name === "LOOKUP")!;
  assert.equal(rowOf(table, "LOOKUP")[2], String(lookup.errors));
  assert.match(table, new RegExp(`^  LOOKUP +ENOENT +${lookup.errors}$`, "m"));
  assert.match(table, /^ {2}RMDIR +ENOTEMPTY +1$/m);
  assert.match(table, /^ {2}hiprio +\d+ +0 +0 /m);
  const total = rowOf(table, "total");
  assert.equal(total[1], String(stats.totals.operations));
  assert.equal(total[3], "100.00");
  // Residence: this recording has it (format v2), so two more columns.
  if (stats.residence !== undefined) {
    assert.match(
      table,
      /^residence +requests p50 \S+ p99 \S+ max \S+ \(\d+ measured\); replies p50 /m,
    );
    assert.match(table, /^operation +calls .* res p50 +res p99$/m);
  }
});

Deno.test("stats table: --sort orders the rows by time, count, errors or name", async () => {
  const { stats } = await fixture();
  const rows = (sort: StatsSort) => {
    const lines = formatStatsTable(stats, { sort }).split("\n");
    const start = lines.findIndex((l) => /^operation +calls/.test(l)) + 2;
    const end = lines.findIndex((l, i) => i >= start && l.startsWith("---"));
    return lines.slice(start, end).map((l) => l.trim().split(/\s+/));
  };
  const names = rows("name").map((r) => r[0]!);
  assert.deepEqual(names, [...names].sort());
  assert.equal(names.length, stats.operations.length);
  const counts = rows("count").map((r) => Number(r[1]));
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
  const errors = rows("errors").map((r) => (r[2] === "-" ? 0 : Number(r[2])));
  assert.deepEqual(errors, [...errors].sort((a, b) => b - a));
  assert.equal(rows("errors")[0]![0], "LOOKUP", "most errors");
  const pct = rows("time").map((r) => Number(r[3]));
  assert.deepEqual(pct, [...pct].sort((a, b) => b - a));
});

Deno.test("stats JSON: one document with the same numbers", async () => {
  const { stats } = await fixture();
  const doc = JSON.parse(JSON.stringify(statsJson(stats, "count")));
  assert.equal(doc.version, 1);
  assert.equal(doc.capture, "guest_session.pcapng");
  assert.equal(doc.totals.operations, stats.totals.operations);
  assert.equal(doc.totals.bytes_written, WRITTEN);
  assert.equal(doc.totals.bytes_read, 1048576);
  assert.equal(doc.quantile_relative_error, RELATIVE_ERROR);
  assert.equal(typeof doc.first.ns, "string");
  assert.equal(BigInt(doc.last.ns) - BigInt(doc.first.ns), BigInt(doc.duration_ns));
  const create = doc.operations.find((o: { op: string }) => o.op === "CREATE");
  assert.equal(create.count, 6);
  assert.equal(create.opcode, Opcode.CREATE);
  const lookup = doc.operations.find((o: { op: string }) => o.op === "LOOKUP");
  assert.ok(lookup.errnos.ENOENT >= 1);
  assert.equal(typeof lookup.latency.p99_ns, "number");
  assert.ok(lookup.latency.min_ns <= lookup.latency.p50_ns);
  assert.ok(lookup.latency.p50_ns <= lookup.latency.p99_ns);
  assert.ok(lookup.latency.p99_ns <= lookup.latency.max_ns);
  const counts = doc.operations.map((o: { count: number }) => o.count);
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a), "sorted by count");
  assert.deepEqual(doc.queues.map((q: { label: string }) => q.label), ["hiprio", "q1"]);
  assert.equal(doc.slowest.length, 10);
  assert.ok(doc.slowest[0].latency_ns >= doc.slowest[9].latency_ns);
  if (stats.residence === undefined) assert.equal(doc.residence, null);
  else assert.equal(doc.residence.request.count, stats.residence.request?.count);
});

Deno.test("stats table and JSON: residence n/a when the capture has none; empty capture", async () => {
  const m = new RecordMaker();
  m.request(1, { header: { opcode: Opcode.FLUSH, unique: 2n, nodeid: 3n }, arg: { fh: 0n } });
  m.reply(1, Opcode.FLUSH, { header: { unique: 2n } }, 50_000);
  const { stats } = await collectStats(m.records);
  const table = formatStatsTable(stats);
  assert.match(table, /^residence +n\/a /m);
  assert.doesNotMatch(table, /res p50/);
  assert.equal(statsJson(stats).residence, null);
  assert.match(table, /^FLUSH +1 +- +100\.00 +50µs /m);

  const empty = (await collectStats([])).stats;
  const t = formatStatsTable(empty);
  assert.match(t, /^time span +empty$/m);
  assert.match(t, /^total +0 +- +- /m);
  assert.match(t, /^ {2}\(none\)$/m);
  assert.equal(statsJson(empty).first, null);
});
