/**
 * Running the server: listen where QEMU connects (a socket path, or a
 * listening fd handed over as libvirt does), accept one front-end, serve it
 * until it disconnects. As virtiofsd, the server then ends (exit 0); with
 * `persist` it listens again and serves the next connection.
 *
 * @module
 */
import {
  accept,
  type BusyPollOptions,
  close,
  Epoll,
  EventLoop,
  listenUnix,
  setNonblocking,
} from "../sys/mod.ts";
import { VirtioFsDevice, type VirtioFsDeviceOptions } from "./device.ts";

/** Where the front-end connects. */
export type ServeListen = { socketPath: string } | { fd: number };

/** Options of {@link runServe}. */
export interface RunServeOptions extends Omit<VirtioFsDeviceOptions, "fd" | "loop"> {
  /** Where QEMU connects. */
  listen: ServeListen;
  /** Serve connection after connection instead of ending after the first. */
  persist?: boolean;
  /** Group (name or number) to give the socket file, as virtiofsd's `--socket-group`. */
  socketGroup?: string;
  /** Called once listening (QEMU may connect now). */
  onListening?: (path: string | undefined) => void;
  /** Called with each connection's device, once accepted. */
  onConnection?: (device: VirtioFsDevice) => void;
  /** Aborting ends the session (and stops waiting for one). */
  signal?: AbortSignal;
  /**
   * How the event loop waits: `blocking` suits a process that does nothing
   * but serve (the CLI); `parked` (default) keeps the JS thread free.
   */
  wait?: "parked" | "blocking";
  /** The loop's busy-poll window after activity (default: the loop's; `{0, 0}` never spins). */
  busyPoll?: BusyPollOptions;
}

/** How serving ended. */
export interface ServeResult {
  /** Connections served. */
  connections: number;
  /** Errors the connections ended with (a clean disconnect adds none). */
  errors: Error[];
}

/** Serves until the front-end disconnects (or, with `persist`, until aborted). */
export async function runServe(options: RunServeOptions): Promise<ServeResult> {
  const loop = new EventLoop({
    ...(options.wait === undefined ? {} : { wait: options.wait }),
    ...(options.busyPoll === undefined ? {} : { busyPoll: options.busyPoll }),
  });
  const running = loop.run();
  let listenFd = -1;
  const result: ServeResult = { connections: 0, errors: [] };
  try {
    if ("fd" in options.listen) {
      listenFd = options.listen.fd;
      setNonblocking(listenFd);
    } else {
      const path = options.listen.socketPath;
      if (options.socketGroup === undefined) {
        listenFd = listenUnix(path, { nonblocking: true, replace: true });
      } else {
        // Group and mode are set before the socket appears under its name: nobody connects early.
        const gid = await groupId(options.socketGroup);
        const staging = `${path}.${Deno.pid}.tmp`;
        listenFd = listenUnix(staging, { nonblocking: true, replace: true });
        try {
          await Deno.chown(staging, null, gid);
          await Deno.chmod(staging, 0o770);
          await Deno.rename(staging, path);
        } catch (err) {
          await Deno.remove(staging).catch(() => {});
          throw err;
        }
      }
    }
    options.onListening?.("socketPath" in options.listen ? options.listen.socketPath : undefined);
    do {
      const conn = await acceptOne(loop, listenFd, options.signal);
      if (conn === undefined) break;
      const device = new VirtioFsDevice({ ...options, fd: conn, loop });
      result.connections++;
      options.onConnection?.(device);
      const onAbort = () => device.close();
      options.signal?.addEventListener("abort", onAbort);
      const err = await device.closed;
      options.signal?.removeEventListener("abort", onAbort);
      device.close();
      if (err !== undefined) {
        result.errors.push(err);
        options.log?.(`connection ended: ${err.message}`);
      }
    } while (options.persist === true && options.signal?.aborted !== true);
    return result;
  } finally {
    if (listenFd >= 0) {
      if (loop.has(listenFd)) loop.remove(listenFd);
      close(listenFd);
      if ("socketPath" in options.listen) {
        await Deno.remove(options.listen.socketPath).catch(() => {});
      }
    }
    loop.stop();
    await running.catch(() => {});
    await loop.close();
  }
}

/** The gid of group `group` (a number, or a name from /etc/group). */
export async function groupId(group: string): Promise<number> {
  if (/^[0-9]+$/.test(group)) return Number(group);
  const text = await Deno.readTextFile("/etc/group");
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new Error(`unknown group '${group}'`);
}

function acceptOne(loop: EventLoop, fd: number, signal?: AbortSignal): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return resolve(undefined);
    const finish = (conn: number | undefined, err?: unknown) => {
      loop.remove(fd);
      signal?.removeEventListener("abort", onAbort);
      if (err !== undefined) reject(err);
      else resolve(conn);
    };
    const onAbort = () => finish(undefined);
    signal?.addEventListener("abort", onAbort);
    loop.add(fd, Epoll.IN, () => {
      try {
        const conn = accept(fd);
        if (conn !== null) finish(conn);
      } catch (err) {
        finish(undefined, err);
      }
    });
  });
}
