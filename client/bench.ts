/**
 * Workloads that drive a virtio-fs back-end through {@link FuseClient} and
 * measure it: `meta` (CREATE, GETATTR, RELEASE, UNLINK), `seq` (large
 * WRITEs and READs walking a file), `rand` (4 KiB READs and WRITEs at random
 * offsets), `readdir` (OPENDIR, READDIRPLUS to the end, RELEASEDIR). Several
 * back-ends are measured side by side: rounds interleave (A, B, A, B…) so
 * drift on a shared machine hits all of them alike, and the medians of the
 * rounds are compared.
 *
 * @module
 */
import type { EventLoopOptions } from "../sys/mod.ts";
import { type FuseClient, FuseErrnoError } from "./fuse_client.ts";

/**
 * How a benchmarking client waits for completions: `spin` (the event loop's
 * default busy-poll window after activity) or `park` (no spinning: it sleeps
 * in epoll, leaving the CPUs to the back-ends it measures).
 */
export type ClientPoll = "spin" | "park";

/** The `eventLoop` option of FuseClient.connect for `poll` (undefined: the front-end's default loop). */
export function clientLoopOptions(poll: ClientPoll): EventLoopOptions | undefined {
  return poll === "park" ? { busyPoll: { minMicros: 0, maxMicros: 0 } } : undefined;
}

/** The workloads. */
export const WORKLOADS = ["meta", "seq", "rand", "readdir"] as const;
/** One workload name. */
export type Workload = typeof WORKLOADS[number];

/** Parameters of one workload. */
export interface WorkloadOptions {
  /** Which workload. */
  readonly workload: Workload;
  /** Requests in flight (workers each with one request outstanding). */
  readonly depth: number;
  /** `seq`: bytes per request (default 1 MiB, capped at the back-end's max_write). */
  readonly blockSize?: number;
  /** `seq`/`rand`: file size (default 32 MiB for seq, 16 MiB for rand). */
  readonly fileSize?: number;
  /** `readdir`: entries in the directory (default 256). */
  readonly entries?: number;
}

/** Latency percentiles in microseconds. */
export interface LatencySummary {
  /** Samples. */
  readonly count: number;
  /** Median. */
  readonly p50: number;
  /** 90th percentile. */
  readonly p90: number;
  /** 99th percentile. */
  readonly p99: number;
  /** Slowest. */
  readonly max: number;
  /** Mean. */
  readonly mean: number;
}

/** One timed run of a workload on one back-end. */
export interface RoundResult {
  /** FUSE requests answered. */
  readonly ops: number;
  /** Payload bytes read and written. */
  readonly bytes: number;
  /** Wall time, seconds. */
  readonly seconds: number;
  /** ops / seconds. */
  readonly opsPerSec: number;
  /** MB (10^6 bytes) per second. */
  readonly mbPerSec: number;
  /** Per-request latencies, µs (kept for the summary). */
  readonly latenciesUs: Float64Array;
}

/** A workload set up on one back-end: files and directories made, ready to run. */
export class PreparedWorkload {
  /** The client it runs on. */
  readonly client: FuseClient;
  /** Its options. */
  readonly options: WorkloadOptions;
  #dir: bigint;
  #dirName: string;
  #file = 0n;
  #fh = 0n;
  #fileSize = 0;
  #block = 0;
  #cursor = 0;
  #seq = 0;
  #rng = 0x9e3779b9;
  #payload: Uint8Array;

  private constructor(
    client: FuseClient,
    options: WorkloadOptions,
    dir: bigint,
    dirName: string,
  ) {
    this.client = client;
    this.options = options;
    this.#dir = dir;
    this.#dirName = dirName;
    this.#payload = new Uint8Array(0);
  }

  /**
   * Creates a private directory under the root (`vfstrace-bench-*`) and what
   * the workload needs in it (the file for seq/rand, the entries for readdir).
   */
  static async prepare(client: FuseClient, options: WorkloadOptions): Promise<PreparedWorkload> {
    const name = `vfstrace-bench-${Deno.pid}-${Math.random().toString(36).slice(2, 10)}`;
    const dir = await client.mkdir(1n, name);
    const w = new PreparedWorkload(client, options, dir.nodeid, name);
    const wl = options.workload;
    if (wl === "seq" || wl === "rand") {
      w.#block = wl === "rand" ? 4096 : Math.min(options.blockSize ?? 1 << 20, client.maxWrite);
      w.#fileSize = options.fileSize ?? (wl === "seq" ? 32 << 20 : 16 << 20);
      w.#fileSize -= w.#fileSize % w.#block;
      if (w.#fileSize < w.#block) w.#fileSize = w.#block;
      w.#payload = new Uint8Array(w.#block);
      for (let i = 0; i < w.#payload.length; i++) w.#payload[i] = (i * 131 + 7) & 0xff;
      const f = await client.create(dir.nodeid, "data");
      w.#file = f.nodeid;
      w.#fh = f.fh;
      // Fill it once so reads return data rather than holes.
      const chunk = new Uint8Array(Math.min(client.maxWrite, 1 << 20));
      for (let off = 0; off < w.#fileSize; off += chunk.length) {
        const n = Math.min(chunk.length, w.#fileSize - off);
        await client.write(w.#file, w.#fh, off, n === chunk.length ? chunk : chunk.subarray(0, n));
      }
    } else if (wl === "readdir") {
      const n = options.entries ?? 256;
      for (let i = 0; i < n; i++) {
        const f = await client.create(dir.nodeid, `entry-${String(i).padStart(5, "0")}`);
        await client.release(f.nodeid, f.fh);
      }
    }
    return w;
  }

  #random(): number {
    // xorshift32: cheap and the same sequence for every back-end.
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng;
  }

  /** One unit of work; pushes each request's latency and returns [requests, payload bytes]. */
  async #step(lat: number[]): Promise<[number, number]> {
    const c = this.client;
    switch (this.options.workload) {
      case "meta": {
        const name = `m${this.#seq++}`;
        const t0 = performance.now();
        const f = await c.create(this.#dir, name);
        const t1 = performance.now();
        await c.getattr(f.nodeid);
        const t2 = performance.now();
        await c.release(f.nodeid, f.fh);
        const t3 = performance.now();
        await c.unlink(this.#dir, name);
        const t4 = performance.now();
        lat.push(t1 - t0, t2 - t1, t3 - t2, t4 - t3);
        await c.forget(f.nodeid, 1n);
        return [4, 0];
      }
      case "seq": {
        const k = this.#seq++;
        const blocks = this.#fileSize / this.#block;
        const off = (this.#cursor++ % blocks) * this.#block;
        const t0 = performance.now();
        if (k % 2 === 0) await c.write(this.#file, this.#fh, off, this.#payload);
        else await c.read(this.#file, this.#fh, off, this.#block);
        lat.push(performance.now() - t0);
        return [1, this.#block];
      }
      case "rand": {
        const blocks = this.#fileSize / this.#block;
        const r = this.#random();
        const off = (r % blocks) * this.#block;
        const t0 = performance.now();
        if (r & 0x80000000) await c.write(this.#file, this.#fh, off, this.#payload);
        else await c.read(this.#file, this.#fh, off, this.#block);
        lat.push(performance.now() - t0);
        return [1, this.#block];
      }
      case "readdir": {
        let t = performance.now();
        const fh = await c.opendir(this.#dir);
        let now = performance.now();
        lat.push(now - t);
        let ops = 1;
        let bytes = 0;
        let off = 0n;
        for (;;) {
          t = now;
          const r = await c.readdirplus(this.#dir, fh, off, 32768);
          now = performance.now();
          lat.push(now - t);
          ops++;
          bytes += r.header.len;
          const last = r.entries.at(-1);
          if (last === undefined) break;
          off = last.off;
        }
        t = now;
        await c.releasedir(this.#dir, fh);
        lat.push(performance.now() - t);
        return [ops + 1, bytes];
      }
    }
  }

  /** Runs the workload at its depth for `durationMs`; returns what was done. */
  async run(durationMs: number): Promise<RoundResult> {
    const lat: number[] = [];
    let ops = 0;
    let bytes = 0;
    const t0 = performance.now();
    const end = t0 + durationMs;
    const worker = async () => {
      while (performance.now() < end) {
        const [o, b] = await this.#step(lat);
        ops += o;
        bytes += b;
      }
    };
    await Promise.all(Array.from({ length: this.options.depth }, worker));
    const seconds = (performance.now() - t0) / 1000;
    return {
      ops,
      bytes,
      seconds,
      opsPerSec: ops / seconds,
      mbPerSec: bytes / seconds / 1e6,
      latenciesUs: Float64Array.from(lat, (ms) => ms * 1000),
    };
  }

  /** Removes what {@link prepare} made. */
  async cleanup(): Promise<void> {
    const c = this.client;
    const wl = this.options.workload;
    if (wl === "seq" || wl === "rand") {
      await c.release(this.#file, this.#fh);
      await c.unlink(this.#dir, "data");
    } else if (wl === "readdir") {
      for (let i = 0; i < (this.options.entries ?? 256); i++) {
        await c.unlink(this.#dir, `entry-${String(i).padStart(5, "0")}`);
      }
    }
    try {
      await c.rmdir(1n, this.#dirName);
    } catch (err) {
      // meta workers stopped mid-cycle may leave a file: remove and retry once.
      if (!(err instanceof FuseErrnoError) || err.errnoName !== "ENOTEMPTY") throw err;
      const fh = await c.opendir(this.#dir);
      const list = await c.readdirplus(this.#dir, fh, 0n, 1 << 16);
      await c.releasedir(this.#dir, fh);
      for (const e of list.entries) {
        if (e.name !== "." && e.name !== "..") await c.unlink(this.#dir, e.name);
      }
      await c.rmdir(1n, this.#dirName);
    }
  }
}

/** Summarises latencies (µs). */
export function summarizeLatency(samples: readonly Float64Array[]): LatencySummary {
  const n = samples.reduce((a, s) => a + s.length, 0);
  const all = new Float64Array(n);
  let o = 0;
  for (const s of samples) (all.set(s, o), o += s.length);
  all.sort();
  const at = (q: number) => n === 0 ? 0 : all[Math.min(n - 1, Math.floor(q * n))]!;
  let sum = 0;
  for (const v of all) sum += v;
  return {
    count: n,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: n === 0 ? 0 : all[n - 1]!,
    mean: n === 0 ? 0 : sum / n,
  };
}

/** The median of `xs` (0 when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** One back-end's outcome in a {@link compareBackends} run. */
export interface BackendResult {
  /** Its label. */
  readonly label: string;
  /** Every round in order. */
  readonly rounds: readonly Omit<RoundResult, "latenciesUs">[];
  /** Median ops/s over the rounds. */
  readonly opsPerSec: number;
  /** Median MB/s over the rounds. */
  readonly mbPerSec: number;
  /** Latencies over every round. */
  readonly latencyUs: LatencySummary;
  /** opsPerSec ÷ the first back-end's. */
  readonly ratio: number;
}

/** A workload measured on several back-ends. */
export interface ComparisonResult {
  /** Workload. */
  readonly workload: Workload;
  /** Requests in flight. */
  readonly depth: number;
  /** Rounds per back-end. */
  readonly rounds: number;
  /** Each round's length, ms. */
  readonly durationMs: number;
  /** Per back-end, in the order given. */
  readonly backends: readonly BackendResult[];
}

/** Options of {@link compareBackends}. */
export interface CompareOptions extends WorkloadOptions {
  /** Rounds per back-end (default 3). */
  readonly rounds?: number;
  /** Length of each round in ms. */
  readonly durationMs: number;
  /** Untimed run per back-end before the rounds (default min(500, duration/2) ms). */
  readonly warmupMs?: number;
  /** Told after each round (progress). */
  readonly onRound?: (label: string, round: number, r: RoundResult) => void;
}

/**
 * Measures one workload on every client, rounds interleaved (A, B, A, B…);
 * ratios are of median ops/s against the first client.
 */
export async function compareBackends(
  clients: readonly { readonly label: string; readonly client: FuseClient }[],
  options: CompareOptions,
): Promise<ComparisonResult> {
  const rounds = options.rounds ?? 3;
  const prepared: PreparedWorkload[] = [];
  try {
    for (const c of clients) prepared.push(await PreparedWorkload.prepare(c.client, options));
    const warm = options.warmupMs ?? Math.min(500, options.durationMs / 2);
    if (warm > 0) { for (const p of prepared) await p.run(warm); }
    const results: RoundResult[][] = clients.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < prepared.length; i++) {
        const res = await prepared[i]!.run(options.durationMs);
        results[i]!.push(res);
        options.onRound?.(clients[i]!.label, r, res);
      }
    }
    const base = median(results[0]!.map((r) => r.opsPerSec));
    return {
      workload: options.workload,
      depth: options.depth,
      rounds,
      durationMs: options.durationMs,
      backends: clients.map((c, i) => {
        const rs = results[i]!;
        const ops = median(rs.map((r) => r.opsPerSec));
        return {
          label: c.label,
          rounds: rs.map(({ latenciesUs: _, ...rest }) => rest),
          opsPerSec: ops,
          mbPerSec: median(rs.map((r) => r.mbPerSec)),
          latencyUs: summarizeLatency(rs.map((r) => r.latenciesUs)),
          ratio: base > 0 ? ops / base : 0,
        };
      }),
    };
  } finally {
    for (const p of prepared) await p.cleanup();
  }
}

/** The comparison as an aligned text table (one line per back-end). */
export function formatComparison(c: ComparisonResult): string {
  const lines = [
    `${c.workload}, depth ${c.depth}: ${c.rounds} interleaved rounds of ${
      (c.durationMs / 1000).toFixed(1)
    } s, medians`,
  ];
  const w = Math.max(8, ...c.backends.map((b) => b.label.length));
  lines.push(
    `  ${"back-end".padEnd(w)} ${"ops/s".padStart(9)} ${"MB/s".padStart(8)} ${
      "p50 µs".padStart(8)
    } ${"p90 µs".padStart(8)} ${"p99 µs".padStart(8)} ${"max µs".padStart(9)} ${
      "ratio".padStart(6)
    }`,
  );
  for (const b of c.backends) {
    const l = b.latencyUs;
    lines.push(
      `  ${b.label.padEnd(w)} ${b.opsPerSec.toFixed(0).padStart(9)} ${
        b.mbPerSec.toFixed(1).padStart(8)
      } ${l.p50.toFixed(0).padStart(8)} ${l.p90.toFixed(0).padStart(8)} ${
        l.p99.toFixed(0).padStart(8)
      } ${l.max.toFixed(0).padStart(9)} ${b.ratio.toFixed(3).padStart(6)}`,
    );
  }
  return lines.join("\n");
}
