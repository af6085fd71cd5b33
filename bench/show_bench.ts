/**
 * `vfstrace show` throughput, in two parts.
 *
 * 1. In memory, on the golden fixture (a real 6.1 guest session: 284
 *    records, 119 operations) repeated, measured side by side in one run:
 *    - pair: records → operations (FUSE decode + pairing), events dropped;
 *    - pair + format: the whole `show` pipeline short of writing;
 *    - pair + json: the `--json` pipeline;
 *    - format only: lines from operations paired beforehand.
 *
 * 2. Through the real CLI, as users run it: a realistic capture is written
 *    to disk with CaptureWriter (a session's mix of LOOKUP, GETATTR, READ,
 *    WRITE, CREATE, READDIRPLUS, OPEN/RELEASE and hiprio FORGETs, up to 16
 *    requests in flight answered out of order, ~5 % errors, the vhost-user
 *    set-up and tear-down plus a vring re-enable now and then, the default
 *    snap length of `vfstrace trace`: 256 bytes), at two sizes; then
 *    `vfstrace show FILE > /dev/null` and `vfstrace show FILE --json >
 *    /dev/null` run as subprocesses. Wall time (process start included) →
 *    records/s, and the child's peak RSS (`/usr/bin/time -f %M`, else
 *    VmHWM polled from /proc) and CPU time (user + sys, which a shared
 *    machine disturbs less than wall time; with /usr/bin/time only). Flat RSS across the two sizes shows that
 *    memory does not grow with the file. Then `tshark -n -r FILE > /dev/null`
 *    with contrib/wireshark/vfstrace.lua loaded (plain tshark, said in the
 *    output, when the script is missing) on the smaller file (the dissector
 *    reads a few thousand records a second), and the ratio of records/s.
 *
 * Prints medians (a paired operation counts as its two records).
 *
 * Run: deno task bench:show [--rounds N] [--batches N] [--file CAPTURE]
 *        [--sizes 250000,1000000] [--repeats N] [--tshark-repeats N]
 *        [--tshark-size N] [--skip-memory] [--skip-cli] [--skip-tshark]
 *        [--keep DIR (generate once, reuse)] [--vfstrace LAUNCHER (another checkout)]
 *        [--against LAUNCHER (another checkout, run alternately: medians and ratios)]
 */
import { CaptureWriter, decodeCapture, packRequestAux, RecordKind } from "../capture/mod.ts";
import {
  encodeReply,
  encodeRequest,
  type FuseReplyInit,
  type FuseRequestInit,
  FuseSession,
  InitFlags,
  Opcode,
} from "../decode/fuse.ts";
import { encodeMessage, type Payload } from "../decode/vhost_user.ts";
import {
  LineBuffer,
  LineFormatter,
  Pairer,
  pairRecords,
  type ShowEvent,
  writeJsonLine,
} from "../show/mod.ts";
import { requestKeep } from "../trace/capture_recorder.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
function flag(name: string): boolean {
  return Deno.args.includes(`--${name}`);
}
function text(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
const ROUNDS = arg("rounds", 1000);
const BATCHES = arg("batches", 7);
const REPEATS = arg("repeats", 3);
const TSHARK_REPEATS = arg("tshark-repeats", 1);
const SIZES = (text("sizes") ?? "250000,1000000").split(",").map(Number).filter((n) => n > 0);
const TARGET = 1_000_000;
const TSHARK_TARGET = 20;

const ROOT = new URL("../", import.meta.url).pathname;
const VFSTRACE = text("vfstrace") ?? `${ROOT}vfstrace`;
/** Another launcher (a checkout of another revision) run alternately with this one, for ratios. */
const AGAINST = text("against");
const DISSECTOR = `${ROOT}contrib/wireshark/vfstrace.lua`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en");

// ------------------------------------------------------------------ 1. in memory

async function inMemory(): Promise<void> {
  const fileArg = text("file");
  const fixture = fileArg ?? new URL("../tests/fixtures/guest_session.pcapng", import.meta.url);
  const { records, error } = decodeCapture(await Deno.readFile(fixture));
  if (error !== undefined) throw error;
  const events = pairRecords(records);
  const recordsOf = (e: ShowEvent) =>
    e.type === "fuse" ? (e.request !== undefined ? 1 : 0) + (e.reply !== undefined ? 1 : 0) : 1;
  const eventRecords = events.reduce((n, e) => n + recordsOf(e), 0);

  let sink = 0;
  const pair = (onEvent: (e: ShowEvent) => void): number => {
    const p = new Pairer({ onEvent });
    for (let r = 0; r < ROUNDS; r++) for (const rec of records) p.push(rec);
    p.finish();
    return ROUNDS * records.length;
  };
  const cases: [string, () => number][] = [
    ["pair (decode + pairing)", () => pair(() => {})],
    ["pair + format (show)", () => {
      const f = new LineFormatter({ timeZone: "utc" });
      return pair((e) => (sink += f.format(e).length));
    }],
    ["pair + json (show --json)", () => {
      // As the CLI writes it: bytes into one buffer, emptied as it fills.
      const out = new LineBuffer(1 << 18);
      return pair((e) => {
        writeJsonLine(e, out);
        out.byte(10);
        if (out.length >= 1 << 18) {
          sink += out.length;
          out.clear();
        }
      });
    }],
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
    `1. in memory: ${
      fileArg ?? "tests/fixtures/guest_session.pcapng"
    } (${records.length} records, ` +
      `${events.filter((e) => e.type === "fuse").length} operations) × ${fmt(ROUNDS)} rounds; ` +
      `median of ${BATCHES} batches`,
  );
  cases.forEach(([name], i) => {
    const m = median(rates[i]!);
    console.log(
      `  ${(name + ":").padEnd(28)} ${fmt(m).padStart(11)} records/s` +
        `   ${(m / TARGET).toFixed(2)}× the 1M records/s target`,
    );
  });
  if (sink === 0) console.log("(nothing formatted?)");
}

// ------------------------------------------------------------------ 2. a capture on disk

/** Deterministic PRNG (mulberry32): the same capture on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One request/reply pair, encoded once; unique (offset 8 of both) is patched per use. */
interface Template {
  readonly queue: number;
  readonly request: Uint8Array;
  readonly keep: number;
  /** The reply body; empty for FORGET (a used entry without bytes). */
  readonly reply: Uint8Array;
  readonly writable: number;
  readonly descriptors: number;
}

const T0 = 1_795_618_800_000_000_000n;
const BIG = new Uint8Array(1 << 20); // payload bytes: the snap length cuts them anyway
const VARIANTS = 64;

const NAMES = Array.from(
  { length: 512 },
  (_, i) => i % 7 === 0 ? `build-${i}.log` : i % 5 === 0 ? `src_${i}.ts` : `file${i}`,
);

function attr(r: () => number, nodeid: bigint, dir: boolean) {
  return {
    nodeid,
    generation: 0n,
    "entry_valid": 1n,
    "attr_valid": 1n,
    ino: nodeid,
    size: dir ? 4096n : BigInt(Math.floor(r() * 10_000_000)),
    blocks: 8n,
    atime: 1_795_618_000n,
    mtime: 1_795_618_000n,
    ctime: 1_795_618_000n,
    mode: dir ? 0o40755 : 0o100644,
    nlink: dir ? 2 : 1,
    uid: 1000,
    gid: 1000,
    blksize: 4096,
  };
}

/** The pool of operations a session draws from, with their weights. */
function templates(session: FuseSession, r: () => number): [number, Template[]][] {
  const make = (
    req: FuseRequestInit,
    opcode: number,
    rep: FuseReplyInit | undefined,
    queue = 1,
    writable = 4096,
  ): Template => {
    const request = encodeRequest(req, session);
    return {
      queue,
      request,
      keep: requestKeep([request]),
      reply: rep === undefined ? new Uint8Array(0) : encodeReply(rep, opcode, session),
      writable: rep === undefined ? 0 : writable,
      descriptors: 2 + (req.data === undefined ? 0 : 256),
    };
  };
  const node = () => BigInt(2 + Math.floor(r() * 5000));
  const name = () => NAMES[Math.floor(r() * NAMES.length)]!;
  const u = { unique: 1n }; // 0 would encode a notification; patched per use
  const err = (errno: number): FuseReplyInit => ({ header: { ...u, error: -errno } });
  const pool = (f: (i: number) => Template) => Array.from({ length: VARIANTS }, (_, i) => f(i));
  const h = (opcode: number, nodeid: bigint) => ({
    opcode,
    unique: 0n,
    nodeid,
    uid: 1000,
    pid: 42,
  });
  return [
    [
      22,
      pool((i) => {
        const n = node();
        return make(
          { header: h(Opcode.LOOKUP, n), names: [name()] },
          Opcode.LOOKUP,
          i % 6 === 0 ? err(2) : { header: u, arg: attr(r, node(), i % 9 === 0) },
        );
      }),
    ],
    [
      18,
      pool(() => {
        const n = node();
        return make(
          { header: h(Opcode.GETATTR, n), arg: {} },
          Opcode.GETATTR,
          { header: u, arg: attr(r, n, false) },
        );
      }),
    ],
    [
      20,
      pool((i) => {
        const size = [4096, 16384, 65536, 131072][i % 4]!;
        return make(
          {
            header: h(Opcode.READ, node()),
            arg: { fh: BigInt(i), offset: BigInt(i * size), size },
          },
          Opcode.READ,
          i === 13 ? err(5) : { header: u, data: BIG.subarray(0, i % 8 === 7 ? 100 : size) },
          1,
          size,
        );
      }),
    ],
    [
      12,
      pool((i) => {
        const size = [4096, 65536, 262144, 1048576][i % 4]!;
        return make(
          {
            header: h(Opcode.WRITE, node()),
            arg: { fh: BigInt(i), offset: BigInt(i * size) },
            data: BIG.subarray(0, size),
          },
          Opcode.WRITE,
          i === 21 ? err(28) : { header: u, arg: { size } },
          1,
          16,
        );
      }),
    ],
    [
      4,
      pool((i) =>
        make(
          {
            header: h(Opcode.CREATE, node()),
            names: [name()],
            arg: { flags: 0o1101, mode: 0o100644, umask: 0o22 },
          },
          Opcode.CREATE,
          i % 10 === 0
            ? err(17)
            : { header: u, arg: { ...attr(r, node(), false), fh: BigInt(i), "open_flags": 0 } },
        )
      ),
    ],
    [
      4,
      pool((i) =>
        make(
          { header: h(Opcode.READDIRPLUS, node()), arg: { fh: BigInt(i), size: 4096 } },
          Opcode.READDIRPLUS,
          {
            header: u,
            entries: Array.from({ length: 1 + (i % 12) }, (_, k) => {
              const ino = node();
              return {
                ino,
                off: BigInt(k + 1),
                type: 8,
                name: name(),
                entry: attr(r, ino, false),
              };
            }),
          },
        )
      ),
    ],
    [
      8,
      pool((i) =>
        make(
          { header: h(Opcode.OPEN, node()), arg: { flags: i % 2 === 0 ? 0o100000 : 0o100002 } },
          Opcode.OPEN,
          i % 16 === 0 ? err(13) : { header: u, arg: { fh: BigInt(i), "open_flags": 0 } },
        )
      ),
    ],
    [
      8,
      pool((i) =>
        make(
          { header: h(Opcode.RELEASE, node()), arg: { fh: BigInt(i), flags: 0o100000 } },
          Opcode.RELEASE,
          { header: u },
        )
      ),
    ],
    [
      4,
      pool(() =>
        make(
          { header: h(Opcode.FORGET, node()), arg: { nlookup: 1n } },
          Opcode.FORGET,
          undefined,
          0,
        )
      ),
    ],
  ];
}

function vhost(channel: "frontend", request: string, payload?: Payload) {
  return encodeMessage({ channel, request, ...(payload === undefined ? {} : { payload }) });
}
function vhostReply(request: string, payload: Payload) {
  return encodeMessage({ channel: "frontend", request, isReply: true, payload });
}

/** The vhost-user set-up of a 2-queue virtio-fs device: [direction, body, fds]. */
function setup(): [number, Uint8Array, number][] {
  const features = 0x1_7000_0000n;
  const out: [number, Uint8Array, number][] = [
    [0, vhost("frontend", "GET_FEATURES"), 0],
    [1, vhostReply("GET_FEATURES", { kind: "u64", value: features }), 0],
    [0, vhost("frontend", "GET_PROTOCOL_FEATURES"), 0],
    [1, vhostReply("GET_PROTOCOL_FEATURES", { kind: "u64", value: 0x8e3bn }), 0],
    [0, vhost("frontend", "SET_PROTOCOL_FEATURES", { kind: "u64", value: 0x8e3bn }), 0],
    [0, vhost("frontend", "SET_OWNER"), 0],
    [0, vhost("frontend", "SET_FEATURES", { kind: "u64", value: features }), 0],
    [
      0,
      vhost("frontend", "SET_MEM_TABLE", {
        kind: "memory_table",
        xen: false,
        padding: 0,
        regions: [0, 1].map((i) => ({
          guestPhysAddr: BigInt(i) * 0x1_0000_0000n,
          memorySize: 0x8000_0000n,
          userspaceAddr: 0x7f00_0000_0000n + BigInt(i) * 0x1_0000_0000n,
          mmapOffset: 0n,
        })),
      }),
      2,
    ],
  ];
  for (const index of [0, 1]) {
    out.push(
      [0, vhost("frontend", "SET_VRING_NUM", { kind: "vring_state", index, num: 1024 }), 0],
      [0, vhost("frontend", "SET_VRING_BASE", { kind: "vring_state", index, num: 0 }), 0],
      [
        0,
        vhost("frontend", "SET_VRING_ADDR", {
          kind: "vring_addr",
          index,
          flags: 0,
          descUserAddr: 0x7f00_0010_0000n + BigInt(index) * 0x10000n,
          usedUserAddr: 0x7f00_0010_8000n + BigInt(index) * 0x10000n,
          availUserAddr: 0x7f00_0010_4000n + BigInt(index) * 0x10000n,
          logGuestAddr: 0n,
        }),
        0,
      ],
      [
        0,
        vhost("frontend", "SET_VRING_KICK", {
          kind: "vring_index",
          value: BigInt(index),
          index,
          noFd: false,
        }),
        1,
      ],
      [
        0,
        vhost("frontend", "SET_VRING_CALL", {
          kind: "vring_index",
          value: BigInt(index),
          index,
          noFd: false,
        }),
        1,
      ],
      [0, vhost("frontend", "SET_VRING_ENABLE", { kind: "vring_state", index, num: 1 }), 0],
    );
  }
  return out;
}

/**
 * Writes a capture of about `total` records to `path` (stops at the first
 * whole operation past it) and returns the exact count.
 */
async function generate(path: string, total: number): Promise<number> {
  const r = rng(0x5eed);
  const session = new FuseSession({ minor: 38, flags: 0n });
  const writer = CaptureWriter.create(path, {
    snaplen: 256,
    flushIntervalMs: 0,
    bufferSize: 1 << 20,
    userAppl: "vfstrace bench",
    os: "Linux",
    hardware: "x86_64",
  });
  let now = T0;
  let count = 0;
  const tick = () => (now += BigInt(1_000 + Math.floor(r() * 20_000)));
  const vhostRecord = (direction: number, body: Uint8Array, fdCount: number) => {
    writer.append({ kind: RecordKind.VHOST_USER, direction, body, fdCount, timestampNs: tick() });
    count++;
  };

  for (const [d, b, f] of setup()) vhostRecord(d, b, f);
  // INIT first, as the guest does.
  const kernel = InitFlags.parse(["ASYNC_READ", "POSIX_LOCKS", "INIT_EXT", "SECURITY_CTX"]);
  const init = encodeRequest({
    header: { opcode: Opcode.INIT, unique: 2n, nodeid: 0n },
    arg: {
      major: 7,
      minor: 38,
      flags: Number(kernel & 0xffffffffn),
      flags2: Number(kernel >> 32n),
    },
  }, session);
  writer.append({
    kind: RecordKind.FUSE_REQUEST,
    queue: 1,
    head: 0,
    body: init,
    timestampNs: tick(),
  });
  writer.append({
    kind: RecordKind.FUSE_REPLY,
    queue: 1,
    head: 0,
    flags: 4,
    aux: 20_000n,
    body: encodeReply(
      { header: { unique: 2n }, arg: { major: 7, minor: 38, flags: 3, "max_write": 1048576 } },
      Opcode.INIT,
      session,
    ),
    timestampNs: tick(),
  });
  count += 2;

  const pool = templates(session, r);
  const weights = pool.reduce((n, [w]) => n + w, 0);
  const pick = (): Template => {
    let x = r() * weights;
    for (const [w, ts] of pool) {
      if ((x -= w) < 0) return ts[Math.floor(r() * ts.length)]!;
    }
    return pool[0]![1][0]!;
  };
  interface Flight {
    readonly t: Template;
    readonly unique: bigint;
    readonly head: number;
    readonly at: bigint;
  }
  const flight: Flight[] = [];
  const heads = Array.from({ length: 1024 }, (_, i) => 1023 - i);
  let unique = 4n;
  let nextVhost = 20_000;
  const setUnique = (b: Uint8Array, u: bigint) =>
    new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(8, u, true);

  while (count < total || flight.length > 0) {
    const issue = count < total && (flight.length === 0 || (flight.length < 16 && r() < 0.55));
    if (issue) {
      const t = pick();
      const head = heads.pop()!;
      setUnique(t.request, unique);
      const at = tick();
      writer.append({
        kind: RecordKind.FUSE_REQUEST,
        queue: t.queue,
        head,
        residenceNs: 1_500 + Math.floor(r() * 3_000),
        aux: packRequestAux(t.descriptors, t.writable),
        body: t.request,
        keep: t.keep,
        timestampNs: at,
      });
      count++;
      flight.push({ t, unique, head, at });
      unique += 2n;
    } else {
      // Mostly the oldest first, sometimes another (a slow READ overtaken).
      const i = r() < 0.7 ? 0 : Math.floor(r() * flight.length);
      const f = flight.splice(i, 1)[0]!;
      if (f.t.reply.byteLength > 0) setUnique(f.t.reply, f.unique);
      const at = tick();
      writer.append({
        kind: RecordKind.FUSE_REPLY,
        queue: f.t.queue,
        head: f.head,
        flags: 4,
        aux: at - f.at,
        residenceNs: 2_000 + Math.floor(r() * 4_000),
        body: f.t.reply,
        timestampNs: at,
      });
      heads.push(f.head);
      count++;
    }
    if (count >= nextVhost) {
      // A vring re-enabled now and then: control traffic in the middle of FUSE traffic.
      nextVhost += 50_000;
      vhostRecord(
        0,
        vhost("frontend", "SET_VRING_ENABLE", { kind: "vring_state", index: 1, num: 1 }),
        0,
      );
    }
  }
  for (const index of [0, 1]) {
    vhostRecord(0, vhost("frontend", "GET_VRING_BASE", { kind: "vring_state", index, num: 0 }), 0);
    vhostRecord(1, vhostReply("GET_VRING_BASE", { kind: "vring_state", index, num: 4321 }), 0);
  }
  writer.append({
    kind: RecordKind.NOTE,
    flags: 8,
    body: new TextEncoder().encode(JSON.stringify({ type: "stop", closed_by: "frontend" })),
    timestampNs: tick(),
  });
  count++;
  await writer.close();
  return count;
}

/** One finished run of a command: wall seconds, peak RSS in bytes, CPU seconds (user + sys). */
interface RunResult {
  readonly seconds: number;
  readonly rssBytes: number;
  /** NaN without /usr/bin/time. */
  readonly cpuSeconds: number;
}

const TIME = "/usr/bin/time";
const haveTime = (() => {
  try {
    return Deno.statSync(TIME).isFile;
  } catch {
    return false;
  }
})();

/** VmHWM of a live process, in bytes (0 when it is gone). */
function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Runs `cmd args` with stdout to /dev/null; wall time around the process, its peak RSS. */
async function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<RunResult> {
  const rssFile = haveTime ? await Deno.makeTempFile({ prefix: "show-bench-rss-" }) : "";
  try {
    const t0 = performance.now();
    const child = new Deno.Command(haveTime ? TIME : cmd, {
      args: haveTime ? ["-f", "%M %U %S", "-o", rssFile, cmd, ...args] : args,
      env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Without /usr/bin/time: poll the high-water mark; the last reading before exit is the peak.
    let polled = 0;
    const poll = haveTime ? undefined : setInterval(() => {
      polled = Math.max(polled, vmHwm(child.pid));
    }, 20);
    const out = await child.output();
    const seconds = (performance.now() - t0) / 1000;
    if (poll !== undefined) clearInterval(poll);
    if (!out.success) {
      throw new Error(
        `${cmd} ${args.join(" ")}: status ${out.code}\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
    const timed = haveTime
      ? ((await Deno.readTextFile(rssFile)).trim().split("\n").pop() ?? "").split(" ").map(Number)
      : [];
    const rssBytes = haveTime ? (timed[0] ?? 0) * 1024 : polled;
    const cpuSeconds = haveTime ? (timed[1] ?? NaN) + (timed[2] ?? NaN) : NaN;
    return { seconds, rssBytes, cpuSeconds };
  } finally {
    if (haveTime) await Deno.remove(rssFile);
  }
}

const MiB = (b: number) => (b / (1 << 20)).toFixed(0) + " MiB";

async function throughCli(): Promise<void> {
  const keep = text("keep");
  const dir = keep ?? await Deno.makeTempDir({ prefix: "vfstrace-show-bench-" });
  await Deno.mkdir(dir, { recursive: true });
  try {
    console.log(
      `\n2. through the CLI: ./vfstrace show FILE [--json] > /dev/null; median of ${REPEATS} runs ` +
        `(wall time, process start included); peak RSS by ${
          haveTime ? "/usr/bin/time %M" : "polling VmHWM"
        }`,
    );
    const startup = [] as number[];
    const empty = `${dir}/empty.pcapng`;
    await new CaptureWriter(
      await Deno.open(empty, { write: true, create: true, truncate: true }),
      {},
    ).close();
    for (let i = 0; i < REPEATS; i++) startup.push((await run(VFSTRACE, ["show", empty])).seconds);
    console.log(`  start-up (a capture with no record): ${(median(startup) * 1000).toFixed(0)} ms`);
    const measured: { path: string; records: number; show: number; json: number }[] = [];
    for (const size of SIZES) {
      const path = `${dir}/session-${size}.pcapng`;
      let records: number;
      const known = keep === undefined
        ? undefined
        : await Deno.readTextFile(`${path}.count`).catch(() => undefined);
      if (known !== undefined) {
        records = Number(known);
      } else {
        const t0 = performance.now();
        records = await generate(path, size);
        await Deno.writeTextFile(`${path}.count`, String(records));
        console.log(
          `  generated ${fmt(records)} records in ${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s`,
        );
      }
      const bytes = (await Deno.stat(path)).size;
      console.log(`  ${path.replace(dir + "/", "")}: ${fmt(records)} records, ${MiB(bytes)}`);
      const modes: [string, string[]][] = [["show", []], ["show --json", ["--json"]]];
      const rates: number[] = [];
      for (const [name, extra] of modes) {
        const runs: RunResult[] = [];
        const others: RunResult[] = [];
        for (let i = 0; i < REPEATS; i++) {
          runs.push(await run(VFSTRACE, ["show", path, ...extra], { NO_COLOR: "1" }));
          // Alternated with this checkout's runs: a busy spell hits both alike.
          if (AGAINST !== undefined) {
            others.push(await run(AGAINST, ["show", path, ...extra], { NO_COLOR: "1" }));
          }
        }
        const s = median(runs.map((x) => x.seconds));
        const rss = Math.max(...runs.map((x) => x.rssBytes));
        // On a shared machine CPU time varies less than wall time: both are shown.
        const cpu = median(runs.map((x) => x.cpuSeconds));
        rates.push(records / s);
        const line = (label: string, s: number, rss: number, cpu: number) =>
          `    ${(label + ":").padEnd(13)} ${s.toFixed(2).padStart(6)} s ${
            fmt(records / s).padStart(11)
          } records/s ` +
          `${(records / s / TARGET).toFixed(2)}× target   peak RSS ${MiB(rss)}` +
          (Number.isFinite(cpu)
            ? `   CPU ${cpu.toFixed(2)} s (${fmt(records / cpu)} records per CPU-second)`
            : "");
        console.log(line(name, s, rss, cpu));
        if (AGAINST !== undefined) {
          const os = median(others.map((x) => x.seconds));
          const ocpu = median(others.map((x) => x.cpuSeconds));
          console.log(line("  --against", os, Math.max(...others.map((x) => x.rssBytes)), ocpu));
          console.log(
            `      this checkout ÷ --against: wall ${(s / os).toFixed(3)}` +
              (Number.isFinite(cpu) ? `, CPU ${(cpu / ocpu).toFixed(3)}` : "") +
              " (below 1: this one is faster)",
          );
        }
      }
      measured.push({ path, records, show: rates[0]!, json: rates[1]! });
    }
    // tshark with the dissector reads a few thousand records a second: the smallest file
    // (or --tshark-size) is enough for a per-record ratio.
    const want = arg("tshark-size", 0);
    const against = measured.find((m) => m.records >= want) ?? measured[measured.length - 1];
    if (against === undefined || flag("skip-tshark")) return;
    const lua = await Deno.stat(DISSECTOR).then(() => true, () => false);
    const targs = ["-n", ...(lua ? ["-X", `lua_script:${DISSECTOR}`] : []), "-r", against.path];
    const truns: RunResult[] = [];
    try {
      for (let i = 0; i < TSHARK_REPEATS; i++) truns.push(await run("tshark", targs));
    } catch (e) {
      console.log(`  tshark: not measured (${(e as Error).message.split("\n")[0]})`);
      return;
    }
    const ts = median(truns.map((x) => x.seconds));
    const trate = against.records / ts;
    console.log(
      `  tshark ${
        lua
          ? "with contrib/wireshark/vfstrace.lua"
          : "WITHOUT the dissector (contrib/wireshark/vfstrace.lua not there yet)"
      }` +
        ` -n -r ${against.path.replace(dir + "/", "")} > /dev/null: ${ts.toFixed(2)} s, ` +
        `${fmt(trate)} records/s, peak RSS ${MiB(Math.max(...truns.map((x) => x.rssBytes)))}`,
    );
    console.log(
      `    on that file show is ${(against.show / trate).toFixed(0)}×, show --json ${
        (against.json / trate).toFixed(0)
      }× ` +
        `as fast as tshark (target ≥${TSHARK_TARGET}×)`,
    );
  } finally {
    if (keep === undefined) await Deno.remove(dir, { recursive: true });
  }
}

if (!flag("skip-memory")) await inMemory();
if (!flag("skip-cli")) await throughCli();
