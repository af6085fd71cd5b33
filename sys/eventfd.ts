/**
 * eventfd(2): the kick and call notifications of vhost-user queues.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { must, retry } from "./fd.ts";

/** eventfd flags (x86_64). */
export const EventFdFlags = {
  EFD_SEMAPHORE: 1,
  EFD_CLOEXEC: 0o2000000,
  EFD_NONBLOCK: 0o4000,
} as const;

/** Creates an eventfd, nonblocking and close-on-exec unless `flags` says otherwise. */
export function eventfd(
  initial = 0,
  flags: number = EventFdFlags.EFD_CLOEXEC | EventFdFlags.EFD_NONBLOCK,
): number {
  return must("eventfd", undefined, () => libc().eventfd(initial, flags));
}

const scratch = new BigUint64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);

/** Adds `value` to the counter (signals the waiter). Returns false if it would overflow. */
export function eventfdWrite(fd: number, value: bigint = 1n): boolean {
  scratch[0] = value;
  return retry("write(eventfd)", `fd ${fd}`, () => libc().write(fd, scratchBytes, 8n)) !== null;
}

/**
 * Reads and resets the counter; returns 0n when nothing was signalled
 * (nonblocking eventfd).
 */
export function eventfdRead(fd: number): bigint {
  const n = retry("read(eventfd)", `fd ${fd}`, () => libc().read(fd, scratchBytes, 8n));
  return n === null ? 0n : scratch[0] ?? 0n;
}
