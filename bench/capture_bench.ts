/**
 * Capture file throughput, measured side by side in one run: records/s
 * appended by CaptureWriter to a file (page cache, no fsync), and records/s
 * streamed back by CaptureReader from that file and from memory (decode
 * cost without I/O), for 200-byte, 128 KiB and 1 MiB bodies (1 MiB: a chain
 * of 5 packets, reassembled by the reader; once as one array, once as the
 * 4 KiB pages of a FUSE WRITE's descriptor chain); and 200-byte replies
 * written as the proxy writes them, in held batches of 64 whose residence is
 * amended before release. Prints the median of the batches.
 *
 * Run: deno run --allow-read --allow-write --allow-env bench/capture_bench.ts [--batches N]
 */
import {
  CaptureReader,
  CaptureWriter,
  EPB_LAYOUT,
  MAX_RECORD_BODY,
  type ReadSource,
  RECORD_HEADER_SIZE,
  RecordKind,
} from "../capture/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const BATCHES = arg("batches", 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

class MemorySource implements ReadSource {
  #bytes: Uint8Array;
  #pos = 0;
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  read(p: Uint8Array): Promise<number | null> {
    const n = Math.min(p.byteLength, this.#bytes.byteLength - this.#pos);
    if (n === 0) return Promise.resolve(null);
    p.set(this.#bytes.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return Promise.resolve(n);
  }
}

/** Replies per held batch in the `held` case (a busy queue's used ring). */
const HELD_BATCH = 64;

async function writeBatch(
  path: string,
  count: number,
  body: Uint8Array | Uint8Array[],
  held: boolean,
): Promise<number> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const t0 = performance.now();
    const writer = new CaptureWriter(file, { flushIntervalMs: 0 });
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      if (held && i % HELD_BATCH === 0) writer.hold();
      const seq = writer.append({
        kind: RecordKind.FUSE_REPLY,
        queue: 1,
        head: i & 1023,
        aux: 1234,
        body,
      });
      if (!held) continue;
      seqs.push(seq);
      if (seqs.length === HELD_BATCH || i === count - 1) {
        for (const s of seqs) writer.amendResidence(s, 2500n);
        seqs.length = 0;
        writer.release();
      }
    }
    await writer.close();
    return performance.now() - t0;
  } finally {
    file.close();
  }
}

async function readBatch(reader: CaptureReader, count: number): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  let sum = 0;
  for await (const r of reader) {
    n++;
    sum += r.body.byteLength;
  }
  const ms = performance.now() - t0;
  if (n !== count || sum === 0) throw new Error(`read ${n} records, expected ${count}`);
  if (sum % count !== 0) throw new Error(`bodies of ${sum / count} bytes on average`);
  return ms;
}

const path = await Deno.makeTempFile({ prefix: "vfstrace-bench-", suffix: ".pcapng" });
const rows: string[][] = [[
  "body",
  "records/batch",
  "write rec/s",
  "read file rec/s",
  "read mem rec/s",
  "write MB/s",
  "read MB/s",
]];
try {
  const cases: [label: string, size: number, count: number, pages: boolean, held: boolean][] = [
    ["200 B", 200, 300_000, false, false],
    [`200 B, held ×${HELD_BATCH} + amend`, 200, 300_000, false, true],
    ["128 KiB", 128 << 10, 2_000, false, false],
    ["1 MiB", 1 << 20, 300, false, false],
    ["1 MiB, 4 KiB pages", 1 << 20, 300, true, false],
  ];
  for (const [label, size, count, pages, held] of cases) {
    const whole = new Uint8Array(size).map((_, i) => i & 0xff);
    const body = pages
      ? Array.from({ length: size >> 12 }, (_, i) => whole.subarray(i << 12, (i + 1) << 12))
      : whole;
    const w: number[] = [];
    const rf: number[] = [];
    const rm: number[] = [];
    await writeBatch(path, Math.min(count, 20_000), body, held); // warm-up (JIT)
    for (let b = 0; b < BATCHES; b++) {
      w.push(await writeBatch(path, count, body, held));
      rf.push(await readBatch(await CaptureReader.open(path), count));
      const bytes = await Deno.readFile(path);
      rm.push(await readBatch(new CaptureReader(new MemorySource(bytes)), count));
    }
    const perSec = (ms: number) => (count / ms) * 1000;
    // Bytes on disk per record: EPB (fixed part, trailing length) + record header per packet.
    const packets = Math.max(1, Math.ceil(size / MAX_RECORD_BODY));
    const perPacket = EPB_LAYOUT.size() + 4 + RECORD_HEADER_SIZE;
    const mbps = (ms: number) => ((count * (size + perPacket * packets)) / ms / 1000).toFixed(0);
    rows.push([
      label,
      String(count),
      perSec(median(w)).toFixed(0),
      perSec(median(rf)).toFixed(0),
      perSec(median(rm)).toFixed(0),
      mbps(median(w)),
      mbps(median(rf)),
    ]);
  }
} finally {
  await Deno.remove(path);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`capture throughput, median of ${BATCHES} batches`);
for (const r of rows) console.log(r.map((x, c) => x.padStart(widths[c]!)).join("  "));
