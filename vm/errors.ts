/**
 * Typed errors of the guest rig. Each carries the context needed to act on it
 * (the command that ran, its stderr, the tail of the guest console) so a caller
 * can print one clear message or decide an exit status by class.
 *
 * @module
 */

/** Base class of every error thrown by the guest rig. */
export class GuestError extends Error {
  /** Creates a guest-rig error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GuestError";
  }
}

/** A host tool the rig needs, and the Debian package that ships it. */
export interface HostTool {
  /** Absolute path of the file the rig needs: a binary it runs, or a library it links. */
  readonly binary: string;
  /** Debian package that installs `binary`. */
  readonly package: string;
}

/** Host binaries are missing and could not be installed (not root, or apt-get failed). */
export class MissingDependencyError extends GuestError {
  /** The tools that are missing. */
  readonly missing: readonly HostTool[];
  /** The command that would install them. */
  readonly installCommand: string;
  /** Creates the error for `missing` tools. */
  constructor(missing: readonly HostTool[], reason: string, options?: ErrorOptions) {
    const pkgs = [...new Set(missing.map((t) => t.package))].join(" ");
    const installCommand = `apt-get install -y --no-install-recommends ${pkgs}`;
    super(
      `missing ${
        missing.map((t) => t.binary).join(", ")
      } (${reason}); install with: ${installCommand}`,
      options,
    );
    this.name = "MissingDependencyError";
    this.missing = missing;
    this.installCommand = installCommand;
  }
}

/** A host command the rig ran (apt-cache, apt-get, dpkg, cpio, …) failed. */
export class HostCommandError extends GuestError {
  /** The argv that ran. */
  readonly command: readonly string[];
  /** Its exit code, or null when it could not be started. */
  readonly exitCode: number | null;
  /** The end of its stderr. */
  readonly stderr: string;
  /** Creates the error for a failed `command`. */
  constructor(
    command: readonly string[],
    exitCode: number | null,
    stderr: string,
    options?: ErrorOptions,
  ) {
    const status = exitCode === null ? "could not start" : `exited with ${exitCode}`;
    const tail = lastLines(stderr, 5);
    super(`${command.join(" ")}: ${status}${tail === "" ? "" : `: ${tail}`}`, options);
    this.name = "HostCommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** The guest kernel could not be resolved, downloaded or unpacked. */
export class KernelError extends GuestError {
  /** The kernel package concerned, when known. */
  readonly packageName: string | undefined;
  /** Creates a kernel error about `packageName`. */
  constructor(message: string, packageName?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KernelError";
    this.packageName = packageName;
  }
}

/** The initramfs could not be built. */
export class InitramfsError extends GuestError {
  /** Creates an initramfs error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InitramfsError";
  }
}

/** QEMU exited with a failure status or could not be started. */
export class QemuError extends GuestError {
  /** The QEMU argv. */
  readonly command: readonly string[];
  /** QEMU's exit code (null when killed by a signal or never started). */
  readonly exitCode: number | null;
  /** QEMU's stderr. */
  readonly stderr: string;
  /** The last lines of the guest console. */
  readonly consoleTail: string;
  /** Creates the error for a failed QEMU run. */
  constructor(
    message: string,
    command: readonly string[],
    exitCode: number | null,
    stderr: string,
    consoleTail: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "QemuError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
    this.consoleTail = consoleTail;
  }
}

/** The guest did not power off within the time limit; QEMU was killed. */
export class QemuTimeoutError extends GuestError {
  /** The QEMU argv. */
  readonly command: readonly string[];
  /** The limit that expired, in milliseconds. */
  readonly timeoutMs: number;
  /** The last lines of the guest console. */
  readonly consoleTail: string;
  /** Creates the timeout error. */
  constructor(
    command: readonly string[],
    timeoutMs: number,
    consoleTail: string,
    options?: ErrorOptions,
  ) {
    super(
      `guest did not power off within ${
        timeoutMs / 1000
      } s; QEMU killed. Console tail:\n${consoleTail}`,
      options,
    );
    this.name = "QemuTimeoutError";
    this.command = command;
    this.timeoutMs = timeoutMs;
    this.consoleTail = consoleTail;
  }
}

/**
 * The guest booted but did not get to run the workload to the end: a module
 * would not load, the virtiofs mount failed, or the kernel died.
 */
export class GuestSetupError extends GuestError {
  /** The stage the guest's init reported (`insmod`, `mount`, …) or `boot`. */
  readonly stage: string;
  /** The last lines of the guest console. */
  readonly consoleTail: string;
  /** Creates the error for a failure at `stage`. */
  constructor(stage: string, detail: string, consoleTail: string, options?: ErrorOptions) {
    super(`guest failed at ${stage}: ${detail}. Console tail:\n${consoleTail}`, options);
    this.name = "GuestSetupError";
    this.stage = stage;
    this.consoleTail = consoleTail;
  }
}

/** The C virtiofsd the rig started failed to come up. */
export class VirtiofsdError extends GuestError {
  /** The virtiofsd argv. */
  readonly command: readonly string[];
  /** Its exit code when it had exited, else null. */
  readonly exitCode: number | null;
  /** Its stderr so far. */
  readonly stderr: string;
  /** Creates the error. */
  constructor(
    message: string,
    command: readonly string[],
    exitCode: number | null,
    stderr: string,
    options?: ErrorOptions,
  ) {
    const tail = lastLines(stderr, 5);
    super(`${message}${tail === "" ? "" : `: ${tail}`}`, options);
    this.name = "VirtiofsdError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Returns the last `n` non-empty lines of `text`, joined with newlines. */
export function lastLines(text: string, n: number): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.slice(-n).join("\n");
}
