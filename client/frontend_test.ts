import assert from "node:assert/strict";
import { EventLoop, socketpair } from "../sys/mod.ts";
import { VhostUserChannel } from "../vhost/channel.ts";
import { encodeMessage, type VhostUserMessage } from "../decode/vhost_user.ts";
import {
  FEATURE_EVENT_IDX,
  FEATURE_INDIRECT_DESC,
  FEATURE_PROTOCOL_FEATURES,
  FEATURE_VERSION_1,
  FeatureNegotiationError,
  FrontendClosedError,
  type FrontendOptions,
  GuestMemoryExhaustedError,
  PROTOCOL_FEATURE,
  ProtocolError,
  QueueError,
  ReplyAckError,
  VhostUserFrontend,
} from "./mod.ts";
import {
  FakeBackend,
  type FakeBackendOptions,
  fuseishReply,
  fuseishRequest,
  parseFuseishReply,
} from "./_fake_backend.ts";
import { openFds, sameEventfd } from "./_testing.ts";

interface Direct {
  loop: EventLoop;
  running: Promise<void>;
  fake: FakeBackend;
  fe: VhostUserFrontend;
  sent: VhostUserMessage[];
}

/** Front-end and fake back-end on a socketpair, one loop. */
function direct(
  fake: Partial<Omit<FakeBackendOptions, "fd" | "loop">> = {},
  fe: Omit<FrontendOptions, "loop" | "onMessage"> = {},
): Direct {
  const loop = new EventLoop();
  const running = loop.run();
  const [a, b] = socketpair();
  const sent: VhostUserMessage[] = [];
  return {
    loop,
    running,
    fake: new FakeBackend({ fd: b, loop, ...fake }),
    fe: new VhostUserFrontend(a, {
      loop,
      onMessage: (d, m) => {
        if (d === "sent") sent.push(m);
      },
      ...fe,
    }),
    sent,
  };
}

async function teardown(d: Direct): Promise<void> {
  await d.fe.close();
  d.fake.close();
  d.loop.stop();
  await d.running;
  await d.loop.close();
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

function request(i: number, size = 32): Uint8Array {
  return fuseishRequest(BigInt(i), 1, new Uint8Array(size).fill(i & 0xff));
}

Deno.test("negotiation: QEMU's order, the offered subset, NEED_REPLY only where acks apply", async () => {
  const d = direct();
  try {
    const neg = await d.fe.negotiate();
    assert.deepEqual(d.sent.map((m) => m.name), [
      "GET_FEATURES",
      "GET_PROTOCOL_FEATURES",
      "SET_PROTOCOL_FEATURES",
      "GET_QUEUE_NUM",
      "SET_OWNER",
      "SET_FEATURES",
    ]);
    const all = FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC | FEATURE_EVENT_IDX |
      FEATURE_PROTOCOL_FEATURES;
    assert.equal(neg.offeredFeatures, all);
    assert.equal(neg.features, all);
    assert.equal(d.fake.features, all);
    // CONFIGURE_MEM_SLOTS is offered but was not asked for.
    assert.equal(
      neg.protocolFeatures,
      PROTOCOL_FEATURE.MQ | PROTOCOL_FEATURE.REPLY_ACK | PROTOCOL_FEATURE.CONFIG,
    );
    assert.equal(neg.queueNum, 2);
    assert.equal(neg.maxMemSlots, undefined);
    assert.equal(neg.backendChannel, false);
    const needReply = Object.fromEntries(d.fake.messages.map((m) => [m.name, m.needReply]));
    assert.deepEqual(needReply, {
      GET_FEATURES: false,
      GET_PROTOCOL_FEATURES: false,
      SET_PROTOCOL_FEATURES: false,
      GET_QUEUE_NUM: false,
      SET_OWNER: true,
      SET_FEATURES: true,
    });
  } finally {
    await teardown(d);
  }
});

Deno.test("without PROTOCOL_FEATURES: no protocol messages, no acks, rings start enabled", async () => {
  const d = direct({ features: FEATURE_VERSION_1 | FEATURE_EVENT_IDX });
  try {
    const queues = await d.fe.start({ memory: { size: 4 << 20 } });
    assert.equal(queues.length, 2);
    assert.equal(d.fe.negotiated!.protocolFeatures, 0n);
    const names = d.sent.map((m) => m.name);
    assert.ok(!names.includes("GET_PROTOCOL_FEATURES"));
    assert.ok(!names.includes("SET_VRING_ENABLE"));
    assert.ok(d.sent.every((m) => !m.needReply));
    const c = await queues[1]!.submit(request(5), 64);
    assert.equal(parseFuseishReply(c.bytes).unique, 5n);
  } finally {
    await teardown(d);
  }
});

Deno.test("a required feature missing is a FeatureNegotiationError", async () => {
  const d = direct({ features: FEATURE_EVENT_IDX });
  try {
    await assert.rejects(d.fe.negotiate(), (e: unknown) => {
      assert.ok(e instanceof FeatureNegotiationError);
      assert.equal(e.missing, FEATURE_VERSION_1);
      return true;
    });
  } finally {
    await teardown(d);
  }
});

Deno.test("a non-zero REPLY_ACK is a ReplyAckError naming the message; nothing leaks", async () => {
  const baseline = openFds();
  const d = direct({ ackFailures: { SET_VRING_ADDR: 22n } });
  await assert.rejects(d.fe.start({ memory: { size: 4 << 20 } }), (e: unknown) => {
    assert.ok(e instanceof ReplyAckError);
    assert.equal(e.messageName, "SET_VRING_ADDR");
    assert.equal(e.code, 22n);
    assert.match(e.message, /rejected SET_VRING_ADDR \(REPLY_ACK 22\)/);
    return true;
  });
  assert.equal(d.fe.queue(0), undefined);
  // The connection is still usable.
  const reply = await d.fe.request("GET_QUEUE_NUM");
  assert.ok(reply?.payload.kind === "u64" && reply.payload.value === 2n);
  await teardown(d);
  assert.deepEqual(openFds(), baseline);
});

Deno.test("GET_CONFIG reads the virtio-fs tag; without CONFIG it is refused", async () => {
  const d = direct();
  try {
    await d.fe.negotiate();
    const cfg = await d.fe.getVirtioFsConfig();
    assert.equal(cfg.tag, "fake-fs");
    assert.equal(cfg.numRequestQueues, 1);
  } finally {
    await teardown(d);
  }
  const e = direct({ protocolFeatures: PROTOCOL_FEATURE.REPLY_ACK });
  try {
    await e.fe.negotiate();
    await assert.rejects(e.fe.getConfig(), FeatureNegotiationError);
  } finally {
    await teardown(e);
  }
});

Deno.test("memory by ADD_MEM_REG (CONFIGURE_MEM_SLOTS), two regions of one memfd", async () => {
  const d = direct({ maxMemSlots: 4 });
  try {
    const queues = await d.fe.start({
      negotiate: { memSlots: true },
      memory: { size: 2 << 20, regions: 2, oneFile: true },
    });
    assert.equal(d.fe.negotiated!.maxMemSlots, 4);
    assert.equal(d.fake.received("SET_MEM_TABLE").length, 0);
    const adds = d.fake.received("ADD_MEM_REG");
    assert.equal(adds.length, 2);
    assert.ok(adds.every((m) => m.fds.count === 1));
    assert.deepEqual(d.fake.regions, d.fe.memory!.wireRegions());
    // Fill region 0 so request buffers land in region 1, at a non-zero file offset.
    const mem = d.fe.memory!;
    const filler = mem.alloc(mem.regions[0]!.size - 64 * 1024);
    const c = await queues[1]!.submit(request(9, 40_000), 40_100);
    assert.equal(parseFuseishReply(c.bytes).unique, 9n);
    assert.deepEqual(c.bytes, fuseishReply(request(9, 40_000)));
    mem.free(filler);
  } finally {
    await teardown(d);
  }
  const e = direct();
  try {
    await e.fe.negotiate();
    await assert.rejects(
      e.fe.setMemory({ size: 1 << 20 }, { mode: "slots" }),
      FeatureNegotiationError,
    );
  } finally {
    await teardown(e);
  }
});

Deno.test("queue set-up: the back-end holds our own kick and call eventfds", async () => {
  const d = direct();
  try {
    const queues = await d.fe.start({ memory: { size: 4 << 20 } });
    for (const q of queues) {
      const fq = d.fake.queue(q.index)!;
      assert.equal(sameEventfd(q.kickFd, fq.kickFd), true);
      assert.equal(sameEventfd(q.callFd, fq.callFd), true);
      assert.equal(sameEventfd(q.kickFd, fq.callFd), false);
      assert.equal(fq.addr!.descUserAddr, q.userAddresses.desc);
      assert.equal(fq.enabled, true);
    }
  } finally {
    await teardown(d);
  }
});

Deno.test("EVENT_IDX: kicks the device did not ask for are suppressed", async () => {
  const d = direct();
  try {
    const [, q] = await d.fe.start({ memory: { size: 4 << 20 } });
    assert.equal(q!.eventIdx, true);
    d.fake.pause();
    const first = q!.submit(request(1), 64);
    await tick();
    // avail_event still says 0: the device wants no kick for the second one.
    const second = q!.submit(request(2), 64);
    await tick();
    assert.deepEqual([q!.stats.kicks, q!.stats.suppressedKicks], [1, 1]);
    d.fake.resume();
    await Promise.all([first, second]);
    // Serving moved avail_event on: the next request kicks again.
    await q!.submit(request(3), 64);
    assert.deepEqual([q!.stats.kicks, q!.stats.suppressedKicks], [2, 1]);
    assert.ok(q!.stats.notifications >= 2);
  } finally {
    await teardown(d);
  }
  // Without EVENT_IDX a paused device never sets NO_NOTIFY: every publish kicks.
  const e = direct();
  try {
    await e.fe.negotiate({ features: FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC });
    await e.fe.setMemory({ size: 4 << 20 });
    const q = await e.fe.setupQueue(1);
    assert.equal(q.eventIdx, false);
    e.fake.pause();
    const a = q.submit(request(1), 64);
    await tick();
    const b = q.submit(request(2), 64);
    await tick();
    assert.deepEqual([q.stats.kicks, q.stats.suppressedKicks], [2, 0]);
    e.fake.resume();
    await Promise.all([a, b]);
  } finally {
    await teardown(e);
  }
});

Deno.test("driver queue: out of descriptors, requests wait in order; segments and indirect", async () => {
  const d = direct();
  try {
    await d.fe.negotiate();
    await d.fe.setMemory({ size: 4 << 20 });
    const small = await d.fe.setupQueue(0, { size: 4 });
    d.fake.pause();
    const order: number[] = [];
    const all = Array.from({ length: 6 }, (_, i) =>
      small.submit(request(i), 64).then((c) => {
        order.push(Number(parseFuseishReply(c.bytes).unique));
        return c;
      }));
    await tick();
    assert.equal(small.inFlight, 2); // 2 descriptors each, 4 in the ring
    assert.equal(small.backlog, 4);
    d.fake.resume();
    await Promise.all(all);
    assert.equal(small.backlog, 0);
    assert.deepEqual(order.toSorted(), [0, 1, 2, 3, 4, 5]);

    const ind = await d.fe.setupQueue(1, { size: 8, indirect: true });
    const req = request(7, 300);
    const c = await ind.submit(
      [req.subarray(0, 40), req.subarray(40, 100), req.subarray(100)],
      400,
      {
        writableSegments: 5,
      },
    );
    assert.deepEqual(c.bytes, fuseishReply(req));
    assert.equal(d.fake.queue(1)!.indirectChains, 1);
    // A direct chain on the same queue when asked.
    await ind.submit(req, 400, { indirect: false });
    assert.equal(d.fake.queue(1)!.indirectChains, 1);
    assert.equal(d.fake.queue(1)!.served, 2);
    // A reply cut short by a small capacity.
    const short = await ind.submit(req, 20);
    assert.equal(short.len, 20);
    assert.deepEqual(short.bytes, fuseishReply(req).subarray(0, 20));
    // A raw hook that throws rejects its request; the chain still completes unseen.
    await assert.rejects(
      ind.submit(req, 400, {
        mutate: () => {
          throw new Error("hook failed");
        },
      }),
      /hook failed/,
    );
    assert.deepEqual((await ind.submit(req, 400)).bytes, fuseishReply(req));
    await assert.rejects(small.submit(new Uint8Array(0), 0), RangeError);
    await assert.rejects(small.submit(req, 10, { writableSegments: 4 }), QueueError);
  } finally {
    await teardown(d);
  }
});

Deno.test("driver queue: a request larger than all of memory fails with nothing in flight", async () => {
  const d = direct();
  try {
    const [q] = await d.fe.start({ memory: { size: 1 << 20 } });
    await assert.rejects(q!.submit(request(1), 2 << 20), GuestMemoryExhaustedError);
    assert.equal((await q!.submit(request(2), 64)).len, 64 - 16);
  } finally {
    await teardown(d);
  }
});

Deno.test("backend channel: requests reach the handler and are acked with its answer", async () => {
  const seen: string[] = [];
  const d = direct(
    { protocolFeatures: PROTOCOL_FEATURE.REPLY_ACK | PROTOCOL_FEATURE.BACKEND_REQ },
    {
      onBackendRequest: (r) => {
        seen.push(r.message.name);
        if (seen.length === 2) throw new Error("handler failed");
        return seen.length === 3 ? 9 : undefined;
      },
    },
  );
  try {
    const neg = await d.fe.negotiate({ backendChannel: true });
    assert.equal(neg.backendChannel, true);
    assert.equal(d.fake.received("SET_BACKEND_REQ_FD")[0]!.fds.count, 1);
    assert.equal(await d.fake.backendRequest("BACKEND_CONFIG_CHANGE_MSG"), 0n);
    assert.equal(await d.fake.backendRequest("BACKEND_CONFIG_CHANGE_MSG"), 1n);
    assert.equal(await d.fake.backendRequest("BACKEND_CONFIG_CHANGE_MSG"), 9n);
    assert.equal(seen.length, 3);
  } finally {
    await teardown(d);
  }
});

Deno.test("the back-end going away fails pending work with typed errors; every fd is released", async () => {
  const baseline = openFds();
  const d = direct();
  const [, q] = await d.fe.start({ memory: { size: 4 << 20 } });
  d.fake.pause();
  const pending = q!.submit(request(1), 64);
  await tick();
  d.fake.close();
  assert.equal(await d.fe.disconnected, undefined);
  assert.equal(d.fe.connected, false);
  await assert.rejects(pending, (e: unknown) => {
    assert.ok(e instanceof QueueError);
    assert.ok(e.cause instanceof FrontendClosedError);
    return true;
  });
  await assert.rejects(q!.submit(request(2), 64), QueueError);
  await assert.rejects(d.fe.request("GET_FEATURES"), FrontendClosedError);
  await teardown(d);
  assert.deepEqual(openFds(), baseline);
});

Deno.test("a reply to the wrong request, or an unsolicited one, is a ProtocolError", async () => {
  const loop = new EventLoop();
  const running = loop.run();
  const [a, b] = socketpair();
  // A peer that answers every request with a GET_QUEUE_NUM reply.
  const peer = new VhostUserChannel(b, loop, {
    onMessage: (f) => {
      peer.send(encodeMessage({
        channel: "frontend",
        request: f.request === 1 ? "GET_QUEUE_NUM" : f.request,
        isReply: true,
        payload: { kind: "u64", value: 0n },
      }));
    },
    onClose: () => {},
  });
  const fe = new VhostUserFrontend(a, { loop });
  await assert.rejects(fe.request("GET_FEATURES"), (e: unknown) => {
    assert.ok(e instanceof ProtocolError);
    assert.match(e.message, /GET_QUEUE_NUM reply while waiting for GET_FEATURES/);
    return true;
  });
  assert.ok((await fe.disconnected) instanceof ProtocolError);
  await fe.close();
  peer.close();
  loop.stop();
  await running;
  await loop.close();
});

Deno.test("teardown stops each queue with GET_VRING_BASE; its own loop is closed too", async () => {
  const baseline = openFds();
  // The fake on a loop of its own; the front-end creates and closes one itself.
  const loop = new EventLoop();
  const running = loop.run();
  const [a, b] = socketpair();
  const fake = new FakeBackend({ fd: b, loop });
  const fe = new VhostUserFrontend(a);
  const queues = await fe.start({ memory: { size: 4 << 20 } });
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => queues[i % 2]!.submit(request(i), 64)),
  );
  assert.ok(results.every((c, i) => parseFuseishReply(c.bytes).unique === BigInt(i)));
  await fe.close();
  await fe.close(); // idempotent
  const stops = fake.received("GET_VRING_BASE");
  assert.deepEqual(stops.map((m) => m.payload.kind === "vring_state" && m.payload.index), [0, 1]);
  assert.equal(fake.queue(0)!.stopped, true);
  assert.equal(fake.queue(1)!.queue!.lastAvailIdx, 20);
  assert.equal(await fake.closed, undefined);
  fake.close();
  loop.stop();
  await running;
  await loop.close();
  assert.deepEqual(openFds(), baseline);
});
