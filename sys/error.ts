/**
 * Typed errors of the libc layer. Each names the call that failed and what it
 * was working on, so a message read in a log is enough to act on.
 *
 * @module
 */
import { errnoName } from "./errno.ts";
import { libc } from "./_libc.ts";

/** A libc call returned -1; carries errno by number and by name. */
export class SysError extends Error {
  /** The libc function that failed, e.g. `"connect"`. */
  readonly call: string;
  /** errno as returned by the kernel. */
  readonly errno: number;
  /** errno's symbolic name, e.g. `"ENOENT"`. */
  readonly code: string;
  /** What the call was applied to (a path, an fd), if known. */
  readonly subject: string | undefined;

  /** Creates the error for `call` failing with `errno` on `subject`. */
  constructor(call: string, errno: number, subject?: string) {
    const code = errnoName(errno);
    const where = subject === undefined ? call : `${call}(${subject})`;
    super(`${where}: ${code} (${strerror(errno)})`);
    this.name = "SysError";
    this.call = call;
    this.errno = errno;
    this.code = code;
    this.subject = subject;
  }
}

/** The peer closed or the data ran out before a whole message arrived. */
export class ShortReadError extends Error {
  /** Bytes the caller needed. */
  readonly expected: number;
  /** Bytes that arrived before end of stream. */
  readonly received: number;
  /** Creates the error for `what` (e.g. `"recv on fd 5"`). */
  constructor(what: string, expected: number, received: number) {
    super(`${what}: short read, ${received} of ${expected} bytes before end of stream`);
    this.name = "ShortReadError";
    this.expected = expected;
    this.received = received;
  }
}

/**
 * The kernel had more ancillary data (file descriptors) than the receive
 * buffer held (MSG_CTRUNC); the excess descriptors are lost, so the message
 * cannot be relayed faithfully.
 */
export class TruncatedControlError extends Error {
  /** Descriptors that did arrive (already closed by the layer). */
  readonly receivedFds: number;
  /** Creates the error for the receive described by `what`. */
  constructor(what: string, receivedFds: number) {
    super(
      `${what}: ancillary data truncated (MSG_CTRUNC) after ${receivedFds} fds; ` +
        `the peer sent more fds than the ${receivedFds}-fd limit`,
    );
    this.name = "TruncatedControlError";
    this.receivedFds = receivedFds;
  }
}

/** Reads the calling thread's errno (valid right after a failed sync call). */
export function lastErrno(): number {
  const ptr = libc().__errno_location();
  if (ptr === null) return 0;
  return new Deno.UnsafePointerView(ptr).getInt32();
}

const messages = new Map<number, string>();

/** The C library's message for errno `no`, e.g. "No such file or directory". */
export function strerror(no: number): string {
  let msg = messages.get(no);
  if (msg === undefined) {
    const ptr = libc().strerror(no);
    msg = ptr === null ? `errno ${no}` : Deno.UnsafePointerView.getCString(ptr);
    messages.set(no, msg);
  }
  return msg;
}

/**
 * Returns `ret` as a number, or throws SysError with the current errno when it
 * is negative (libc's -1 convention).
 */
export function check(call: string, ret: number | bigint, subject?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(call, lastErrno(), subject);
  return n;
}
