/**
 * Test helpers shared by the client and trace tests: fd accounting and
 * eventfd identity.
 *
 * @module
 */
import { eventfdRead, eventfdWrite, isOpen } from "../sys/mod.ts";

/**
 * The open fd numbers below `limit`, probed with fcntl (reading
 * /proc/self/fd would need --allow-all).
 */
export function openFds(limit = 4096): number[] {
  const out: number[] = [];
  for (let fd = 0; fd < limit; fd++) if (isOpen(fd)) out.push(fd);
  return out;
}

const MARK = 1n << 40n;

/**
 * Whether eventfds `a` and `b` are the same kernel object: a mark written
 * to `a` shows up when reading `b` only then. Synchronous, so no loop
 * callback can take the count in between; counts found are put back.
 */
export function sameEventfd(a: number, b: number): boolean {
  const before = eventfdRead(b);
  eventfdWrite(a, MARK);
  const seen = eventfdRead(b);
  const rest = eventfdRead(a);
  if (before > 0n) eventfdWrite(b, before);
  if (rest > MARK) eventfdWrite(a, rest - MARK);
  return seen >= MARK;
}
