/**
 * One readiness loop for every fd vfstrace watches (sockets, kick and call
 * eventfds).
 *
 * Waiting costs differ by two orders of magnitude: a sync epoll_wait with
 * timeout 0 is well under a microsecond, while a parked (thread-pool)
 * epoll_wait pays a cross-thread hand-off on every wake-up. So after activity
 * the loop busy-polls synchronously for a short, adaptive window (a burst of
 * kicks is then served without a hand-off each), and only parks a single
 * epoll_wait for all fds when the window passes idle. Exactly one call is ever
 * parked, so the loop never takes more than one of Deno's pool threads.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { eventfd, eventfdRead, eventfdWrite } from "./eventfd.ts";
import { Epoll, epollCreate, epollCtl, EpollEvents, epollWait, epollWaitParked } from "./epoll.ts";
import { close } from "./fd.ts";
import { SysError } from "./error.ts";

/** Called with the ready event bits (`Epoll.IN`, `Epoll.OUT`, `Epoll.HUP`…). */
export type ReadyCallback = (events: number) => void;

/** Tuning of the adaptive busy-poll window, in microseconds. */
export interface BusyPollOptions {
  /** Smallest window; 0 disables busy polling entirely. */
  minMicros: number;
  /** Largest window the adaptation may grow to. */
  maxMicros: number;
}

/** Options for {@link EventLoop}. */
export interface EventLoopOptions {
  /** Events fetched per epoll_wait (default 64). */
  maxEvents?: number;
  /** Busy-poll window bounds (default 20–200 µs). */
  busyPoll?: BusyPollOptions;
  /**
   * Receives exceptions thrown by callbacks. By default the loop stops and
   * {@link EventLoop.run} rejects with the error.
   */
  onError?: (error: unknown, fd: number) => void;
  /**
   * How to wait when idle. `parked` (default): one nonblocking epoll_wait on
   * Deno's thread pool, the JS thread stays free. `blocking`: a sync
   * epoll_wait on the JS thread itself, for a Worker dedicated to the loop:
   * a wake-up is then a single kernel → thread hand-off, with no pool thread
   * and promise in between. JS timers and messages still run: the loop
   * yields to them at least every {@link maxBlockMs}.
   */
  wait?: "parked" | "blocking";
  /** Longest sync wait in `blocking` mode before timers and messages get a turn (default 10 ms). */
  maxBlockMs?: number;
}

/** Counters describing how the loop has been waking up. */
export interface EventLoopStats {
  /** Wake-ups from the parked epoll_wait. */
  parkedWakeups: number;
  /** Sync epoll_wait calls that blocked (`blocking` mode). */
  blockingWaits: number;
  /** Sync epoll_wait(…, 0) calls made while busy polling. */
  pollCalls: number;
  /** Busy-poll calls that found events. */
  pollHits: number;
  /** Callbacks invoked. */
  dispatched: number;
  /** Current busy-poll window in microseconds. */
  windowMicros: number;
}

interface Watcher {
  fd: number;
  events: number;
  callback: ReadyCallback;
}

/** How long a continuous busy streak may hold the JS thread before yielding to timers and I/O. */
const YIELD_EVERY_MS = 2;

function yieldToMacrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A readiness loop over raw fds. Register fds with {@link add}; {@link run}
 * dispatches until {@link stop}. Callbacks run on the JS thread, one at a
 * time; they must not block.
 */
export class EventLoop {
  #epfd: number;
  #wakeFd: number;
  #watchers = new Map<bigint, Watcher>();
  #tokens = new Map<number, bigint>();
  #nextToken = 1n;
  #events: EpollEvents;
  #busy: BusyPollOptions;
  #windowMicros: number;
  #onError: ((error: unknown, fd: number) => void) | undefined;
  #blocking: boolean;
  #maxBlockMs: number;
  #running: Promise<void> | null = null;
  #stopping = false;
  #woken = false;
  #failure: { error: unknown } | null = null;
  #closed = false;
  #stats = { parkedWakeups: 0, blockingWaits: 0, pollCalls: 0, pollHits: 0, dispatched: 0 };

  /** Creates the epoll instance and the internal wake-up eventfd. */
  constructor(options: EventLoopOptions = {}) {
    this.#events = new EpollEvents(options.maxEvents ?? 64);
    this.#busy = options.busyPoll ?? { minMicros: 20, maxMicros: 200 };
    this.#windowMicros = this.#busy.minMicros;
    this.#onError = options.onError;
    this.#blocking = options.wait === "blocking";
    this.#maxBlockMs = Math.max(1, Math.floor(options.maxBlockMs ?? 10));
    this.#epfd = epollCreate();
    this.#wakeFd = eventfd();
    // Token 0 is the wake-up fd.
    epollCtl(this.#epfd, Epoll.CTL_ADD, this.#wakeFd, Epoll.IN, 0n);
  }

  /** Snapshot of the wake-up counters. */
  get stats(): EventLoopStats {
    return { ...this.#stats, windowMicros: this.#windowMicros };
  }

  /** Number of fds being watched. */
  get size(): number {
    return this.#watchers.size;
  }

  /** Watches `fd` for `events` (level-triggered unless `Epoll.ET` is included). */
  add(fd: number, events: number, callback: ReadyCallback): void {
    this.#assertOpen();
    if (this.#tokens.has(fd)) throw new Error(`event loop: fd ${fd} is already watched`);
    const token = this.#nextToken++;
    epollCtl(this.#epfd, Epoll.CTL_ADD, fd, events, token);
    this.#watchers.set(token, { fd, events, callback });
    this.#tokens.set(fd, token);
  }

  /** Changes the events watched on `fd` (e.g. add `Epoll.OUT` while output is queued). */
  modify(fd: number, events: number): void {
    const token = this.#token(fd);
    const watcher = this.#watchers.get(token);
    if (watcher === undefined || watcher.events === events) return;
    epollCtl(this.#epfd, Epoll.CTL_MOD, fd, events, token);
    watcher.events = events;
  }

  /** Stops watching `fd`. Call before closing the fd. Events already fetched for it are dropped. */
  remove(fd: number): void {
    const token = this.#tokens.get(fd);
    if (token === undefined) return;
    this.#tokens.delete(fd);
    this.#watchers.delete(token);
    try {
      epollCtl(this.#epfd, Epoll.CTL_DEL, fd);
    } catch (err) {
      // Closing the last reference to a file already removed it from the set.
      if (!(err instanceof SysError && (err.code === "ENOENT" || err.code === "EBADF"))) throw err;
    }
  }

  /** True when `fd` is watched. */
  has(fd: number): boolean {
    return this.#tokens.has(fd);
  }

  /**
   * Dispatches readiness until {@link stop}. Resolves when stopped; rejects
   * with the first callback error if no `onError` was given.
   */
  run(): Promise<void> {
    this.#assertOpen();
    this.#running ??= this.#loop().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /**
   * The loop's wake-up eventfd. Writing it from another thread (or process)
   * makes a `blocking` loop yield to its JS event loop at once, e.g. so a
   * message posted to its Worker is delivered.
   */
  get wakeFd(): number {
    return this.#wakeFd;
  }

  /** Makes the loop yield to timers and messages soon (see {@link wakeFd}). */
  wake(): void {
    if (!this.#closed) eventfdWrite(this.#wakeFd);
  }

  /** Asks the loop to return; safe from callbacks and from outside. */
  stop(): void {
    this.#stopping = true;
    if (!this.#closed) eventfdWrite(this.#wakeFd);
  }

  /** Stops the loop, waits for it, and releases the epoll fd and wake-up fd. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.stop();
    try {
      await this.#running;
    } catch {
      // The error was already delivered to run()'s caller.
    }
    this.#closed = true;
    this.#watchers.clear();
    this.#tokens.clear();
    close(this.#epfd);
    close(this.#wakeFd);
  }

  /** `await using` support. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #token(fd: number): bigint {
    const token = this.#tokens.get(fd);
    if (token === undefined) throw new Error(`event loop: fd ${fd} is not watched`);
    return token;
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("event loop: already closed");
  }

  async #loop(): Promise<void> {
    this.#stopping = false;
    this.#failure = null;
    if (this.#blocking) return await this.#blockingLoop();
    const events = this.#events;
    while (!this.#stopping) {
      let n = await epollWaitParked(this.#epfd, events, -1);
      this.#stats.parkedWakeups++;
      let streakStart = performance.now();
      while (n > 0 && !this.#stopping) {
        if (!this.#dispatch(n)) break;
        n = await this.#busyPoll();
        if (performance.now() - streakStart > YIELD_EVERY_MS) {
          await yieldToMacrotasks();
          streakStart = performance.now();
          if (n === 0) n = epollWait(this.#epfd, events, 0);
        }
      }
      const failure = this.#failure as { error: unknown } | null;
      if (failure !== null) throw failure.error;
    }
    // Drain a stop request so the next run() starts clean.
    eventfdRead(this.#wakeFd);
  }

  /** The `blocking` mode: sync waits on this thread, bounded so timers and messages run. */
  async #blockingLoop(): Promise<void> {
    const events = this.#events;
    let lastYield = performance.now();
    while (!this.#stopping) {
      let n = epollWait(this.#epfd, events, this.#maxBlockMs);
      this.#stats.blockingWaits++;
      const dispatched = n > 0;
      while (n > 0 && !this.#stopping) {
        if (!this.#dispatch(n)) break;
        // After activity, spin briefly: the reply to what was just sent often comes soon.
        n = await this.#busyPoll();
        if (performance.now() - lastYield >= this.#maxBlockMs) break;
      }
      if (this.#failure !== null) break;
      if (n > 0) continue;
      // Promise continuations started by callbacks run here.
      await undefined;
      const now = performance.now();
      if (!dispatched || now - lastYield >= this.#maxBlockMs || this.#woken) {
        this.#woken = false;
        await yieldToMacrotasks();
        lastYield = performance.now();
      }
    }
    const failure = this.#failure as { error: unknown } | null;
    if (failure !== null) throw failure.error;
    eventfdRead(this.#wakeFd);
  }

  /**
   * Spins with non-blocking epoll_wait for up to the current window. Widens
   * the window when spinning pays off, narrows it when it does not.
   */
  async #busyPoll(): Promise<number> {
    const window = this.#windowMicros;
    if (window <= 0) return 0;
    const deadline = performance.now() + window / 1000;
    do {
      // Let promise continuations started by callbacks run between polls.
      await undefined;
      if (this.#stopping) return 0;
      const n = epollWait(this.#epfd, this.#events, 0);
      this.#stats.pollCalls++;
      if (n > 0) {
        this.#stats.pollHits++;
        this.#windowMicros = Math.min(this.#busy.maxMicros, window * 2);
        return n;
      }
    } while (performance.now() < deadline);
    this.#windowMicros = Math.max(this.#busy.minMicros, Math.floor(window / 2));
    return 0;
  }

  /** Runs the callbacks of `n` fetched events; false when one failed without onError. */
  #dispatch(n: number): boolean {
    const events = this.#events;
    for (let i = 0; i < n; i++) {
      const token = events.data(i);
      if (token === 0n) {
        eventfdRead(this.#wakeFd);
        // Someone wants the JS thread (a message, stop): yield soon.
        this.#woken = true;
        continue;
      }
      const watcher = this.#watchers.get(token);
      if (watcher === undefined) continue; // removed by an earlier callback in this batch
      this.#stats.dispatched++;
      try {
        watcher.callback(events.events(i));
      } catch (error) {
        if (this.#onError !== undefined) {
          this.#onError(error, watcher.fd);
        } else {
          this.#failure = { error };
          this.#stopping = true;
          return false;
        }
      }
    }
    return true;
  }
}
