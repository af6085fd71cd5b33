import assert from "node:assert/strict";
import { KernelError } from "./errors.ts";
import { ensureKernel, GUEST_MODULES, parseKernelPackage } from "./kernel.ts";

Deno.test("parseKernelPackage: the plain Debian 12 output", () => {
  const out = "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-50-cloud-amd64\n";
  assert.equal(parseKernelPackage(out), "linux-image-6.1.0-50-cloud-amd64");
});

Deno.test("parseKernelPackage: skips other dependencies, accepts alternatives", () => {
  const out = [
    "linux-image-cloud-amd64",
    "  Depends: initramfs-tools",
    "  Breaks: <linux-image-6.0.0-cloud-amd64>",
    " |Depends: linux-image-6.12.9+deb13-cloud-amd64",
    "  Depends: linux-image-6.1.0-7-cloud-amd64",
    "",
  ].join("\n");
  assert.equal(parseKernelPackage(out), "linux-image-6.12.9+deb13-cloud-amd64");
});

Deno.test("parseKernelPackage: no kernel dependency is a KernelError", () => {
  for (
    const out of [
      "",
      "linux-image-cloud-amd64\n",
      "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-50-amd64\n",
      "linux-image-cloud-amd64\n  Recommends: linux-image-6.1.0-50-cloud-amd64\n",
      "linux-image-cloud-amd64\n  Depends: <linux-image-6.1.0-50-cloud-amd64>\n",
    ]
  ) {
    assert.throws(() => parseKernelPackage(out), KernelError, JSON.stringify(out));
  }
});

/** Lays out a fake cached kernel as ensureKernel leaves it. */
async function fakeCachedKernel(cache: string, pkg: string, mtime: Date): Promise<void> {
  const dir = `${cache}/kernels/${pkg}`;
  await Deno.mkdir(`${dir}/modules`, { recursive: true });
  await Deno.writeTextFile(`${dir}/vmlinuz`, "bzImage");
  for (const m of GUEST_MODULES) await Deno.writeTextFile(`${dir}/modules/${m}.ko`, m);
  const manifest = { format: 1, packageName: pkg, release: pkg.slice(12), modules: GUEST_MODULES };
  await Deno.writeTextFile(`${dir}/kernel.json`, JSON.stringify(manifest));
  await Deno.utime(`${dir}/kernel.json`, mtime, mtime);
}

Deno.test("ensureKernel: a cached package is used without apt", async () => {
  const cache = await Deno.makeTempDir({ prefix: "vfstrace-kernel-test-" });
  try {
    // Not a real package: reaching apt-get download would fail the test.
    const pkg = "linux-image-0.0.0-1-cloud-amd64";
    await fakeCachedKernel(cache, pkg, new Date());
    const k = await ensureKernel({ cacheDir: cache, packageName: pkg });
    assert.equal(k.downloaded, false);
    assert.equal(k.release, "0.0.0-1-cloud-amd64");
    assert.equal(k.vmlinuz, `${cache}/kernels/${pkg}/vmlinuz`);
    assert.deepEqual(k.modules.map((m) => m.name), GUEST_MODULES);
    assert.equal(k.modules[6]?.path, `${cache}/kernels/${pkg}/modules/virtiofs.ko`);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("ensureKernel: when apt-cache fails, the newest complete cached kernel is used", async () => {
  const cache = await Deno.makeTempDir({ prefix: "vfstrace-kernel-test-" });
  const bin = await Deno.makeTempDir({ prefix: "vfstrace-fake-apt-" });
  const path = Deno.env.get("PATH");
  try {
    await Deno.writeTextFile(`${bin}/apt-cache`, "#!/bin/sh\necho 'E: no lists' >&2\nexit 100\n");
    await Deno.chmod(`${bin}/apt-cache`, 0o755);
    await fakeCachedKernel(cache, "linux-image-0.0.0-1-cloud-amd64", new Date(2020, 1, 1));
    await fakeCachedKernel(cache, "linux-image-0.0.0-2-cloud-amd64", new Date(2021, 1, 1));
    // The newest manifest, but a module is missing: not usable.
    await fakeCachedKernel(cache, "linux-image-0.0.0-3-cloud-amd64", new Date(2022, 1, 1));
    await Deno.remove(`${cache}/kernels/linux-image-0.0.0-3-cloud-amd64/modules/fuse.ko`);
    Deno.env.set("PATH", `${bin}:/usr/bin:/bin`);
    const messages: string[] = [];
    const k = await ensureKernel({ cacheDir: cache, onProgress: (m) => messages.push(m) });
    assert.equal(k.packageName, "linux-image-0.0.0-2-cloud-amd64");
    assert.equal(k.downloaded, false);
    assert.match(messages.join("\n"), /apt-cache failed/);
  } finally {
    if (path === undefined) Deno.env.delete("PATH");
    else Deno.env.set("PATH", path);
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(bin, { recursive: true });
  }
});
