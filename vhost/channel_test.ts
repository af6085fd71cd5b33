import assert from "node:assert/strict";
import {
  close,
  eventfd,
  eventfdRead,
  eventfdWrite,
  EventLoop,
  isOpen,
  sendMsg,
  ShortReadError,
  socketpair,
} from "../sys/mod.ts";
import { frameMessage, FramingError, VhostUserChannel, type VhostUserFrame } from "./channel.ts";

interface Harness {
  loop: EventLoop;
  peer: number;
  frames: VhostUserFrame[];
  closed: Promise<Error | undefined>;
  channel: VhostUserChannel;
}

function harness(onMessage?: (f: VhostUserFrame) => void): Harness {
  const loop = new EventLoop();
  const [mine, peer] = socketpair();
  const frames: VhostUserFrame[] = [];
  let resolveClosed: (e: Error | undefined) => void = () => {};
  const closed = new Promise<Error | undefined>((r) => (resolveClosed = r));
  const channel = new VhostUserChannel(mine, loop, {
    onMessage: (f) => {
      frames.push(f);
      onMessage?.(f);
    },
    onClose: (e) => {
      resolveClosed(e);
      loop.stop();
    },
  }, { name: "test" });
  return { loop, peer, frames, closed, channel };
}

const u64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
};

Deno.test("messages split at every byte keep their fds with the right message", async () => {
  const h = harness();
  const kick = eventfd();
  const call = eventfd();
  const m1 = frameMessage(12, 1, u64(0n)); // SET_VRING_KICK, fd
  const m2 = frameMessage(3, 1); // SET_OWNER, no payload
  const m3 = frameMessage(13, 1, u64(1n)); // SET_VRING_CALL, fd
  const stream = [m1, m2, m3];
  const fdsFor = [[kick], [], [call]];
  // Byte by byte, fds attached to the first byte of their message.
  const writer = (async () => {
    for (let i = 0; i < stream.length; i++) {
      const m = stream[i]!;
      for (let b = 0; b < m.byteLength; b++) {
        sendMsg(h.peer, m.subarray(b, b + 1), b === 0 ? fdsFor[i]! : []);
        if (b % 5 === 0) await new Promise((r) => setTimeout(r, 0));
      }
    }
    close(h.peer);
  })();
  await h.loop.run();
  await writer;
  assert.equal(await h.closed, undefined);
  assert.deepEqual(h.frames.map((f) => [f.request, f.payload.byteLength, f.fds.length]), [
    [12, 8, 1],
    [3, 0, 0],
    [13, 8, 1],
  ]);
  assert.deepEqual(h.frames.map((f) => f.bytes), stream);
  // The received fds are the same kernel objects.
  eventfdWrite(h.frames[0]!.fds[0]!, 5n);
  eventfdWrite(h.frames[2]!.fds[0]!, 7n);
  assert.equal(eventfdRead(kick), 5n);
  assert.equal(eventfdRead(call), 7n);
  for (const f of h.frames) f.fds.forEach(close);
  close(kick);
  close(call);
  await h.loop.close();
});

Deno.test("an oversized payload size closes the channel with a FramingError", async () => {
  const h = harness();
  const hdr = frameMessage(5, 1);
  new DataView(hdr.buffer).setUint32(8, 1 << 30, true);
  sendMsg(h.peer, hdr);
  await h.loop.run();
  const err = await h.closed;
  assert.ok(err instanceof FramingError);
  assert.match(err.message, /payload size 1073741824 exceeds/);
  assert.ok(h.channel.closed);
  close(h.peer);
  await h.loop.close();
});

Deno.test("end of stream inside a message is a ShortReadError; its fds are released", async () => {
  const h = harness();
  const fd = eventfd();
  sendMsg(h.peer, frameMessage(5, 1, new Uint8Array(40)).subarray(0, 20), [fd]);
  close(h.peer);
  await h.loop.run();
  const err = await h.closed;
  assert.ok(err instanceof ShortReadError, String(err));
  assert.equal(h.frames.length, 0);
  close(fd);
  await h.loop.close();
});

Deno.test("sending more than the socket holds queues and drains in order", async () => {
  const h = harness();
  const payload = new Uint8Array(60_000);
  const count = 40; // ~2.4 MB: far beyond the socket buffer
  for (let i = 0; i < count; i++) {
    payload[0] = i;
    h.channel.send(frameMessage(100 + i, 1, payload.slice()));
  }
  assert.ok(h.channel.backlog > 0, "expected a backlog");
  // A second channel on the peer end receives them.
  const received: number[] = [];
  const peerLoop = h.loop;
  const reader = new VhostUserChannel(h.peer, peerLoop, {
    onMessage: (f) => {
      assert.equal(f.payload[0], received.length);
      received.push(f.request);
      if (received.length === count) peerLoop.stop();
    },
    onClose: () => {},
  }, { maxPayload: 65536 });
  await peerLoop.run();
  assert.equal(received.length, count);
  assert.deepEqual(received, Array.from({ length: count }, (_, i) => 100 + i));
  assert.equal(h.channel.backlog, 0);
  reader.close();
  h.channel.close();
  await h.loop.close();
});

Deno.test("send with closeFds hands fds over and closes the local copies", async () => {
  const h = harness();
  const fd = eventfd();
  const copy = eventfd();
  // Simulate a relay: send `copy` onward and drop it locally.
  h.channel.send(frameMessage(12, 1, u64(0n)), [copy], true);
  // Checked before anything is received: the kernel would reuse the number.
  assert.equal(isOpen(copy), false);
  const frames: VhostUserFrame[] = [];
  const reader = new VhostUserChannel(h.peer, h.loop, {
    onMessage: (f) => {
      frames.push(f);
      h.loop.stop();
    },
    onClose: () => {},
  });
  await h.loop.run();
  assert.equal(frames[0]!.fds.length, 1);
  frames[0]!.fds.forEach(close);
  close(fd);
  reader.close();
  h.channel.close();
  await h.loop.close();
});
