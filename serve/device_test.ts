/**
 * The vhost-user device without QEMU: the built-in front-end negotiates,
 * shares memory and drives the rings; the device serves a temporary directory.
 */
import assert from "node:assert/strict";
import {
  FEATURE_EVENT_IDX,
  FEATURE_INDIRECT_DESC,
  FEATURE_PROTOCOL_FEATURES,
  FEATURE_VERSION_1,
  PROTOCOL_FEATURE,
} from "../client/mod.ts";
import { InitFlags } from "../decode/fuse.ts";
import { Errno } from "../sys/errno.ts";
import { allInitFlags, rig } from "./_testing.ts";
import { deviceProtocolFeatures, MAX_MEM_SLOTS } from "./device.ts";

const flag = (n: string) => InitFlags.bit(n)!;

Deno.test("control plane: features, queues, config tag, memory slots, clean disconnect", async () => {
  const r = await rig({ tag: "myfs", requestQueues: 2, memSlots: true });
  try {
    const neg = r.fe.negotiated!;
    assert.equal(
      neg.offeredFeatures,
      FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC | FEATURE_EVENT_IDX | FEATURE_PROTOCOL_FEATURES,
    );
    assert.equal(neg.offeredProtocolFeatures, deviceProtocolFeatures(true));
    assert.equal(
      neg.protocolFeatures & PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS,
      PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS,
    );
    assert.equal(neg.queueNum, 3);
    assert.equal(neg.maxMemSlots, MAX_MEM_SLOTS);
    assert.equal(r.queues.length, 3);
    const cfg = await r.fe.getVirtioFsConfig();
    assert.equal(cfg.tag, "myfs");
    assert.equal(cfg.numRequestQueues, 2);
    // Requests are served on every request queue, and on hiprio.
    assert.equal((await r.init()).header.error, 0);
    for (const q of [0, 1, 2]) {
      const rep = await r.call("GETATTR", { nodeid: 1n, arg: {} }, { queue: q });
      assert.equal(rep.header.error, 0);
    }
    assert.deepEqual(r.device.problems, []);
  } finally {
    await r.close();
  }
  // No tag: CONFIG is not offered (QEMU supplies the tag itself).
  assert.equal(deviceProtocolFeatures(false) & PROTOCOL_FEATURE.CONFIG, 0n);
});

Deno.test("INIT: minor negotiated down, 1 MiB writes, flags fit the options", async () => {
  const r = await rig();
  try {
    const rep = await r.init(38);
    const a = rep.arg!;
    assert.equal(a.major, 7);
    assert.equal(a.minor, 38);
    assert.equal(a.max_write, 1 << 20);
    assert.equal(a.max_pages, 256);
    const flags = BigInt(a.flags as number) | (BigInt(a.flags2 as number) << 32n);
    assert.notEqual(flags & flag("DO_READDIRPLUS"), 0n);
    assert.notEqual(flags & flag("MAX_PAGES"), 0n);
    // Locks stay in the guest unless asked for; no writeback cache, no DAX.
    assert.equal(flags & flag("POSIX_LOCKS"), 0n);
    assert.equal(flags & flag("FLOCK_LOCKS"), 0n);
    assert.equal(flags & flag("WRITEBACK_CACHE"), 0n);
    assert.equal(flags & ~allInitFlags(), 0n);
    assert.equal(r.device.server.session.minor, 38);
  } finally {
    await r.close();
  }
  const old = await rig();
  try {
    assert.equal((await old.init(30)).header.error, -Errno.EPROTO);
  } finally {
    await old.close();
  }
  const locks = await rig({ posixLock: true, flock: true });
  try {
    const a = (await locks.init(38)).arg!;
    assert.notEqual(BigInt(a.flags as number) & flag("POSIX_LOCKS"), 0n);
    assert.notEqual(BigInt(a.flags as number) & flag("FLOCK_LOCKS"), 0n);
  } finally {
    await locks.close();
  }
});

Deno.test("data plane: concurrent requests, EVENT_IDX suppresses calls, GET_VRING_BASE stops", async () => {
  const r = await rig();
  try {
    await r.init();
    const n = 200;
    const replies = await Promise.all(
      Array.from({ length: n }, () => r.call("GETATTR", { nodeid: 1n, arg: {} })),
    );
    assert.ok(replies.every((x) => x.header.error === 0));
    const st = r.device.stats;
    assert.ok(st.requests >= n + 1);
    // Batches of completions share one call: fewer calls than requests.
    assert.ok(st.calls < st.requests, `calls ${st.calls} < requests ${st.requests}`);
    assert.equal(r.device.running(1), true);
    const base = await r.fe.getVringBase(1);
    assert.equal(base, n + 1);
    assert.equal(r.device.running(1), false);
  } finally {
    await r.close();
  }
});

Deno.test("unserved opcodes answer ENOSYS, as the reference daemons do", async () => {
  const r = await rig();
  try {
    await r.init();
    for (const name of ["BMAP", "POLL"] as const) {
      const rep = await r.call(name, { nodeid: 1n, arg: {} });
      assert.equal(rep.header.error, -Errno.ENOSYS, name);
    }
    // xattrs are off unless asked for.
    const x = await r.call("LISTXATTR", { nodeid: 1n, arg: { size: 0 } });
    assert.equal(x.header.error, -Errno.ENOSYS);
  } finally {
    await r.close();
  }
});
