/**
 * Unix stream sockets with file-descriptor passing (SCM_RIGHTS): the
 * transport of vhost-user, where QEMU hands over memory-region fds and the
 * kick/call eventfds inside ordinary messages.
 *
 * Struct layouts are x86_64: msghdr 56 bytes, iovec 16, cmsghdr 16 + data.
 *
 * @module
 */
import { libc } from "./_libc.ts";
import { Errno } from "./errno.ts";
import { ShortReadError, SysError, TruncatedControlError } from "./error.ts";
import { closeAll, must, retry } from "./fd.ts";

/** Socket constants (x86_64 Linux). */
export const Sock = {
  AF_UNIX: 1,
  SOCK_STREAM: 1,
  SOCK_SEQPACKET: 5,
  SOCK_NONBLOCK: 0o4000,
  SOCK_CLOEXEC: 0o2000000,
  SOL_SOCKET: 1,
  SCM_RIGHTS: 1,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  MSG_PEEK: 0x2,
  MSG_CTRUNC: 0x8,
  MSG_TRUNC: 0x20,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
} as const;

/** Most fds one message may carry; vhost-user's limit too (VHOST_MEMORY_BASELINE_NREGIONS). */
export const MAX_FDS_PER_MESSAGE = 8;

const SUN_PATH_MAX = 108;
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const CMSG_HEADER = 16;
const encoder = new TextEncoder();

/** CMSG_SPACE for `n` fds: header plus data rounded up to 8 bytes. */
function cmsgSpace(fdCount: number): number {
  return CMSG_HEADER + ((fdCount * 4 + 7) & ~7);
}

function pointerOf(buf: Uint8Array): bigint {
  if (buf.byteLength === 0) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/**
 * Encodes a sockaddr_un. A path starting with "\0" names an abstract socket
 * (no file system entry).
 */
export function sockaddrUn(path: string): Uint8Array {
  const name = encoder.encode(path);
  const abstract = name[0] === 0;
  if (name.byteLength === 0 || name.byteLength >= SUN_PATH_MAX) {
    throw new SysError("sockaddr_un", Errno.ENAMETOOLONG, path);
  }
  const len = 2 + name.byteLength + (abstract ? 0 : 1);
  const addr = new Uint8Array(len);
  new DataView(addr.buffer).setUint16(0, Sock.AF_UNIX, true);
  addr.set(name, 2);
  return addr;
}

/** Options shared by the socket constructors. */
export interface SocketOptions {
  /** Set O_NONBLOCK on the new fd(s) (default false). */
  nonblocking?: boolean;
}

function typeFlags(options: SocketOptions): number {
  return Sock.SOCK_STREAM | Sock.SOCK_CLOEXEC | (options.nonblocking ? Sock.SOCK_NONBLOCK : 0);
}

/** A new unbound AF_UNIX stream socket (close-on-exec). */
export function socket(options: SocketOptions = {}): number {
  return must("socket", "AF_UNIX", () => libc().socket(Sock.AF_UNIX, typeFlags(options), 0));
}

/** Binds `fd` to `path`. */
export function bind(fd: number, path: string): void {
  const addr = sockaddrUn(path);
  must("bind", path, () => libc().bind(fd, addr, addr.byteLength));
}

/** Marks `fd` as listening. */
export function listen(fd: number, backlog = 16): void {
  must("listen", `fd ${fd}`, () => libc().listen(fd, backlog));
}

/**
 * Accepts one connection; returns its fd, or `null` when none is pending on
 * a nonblocking listener.
 */
export function accept(fd: number, options: SocketOptions = {}): number | null {
  const flags = Sock.SOCK_CLOEXEC | (options.nonblocking ? Sock.SOCK_NONBLOCK : 0);
  return retry("accept4", `fd ${fd}`, () => libc().accept4(fd, null, null, flags));
}

/** Connects `fd` to the socket at `path`. */
export function connect(fd: number, path: string): void {
  const addr = sockaddrUn(path);
  must("connect", path, () => libc().connect(fd, addr, addr.byteLength));
}

/** A connected pair of AF_UNIX stream sockets. */
export function socketpair(options: SocketOptions = {}): [number, number] {
  const sv = new Int32Array(2);
  must(
    "socketpair",
    "AF_UNIX",
    () => libc().socketpair(Sock.AF_UNIX, typeFlags(options), 0, new Uint8Array(sv.buffer)),
  );
  return [sv[0] ?? -1, sv[1] ?? -1];
}

/** Shuts down reading, writing or both (`Sock.SHUT_*`). */
export function shutdown(fd: number, how: number = Sock.SHUT_RDWR): void {
  const ret = libc().shutdown(fd, how);
  if (ret < 0) must("shutdown", `fd ${fd}`, () => ret);
}

/** Creates, binds and listens on `path`, removing a stale socket file first if asked. */
export function listenUnix(
  path: string,
  options: SocketOptions & { backlog?: number; replace?: boolean } = {},
): number {
  if (options.replace) {
    try {
      Deno.removeSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  const fd = socket(options);
  try {
    bind(fd, path);
    listen(fd, options.backlog ?? 16);
    return fd;
  } catch (err) {
    closeAll([fd]);
    throw err;
  }
}

/** Creates a socket and connects it to `path`. */
export function connectUnix(path: string, options: SocketOptions = {}): number {
  const fd = socket(options);
  try {
    connect(fd, path);
    return fd;
  } catch (err) {
    closeAll([fd]);
    throw err;
  }
}

/** Builds a msghdr in `hdr` over `bufs`, with control space for `fdSpace` fds. */
function buildMsghdr(bufs: readonly Uint8Array[], control: Uint8Array | null): {
  hdr: Uint8Array;
  iov: Uint8Array;
} {
  const iov = new Uint8Array(IOVEC_SIZE * bufs.length);
  const iv = new DataView(iov.buffer);
  bufs.forEach((b, i) => {
    iv.setBigUint64(i * IOVEC_SIZE, pointerOf(b), true);
    iv.setBigUint64(i * IOVEC_SIZE + 8, BigInt(b.byteLength), true);
  });
  const hdr = new Uint8Array(MSGHDR_SIZE);
  const hv = new DataView(hdr.buffer);
  hv.setBigUint64(16, pointerOf(iov), true);
  hv.setBigUint64(24, BigInt(bufs.length), true);
  if (control !== null) {
    hv.setBigUint64(32, pointerOf(control), true);
    hv.setBigUint64(40, BigInt(control.byteLength), true);
  }
  return { hdr, iov };
}

/**
 * Sends the concatenation of `data` with `fds` attached (SCM_RIGHTS), in one
 * sendmsg. Returns bytes sent (possibly fewer than offered: the fds went with
 * the first byte), or `null` when a nonblocking socket is full and nothing
 * was sent.
 */
export function sendMsg(
  fd: number,
  data: Uint8Array | readonly Uint8Array[],
  fds: readonly number[] = [],
): number | null {
  const bufs = data instanceof Uint8Array ? [data] : data;
  if (fds.length > MAX_FDS_PER_MESSAGE) {
    throw new SysError(
      "sendmsg",
      Errno.EINVAL,
      `fd ${fd}: ${fds.length} fds > ${MAX_FDS_PER_MESSAGE}`,
    );
  }
  let control: Uint8Array | null = null;
  if (fds.length > 0) {
    control = new Uint8Array(cmsgSpace(fds.length));
    const cv = new DataView(control.buffer);
    cv.setBigUint64(0, BigInt(CMSG_HEADER + fds.length * 4), true);
    cv.setInt32(8, Sock.SOL_SOCKET, true);
    cv.setInt32(12, Sock.SCM_RIGHTS, true);
    fds.forEach((f, i) => cv.setInt32(CMSG_HEADER + i * 4, f, true));
  }
  // `iov` and `control` are referenced until the call returns; the struct
  // only holds their addresses.
  const { hdr, iov } = buildMsghdr(bufs, control);
  const n = retry("sendmsg", `fd ${fd}`, () => libc().sendmsg(fd, hdr, Sock.MSG_NOSIGNAL));
  void iov;
  return n;
}

/** What one recvmsg delivered. */
export interface Received {
  /** Bytes placed in the buffer; 0 means the peer closed the stream. */
  bytes: number;
  /** Descriptors that came with the bytes (close-on-exec set), now owned by the caller. */
  fds: number[];
}

/**
 * Receives into `buf` with up to `maxFds` descriptors. Returns `null` when a
 * nonblocking socket has nothing. If the peer sent more fds than `maxFds`
 * the kernel drops the rest: that is a TruncatedControlError (the received
 * ones are closed), never a silent loss.
 */
export function recvMsg(
  fd: number,
  buf: Uint8Array,
  maxFds: number = MAX_FDS_PER_MESSAGE,
): Received | null {
  const control = new Uint8Array(cmsgSpace(maxFds));
  const { hdr, iov } = buildMsghdr([buf], control);
  const n = retry("recvmsg", `fd ${fd}`, () => libc().recvmsg(fd, hdr, Sock.MSG_CMSG_CLOEXEC));
  void iov;
  if (n === null) return null;
  const hv = new DataView(hdr.buffer);
  const controlLen = Number(hv.getBigUint64(40, true));
  const flags = hv.getInt32(48, true);
  const fds = parseRights(control.subarray(0, controlLen));
  if (flags & Sock.MSG_CTRUNC) {
    closeAll(fds);
    throw new TruncatedControlError(`recvmsg on fd ${fd}`, fds.length);
  }
  return { bytes: n, fds };
}

/** Extracts the fds of every SCM_RIGHTS header in a control buffer. */
function parseRights(control: Uint8Array): number[] {
  const fds: number[] = [];
  const cv = new DataView(control.buffer, control.byteOffset, control.byteLength);
  let off = 0;
  while (off + CMSG_HEADER <= control.byteLength) {
    const len = Number(cv.getBigUint64(off, true));
    if (len < CMSG_HEADER || off + len > control.byteLength) break;
    const level = cv.getInt32(off + 8, true);
    const type = cv.getInt32(off + 12, true);
    if (level === Sock.SOL_SOCKET && type === Sock.SCM_RIGHTS) {
      for (let p = off + CMSG_HEADER; p + 4 <= off + len; p += 4) fds.push(cv.getInt32(p, true));
    }
    off += (len + 7) & ~7;
  }
  return fds;
}

/**
 * Fills `buf` completely from a blocking socket, collecting fds from every
 * piece. Returns `null` on a clean end of stream before the first byte;
 * ending part-way is a ShortReadError (the fds already received are closed).
 */
export function recvExact(
  fd: number,
  buf: Uint8Array,
  maxFds: number = MAX_FDS_PER_MESSAGE,
): number[] | null {
  const fds: number[] = [];
  let got = 0;
  while (got < buf.byteLength) {
    let r: Received | null;
    try {
      r = recvMsg(fd, buf.subarray(got), maxFds - fds.length);
    } catch (err) {
      closeAll(fds);
      throw err;
    }
    if (r === null) {
      closeAll(fds);
      throw new SysError("recvmsg", Errno.EAGAIN, `fd ${fd}: recvExact needs a blocking socket`);
    }
    if (r.bytes === 0) {
      if (got === 0) return null;
      closeAll(fds);
      throw new ShortReadError(`recvmsg on fd ${fd}`, buf.byteLength, got);
    }
    fds.push(...r.fds);
    got += r.bytes;
  }
  return fds;
}

/** Sends all of `data` on a blocking socket; `fds` go with the first byte. */
export function sendAll(fd: number, data: Uint8Array, fds: readonly number[] = []): void {
  let sent = 0;
  let pending = fds;
  while (sent < data.byteLength) {
    const n = sendMsg(fd, data.subarray(sent), pending);
    if (n === null) {
      throw new SysError("sendmsg", Errno.EAGAIN, `fd ${fd}: sendAll needs a blocking socket`);
    }
    sent += n;
    pending = [];
  }
}
