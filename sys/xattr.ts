/**
 * Extended attributes by path; Deno has no API for them. Both calls act on a
 * symlink itself rather than on its target, like lstat.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { lastErrno, SysError } from "./error.ts";

/** setxattr flags (<linux/xattr.h>). */
export const XattrFlags = {
  /** Fail with EEXIST if the attribute exists. */
  XATTR_CREATE: 1,
  /** Fail with ENODATA if the attribute does not exist. */
  XATTR_REPLACE: 2,
} as const;

/** A value may change between the size probe and the read; probe again this often. */
const READ_ATTEMPTS = 5;

const encoder = new TextEncoder();

/**
 * Returns the value of attribute `name` of `path`, or `undefined` when `path`
 * has no such attribute (ENODATA). Probes the size first, so values of any
 * length come back whole. Throws SysError for anything else (ENOENT,
 * EOPNOTSUPP, …).
 */
export function lgetxattr(path: string, name: string): Uint8Array | undefined {
  const cpath = cstring(path, "path");
  const cname = cstring(name, "name");
  const subject = `${path}, ${name}`;
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    const size = Number(libc().lgetxattr(cpath, cname, null, 0n));
    if (size < 0) {
      const errno = lastErrno();
      if (errno === Errno.ENODATA) return undefined;
      if (errno === Errno.EINTR) continue;
      throw new SysError("lgetxattr", errno, subject);
    }
    // A zero-size read would be another probe; the empty value is the answer.
    if (size === 0) return new Uint8Array(0);
    const buf = new Uint8Array(size);
    const got = Number(libc().lgetxattr(cpath, cname, buf, BigInt(size)));
    if (got >= 0) return buf.subarray(0, got);
    const errno = lastErrno();
    // Removed or grown since the probe: report what is there now.
    if (errno === Errno.ENODATA) return undefined;
    if (errno === Errno.ERANGE || errno === Errno.EINTR) continue;
    throw new SysError("lgetxattr", errno, subject);
  }
  throw new SysError("lgetxattr", Errno.ERANGE, `${subject}: value kept changing size`);
}

/**
 * Sets attribute `name` of `path` to `value`. `flags` is 0 (create or
 * replace) or one of {@linkcode XattrFlags}. Throws SysError (EEXIST,
 * ENODATA, EOPNOTSUPP, …).
 */
export function lsetxattr(path: string, name: string, value: Uint8Array, flags = 0): void {
  const cpath = cstring(path, "path");
  const cname = cstring(name, "name");
  for (;;) {
    if (libc().lsetxattr(cpath, cname, value, BigInt(value.byteLength), flags) === 0) return;
    const errno = lastErrno();
    if (errno !== Errno.EINTR) throw new SysError("lsetxattr", errno, `${path}, ${name}`);
  }
}

/** NUL-terminated UTF-8; an embedded NUL would silently cut the string short in C. */
function cstring(s: string, what: string): Uint8Array {
  if (s.includes("\0")) throw new TypeError(`${what} contains a NUL byte: ${JSON.stringify(s)}`);
  return encoder.encode(`${s}\0`);
}
