/**
 * Starting back-ends for the client commands (bench, demo) and their tests:
 * `vfstrace serve`, the C virtiofsd, and `vfstrace trace` in front of
 * either, each a child process listening on its own socket.
 *
 * @module
 */
import { C_VIRTIOFSD } from "../vm/mod.ts";

const CLI = new URL("./vfstrace.ts", import.meta.url).pathname;

/** Argv that runs this vfstrace CLI with the launcher's permissions. */
export function cliArgv(...args: string[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-ffi",
    "--allow-read",
    "--allow-write",
    "--allow-run",
    "--allow-env",
    "--allow-sys=uid",
    CLI,
    ...args,
  ];
}

/** A back-end child process. */
export interface BackendProcess {
  /** What it is (`serve`, `virtiofsd`, `trace+serve`…). */
  readonly name: string;
  /** The socket it listens on. */
  readonly socket: string;
  /** The process. */
  readonly child: Deno.ChildProcess;
  /** Its stderr so far (when piped). */
  stderr(): string;
  /** Waits for it to exit (it does when its front-end disconnects); kills it after `ms`. */
  stop(ms?: number): Promise<Deno.CommandStatus>;
}

/** How a back-end is started. */
export interface BackendSpec {
  /** `serve`, `virtiofsd`, or either behind `trace`. */
  readonly kind: "serve" | "virtiofsd";
  /** Put `vfstrace trace` in front, recording to `capture`. */
  readonly trace?: { readonly capture: string; readonly snaplen?: number; readonly live?: boolean };
  /** Directory shared. */
  readonly sharedDir: string;
  /** Socket to listen on. */
  readonly socket: string;
  /** Serve extended attributes (virtiofsd `-o xattr`, serve `--xattr`). */
  readonly xattr?: boolean;
  /** Request queues `serve` offers (`--request-queues`; its default when absent). */
  readonly requestQueues?: number;
  /** Where the children's stdout goes (default null; trace's live lines go there). */
  readonly stdout?: "inherit" | "null" | "piped";
}

/** The argv of the back-end itself; `socket` may be `{socket}` for trace to fill in. */
function backendArgv(spec: BackendSpec, socket: string): string[] {
  const dir = spec.sharedDir;
  const xattr = spec.xattr === true;
  if (spec.kind === "virtiofsd") {
    return [
      C_VIRTIOFSD,
      `--socket-path=${socket}`,
      "-o",
      `source=${dir}`,
      "-o",
      "cache=auto",
      ...(xattr ? ["-o", "xattr"] : []),
    ];
  }
  return cliArgv(
    "serve",
    "--socket-path",
    socket,
    "--shared-dir",
    dir,
    "--log-level",
    "error",
    ...(xattr ? ["--xattr"] : []),
    ...(spec.requestQueues === undefined ? [] : ["--request-queues", String(spec.requestQueues)]),
  );
}

async function waitForSocket(path: string, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  void child.status.then((s) => (exited = s));
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      if ((await Deno.lstat(path)).isSocket) return;
    } catch {
      // not yet
    }
    if (exited !== undefined) throw new Error(`${what} exited (${exited.code}) before listening`);
    if (performance.now() > deadline) throw new Error(`${what}: no socket at ${path} after 30 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a back-end and resolves once its socket listens. */
export async function startBackend(spec: BackendSpec): Promise<BackendProcess> {
  const argv = spec.trace === undefined ? backendArgv(spec, spec.socket) : cliArgv(
    "trace",
    ...(spec.trace.live === true ? [] : ["--quiet"]),
    "--socket-path",
    spec.socket,
    "-w",
    spec.trace.capture,
    "--snaplen",
    String(spec.trace.snaplen ?? 256),
    "--",
    ...backendArgv(spec, "{socket}"),
  );
  const name = spec.trace === undefined ? spec.kind : `trace+${spec.kind}`;
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "null",
    stdout: spec.stdout ?? "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  const drain = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      err += chunk;
      if (err.length > 1 << 16) err = err.slice(-(1 << 15));
    }
  })();
  const proc: BackendProcess = {
    name,
    socket: spec.socket,
    child,
    stderr: () => err,
    async stop(ms = 5000) {
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone already
        }
      }, ms);
      try {
        const st = await child.status;
        await drain;
        return st;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  try {
    await waitForSocket(spec.socket, child, name);
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await child.status;
    await drain;
    throw new Error(`${(e as Error).message}${err === "" ? "" : `: ${err.trim()}`}`);
  }
  return proc;
}
