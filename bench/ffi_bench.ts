/**
 * Costs of the libc layer's primitives, measured side by side in one run:
 * a sync FFI call, a sync epoll_wait(…, 0), a parked (thread-pool) call, and
 * the wake-up latency of the EventLoop with busy polling off and on (an
 * eventfd ping-pong with a Worker thread running its own loop).
 *
 * Run: deno task bench:ffi [--rounds N] [--batches N]
 */
import {
  close,
  Epoll,
  epollCreate,
  EpollEvents,
  epollWait,
  epollWaitParked,
  eventfd,
  eventfdRead,
  eventfdWrite,
  EventLoop,
  lastErrno,
} from "../sys/mod.ts";
import type { BusyPollOptions } from "../sys/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const ROUNDS = arg("rounds", 2000);
const BATCHES = arg("batches", 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median over batches of the mean per-operation time of `fn`, in microseconds. */
async function perOp(n: number, fn: (n: number) => void | Promise<void>): Promise<number> {
  const samples: number[] = [];
  await fn(Math.min(n, 200)); // warm-up
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    await fn(n);
    samples.push(((performance.now() - t0) * 1000) / n);
  }
  return median(samples);
}

async function pingPong(
  busyPoll: BusyPollOptions,
  blocking = false,
): Promise<{ rtt: number; stats: string }> {
  const ping = eventfd();
  const pong = eventfd();
  const worker = new Worker(new URL("./_echo_worker.ts", import.meta.url), { type: "module" });
  const workerMessage = () =>
    new Promise<unknown>((resolve) => {
      worker.onmessage = (e) => resolve(e.data);
    });
  const ready = workerMessage();
  worker.postMessage({ ping, pong, busyPoll, blocking });
  await ready;

  const loop = new EventLoop(blocking ? { wait: "blocking", busyPoll } : { busyPoll });
  let remaining = 0;
  let done: () => void = () => {};
  loop.add(pong, Epoll.IN, () => {
    eventfdRead(pong);
    if (--remaining > 0) eventfdWrite(ping);
    else done();
  });
  const running = loop.run();
  const rtt = await perOp(ROUNDS, (n) =>
    new Promise<void>((resolve) => {
      remaining = n;
      done = resolve;
      eventfdWrite(ping);
    }));
  const s = loop.stats;
  loop.stop();
  void blocking;
  await running;
  await loop.close();
  const stopped = workerMessage();
  worker.postMessage("stop");
  // A blocking worker loop needs a nudge to read its messages.
  if (blocking) eventfdWrite(ping);
  await stopped;
  close(ping);
  close(pong);
  return {
    rtt,
    stats:
      `parked ${s.parkedWakeups}, blocking ${s.blockingWaits}, polls ${s.pollCalls} (${s.pollHits} hits)`,
  };
}

const epfd = epollCreate();
const events = new EpollEvents(8);
const syncCall = await perOp(200_000, (n) => {
  for (let i = 0; i < n; i++) lastErrno();
});
const syncPoll = await perOp(100_000, (n) => {
  for (let i = 0; i < n; i++) epollWait(epfd, events, 0);
});
const parkedCall = await perOp(2_000, async (n) => {
  for (let i = 0; i < n; i++) await epollWaitParked(epfd, events, 0);
});
close(epfd);

const parked = await pingPong({ minMicros: 0, maxMicros: 0 });
const busy = await pingPong({ minMicros: 20, maxMicros: 200 });
const blocking = await pingPong({ minMicros: 0, maxMicros: 0 }, true);
const blockingBusy = await pingPong({ minMicros: 20, maxMicros: 200 }, true);

const fmt = (us: number) => `${us.toFixed(us < 1 ? 3 : 1)} µs`;
console.log(
  `vfstrace FFI/event-loop costs (median of ${BATCHES} batches; Deno ${Deno.version.deno})`,
);
const rows: [string, number, string][] = [
  ["sync FFI call (__errno_location)", syncCall, ""],
  ["sync epoll_wait(…, 0), nothing ready", syncPoll, ""],
  ["parked epoll_wait(…, 0) round trip", parkedCall, ""],
  ["wake-up, parked loop (RTT/2)", parked.rtt / 2, parked.stats],
  ["wake-up, busy-poll loop (RTT/2)", busy.rtt / 2, busy.stats],
  ["wake-up, blocking loops (RTT/2)", blocking.rtt / 2, blocking.stats],
  ["wake-up, blocking + busy-poll (RTT/2)", blockingBusy.rtt / 2, blockingBusy.stats],
];
for (const [name, us, detail] of rows) {
  console.log(`  ${name.padEnd(40)} ${fmt(us).padStart(10)}  ${detail}`);
}
console.log(`ratio parked/busy-poll wake-up: ${(parked.rtt / busy.rtt).toFixed(1)}x`);
console.log(`ratio parked/blocking wake-up: ${(parked.rtt / blocking.rtt).toFixed(1)}x`);
console.log(`ratio parked call/sync call: ${(parkedCall / syncCall).toFixed(0)}x`);
