/**
 * Where the rig keeps downloaded kernels and built initramfs images.
 *
 * @module
 */

/**
 * The cache directory: `$VFSTRACE_CACHE`, else `$XDG_CACHE_HOME/vfstrace`, else
 * `$HOME/.cache/vfstrace`. `getEnv` is injectable for tests.
 */
export function cacheDir(getEnv: (name: string) => string | undefined = envOrUndefined): string {
  const explicit = getEnv("VFSTRACE_CACHE");
  if (explicit !== undefined && explicit !== "") return explicit;
  const xdg = getEnv("XDG_CACHE_HOME");
  if (xdg !== undefined && xdg !== "") return `${xdg}/vfstrace`;
  const home = getEnv("HOME");
  if (home === undefined || home === "") {
    throw new Error("cannot place the cache: set VFSTRACE_CACHE, XDG_CACHE_HOME or HOME");
  }
  return `${home}/.cache/vfstrace`;
}

function envOrUndefined(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    // Without --allow-env the defaults apply.
    return undefined;
  }
}

/** Lowercase hex SHA-256 of `data`. */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether `path` exists (any type; symlinks are not followed). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
