/**
 * serve against the C virtiofsd, and `vfstrace trace` in front of each
 * against the same back-end direct, driven by the built-in client without a
 * VM. Four back-ends (each on its own fresh directory) are measured side by
 * side, rounds interleaved; prints the tables, then serve÷virtiofsd and
 * traced÷direct ratios of median ops/s per workload and depth.
 *
 * Run: deno task bench:client [--workload meta,rand] [--depth 1,16]
 *      [--duration 2] [--rounds 3] [--poll spin|park]
 */
import {
  clientLoopOptions,
  type ClientPoll,
  compareBackends,
  type ComparisonResult,
  formatComparison,
  FuseClient,
  type Workload,
} from "../client/mod.ts";
import { type BackendProcess, startBackend } from "../cmd/backends.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
}
const WORKLOADS = arg("workload", "meta,rand").split(",") as Workload[];
const DEPTHS = arg("depth", "1,16").split(",").map(Number);
const DURATION_S = Number(arg("duration", "2"));
const ROUNDS = Number(arg("rounds", "3"));
const POLL = arg("poll", "spin") as ClientPoll;

const root = await Deno.makeTempDir({ prefix: "vfstrace-cbench-" });
const specs = [
  { label: "virtiofsd", kind: "virtiofsd", trace: false },
  { label: "serve", kind: "serve", trace: false },
  { label: "trace+virtiofsd", kind: "virtiofsd", trace: true },
  { label: "trace+serve", kind: "serve", trace: true },
] as const;
const procs: BackendProcess[] = [];
const clients: { label: string; client: FuseClient }[] = [];
const results: ComparisonResult[] = [];
try {
  for (const s of specs) {
    const share = `${root}/${s.label}`;
    await Deno.mkdir(share);
    const p = await startBackend({
      kind: s.kind,
      sharedDir: share,
      socket: `${root}/${s.label}.sock`,
      ...(s.trace ? { trace: { capture: `${root}/${s.label}.pcapng` } } : {}),
    });
    procs.push(p);
    clients.push({
      label: s.label,
      client: await FuseClient.connect(p.socket, {
        queueSize: 256,
        memorySize: 128 << 20,
        ...(POLL === "park" ? { eventLoop: clientLoopOptions("park")! } : {}),
      }),
    });
  }
  console.log(
    `built-in client: ${WORKLOADS.join(", ")} at depth ${DEPTHS.join(", ")}; ` +
      `${ROUNDS} interleaved rounds of ${DURATION_S} s per back-end, medians; client --poll ${POLL}`,
  );
  for (const workload of WORKLOADS) {
    for (const depth of DEPTHS) {
      const r = await compareBackends(clients, {
        workload,
        depth,
        rounds: ROUNDS,
        durationMs: DURATION_S * 1000,
      });
      results.push(r);
      console.log(formatComparison(r));
    }
  }
} finally {
  for (const c of clients) await c.client.close().catch(() => {});
  for (const p of procs) await p.stop(5000);
  await Deno.remove(root, { recursive: true });
}

const ops = (r: ComparisonResult, label: string) =>
  r.backends.find((b) => b.label === label)?.opsPerSec ?? NaN;
console.log(
  "\nratios of median ops/s (targets: serve/virtiofsd ≥ 1.0; traced/direct ≥ 0.90 at depth 1, ≥ 0.95 at 16)",
);
console.log("  workload  depth  serve/virtiofsd  trace/direct (virtiofsd)  trace/direct (serve)");
for (const r of results) {
  const sv = ops(r, "serve") / ops(r, "virtiofsd");
  const tv = ops(r, "trace+virtiofsd") / ops(r, "virtiofsd");
  const ts = ops(r, "trace+serve") / ops(r, "serve");
  console.log(
    `  ${r.workload.padEnd(8)}  ${String(r.depth).padStart(5)}  ${sv.toFixed(3).padStart(15)}  ${
      tv.toFixed(3).padStart(24)
    }  ${ts.toFixed(3).padStart(20)}`,
  );
}
