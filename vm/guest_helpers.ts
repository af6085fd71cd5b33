/**
 * Small C programs the guest needs and busybox lacks (vm/guest/*.c), compiled
 * statically on the host when the initramfs is built and installed as
 * /bin/<name>. Without a toolchain the image is built without them and says
 * why in {@linkcode MISSING_HELPERS_DIR}, so the checks that need them skip.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { runCommand } from "./_exec.ts";
import { sha256Hex } from "./cache.ts";
import type { GuestToolchain } from "./deps.ts";
import { HostCommandError, InitramfsError } from "./errors.ts";
import { MISSING_HELPERS_DIR } from "./protocol.ts";

/** A C program built for the guest. */
export interface GuestHelper {
  /** Name of the program in the guest's /bin. */
  readonly name: string;
  /** Its source file. */
  readonly source: URL;
}

/** The helpers every initramfs carries. */
export const GUEST_HELPERS: readonly GuestHelper[] = [
  // set/get/list/remove extended attributes, size probes included.
  { name: "vfs_xattr", source: new URL("./guest/vfs_xattr.c", import.meta.url) },
  // fcntl (POSIX record) and flock locks, held for a while or waited for.
  { name: "vfs_lock", source: new URL("./guest/vfs_lock.c", import.meta.url) },
  // renameat2 flags, SEEK_DATA/HOLE, holes, O_DIRECT, O_TMPFILE, … and running as another user.
  { name: "vfs_ops", source: new URL("./guest/vfs_ops.c", import.meta.url) },
];

/** Compiler flags: static (the initramfs has no libc), small, stripped. */
export const HELPER_CFLAGS: readonly string[] = ["-static", "-Os", "-s", "-Wall", "-Wextra"];

/**
 * A string that changes whenever the built helpers would: their sources, the
 * flags, and the toolchain's identity (size and mtime of the compiler and of
 * the static libc), or the reason there is no toolchain, so installing one
 * rebuilds the image.
 */
export async function helpersId(
  toolchain: GuestToolchain,
  helpers: readonly GuestHelper[] = GUEST_HELPERS,
): Promise<string> {
  const sources: string[][] = [];
  for (const h of helpers) {
    sources.push([h.name, await sha256Hex(await readSource(h))]);
  }
  const tc = toolchain.available
    ? ["cc", await fileId(toolchain.cc), await fileId(toolchain.staticLibc)]
    : ["none", toolchain.reason];
  return JSON.stringify([HELPER_CFLAGS, sources, tc]);
}

/**
 * Builds each helper into `<root>/bin`, or, without a toolchain, writes the
 * reason into `<root>${MISSING_HELPERS_DIR}/<name>`. A compiler that fails is
 * an InitramfsError: the toolchain is there, so the source or flags are wrong.
 */
export async function installHelpers(
  root: string,
  toolchain: GuestToolchain,
  helpers: readonly GuestHelper[] = GUEST_HELPERS,
): Promise<void> {
  for (const h of helpers) {
    if (!/^[A-Za-z0-9_-]+$/.test(h.name)) throw new InitramfsError(`bad helper name '${h.name}'`);
    if (!toolchain.available) {
      await Deno.mkdir(`${root}${MISSING_HELPERS_DIR}`, { recursive: true });
      await Deno.writeTextFile(
        `${root}${MISSING_HELPERS_DIR}/${h.name}`,
        `${h.name} was not built: ${toolchain.reason}\n`,
      );
      continue;
    }
    await Deno.mkdir(`${root}/bin`, { recursive: true });
    await compileHelper(h, `${root}/bin/${h.name}`, toolchain.cc);
  }
}

/** Compiles `helper` to `output` with `cc`; throws InitramfsError with the compiler's stderr. */
export async function compileHelper(
  helper: GuestHelper,
  output: string,
  cc: string,
  extraFlags: readonly string[] = [],
): Promise<void> {
  const argv = [cc, ...HELPER_CFLAGS, ...extraFlags, "-o", output, sourcePath(helper)];
  try {
    await runCommand(argv);
  } catch (err) {
    if (!(err instanceof HostCommandError)) throw err;
    throw new InitramfsError(`compiling the guest helper ${helper.name} failed: ${err.message}`, {
      cause: err,
    });
  }
}

function sourcePath(helper: GuestHelper): string {
  if (helper.source.protocol !== "file:") {
    throw new InitramfsError(`guest helper ${helper.name}: source ${helper.source} is not a file`);
  }
  return fileURLToPath(helper.source);
}

async function readSource(helper: GuestHelper): Promise<Uint8Array> {
  try {
    return await Deno.readFile(sourcePath(helper));
  } catch (err) {
    if (err instanceof InitramfsError) throw err;
    throw new InitramfsError(
      `cannot read the source of guest helper ${helper.name}: ${
        err instanceof Error ? err.message : String(err)
      }`,
      { cause: err },
    );
  }
}

async function fileId(path: string): Promise<string> {
  try {
    const st = await Deno.stat(path);
    return `${st.size}:${st.mtime?.getTime() ?? 0}`;
  } catch (err) {
    throw new InitramfsError(
      `cannot stat toolchain file ${path}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
