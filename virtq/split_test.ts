import assert from "node:assert/strict";
import { close, ftruncate, memfdCreate, MemoryMapping } from "../sys/mod.ts";
import {
  AvailFlags,
  AvailIndexError,
  ChainWalker,
  contiguousRingLayout,
  GuestMemory,
  isValidQueueSize,
  MemoryAccessError,
  PackedRingUnsupportedError,
  RingConfigError,
  ringFeatures,
  SplitQueue,
  SplitQueueDriver,
  splitRingLayout,
  UsedFlags,
  validateQueueSize,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  vringNeedEvent,
  withoutPackedRing,
} from "./mod.ts";
import { plainMemory, RAM0, rig } from "./_testing.ts";

Deno.test("layout: sizes and offsets per queue size, with and without EVENT_IDX", () => {
  const cases: [number, number, number, number][] = [
    // size, desc, avail (event idx), used (event idx)
    [1, 16, 8, 14],
    [2, 32, 10, 22],
    [128, 2048, 262, 1030],
    [256, 4096, 518, 2054],
    [1024, 16384, 2054, 8198],
    [32768, 524288, 65542, 262150],
  ];
  for (const [n, desc, avail, used] of cases) {
    const l = splitRingLayout(n);
    assert.equal(l.descBytes, desc);
    assert.equal(l.availBytes, avail);
    assert.equal(l.usedBytes, used);
    assert.equal(l.avail.usedEvent, 4 + 2 * n);
    assert.equal(l.used.availEvent, 4 + 8 * n);
    const plain = splitRingLayout(n, false);
    assert.equal(plain.availBytes, avail - 2);
    assert.equal(plain.usedBytes, used - 2);
    assert.equal(plain.avail.usedEvent, -1);
    assert.equal(plain.used.availEvent, -1);
  }
  // Legacy contiguous layout (the formula of spec §2.7.2): 256 entries → 3 pages.
  assert.deepEqual(contiguousRingLayout(256), { desc: 0, avail: 4096, used: 8192, total: 12288 });
  assert.deepEqual(contiguousRingLayout(1024, 4096), {
    desc: 0,
    avail: 16384,
    used: 20480,
    total: 32768,
  });
});

Deno.test("layout: queue size must be a power of two up to 32768", () => {
  for (const ok of [1, 2, 4, 256, 1024, 32768]) {
    assert.equal(isValidQueueSize(ok), true);
    validateQueueSize(ok);
  }
  for (const bad of [0, 3, 6, 100, 65536, -2, 1.5, NaN]) {
    assert.equal(isValidQueueSize(bad), false);
    assert.throws(() => validateQueueSize(bad), (e: unknown) => {
      assert.ok(e instanceof RingConfigError);
      assert.equal(e.field, "size");
      return true;
    });
  }
});

Deno.test("queue: ring addresses are checked for alignment and placement", () => {
  const memory = plainMemory();
  const base = { size: 16, desc: RAM0.gpa, avail: RAM0.gpa + 0x1000, used: RAM0.gpa + 0x2000 };
  const gp = "guest-physical" as const;
  new SplitQueue(memory, { ...base, space: gp });
  const bad = (over: Partial<typeof base>, field: string, re: RegExp) =>
    assert.throws(() => new SplitQueue(memory, { ...base, ...over, space: gp }), (e: unknown) => {
      assert.ok(e instanceof RingConfigError, String(e));
      assert.equal(e.field, field);
      assert.match(e.message, re);
      return true;
    });
  bad({ desc: RAM0.gpa + 8 }, "desc", /not 16-byte aligned/);
  bad({ avail: RAM0.gpa + 0x1001 }, "avail", /not 2-byte aligned/);
  bad({ used: RAM0.gpa + 0x2002 }, "used", /not 4-byte aligned/);
  bad({ size: 12 }, "size", /power of two/);
  // Used ring running past the end of the region.
  bad({ used: RAM0.gpa + RAM0.size - 64 }, "used", /not in guest memory.*runs past the end/);
  assert.throws(
    () => new SplitQueue(memory, { ...base, space: gp, desc: 0x10 }),
    (e: unknown) => e instanceof RingConfigError && e.cause instanceof MemoryAccessError,
  );
  // Guest-physical addresses are not user addresses.
  assert.throws(() => new SplitQueue(memory, { ...base, space: "user" }), RingConfigError);
});

Deno.test("features: packed rings are refused explicitly", () => {
  const f = VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;
  assert.deepEqual(ringFeatures(f), { eventIdx: true, indirect: true });
  assert.throws(() => ringFeatures(f | VIRTIO_F_RING_PACKED), PackedRingUnsupportedError);
  assert.equal(withoutPackedRing(f | VIRTIO_F_RING_PACKED), f);
  const memory = plainMemory();
  const rings = { size: 16, desc: RAM0.gpa, avail: RAM0.gpa + 0x1000, used: RAM0.gpa + 0x2000 };
  assert.throws(
    () =>
      new SplitQueue(memory, {
        ...rings,
        space: "guest-physical",
        features: f | VIRTIO_F_RING_PACKED,
      }),
    (e: unknown) => {
      assert.ok(e instanceof PackedRingUnsupportedError);
      assert.match(e.message, /VIRTIO_F_RING_PACKED \(bit 34\)/);
      return true;
    },
  );
  const q = new SplitQueue(memory, { ...rings, space: "guest-physical", features: f });
  assert.equal(q.eventIdx, true);
});

Deno.test("queue: user-address queue sees what a guest-physical driver writes; pop/push/publish", () => {
  const { driver, queue, walker, data } = rig(8);
  assert.equal(queue.pending(), 0);
  assert.equal(queue.popHead(), -1);
  const h0 = driver.addChain([{ addr: data, len: 10 }], [{ addr: data + 100, len: 20 }]);
  const h1 = driver.addChain([{ addr: data + 200, len: 1 }], []);
  assert.equal(queue.pending(), 0, "unpublished heads are invisible");
  driver.publish();
  assert.equal(queue.availIdx(), 2);
  assert.equal(queue.pending(), 2);
  assert.equal(queue.availRing(0), h0);
  assert.equal(queue.availRing(9), h1, "slots wrap modulo the size");
  const c0 = walker.pop();
  const c1 = walker.pop();
  assert.equal(walker.pop(), null);
  assert.ok(c0 && c1);
  assert.equal(c0.head, h0);
  assert.equal(c1.head, h1);
  assert.equal(queue.lastAvailIdx, 2);
  queue.push(c1.head, 0);
  queue.push(c0.head, 20);
  assert.deepEqual(driver.collectUsed(), [], "pushed but unpublished");
  assert.equal(queue.publish(), 2);
  assert.equal(queue.usedIdx(), 2);
  assert.deepEqual(queue.readUsed(1), { id: h0, len: 20 });
  assert.deepEqual(driver.collectUsed(), [{ id: h1, len: 0 }, { id: h0, len: 20 }]);
  assert.equal(driver.freeCount, 8);
});

Deno.test("queue: avail idx jumping by more than the size is an AvailIndexError", () => {
  const { driver, queue } = rig(8);
  driver.setAvailIdx(9);
  assert.throws(() => queue.popHead(), (e: unknown) => {
    assert.ok(e instanceof AvailIndexError);
    assert.equal(e.jump, 9);
    assert.match(e.message, /avail idx jumped by 9 > size 8/);
    return true;
  });
  driver.setAvailIdx(8);
  assert.equal(queue.pending(), 8, "exactly the size is fine");
  // A driver that moves idx backwards looks like a jump of ~65535.
  queue.setBase(8);
  driver.setAvailIdx(7);
  assert.throws(() => queue.pending(), /avail idx jumped by 65535 > size 8/);
});

Deno.test("queue: SET/GET_VRING_BASE and indices wrap at 2^16", () => {
  const { driver, queue, walker, data } = rig(4);
  queue.setBase(65534 + 65536 * 3);
  assert.equal(queue.getBase(), 65534);
  driver.setAvailIdx(65534);
  queue.setUsedIdx(65535);
  driver.resync();
  const heads = [0, 1, 2].map((k) => driver.addChain([{ addr: data + k, len: 1 }], []));
  assert.equal(driver.publish(), 1);
  for (const h of heads) {
    const c = walker.pop();
    assert.equal(c?.head, h);
    queue.push(h, 0);
  }
  assert.equal(queue.getBase(), 1);
  assert.equal(queue.publish(), 2);
  assert.deepEqual(driver.collectUsed().map((u) => u.id), heads);
  queue.unpop();
  assert.equal(queue.lastAvailIdx, 0);
});

Deno.test("EVENT_IDX: vring_need_event truth table, including 65535 → 0", () => {
  // [used_event, new, old, expected]: notify iff used_event ∈ [old, new) mod 2^16.
  const table: [number, number, number, boolean][] = [
    [0, 1, 0, true],
    [0, 2, 1, false],
    [1, 2, 1, true],
    [4, 5, 0, true],
    [5, 5, 0, false],
    [3, 3, 3, false],
    [10, 20, 5, true],
    [4, 20, 5, false],
    [20, 20, 5, false],
    [65535, 0, 65535, true],
    [65535, 1, 65534, true],
    [0, 1, 65535, true],
    [1, 1, 65535, false],
    [65534, 0, 65535, false],
    [0, 0, 65535, false],
    [65535, 65535, 65534, false],
    [65534, 65535, 65534, true],
  ];
  for (const [ev, nw, old, want] of table) {
    assert.equal(vringNeedEvent(ev, nw, old), want, `need_event(${ev}, ${nw}, ${old})`);
  }
});

Deno.test("EVENT_IDX: needNotify follows used_event across the 16-bit wrap", () => {
  const { driver, queue, walker, data } = rig(8, { eventIdx: true });
  queue.setUsedIdx(65534);
  driver.resync();
  driver.setAvailIdx(65534);
  queue.setBase(65534);
  const cycle = () => {
    const h = driver.addChain([{ addr: data, len: 1 }], []);
    driver.publish();
    const c = walker.pop();
    assert.equal(c?.head, h);
    queue.push(h, 0);
    queue.publish();
    driver.collectUsed();
  };
  assert.equal(queue.needNotify(), true, "first call after a (re)start always notifies");
  driver.setUsedEvent(65535); // wants a call once entry 65535 is used (idx 65535 → 0)
  cycle(); // idx 65534 → 65535
  assert.equal(queue.usedIdx(), 65535);
  assert.equal(queue.needNotify(), false);
  cycle(); // idx → 0: crosses used_event
  assert.equal(queue.usedIdx(), 0);
  assert.equal(queue.needNotify(), true);
  assert.equal(queue.needNotify(), false, "nothing new published");
  driver.setUsedEvent(3);
  cycle(); // → 1
  cycle(); // → 2
  assert.equal(queue.needNotify(), false);
  cycle(); // → 3
  cycle(); // → 4: crosses 3 (batched: old 2, new 4)
  assert.equal(queue.needNotify(), true);
});

Deno.test("no EVENT_IDX: needNotify obeys VRING_AVAIL_F_NO_INTERRUPT", () => {
  const { driver, queue, walker, data } = rig(8);
  assert.throws(() => queue.usedEvent(), RangeError);
  const cycle = () => {
    driver.addChain([{ addr: data, len: 1 }], []);
    driver.publish();
    const c = walker.pop();
    assert.ok(c);
    queue.push(c.head, 0);
    queue.publish();
    driver.collectUsed();
  };
  cycle();
  assert.equal(queue.needNotify(), true);
  assert.equal(queue.needNotify(), false, "nothing new published");
  driver.setAvailFlags(AvailFlags.NO_INTERRUPT);
  assert.equal(queue.availFlags(), AvailFlags.NO_INTERRUPT);
  cycle();
  assert.equal(queue.needNotify(), false);
  driver.setAvailFlags(0);
  cycle();
  assert.equal(queue.needNotify(), true);
});

Deno.test("suppression towards the driver: NO_NOTIFY without EVENT_IDX, avail_event with", () => {
  {
    const { driver, queue, walker, data } = rig(8);
    queue.disableNotify();
    assert.equal(queue.usedFlags(), UsedFlags.NO_NOTIFY);
    driver.addChain([{ addr: data, len: 1 }], []);
    driver.publish();
    assert.equal(driver.needKick(), false);
    assert.equal(queue.enableNotify(), true, "a buffer arrived while notifications were off");
    assert.equal(queue.usedFlags(), 0);
    assert.ok(walker.pop());
    assert.equal(queue.enableNotify(), false);
    driver.addChain([{ addr: data, len: 1 }], []);
    driver.publish();
    assert.equal(driver.needKick(), true);
  }
  {
    const { driver, queue, walker, data } = rig(8, { eventIdx: true });
    const add = () => {
      driver.addChain([{ addr: data, len: 1 }], []);
      driver.publish();
    };
    assert.equal(queue.enableNotify(), false);
    assert.equal(queue.availEvent(), 0);
    add();
    assert.equal(driver.needKick(), true, "first kick");
    add();
    assert.equal(driver.needKick(), false, "avail_event not advanced: no more kicks");
    queue.disableNotify();
    assert.equal(queue.usedFlags(), 0, "flags stay 0 under EVENT_IDX");
    assert.ok(walker.pop());
    assert.ok(walker.pop());
    assert.equal(queue.enableNotify(), false);
    assert.equal(queue.availEvent(), 2);
    add();
    assert.equal(driver.needKick(), true);
    queue.setAvailEvent(10);
    add();
    assert.equal(driver.needKick(), false);
  }
});

Deno.test("queue over a real memfd: QEMU's mapping and ours share the ring", () => {
  const fd = memfdCreate("vq");
  const size = 1 << 20;
  ftruncate(fd, size);
  try {
    using qemu = MemoryMapping.map(fd, size);
    using ours = MemoryMapping.map(fd, size);
    const memory = new GuestMemory([{
      guestPhysAddr: 0x4000_0000,
      userAddr: qemu.address,
      size,
      bytes: ours.view(0, size),
    }]);
    // The "guest" writes through QEMU's mapping (its own GuestMemory over it).
    const guestView = new GuestMemory([{
      guestPhysAddr: 0x4000_0000,
      userAddr: qemu.address,
      size,
      bytes: qemu.bytes,
    }]);
    const l = contiguousRingLayout(64);
    const driver = new SplitQueueDriver(guestView, {
      size: 64,
      desc: 0x4000_0000 + l.desc,
      avail: 0x4000_0000 + l.avail,
      used: 0x4000_0000 + l.used,
      eventIdx: true,
    });
    const queue = new SplitQueue(memory, {
      size: 64,
      desc: qemu.address + BigInt(l.desc),
      avail: qemu.address + BigInt(l.avail),
      used: qemu.address + BigInt(l.used),
      space: "user",
      features: VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC,
    });
    const walker = new ChainWalker(queue);
    const buf = 0x4000_0000 + 0x8000;
    guestView.translateGuest(buf, 5).set([104, 101, 108, 108, 111]);
    driver.addChain([{ addr: buf, len: 5 }], [{ addr: buf + 0x1000, len: 3 }]);
    driver.publish();
    const c = walker.pop();
    assert.ok(c);
    assert.equal(new TextDecoder().decode(c.readable[0]), "hello");
    assert.equal(c.readable[0]?.buffer, ours.bytes.buffer, "zero-copy view of our mapping");
    c.writable[0]?.set([1, 2, 3]);
    queue.push(c.head, 3);
    queue.publish();
    assert.deepEqual(driver.collectUsed(), [{ id: c.head, len: 3 }]);
    assert.deepEqual([...qemu.bytes.subarray(0x9000, 0x9003)], [1, 2, 3]);
    // Re-registering memory (a new generation) re-maps the rings transparently.
    memory.setRegions([{
      guestPhysAddr: 0x4000_0000,
      userAddr: qemu.address,
      size,
      bytes: ours.view(0, size),
    }]);
    assert.equal(queue.usedIdx(), 1);
    // Rings whose region disappears: a typed error.
    memory.clear();
    assert.throws(() => queue.availIdx(), RingConfigError);
  } finally {
    close(fd);
  }
});
