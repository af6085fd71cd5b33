/**
 * Unit tests of the tracing proxy without QEMU: the built-in front-end
 * (client/) plays the guest, an in-process fake back-end serves the rings,
 * and the proxy sits between them on socketpairs, all on one event loop.
 */
import assert from "node:assert/strict";
import { EventLoop, isOpen, socketpair } from "../sys/mod.ts";
import {
  type DriverQueue,
  FEATURE_EVENT_IDX,
  FEATURE_INDIRECT_DESC,
  FEATURE_PROTOCOL_FEATURES,
  FEATURE_VERSION_1,
  type FrontendDirection,
  PROTOCOL_FEATURE,
  QueueError,
  VhostUserFrontend,
  type VringOrder,
} from "../client/mod.ts";
import {
  FakeBackend,
  type FakeBackendOptions,
  fuseishReply,
  fuseishRequest,
  OUT_HEADER,
  parseFuseishReply,
} from "../client/_fake_backend.ts";
import { openFds, sameEventfd } from "../client/_testing.ts";
import {
  decodeMessage,
  VHOST_USER_PROTOCOL_F,
  type VhostUserMessage,
  VIRTIO_F,
} from "../decode/vhost_user.ts";
import { DescFlags } from "../virtq/mod.ts";
import { TraceProxy } from "./proxy.ts";
import { MemoryRecorder, type RecordedEvent, VhostDirection } from "./recorder.ts";

type Of<K extends RecordedEvent["kind"]> = Extract<RecordedEvent, { kind: K }>;

const LOG_ALL = 1n << BigInt(VIRTIO_F.VHOST_F_LOG_ALL);
const P = (name: keyof typeof VHOST_USER_PROTOCOL_F) => 1n << BigInt(VHOST_USER_PROTOCOL_F[name]);

/** What the fake offers: the brief's feature set, with what the proxy must hide. */
const OFFERED = FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC | FEATURE_EVENT_IDX |
  FEATURE_PROTOCOL_FEATURES | LOG_ALL;
const OFFERED_PROTOCOL = P("MQ") | P("REPLY_ACK") | P("CONFIGURE_MEM_SLOTS") |
  P("HOST_NOTIFIER") | P("LOG_SHMFD");

interface Rig {
  loop: EventLoop;
  running: Promise<void>;
  fake: FakeBackend;
  proxy: TraceProxy;
  rec: MemoryRecorder;
  fe: VhostUserFrontend;
  /** The front-end's transcript: direction and decoded message. */
  transcript: { direction: FrontendDirection; message: VhostUserMessage }[];
  /** The proxy's two socket fds (owned by it). */
  proxyFds: number[];
  /** All four socketpair fds: front-end, proxy front, proxy back, fake back-end. */
  sockets: number[];
  logs: string[];
}

function rig(
  options: {
    fake?: Partial<Omit<FakeBackendOptions, "fd" | "loop">>;
    onBackendRequest?: (m: VhostUserMessage) => bigint | number | void;
    vringOrder?: VringOrder;
  } = {},
): Rig {
  const loop = new EventLoop();
  const running = loop.run();
  const [feSock, proxyFront] = socketpair();
  const [proxyBack, beSock] = socketpair();
  const fake = new FakeBackend({
    fd: beSock,
    loop,
    features: OFFERED,
    protocolFeatures: OFFERED_PROTOCOL,
    queueNum: 2,
    ...options.fake,
  });
  const rec = new MemoryRecorder();
  const logs: string[] = [];
  const proxy = new TraceProxy({
    frontendFd: proxyFront,
    backendFd: proxyBack,
    loop,
    recorder: rec,
    log: (m) => logs.push(m),
  });
  const transcript: Rig["transcript"] = [];
  const handler = options.onBackendRequest;
  const fe = new VhostUserFrontend(feSock, {
    loop,
    name: "test front-end",
    onMessage: (direction, message) => transcript.push({ direction, message }),
    ...(handler === undefined ? {} : { onBackendRequest: (r) => handler(r.message) }),
    ...(options.vringOrder === undefined ? {} : { vringOrder: options.vringOrder }),
  });
  return {
    loop,
    running,
    fake,
    proxy,
    rec,
    fe,
    transcript,
    proxyFds: [proxyFront, proxyBack],
    sockets: [feSock, proxyFront, proxyBack, beSock],
    logs,
  };
}

async function teardown(r: Rig): Promise<void> {
  await r.fe.close();
  await r.proxy.done;
  r.fake.close();
  r.loop.stop();
  await r.running;
  await r.loop.close();
}

function events<K extends RecordedEvent["kind"]>(rec: MemoryRecorder, kind: K): Of<K>[] {
  return rec.events.filter((e): e is Of<K> => e.kind === kind);
}

function vhostNames(rec: MemoryRecorder, direction: VhostDirection): string[] {
  return events(rec, "vhost")
    .filter((e) => e.direction === direction)
    .map((e) => decodeMessage(e.bytes, e.fdCount, { channel: "frontend", fds: "report" }).name);
}

/** Deterministic bytes (xorshift), so a failure is reproducible. */
function bytesFor(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s & 0xff;
  }
  return out;
}

/** Runs `make(i)` for i < total with at most `concurrency` running at once. */
async function pump(
  total: number,
  concurrency: number,
  make: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < total) await make(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test("control plane: masked features, one extra shadow region, shadow rings, proxy eventfds", async () => {
  const r = rig();
  try {
    // Asking for CONFIGURE_MEM_SLOTS: the proxy hides it, so memory goes by SET_MEM_TABLE.
    const queues = await r.fe.start({
      negotiate: { memSlots: true },
      memory: { size: 16 << 20, regions: 2 },
    });
    const neg = r.fe.negotiated!;

    // The front-end sees the offer without what the proxy cannot relay.
    assert.equal(neg.offeredFeatures, OFFERED & ~LOG_ALL);
    assert.equal(neg.offeredProtocolFeatures, P("MQ") | P("REPLY_ACK"));
    assert.equal(neg.features, OFFERED & ~LOG_ALL);
    assert.equal(neg.protocolFeatures, P("MQ") | P("REPLY_ACK"));
    const masked = events(r.rec, "note").filter((e) => e.note.type === "features_masked");
    assert.equal(masked.length, 2);
    const virtio = masked.find((e) => e.note.what === "virtio")!;
    const protocol = masked.find((e) => e.note.what === "protocol")!;
    assert.match(String(virtio.note.masked), /VHOST_F_LOG_ALL/);
    for (const name of ["LOG_SHMFD", "HOST_NOTIFIER", "CONFIGURE_MEM_SLOTS"]) {
      assert.match(String(protocol.note.masked), new RegExp(name));
    }
    assert.doesNotMatch(String(protocol.note.masked), /REPLY_ACK|\bMQ\b/);

    // The back-end runs its shadow rings without EVENT_IDX; everything else as acked.
    const setFeatures = r.fake.received("SET_FEATURES");
    assert.equal(setFeatures.length, 1);
    assert.equal(r.fake.features, neg.features & ~FEATURE_EVENT_IDX);
    assert.equal(r.fake.protocolFeatures, P("MQ") | P("REPLY_ACK"));
    // REPLY_ACK reaches the back-end: NEED_REPLY is relayed on messages without a reply.
    assert.equal(r.fake.received("SET_OWNER")[0]!.needReply, true);
    assert.equal(r.fake.received("SET_PROTOCOL_FEATURES")[0]!.needReply, false);
    assert.equal(r.fake.received("ADD_MEM_REG").length, 0);

    // One memory table, the guest's two regions unchanged plus the shadow region.
    const tables = r.fake.received("SET_MEM_TABLE");
    assert.equal(tables.length, 1);
    const table = tables[0]!;
    assert.ok(table.payload.kind === "memory_table");
    const guest = r.fe.memory!.wireRegions();
    assert.equal(table.payload.regions.length, guest.length + 1);
    assert.equal(table.fds.count, guest.length + 1);
    assert.deepEqual(table.payload.regions.slice(0, guest.length), guest);
    const shadow = table.payload.regions[guest.length]!;
    for (const g of guest) {
      assert.ok(shadow.guestPhysAddr >= g.guestPhysAddr + g.memorySize, "shadow gpa overlaps");
      assert.ok(shadow.userspaceAddr >= g.userspaceAddr + g.memorySize, "shadow uaddr overlaps");
    }
    assert.equal(r.fake.regions.length, guest.length + 1);

    const inShadow = (a: bigint) =>
      a >= shadow.userspaceAddr && a < shadow.userspaceAddr + shadow.memorySize;
    for (const q of queues) {
      const fq = r.fake.queue(q.index)!;
      const addr = fq.addr!;
      for (const a of [addr.descUserAddr, addr.availUserAddr, addr.usedUserAddr]) {
        assert.ok(inShadow(a), `queue ${q.index}: ring 0x${a.toString(16)} outside the shadow`);
      }
      // The guest's own rings are in guest RAM, which the back-end never serves.
      assert.ok(!inShadow(q.userAddresses.desc));
      // The back-end holds the proxy's eventfds, not the front-end's.
      assert.ok(fq.kickFd >= 0 && fq.callFd >= 0);
      assert.equal(sameEventfd(q.kickFd, fq.kickFd), false, `queue ${q.index} kick`);
      assert.equal(sameEventfd(q.callFd, fq.callFd), false, `queue ${q.index} call`);
      // …and the ring it serves is the shadow one: enabled, right size.
      assert.equal(fq.size, q.size);
      assert.equal(fq.enabled, true);
    }
    assert.deepEqual(r.fake.problems, []);
    assert.deepEqual(r.logs, []);
  } finally {
    await teardown(r);
  }
});

Deno.test("data plane: 1000 requests (64 in flight) plus hiprio all complete and are paired", async () => {
  const r = rig({ fake: { reorder: true } });
  try {
    // Tight memory in four regions of one memfd: buffers spread over regions at
    // non-zero file offsets, and submissions wait when memory runs out.
    const [hiprio, requests] = await r.fe.start({
      queueSize: [32, 256],
      memory: { size: 512 << 10, regions: 4, oneFile: true },
    }) as [
      DriverQueue,
      DriverQueue,
    ];
    const submitted = new Map<bigint, { request: Uint8Array; reply: Uint8Array }>();
    const addrs = new Set<number>();
    const check = async (q: DriverQueue, i: number) => {
      const unique = BigInt(q.index) << 32n | BigInt(i);
      const payload = bytesFor(i + q.index * 100_000, (i * 37) % 2000);
      const request = fuseishRequest(unique, 15, payload);
      const full = OUT_HEADER + payload.byteLength;
      // Mostly room to spare; every 7th is too small, and the reply is cut to fit.
      const capacity = i % 7 === 3 ? OUT_HEADER + (payload.byteLength >> 1) : full + (i % 5) * 8;
      const readable = i % 4 === 0 ? [request.subarray(0, 40), request.subarray(40)] : request;
      const c = await q.submit(readable, capacity, {
        writableSegments: 1 + (i % 3),
        indirect: i % 3 === 0,
        // Not a mutation: only notes where the buffers went.
        mutate: (_driver, _head, chain) => addrs.add(Number(chain.writable[0]!.addr)),
      });
      const expected = fuseishReply(request).subarray(0, capacity);
      assert.equal(c.len, expected.byteLength);
      assert.deepEqual(c.bytes, expected);
      const h = parseFuseishReply(c.bytes);
      assert.equal(h.unique, unique);
      assert.equal(h.error, 0);
      submitted.set(unique, { request, reply: c.bytes });
    };
    await Promise.all([
      pump(1000, 64, (i) => check(requests, i)),
      pump(100, 8, (i) => check(hiprio, i)),
    ]);
    const regions = r.fe.memory!.regions;
    const regionOf = (a: number) => regions.findIndex((g) => a < Number(g.guestPhysAddr) + g.size);
    assert.ok(new Set([...addrs].map(regionOf)).size >= 2, "buffers never left region 0");
    assert.ok(r.fake.regions.some((g) => g.mmapOffset > 0n));
    assert.equal(requests.stats.completed, 1000);
    assert.equal(requests.stats.peakInFlight, 64);
    assert.equal(hiprio.stats.completed, 100);
    assert.equal(r.proxy.counts.requests, 1100);
    assert.equal(r.proxy.counts.replies, 1100);
    assert.equal(r.proxy.counts.malformed, 0);
    assert.equal(r.fake.queue(1)!.served, 1000);
    assert.ok(r.fake.queue(1)!.peakBatch > 1, "the back-end never saw a batch");
    // The proxy relays every chain as one indirect descriptor.
    assert.equal(r.fake.queue(1)!.indirectChains, 1000);

    // GET_VRING_BASE answers with the guest-side index.
    assert.equal(await r.fe.getVringBase(1), requests.availIdx);
    assert.equal(requests.availIdx, 1000);
    assert.equal(await r.fe.getVringBase(0), 100);

    // Every request is recorded with its reply, the bytes both sides saw.
    const reqs = events(r.rec, "request");
    const reps = events(r.rec, "reply");
    assert.equal(reqs.length, 1100);
    assert.equal(reps.length, 1100);
    const bySeq = new Map(reqs.map((e) => [e.seq, e]));
    const paired = new Set<number>();
    for (const rep of reps) {
      const req = bySeq.get(rep.requestSeq);
      assert.ok(req !== undefined, `reply to unknown request ${rep.requestSeq}`);
      assert.ok(!paired.has(rep.requestSeq), `request ${rep.requestSeq} answered twice`);
      paired.add(rep.requestSeq);
      assert.equal(rep.queue, req.queue);
      assert.equal(rep.head, req.head);
      assert.ok(rep.latencyNs > 0n, `latency ${rep.latencyNs}`);
      const unique = new DataView(req.bytes.buffer).getBigUint64(8, true);
      const sent = submitted.get(unique)!;
      assert.deepEqual(req.bytes, sent.request);
      assert.deepEqual(rep.bytes, sent.reply);
    }
    assert.equal(paired.size, 1100);

    await r.fe.close();
    await r.proxy.done;
    // The control plane is recorded in order, exactly as the front-end sent and received it.
    const sent = r.transcript.filter((t) => t.direction === "sent").map((t) => t.message.name);
    const received = r.transcript.filter((t) => t.direction === "received").map((t) =>
      t.message.name
    );
    assert.deepEqual(vhostNames(r.rec, VhostDirection.FrontToBack), sent);
    assert.deepEqual(vhostNames(r.rec, VhostDirection.BackToFront), received);
    assert.deepEqual(r.fake.messages.map((m) => m.name), sent);
    const order = events(r.rec, "vhost").map((e) =>
      `${e.direction === VhostDirection.FrontToBack ? "sent" : "received"} ${
        decodeMessage(e.bytes, e.fdCount, { channel: "frontend", fds: "report" }).name
      }`
    );
    assert.deepEqual(
      order,
      r.transcript.map((t) => `${t.direction} ${t.message.name}`),
    );
    assert.deepEqual(r.fake.problems, []);
  } finally {
    await teardown(r);
  }
});

Deno.test("a descriptor loop is recorded as malformed and returned with len 0; the rest go on", async () => {
  const r = rig();
  try {
    const queues = await r.fe.start({ queueSize: 64 });
    const q = queues[1]!;
    const ok = (i: number) => q.submit(fuseishRequest(BigInt(i), 1, bytesFor(i, 100)), 200);
    const before = await Promise.all([ok(1), ok(2), ok(3)]);
    // In one batch: good, looped, good. The loop: the head points back at itself.
    const batch = [
      ok(4),
      q.submit(fuseishRequest(99n, 1, bytesFor(99, 100)), 200, {
        mutate: (driver, head, chain) => {
          const b = chain.readable[0]!;
          driver.writeDescriptor(head, {
            addr: b.addr,
            len: b.len,
            flags: DescFlags.NEXT,
            next: head,
          });
        },
      }),
      ok(5),
    ];
    const [four, bad, five] = await Promise.all(batch);
    for (const [c, u] of [[before[0]!, 1n], [four!, 4n], [five!, 5n]] as const) {
      assert.equal(parseFuseishReply(c.bytes).unique, u);
    }
    assert.equal(bad!.len, 0);
    assert.equal(bad!.bytes.byteLength, 0);
    // Later requests still work.
    assert.equal(parseFuseishReply((await ok(6)).bytes).unique, 6n);

    const malformed = events(r.rec, "malformed");
    assert.equal(malformed.length, 1);
    assert.equal(malformed[0]!.queue, 1);
    assert.equal(malformed[0]!.head, bad!.head);
    assert.match(malformed[0]!.reason, /loop/);
    assert.equal(r.proxy.counts.malformed, 1);
    // The back-end never saw it.
    assert.equal(r.fake.queue(1)!.served, 6);
    assert.deepEqual(r.fake.problems, []);
    assert.equal(events(r.rec, "request").length, 6);
    assert.equal(events(r.rec, "reply").length, 6);

    // The guest ring is one ahead of the shadow ring; GET_VRING_BASE is translated.
    assert.equal(q.availIdx, 7);
    assert.equal(await r.fe.getVringBase(1), 7);
    const backendReply = events(r.rec, "vhost")
      .filter((e) => e.direction === VhostDirection.BackToFront)
      .map((e) => decodeMessage(e.bytes, e.fdCount, { channel: "frontend" }))
      .findLast((m) => m.name === "GET_VRING_BASE")!;
    assert.ok(backendReply.payload.kind === "vring_state");
    assert.equal(backendReply.payload.num, 6);
  } finally {
    await teardown(r);
  }
});

Deno.test("an indirect chain longer than the ring is relayed (as Linux sends 1 MiB requests); past 1024 it is malformed", async () => {
  const r = rig();
  try {
    const queues = await r.fe.start({ queueSize: 64 });
    const q = queues[1]!;
    // The request as 1-byte readable descriptors after a 40-byte header, one indirect table.
    const chain = (unique: bigint, n: number) => {
      const req = fuseishRequest(unique, 1, bytesFor(Number(unique), n));
      return q.submit(
        [
          req.subarray(0, 40),
          ...Array.from({ length: n }, (_, i) => req.subarray(40 + i, 41 + i)),
        ],
        200,
        {
          indirect: true,
        },
      );
    };
    const long = await chain(7n, 299);
    assert.equal(parseFuseishReply(long.bytes).unique, 7n);
    const tooLong = await chain(8n, 1100);
    assert.equal(tooLong.len, 0);
    const malformed = events(r.rec, "malformed");
    assert.equal(malformed.length, 1);
    assert.match(malformed[0]!.reason, /chain-too-long/);
    assert.equal(events(r.rec, "request")[0]!.bytes.byteLength, 40 + 299);
  } finally {
    await teardown(r);
  }
});

Deno.test("the back-end closing mid-session ends the proxy and releases every fd", async () => {
  const baseline = openFds();
  const r = rig();
  // Loop and socketpairs: everything but the session's own fds.
  const withLoop = openFds();
  const queues = await r.fe.start({ memory: { size: 8 << 20 } });
  const q = queues[1]!;
  for (let i = 0; i < 5; i++) await q.submit(fuseishRequest(BigInt(i), 1, bytesFor(i, 64)), 128);
  r.fake.pause();
  const stuck = Array.from(
    { length: 10 },
    (_, i) => q.submit(fuseishRequest(BigInt(100 + i), 1, bytesFor(i, 64)), 128),
  );
  const settled = Promise.allSettled(stuck);
  await until("the proxy to take the stuck requests", () => r.proxy.counts.requests === 15);
  assert.ok(openFds().length > withLoop.length + 8, "the session holds fds");

  r.fake.close();
  const end = await r.proxy.done;
  assert.equal(end.closedBy, "backend");
  assert.equal(end.error, undefined);
  assert.equal(end.requests, 15);
  assert.equal(end.replies, 5);
  assert.ok(events(r.rec, "note").some((e) => e.note.type === "stop"));

  // The proxy closed the front-end's socket; requests in flight fail, typed.
  assert.equal(await r.fe.disconnected, undefined);
  for (const s of await settled) {
    assert.equal(s.status, "rejected");
    assert.ok(s.reason instanceof QueueError, String(s.reason));
  }
  await assert.rejects(r.fe.request("GET_FEATURES"), { name: "FrontendClosedError" });

  // Only the front-end's own fds (memfds, its queues' eventfds) are left beyond the loop's.
  for (const fd of r.proxyFds) assert.equal(isOpen(fd), false, `proxy socket ${fd}`);
  const feOwned = [
    ...r.fe.memory!.regions.map((x) => x.fd),
    ...queues.flatMap((x) => [x.kickFd, x.callFd]),
  ];
  const sockets = new Set(r.sockets);
  const expected = [...withLoop.filter((fd) => !sockets.has(fd)), ...feOwned];
  assert.deepEqual(openFds(), expected.sort((a, b) => a - b));

  await r.fe.close();
  r.loop.stop();
  await r.running;
  await r.loop.close();
  assert.deepEqual(openFds(), baseline);
});

Deno.test("the backend channel is relayed both ways and recorded", async () => {
  const seen: string[] = [];
  const r = rig({
    fake: { protocolFeatures: OFFERED_PROTOCOL | PROTOCOL_FEATURE.BACKEND_REQ },
    onBackendRequest: (m) => {
      seen.push(m.name);
      return seen.length === 1 ? 0 : 7;
    },
  });
  try {
    await r.fe.start({ negotiate: { backendChannel: true } });
    assert.equal(r.fe.negotiated!.backendChannel, true);
    assert.equal(r.fake.received("SET_BACKEND_REQ_FD")[0]!.fds.count, 1);
    assert.equal(await r.fake.backendRequest("BACKEND_CONFIG_CHANGE_MSG"), 0n);
    assert.equal(await r.fake.backendRequest("BACKEND_CONFIG_CHANGE_MSG"), 7n);
    assert.deepEqual(seen, ["BACKEND_CONFIG_CHANGE_MSG", "BACKEND_CONFIG_CHANGE_MSG"]);
    const dirs = events(r.rec, "vhost").map((e) => e.direction);
    assert.equal(dirs.filter((d) => d === VhostDirection.BackendChannelRequest).length, 2);
    assert.equal(dirs.filter((d) => d === VhostDirection.BackendChannelReply).length, 2);
  } finally {
    await teardown(r);
  }
});

for (
  const [order, usedIdxOnBase] of [
    ["base-before-addr", "ring"],
    ["base-before-addr", "base"],
    ["base-after-addr", "ring"],
    ["base-after-addr", "base"],
  ] as const
) {
  Deno.test(`stop with untaken chains, restart (${order}, used idx from ${usedIdxOnBase}): re-delivered`, async () => {
    const r = rig({ vringOrder: order, fake: { usedIdxOnBase } });
    try {
      const queues = await r.fe.start({ queueSize: 16 });
      const q = queues[1]!;
      const submit = (i: number) => q.submit(fuseishRequest(BigInt(i), 1, bytesFor(i, 50)), 100);
      await Promise.all([submit(0), submit(1)]);
      r.fake.pause();
      const held = [submit(2), submit(3), submit(4)];
      await until("the proxy to place them", () => r.proxy.counts.requests === 5);
      assert.equal(q.availIdx, 5);

      // The back-end took 2; the 3 in the shadow ring go back to the guest's count.
      const base = await r.fe.getVringBase(1);
      assert.equal(base, 2);
      const pending = events(r.rec, "note").find((e) =>
        e.note.type === "vring_stopped_with_pending"
      );
      assert.equal(pending?.note.unconsumed, 3);

      r.fake.resume(); // stopped by GET_VRING_BASE: serves nothing yet
      assert.equal(r.fake.queue(1)!.served, 2);
      await r.fe.restartQueue(1);
      const done = await Promise.all(held);
      assert.deepEqual(done.map((c) => parseFuseishReply(c.bytes).unique), [2n, 3n, 4n]);
      assert.equal(parseFuseishReply((await submit(5)).bytes).unique, 5n);
      assert.equal(r.fake.queue(1)!.served, 6);
      // The re-delivered chains are recorded again; every reply pairs with the latest record.
      assert.equal(events(r.rec, "request").length, 9);
      const reps = events(r.rec, "reply");
      assert.equal(reps.length, 6);
      const seqs = new Set(reps.map((e) => e.requestSeq));
      assert.equal(seqs.size, 6);
      assert.deepEqual(r.fake.problems, []);
    } finally {
      await teardown(r);
    }
  });
}
