import assert from "node:assert/strict";
import {
  type FuseRecordLike,
  parseFioJson,
  parseStressNg,
  reconciled,
  reconcileFuse,
  stressNgPassed,
} from "./_guest_soak.ts";
import { curve, slopePerMinute } from "./_proc.ts";

const STRESS_OK = `stress-ng: info:  [10710] setting to a 4 second run per stressor
stress-ng: info:  [10710] dispatching hogs: 1 hdd, 1 seek
stress-ng: metrc: [10710] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s
stress-ng: metrc: [10710]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)
stress-ng: metrc: [10710] hdd                6144      4.01      0.28      0.15      1533.11       14543.04
stress-ng: metrc: [10710] seek              84807      4.01      0.11      0.49     21159.35      141743.77
stress-ng: metrc: [10710] miscellaneous metrics:
stress-ng: metrc: [10710] hdd                  974.82 MB/sec read rate (geometic mean of 1 instances)
stress-ng: info:  [10710] successful run completed in 5.55s
`;

Deno.test("parseStressNg: bogo ops per stressor and a successful run", () => {
  const r = parseStressNg(STRESS_OK, 0);
  assert.deepEqual([...r.bogoOps], [["hdd", 6144], ["seek", 84807]]);
  assert.equal(r.successful, true);
  assert.deepEqual(r.failures, []);
  assert.equal(stressNgPassed(r), true);
});

Deno.test("parseStressNg: a fail line or an unsuccessful run fails", () => {
  const bad = STRESS_OK.replace(
    "stress-ng: metrc: [10710] miscellaneous",
    "stress-ng: fail:  [10712] hdd: hdd: data error in block 3\nstress-ng: metrc: [10710] misc",
  ).replace("successful run completed", "unsuccessful run completed");
  const r = parseStressNg(bad, 2);
  assert.deepEqual(r.failures, ["hdd: hdd: data error in block 3"]);
  assert.equal(r.successful, false);
  assert.equal(stressNgPassed(r), false);
  assert.equal(stressNgPassed(parseStressNg(STRESS_OK, 2)), false);
  assert.equal(stressNgPassed(parseStressNg("", 0)), false);
});

Deno.test("parseFioJson: sums errors and bytes over jobs, skips text before the JSON", () => {
  const doc = {
    jobs: [
      { error: 0, read: { io_bytes: 100 }, write: { io_bytes: 200 } },
      { error: 84, read: { io_bytes: 1 }, write: { io_bytes: 2 } },
    ],
  };
  const r = parseFioJson(`verify: bad header rand_seed\n${JSON.stringify(doc)}`);
  assert.deepEqual(r, { jobs: 2, errors: 84, readBytes: 101, writeBytes: 202 });
  assert.throws(() => parseFioJson("fio: no such file"), SyntaxError);
});

function msg(
  kind: "request" | "reply",
  queue: number,
  head: number,
  unique: bigint,
  opcode = 1,
): FuseRecordLike {
  const body = new Uint8Array(40);
  const dv = new DataView(body.buffer);
  dv.setUint32(0, 40, true);
  dv.setUint32(4, kind === "request" ? opcode : 0, true);
  dv.setBigUint64(8, unique, true);
  return { kind, queue, head, body };
}

const empty = (queue: number, head: number): FuseRecordLike => ({
  kind: "reply",
  queue,
  head,
  body: new Uint8Array(0),
});

Deno.test("reconcileFuse: pairs by chain, checks uniques, FORGETs complete empty", () => {
  const clean = reconcileFuse([
    msg("request", 1, 0, 2n),
    msg("request", 2, 0, 2n),
    msg("request", 0, 0, 4n, 2),
    msg("reply", 2, 0, 2n),
    empty(0, 0),
    msg("request", 1, 1, 6n, 42),
    msg("reply", 1, 0, 2n),
    empty(1, 1),
    msg("request", 1, 0, 8n),
    msg("reply", 1, 0, 8n),
  ]);
  assert.deepEqual(clean, {
    requests: 5,
    noReply: 2,
    replies: 5,
    unanswered: 0,
    orphanReplies: 0,
    duplicates: 0,
    wrongUnique: 0,
    short: 0,
  });
  assert.equal(reconciled(clean), true);
});

Deno.test("reconcileFuse: unanswered, orphan, duplicate, mismatched and short are not clean", () => {
  const cases: [string, FuseRecordLike[]][] = [
    ["unanswered", [msg("request", 1, 0, 2n)]],
    ["orphanReplies", [msg("request", 1, 0, 2n), msg("reply", 1, 1, 2n)]],
    ["duplicates", [msg("request", 1, 0, 2n), msg("request", 1, 0, 4n), msg("reply", 1, 0, 4n)]],
    ["wrongUnique", [msg("request", 1, 0, 2n), msg("reply", 1, 0, 4n)]],
    ["short", [msg("request", 1, 0, 2n), empty(1, 0)]],
  ];
  for (const [field, records] of cases) {
    const r = reconcileFuse(records);
    assert.equal(r[field as keyof typeof r], 1, field);
    assert.equal(reconciled(r), false, field);
  }
});

Deno.test("slopePerMinute and curve: a line's slope, start/mid/end/min/max", () => {
  const xs = [0, 5, 10, 15, 20].map((t) => ({ t, v: 100 + t }));
  assert.equal(slopePerMinute(xs, (s) => s.v), 60);
  assert.equal(slopePerMinute([{ t: 3, v: 1 }], (s) => s.v), 0);
  assert.equal(
    curve("x", xs, (s) => s.v),
    "x                start 100  mid 110  end 120  min 100  max 120  slope (2nd half) 60.0/min",
  );
  assert.equal(curve("x", [{ t: 0, v: NaN }], (s) => s.v), "x: not enough samples");
});
