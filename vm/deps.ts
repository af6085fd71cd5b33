/**
 * Host packages the guest rig needs: QEMU, a static busybox for the guest, and
 * cpio to pack the initramfs; optionally a C toolchain that builds the guest
 * helpers (vm/guest/*.c), without which the checks that need them are skipped.
 *
 * @module
 */
import { runCommand } from "./_exec.ts";
import { HostCommandError, type HostTool, MissingDependencyError } from "./errors.ts";

/** The binaries the rig runs and the packages that ship them. */
export const HOST_TOOLS: readonly HostTool[] = [
  { binary: "/usr/bin/qemu-system-x86_64", package: "qemu-system-x86" },
  { binary: "/bin/busybox", package: "busybox-static" },
  { binary: "/usr/bin/cpio", package: "cpio" },
];

/**
 * The C toolchain for the guest helpers: the compiler and the static C library
 * it links against. Installed along with {@linkcode HOST_TOOLS} when possible,
 * but optional: without it the rig still runs.
 */
export const TOOLCHAIN_TOOLS: readonly HostTool[] = [
  { binary: "/usr/bin/gcc", package: "gcc" },
  { binary: "/usr/lib/x86_64-linux-gnu/libc.a", package: "libc6-dev" },
];

/** The C toolchain that builds the guest helpers, or why there is none. */
export type GuestToolchain =
  | {
    readonly available: true;
    /** The compiler. */
    readonly cc: string;
    /** The static C library (its identity goes into the initramfs cache key). */
    readonly staticLibc: string;
  }
  | {
    readonly available: false;
    /** What is missing and how to install it. */
    readonly reason: string;
  };

/** Paths of the host tools, once present. */
export interface HostTools {
  /** qemu-system-x86_64. */
  readonly qemu: string;
  /** The static busybox copied into the guest. */
  readonly busybox: string;
  /** GNU cpio. */
  readonly cpio: string;
  /** The C toolchain for the guest helpers, if there is one. */
  readonly toolchain: GuestToolchain;
}

/** Options of {@linkcode ensureHostDeps}. */
export interface EnsureDepsOptions {
  /** Install missing packages with apt-get when running as root (default true). */
  install?: boolean;
  /** Called with a line of progress text (e.g. "installing qemu-system-x86"). */
  onProgress?: (message: string) => void;
}

/** Returns the tools of `tools` whose binary does not exist. */
export async function missingTools(tools: readonly HostTool[] = HOST_TOOLS): Promise<HostTool[]> {
  const missing: HostTool[] = [];
  for (const tool of tools) {
    if (!(await isFile(tool.binary))) missing.push(tool);
  }
  return missing;
}

/**
 * The guest-helper toolchain as it is on this host: available when every
 * tool of `tools` exists, else the reason names what is missing.
 */
export async function guestToolchain(
  tools: readonly HostTool[] = TOOLCHAIN_TOOLS,
): Promise<GuestToolchain> {
  const [cc, staticLibc] = tools;
  if (cc === undefined || staticLibc === undefined) {
    throw new RangeError("guestToolchain: needs a compiler and a static C library");
  }
  const missing = await missingTools(tools);
  if (missing.length === 0) {
    return { available: true, cc: cc.binary, staticLibc: staticLibc.binary };
  }
  const pkgs = [...new Set(missing.map((t) => t.package))];
  return {
    available: false,
    reason: `no ${missing.map((t) => t.binary).join(", ")} on the host ` +
      `(apt-get install ${pkgs.join(" ")})`,
  };
}

/**
 * Makes sure the rig's host tools exist, installing their packages with apt-get
 * when running as root. Throws MissingDependencyError when a required tool is
 * still missing; a missing toolchain ({@linkcode TOOLCHAIN_TOOLS}) is reported
 * in the result instead.
 */
export async function ensureHostDeps(opts: EnsureDepsOptions = {}): Promise<HostTools> {
  let missing = await missingTools();
  const optional = await missingTools(TOOLCHAIN_TOOLS);
  // Asked only when something is missing: Deno.uid() needs --allow-sys.
  const blocker = missing.length + optional.length > 0 ? installBlocker(opts) : undefined;
  if (missing.length > 0 && blocker !== undefined) {
    throw new MissingDependencyError(missing, blocker);
  }
  if (blocker === undefined && missing.length + optional.length > 0) {
    const pkgs = [...new Set([...missing, ...optional].map((t) => t.package))];
    opts.onProgress?.(`installing ${pkgs.join(" ")}`);
    try {
      await aptInstall(pkgs);
    } catch (err) {
      if (!(err instanceof HostCommandError)) throw err;
      // The package lists may never have been fetched on a fresh machine.
      opts.onProgress?.("apt-get install failed; running apt-get update and retrying");
      try {
        await runCommand(["apt-get", "update"], { env: APT_ENV });
        await aptInstall(pkgs);
      } catch (err2) {
        // Only the required tools are worth failing for; the check below decides.
        if (missing.length > 0) {
          throw new MissingDependencyError(missing, "apt-get failed", { cause: err2 });
        }
        opts.onProgress?.(`could not install ${pkgs.join(" ")}: ${errorText(err2)}`);
      }
    }
    missing = await missingTools();
    if (missing.length > 0) {
      throw new MissingDependencyError(missing, "still missing after apt-get install");
    }
  }
  const toolchain = await guestToolchain();
  if (!toolchain.available) {
    opts.onProgress?.(`guest helpers will not be built: ${toolchain.reason}`);
  }
  return { qemu: tool(0), busybox: tool(1), cpio: tool(2), toolchain };
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };

/** Why packages cannot be installed, or undefined when they can. */
function installBlocker(opts: EnsureDepsOptions): string | undefined {
  if (opts.install === false) return "installing disabled";
  try {
    return Deno.uid() === 0 ? undefined : "not root, cannot install";
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) {
      return "cannot tell whether running as root without --allow-sys, not installing";
    }
    throw err;
  }
}

async function aptInstall(pkgs: string[]): Promise<void> {
  await runCommand(["apt-get", "install", "-y", "--no-install-recommends", ...pkgs], {
    env: APT_ENV,
  });
}

function tool(i: number): string {
  const t = HOST_TOOLS[i];
  if (t === undefined) throw new RangeError(`no host tool ${i}`);
  return t.binary;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
