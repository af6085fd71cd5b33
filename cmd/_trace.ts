/**
 * `vfstrace trace`: sit between QEMU and a virtio-fs back-end on the
 * vhost-user socket, relay everything, record everything.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { CaptureWriter } from "../capture/mod.ts";
import { CaptureRecorder } from "../trace/capture_recorder.ts";
import { LiveOutput } from "../trace/live.ts";
import type { ShowRecord } from "../show/mod.ts";
import { MASKED_PROTOCOL_FEATURES, MASKED_VIRTIO_FEATURES } from "../trace/proxy.ts";
import { BackendError, type BackendSpec, type ListenOn, runTrace } from "../trace/run.ts";
import { CliError, colors, ExitCode, onInterrupt } from "./_common.ts";

// This process does nothing but proxy: the loop may block its main thread.
const WAIT = (Deno.env.get("VFSTRACE_WAIT") ?? "blocking") as "blocking" | "parked";

interface TraceOptions {
  socketPath?: string | undefined;
  fd?: number | undefined;
  backend?: string | undefined;
  write?: string | undefined;
  snaplen?: number | undefined;
  notifications?: boolean | undefined;
  quiet?: boolean | undefined;
}

/** Default `--snaplen`: FUSE headers and arguments whole, bulk data (READ/WRITE) cut. */
const DEFAULT_SNAPLEN = 256;

function parseSnaplen(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new CliError(
      `--snaplen: expected a number of bytes (0: no limit), got '${value}'`,
      ExitCode.Usage,
    );
  }
  return n;
}

function parseFd(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    throw new CliError(`--fd: expected a file descriptor number, got '${value}'`, ExitCode.Usage);
  }
  return n;
}

/** Builds the `trace` subcommand. */
export function traceCommand(): Command<[string[]]> {
  const masked = [
    ...MASKED_VIRTIO_FEATURES.map((f) => `  ${f.name.padEnd(28)} ${f.reason}`),
    ...MASKED_PROTOCOL_FEATURES.map((f) => `  ${("PROTOCOL_F_" + f.name).padEnd(28)} ${f.reason}`),
  ].join("\n");
  return new Command("trace")
    .description(
      "Proxy the vhost-user socket between QEMU and a virtio-fs back-end, relaying every message " +
        "and fd, and record vhost-user messages and every FUSE request and reply to a pcapng capture.",
    )
    .argument(
      "[command...]",
      "back-end to start, after --; {socket} is replaced by its socket path",
    )
    .addOption(
      new Option("--socket-path <path>", "listen for QEMU on this socket (as virtiofsd does)")
        .conflicts("fd"),
    )
    .addOption(
      new Option("--fd <n>", "an already listening socket handed over (as libvirt does)")
        .argParser(parseFd),
    )
    .option("--backend <path>", "socket of an already running back-end")
    .option("-w, --write <file>", "write the capture to FILE ('-' for stdout)")
    .option(
      "--snaplen <bytes>",
      "keep at most this many bytes of each FUSE body (headers and arguments are always " +
        "kept; 0: keep everything)",
      parseSnaplen,
      DEFAULT_SNAPLEN,
    )
    .option("--notifications", "also record every kick and call")
    .option("-q, --quiet", "no live lines and no summary (with -w -, lines go nowhere anyway)")
    .addHelpText(
      "after",
      `
Feature bits hidden from QEMU (the proxy cannot relay them faithfully):
${masked}

Examples:
  vfstrace trace --socket-path /tmp/vfs.sock -w run.pcapng -- \\
      /usr/lib/qemu/virtiofsd --socket-path={socket} -o source=/srv
  vfstrace trace --socket-path /tmp/vfs.sock --backend /run/virtiofsd.sock -w run.pcapng

Exit status: 0 the session ended (QEMU disconnected), 1 the proxy or the capture failed,
2 bad usage, 3 the back-end could not be started or reached.`,
    )
    .action(async (command, opts) => {
      await runTraceCommand(command, opts);
    });
}

async function runTraceCommand(command: string[], opts: TraceOptions): Promise<void> {
  let listen: ListenOn;
  if (opts.socketPath !== undefined) listen = { socketPath: opts.socketPath };
  else if (opts.fd !== undefined) listen = { fd: opts.fd };
  else {throw new CliError(
      "give --socket-path PATH or --fd N (where QEMU connects)",
      ExitCode.Usage,
    );}

  let backend: BackendSpec;
  if (opts.backend !== undefined && command.length > 0) {
    throw new CliError(
      "give either --backend PATH or a back-end command after --, not both",
      ExitCode.Usage,
    );
  } else if (opts.backend !== undefined) {
    backend = { socketPath: opts.backend };
  } else if (command.length > 0) {
    if (!command.some((a) => a.includes("{socket}"))) {
      throw new CliError(
        "the back-end command must contain {socket} where its socket path goes, " +
          "e.g. -- /usr/lib/qemu/virtiofsd --socket-path={socket} -o source=/srv",
        ExitCode.Usage,
      );
    }
    backend = { command };
  } else {
    throw new CliError("give --backend PATH or a back-end command after --", ExitCode.Usage);
  }

  const quiet = opts.quiet === true || opts.write === "-";
  const say = (m: string) => {
    if (!quiet) console.error(colors.dim(`vfstrace trace: ${m}`));
  };
  let writer: CaptureWriter | undefined;
  try {
    // 0 means unlimited: the writer's own default (whole bodies, as chains when long).
    const snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    const wopts = snaplen === 0 ? {} : { snaplen };
    if (opts.write === "-") writer = CaptureWriter.stdout(wopts);
    else if (opts.write !== undefined) writer = CaptureWriter.create(opts.write, wopts);
  } catch (err) {
    throw new CliError(`cannot write the capture ${opts.write}`, ExitCode.Failure, { cause: err });
  }
  // Without -w the session is still decoded and counted; only the summary is printed.
  // One line per operation on stdout while it runs (unless stdout carries the capture).
  const live = quiet ? undefined : new LiveOutput({ write: writeStdout, colors });
  const recorder = new CaptureRecorder(
    writer ?? new CaptureWriter({ writeSync: (p) => p.byteLength }),
    {
      notifications: opts.notifications === true,
      // The guest must not pay for a full disk: say so once, relay on, count the losses.
      onWriteError: (e) =>
        console.error(
          colors.red(`vfstrace trace: ${e.message}; the session goes on, records are dropped`),
        ),
      ...(live === undefined ? {} : { onRecord: (r: ShowRecord) => live.push(r) }),
    },
  );

  const abort = new AbortController();
  const unregister = onInterrupt(async () => {
    abort.abort();
    await writer?.close().catch(() => {});
  });
  let result;
  try {
    result = await runTrace({
      listen,
      backend,
      recorder,
      signal: abort.signal,
      log: say,
      wait: WAIT,
      onListening: (path) => say(`listening on ${path ?? `fd ${opts.fd}`}`),
    });
  } catch (err) {
    if (err instanceof BackendError) {
      throw new CliError(err.message, ExitCode.Environment, { cause: err.cause });
    }
    throw err;
  } finally {
    unregister();
    await writer?.close().catch((err) => {
      const m = (err as Error).message;
      // A CaptureWriteError names the capture already.
      throw new CliError(
        m.startsWith("capture ") ? m : `capture ${opts.write}: ${m}`,
        ExitCode.Failure,
      );
    });
  }
  if (live !== undefined) {
    live.finish();
    console.error(colors.dim(live.summaryText().trimEnd()));
  }
  const end = result.end;
  if (end !== undefined) {
    say(
      `session ended by the ${end.closedBy}: ${end.requests} requests, ${end.replies} replies, ` +
        `${end.malformed} malformed` +
        (writer ? `; ${writer.stats.written} records in ${opts.write}` : ""),
    );
  }
  if (writer !== undefined && writer.dropped > 0) {
    throw new CliError(
      `capture ${opts.write}: ${writer.dropped} records were lost`,
      ExitCode.Failure,
    );
  }
  if (end?.closedBy === "backend") {
    const st = result.backendStatus;
    const how = st === undefined
      ? ""
      : st.signal !== null
      ? ` (the back-end was killed by ${st.signal})`
      : ` (the back-end exited with status ${st.code})`;
    // Its last words say why (hidden with --quiet otherwise).
    const last = result.backendStderr?.trim().split("\n").at(-1)?.trim();
    const said = last ? ` (it said: ${last.slice(0, 300)})` : "";
    throw new CliError(
      `the back-end closed its connection while QEMU was still attached${how}${said}; ` +
        `the guest's device is dead` +
        (opts.write ? `; the capture ${opts.write} is complete up to that point` : ""),
      ExitCode.Failure,
    );
  }
  if (end?.error !== undefined && end.closedBy === "proxy") {
    throw new CliError(`the proxy stopped: ${end.error.message}`, ExitCode.Failure);
  }
}

const stdoutBytes = new TextEncoder();

/** Writes all of `text` to stdout; a closed pipe (EPIPE) silently ends the live output. */
function writeStdout(text: string): void {
  let bytes = stdoutBytes.encode(text);
  try {
    while (bytes.byteLength > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}
