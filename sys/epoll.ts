/**
 * epoll(7) through libc. `epoll_event` is packed on x86_64: 12 bytes,
 * events (u32) at 0 and data (u64) at 4.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { lastErrno, SysError } from "./error.ts";
import { must, retry } from "./fd.ts";

/** epoll event bits and control operations. */
export const Epoll = {
  IN: 0x001,
  PRI: 0x002,
  OUT: 0x004,
  ERR: 0x008,
  HUP: 0x010,
  RDHUP: 0x2000,
  ONESHOT: 1 << 30,
  ET: 1 << 31,
  CTL_ADD: 1,
  CTL_DEL: 2,
  CTL_MOD: 3,
  CLOEXEC: 0o2000000,
} as const;

/** Size of one packed epoll_event. */
export const EPOLL_EVENT_SIZE = 12;

/** Creates an epoll instance (close-on-exec). */
export function epollCreate(): number {
  return must("epoll_create1", undefined, () => libc().epoll_create1(Epoll.CLOEXEC));
}

/** Adds, modifies or removes `fd` in the interest list; `data` comes back with each event. */
export function epollCtl(
  epfd: number,
  op: number,
  fd: number,
  events = 0,
  data: bigint = 0n,
): void {
  const ev = new Uint8Array(EPOLL_EVENT_SIZE);
  const dv = new DataView(ev.buffer);
  dv.setUint32(0, events >>> 0, true);
  dv.setBigUint64(4, data, true);
  const opName = op === Epoll.CTL_ADD ? "ADD" : op === Epoll.CTL_DEL ? "DEL" : "MOD";
  must(`epoll_ctl(${opName})`, `epfd ${epfd}, fd ${fd}`, () => libc().epoll_ctl(epfd, op, fd, ev));
}

/** A reusable buffer of epoll events with typed accessors. */
export class EpollEvents {
  /** Raw storage handed to epoll_wait. */
  readonly raw: Uint8Array;
  /** Capacity in events. */
  readonly capacity: number;
  #view: DataView;

  /** Allocates room for `capacity` events. */
  constructor(capacity = 64) {
    this.capacity = capacity;
    this.raw = new Uint8Array(capacity * EPOLL_EVENT_SIZE);
    this.#view = new DataView(this.raw.buffer);
  }

  /** Event bits of entry `i`. */
  events(i: number): number {
    return this.#view.getUint32(i * EPOLL_EVENT_SIZE, true);
  }

  /** User data of entry `i`. */
  data(i: number): bigint {
    return this.#view.getBigUint64(i * EPOLL_EVENT_SIZE + 4, true);
  }
}

/**
 * Waits on the calling (JS) thread; use only with `timeoutMs` 0 or for
 * short waits, since the whole isolate is blocked meanwhile.
 */
export function epollWait(epfd: number, out: EpollEvents, timeoutMs: number): number {
  return retry(
    "epoll_wait",
    `epfd ${epfd}`,
    () => libc().epoll_wait(epfd, out.raw, out.capacity, timeoutMs),
  ) ?? 0;
}

/**
 * Waits on Deno's blocking thread pool; the JS thread keeps running. Park at
 * most one of these per process: the pool's threads are few and shared with
 * all async file I/O.
 *
 * errno of a parked call belongs to the pool thread, so a failure is
 * re-diagnosed with a non-blocking call on this thread.
 */
export async function epollWaitParked(
  epfd: number,
  out: EpollEvents,
  timeoutMs: number,
): Promise<number> {
  const n = await libc().epoll_wait_parked(epfd, out.raw, out.capacity, timeoutMs);
  if (n >= 0) return n;
  const again = libc().epoll_wait(epfd, out.raw, out.capacity, 0);
  if (again >= 0) return again;
  const errno = lastErrno();
  if (errno === Errno.EINTR) return 0;
  throw new SysError("epoll_wait", errno, `epfd ${epfd}`);
}
