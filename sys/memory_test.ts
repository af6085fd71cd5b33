import assert from "node:assert/strict";
import { close, ftruncate, memfdCreate, MemoryMapping, pwrite, SysError } from "./mod.ts";

Deno.test("two mappings of one memfd share pages; anonymous memory is private", () => {
  const fd = memfdCreate("shared");
  ftruncate(fd, 1 << 20);
  using a = MemoryMapping.map(fd, 1 << 20);
  using b = MemoryMapping.map(fd, 4096, { offset: 4096 * 3 });
  a.bytes[4096 * 3 + 7] = 99;
  assert.equal(b.bytes[7], 99);
  pwrite(fd, new Uint8Array([1, 2]), 4096 * 3);
  assert.deepEqual([...b.view(0, 2)], [1, 2]);
  assert.notEqual(a.address, b.address);
  using anon = MemoryMapping.anonymous(4096);
  assert.equal(anon.bytes.every((x) => x === 0), true);
  close(fd);
});

Deno.test("unmap detaches views instead of leaving dangling memory", () => {
  const fd = memfdCreate("detach");
  ftruncate(fd, 4096);
  const m = MemoryMapping.map(fd, 4096);
  const v = m.view(0, 16);
  v[0] = 1;
  m.unmap();
  assert.equal(m.mapped, false);
  assert.equal(v.length, 0);
  assert.equal(v[0], undefined);
  assert.equal(m.bytes.length, 0);
  m.unmap(); // idempotent
  close(fd);
});

Deno.test("mmap errors carry errno; views are bounds-checked", () => {
  assert.throws(() => MemoryMapping.map(123456, 4096), (e: unknown) => {
    assert.ok(e instanceof SysError);
    assert.equal(e.call, "mmap");
    assert.equal(e.code, "EBADF");
    return true;
  });
  using m = MemoryMapping.anonymous(4096);
  assert.throws(() => m.view(4000, 200), RangeError);
  assert.throws(() => MemoryMapping.anonymous(0), RangeError);
});
