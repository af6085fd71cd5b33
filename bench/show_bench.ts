/**
 * `vfstrace show` throughput on the golden fixture (a real 6.1 guest session:
 * 284 records, 119 operations), the records repeated in memory, measured side
 * by side in one run:
 *
 * - pair: records → operations (FUSE decode + pairing), events dropped;
 * - pair + format: the whole `show` pipeline short of writing (the lines are
 *   built, their length summed);
 * - pair + json: the `--json` pipeline;
 * - format only: lines from operations paired beforehand (the formatter alone).
 *
 * Prints the median over batches of records/s (a paired operation counts as
 * its two records) and the ratio to the 1M records/s target.
 *
 * Run: deno task bench:show [--rounds N] [--batches N] [--file CAPTURE]
 */
import { decodeCapture } from "../capture/mod.ts";
import { jsonLine, LineFormatter, Pairer, pairRecords, type ShowEvent } from "../show/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const ROUNDS = arg("rounds", 1000);
const BATCHES = arg("batches", 7);
const TARGET = 1_000_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fileArg = Deno.args.indexOf("--file");
const fixture = fileArg >= 0 && Deno.args[fileArg + 1] !== undefined
  ? Deno.args[fileArg + 1]!
  : new URL("../tests/fixtures/guest_session.pcapng", import.meta.url);
const { records, error } = decodeCapture(await Deno.readFile(fixture));
if (error !== undefined) throw error;
const events = pairRecords(records);
const recordsOf = (e: ShowEvent) =>
  e.type === "fuse" ? (e.request !== undefined ? 1 : 0) + (e.reply !== undefined ? 1 : 0) : 1;
const eventRecords = events.reduce((n, e) => n + recordsOf(e), 0);

let sink = 0;

function pair(onEvent: (e: ShowEvent) => void): number {
  const p = new Pairer({ onEvent });
  for (let r = 0; r < ROUNDS; r++) for (const rec of records) p.push(rec);
  p.finish();
  return ROUNDS * records.length;
}

const cases: [string, () => number][] = [
  ["pair (decode + pairing)", () => pair(() => {})],
  ["pair + format (show)", () => {
    const f = new LineFormatter({ timeZone: "utc" });
    return pair((e) => (sink += f.format(e).length));
  }],
  ["pair + json (show --json)", () => pair((e) => (sink += jsonLine(e).length))],
  ["format only", () => {
    const f = new LineFormatter({ timeZone: "utc" });
    for (let r = 0; r < ROUNDS; r++) for (const e of events) sink += f.format(e).length;
    return ROUNDS * eventRecords;
  }],
];

// Warm up every case (JIT), then interleave the batches so drift hits all alike.
for (const [, fn] of cases) fn();
const rates = cases.map(() => [] as number[]);
for (let b = 0; b < BATCHES; b++) {
  cases.forEach(([, fn], i) => {
    const t0 = performance.now();
    const n = fn();
    rates[i]!.push(n / ((performance.now() - t0) / 1000));
  });
}

console.log(
  `vfstrace show on ${fileArg >= 0 ? fixture : "tests/fixtures/guest_session.pcapng"} ` +
    `(${records.length} records, ` +
    `${events.filter((e) => e.type === "fuse").length} operations) × ${
      ROUNDS.toLocaleString("en")
    }` +
    ` rounds; median of ${BATCHES} batches`,
);
cases.forEach(([name], i) => {
  const m = median(rates[i]!);
  console.log(
    `  ${(name + ":").padEnd(28)} ${Math.round(m).toLocaleString("en").padStart(11)} records/s` +
      `   ${(m / TARGET).toFixed(2)}× the 1M records/s target`,
  );
});
if (sink === 0) console.log("(nothing formatted?)");
