import assert from "node:assert/strict";
import {
  AvailIndexError,
  ChainError,
  type ChainErrorKind,
  ChainWalker,
  DescFlags,
  type DescriptorChain,
  GuestMemory,
  type MemoryRegion,
  SplitQueue,
  SplitQueueDriver,
} from "./mod.ts";
import { prng } from "./_testing.ts";

const SEED = 0x5eed_1234;
const ITERATIONS = 120_000;

// Small regions, so random addresses land on their edges often. A and B are
// adjacent in guest-physical space (straddling), C is above 4 GiB.
const A = { gpa: 0x10_0000, user: 0x7f00_0000_0000, size: 256 << 10 };
const B = { gpa: A.gpa + A.size, user: 0x7f00_1000_0000, size: 64 << 10 };
const C = { gpa: 0x1_0000_0000, user: 0x7f00_2000_0000, size: 128 << 10 };
const TABLES = C.gpa + 0x1_0000; // indirect tables live here (64 KiB)
const SIZES = [1, 2, 4, 8, 16, 32, 64];

/** A guest that rewrites descriptor memory between the walker's reads. */
class HostileMemory extends GuestMemory {
  chaos: (() => void) | null = null;
  override resolveGuest(addr: bigint | number, length: number): number {
    this.chaos?.();
    return super.resolveGuest(addr, length);
  }
}

Deno.test(`randomized: ${ITERATIONS} random and mutated rings throw only typed errors, views stay in regions`, () => {
  const t0 = performance.now();
  const rnd = prng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const memory = new HostileMemory(
    [A, B, C].map((r) => ({
      guestPhysAddr: r.gpa,
      userAddr: r.user,
      size: r.size,
      bytes: new Uint8Array(r.size),
    })),
  );
  const regions = memory.regions;

  // One queue per size, rings packed at the start of A, data after them.
  let off = 0;
  const queues = SIZES.map((size) => {
    const desc = A.gpa + off;
    off += 16 * size;
    const avail = A.gpa + off;
    off += 6 + 2 * size + 2;
    off = (off + 3) & ~3;
    const used = A.gpa + off;
    off += 6 + 8 * size + 2;
    off = (off + 15) & ~15;
    const rings = { size, desc, avail, used, eventIdx: true };
    new SplitQueueDriver(memory, rings); // zeroes the rings
    const queue = new SplitQueue(memory, {
      size,
      desc: desc - A.gpa + A.user,
      avail: avail - A.gpa + A.user,
      used: used - A.gpa + A.user,
      space: "user",
      eventIdx: true,
    });
    const walkers = [
      new ChainWalker(queue),
      new ChainWalker(queue, {
        indirect: false,
        maxDescriptors: 1 + int(size),
        maxTotalLength: 1 << 16,
        record: false,
      }),
      new ChainWalker(queue, { maxIndirectEntries: 8, maxDescriptors: 4 * size }),
    ];
    const descBytes = memory.translateGuest(desc, 16 * size);
    return { size, rings, queue, walkers, descBytes };
  });
  const dataStart = A.gpa + off;
  const tableBytes = memory.translateGuest(TABLES, 0x1_0000);

  const interestingAddr = (): bigint | number => {
    switch (int(12)) {
      case 0:
        return BigInt.asUintN(64, BigInt(int(2 ** 32)) << 32n | BigInt(int(2 ** 32)));
      case 1:
        return 0xffff_ffff_ffff_ffffn - BigInt(int(64));
      case 2:
        return B.gpa - int(64); // just before the A|B seam
      case 3:
        return B.gpa + B.size - int(64); // end of B, then unmapped
      case 4:
        return C.gpa + C.size - int(64);
      case 5:
        return TABLES + 16 * int(256);
      case 6:
        return int(0x10_0000); // below A: unmapped
      default: {
        const r = [A, B, C][int(3)]!;
        return r.gpa + int(r.size);
      }
    }
  };
  const interestingLen = (): number => {
    switch (int(10)) {
      case 0:
        return 0;
      case 1:
        return 0xffff_ffff - int(4);
      case 2:
        return 0x8000_0000;
      case 3:
        return 16 * int(40);
      case 4:
        return 16 * int(40) + 1 + int(15);
      default:
        return int(4096);
    }
  };
  const writeRandomDesc = (dv: DataView, o: number, size: number) => {
    const a = interestingAddr();
    dv.setBigUint64(o, BigInt(a), true);
    dv.setUint32(o + 8, interestingLen(), true);
    const r = rnd();
    const flags = r < 0.05
      ? int(0x10000)
      : r < 0.5
      ? int(8)
      : int(4) & ~DescFlags.INDIRECT | DescFlags.NEXT;
    dv.setUint16(o + 12, flags, true);
    dv.setUint16(o + 14, rnd() < 0.1 ? int(0x10000) : int(size + 2), true);
  };
  const dvOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const tableDv = dvOf(tableBytes);

  const inRegion = (v: Uint8Array): MemoryRegion | undefined =>
    regions.find((r) =>
      r.bytes.buffer === v.buffer && v.byteOffset >= r.bytes.byteOffset &&
      v.byteOffset + v.byteLength <= r.bytes.byteOffset + r.size
    );

  const seenKinds = new Map<ChainErrorKind, number>();
  let chains = 0;
  let availErrors = 0;
  let walks = 0;

  const check = (c: DescriptorChain, w: ChainWalker) => {
    chains++;
    let r = 0;
    for (const v of c.readable) {
      assert.ok(inRegion(v), "readable view outside every region");
      r += v.byteLength;
    }
    let wl = 0;
    for (const v of c.writable) {
      assert.ok(inRegion(v), "writable view outside every region");
      wl += v.byteLength;
    }
    assert.equal(r, c.readableLength);
    assert.equal(wl, c.writableLength);
    assert.ok(r + wl <= 0xffff_ffff);
    assert.ok(c.readable.length + c.writable.length <= 4 * w.queue.size);
    // Recorded addresses are the views' guest addresses.
    const data = c.descriptors.filter((d) => (d.flags & DescFlags.INDIRECT) === 0);
    if (data.length > 0) {
      const views = [...c.readable, ...c.writable];
      assert.equal(data.length, views.length);
      data.forEach((d, k) => {
        const v = views[k]!;
        const reg = inRegion(v)!;
        assert.equal(reg.guestPhysAddr + BigInt(v.byteOffset - reg.bytes.byteOffset), d.addr);
        assert.equal(v.byteLength, d.len);
      });
    }
  };
  const attempt = (fn: () => DescriptorChain | null, w: ChainWalker): boolean => {
    walks++;
    try {
      const c = fn();
      if (c === null) return false;
      check(c, w);
    } catch (e) {
      if (e instanceof ChainError) {
        seenKinds.set(e.kind, (seenKinds.get(e.kind) ?? 0) + 1);
      } else if (e instanceof AvailIndexError) {
        availErrors++;
        return false;
      } else {
        throw e;
      }
    }
    return true;
  };

  for (let it = 0; it < ITERATIONS; it++) {
    const q = queues[int(queues.length)]!;
    const { size, queue, descBytes } = q;
    // A fresh driver over the same rings: all descriptors free, indices as in memory.
    const driver = new SplitQueueDriver(memory, { ...q.rings, initialize: false });
    queue.setBase(driver.availIdx);
    const dv = dvOf(descBytes);
    const mode = int(4);
    if (mode === 0) {
      // Entirely random descriptor table (and some indirect table entries).
      for (let i = 0; i < size; i++) writeRandomDesc(dv, 16 * i, size);
      for (let i = 0; i < 8; i++) writeRandomDesc(tableDv, 16 * int(4096), 64);
      for (let k = 0; k < 1 + int(size); k++) driver.pushAvail(int(size + 1));
    } else {
      // Valid chains from the driver, then mutated (mode 1: left valid).
      for (let n = 1 + int(3); n > 0; n--) {
        const nr = int(4);
        const nw = (nr === 0 ? 1 : 0) + int(3);
        const indirect = rnd() < 0.3;
        if (driver.freeCount < (indirect ? 1 : nr + nw)) break;
        const buf = () => ({ addr: dataStart + int(4096), len: 1 + int(512) });
        driver.addChain(
          Array.from({ length: nr }, buf),
          Array.from({ length: nw }, buf),
          indirect ? { indirectTable: TABLES + 16 * int(4000) } : {},
        );
      }
      const mutations = mode === 1 ? 0 : 1 + int(4);
      for (let m = 0; m < mutations; m++) {
        const target = rnd() < 0.7 ? descBytes : tableBytes;
        const at = int(target.byteLength);
        if (rnd() < 0.5) target[at] = target[at]! ^ (1 << int(8));
        else target[at] = int(256);
      }
      if (rnd() < 0.1) driver.pushAvail(int(0x10000));
    }
    if (rnd() < 0.03) driver.setAvailIdx(int(0x10000));
    else driver.publish();
    // A hostile guest rewrites descriptors between reads a third of the time.
    memory.chaos = rnd() < 0.33
      ? () => {
        const t = rnd() < 0.5 ? descBytes : tableBytes;
        t[int(t.byteLength)] = int(256);
      }
      : null;
    const w = q.walkers[int(q.walkers.length)]!;
    for (let k = 0; k <= size && attempt(() => w.pop(), w); k++);
    attempt(() => w.walk(int(size + 2)), w);
    memory.chaos = null;
  }

  const seconds = (performance.now() - t0) / 1000;
  const kinds = [...seenKinds.entries()].sort((a, b) => b[1] - a[1]);
  console.log(
    `randomized: seed 0x${
      SEED.toString(16)
    }, ${ITERATIONS} rings, ${walks} walks, ${chains} valid chains, ` +
      `${availErrors} avail idx jumps, ${seconds.toFixed(2)} s\n  ${
        kinds.map(([k, n]) => `${k} ${n}`).join(", ")
      }`,
  );
  // Every kind of malformation was actually produced (the test exercises the checks).
  const all: ChainErrorKind[] = [
    "head-out-of-range",
    "next-out-of-range",
    "loop",
    "chain-too-long",
    "writable-before-readable",
    "nested-indirect",
    "indirect-with-next",
    "indirect-not-negotiated",
    "bad-indirect-length",
    "address-out-of-range",
    "length-overflow",
  ];
  for (const k of all) assert.ok((seenKinds.get(k) ?? 0) > 0, `never produced ${k}`);
  assert.ok(chains > 10_000, `only ${chains} valid chains`);
  assert.ok(availErrors > 0);
});
