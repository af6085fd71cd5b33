import assert from "node:assert/strict";
import { close, ftruncate, memfdCreate, MemoryMapping } from "../sys/mod.ts";
import {
  GuestMemory,
  MemoryAccessError,
  type MemoryAccessReason,
  MemoryRegionError,
  VirtqError,
} from "./mod.ts";
import { plainMemory, RAM0, RAM1 } from "./_testing.ts";

function accessError(reason: MemoryAccessReason, address?: bigint) {
  return (e: unknown) => {
    assert.ok(e instanceof MemoryAccessError, String(e));
    assert.ok(e instanceof VirtqError);
    assert.equal(e.reason, reason, e.message);
    if (address !== undefined) assert.equal(e.address, address);
    return true;
  };
}

Deno.test("memory: guest-physical and user translation give the same zero-copy bytes", () => {
  const mem = plainMemory();
  const [r0, r1] = mem.regions;
  assert.ok(r0 && r1);
  const g = mem.translateGuest(RAM0.gpa + 100, 8);
  const u = mem.translateUser(BigInt(RAM0.user + 100), 8n);
  g[3] = 0xab;
  assert.equal(u[3], 0xab);
  assert.equal(r0.bytes[103], 0xab);
  assert.equal(g.buffer, r0.bytes.buffer);
  // Second region, bigint and number addresses, offsets computed per region.
  const h = mem.translateGuest(BigInt(RAM1.gpa) + 5n, 1);
  h[0] = 7;
  assert.equal(r1.bytes[5], 7);
  assert.equal(mem.guestToUser(RAM1.gpa + 5), BigInt(RAM1.user + 5));
  assert.equal(mem.userToGuest(RAM0.user + 9), BigInt(RAM0.gpa + 9));
  assert.equal(mem.resolveGuest(RAM1.gpa + 77, 3), 77);
  assert.equal(mem.resolvedGuest, r1);
  // Alternating lookups defeat the last-hit cache; results stay right.
  for (let i = 0; i < 10; i++) {
    assert.equal(mem.resolveGuest(RAM0.gpa + i, 1), i);
    assert.equal(mem.resolvedGuest, r0);
    assert.equal(mem.resolveUser(RAM1.user + i, 1), i);
    assert.equal(mem.resolvedUser, r1);
  }
  // Whole region, and empty ranges at both ends.
  assert.equal(mem.translateGuest(RAM0.gpa, RAM0.size).byteLength, RAM0.size);
  assert.equal(mem.translateGuest(RAM0.gpa + RAM0.size, 0).byteLength, 0);
  assert.equal(mem.translateGuest(RAM1.gpa, 0).byteLength, 0);
});

Deno.test("memory: ranges that leave, straddle, wrap or are absurd are typed errors", () => {
  const mem = plainMemory();
  const end0 = RAM0.gpa + RAM0.size;
  assert.throws(
    () => mem.translateGuest(end0 - 4, 8),
    accessError("leaves-region", BigInt(end0 - 4)),
  );
  assert.throws(() => mem.translateGuest(end0, 1), accessError("unmapped"));
  assert.throws(() => mem.translateGuest(0, 1), accessError("unmapped"));
  assert.throws(() => mem.translateGuest(RAM0.gpa - 1, 2), accessError("unmapped"));
  assert.throws(() => mem.translateUser(RAM0.gpa, 1), accessError("unmapped"));
  assert.throws(
    () => mem.translateGuest(0xffff_ffff_ffff_fff8n, 16),
    accessError("wraps", 0xffff_ffff_ffff_fff8n),
  );
  assert.throws(() => mem.translateGuest(RAM0.gpa, 1n << 60n), accessError("bad-length"));
  assert.throws(() => mem.translateGuest(RAM0.gpa, -1), accessError("bad-length"));
  assert.throws(() => mem.translateGuest(RAM0.gpa, 1.5), accessError("bad-length"));
  assert.throws(() => mem.translateGuest(-8, 1), accessError("bad-address"));
  assert.throws(() => mem.translateGuest(NaN, 1), accessError("bad-address"));
  assert.throws(() => mem.translateGuest(1n << 64n, 1), accessError("bad-address"));
  assert.throws(() => mem.translateGuest(2 ** 60, 1), accessError("unmapped"));

  // Two regions adjacent in guest-physical space: a range across the seam straddles.
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096);
  const adj = new GuestMemory([
    { guestPhysAddr: 0x1000, userAddr: 0x10_0000, size: 4096, bytes: a },
    { guestPhysAddr: 0x2000, userAddr: 0x30_0000, size: 4096, bytes: b },
  ]);
  assert.throws(() => adj.translateGuest(0x1ff0, 0x20), (e: unknown) => {
    accessError("straddles-regions", 0x1ff0n)(e);
    assert.match(
      (e as Error).message,
      /guest-physical range 0x1ff0\+32 straddles two memory regions/,
    );
    return true;
  });
  assert.throws(() => adj.translateGuest(0x1ff0, 0x2000), accessError("straddles-regions"));
  assert.equal(adj.translateGuest(0x1ff0, 0x10).byteLength, 16);
  assert.equal(adj.translateGuest(0x2000, 0x10).buffer, b.buffer);
  // Same bytes seen through user space, where the regions are not adjacent.
  assert.throws(() => adj.translateUser(0x10_0ff0, 0x20), accessError("leaves-region"));
});

Deno.test("memory: regions above 2^53 take the bigint path", () => {
  const bytes = new Uint8Array(8192);
  const base = 0xffff_ffff_ffff_0000n;
  const mem = new GuestMemory([{ guestPhysAddr: base, userAddr: 0x1000, size: 8192, bytes }]);
  mem.translateGuest(base + 0x100n, 4)[0] = 1;
  assert.equal(bytes[0x100], 1);
  assert.equal(mem.resolveGuest(base + 0x1ff0n, 0x10), 0x1ff0);
  assert.equal(mem.userToGuest(0x1000 + 0x40), base + 0x40n);
  assert.throws(() => mem.translateGuest(base + 0x1ff0n, 0x20), accessError("leaves-region"));
  assert.throws(() => mem.translateGuest(base + 0xfff8n, 0x10), accessError("wraps"));
  // A region ending exactly at 2^64 is valid.
  const top = new GuestMemory([{
    guestPhysAddr: (1n << 64n) - 4096n,
    userAddr: 0,
    size: 4096,
    bytes: new Uint8Array(4096),
  }]);
  assert.equal(top.translateGuest((1n << 64n) - 16n, 16).byteLength, 16);
});

Deno.test("memory: add/remove regions, overlaps refused, generation moves", () => {
  const mem = new GuestMemory();
  assert.equal(mem.regions.length, 0);
  assert.throws(() => mem.translateGuest(0, 1), accessError("unmapped"));
  const g0 = mem.generation;
  const r = mem.addRegion({
    guestPhysAddr: 0,
    userAddr: 0x1000_0000,
    size: 4096,
    bytes: new Uint8Array(4096),
  });
  assert.ok(mem.generation > g0);
  mem.addRegion({
    guestPhysAddr: 8192,
    userAddr: 0x2000_0000,
    size: 4096,
    mmapOffset: 4096,
    bytes: new Uint8Array(4096),
  });
  const overlap = (init: Parameters<GuestMemory["addRegion"]>[0], space: string) =>
    assert.throws(() => mem.addRegion(init), (e: unknown) => {
      assert.ok(e instanceof MemoryRegionError);
      assert.match(e.message, new RegExp(`overlaps .* in ${space} space`));
      return true;
    });
  overlap(
    { guestPhysAddr: 4095, userAddr: 0x9000_0000, size: 2, bytes: new Uint8Array(2) },
    "guest-physical",
  );
  overlap(
    { guestPhysAddr: 0x10_0000, userAddr: 0x1000_0fff, size: 2, bytes: new Uint8Array(2) },
    "user",
  );
  assert.throws(
    () =>
      mem.addRegion({
        guestPhysAddr: 0x10_0000,
        userAddr: 0,
        size: 4096,
        bytes: new Uint8Array(10),
      }),
    MemoryRegionError,
  );
  assert.throws(
    () =>
      mem.addRegion({ guestPhysAddr: 0x10_0000, userAddr: 0, size: 0, bytes: new Uint8Array(0) }),
    MemoryRegionError,
  );
  assert.throws(
    () =>
      mem.addRegion({
        guestPhysAddr: (1n << 64n) - 2n,
        userAddr: 0,
        size: 4,
        bytes: new Uint8Array(4),
      }),
    MemoryRegionError,
  );
  assert.equal(mem.regions.length, 2);
  assert.equal(mem.translateGuest(8192 + 10, 1).byteLength, 1);

  // REM_MEM_REG names guest address, user address and size; the offset is ignored.
  assert.throws(
    () => mem.removeRegion({ guestPhysAddr: 0, userAddr: 0x1000_0000, size: 8192 }),
    MemoryRegionError,
  );
  const g1 = mem.generation;
  assert.equal(mem.removeRegion({ guestPhysAddr: 0n, userAddr: 0x1000_0000n, size: 4096n }), r);
  assert.ok(mem.generation > g1);
  assert.throws(() => mem.translateGuest(10, 1), accessError("unmapped"));
  assert.equal(mem.regions.length, 1);

  // SET_MEM_TABLE is all or nothing.
  const before = mem.regions;
  assert.throws(() =>
    mem.setRegions([
      { guestPhysAddr: 0, userAddr: 0, size: 4096, bytes: new Uint8Array(4096) },
      { guestPhysAddr: 4000, userAddr: 0x10000, size: 4096, bytes: new Uint8Array(4096) },
    ]), MemoryRegionError);
  assert.equal(mem.regions, before);
  const old = mem.setRegions([{
    guestPhysAddr: 0,
    userAddr: 0,
    size: 16,
    bytes: new Uint8Array(16),
  }]);
  assert.equal(old.length, 1);
  assert.equal(mem.clear().length, 1);
  assert.equal(mem.regions.length, 0);
});

Deno.test("memory: memfd-backed regions share pages with another mapping; unmapping is detected", () => {
  // QEMU-like: one memfd of guest RAM, two regions at different file offsets.
  const fd = memfdCreate("guest-ram");
  const size = 1 << 20;
  ftruncate(fd, 2 * size);
  try {
    using qemu = MemoryMapping.map(fd, 2 * size); // QEMU's own view of guest RAM
    const low = MemoryMapping.map(fd, size);
    using high = MemoryMapping.map(fd, size, { offset: size });
    const mem = new GuestMemory();
    mem.addRegion({
      guestPhysAddr: 0,
      userAddr: qemu.address,
      size,
      mmapOffset: 0,
      bytes: low.view(0, size),
    });
    mem.addRegion({
      guestPhysAddr: 0x1_0000_0000n,
      userAddr: qemu.address + BigInt(size),
      size,
      mmapOffset: size,
      bytes: high.view(0, size),
    });
    qemu.bytes[size + 42] = 0x5a;
    assert.equal(mem.translateGuest(0x1_0000_0000n + 42n, 1)[0], 0x5a);
    assert.equal(mem.translateUser(qemu.address + BigInt(size) + 42n, 1)[0], 0x5a);
    mem.translateGuest(4096, 2).set([1, 2]);
    assert.deepEqual([...qemu.bytes.subarray(4096, 4098)], [1, 2]);
    // Releasing the mapping while registered: a typed error, never a crash.
    low.unmap();
    assert.throws(() => mem.translateGuest(4096, 2), accessError("detached"));
    mem.removeRegion({ guestPhysAddr: 0, userAddr: qemu.address, size });
    assert.throws(() => mem.translateGuest(4096, 2), accessError("unmapped"));
  } finally {
    close(fd);
  }
});
