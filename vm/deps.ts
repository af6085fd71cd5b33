/**
 * Host packages the guest rig needs: QEMU, a static busybox for the guest, and
 * cpio to pack the initramfs.
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

/** Paths of the host tools, once present. */
export interface HostTools {
  /** qemu-system-x86_64. */
  readonly qemu: string;
  /** The static busybox copied into the guest. */
  readonly busybox: string;
  /** GNU cpio. */
  readonly cpio: string;
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
 * Makes sure the rig's host tools exist, installing their packages with apt-get
 * when running as root. Throws MissingDependencyError otherwise.
 */
export async function ensureHostDeps(opts: EnsureDepsOptions = {}): Promise<HostTools> {
  let missing = await missingTools();
  if (missing.length > 0) {
    if (opts.install === false) throw new MissingDependencyError(missing, "installing disabled");
    if (Deno.uid() !== 0) throw new MissingDependencyError(missing, "not root, cannot install");
    const pkgs = [...new Set(missing.map((t) => t.package))];
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
        throw new MissingDependencyError(missing, "apt-get failed", { cause: err2 });
      }
    }
    missing = await missingTools();
    if (missing.length > 0) {
      throw new MissingDependencyError(missing, "still missing after apt-get install");
    }
  }
  return { qemu: tool(0), busybox: tool(1), cpio: tool(2) };
}

const APT_ENV = { DEBIAN_FRONTEND: "noninteractive" };

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

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
