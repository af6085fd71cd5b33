/**
 * Running the C virtiofsd shipped with QEMU as a reference backend. It serves
 * one vhost-user connection and exits when QEMU disconnects.
 *
 * @module
 */
import { exists } from "./cache.ts";
import { MissingDependencyError, VirtiofsdError } from "./errors.ts";

/** Where Debian's qemu-system-common installs the C virtiofsd. */
export const C_VIRTIOFSD = "/usr/lib/qemu/virtiofsd";

/** Options of {@linkcode Virtiofsd.start}. */
export interface VirtiofsdOptions {
  /** Socket path virtiofsd creates and listens on. */
  socketPath: string;
  /** Directory it exports. */
  sharedDir: string;
  /** The binary (default {@linkcode C_VIRTIOFSD}). */
  binary?: string;
  /** `-o cache=` policy (default auto). */
  cache?: "auto" | "always" | "none";
  /** Pass `-o xattr` (default true). */
  xattr?: boolean;
  /** More arguments appended as is. */
  extraArgs?: readonly string[];
  /** How long to wait for the socket to appear (default 10 s). */
  startTimeoutMs?: number;
}

/** A running virtiofsd. */
export class Virtiofsd {
  /** The argv that was started. */
  readonly command: readonly string[];
  /** The socket it listens on. */
  readonly socketPath: string;
  #child: Deno.ChildProcess;
  #stderr = "";
  #status: Deno.CommandStatus | undefined;
  #done: Promise<Deno.CommandStatus>;

  private constructor(command: readonly string[], socketPath: string, child: Deno.ChildProcess) {
    this.command = command;
    this.socketPath = socketPath;
    this.#child = child;
    const drain = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
        if (this.#stderr.length > 1 << 20) this.#stderr = this.#stderr.slice(-(1 << 19));
      }
    })();
    this.#done = Promise.all([child.status, drain]).then(([st]) => {
      this.#status = st;
      return st;
    });
  }

  /**
   * Starts virtiofsd and resolves once its socket exists. Throws
   * MissingDependencyError when the binary is absent and VirtiofsdError when it
   * exits or does not create the socket in time.
   */
  static async start(opts: VirtiofsdOptions): Promise<Virtiofsd> {
    const binary = opts.binary ?? C_VIRTIOFSD;
    if (!(await exists(binary))) {
      throw new MissingDependencyError(
        [{ binary, package: "qemu-system-common" }],
        "the C virtiofsd is not installed",
      );
    }
    const argv = [
      binary,
      `--socket-path=${opts.socketPath}`,
      "-o",
      `source=${opts.sharedDir}`,
      "-o",
      `cache=${opts.cache ?? "auto"}`,
      ...(opts.xattr === false ? [] : ["-o", "xattr"]),
      ...(opts.extraArgs ?? []),
    ];
    // setpriv ties its life to ours, as for QEMU (see vm/qemu.ts).
    const spawnArgv = (await exists("/usr/bin/setpriv"))
      ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", ...argv]
      : argv;
    const [cmd, ...args] = spawnArgv;
    if (cmd === undefined) throw new RangeError("empty virtiofsd command");
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
        .spawn();
    } catch (err) {
      throw new VirtiofsdError(`cannot start ${binary}`, argv, null, String(err), { cause: err });
    }
    const daemon = new Virtiofsd(argv, opts.socketPath, child);
    const deadline = performance.now() + (opts.startTimeoutMs ?? 10_000);
    while (!(await isSocket(opts.socketPath))) {
      if (daemon.#status !== undefined) {
        throw new VirtiofsdError(
          `virtiofsd exited with ${daemon.#status.code} before creating its socket`,
          argv,
          daemon.#status.code,
          daemon.#stderr,
        );
      }
      if (performance.now() > deadline) {
        await daemon.stop();
        throw new VirtiofsdError(
          `virtiofsd did not create ${opts.socketPath} in time`,
          argv,
          null,
          daemon.#stderr,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return daemon;
  }

  /** Its process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Everything it printed on stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Its exit status, once it has exited. */
  get status(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Waits up to `timeoutMs` for it to exit on its own; undefined if it has not. */
  async wait(timeoutMs: number): Promise<Deno.CommandStatus | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), timeoutMs);
    });
    try {
      return await Promise.race([this.#done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends it (SIGTERM, then SIGKILL after 2 s) unless it already exited. */
  async stop(): Promise<Deno.CommandStatus> {
    if (this.#status !== undefined) return this.#status;
    this.#signal("SIGTERM");
    const st = await this.wait(2000);
    if (st !== undefined) return st;
    this.#signal("SIGKILL");
    return await this.#done;
  }

  #signal(sig: Deno.Signal): void {
    try {
      this.#child.kill(sig);
    } catch {
      // It exited in the meantime.
    }
  }
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.lstat(path)).isSocket === true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
