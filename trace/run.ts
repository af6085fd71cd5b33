/**
 * Running a traced session: listen for the front-end (QEMU), reach the
 * back-end (an already running one, or a command the proxy starts on a
 * private socket), and proxy one connection.
 *
 * @module
 */
import {
  accept,
  type BusyPollOptions,
  close,
  connectUnix,
  Epoll,
  EventLoop,
  listenUnix,
  setNonblocking,
} from "../sys/mod.ts";
import { type ProxyEnd, TraceProxy } from "./proxy.ts";
import type { TraceRecorder } from "./recorder.ts";

/** Where the front-end connects. */
export type ListenOn = { socketPath: string } | { fd: number };

/** How to reach the back-end. */
export type BackendSpec =
  | { socketPath: string }
  | {
    /** argv; every `{socket}` is replaced by the private socket path. */
    command: readonly string[];
    /** How long to wait for the back-end's socket (default 10 s). */
    startTimeoutMs?: number;
  };

/** Options of {@link runTrace}. */
export interface RunTraceOptions {
  /** Front-end side. */
  listen: ListenOn;
  /** Back-end side. */
  backend: BackendSpec;
  /** Where the session is recorded. */
  recorder: TraceRecorder;
  /** Diagnostics for people. */
  log?: (message: string) => void;
  /** Called once the proxy listens (the front-end may connect now). */
  onListening?: (path: string | undefined) => void;
  /** Aborting stops waiting / ends the session. */
  signal?: AbortSignal;
  /** Busy-poll window of the event loop (µs; 0 = always park). */
  busyPoll?: BusyPollOptions;
  /**
   * How the event loop waits (see EventLoop): `blocking` suits a process
   * whose main thread does nothing but proxy (the CLI): one kernel hand-off
   * per wake-up instead of two. `parked` (default) keeps the JS thread free.
   */
  wait?: "parked" | "blocking";
}

/** How a traced session ended. */
export interface TraceResult {
  /** The proxy's summary; undefined if no front-end ever connected. */
  end?: ProxyEnd;
  /** Exit status of a back-end the proxy started. */
  backendStatus?: Deno.CommandStatus;
  /** The back-end's stderr (last 64 KiB), when the proxy started it. */
  backendStderr?: string;
}

/** The back-end could not be started or reached. */
export class BackendError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendError";
  }
}

/** A back-end process the proxy started. */
class BackendProcess {
  readonly argv: string[];
  readonly socketPath: string;
  readonly dir: string;
  #child: Deno.ChildProcess;
  #stderr = "";
  #status: Promise<Deno.CommandStatus>;
  #exited: Deno.CommandStatus | undefined;

  private constructor(
    argv: string[],
    socketPath: string,
    dir: string,
    child: Deno.ChildProcess,
    log: (m: string) => void,
  ) {
    this.argv = argv;
    this.socketPath = socketPath;
    this.dir = dir;
    this.#child = child;
    const drain = (async () => {
      let carry = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr = (this.#stderr + chunk).slice(-65536);
        const lines = (carry + chunk).split("\n");
        carry = lines.pop() ?? "";
        for (const l of lines) log(`backend: ${l}`);
      }
      if (carry !== "") log(`backend: ${carry}`);
    })();
    this.#status = Promise.all([child.status, drain]).then(([s]) => (this.#exited = s));
  }

  static async start(
    command: readonly string[],
    timeoutMs: number,
    log: (m: string) => void,
    signal?: AbortSignal,
  ): Promise<BackendProcess> {
    if (command.length === 0) throw new BackendError("empty back-end command");
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-backend-" });
    const socketPath = `${dir}/backend.sock`;
    const argv = command.map((a) => a.replaceAll("{socket}", socketPath));
    if (!command.some((a) => a.includes("{socket}"))) {
      await Deno.remove(dir, { recursive: true });
      throw new BackendError(
        `the back-end command must contain {socket} where its socket path goes: ${
          command.join(" ")
        }`,
      );
    }
    // The back-end dies with the proxy (parent-death signal) when setpriv is available.
    const wrap = (await exists("/usr/bin/setpriv"))
      ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--"]
      : [];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(wrap[0] ?? argv[0]!, {
        args: [...wrap.slice(1), ...(wrap.length > 0 ? argv : argv.slice(1))],
        stdin: "null",
        stdout: "inherit",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      await Deno.remove(dir, { recursive: true });
      throw new BackendError(`cannot start the back-end ${argv[0]}`, { cause: err });
    }
    const b = new BackendProcess(argv, socketPath, dir, child, log);
    const deadline = performance.now() + timeoutMs;
    while (!(await isSocket(socketPath))) {
      if (b.#exited !== undefined || performance.now() > deadline || signal?.aborted) {
        const why = b.#exited !== undefined
          ? `exited with status ${b.#exited.code} before creating its socket`
          : signal?.aborted
          ? "start interrupted"
          : `did not create ${socketPath} within ${timeoutMs} ms`;
        await b.stop();
        throw new BackendError(`back-end ${argv.join(" ")}: ${why}\n${b.#stderr.trimEnd()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return b;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Waits up to `graceMs` for a voluntary exit, then SIGTERM, then SIGKILL. */
  async stop(graceMs = 0): Promise<Deno.CommandStatus> {
    const wait = (ms: number) =>
      Promise.race([
        this.#status,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), ms)),
      ]);
    let st = this.#exited ?? await wait(graceMs);
    for (const sig of ["SIGTERM", "SIGKILL"] as const) {
      if (st !== undefined) break;
      try {
        this.#child.kill(sig);
      } catch {
        // already gone
      }
      st = await wait(2000);
    }
    st ??= await this.#status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    return st;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch {
    return false;
  }
}

/** Waits for one connection on listening socket `fd`, driven by `loop`. */
function acceptOne(loop: EventLoop, fd: number, signal?: AbortSignal): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
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

/**
 * Proxies one front-end connection to the back-end and returns when the
 * session is over. The listening socket file (when given by path) is removed
 * at the end; a back-end the proxy started is stopped.
 */
export async function runTrace(options: RunTraceOptions): Promise<TraceResult> {
  const log = options.log ?? (() => {});
  const loop = new EventLoop({
    ...(options.busyPoll === undefined ? {} : { busyPoll: options.busyPoll }),
    ...(options.wait === undefined ? {} : { wait: options.wait }),
  });
  const running = loop.run();
  let listenFd = -1;
  let backend: BackendProcess | undefined;
  const result: TraceResult = {};
  try {
    if ("command" in options.backend) {
      backend = await BackendProcess.start(
        options.backend.command,
        options.backend.startTimeoutMs ?? 10_000,
        log,
        options.signal,
      );
    }
    const listenPath = "socketPath" in options.listen ? options.listen.socketPath : undefined;
    if ("fd" in options.listen) {
      listenFd = options.listen.fd;
      setNonblocking(listenFd);
    } else {
      listenFd = listenUnix(options.listen.socketPath, { nonblocking: true, replace: true });
    }
    options.onListening?.(listenPath);
    const frontFd = await acceptOne(loop, listenFd, options.signal);
    if (frontFd === undefined) return result;
    let backFd: number;
    const backPath = backend?.socketPath ??
      ("socketPath" in options.backend ? options.backend.socketPath : "");
    try {
      backFd = connectUnix(backPath);
    } catch (err) {
      close(frontFd);
      throw new BackendError(`cannot connect to the back-end at ${backPath}`, { cause: err });
    }
    const proxy = new TraceProxy({
      frontendFd: frontFd,
      backendFd: backFd,
      loop,
      recorder: options.recorder,
      log,
    });
    const onAbort = () => proxy.close();
    options.signal?.addEventListener("abort", onAbort);
    result.end = await proxy.done;
    options.signal?.removeEventListener("abort", onAbort);
    return result;
  } finally {
    if (listenFd >= 0) {
      if (loop.has(listenFd)) loop.remove(listenFd);
      close(listenFd);
      if ("socketPath" in options.listen) {
        await Deno.remove(options.listen.socketPath).catch(() => {});
      }
    }
    if (backend !== undefined) {
      // The C virtiofsd exits by itself once its connection is gone.
      result.backendStatus = await backend.stop(5000);
      result.backendStderr = backend.stderr;
    }
    loop.stop();
    await running.catch(() => {});
    await loop.close();
  }
}
