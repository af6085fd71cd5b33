/**
 * `deno task soak:guest [--minutes N]`: a real guest boots with its root on
 * `vfstrace serve`, `vfstrace trace` in front capturing to a file, and runs
 * for N minutes (default 10) stress-ng's file stressors with `--verify`
 * alongside repeated fio write+verify runs followed by a verify-only pass
 * after dropping the guest's page cache (so the data is read back from the
 * back-end). Every few seconds it samples the RSS and open fd count of trace
 * and serve and prints the curves (start, middle, end, slope); at the end it
 * reads stress-ng's and fio's results from the share and reconciles the
 * capture (every request paired with one reply). serve's fd count follows
 * the guest's inode cache (one fd per inode the guest holds a lookup on): it
 * saws up and down with the dentry stressors and is back near its start once
 * the guest has forgotten them. Exits 0 only on a clean
 * pass. Needs root (the Debian tree with stress-ng and fio is made once with
 * debootstrap and apt-get, cached as debian-bookworm-soak).
 *
 * @module
 */
import { CaptureReader, RecordKind } from "../capture/mod.ts";
import {
  bootGuest,
  copyTree,
  type GuestReport,
  installRootInit,
  prepareGuest,
  rootInitAppend,
} from "../vm/mod.ts";
import { ensureDebianRootfsWith, SOAK_PACKAGES } from "../vm/rootfs.ts";
import { children, curve, type Mem, sample } from "./_proc.ts";
import {
  type FioResult,
  FuseReconciler,
  parseFioJson,
  parseStressNg,
  reconciled,
  stressNgPassed,
} from "./_guest_soak.ts";

const i = Deno.args.indexOf("--minutes");
const minutes = i >= 0 ? Number(Deno.args[i + 1]) : 10;
if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error("soak:guest: --minutes must be a positive number");
  Deno.exit(2);
}
const seconds = Math.max(10, Math.round(minutes * 60));
const LAUNCHER = new URL("../vfstrace", import.meta.url).pathname;

/** The guest's part: stress-ng and a fio loop side by side for DUR seconds. */
function guestBody(dur: number): string {
  const fioJob = (verifyOnly: boolean) =>
    [
      "[global]",
      "directory=/root/soak/fio",
      "size=16M",
      "bsrange=4k-64k",
      "ioengine=psync",
      "verify=crc32c",
      "do_verify=1",
      "verify_fatal=1",
      "randrepeat=1",
      ...(verifyOnly ? ["verify_only=1"] : []),
      "[direct]",
      "filename=direct.dat",
      "rw=randwrite",
      "direct=1",
      "[buffered]",
      "filename=buffered.dat",
      "rw=randwrite",
      "verify_backlog=64",
      "fsync_on_close=1",
    ].join("\n");
  return String.raw`
S=/root/soak
mkdir -p $S/stress $S/fio
cat > $S/write.fio <<'JOB'
${fioJob(false)}
JOB
cat > $S/verify.fio <<'JOB'
${fioJob(true)}
JOB
up() { cut -d. -f1 /proc/uptime; }
end=$(( $(up) + ${dur} ))
echo "soak: stress-ng and fio for ${dur} s"
( cd $S/stress && stress-ng --hdd 1 --hdd-bytes 8M --seek 1 --seek-size 8M --dir 1 \
    --rename 1 --link 1 --symlink 1 --chmod 1 --dentry 1 --verify --timeout ${dur}s \
    --metrics-brief --temp-path $S/stress > $S/stress-ng.log 2>&1
  echo $? > $S/stress-ng.status ) &
sp=$!
k=0
while [ "$(up)" -lt "$end" ]; do
  k=$((k + 1))
  fio --output-format=json --output=$S/fio-$k-write.json $S/write.fio 2> $S/fio-$k-write.err
  echo "$k write $?" >> $S/fio.status
  sync
  echo 3 > /proc/sys/vm/drop_caches
  fio --output-format=json --output=$S/fio-$k-verify.json $S/verify.fio 2> $S/fio-$k-verify.err
  echo "$k verify $?" >> $S/fio.status
  echo "soak: fio round $k done at $(up) s"
done
wait $sp
t_stress() { tail -n 1 $S/stress-ng.log; [ "$(cat $S/stress-ng.status)" = 0 ]; }
t_fio() { n=$(wc -l < $S/fio.status); ! grep -qv ' 0$' $S/fio.status && echo "$n fio runs exit 0"; }
check stress_ng t_stress
check fio t_fio
`;
}

async function waitForSocket(path: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await Deno.stat(path)).isSocket) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`no socket at ${path} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const dir = await Deno.makeTempDir({ prefix: "vfstrace-soak-guest-" });
const tree = `${dir}/root`;
await Deno.mkdir(tree);
await Deno.chmod(tree, 0o755);
const cached = await ensureDebianRootfsWith("soak", SOAK_PACKAGES, {
  onProgress: (m) => console.log(`soak:guest: ${m}`),
});
await copyTree(cached, tree);
await installRootInit(tree, guestBody(seconds));
const prepared = await prepareGuest({
  workload: { name: "soak", description: "stress-ng and fio on a virtiofs root", script: "" },
  onProgress: (m) => console.log(`soak:guest: ${m}`),
});

const socket = `${dir}/trace.sock`;
const capture = `${dir}/soak.pcapng`;
const trace = new Deno.Command(LAUNCHER, {
  args: [
    "trace",
    "--socket-path",
    socket,
    "-w",
    capture,
    "-q",
    "--",
    LAUNCHER,
    "serve",
    "--socket-path={socket}",
    "--shared-dir",
    tree,
    "--log-level",
    "warn",
  ],
  env: { NO_COLOR: "1" },
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
let traceErr = "";
const drained = (async () => {
  for await (const c of trace.stderr.pipeThrough(new TextDecoderStream())) traceErr += c;
})();
await waitForSocket(socket);

interface Sample {
  t: number;
  trace: Mem;
  serve: Mem;
}
const samples: Sample[] = [];
const t0 = Date.now();
// The launcher is a script that execs deno: its pid is trace's; serve is trace's child.
const tracePid = trace.pid;
let servePid = -1;
const sampler = setInterval(() => {
  if (servePid < 0) servePid = children(tracePid)[0] ?? -1;
  const s = { t: (Date.now() - t0) / 1000, trace: sample(tracePid), serve: sample(servePid) };
  samples.push(s);
  console.log(
    `${s.t.toFixed(0).padStart(5)} s  trace rss ${s.trace.rssKiB} (anon ${s.trace.anonKiB}) ` +
      `KiB fds ${s.trace.fds}  serve rss ${s.serve.rssKiB} (anon ${s.serve.anonKiB}) KiB ` +
      `fds ${s.serve.fds}`,
  );
}, 5000);

console.log(`soak:guest: ${seconds} s of stress-ng and fio, trace pid ${tracePid}`);
let report: GuestReport | undefined;
let failure: unknown;
try {
  report = await bootGuest(prepared, {
    socketPath: socket,
    extraAppend: rootInitAppend(),
    memoryMiB: 1024,
    timeoutMs: seconds * 1000 + 600_000,
    onConsoleLine: (l) => {
      if (/^(soak:|VFSTRACE-RESULT)/.test(l)) console.log(`  guest: ${l}`);
    },
  });
} catch (e) {
  failure = e;
}
clearInterval(sampler);
const timer = setTimeout(() => trace.kill("SIGTERM"), 30_000);
const st = await trace.status;
clearTimeout(timer);
await drained;

// The guest's results, from the share.
const soak = `${tree}/root/soak`;
const readText = (p: string) => Deno.readTextFile(p).catch(() => "");
const stress = parseStressNg(
  await readText(`${soak}/stress-ng.log`),
  Number((await readText(`${soak}/stress-ng.status`)).trim() || NaN),
);
const fioRuns = (await readText(`${soak}/fio.status`)).trim().split("\n").filter((l) => l !== "")
  .map((l) => l.split(" "));
const fio: FioResult = { jobs: 0, errors: 0, readBytes: 0, writeBytes: 0 };
const fioProblems: string[] = [];
for (const [k, phase, code] of fioRuns) {
  const base = `${soak}/fio-${k}-${phase}`;
  try {
    const r = parseFioJson(await readText(`${base}.json`));
    fio.jobs += r.jobs;
    fio.errors += r.errors;
    fio.readBytes += r.readBytes;
    // A verify-only run reports the writes it skipped as written.
    if (phase === "write") fio.writeBytes += r.writeBytes;
    if (r.errors !== 0 || code !== "0") {
      fioProblems.push(`round ${k} ${phase}: exit ${code}, ${r.errors} job errors`);
    }
  } catch (e) {
    fioProblems.push(`round ${k} ${phase}: exit ${code}, ${(e as Error).message}`);
  }
  const err = (await readText(`${base}.err`)).trim();
  if (/verify|bad|fail/i.test(err)) fioProblems.push(`round ${k} ${phase}: ${err.slice(0, 300)}`);
}

// Reconcile the capture.
const rec = new FuseReconciler();
let malformed = 0;
let gaps = 0;
let nextSeq: number | undefined;
for await (const r of await CaptureReader.open(capture)) {
  if (nextSeq !== undefined && r.seq !== nextSeq) gaps++;
  nextSeq = r.seq + r.continuations + 1;
  if ((r.flags & 2) !== 0) malformed++;
  if (r.kind === RecordKind.FUSE_REQUEST || r.kind === RecordKind.FUSE_REPLY) {
    rec.add({
      kind: r.kind === RecordKind.FUSE_REQUEST ? "request" : "reply",
      queue: r.queue,
      head: r.head,
      body: r.body.subarray(0, 16),
    });
  }
}
const cap = rec.result;
const capSize = (await Deno.stat(capture)).size;

const secs = (Date.now() - t0) / 1000;
console.log(`\nsoak:guest: ${secs.toFixed(0)} s, trace exit ${st.code}`);
for (
  const [label, pick] of [
    ["trace RSS KiB", (s: Sample) => s.trace.rssKiB],
    ["trace anon KiB", (s: Sample) => s.trace.anonKiB],
    ["trace fds", (s: Sample) => s.trace.fds],
    ["serve RSS KiB", (s: Sample) => s.serve.rssKiB],
    ["serve anon KiB", (s: Sample) => s.serve.anonKiB],
    ["serve fds", (s: Sample) => s.serve.fds],
  ] as const
) {
  console.log(curve(label, samples, pick));
}
console.log(
  `stress-ng: exit ${stress.status}, ${stress.successful ? "successful" : "not successful"}, ` +
    `${stress.failures.length} fail lines; bogo ops ${
      [...stress.bogoOps].map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
);
for (const f of stress.failures.slice(0, 10)) console.log(`  stress-ng fail: ${f}`);
console.log(
  `fio: ${fioRuns.length} runs (${fio.jobs} jobs), ${fio.errors} job errors, ` +
    `${(fio.writeBytes / 2 ** 20).toFixed(0)} MiB written, ` +
    `${(fio.readBytes / 2 ** 20).toFixed(0)} MiB read back and verified`,
);
for (const p of fioProblems.slice(0, 10)) console.log(`  fio: ${p}`);
console.log(
  `capture: ${(capSize / 2 ** 20).toFixed(1)} MiB, ${cap.requests} requests ` +
    `(${cap.noReply} FORGET/BATCH_FORGET), ${cap.replies} completions, ${cap.unanswered} ` +
    `unanswered, ${cap.orphanReplies} orphan, ${cap.duplicates} duplicate, ${cap.wrongUnique} ` +
    `wrong unique, ${cap.short} short, ` +
    `${malformed} malformed, ${gaps} sequence gaps`,
);
if (report !== undefined) {
  console.log(`guest: boot to poweroff ${report.bootToPoweroffMs} ms`);
  for (const c of report.checks) console.log(`  ${c.status} ${c.name} ${c.detail}`);
}
const ok = failure === undefined && report?.passed === true && st.code === 0 &&
  stressNgPassed(stress) && stress.bogoOps.size > 0 && fioRuns.length >= 2 &&
  fioProblems.length === 0 && fio.errors === 0 && reconciled(cap) && cap.requests > 0 &&
  malformed === 0 && gaps === 0;
if (failure !== undefined) console.log(`failure: ${(failure as Error).stack ?? failure}`);
if (!ok) console.log(traceErr.slice(-4000));
console.log(ok ? "soak:guest: PASS" : "soak:guest: FAIL");
await Deno.remove(dir, { recursive: true });
Deno.exit(ok ? 0 : 1);
