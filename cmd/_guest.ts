/**
 * `vfstrace guest`: boot a throwaway Linux guest against a vhost-user-fs
 * backend, run a workload on the virtiofs mount, and report every check.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { CliError, colors, ExitCode, onInterrupt, parsePositive } from "./_common.ts";
import {
  bootGuest,
  type BootGuestOptions,
  BUILTIN_WORKLOADS,
  builtinWorkload,
  type CheckResult,
  DEFAULT_TAG,
  DEFAULT_TIMEOUT_MS,
  GuestError,
  type GuestReport,
  GuestSetupError,
  HostCommandError,
  InitramfsError,
  KernelError,
  MissingDependencyError,
  prepareGuest,
  QemuError,
  QemuTimeoutError,
  validateTag,
  Virtiofsd,
  VirtiofsdError,
  type Workload,
  workloadFromFile,
} from "../vm/mod.ts";

interface GuestOptions {
  socket?: string | undefined;
  virtiofsd?: boolean | undefined;
  sharedDir?: string | undefined;
  tag: string;
  workload?: string | undefined;
  script?: string | undefined;
  timeout?: number | undefined;
  keep?: boolean | undefined;
  verbose?: boolean | undefined;
  json?: boolean | undefined;
}

/** Builds the `guest` subcommand. */
export function guestCommand(): Command {
  const workloads = Object.keys(BUILTIN_WORKLOADS);
  const cmd = new Command("guest")
    .description(
      "Boot a throwaway Linux guest (QEMU, TCG) against a vhost-user-fs backend, run a workload " +
        "on the virtiofs mount and report each check.",
    )
    .option("--socket <path>", "vhost-user socket of a backend that is already listening")
    .option(
      "--virtiofsd",
      "start the C virtiofsd (/usr/lib/qemu/virtiofsd) on a temporary socket as the backend",
    )
    .option(
      "--shared-dir <dir>",
      "the backend's exported directory, verified on the host after the run " +
        "(with --virtiofsd: the directory to export; default a temporary one)",
    )
    .option("--tag <tag>", "virtiofs tag", DEFAULT_TAG)
    .addOption(
      new Option("--workload <name>", `built-in workload (default posix)`)
        .choices(workloads)
        .conflicts("script"),
    )
    .option("--script <file>", "run this busybox sh script instead of a built-in workload")
    .option(
      "--timeout <seconds>",
      `time limit for the boot (default ${DEFAULT_TIMEOUT_MS / 1000})`,
      parsePositive("--timeout"),
    )
    .option("--keep", "keep the temporary shared directory of --virtiofsd")
    .option("--verbose", "stream the guest console (and virtiofsd's log) to stderr")
    .option("--json", "print the report as JSON on stdout")
    .addHelpText(
      "after",
      `
Workloads:
${
        workloads.map((w) => `  ${w.padEnd(8)} ${wrap(builtinWorkload(w).description, 70, 11)}`)
          .join("\n")
      }

Exit status: 0 all checks passed, 1 a check failed, 2 bad usage, 3 something needed
is missing (QEMU, kernel download, socket), 4 the guest timed out.

Examples:
  vfstrace guest --virtiofsd
  vfstrace guest --socket /run/my-backend.sock --shared-dir /srv/export --workload smoke`,
    )
    .action(async (opts) => {
      await runGuestCommand(opts);
    });
  return cmd;
}

async function runGuestCommand(opts: GuestOptions): Promise<void> {
  if ((opts.socket === undefined) === (opts.virtiofsd !== true)) {
    throw new CliError("give exactly one of --socket PATH or --virtiofsd", ExitCode.Usage);
  }
  if (opts.keep === true && opts.virtiofsd !== true) {
    throw new CliError("--keep only applies to --virtiofsd", ExitCode.Usage);
  }
  try {
    validateTag(opts.tag);
  } catch (err) {
    throw new CliError(`--tag: ${(err as Error).message}`, ExitCode.Usage);
  }
  const workload = await chooseWorkload(opts);
  const timeoutMs = opts.timeout === undefined ? DEFAULT_TIMEOUT_MS : opts.timeout * 1000;
  const json = opts.json === true;
  const log = (msg: string) => console.error(colors.dim(msg));

  if (opts.sharedDir !== undefined && !(await isDirectory(opts.sharedDir))) {
    throw new CliError(`--shared-dir: not a directory: ${opts.sharedDir}`, ExitCode.Environment);
  }
  if (opts.socket !== undefined && !(await isSocket(opts.socket))) {
    throw new CliError(`--socket: no socket at ${opts.socket}`, ExitCode.Environment);
  }

  const prepared = await withExitCodes(() =>
    prepareGuest({ workload, onProgress: (m) => log(`vfstrace guest: ${m}`) })
  );

  const bootOpts: BootGuestOptions = { tag: opts.tag, timeoutMs, socketPath: "" };
  if (opts.verbose === true) bootOpts.onConsoleLine = (l) => console.error(colors.dim(`│ ${l}`));

  let daemon: Virtiofsd | undefined;
  let tempShare: string | undefined;
  let tempSock: string | undefined;
  let report: GuestReport;
  const cleanUp = async () => {
    await daemon?.stop();
    if (tempSock !== undefined) await Deno.remove(tempSock, { recursive: true }).catch(() => {});
    if (tempShare !== undefined) {
      if (opts.keep === true) log(`vfstrace guest: kept the shared directory ${tempShare}`);
      else await Deno.remove(tempShare, { recursive: true }).catch(() => {});
    }
  };
  const unregister = onInterrupt(cleanUp);
  try {
    if (opts.virtiofsd === true) {
      tempSock = await Deno.makeTempDir({ prefix: "vfstrace-sock-" });
      let share = opts.sharedDir;
      if (share === undefined) {
        tempShare = await Deno.makeTempDir({ prefix: "vfstrace-share-" });
        share = tempShare;
      }
      bootOpts.socketPath = `${tempSock}/virtiofsd.sock`;
      bootOpts.sharedDir = share;
      daemon = await withExitCodes(() =>
        Virtiofsd.start({ socketPath: bootOpts.socketPath, sharedDir: share })
      );
      const d = daemon;
      // The C virtiofsd exits once QEMU disconnects; let it finish before reading the files.
      bootOpts.afterGuest = async () => {
        if ((await d.wait(5000)) === undefined) await d.stop();
      };
    } else {
      bootOpts.socketPath = opts.socket ?? "";
      if (opts.sharedDir !== undefined) bootOpts.sharedDir = opts.sharedDir;
    }
    try {
      report = await withExitCodes(() => bootGuest(prepared, bootOpts));
    } catch (err) {
      if (daemon !== undefined && !json) printDaemonLog(daemon);
      throw err;
    }
    if (daemon !== undefined && opts.verbose === true) printDaemonLog(daemon);
  } finally {
    unregister();
    await cleanUp();
  }

  if (json) {
    console.log(JSON.stringify(toJson(report, bootOpts, daemon), null, 2));
  } else {
    printReport(report, bootOpts);
  }
  if (!report.passed) throw new CliError("the guest workload failed", ExitCode.Failure);
}

async function chooseWorkload(opts: GuestOptions): Promise<Workload> {
  if (opts.script !== undefined) {
    try {
      return await workloadFromFile(opts.script);
    } catch (err) {
      throw new CliError(`--script: cannot read ${opts.script}`, ExitCode.Usage, { cause: err });
    }
  }
  return builtinWorkload(opts.workload ?? "posix");
}

/** Maps rig errors to CLI exit statuses. */
async function withExitCodes<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof GuestError)) throw err;
    throw new CliError(err.message, exitCodeFor(err), { cause: err.cause });
  }
}

function exitCodeFor(err: GuestError): number {
  if (err instanceof QemuTimeoutError) return ExitCode.Timeout;
  if (
    err instanceof MissingDependencyError || err instanceof KernelError ||
    err instanceof InitramfsError || err instanceof HostCommandError ||
    err instanceof VirtiofsdError
  ) {
    return ExitCode.Environment;
  }
  // QEMU that cannot reach the socket means nothing usable is listening there;
  // any other QEMU failure (e.g. a vhost-user protocol error) is the backend's.
  if (err instanceof QemuError) {
    return err.exitCode === null || /Failed to connect|Connection refused/.test(err.stderr)
      ? ExitCode.Environment
      : ExitCode.Failure;
  }
  // A module that does not load is a broken guest image, not a backend failure.
  if (err instanceof GuestSetupError && (err.stage === "insmod" || err.stage === "cmdline")) {
    return ExitCode.Environment;
  }
  return ExitCode.Failure;
}

function printReport(report: GuestReport, opts: BootGuestOptions): void {
  const out = (s = "") => console.log(s);
  out(
    `${colors.bold("guest")} ${report.workload} on tag '${report.tag}' via ${opts.socketPath} ` +
      colors.dim(`(${report.kernel})`),
  );
  printChecks(report.checks);
  if (report.hostChecks !== undefined) {
    const failed = report.hostChecks.filter((c) => c.status === "fail");
    out(`${colors.bold("host")} ${opts.sharedDir ?? ""}`);
    if (failed.length === 0) {
      out(
        `  ${colors.green("ok")}    all ${report.hostChecks.length} checks of the shared directory`,
      );
    } else {
      printChecks(failed);
    }
  }
  if (report.workloadStatus !== 0) {
    out(`  ${colors.red("FAIL")}  workload exited with status ${report.workloadStatus}`);
  }
  const count = (cs: readonly CheckResult[]) => {
    const n = (s: string) => cs.filter((c) => c.status === s).length;
    return `${n("ok")} passed, ${n("fail")} failed, ${n("skip")} skipped`;
  };
  out();
  out(
    `guest checks: ${count(report.checks)}` +
      (report.hostChecks === undefined ? "" : `; host checks: ${count(report.hostChecks)}`),
  );
  out(
    `boot-to-poweroff ${seconds(report.bootToPoweroffMs)}` +
      (report.workloadMs === undefined ? "" : ` (workload ${seconds(report.workloadMs)})`) +
      `, prepare ${seconds(report.prepareMs)}`,
  );
  out(report.passed ? colors.green(colors.bold("PASS")) : colors.red(colors.bold("FAIL")));
}

function printChecks(checks: readonly CheckResult[]): void {
  const width = Math.min(24, Math.max(0, ...checks.map((c) => c.name.length)));
  const timed = checks.some((c) => c.seconds !== undefined);
  for (const c of checks) {
    const mark = c.status === "ok"
      ? colors.green("ok  ")
      : c.status === "skip"
      ? colors.yellow("skip")
      : colors.red("FAIL");
    const detail = c.status === "skip" ? `skipped: ${c.detail}` : c.detail;
    const time = timed
      ? (c.seconds === undefined ? "" : `${c.seconds.toFixed(2)} s`).padStart(8)
      : "";
    console.log(
      `  ${mark}  ${c.name.padEnd(width)}${colors.dim(time)}  ` +
        (c.status === "fail" ? detail : colors.dim(detail)),
    );
  }
}

function printDaemonLog(daemon: Virtiofsd): void {
  console.error(colors.dim(`virtiofsd (${daemon.command.join(" ")}):`));
  for (const line of daemon.stderr.trimEnd().split("\n").slice(-40)) {
    console.error(colors.dim(`  ${line}`));
  }
}

function toJson(report: GuestReport, opts: BootGuestOptions, daemon: Virtiofsd | undefined) {
  return {
    passed: report.passed,
    workload: report.workload,
    kernel: report.kernel,
    tag: report.tag,
    socket: opts.socketPath,
    sharedDir: opts.sharedDir ?? null,
    workloadStatus: report.workloadStatus,
    prepareMs: report.prepareMs,
    bootToPoweroffMs: report.bootToPoweroffMs,
    workloadMs: report.workloadMs ?? null,
    checks: report.checks,
    hostChecks: report.hostChecks ?? null,
    virtiofsd: daemon === undefined ? null : {
      command: daemon.command,
      exitCode: daemon.status?.code ?? null,
      stderr: daemon.stderr,
    },
    qemu: { command: report.run.command, stderr: report.run.stderr },
    console: report.run.console,
  };
}

/** Wraps `text` at `width` columns, indenting continuation lines by `indent`. */
function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines.join(`\n${" ".repeat(indent)}`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}
