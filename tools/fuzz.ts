/**
 * `deno task fuzz`: seeded, reproducible, coverage-free mutation fuzzing of
 * every decoder: FUSE requests and replies of every opcode, vhost-user
 * messages, pcapng blocks, the streaming capture reader and the show
 * pairing/formatting path. The unit tests run the same bodies with small
 * counts; this runs them long (over a million inputs by default).
 *
 *   deno task fuzz [--seed N] [--scale X] [--only fuse,vhost-user,…]
 *
 * Exits 1 on the first unexpected exception of a target (only the
 * decoders' typed errors are allowed), printing the seed and the input; the
 * failure is also written under tests/fixtures/fuzz/ to become a regression
 * fixture.
 *
 * @module
 */
import { fuzzFuse } from "../decode/_fuse_fuzz.ts";
import { fuzzVhostUser } from "../decode/_vhost_user_fuzz.ts";
import { fuzzPcapng } from "../decode/_pcapng_fuzz.ts";
import { fuzzReader } from "../capture/_reader_fuzz.ts";
import { fuzzShow } from "../show/_show_fuzz.ts";

interface Target {
  name: string;
  /** Inputs of a default run. */
  inputs: number;
  run: (seed: number, n: number) => number | Promise<number>;
}

const TARGETS: Target[] = [
  { name: "fuse", inputs: 450_000, run: fuzzFuse },
  { name: "vhost-user", inputs: 300_000, run: fuzzVhostUser },
  { name: "pcapng", inputs: 200_000, run: fuzzPcapng },
  { name: "capture-reader", inputs: 60_000, run: fuzzReader },
  // Each input is a whole damaged capture (~50 records) through pairing, 3 formatters and JSON.
  { name: "show", inputs: 2_000, run: fuzzShow },
];

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const seed = Number(arg("--seed") ?? "20261125") >>> 0;
const scale = Number(arg("--scale") ?? "1");
const only = arg("--only")?.split(",");
if (!Number.isFinite(scale) || scale <= 0) {
  console.error("fuzz: --scale must be a positive number");
  Deno.exit(2);
}
const selected = TARGETS.filter((t) => only === undefined || only.includes(t.name));
if (selected.length === 0) {
  console.error(`fuzz: --only takes ${TARGETS.map((t) => t.name).join(",")}`);
  Deno.exit(2);
}

console.log(`fuzz: seed ${seed}, scale ${scale}`);
let total = 0;
let failed = 0;
const t0 = performance.now();
for (const t of selected) {
  const n = Math.max(1, Math.round(t.inputs * scale));
  const start = performance.now();
  try {
    await t.run(seed, n);
    total += n;
    const s = (performance.now() - start) / 1000;
    console.log(
      `  ${t.name.padEnd(15)} ${String(n).padStart(8)} inputs  ${s.toFixed(1).padStart(6)} s  ok`,
    );
  } catch (err) {
    failed++;
    const text = `target ${t.name}, seed ${seed}, ${n} inputs\n${(err as Error).stack ?? err}\n`;
    console.log(`  ${t.name.padEnd(15)} FAILED\n${text}`);
    const dir = new URL("../tests/fixtures/fuzz/", import.meta.url).pathname;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}${t.name}-${seed}.txt`, text);
  }
}
const s = (performance.now() - t0) / 1000;
console.log(
  `fuzz: ${total} inputs in ${s.toFixed(1)} s, ${failed} target(s) failed (seed ${seed})`,
);
if (failed > 0) Deno.exit(1);
