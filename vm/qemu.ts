/**
 * Booting the guest under QEMU (TCG) with a vhost-user-fs device on a given
 * socket, capturing its serial console and parsing the result markers.
 *
 * @module
 */
import { exists } from "./cache.ts";
import { GuestSetupError, lastLines, QemuError, QemuTimeoutError } from "./errors.ts";
import { TAG_PARAM } from "./initramfs.ts";
import {
  type CheckResult,
  emptyParsedConsole,
  type Expectation,
  parseConsoleLine,
} from "./protocol.ts";

/** Default guest memory; vhost-user needs it all in one shared memfd. */
export const DEFAULT_MEMORY_MIB = 512;

/** Lines of console kept in error messages. */
const TAIL_LINES = 30;

/** Console text kept in memory; older output is dropped past this. */
const MAX_CONSOLE_CHARS = 4 << 20;

/**
 * Strips terminal control sequences (SeaBIOS clears the screen) and other
 * control characters from a console line, keeping tabs.
 */
export function cleanConsoleLine(raw: string): string {
  return raw
    // deno-lint-ignore no-control-regex
    .replace(/\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b[@-Z\\-_c]/g, "")
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

/** What the QEMU command line is made of. */
export interface QemuOptions {
  /** The bzImage. */
  kernel: string;
  /** The initramfs. */
  initrd: string;
  /** The vhost-user socket the backend listens on. */
  socketPath: string;
  /** The virtiofs tag the guest mounts. */
  tag: string;
  /** Guest RAM in MiB (default {@linkcode DEFAULT_MEMORY_MIB}). */
  memoryMiB?: number;
  /** Virtqueue size of the vhost-user-fs device (default 1024). */
  queueSize?: number;
  /** The QEMU binary (default qemu-system-x86_64). */
  qemu?: string;
  /** Extra kernel command-line words. */
  extraAppend?: readonly string[];
}

/** Checks a virtiofs tag: non-empty, at most 36 bytes, no whitespace or commas. */
export function validateTag(tag: string): void {
  if (!/^[A-Za-z0-9_.:-]{1,36}$/.test(tag)) {
    throw new RangeError(
      `bad virtiofs tag '${tag}': use 1-36 characters from A-Z a-z 0-9 _ . : -`,
    );
  }
}

/** The QEMU argv (binary first) for `opts`. */
export function buildQemuArgs(opts: QemuOptions): string[] {
  validateTag(opts.tag);
  if (opts.socketPath.includes(",")) {
    // QEMU's option syntax would split the path at the comma.
    throw new RangeError(`socket path must not contain ',': ${opts.socketPath}`);
  }
  const mem = opts.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const append = ["console=ttyS0", "quiet", "panic=-1", `${TAG_PARAM}=${opts.tag}`];
  append.push(...(opts.extraAppend ?? []));
  return [
    opts.qemu ?? "qemu-system-x86_64",
    "-accel",
    "tcg",
    "-cpu",
    "max",
    "-m",
    `${mem}M`,
    "-nographic",
    "-no-reboot",
    "-nic",
    "none",
    "-kernel",
    opts.kernel,
    "-initrd",
    opts.initrd,
    "-append",
    append.join(" "),
    "-chardev",
    `socket,id=char0,path=${opts.socketPath}`,
    "-device",
    `vhost-user-fs-pci,queue-size=${opts.queueSize ?? 1024},chardev=char0,tag=${opts.tag}`,
    "-object",
    `memory-backend-memfd,id=mem,size=${mem}M,share=on`,
    "-numa",
    "node,memdev=mem",
  ];
}

/** Options of {@linkcode runGuest}. */
export interface RunGuestOptions extends QemuOptions {
  /** Kill QEMU and throw QemuTimeoutError after this long. */
  timeoutMs: number;
  /** Called with every console line as it arrives (without the line ending). */
  onConsoleLine?: (line: string) => void;
}

/** What one guest boot produced. */
export interface GuestRun {
  /** The argv that ran. */
  readonly command: readonly string[];
  /** Checks the guest reported, in order. */
  readonly checks: readonly CheckResult[];
  /** Claims about the shared directory for host-side verification. */
  readonly expectations: readonly Expectation[];
  /** Exit status of the workload script. */
  readonly workloadStatus: number;
  /** Wall time from starting QEMU to its exit after poweroff, in ms. */
  readonly bootToPoweroffMs: number;
  /** Guest time from mount to the end of the workload, in ms. */
  readonly workloadMs: number | undefined;
  /** Marker lines that did not parse. */
  readonly malformed: readonly string[];
  /** The console transcript. */
  readonly console: string;
  /** QEMU's stderr (warnings even on success). */
  readonly stderr: string;
}

/**
 * Boots the guest, waits for it to power off, and returns what its markers
 * said. Throws QemuTimeoutError, QemuError (QEMU failed, e.g. nothing listens
 * on the socket) or GuestSetupError (the guest never finished the workload).
 */
export async function runGuest(opts: RunGuestOptions): Promise<GuestRun> {
  const qemuArgv = buildQemuArgs(opts);
  // setpriv ties QEMU's life to ours: if this process dies (Ctrl-C, kill), the
  // kernel kills QEMU instead of leaving it running unattended.
  const argv = (await exists("/usr/bin/setpriv"))
    ? ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", ...qemuArgv]
    : qemuArgv;
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new RangeError("empty QEMU command");
  const parsed = emptyParsedConsole();
  let consoleText = "";
  let stderr = "";
  const started = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (err) {
    throw new QemuError(
      `cannot start ${cmd}: ${err instanceof Error ? err.message : String(err)}`,
      argv,
      null,
      "",
      "",
      { cause: err },
    );
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, opts.timeoutMs);

  const readConsole = async () => {
    let pending = "";
    const onLine = (raw: string) => {
      const line = cleanConsoleLine(raw);
      parseConsoleLine(line, parsed);
      consoleText += line + "\n";
      if (consoleText.length > MAX_CONSOLE_CHARS) {
        consoleText = consoleText.slice(consoleText.length - MAX_CONSOLE_CHARS / 2);
      }
      opts.onConsoleLine?.(line);
    };
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    }
    if (pending !== "") onLine(pending);
  };
  const readStderr = async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19));
    }
  };
  let status: Deno.CommandStatus;
  try {
    [status] = await Promise.all([child.status, readConsole(), readStderr()]);
  } finally {
    clearTimeout(timer);
  }
  const bootToPoweroffMs = performance.now() - started;
  const tail = lastLines(consoleText, TAIL_LINES);

  if (timedOut) throw new QemuTimeoutError(argv, opts.timeoutMs, tail);
  const setupError = parsed.errors[0];
  if (setupError !== undefined) {
    throw new GuestSetupError(setupError.stage, setupError.detail, tail);
  }
  if (!status.success) {
    const why = status.signal !== null ? `was killed by ${status.signal}` : `exited ${status.code}`;
    throw new QemuError(
      `QEMU ${why}: ${lastLines(stderr, 5) || "(no stderr)"}`,
      argv,
      status.code,
      stderr,
      tail,
    );
  }
  if (parsed.end === undefined) {
    const stage = parsed.beginUptime === undefined ? "boot" : "workload";
    throw new GuestSetupError(
      stage,
      stage === "boot"
        ? "the guest powered off before mounting the share (kernel panic or init died?)"
        : "the guest stopped before the workload finished",
      tail,
    );
  }
  const workloadMs = parsed.beginUptime === undefined
    ? undefined
    : Math.round((parsed.end.uptime - parsed.beginUptime) * 1000);
  return {
    command: argv,
    checks: parsed.checks,
    expectations: parsed.expectations,
    workloadStatus: parsed.end.status,
    bootToPoweroffMs: Math.round(bootToPoweroffMs),
    workloadMs,
    malformed: parsed.malformed,
    console: consoleText,
    stderr,
  };
}
