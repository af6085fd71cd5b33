/**
 * The guest kernel: Debian's cloud kernel, fetched with apt-get download and
 * unpacked with dpkg -x, reduced to vmlinuz and the few modules a virtiofs
 * guest needs, and cached by package name.
 *
 * @module
 */
import { runCommand } from "./_exec.ts";
import { cacheDir as defaultCacheDir, exists } from "./cache.ts";
import { GuestError, KernelError } from "./errors.ts";

/** Meta package whose dependency names the current cloud kernel package. */
export const KERNEL_META_PACKAGE = "linux-image-cloud-amd64";

/** Modules the guest loads, in an insmod order that satisfies their dependencies. */
export const GUEST_MODULES: readonly string[] = [
  "virtio_ring",
  "virtio",
  "virtio_pci_modern_dev",
  "virtio_pci_legacy_dev",
  "virtio_pci",
  "fuse",
  "virtiofs",
];

/** A kernel ready to boot. */
export interface GuestKernel {
  /** Debian package it came from, e.g. `linux-image-6.1.0-50-cloud-amd64`. */
  readonly packageName: string;
  /** `uname -r` of the kernel, e.g. `6.1.0-50-cloud-amd64`. */
  readonly release: string;
  /** Path of the bzImage. */
  readonly vmlinuz: string;
  /** Module names and the paths of their uncompressed `.ko` files, in insmod order. */
  readonly modules: readonly { readonly name: string; readonly path: string }[];
  /** True when this call downloaded it, false when it came from the cache. */
  readonly downloaded: boolean;
}

/** Options of {@linkcode ensureKernel}. */
export interface EnsureKernelOptions {
  /** Cache root (default {@linkcode defaultCacheDir}). */
  cacheDir?: string;
  /** Use this package instead of resolving the meta package's dependency. */
  packageName?: string;
  /** Called with a line of progress text. */
  onProgress?: (message: string) => void;
}

/**
 * Extracts the versioned cloud kernel package from `apt-cache depends` output
 * of the meta package (e.g. `  Depends: linux-image-6.1.0-50-cloud-amd64`).
 * Throws KernelError when there is none.
 */
export function parseKernelPackage(aptCacheDependsOutput: string): string {
  const re = /^\s*\|?Depends:\s*(linux-image-\d+\.\d+[\w.+~-]*-cloud-amd64)\s*$/;
  for (const line of aptCacheDependsOutput.split("\n")) {
    const m = re.exec(line);
    if (m?.[1] !== undefined) return m[1];
  }
  throw new KernelError(
    `no linux-image-*-cloud-amd64 dependency in 'apt-cache depends ${KERNEL_META_PACKAGE}' output`,
  );
}

/** Runs `apt-cache depends` on the meta package and returns the kernel package it names. */
export async function resolveKernelPackage(): Promise<string> {
  const out = await runCommand(["apt-cache", "depends", KERNEL_META_PACKAGE]);
  return parseKernelPackage(out.text);
}

/**
 * Returns the current cloud kernel, downloading and unpacking it on first use.
 * If apt cannot say which kernel is current but one is cached, the most recently
 * cached one is used.
 */
export async function ensureKernel(opts: EnsureKernelOptions = {}): Promise<GuestKernel> {
  const root = `${opts.cacheDir ?? defaultCacheDir()}/kernels`;
  await Deno.mkdir(root, { recursive: true });
  let pkg = opts.packageName;
  if (pkg === undefined) {
    try {
      pkg = await resolveKernelPackage();
    } catch (err) {
      if (!(err instanceof GuestError)) throw err;
      // Offline or no package lists: a cached kernel beats an apt-get update.
      const cached = await newestCachedKernel(root);
      if (cached !== undefined) {
        opts.onProgress?.(`apt-cache failed; using the cached ${cached}`);
        pkg = cached;
      } else {
        try {
          pkg = await withAptUpdate(resolveKernelPackage, err, opts.onProgress);
        } catch (err2) {
          throw new KernelError(
            `cannot resolve the kernel package from ${KERNEL_META_PACKAGE} and none is cached`,
            undefined,
            { cause: err2 },
          );
        }
      }
    }
  }
  if (!/^[a-z0-9][a-z0-9.+-]*$/.test(pkg)) {
    throw new KernelError(`not a Debian package name: '${pkg}'`, pkg);
  }
  const dir = `${root}/${pkg}`;
  const cached = await loadManifest(dir, pkg);
  if (cached !== undefined) return cached;
  return await download(root, pkg, opts.onProgress);
}

interface Manifest {
  format: 1;
  packageName: string;
  release: string;
  modules: string[];
}

async function loadManifest(dir: string, pkg: string): Promise<GuestKernel | undefined> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await Deno.readTextFile(`${dir}/kernel.json`)) as Manifest;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
  if (manifest.format !== 1 || manifest.packageName !== pkg) return undefined;
  // A cache made with another module list is not usable as is.
  if (manifest.modules.join(",") !== GUEST_MODULES.join(",")) return undefined;
  const kernel: GuestKernel = {
    packageName: pkg,
    release: manifest.release,
    vmlinuz: `${dir}/vmlinuz`,
    modules: GUEST_MODULES.map((name) => ({ name, path: `${dir}/modules/${name}.ko` })),
    downloaded: false,
  };
  for (const path of [kernel.vmlinuz, ...kernel.modules.map((m) => m.path)]) {
    if (!(await exists(path))) return undefined;
  }
  return kernel;
}

async function download(
  root: string,
  pkg: string,
  onProgress?: (message: string) => void,
): Promise<GuestKernel> {
  const tmp = await Deno.makeTempDir({ dir: root, prefix: ".download-" });
  try {
    onProgress?.(`downloading ${pkg}`);
    const fetchDeb = () => runCommand(["apt-get", "download", pkg], { cwd: tmp });
    await fetchDeb().catch((err) => withAptUpdate(fetchDeb, err, onProgress));
    const debs: string[] = [];
    for await (const e of Deno.readDir(tmp)) {
      if (e.isFile && e.name.endsWith(".deb")) debs.push(e.name);
    }
    const deb = debs[0];
    if (debs.length !== 1 || deb === undefined) {
      throw new KernelError(`apt-get download ${pkg} left ${debs.length} .deb files`, pkg);
    }
    onProgress?.(`unpacking ${deb}`);
    const tree = `${tmp}/tree`;
    await runCommand(["dpkg", "-x", `${tmp}/${deb}`, tree]);

    const boot: string[] = [];
    for await (const e of Deno.readDir(`${tree}/boot`)) {
      if (e.name.startsWith("vmlinuz-")) boot.push(e.name);
    }
    const vmlinuzName = boot[0];
    if (boot.length !== 1 || vmlinuzName === undefined) {
      throw new KernelError(`${deb}: expected one boot/vmlinuz-*, found ${boot.length}`, pkg);
    }
    const release = vmlinuzName.slice("vmlinuz-".length);
    let kernelTree: string | undefined;
    for (const base of [`${tree}/lib/modules/${release}`, `${tree}/usr/lib/modules/${release}`]) {
      if (await exists(`${base}/kernel`)) kernelTree = `${base}/kernel`;
    }
    if (kernelTree === undefined) {
      throw new KernelError(`${deb}: no lib/modules/${release}/kernel directory`, pkg);
    }
    const found = await findModules(kernelTree, GUEST_MODULES);

    const out = `${tmp}/out`;
    await Deno.mkdir(`${out}/modules`, { recursive: true });
    await Deno.copyFile(`${tree}/boot/${vmlinuzName}`, `${out}/vmlinuz`);
    for (const name of GUEST_MODULES) {
      const src = found.get(name);
      if (src === undefined) throw new KernelError(`${deb}: module ${name} not found`, pkg);
      await Deno.copyFile(src, `${out}/modules/${name}.ko`);
    }
    const manifest: Manifest = {
      format: 1,
      packageName: pkg,
      release,
      modules: [...GUEST_MODULES],
    };
    await Deno.writeTextFile(`${out}/kernel.json`, JSON.stringify(manifest, null, 2) + "\n");
    const dir = `${root}/${pkg}`;
    // An incomplete directory from an earlier crash has no valid manifest: replace it.
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    try {
      await Deno.rename(out, dir);
    } catch (err) {
      // Another run may have finished the same download first.
      const other = await loadManifest(dir, pkg);
      if (other === undefined) throw err;
      return other;
    }
    const kernel = await loadManifest(dir, pkg);
    if (kernel === undefined) throw new KernelError(`cached kernel in ${dir} is unreadable`, pkg);
    return { ...kernel, downloaded: true };
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/**
 * Finds `names` as `.ko` files anywhere under `kernelTree`. Compressed modules
 * are reported as such, since busybox insmod cannot load them.
 */
async function findModules(
  kernelTree: string,
  names: readonly string[],
): Promise<Map<string, string>> {
  const wanted = new Set(names);
  const found = new Map<string, string>();
  const compressed: string[] = [];
  const stack = [kernelTree];
  while (stack.length > 0) {
    const dir = stack.pop();
    if (dir === undefined) break;
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) stack.push(path);
      else if (e.name.endsWith(".ko") && wanted.has(e.name.slice(0, -3))) {
        found.set(e.name.slice(0, -3), path);
      } else if (/\.ko\.(xz|zst|gz)$/.test(e.name)) {
        const base = e.name.replace(/\.ko\.\w+$/, "");
        if (wanted.has(base)) compressed.push(e.name);
      }
    }
  }
  if (compressed.length > 0 && found.size < wanted.size) {
    throw new KernelError(`modules are compressed (${compressed.join(", ")}); expected plain .ko`);
  }
  return found;
}

async function newestCachedKernel(root: string): Promise<string | undefined> {
  let best: { name: string; mtime: number } | undefined;
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory || e.name.startsWith(".")) continue;
    const k = await loadManifest(`${root}/${e.name}`, e.name);
    if (k === undefined) continue;
    const mtime = (await Deno.stat(`${root}/${e.name}/kernel.json`)).mtime?.getTime() ?? 0;
    if (best === undefined || mtime > best.mtime) best = { name: e.name, mtime };
  }
  return best?.name;
}

let aptUpdated = false;

/**
 * After `firstError` from apt, runs `apt-get update` (once per process, as
 * root only, since a fresh machine may have no package lists) and tries `fn`
 * again; otherwise rethrows `firstError`.
 */
async function withAptUpdate<T>(
  fn: () => Promise<T>,
  firstError: unknown,
  onProgress?: (message: string) => void,
): Promise<T> {
  if (aptUpdated || Deno.uid() !== 0) throw firstError;
  aptUpdated = true;
  onProgress?.("apt failed; running apt-get update and retrying");
  await runCommand(["apt-get", "update"], { env: { DEBIAN_FRONTEND: "noninteractive" } });
  return await fn();
}
