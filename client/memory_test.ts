import assert from "node:assert/strict";
import { isOpen, MemoryMapping } from "../sys/mod.ts";
import { MemoryAccessError } from "../virtq/mod.ts";
import { FrontendMemory, GuestAllocator, GuestMemoryExhaustedError } from "./mod.ts";

Deno.test("allocator: first fit, alignment, coalescing, exhaustion, double free", () => {
  const a = new GuestAllocator(0x1000, 0x1000);
  const x = a.alloc(100, 16);
  const y = a.alloc(100, 256);
  assert.equal(x, 0x1000);
  assert.equal(y, 0x1100);
  assert.equal(y % 256, 0);
  // The gap left by alignment is used by a later small allocation.
  const z = a.alloc(50, 16);
  assert.equal(z, 0x1070);
  assert.equal(a.allocations, 3);
  assert.equal(a.freeBytes, 0x1000 - 250);
  assert.throws(() => a.alloc(0x1000), GuestMemoryExhaustedError);
  assert.equal(a.tryAlloc(0x1000), undefined);
  a.free(x);
  a.free(y);
  a.free(z);
  assert.throws(() => a.free(x), /not an outstanding allocation/);
  // Everything coalesced back into one extent: the whole range fits again.
  assert.equal(a.freeBytes, 0x1000);
  assert.equal(a.alloc(0x1000, 4096), 0x1000);
  assert.throws(() => a.alloc(8, 3), /power of two/);
  assert.throws(() => new GuestAllocator(0, 0), RangeError);
});

Deno.test("allocator: random alloc/free keeps extents consistent", () => {
  const a = new GuestAllocator(0, 1 << 16);
  let seed = 1;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const live = new Map<number, number>();
  for (let i = 0; i < 5000; i++) {
    if (live.size > 0 && rnd(2) === 0) {
      const keys = [...live.keys()];
      const k = keys[rnd(keys.length)]!;
      a.free(k);
      live.delete(k);
    } else {
      const size = 1 + rnd(700);
      const at = a.tryAlloc(size, 1 << rnd(7));
      if (at === undefined) continue;
      for (const [s, n] of live) assert.ok(at + size <= s || s + n <= at, "overlap");
      assert.ok(at >= 0 && at + size <= 1 << 16);
      live.set(at, size);
    }
  }
  for (const k of live.keys()) a.free(k);
  assert.equal(a.freeBytes, 1 << 16);
  assert.equal(a.alloc(1 << 16, 1), 0);
});

Deno.test("memory: regions, addresses and bytes shared through the memfd", () => {
  using mem = FrontendMemory.create({ size: 4 << 20, regions: 2 });
  const [r0, r1] = mem.regions as [typeof mem.regions[0], typeof mem.regions[0]];
  assert.equal(r0.size, 2 << 20);
  assert.equal(r0.guestPhysAddr, 0x4000_0000n);
  assert.equal(r1.guestPhysAddr, 0x4000_0000n + BigInt(2 << 20));
  assert.notEqual(r0.fd, r1.fd);
  assert.deepEqual(mem.wireRegions()[1], {
    guestPhysAddr: r1.guestPhysAddr,
    memorySize: BigInt(r1.size),
    userspaceAddr: r1.userAddr,
    mmapOffset: 0n,
  });
  // A buffer's bytes are visible through an independent mapping of the fd (a back-end's view).
  const buf = mem.alloc(64);
  buf.bytes.set([1, 2, 3]);
  const other = MemoryMapping.map(r0.fd, r0.size);
  const off = buf.addr - Number(r0.guestPhysAddr);
  assert.deepEqual([...other.bytes.subarray(off, off + 3)], [1, 2, 3]);
  other.unmap();
  assert.equal(mem.guestToUser(buf.addr), r0.userAddr + BigInt(off));
  // Nothing straddles the boundary between the regions.
  mem.free(buf);
  const big = mem.alloc((2 << 20) - 64);
  const next = mem.alloc(128);
  assert.equal(BigInt(next.addr), r1.guestPhysAddr);
  mem.free(big);
  mem.free(next);
  assert.throws(() => mem.view(0x10, 4), MemoryAccessError);
});

Deno.test("memory: one memfd for several regions uses non-zero offsets; close releases it", () => {
  const mem = FrontendMemory.create({ size: 3 << 20, regions: 3, oneFile: true });
  const fds = new Set(mem.regions.map((r) => r.fd));
  assert.equal(fds.size, 1);
  assert.deepEqual(mem.regions.map((r) => r.mmapOffset), [0n, 1n << 20n, 2n << 20n]);
  mem.regions[2]!.bytes[5] = 42;
  const fd = [...fds][0]!;
  const whole = MemoryMapping.map(fd, 3 << 20);
  assert.equal(whole.bytes[(2 << 20) + 5], 42);
  whole.unmap();
  mem.close();
  mem.close();
  assert.equal(isOpen(fd), false);
  assert.equal(mem.closed, true);
  assert.throws(() => mem.alloc(8), /closed/);
  assert.throws(() => FrontendMemory.create({ regions: 9 }), RangeError);
  assert.throws(() => FrontendMemory.create({ size: 4096, regions: 2 }), RangeError);
});
