/**
 * Regression tests for what the hostile-guest corpus (tests/hostile/) found
 * in the device: a corrupt avail idx, requests around INIT, replies that do
 * not fit, FORGETs that do not decode.
 */
import assert from "node:assert/strict";
import { eventfdWrite } from "../sys/mod.ts";
import { encodeRequest, Opcode } from "../decode/fuse.ts";
import { Errno } from "../sys/errno.ts";
import { rig } from "./_testing.ts";

Deno.test("an avail idx jumping past the ring breaks that queue only; the device serves on", async () => {
  const r = await rig({ queueSize: 64 });
  try {
    assert.equal((await r.init()).header.error, 0);
    const q0 = r.queues[0]!;
    const lost = q0.submit(
      encodeRequest({ header: { opcode: Opcode.STATFS, unique: 99n } }, r.session),
      4096,
      {
        mutate: (driver) => driver.setAvailIdx(driver.availIdx + 65),
      },
    );
    lost.catch(() => {});
    await Promise.resolve();
    await Promise.resolve();
    eventfdWrite(q0.kickFd);
    for (let i = 0; i < 100 && r.device.problems.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.match(r.device.problems.join("\n"), /queue 0: avail idx jumped by 65 > size 64/);
    // The request queue and the connection are fine.
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, 0);
  } finally {
    await r.close();
  }
});

Deno.test("requests before INIT and a second INIT get EIO; after DESTROY, INIT again", async () => {
  const r = await rig();
  try {
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, -Errno.EIO);
    assert.equal((await r.init()).header.error, 0);
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, 0);
    assert.equal((await r.init()).header.error, -Errno.EIO);
    // Unmount and mount again on the same device: DESTROY, then a fresh INIT is served.
    assert.equal((await r.call("DESTROY", {})).header.error, 0);
    assert.equal((await r.init()).header.error, 0);
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, 0);
  } finally {
    await r.close();
  }
});

Deno.test("a reply that does not fit the buffers is ERANGE; under 16 bytes of room, nothing", async () => {
  const r = await rig();
  try {
    await r.init();
    const getattr = () =>
      encodeRequest(
        { header: { opcode: Opcode.GETATTR, unique: 7n, nodeid: 1n }, arg: {} },
        r.session,
      );
    const small = await r.queues[1]!.submit(getattr(), 100);
    assert.equal(small.len, 16);
    const dv = new DataView(small.bytes.buffer, small.bytes.byteOffset);
    assert.equal(dv.getUint32(0, true), 16);
    assert.equal(dv.getInt32(4, true), -Errno.ERANGE);
    const tiny = await r.queues[1]!.submit(getattr(), 8);
    assert.equal(tiny.len, 0);
  } finally {
    await r.close();
  }
});

Deno.test("an undecodable BATCH_FORGET gets no reply, even with room for one", async () => {
  const r = await rig();
  try {
    await r.init();
    const b = encodeRequest({
      header: { opcode: Opcode.BATCH_FORGET, unique: 9n },
      items: [{ nodeid: 5n, nlookup: 1n }],
    }, r.session);
    new DataView(b.buffer).setUint32(40, 1000, true); // count lies
    const done = await r.queues[0]!.submit(b, 4096);
    assert.equal(done.len, 0);
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, 0);
  } finally {
    await r.close();
  }
});

Deno.test("a request with unique 0 gets no reply (it would read as a notification)", async () => {
  const r = await rig();
  try {
    await r.init();
    const b = encodeRequest(
      { header: { opcode: Opcode.GETATTR, unique: 0n, nodeid: 1n }, arg: {} },
      r.session,
    );
    assert.equal((await r.queues[1]!.submit(b, 4096)).len, 0);
    assert.equal((await r.call("GETATTR", { arg: {} })).header.error, 0);
  } finally {
    await r.close();
  }
});
