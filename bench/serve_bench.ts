/**
 * `vfstrace serve` against the C virtiofsd, side by side in one run: the same
 * guest workloads booted on each back-end, alternating, several rounds.
 * Prints per workload the medians and serve ÷ virtiofsd (target ≤ 1.0).
 *
 * Workloads: `meta` creates, stats and unlinks N files (default 1000);
 * `stream_write`/`stream_read` write then read back M MiB (default 128) with
 * dd; `rand_write`/`rand_read` do K 4 KiB writes, then reads, at random
 * offsets of a 16 MiB file (default 300), the page cache dropped in between.
 * Both back-ends run with the same cache policy (auto) and xattrs off.
 *
 * With `--profile`, one more serve run happens under `--cpu-prof` and the
 * functions with the most self time are listed (where serve's time goes),
 * the time spent waiting in epoll_wait apart. sys/ functions are the libc
 * calls themselves (the file system's and the kernel's time, not JS).
 *
 * With `--no-poll`, a third column: serve whose event loop never busy-polls
 * after activity (it sleeps in epoll_wait at once), which matters when the
 * machine has fewer cores than busy threads.
 *
 * Run: deno task bench:serve [--rounds 3] [--files 1000] [--mib 128] [--ios 300] [--profile]
 *      [--no-poll]
 */
import { bootGuest, prepareGuest, Virtiofsd, type Workload } from "../vm/mod.ts";
import { arg, checkTimes, CLI, median, type Times, waitForSocket } from "./_guest_bench.ts";

const ROUNDS = arg("rounds", 3);
const FILES = arg("files", 1000);
const MIB = arg("mib", 128);
const IOS = arg("ios", 300);
const PROFILE = Deno.args.includes("--profile");
/** Also measure serve with its event loop never busy-polling (VFSTRACE_BUSY_POLL_US=0). */
const NO_POLL = Deno.args.includes("--no-poll");
const CHECKS = ["meta", "stream_write", "stream_read", "rand_write", "rand_read"];

const workload: Workload = {
  name: "serve-bench",
  description: `${FILES} create+stat+unlink; ${MIB} MiB write + read; ${IOS} random 4 KiB I/Os`,
  script: `
t_meta() {
  mkdir m && i=0 && while [ $i -lt ${FILES} ]; do : > m/f$i; i=$((i+1)); done &&
    i=0 && while [ $i -lt ${FILES} ]; do stat m/f$i > /dev/null || return 1; i=$((i+1)); done &&
    i=0 && while [ $i -lt ${FILES} ]; do rm m/f$i; i=$((i+1)); done && rmdir m
}
t_stream_write() { dd if=/dev/zero of=big bs=1M count=${MIB} conv=fsync 2>/dev/null; }
t_stream_read() { vt_drop_caches && dd if=big of=/dev/null bs=1M 2>/dev/null && rm big; }
t_rand_write() {
  i=0 && while [ $i -lt ${IOS} ]; do
    dd if=/dev/zero of=rnd bs=4k count=1 seek=$((RANDOM % 4096)) conv=notrunc 2>/dev/null || return 1
    i=$((i+1))
  done && sync
}
t_rand_read() {
  vt_drop_caches && i=0 && while [ $i -lt ${IOS} ]; do
    dd if=rnd of=/dev/null bs=4k count=1 skip=$((RANDOM % 4096)) 2>/dev/null || return 1
    i=$((i+1))
  done
}
dd if=/dev/zero of=rnd bs=1M count=16 2>/dev/null
check meta t_meta
check stream_write t_stream_write
check stream_read t_stream_read
check rand_write t_rand_write
check rand_read t_rand_read
rm -f rnd
`,
};

const prepared = await prepareGuest({ workload });

async function runOnce(serve: boolean, profileDir?: string, noPoll = false): Promise<Times> {
  const share = await Deno.makeTempDir({ prefix: "vfstrace-bench-share-" });
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-bench-" });
  try {
    const socketPath = `${dir}/fs.sock`;
    let daemon: Virtiofsd | undefined;
    let server: Deno.ChildProcess | undefined;
    if (serve) {
      // The CLI as users run it, in its own process.
      server = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--allow-all",
          ...(profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`]),
          CLI,
          "serve",
          "--log-level",
          "warn",
          "--socket-path",
          socketPath,
          "--shared-dir",
          share,
        ],
        stdout: "null",
        stderr: "inherit",
        env: {
          ...(noPoll ? { VFSTRACE_BUSY_POLL_US: "0" } : {}),
          // Under --cpu-prof the blocking wait has been seen not to return after the
          // disconnect (the profile never written): profile the parked wait instead.
          ...(profileDir === undefined ? {} : { VFSTRACE_WAIT: "parked" }),
        },
      }).spawn();
      await waitForSocket(socketPath);
    } else {
      daemon = await Virtiofsd.start({ socketPath, sharedDir: share, xattr: false });
    }
    const report = await bootGuest(prepared, { socketPath, timeoutMs: 600_000 });
    if (server !== undefined) {
      const st = await server.status;
      if (!st.success) throw new Error(`vfstrace serve exited with ${st.code}`);
    }
    await daemon?.wait(30_000);
    await daemon?.stop();
    return checkTimes(report, serve ? "serve" : "virtiofsd");
  } finally {
    await Deno.remove(share, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

const reference: Times[] = [];
const ours: Times[] = [];
const oursNoPoll: Times[] = [];
for (let round = 0; round < ROUNDS; round++) {
  // Alternate so drift in machine load hits every side alike.
  reference.push(await runOnce(false));
  ours.push(await runOnce(true));
  if (NO_POLL) oursNoPoll.push(await runOnce(true, undefined, true));
  console.error(`round ${round + 1}/${ROUNDS} done`);
}

console.log(
  `vfstrace serve vs the C virtiofsd, real guest (QEMU TCG); median of ${ROUNDS} rounds`,
);
console.log(`  ${"check".padEnd(14)} ${"virtiofsd".padStart(10)} ${"serve".padStart(9)}  ratio`);
for (const name of CHECKS) {
  const c = median(reference.map((t) => t[name] ?? NaN));
  const s = median(ours.map((t) => t[name] ?? NaN));
  console.log(
    `  ${name.padEnd(14)} ${c.toFixed(2).padStart(9)}s ${s.toFixed(2).padStart(8)}s  ${
      (s / c).toFixed(3)
    }   (rounds: virtiofsd ${reference.map((t) => t[name]?.toFixed(2)).join(" ")}; serve ${
      ours.map((t) => t[name]?.toFixed(2)).join(" ")
    })`,
  );
}
if (NO_POLL) {
  console.log(`  serve without busy-polling (VFSTRACE_BUSY_POLL_US=0):`);
  for (const name of CHECKS) {
    const c = median(reference.map((t) => t[name] ?? NaN));
    const s = median(oursNoPoll.map((t) => t[name] ?? NaN));
    console.log(
      `  ${name.padEnd(14)} ${c.toFixed(2).padStart(9)}s ${s.toFixed(2).padStart(8)}s  ${
        (s / c).toFixed(3)
      }   (rounds: ${oursNoPoll.map((t) => t[name]?.toFixed(2)).join(" ")})`,
    );
  }
}

if (PROFILE) {
  const profileDir = await Deno.makeTempDir({ prefix: "vfstrace-serve-prof-" });
  await runOnce(true, profileDir);
  console.log(`\nwhere serve's time goes (one run under --cpu-prof, self time while busy):`);
  for (const line of await topFunctions(profileDir, 15)) console.log(`  ${line}`);
  console.log(`  (profile kept in ${profileDir})`);
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** The `n` functions with the most self time in the V8 CPU profiles in `dir`. */
async function topFunctions(dir: string, n: number): Promise<string[]> {
  const self = new Map<string, number>();
  let total = 0;
  let waiting = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".cpuprofile")) continue;
    const prof = JSON.parse(await Deno.readTextFile(`${dir}/${e.name}`)) as {
      nodes: ProfileNode[];
      samples: number[];
      timeDeltas: number[];
    };
    const byId = new Map(prof.nodes.map((node) => [node.id, node]));
    prof.samples.forEach((id, i) => {
      const f = byId.get(id)?.callFrame;
      if (f === undefined) return;
      const file = f.url.replace(/^.*\/(?=[^/]+\/[^/]+$)/, "");
      const key = `${f.functionName || "(anonymous)"} ${file}:${f.lineNumber + 1}`;
      const dt = prof.timeDeltas[i] ?? 0;
      // Waiting for the guest: the loop's epoll_wait (parked, or its short busy-poll window).
      if (key.includes("sys/epoll.ts") || key.startsWith("(idle)")) {
        waiting += dt;
        return;
      }
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  return [
    `${ms(waiting)} waiting in epoll_wait; ${ms(total).trim()} busy, of which:`,
    ...[...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) =>
      `${ms(us)} ${(100 * us / total).toFixed(1).padStart(5)}%  ${k}`
    ),
  ];
}
