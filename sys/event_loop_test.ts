import assert from "node:assert/strict";
import { close, Epoll, eventfd, eventfdRead, eventfdWrite, EventLoop } from "./mod.ts";

Deno.test("event loop wakes from park on an eventfd written by a timer", async () => {
  await using loop = new EventLoop();
  const fd = eventfd();
  const seen: bigint[] = [];
  loop.add(fd, Epoll.IN, () => {
    seen.push(eventfdRead(fd));
    if (seen.length === 3) loop.stop();
  });
  let timerFired = 0;
  const tick = setInterval(() => {
    timerFired++;
    eventfdWrite(fd, BigInt(timerFired));
  }, 5);
  await loop.run();
  clearInterval(tick);
  // The JS thread kept running timers while epoll_wait was parked.
  assert.deepEqual(seen, [1n, 2n, 3n]);
  assert.ok(loop.stats.parkedWakeups >= 3);
  loop.remove(fd);
  close(fd);
});

Deno.test("a burst is served by the busy poll, not by parked wake-ups", async () => {
  await using loop = new EventLoop({ busyPoll: { minMicros: 2000, maxMicros: 4000 } });
  const a = eventfd();
  const b = eventfd();
  let rounds = 0;
  // Ping-pong on two fds within one thread: each callback arms the other fd.
  loop.add(a, Epoll.IN, () => {
    eventfdRead(a);
    eventfdWrite(b);
  });
  loop.add(b, Epoll.IN, () => {
    eventfdRead(b);
    if (++rounds === 200) loop.stop();
    else eventfdWrite(a);
  });
  eventfdWrite(a);
  await loop.run();
  const s = loop.stats;
  assert.equal(rounds, 200);
  assert.ok(s.pollHits >= 390, `poll hits ${s.pollHits}`);
  assert.ok(s.parkedWakeups <= 2, `parked wake-ups ${s.parkedWakeups}`);
  for (const fd of [a, b]) {
    loop.remove(fd);
    close(fd);
  }
});

Deno.test("busy polling can be disabled: every wake-up is parked", async () => {
  await using loop = new EventLoop({ busyPoll: { minMicros: 0, maxMicros: 0 } });
  const a = eventfd();
  let n = 0;
  loop.add(a, Epoll.IN, () => {
    eventfdRead(a);
    if (++n === 20) loop.stop();
    else setTimeout(() => eventfdWrite(a), 0);
  });
  eventfdWrite(a);
  await loop.run();
  assert.equal(loop.stats.pollCalls, 0);
  assert.ok(loop.stats.parkedWakeups >= 20);
  loop.remove(a);
  close(a);
});

Deno.test("a callback error stops the loop and rejects run(); onError keeps it going", async () => {
  {
    await using loop = new EventLoop();
    const fd = eventfd(1);
    loop.add(fd, Epoll.IN, () => {
      throw new Error("handler broke");
    });
    await assert.rejects(loop.run(), /handler broke/);
    loop.remove(fd);
    close(fd);
  }
  {
    const errors: number[] = [];
    await using loop = new EventLoop({ onError: (_e, fd) => errors.push(fd) });
    const bad = eventfd(1);
    const good = eventfd(1);
    loop.add(bad, Epoll.IN, () => {
      loop.remove(bad);
      throw new Error("once");
    });
    loop.add(good, Epoll.IN, () => {
      eventfdRead(good);
      loop.stop();
    });
    await loop.run();
    assert.deepEqual(errors, [bad]);
    loop.remove(good);
    close(bad);
    close(good);
  }
});

Deno.test("removing an fd drops its pending events; re-adding and misuse are errors", async () => {
  await using loop = new EventLoop();
  const a = eventfd(1);
  const b = eventfd(1);
  const calls: string[] = [];
  loop.add(a, Epoll.IN, () => {
    calls.push("a");
    loop.remove(b);
    eventfdRead(a);
    setTimeout(() => loop.stop(), 10);
  });
  loop.add(b, Epoll.IN, () => {
    calls.push("b");
    loop.remove(a);
    eventfdRead(b);
    setTimeout(() => loop.stop(), 10);
  });
  await loop.run();
  assert.equal(calls.length, 1);
  assert.throws(() => loop.add(calls[0] === "a" ? a : b, Epoll.IN, () => {}), /already watched/);
  assert.throws(() => loop.modify(999, Epoll.IN), /not watched/);
  loop.remove(a);
  loop.remove(b);
  close(a);
  close(b);
  await loop.close();
  assert.throws(() => loop.add(1, Epoll.IN, () => {}), /closed/);
});

Deno.test("async file I/O keeps working while the loop is parked", async () => {
  await using loop = new EventLoop();
  const running = loop.run();
  const dir = await Deno.makeTempDir();
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => Deno.writeTextFile(`${dir}/f${i}`, `${i}`)),
  );
  const back = await Promise.all(
    Array.from({ length: 40 }, (_, i) => Deno.readTextFile(`${dir}/f${i}`)),
  );
  assert.deepEqual(back, Array.from({ length: 40 }, (_, i) => `${i}`));
  await Deno.remove(dir, { recursive: true });
  loop.stop();
  await running;
});
