/**
 * `deno task soak [--minutes N] [--queues Q] [--depth D]`: `vfstrace trace`
 * in front of `vfstrace serve` (both through the CLI, as users run them),
 * driven by the built-in client at depth D on Q request queues with a mixed
 * workload (CREATE, WRITE a pattern, READ it back and compare, GETATTR,
 * LOOKUP, RELEASE, UNLINK) for N minutes (default 10). Every few seconds it
 * samples the RSS and open fd count of both processes and prints the curves
 * (start, middle, end, slope); at the end it reconciles the capture's
 * request and reply counts with the client's. Exits 1 on a data mismatch,
 * a lost or extra request, or a failed request.
 *
 * @module
 */
import { VhostUserFrontend } from "../client/mod.ts";
import { CaptureReader, RecordKind } from "../capture/mod.ts";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  type FuseReply,
  type FuseRequestInit,
  FuseSession,
  Opcode,
  type OpcodeName,
} from "../decode/fuse.ts";
import { startBackend } from "../cmd/backends.ts";
import { children, curve, type Mem, sample } from "./_proc.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`soak: ${name} must be a positive number`);
    Deno.exit(2);
  }
  return v;
}

const minutes = arg("--minutes", 10);
const queues = Math.floor(arg("--queues", 3));
const depth = Math.floor(arg("--depth", 64));

const dir = await Deno.makeTempDir({ prefix: "vfstrace-soak-" });
const share = `${dir}/share`;
await Deno.mkdir(share);
const socket = `${dir}/trace.sock`;
const capture = `${dir}/soak.pcapng`;
const trace = await startBackend({
  kind: "serve",
  trace: { capture },
  sharedDir: share,
  socket,
  requestQueues: queues,
});

const fe = VhostUserFrontend.connect(socket, { name: "soak" });
const qs = await fe.start({ memory: { size: 256 << 20 }, queues: 1 + queues, queueSize: 128 });
const session = new FuseSession();
let unique = 0n;
const counts = { requests: 0, replies: 0, noReply: 0, mismatches: 0, errors: 0, bytes: 0 };
const errors = new Map<string, number>();

async function call(
  name: OpcodeName,
  init: Omit<FuseRequestInit, "header"> & { nodeid?: bigint },
  queue: number,
  capacity = 1 << 17,
): Promise<FuseReply> {
  const { nodeid, ...rest } = init;
  const bytes = encodeRequest({
    header: { opcode: Opcode[name], unique: unique += 2n, nodeid: nodeid ?? 1n, pid: 1 },
    ...rest,
  }, session);
  const req = decodeRequest(bytes, new FuseSession({ minor: session.minor }));
  counts.requests++;
  const done = await qs[queue]!.submit(bytes, capacity);
  counts.replies++;
  const rep = decodeReply(done.bytes.subarray(0, done.len), req, session);
  if (rep.header.error !== 0) {
    counts.errors++;
    const k = `${name} ${rep.header.error}`;
    errors.set(k, (errors.get(k) ?? 0) + 1);
  }
  return rep;
}

const init = await call("INIT", {
  arg: { major: 7, minor: 38, "max_readahead": 131072, flags: 0x7fffffff, flags2: 0 },
}, 1);
if (init.header.error !== 0) throw new Error(`INIT: ${init.header.error}`);

function pattern(seed: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const deadline = Date.now() + minutes * 60_000;
let files = 0;

async function worker(queue: number, id: number): Promise<void> {
  let k = 0;
  while (Date.now() < deadline) {
    const name = `q${queue}-w${id}-${k++}`;
    const c = await call("CREATE", {
      arg: { flags: 2, mode: 0o100644, umask: 0o022, "open_flags": 0 },
      names: [name],
    }, queue);
    if (c.header.error !== 0) continue;
    const nodeid = BigInt(c.arg!.nodeid as bigint);
    const fh = BigInt(c.arg!.fh as bigint);
    const size = 4096 * (1 + ((id * 7 + k) % 16));
    const data = pattern(id * 1_000_003 + k, size);
    const w = await call("WRITE", {
      nodeid,
      arg: { fh, offset: 0n, size, "write_flags": 0, "lock_owner": 0n, flags: 0 },
      data,
    }, queue);
    counts.bytes += size;
    const r = await call("READ", {
      nodeid,
      arg: { fh, offset: 0n, size, "read_flags": 0, "lock_owner": 0n, flags: 0 },
    }, queue);
    const got = concat(r.data);
    if (w.header.error !== 0 || got.byteLength !== size || !equal(got, data)) {
      counts.mismatches++;
    }
    await call("GETATTR", { nodeid, arg: { "getattr_flags": 0, fh: 0n } }, queue);
    await call("RELEASE", {
      nodeid,
      arg: { fh, flags: 0, "release_flags": 0, "lock_owner": 0n },
    }, queue);
    await call("LOOKUP", { names: [name] }, queue);
    // FORGET both lookups (CREATE and LOOKUP) on hiprio: no reply, the chain comes back empty.
    const fb = encodeRequest({
      header: { opcode: Opcode.FORGET, unique: unique += 2n, nodeid },
      arg: { nlookup: 2n },
    }, session);
    counts.requests++;
    counts.noReply++;
    await qs[0]!.submit(fb, 0);
    counts.replies++;
    // Keep the directory from growing without bound: remove most files.
    if (k % 4 !== 0) await call("UNLINK", { names: [name] }, queue);
    else files++;
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Sample {
  t: number;
  trace: Mem;
  serve: Mem;
  requests: number;
}
const samples: Sample[] = [];
const t0 = Date.now();
const tracePid = trace.child.pid;
let servePid = children(tracePid)[0] ?? -1;
const sampler = setInterval(() => {
  if (servePid < 0) servePid = children(tracePid)[0] ?? -1;
  const s = {
    t: (Date.now() - t0) / 1000,
    trace: sample(tracePid),
    serve: sample(servePid),
    requests: counts.requests,
  };
  samples.push(s);
  console.log(
    `${s.t.toFixed(0).padStart(5)} s  requests ${String(s.requests).padStart(9)}  ` +
      `trace rss ${s.trace.rssKiB} (anon ${s.trace.anonKiB}, shmem ${s.trace.shmemKiB}) KiB ` +
      `fds ${s.trace.fds}  serve rss ${s.serve.rssKiB} (anon ${s.serve.anonKiB}, shmem ` +
      `${s.serve.shmemKiB}) KiB fds ${s.serve.fds}`,
  );
}, 5000);

console.log(
  `soak: ${minutes} min, ${queues} request queues × depth ${depth}, trace pid ${tracePid}`,
);
const workers: Promise<void>[] = [];
for (let q = 1; q <= queues; q++) {
  for (let d = 0; d < depth; d++) workers.push(worker(q, d));
}
let failure: unknown;
await Promise.all(workers).catch((e) => (failure = e));
clearInterval(sampler);
await fe.close();
const st = await trace.stop(30_000);

// Reconcile with the capture.
let capRequests = 0;
let capReplies = 0;
const reader = await CaptureReader.open(capture);
for await (const r of reader) {
  if (r.kind === RecordKind.FUSE_REQUEST) capRequests++;
  else if (r.kind === RecordKind.FUSE_REPLY) capReplies++;
}

const secs = (Date.now() - t0) / 1000;
console.log(`\nsoak: ${secs.toFixed(0)} s, trace exit ${st.code}`);
console.log(curve("trace RSS KiB", samples, (s) => s.trace.rssKiB));
console.log(curve("trace anon KiB", samples, (s) => s.trace.anonKiB));
console.log(curve("trace shmem KiB", samples, (s) => s.trace.shmemKiB));
console.log(curve("trace fds", samples, (s) => s.trace.fds));
console.log(curve("serve RSS KiB", samples, (s) => s.serve.rssKiB));
console.log(curve("serve anon KiB", samples, (s) => s.serve.anonKiB));
console.log(curve("serve shmem KiB", samples, (s) => s.serve.shmemKiB));
console.log(curve("serve fds", samples, (s) => s.serve.fds));
console.log(
  `client: ${counts.requests} requests (${counts.noReply} FORGETs), ${counts.replies} completions, ` +
    `${(counts.requests / secs).toFixed(0)}/s, ${(counts.bytes / 2 ** 20).toFixed(0)} MiB ` +
    `written and read back, ${counts.mismatches} mismatches, ${counts.errors} error replies, ` +
    `${files} files kept`,
);
if (errors.size > 0) console.log(`errors: ${[...errors].map(([k, v]) => `${k} ×${v}`).join(", ")}`);
console.log(`capture: ${capRequests} requests, ${capReplies} replies`);
const ok = failure === undefined && counts.mismatches === 0 && counts.errors === 0 &&
  capRequests === counts.requests && capReplies === counts.replies && st.code === 0;
if (failure !== undefined) console.log(`failure: ${(failure as Error).stack ?? failure}`);
if (!ok) console.log(trace.stderr().slice(-4000));
console.log(ok ? "soak: PASS" : "soak: FAIL");
await Deno.remove(dir, { recursive: true });
Deno.exit(ok ? 0 : 1);
