import assert from "node:assert/strict";
import {
  accept,
  close,
  connectUnix,
  eventfd,
  eventfdRead,
  eventfdWrite,
  ftruncate,
  isOpen,
  listenUnix,
  MAX_FDS_PER_MESSAGE,
  memfdCreate,
  MemoryMapping,
  pread,
  pwrite,
  recvExact,
  recvMsg,
  sendAll,
  sendMsg,
  ShortReadError,
  shutdown,
  Sock,
  socketpair,
  SysError,
  TruncatedControlError,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function withPair(fn: (a: number, b: number) => void): void {
  const [a, b] = socketpair();
  try {
    fn(a, b);
  } finally {
    close(a);
    close(b);
  }
}

Deno.test("socketpair passes a memfd; both mappings see the same bytes", () => {
  withPair((a, b) => {
    const memfd = memfdCreate("vfstrace-test");
    ftruncate(memfd, 8192);
    pwrite(memfd, enc.encode("guest ram"), 4096);
    assert.equal(sendMsg(a, enc.encode("SET_MEM_TABLE"), [memfd]), 13);
    const buf = new Uint8Array(64);
    const got = recvMsg(b, buf);
    assert.ok(got);
    assert.equal(dec.decode(buf.subarray(0, got.bytes)), "SET_MEM_TABLE");
    assert.equal(got.fds.length, 1);
    const received = got.fds[0]!;
    assert.notEqual(received, memfd);

    using local = MemoryMapping.map(memfd, 8192);
    using remote = MemoryMapping.map(received, 8192);
    assert.equal(dec.decode(remote.view(4096, 9)), "guest ram");
    remote.bytes[100] = 0x5a;
    assert.equal(local.bytes[100], 0x5a);
    local.view(200, 4).set([1, 2, 3, 4]);
    const back = new Uint8Array(4);
    assert.equal(pread(received, back, 200), 4);
    assert.deepEqual([...back], [1, 2, 3, 4]);
    close(received);
    close(memfd);
  });
});

Deno.test("an eventfd passed over a socket signals the original", () => {
  withPair((a, b) => {
    const kick = eventfd();
    sendAll(a, new Uint8Array([1]), [kick]);
    const fds = recvExact(b, new Uint8Array(1));
    assert.ok(fds);
    assert.equal(fds.length, 1);
    assert.equal(eventfdRead(kick), 0n);
    eventfdWrite(fds[0]!, 3n);
    eventfdWrite(fds[0]!, 4n);
    assert.equal(eventfdRead(kick), 7n);
    close(fds[0]!);
    close(kick);
  });
});

Deno.test("up to 8 fds travel in one message, in order; a 9th is refused", () => {
  withPair((a, b) => {
    const fds = Array.from({ length: MAX_FDS_PER_MESSAGE }, () => eventfd());
    sendMsg(a, [enc.encode("he"), enc.encode("llo")], fds);
    const buf = new Uint8Array(16);
    const got = recvMsg(b, buf);
    assert.ok(got);
    assert.equal(dec.decode(buf.subarray(0, got.bytes)), "hello");
    assert.equal(got.fds.length, 8);
    // Order is preserved: signal each received fd i with i+1 and read the originals.
    got.fds.forEach((fd, i) => eventfdWrite(fd, BigInt(i + 1)));
    assert.deepEqual(fds.map((fd) => eventfdRead(fd)), [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    assert.throws(() => sendMsg(a, enc.encode("x"), [...fds, fds[0]!]), (e: unknown) => {
      assert.ok(e instanceof SysError);
      assert.equal(e.code, "EINVAL");
      return true;
    });
    [...fds, ...got.fds].forEach(close);
  });
});

Deno.test("more fds than the receiver allows is a TruncatedControlError, not silence", () => {
  withPair((a, b) => {
    const fds = [eventfd(), eventfd(), eventfd()];
    sendMsg(a, enc.encode("x"), fds);
    assert.throws(() => recvMsg(b, new Uint8Array(4), 1), TruncatedControlError);
    fds.forEach(close);
  });
});

Deno.test("recvExact: clean EOF is null, EOF mid-message is ShortReadError", () => {
  withPair((a, b) => {
    sendAll(a, enc.encode("abc"));
    shutdown(a, Sock.SHUT_WR);
    assert.throws(() => recvExact(b, new Uint8Array(12)), (e: unknown) => {
      assert.ok(e instanceof ShortReadError);
      assert.equal(e.expected, 12);
      assert.equal(e.received, 3);
      return true;
    });
  });
  withPair((a, b) => {
    shutdown(a, Sock.SHUT_WR);
    assert.equal(recvExact(b, new Uint8Array(12)), null);
  });
});

Deno.test("a short read closes the fds it already received", () => {
  withPair((a, b) => {
    const e1 = eventfd();
    sendMsg(a, enc.encode("ab"), [e1]);
    shutdown(a, Sock.SHUT_WR);
    // The kernel gives the received copy the lowest free number: find it.
    const probe = eventfd();
    close(probe);
    assert.throws(() => recvExact(b, new Uint8Array(4)), ShortReadError);
    assert.equal(isOpen(probe), false);
    close(e1);
  });
});

Deno.test("listen/connect/accept on a path; nonblocking accept with nothing pending is null", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/vhost.sock`;
  const listener = listenUnix(path, { nonblocking: true });
  try {
    assert.equal(accept(listener), null);
    const client = connectUnix(path);
    const server = accept(listener);
    assert.ok(server !== null);
    sendAll(client, enc.encode("ping"));
    const buf = new Uint8Array(4);
    assert.deepEqual(recvExact(server, buf), []);
    assert.equal(dec.decode(buf), "ping");
    close(client);
    close(server);
    // replace: a stale socket file does not stop a new listener.
    const again = listenUnix(path, { replace: true });
    close(again);
  } finally {
    close(listener);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("errors name the call, the subject and errno", () => {
  assert.throws(() => connectUnix("/nonexistent/vfstrace.sock"), (e: unknown) => {
    assert.ok(e instanceof SysError);
    assert.equal(e.call, "connect");
    assert.equal(e.code, "ENOENT");
    assert.equal(e.errno, 2);
    assert.match(e.message, /connect\(\/nonexistent\/vfstrace\.sock\): ENOENT \(No such file/);
    return true;
  });
  assert.throws(() => close(987654), (e: unknown) => e instanceof SysError && e.code === "EBADF");
  assert.equal(isOpen(987654), false);
  assert.throws(() => listenUnix("x".repeat(200)), /ENAMETOOLONG/);
});
