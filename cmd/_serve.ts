/**
 * `vfstrace serve`: a virtio-fs back-end in place of virtiofsd, with its
 * command line, and tracing built in (`--capture`).
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { CaptureWriter } from "../capture/mod.ts";
import { CaptureRecorder } from "../trace/capture_recorder.ts";
import { type CacheMode, runServe, type ServeListen } from "../serve/mod.ts";
import { setRlimitNofile } from "../sys/mod.ts";
import { CliError, colors, ExitCode, onInterrupt } from "./_common.ts";

// This process does nothing but serve: the loop may block its main thread.
const WAIT = (Deno.env.get("VFSTRACE_WAIT") ?? "blocking") as "blocking" | "parked";
// Microseconds the loop keeps polling after activity before it sleeps in epoll_wait.
const BUSY_POLL = Deno.env.get("VFSTRACE_BUSY_POLL_US");

const CACHE_MODES: readonly CacheMode[] = ["auto", "always", "metadata", "never"];
/** The C virtiofsd (and libvirt's `<cache mode='none'/>`) say "none" for "never". */
const CACHE_CHOICES = [...CACHE_MODES, "none"];

function cacheMode(v: string | undefined): CacheMode | undefined {
  return v === "none" ? "never" : v as CacheMode | undefined;
}
const LOG_LEVELS = ["error", "warn", "info", "debug", "off"] as const;
type LogLevel = typeof LOG_LEVELS[number];

/** What libvirt reads from `--print-capabilities` (the vhost-user JSON schema). */
export const CAPABILITIES = { type: "fs", features: ["separate-options"] } as const;

interface ServeOptions {
  socketPath?: string | undefined;
  fd?: number | undefined;
  sharedDir?: string | undefined;
  o?: string[] | undefined;
  cache?: string | undefined;
  xattr?: boolean | undefined;
  readonly?: boolean | undefined;
  announceSubmounts?: boolean | undefined;
  threadPoolSize?: number | undefined;
  logLevel?: string | undefined;
  d?: boolean | undefined;
  rlimitNofile?: number | undefined;
  printCapabilities?: boolean | undefined;
  socketGroup?: string | undefined;
  persist?: boolean | undefined;
  writeback?: boolean | undefined;
  posixAcl?: boolean | undefined;
  capture?: string | undefined;
  snaplen?: number | undefined;
  tag?: string | undefined;
  requestQueues?: number | undefined;
  allowDevices?: boolean | undefined;
}

function count(what: string, min: number): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || !Number.isSafeInteger(n) || n < min) {
      throw new CliError(`${what}: expected a whole number ≥ ${min}, got '${v}'`, ExitCode.Usage);
    }
    return n;
  };
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The settings `-o a,b=c` and the long options amount to (long options win). */
export interface ServeSettings {
  /** Shared directory. */
  sharedDir: string | undefined;
  /** Cache mode. */
  cache: CacheMode;
  /** Extended attributes. */
  xattr: boolean;
  /** POSIX locks. */
  posixLock: boolean;
  /** flock locks. */
  flock: boolean;
  /** Writeback caching in the guest. */
  writeback: boolean;
  /** POSIX ACLs. */
  posixAcl: boolean;
}

/** Parses virtiofsd's `-o` options (comma-separated, repeatable). Throws CliError. */
export function parseDashO(values: readonly string[]): Partial<ServeSettings> {
  const out: Partial<ServeSettings> = {};
  for (const value of values) {
    for (const item of value.split(",")) {
      if (item === "") continue;
      const eq = item.indexOf("=");
      const key = eq < 0 ? item : item.slice(0, eq);
      const arg = eq < 0 ? undefined : item.slice(eq + 1);
      switch (key) {
        case "source":
          if (arg === undefined || arg === "") {
            throw new CliError("-o source= needs a directory", 2);
          }
          out.sharedDir = arg;
          break;
        case "cache":
          if (arg === undefined || !CACHE_CHOICES.includes(arg)) {
            throw new CliError(
              `-o cache=${arg}: expected one of ${CACHE_CHOICES.join(", ")}`,
              ExitCode.Usage,
            );
          }
          out.cache = arg === "none" ? "never" : arg as CacheMode;
          break;
        case "sandbox":
          // libvirt passes it; this server never leaves its mount namespace (see --help).
          if (!["namespace", "chroot", "none"].includes(arg ?? "")) {
            throw new CliError(
              `-o sandbox=${arg}: expected namespace, chroot or none`,
              ExitCode.Usage,
            );
          }
          break;
        case "xattr":
          out.xattr = true;
          break;
        case "no_xattr":
          out.xattr = false;
          break;
        case "flock":
          out.flock = true;
          break;
        case "no_flock":
          out.flock = false;
          break;
        case "posix_lock":
          out.posixLock = true;
          break;
        case "no_posix_lock":
          out.posixLock = false;
          break;
        case "writeback":
          out.writeback = true;
          break;
        case "posix_acl":
          out.posixAcl = true;
          break;
        case "no_posix_acl":
          out.posixAcl = false;
          break;
        case "no_writeback":
          out.writeback = false;
          break;
        // Accepted for compatibility; they change nothing here (see --help).
        case "readdirplus":
        case "no_readdirplus":
        case "log_level":
        case "timeout":
        case "norace":
          break;
        default:
          throw new CliError(
            `-o ${item}: unknown option (known: source=, cache=, sandbox=, xattr, no_xattr, ` +
              `flock, no_flock, posix_lock, no_posix_lock, writeback, no_writeback, posix_acl, ` +
              `no_posix_acl)`,
            ExitCode.Usage,
          );
      }
    }
  }
  return out;
}

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
  return new Command("serve")
    .description(
      "Serve a host directory to a guest as a virtio-fs (vhost-user-fs) back-end, in place of " +
        "virtiofsd: QEMU connects to the socket, the guest mounts the directory by its tag. " +
        "With --capture, every vhost-user message and FUSE request/reply is recorded.",
    )
    .addOption(
      new Option("--socket-path <path>", "listen for QEMU on this socket").conflicts("fd"),
    )
    .addOption(
      new Option("--fd <n>", "an already listening socket handed over (as libvirt does)")
        .argParser(count("--fd", 0)),
    )
    .option("--shared-dir <dir>", "the directory to share (or -o source=DIR)")
    .option(
      "-o <options>",
      "virtiofsd-style options: source=DIR, cache=MODE, xattr, flock, posix_lock…",
      collect,
    )
    .addOption(
      new Option("--cache <mode>", "how long the guest caches entries, attributes and data")
        .choices(CACHE_CHOICES),
    )
    .option("--xattr", "serve extended attributes")
    .option(
      "--posix-acl",
      "serve POSIX ACLs: the guest checks and sets them (or -o posix_acl; needs --xattr)",
    )
    .option("--readonly", "refuse every change (EROFS)")
    .option("--writeback", "let the guest cache writes (or -o writeback)")
    .option("--announce-submounts", "tell the guest about mount points below the shared directory")
    .option(
      "--thread-pool-size <n>",
      "accepted for compatibility; has no effect: requests are served one at a time on the " +
        "event loop (file-system calls are synchronous), in ring order",
      count("--thread-pool-size", 0),
    )
    .addOption(new Option("--log-level <level>", "what goes to stderr").choices(LOG_LEVELS))
    .option("-d", "debug output (same as --log-level debug)")
    .option(
      "--rlimit-nofile <n>",
      "set the open-file limit (each inode the guest holds keeps one fd open; past the limit " +
        "less 256, the guest gets EMFILE)",
      count("--rlimit-nofile", 1),
    )
    .option("--print-capabilities", "print the vhost-user capabilities JSON (for libvirt) and exit")
    .option("--socket-group <group>", "give the socket file this group (mode 0770)")
    .option("--persist", "after a disconnect, serve the next connection instead of exiting")
    .option("--capture <file>", "record the session to this pcapng capture ('-' for stdout)")
    .option(
      "--snaplen <bytes>",
      "with --capture: keep at most this many bytes of each FUSE body (0: everything)",
      count("--snaplen", 0),
      256,
    )
    .option("--tag <tag>", "virtio-fs tag offered in the config space (QEMU's own tag= otherwise)")
    .option(
      "--request-queues <n>",
      "request queues besides hiprio (default 1)",
      count("--request-queues", 1),
    )
    .option("--allow-devices", "let the guest open device nodes in the shared directory")
    .addHelpText(
      "after",
      `
Compatible with virtiofsd's command line (socket, shared directory, cache, xattr,
readonly, announce-submounts, -o options, print-capabilities), so libvirt can
start it as a <filesystem>'s <binary path=…> (docs/serve.md). -o sandbox= is
accepted and changes nothing: the server does not pivot into the shared
directory; it confines every access to it by resolving names one component at
a time from O_PATH fds, never following a symlink. Opcodes this server
answers ENOSYS, as the reference daemons do: IOCTL, POLL, BMAP,
SETUPMAPPING/REMOVEMAPPING (DAX), COPY_FILE_RANGE_64; the xattr family
without --xattr.

Exit status: 0 the front-end disconnected, 1 the session failed, 2 bad usage,
3 the shared directory or socket is unusable.

Examples:
  vfstrace serve --socket-path /tmp/vfs.sock --shared-dir /srv/share
  vfstrace serve --socket-path /tmp/vfs.sock -o source=/srv/share,cache=never --capture run.pcapng`,
    )
    .action(async (opts) => {
      await runServeCommand(opts as ServeOptions);
    }) as unknown as Command;
}

async function runServeCommand(opts: ServeOptions): Promise<void> {
  if (opts.printCapabilities === true) {
    console.log(JSON.stringify(CAPABILITIES, null, 2));
    return;
  }
  const dashO = parseDashO(opts.o ?? []);
  const sharedDir = opts.sharedDir ?? dashO.sharedDir;
  if (sharedDir === undefined) {
    throw new CliError("give --shared-dir DIR (or -o source=DIR)", ExitCode.Usage);
  }
  const xattr = opts.xattr === true || dashO.xattr === true;
  const posixAcl = opts.posixAcl === true || dashO.posixAcl === true;
  if (posixAcl && !xattr) {
    // ACLs travel as system.posix_acl_* xattrs.
    throw new CliError("--posix-acl (-o posix_acl) needs --xattr (-o xattr)", ExitCode.Usage);
  }
  let listen: ServeListen;
  if (opts.socketPath !== undefined) listen = { socketPath: opts.socketPath };
  else if (opts.fd !== undefined) listen = { fd: opts.fd };
  else throw new CliError("give --socket-path PATH or --fd N (where QEMU connects)", 2);
  try {
    if (!(await Deno.stat(sharedDir)).isDirectory) throw new Error("not a directory");
  } catch (err) {
    throw new CliError(`--shared-dir ${sharedDir}: ${(err as Error).message}`, 3);
  }
  const level: LogLevel = opts.d === true ? "debug" : (opts.logLevel as LogLevel) ?? "info";
  const rank = LOG_LEVELS.indexOf(level);
  const say = (min: LogLevel, m: string) => {
    if (level !== "off" && rank >= LOG_LEVELS.indexOf(min)) {
      console.error(colors.dim(`vfstrace serve: ${m}`));
    }
  };
  if (opts.rlimitNofile !== undefined) {
    try {
      setRlimitNofile(opts.rlimitNofile);
    } catch (err) {
      throw new CliError(`--rlimit-nofile ${opts.rlimitNofile}: ${(err as Error).message}`, 3);
    }
  }

  let writer: CaptureWriter | undefined;
  try {
    const wopts = opts.snaplen === 0 ? {} : { snaplen: opts.snaplen ?? 256 };
    if (opts.capture === "-") writer = CaptureWriter.stdout(wopts);
    else if (opts.capture !== undefined) writer = CaptureWriter.create(opts.capture, wopts);
  } catch (err) {
    throw new CliError(`cannot write the capture ${opts.capture}`, 1, { cause: err });
  }
  const recorder = writer === undefined ? undefined : new CaptureRecorder(writer, {
    // A full disk costs records, not the guest's file system.
    onWriteError: (e) => say("error", `${e.message}; serving goes on, records are dropped`),
  });

  const abort = new AbortController();
  const unregister = onInterrupt(async () => {
    abort.abort();
    await writer?.close().catch(() => {});
  });
  try {
    const result = await runServe({
      listen,
      sharedDir,
      cache: cacheMode(opts.cache) ?? dashO.cache ?? "auto",
      xattr,
      posixAcl,
      readonly: opts.readonly === true,
      announceSubmounts: opts.announceSubmounts === true,
      posixLock: dashO.posixLock === true,
      writeback: opts.writeback === true || dashO.writeback === true,
      flock: dashO.flock === true,
      allowDevices: opts.allowDevices === true,
      requestQueues: opts.requestQueues ?? 1,
      ...(opts.tag === undefined ? {} : { tag: opts.tag }),
      ...(opts.socketGroup === undefined ? {} : { socketGroup: opts.socketGroup }),
      ...(recorder === undefined ? {} : { recorder }),
      persist: opts.persist === true,
      signal: abort.signal,
      wait: WAIT,
      ...(BUSY_POLL === undefined ? {} : {
        busyPoll: { minMicros: Number(BUSY_POLL), maxMicros: Number(BUSY_POLL) },
      }),
      log: (m) => say("warn", m),
      onListening: (path) => say("info", `listening on ${path ?? `fd ${opts.fd}`}`),
      onConnection: () => say("info", "front-end connected"),
    });
    say(
      "info",
      `served ${result.connections} connection(s)` +
        (writer ? `; ${writer.stats.written} records in ${opts.capture}` : ""),
    );
    if (result.errors.length > 0) {
      throw new CliError(`the connection failed: ${result.errors[0]!.message}`, 1);
    }
  } finally {
    unregister();
    await writer?.close().catch((err) => {
      throw new CliError(`capture ${opts.capture}: ${(err as Error).message}`, 1);
    });
  }
}
