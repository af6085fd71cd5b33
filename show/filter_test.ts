import assert from "node:assert/strict";
import { Opcode } from "../decode/fuse.ts";
import { CaptureBuilder, T0 } from "./_testing.ts";
import {
  EventFilter,
  FilterSyntaxError,
  globMatcher,
  parseDuration,
  parseErrnos,
  parseOpNames,
  parseQueue,
  parseTimeBound,
} from "./filter.ts";
import { type FuseOperation, pairRecords } from "./pairing.ts";

Deno.test("filter: durations", () => {
  assert.equal(parseDuration("2ms"), 2_000_000);
  assert.equal(parseDuration("500us"), 500_000);
  assert.equal(parseDuration("500µs"), 500_000);
  assert.equal(parseDuration("1.5s"), 1_500_000_000);
  assert.equal(parseDuration("250ns"), 250);
  assert.equal(parseDuration(".5ms"), 500_000);
  assert.equal(parseDuration("2m"), 120_000_000_000);
  assert.equal(parseDuration("3", "x", "s"), 3_000_000_000);
  assert.throws(() => parseDuration("2", "--slow"), /--slow: '2' needs a unit/);
  assert.throws(() => parseDuration("fast"), FilterSyntaxError);
  assert.throws(() => parseDuration("2 parsecs"), /is not a duration/);
});

Deno.test("filter: time bounds", () => {
  assert.deepEqual(parseTimeBound("2.5"), { kind: "relative", ns: 2_500_000_000 });
  assert.deepEqual(parseTimeBound("+500ms"), { kind: "relative", ns: 500_000_000 });
  assert.deepEqual(parseTimeBound("15:00:21.25"), {
    kind: "time-of-day",
    ns: ((15 * 60) * 60 + 21) * 1e9 + 250_000_000,
  });
  assert.deepEqual(parseTimeBound("09:30"), { kind: "time-of-day", ns: 9.5 * 3600e9 });
  assert.deepEqual(parseTimeBound("2026-11-25T15:00:00Z"), { kind: "epoch", ns: T0 });
  assert.throws(() => parseTimeBound("25:00"), /not a time of day/);
  assert.throws(() => parseTimeBound("yesterday", "--since"), /--since: 'yesterday'/);
});

Deno.test("filter: names, errnos, queues, globs", () => {
  assert.deepEqual(
    [...parseOpNames(["lookup", "FUSE_READ", " readdirplus "])],
    [Opcode.LOOKUP, Opcode.READ, Opcode.READDIRPLUS],
  );
  assert.throws(
    () => parseOpNames(["LOKUP"]),
    /'LOKUP' is not a FUSE operation or opcode number \(known: LOOKUP/,
  );
  // Numbers select any opcode, unknown ones included (shown as `opcode N`).
  assert.deepEqual(
    [...parseOpNames(["99", "0x1000", "opcode 4000", "Opcode4001", "1", "4294967295"])],
    [99, 4096, 4000, 4001, Opcode.LOOKUP, 0xffffffff],
  );
  assert.throws(() => parseOpNames(["4294967296"]), /'4294967296' is not an opcode number/);
  assert.throws(() => parseOpNames(["-1"]), /'-1' is not a FUSE operation or opcode number/);
  assert.deepEqual([...parseErrnos(["ENOENT", "enodata", "5", "-EIO"])], [2, 61, 5]);
  assert.throws(() => parseErrnos(["ENOPE"]), /not an errno name/);
  assert.equal(parseQueue("hiprio"), 0);
  assert.equal(parseQueue("q3"), 3);
  assert.equal(parseQueue("1"), 1);
  assert.throws(() => parseQueue("q"), /not a queue/);
  const g = globMatcher("f?.t[a-x]t");
  assert.ok(g("f1.txt"));
  assert.ok(!g("f10.txt"));
  assert.ok(globMatcher("*.log")("a.b.log"));
  assert.ok(!globMatcher("*.log")("a.log.gz"));
  assert.ok(globMatcher("[!.]*")("visible"));
  assert.ok(!globMatcher("[!.]*")(".hidden"));
  assert.ok(globMatcher("a\\*b")("a*b"));
  assert.ok(!globMatcher("a\\*b")("axb"));
  assert.ok(globMatcher("(x)+")("(x)+"), "regex characters are literal");
});

async function sample(): Promise<FuseOperation[]> {
  const b = new CaptureBuilder();
  const entry = { nodeid: 7n, mode: 0o100644, size: 7n };
  // t=0 LOOKUP "app.log" → nodeid 7, 30µs
  b.request(
    1,
    { header: { opcode: Opcode.LOOKUP, unique: 2n, nodeid: 1n }, names: ["app.log"] },
    T0,
  );
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n }, arg: entry }, 30_000);
  // t=1s READ on 7, 5ms
  b.request(1, {
    header: { opcode: Opcode.READ, unique: 4n, nodeid: 7n },
    arg: { fh: 1n, size: 4096 },
  }, T0 + 1_000_000_000n);
  b.reply(1, Opcode.READ, { header: { unique: 4n }, data: new Uint8Array(10) }, 5_000_000);
  // t=2s LOOKUP "nope" → ENOENT
  b.request(
    1,
    { header: { opcode: Opcode.LOOKUP, unique: 6n, nodeid: 1n }, names: ["nope"] },
    T0 + 2_000_000_000n,
  );
  b.reply(1, Opcode.LOOKUP, { header: { unique: 6n, error: -2 } }, 20_000);
  // t=3s RENAME in 1 to dir 9, EXDEV
  b.request(1, {
    header: { opcode: Opcode.RENAME, unique: 8n, nodeid: 1n },
    arg: { newdir: 9n },
    names: ["a", "b"],
  }, T0 + 3_000_000_000n);
  b.reply(1, Opcode.RENAME, { header: { unique: 8n, error: -18 } }, 10_000);
  // t=4s FORGET on hiprio
  b.request(
    0,
    { header: { opcode: Opcode.FORGET, unique: 10n, nodeid: 7n }, arg: { nlookup: 1n } },
    T0 + 4_000_000_000n,
  );
  b.rawReply(0, new Uint8Array(0), 1_000);
  return pairRecords(await b.records()) as FuseOperation[];
}

function pick(ops: FuseOperation[], f: EventFilter): bigint[] {
  f.setOrigin(T0);
  return ops.filter((o) => f.matches(o)).map((o) => o.unique);
}

Deno.test("filter: criteria combine with AND, values with OR", async () => {
  const ops = await sample();
  assert.deepEqual(pick(ops, new EventFilter()), [2n, 4n, 6n, 8n, 10n]);
  assert.equal(new EventFilter().selectsOperations, false);
  assert.deepEqual(pick(ops, new EventFilter({ ops: ["lookup", "rename"] })), [2n, 6n, 8n]);
  assert.deepEqual(pick(ops, new EventFilter({ errorsOnly: true })), [6n, 8n]);
  assert.deepEqual(pick(ops, new EventFilter({ errnos: ["EXDEV"] })), [8n]);
  assert.deepEqual(pick(ops, new EventFilter({ slowerThanNs: 2_000_000 })), [4n]);
  assert.deepEqual(pick(ops, new EventFilter({ queues: [0] })), [10n]);
  assert.deepEqual(pick(ops, new EventFilter({ uniques: [4n, 6n] })), [4n, 6n]);
  assert.deepEqual(pick(ops, new EventFilter({ namePattern: "*.log" })), [2n]);
  // node 7: the LOOKUP that returned it, the READ and the FORGET on it.
  assert.deepEqual(pick(ops, new EventFilter({ nodeids: [7n] })), [2n, 4n, 10n]);
  // node 9: RENAME's new directory.
  assert.deepEqual(pick(ops, new EventFilter({ nodeids: [9n] })), [8n]);
  assert.deepEqual(pick(ops, new EventFilter({ ops: ["LOOKUP"], errorsOnly: true })), [6n]);
  assert.ok(new EventFilter({ ops: ["LOOKUP"] }).selectsOperations);
  assert.throws(() => new EventFilter({ errnos: ["EWHAT"] }), FilterSyntaxError);
});

Deno.test("filter: since and until, relative, absolute and time of day", async () => {
  const ops = await sample();
  const rel = new EventFilter({ since: parseTimeBound("1"), until: parseTimeBound("3s") });
  assert.deepEqual(pick(ops, rel), [4n, 6n, 8n]);
  const tod = new EventFilter({
    since: parseTimeBound("15:00:02"),
    timeZone: "utc",
  });
  assert.deepEqual(pick(ops, tod), [6n, 8n, 10n]);
  const epoch = new EventFilter({ until: parseTimeBound("2026-11-25T15:00:01Z") });
  assert.deepEqual(pick(ops, epoch), [2n, 4n]);
  // The capture starts at 15:00: 23:59 is later that day; 00:30, more than
  // 12 hours before the start, means the next day.
  const late = new EventFilter({ until: parseTimeBound("23:59"), timeZone: "utc" });
  assert.deepEqual(pick(ops, late), [2n, 4n, 6n, 8n, 10n]);
  const nextDay = new EventFilter({ since: parseTimeBound("00:30"), timeZone: "utc" });
  assert.deepEqual(pick(ops, nextDay), []);
  assert.equal(nextDay.inTime(T0 + 34_200_000_000_000n), true, "00:30 the next day");
});
