import assert from "node:assert/strict";
import {
  AvailIndexError,
  ChainError,
  type ChainErrorKind,
  ChainWalker,
  DescFlags,
  type DescriptorChain,
  DriverError,
  MemoryAccessError,
  type RawDescriptor,
} from "./mod.ts";
import { MapFlags, MemoryMapping } from "../sys/mod.ts";
import { plainMemory, prng, RAM0, RAM1, rig } from "./_testing.ts";

const { NEXT, WRITE, INDIRECT } = DescFlags;

function bytesOf(mem: ReturnType<typeof plainMemory>, addr: number, len: number): Uint8Array {
  return mem.translateGuest(addr, len);
}

Deno.test("walker: direct chain, readable then writable, zero-copy views", () => {
  const { memory, driver, walker, data } = rig(16);
  bytesOf(memory, data, 4).set([1, 2, 3, 4]);
  bytesOf(memory, RAM1.gpa + 8, 2).set([9, 9]);
  const head = driver.addChain(
    [{ addr: data, len: 4 }, { addr: RAM1.gpa + 8, len: 2 }],
    [{ addr: data + 4096, len: 16 }],
  );
  driver.publish();
  const c = walker.pop();
  assert.ok(c);
  assert.equal(c.head, head);
  assert.equal(c.indirect, false);
  assert.deepEqual(c.readable.map((v) => [...v]), [[1, 2, 3, 4], [9, 9]]);
  assert.equal(c.readableLength, 6);
  assert.equal(c.writableLength, 16);
  c.writable[0]?.fill(0xee);
  assert.equal(bytesOf(memory, data + 4096, 16).every((b) => b === 0xee), true);
  assert.deepEqual(
    c.descriptors.map((d) => [d.addr, d.len, d.flags, d.indirect]),
    [
      [BigInt(data), 4, NEXT, false],
      [BigInt(RAM1.gpa + 8), 2, NEXT, false],
      [BigInt(data + 4096), 16, WRITE, false],
    ],
  );
});

Deno.test("walker: indirect table, and direct descriptors followed by an indirect one", () => {
  const { memory, driver, walker, data } = rig(16);
  const table = RAM1.gpa + 0x10000;
  const head = driver.addChain(
    [{ addr: data, len: 40 }, { addr: data + 64, len: 4096 }],
    [{ addr: data + 8192, len: 16 }, { addr: data + 9000, len: 100 }],
    { indirectTable: table },
  );
  driver.publish();
  assert.equal(driver.freeCount, 15, "an indirect chain takes one ring descriptor");
  const c = walker.pop();
  assert.ok(c);
  assert.equal(c.head, head);
  assert.equal(c.indirect, true);
  assert.deepEqual(c.readable.map((v) => v.byteLength), [40, 4096]);
  assert.deepEqual(c.writable.map((v) => v.byteLength), [16, 100]);
  assert.equal(c.descriptors.length, 5);
  assert.equal(c.descriptors[0]?.flags, INDIRECT);
  assert.equal(c.descriptors[0]?.addr, BigInt(table));
  assert.equal(c.descriptors.slice(1).every((d) => d.indirect), true);
  assert.equal(c.readable[1]?.buffer, memory.regions[0]?.bytes.buffer);

  // Spec: "zero or more normal chained descriptors followed by a single INDIRECT one".
  driver.writeTable(table, [
    { addr: data + 100, len: 8, flags: NEXT, next: 1 },
    { addr: data + 200, len: 8, flags: WRITE, next: 0 },
  ]);
  driver.writeDescriptor(5, { addr: data, len: 2, flags: NEXT, next: 6 });
  // The WRITE bit of a descriptor pointing at a table is ignored.
  driver.writeDescriptor(6, { addr: table, len: 32, flags: INDIRECT | WRITE, next: 0 });
  const m = walker.walk(5);
  assert.deepEqual(m.readable.map((v) => v.byteLength), [2, 8]);
  assert.deepEqual(m.writable.map((v) => v.byteLength), [8]);
  assert.equal(m.indirect, true);
});

Deno.test("walker: a 1 MiB write in 256 page descriptors, direct and indirect", () => {
  for (const indirect of [false, true]) {
    const { memory, driver, walker, data } = rig(512);
    const header = { addr: data, len: 80 };
    const pages = Array.from({ length: 256 }, (_, i) => ({ addr: RAM1.gpa + 4096 * i, len: 4096 }));
    for (let i = 0; i < 256; i++) bytesOf(memory, RAM1.gpa + 4096 * i, 1)[0] = i;
    const reply = { addr: data + 4096, len: 24 };
    const opts = indirect ? { indirectTable: data + 8192 } : {};
    driver.addChain([header, ...pages], [reply], opts);
    driver.publish();
    const c = walker.pop();
    assert.ok(c);
    assert.equal(c.readable.length, 257);
    assert.equal(c.readableLength, 80 + (1 << 20));
    assert.equal(c.writableLength, 24);
    assert.equal(c.descriptors.length, indirect ? 259 : 258);
    for (let i = 0; i < 256; i++) assert.equal(c.readable[i + 1]?.[0], i);
  }
});

Deno.test("walker: record=false skips the descriptor list; options are validated", () => {
  const { driver, queue, data } = rig(8);
  const w = new ChainWalker(queue, { record: false });
  driver.addChain([{ addr: data, len: 1 }], [{ addr: data, len: 1 }]);
  driver.publish();
  const c = w.pop();
  assert.ok(c);
  assert.equal(c.descriptors.length, 0);
  assert.equal(c.readable.length, 1);
  assert.throws(() => new ChainWalker(queue, { maxDescriptors: 0 }), RangeError);
  assert.throws(() => new ChainWalker(queue, { maxTotalLength: NaN }), RangeError);
});

function expectChainError(
  fn: () => DescriptorChain,
  kind: ChainErrorKind,
  check?: (e: ChainError) => void,
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ChainError, `expected ChainError ${kind}, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    check?.(e);
    return true;
  });
}

Deno.test("walker: each malformed table gives its typed ChainError", () => {
  const { driver, walker, queue, data } = rig(8);
  const d = (addr: number | bigint, len: number, flags: number, next = 0): RawDescriptor => ({
    addr,
    len,
    flags,
    next,
  });
  const table = RAM1.gpa + 0x4000;

  // head ≥ size
  expectChainError(() => walker.walk(8), "head-out-of-range", (e) => assert.equal(e.head, 8));
  driver.pushAvail(200);
  driver.publish();
  expectChainError(() => walker.pop() as DescriptorChain, "head-out-of-range");

  // next ≥ size
  driver.writeDescriptor(0, d(data, 1, NEXT, 8));
  expectChainError(() => walker.walk(0), "next-out-of-range", (e) => {
    assert.equal(e.index, 0);
    assert.match(e.message, /next 8 ≥ queue size 8/);
  });

  // loop: 1 → 2 → 3 → 1
  driver.writeDescriptor(1, d(data, 1, NEXT, 2));
  driver.writeDescriptor(2, d(data, 1, NEXT, 3));
  driver.writeDescriptor(3, d(data, 1, NEXT, 1));
  expectChainError(() => walker.walk(1), "loop", (e) => assert.equal(e.index, 1));
  // self-loop
  driver.writeDescriptor(4, d(data, 1, NEXT, 4));
  expectChainError(() => walker.walk(4), "loop");

  // writable before readable
  driver.writeDescriptor(0, d(data, 1, WRITE | NEXT, 1));
  driver.writeDescriptor(1, d(data, 1, 0));
  expectChainError(
    () => walker.walk(0),
    "writable-before-readable",
    (e) => assert.equal(e.index, 1),
  );

  // INDIRECT + NEXT
  driver.writeTable(table, [d(data, 1, 0)]);
  driver.writeDescriptor(0, d(table, 16, INDIRECT | NEXT, 1));
  expectChainError(() => walker.walk(0), "indirect-with-next");

  // nested indirect
  driver.writeTable(table, [d(data, 1, NEXT, 1), d(table, 16, INDIRECT)]);
  driver.writeDescriptor(0, d(table, 32, INDIRECT));
  expectChainError(() => walker.walk(0), "nested-indirect", (e) => {
    assert.equal(e.indirect, true);
    assert.equal(e.index, 1);
  });

  // indirect table length: zero, not a multiple of 16, too many entries
  for (const len of [0, 8, 24, 33]) {
    driver.writeDescriptor(0, d(table, len, INDIRECT));
    expectChainError(() => walker.walk(0), "bad-indirect-length");
  }
  const small = new ChainWalker(queue, { maxIndirectEntries: 2 });
  driver.writeDescriptor(0, d(table, 48, INDIRECT));
  expectChainError(() => small.walk(0), "bad-indirect-length");

  // next inside an indirect table ≥ its entries
  driver.writeTable(table, [d(data, 1, NEXT, 2), d(data, 1, 0)]);
  driver.writeDescriptor(0, d(table, 32, INDIRECT));
  expectChainError(() => walker.walk(0), "next-out-of-range", (e) => {
    assert.equal(e.indirect, true);
    assert.match(e.message, /next 2 ≥ indirect table entries 2/);
  });
  // loop inside an indirect table
  driver.writeTable(table, [d(data, 1, NEXT, 1), d(data, 1, NEXT, 0)]);
  expectChainError(() => walker.walk(0), "loop", (e) => assert.equal(e.indirect, true));

  // chain too long: 9 indirect entries in a queue of 8 (the spec's bound), or a set limit
  driver.writeTable(
    table,
    Array.from({ length: 9 }, (_, k) => d(data, 1, k < 8 ? NEXT : 0, k + 1)),
  );
  driver.writeDescriptor(0, d(table, 9 * 16, INDIRECT));
  expectChainError(() => walker.walk(0), "chain-too-long", (e) => assert.equal(e.index, 8));
  const three = new ChainWalker(queue, { maxDescriptors: 3 });
  for (let k = 0; k < 4; k++) driver.writeDescriptor(k, d(data, 1, k < 3 ? NEXT : 0, k + 1));
  assert.equal(walker.walk(0).readable.length, 4);
  expectChainError(() => three.walk(0), "chain-too-long");

  // INDIRECT without VIRTIO_F_INDIRECT_DESC
  driver.writeTable(table, [d(data, 1, 0)]);
  driver.writeDescriptor(0, d(table, 16, INDIRECT));
  expectChainError(
    () => new ChainWalker(queue, { indirect: false }).walk(0),
    "indirect-not-negotiated",
  );

  // addresses: outside memory, straddling the end of a region, above 2^64 - len
  const addrCases: [number | bigint, number, string][] = [
    [0x10, 4, "unmapped"],
    [RAM0.gpa + RAM0.size - 2, 4, "leaves-region"],
    [RAM1.gpa + RAM1.size, 1, "unmapped"],
    [0xffff_ffff_ffff_fff0n, 0x20, "wraps"],
    [1n << 62n, 1, "unmapped"],
  ];
  for (const [addr, len, reason] of addrCases) {
    driver.writeDescriptor(0, d(addr, len, 0));
    expectChainError(() => walker.walk(0), "address-out-of-range", (e) => {
      assert.ok(e.cause instanceof MemoryAccessError);
      assert.equal(e.cause.reason, reason);
      assert.equal(e.cause.address, BigInt(addr));
    });
  }
  // the indirect table itself outside memory
  driver.writeDescriptor(0, d(0x20, 32, INDIRECT));
  expectChainError(() => walker.walk(0), "address-out-of-range", (e) => {
    assert.match(e.message, /indirect table/);
  });

  // total length overflow: 3 × 2 GiB-ish descriptors... limited by a small maxTotalLength
  const capped = new ChainWalker(queue, { maxTotalLength: 100 });
  driver.writeDescriptor(0, d(data, 60, NEXT, 1));
  driver.writeDescriptor(1, d(data, 41, WRITE));
  expectChainError(() => capped.walk(0), "length-overflow", (e) => assert.equal(e.index, 1));
  // avail idx jump (through the walker's pop)
  const fresh = rig(8);
  fresh.driver.setAvailIdx(12);
  assert.throws(
    () => fresh.walker.pop(),
    (e: unknown) => e instanceof AvailIndexError && e.jump === 12,
  );
});

Deno.test("walker: the default 2^32 - 1 length limit, over a 3 GiB region", () => {
  // Untouched MAP_NORESERVE pages cost nothing; both 2 GiB buffers do translate.
  using ram = MemoryMapping.map(-1, 3 * 2 ** 30, {
    flags: MapFlags.PRIVATE | MapFlags.NORESERVE,
  });
  const memory = plainMemory();
  memory.addRegion({
    guestPhysAddr: 0x10_0000_0000,
    userAddr: 0x10_0000_0000,
    size: ram.size,
    bytes: ram.bytes,
  });
  const { driver, walker } = rig(8, { memory });
  const base = 0x10_0000_0000;
  driver.writeDescriptor(0, { addr: base, len: 0x8000_0000, flags: NEXT, next: 1 });
  driver.writeDescriptor(1, {
    addr: base + 0x4000_0000,
    len: 0x7fff_ffff,
    flags: WRITE | NEXT,
    next: 2,
  });
  driver.writeDescriptor(2, { addr: base, len: 1, flags: WRITE, next: 0 });
  expectChainError(() => walker.walk(0), "length-overflow", (e) => {
    assert.equal(e.index, 2);
    assert.match(e.message, /chain length 4294967296 exceeds 4294967295/);
  });
  driver.writeDescriptor(1, { addr: base + 0x4000_0000, len: 0x7fff_ffff, flags: WRITE, next: 0 });
  const c = walker.walk(0);
  assert.equal(c.readableLength + c.writableLength, 0xffff_ffff);
});

Deno.test("driver ↔ walker round trip over many random chains", () => {
  const rnd = prng(42);
  const { driver, walker, queue, data } = rig(64, { eventIdx: true });
  let inflight: { head: number; r: number[]; w: number[] }[] = [];
  let completed = 0;
  for (let round = 0; round < 2000; round++) {
    // Add a few chains of random shape while descriptors last.
    const adds = 1 + Math.floor(rnd() * 4);
    for (let k = 0; k < adds; k++) {
      const nr = Math.floor(rnd() * 4);
      const nw = (nr === 0 ? 1 : 0) + Math.floor(rnd() * 3);
      const indirect = rnd() < 0.3;
      if (!indirect && driver.freeCount < nr + nw) break;
      if (indirect && driver.freeCount < 1) break;
      const r = Array.from({ length: nr }, () => 1 + Math.floor(rnd() * 5000));
      const w = Array.from({ length: nw }, () => 1 + Math.floor(rnd() * 5000));
      let off = 0;
      const spec = (len: number) => {
        const b = { addr: (rnd() < 0.5 ? data : RAM1.gpa) + off, len };
        off += len;
        return b;
      };
      const head = driver.addChain(
        r.map(spec),
        w.map(spec),
        indirect ? { indirectTable: data + 0x10_0000 + 4096 * ((round * 4 + k) % 64) } : {},
      );
      inflight.push({ head, r, w });
    }
    driver.publish();
    // The device takes some and completes them in random order.
    const got: DescriptorChain[] = [];
    for (let c = walker.pop(); c !== null; c = walker.pop()) got.push(c);
    for (const c of got) {
      const want = inflight.find((x) => x.head === c.head);
      assert.ok(want, `unknown head ${c.head}`);
      assert.deepEqual(c.readable.map((v) => v.byteLength), want.r);
      assert.deepEqual(c.writable.map((v) => v.byteLength), want.w);
    }
    got.sort(() => rnd() - 0.5);
    for (const c of got) queue.push(c.head, c.writableLength);
    queue.publish();
    queue.needNotify();
    const used = driver.collectUsed();
    assert.equal(used.length, got.length);
    for (const u of used) {
      const i = inflight.findIndex((x) => x.head === u.id);
      assert.ok(i >= 0);
      assert.equal(u.len, inflight[i]!.w.reduce((a, b) => a + b, 0));
      inflight = inflight.filter((_, j) => j !== i);
      completed++;
    }
  }
  assert.equal(inflight.length, 0);
  assert.equal(driver.freeCount, 64);
  assert.ok(completed > 2000);
  assert.equal(queue.lastAvailIdx, driver.availIdx);
});

Deno.test("driver: refuses what a real driver could not do", () => {
  const { driver, queue, data } = rig(4);
  assert.throws(() => driver.addChain([], []), DriverError);
  assert.throws(
    () => driver.addChain(Array.from({ length: 5 }, () => ({ addr: data, len: 1 })), []),
    /chain of 5 descriptors, 4 free/,
  );
  const h = driver.addChain([{ addr: data, len: 1 }], []);
  driver.publish();
  queue.popHead();
  queue.push((h + 1) % 4, 0);
  queue.publish();
  assert.throws(() => driver.collectUsed(), /not an outstanding head/);
});
