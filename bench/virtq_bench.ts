/**
 * Descriptor-chain walking throughput over real mmap'd memory, measured side
 * by side in one run: FUSE-shaped chains of 2 and 3 descriptors, a 1 MiB
 * write (header + 256 pages + reply), directly and through an indirect
 * table, with and without recording the descriptors; and a whole device
 * round (pop, walk, push, publish, needNotify) with the test driver refilling.
 *
 * Run: deno run --allow-ffi --allow-read --allow-env bench/virtq_bench.ts [--batches N]
 */
import { MemoryMapping } from "../sys/mod.ts";
import {
  ChainWalker,
  contiguousRingLayout,
  GuestMemory,
  SplitQueue,
  SplitQueueDriver,
} from "../virtq/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const BATCHES = arg("batches", 9);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median over batches of the mean time per operation of `fn(n)`, in nanoseconds. */
function perOp(n: number, fn: (n: number) => void): number {
  fn(Math.min(n, 2000)); // warm-up (JIT)
  fn(Math.min(n, 2000));
  const samples: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    fn(n);
    samples.push(((performance.now() - t0) * 1e6) / n);
  }
  return median(samples);
}

const RAM = 64 << 20;
const GPA = 0x4000_0000;
using ram = MemoryMapping.anonymous(RAM);
const memory = new GuestMemory([{
  guestPhysAddr: GPA,
  userAddr: ram.address,
  size: RAM,
  bytes: ram.bytes,
}]);

function setup(size: number, record = true) {
  const l = contiguousRingLayout(size);
  const driver = new SplitQueueDriver(memory, {
    size,
    desc: GPA + l.desc,
    avail: GPA + l.avail,
    used: GPA + l.used,
    eventIdx: true,
  });
  const queue = new SplitQueue(memory, {
    size,
    desc: ram.address + BigInt(l.desc),
    avail: ram.address + BigInt(l.avail),
    used: ram.address + BigInt(l.used),
    space: "user",
    eventIdx: true,
  });
  return { driver, queue, walker: new ChainWalker(queue, { record }), data: GPA + 0x10_0000 };
}

type Shape = { r: number[]; w: number[]; indirect?: boolean };
const SHAPES: [string, Shape][] = [
  ["2 desc (GETATTR: 56 in, 120 out)", { r: [56], w: [120] }],
  ["3 desc (READ 4 KiB: 80 in, 16 + 4096 out)", { r: [80], w: [16, 4096] }],
  ["1 MiB WRITE, 258 desc direct", { r: [80, ...Array(256).fill(4096)], w: [24] }],
  ["1 MiB WRITE, 258 desc indirect", {
    r: [80, ...Array(256).fill(4096)],
    w: [24],
    indirect: true,
  }],
];

function walkBench(shape: Shape, record: boolean): number {
  const { driver, walker, data } = setup(1024, record);
  let off = 0;
  const buf = (len: number) => {
    const b = { addr: data + off, len };
    off += len;
    return b;
  };
  const head = driver.addChain(
    shape.r.map(buf),
    shape.w.map(buf),
    shape.indirect ? { indirectTable: data + (32 << 20) } : {},
  );
  const per = shape.r.length + shape.w.length > 100 ? 20_000 : 500_000;
  let sink = 0;
  const ns = perOp(per, (n) => {
    for (let i = 0; i < n; i++) sink += walker.walk(head).readableLength;
  });
  if (sink === 0) throw new Error("walker returned nothing");
  return ns;
}

function roundBench(): number {
  // Device loop as the backend runs it; the driver refills and collects in between.
  const size = 256;
  const { driver, queue, walker, data } = setup(size, false);
  const batch = 64;
  return perOp(200_000, (n) => {
    for (let done = 0; done < n; done += batch) {
      for (let k = 0; k < batch; k++) {
        driver.addChain([{ addr: data, len: 56 }], [{ addr: data + 4096, len: 120 }]);
      }
      driver.publish();
      for (let c = walker.pop(); c !== null; c = walker.pop()) queue.push(c.head, 120);
      queue.publish();
      queue.needNotify();
      queue.enableNotify();
      driver.collectUsed();
    }
  });
}

const fmt = (ns: number) => `${ns.toFixed(0).padStart(7)} ns`;
const rate = (ns: number) => `${(1e9 / ns / 1e6).toFixed(2).padStart(6)} M/s`;
console.log(
  `vfstrace virtqueue chain walking (median of ${BATCHES} batches; Deno ${Deno.version.deno}, V8 ${Deno.version.v8})`,
);
console.log(`  ${"chain".padEnd(44)} ${"record".padStart(14)} ${"no record".padStart(22)}`);
for (const [name, shape] of SHAPES) {
  const a = walkBench(shape, true);
  const b = walkBench(shape, false);
  const n = shape.r.length + shape.w.length;
  console.log(
    `  ${name.padEnd(44)} ${fmt(a)} ${rate(a)}  ${fmt(b)} ${rate(b)}  (${
      (b / n).toFixed(1)
    } ns/desc)`,
  );
}
const round = roundBench();
console.log(
  `  ${"device round, 2 desc (pop+walk+push+publish)".padEnd(44)} ${fmt(round)} ${
    rate(round)
  }  incl. test-driver refill`,
);
