/**
 * Plain file-descriptor I/O on raw fds: the fds vfstrace handles (eventfds,
 * memfds, sockets received from QEMU) have no Deno resource, so everything
 * goes through libc.
 *
 * EINTR is retried. On a nonblocking fd, "would block" (EAGAIN) is returned
 * as `null` rather than thrown: it is the normal outcome, not an error.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { lastErrno, SysError } from "./error.ts";

/** fcntl commands and flags (x86_64 values from <asm-generic/fcntl.h>). */
export const Fcntl = {
  F_DUPFD_CLOEXEC: 1030,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  FD_CLOEXEC: 1,
  O_NONBLOCK: 0o4000,
} as const;

/**
 * Runs a libc call that returns -1 + errno on failure; retries EINTR,
 * returns `null` for EAGAIN, throws SysError otherwise.
 */
export function retry(
  call: string,
  subject: string | undefined,
  fn: () => number | bigint,
): number | null {
  for (;;) {
    const ret = Number(fn());
    if (ret >= 0) return ret;
    const errno = lastErrno();
    if (errno === Errno.EINTR) continue;
    if (errno === Errno.EAGAIN) return null;
    throw new SysError(call, errno, subject);
  }
}

/** Like {@link retry} but EAGAIN is an error too (blocking fds, setup calls). */
export function must(call: string, subject: string | undefined, fn: () => number | bigint): number {
  const ret = retry(call, subject, fn);
  if (ret === null) throw new SysError(call, Errno.EAGAIN, subject);
  return ret;
}

/** Closes `fd`. EINTR is not retried: on Linux the fd is released regardless. */
export function close(fd: number): void {
  if (libc().close(fd) < 0) {
    const errno = lastErrno();
    if (errno !== Errno.EINTR) throw new SysError("close", errno, `fd ${fd}`);
  }
}

/** Closes every fd in `fds`, ignoring errors (cleanup paths). */
export function closeAll(fds: Iterable<number>): void {
  for (const fd of fds) libc().close(fd);
}

/** Reads up to `buf.length` bytes; 0 means end of file, `null` would block. */
export function read(fd: number, buf: Uint8Array): number | null {
  return retry("read", `fd ${fd}`, () => libc().read(fd, buf, BigInt(buf.byteLength)));
}

/** Writes up to `buf.length` bytes; returns how many, or `null` if it would block. */
export function write(fd: number, buf: Uint8Array): number | null {
  return retry("write", `fd ${fd}`, () => libc().write(fd, buf, BigInt(buf.byteLength)));
}

/** Reads up to `buf.length` bytes at `offset` without moving the file position. */
export function pread(fd: number, buf: Uint8Array, offset: number | bigint): number {
  return must(
    "pread",
    `fd ${fd}`,
    () => libc().pread(fd, buf, BigInt(buf.byteLength), BigInt(offset)),
  );
}

/** Writes `buf` at `offset` without moving the file position; returns bytes written. */
export function pwrite(fd: number, buf: Uint8Array, offset: number | bigint): number {
  return must(
    "pwrite",
    `fd ${fd}`,
    () => libc().pwrite(fd, buf, BigInt(buf.byteLength), BigInt(offset)),
  );
}

/** Reads exactly `buf.length` bytes at `offset`, looping over short reads; errors at EOF. */
export function preadExact(fd: number, buf: Uint8Array, offset: number | bigint): void {
  let done = 0;
  while (done < buf.byteLength) {
    const n = pread(fd, buf.subarray(done), BigInt(offset) + BigInt(done));
    if (n === 0) {
      throw new SysError("pread", Errno.EIO, `fd ${fd}: end of file after ${done} bytes`);
    }
    done += n;
  }
}

/** Sets or clears O_NONBLOCK on `fd`. */
export function setNonblocking(fd: number, on = true): void {
  const flags = must("fcntl(F_GETFL)", `fd ${fd}`, () => libc().fcntl(fd, Fcntl.F_GETFL, 0));
  const next = on ? flags | Fcntl.O_NONBLOCK : flags & ~Fcntl.O_NONBLOCK;
  if (next !== flags) {
    must("fcntl(F_SETFL)", `fd ${fd}`, () => libc().fcntl(fd, Fcntl.F_SETFL, next));
  }
}

/** True when O_NONBLOCK is set on `fd`. */
export function isNonblocking(fd: number): boolean {
  const flags = must("fcntl(F_GETFL)", `fd ${fd}`, () => libc().fcntl(fd, Fcntl.F_GETFL, 0));
  return (flags & Fcntl.O_NONBLOCK) !== 0;
}

/** Sets or clears FD_CLOEXEC (clear it to hand an fd to a child process). */
export function setCloexec(fd: number, on: boolean): void {
  const flags = must("fcntl(F_GETFD)", `fd ${fd}`, () => libc().fcntl(fd, Fcntl.F_GETFD, 0));
  const next = on ? flags | Fcntl.FD_CLOEXEC : flags & ~Fcntl.FD_CLOEXEC;
  must("fcntl(F_SETFD)", `fd ${fd}`, () => libc().fcntl(fd, Fcntl.F_SETFD, next));
}

/** Duplicates `fd` (close-on-exec set on the copy). */
export function dup(fd: number): number {
  return must(
    "fcntl(F_DUPFD_CLOEXEC)",
    `fd ${fd}`,
    () => libc().fcntl(fd, Fcntl.F_DUPFD_CLOEXEC, 0),
  );
}

/** True when `fd` is an open descriptor of this process. */
export function isOpen(fd: number): boolean {
  if (libc().fcntl(fd, Fcntl.F_GETFD, 0) >= 0) return true;
  return lastErrno() !== Errno.EBADF;
}
