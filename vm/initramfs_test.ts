import assert from "node:assert/strict";
import { InitramfsError } from "./errors.ts";
import { initramfsKey, type InitramfsKeyInputs, renderInitScript, TAG_PARAM } from "./initramfs.ts";
import { GUEST_MODULES } from "./kernel.ts";
import { shSyntaxOk } from "./_testing.ts";

const BASE: InitramfsKeyInputs = {
  kernelPackage: "linux-image-6.1.0-50-cloud-amd64",
  modules: ["virtio_ring", "virtio"],
  initScript: "#!/bin/sh\n",
  library: "pass() { :; }\n",
  workloadScript: "echo hi\n",
  busyboxId: "2000000:1700000000000",
  helpersId: '["-static"]:vfs_xattr:0123',
};

Deno.test("initramfsKey: stable for equal inputs, pinned format", async () => {
  const a = await initramfsKey(BASE);
  const b = await initramfsKey({ ...BASE, modules: [...BASE.modules] });
  assert.equal(a, b);
  assert.match(a, /^[0-9a-f]{64}$/);
  // Pinned (SHA-256 of the compact JSON array of the inputs, computed outside
  // Deno): a change here silently invalidates, or aliases, cached images.
  assert.equal(a, "bdf0cac3b91eceeedee6b3b6242f950d43663ed0882058563c0d89a0ff4395ec");
});

Deno.test("initramfsKey: every input changes the key", async () => {
  const base = await initramfsKey(BASE);
  const variants: Partial<InitramfsKeyInputs>[] = [
    { kernelPackage: "linux-image-6.1.0-51-cloud-amd64" },
    { modules: ["virtio", "virtio_ring"] },
    { initScript: "#!/bin/sh\n\n" },
    { library: "pass() { true; }\n" },
    { workloadScript: "echo ho\n" },
    { busyboxId: "2000000:1700000000001" },
    { helpersId: '["-static"]:vfs_xattr:0124' },
  ];
  const keys = new Set([base]);
  for (const v of variants) keys.add(await initramfsKey({ ...BASE, ...v }));
  assert.equal(keys.size, variants.length + 1);
  // Field boundaries matter: moving text between fields must not collide.
  const shifted = await initramfsKey({
    ...BASE,
    initScript: "",
    library: BASE.initScript + BASE.library,
  });
  assert.notEqual(shifted, base);
});

Deno.test("renderInitScript: modules in order, tag from the command line", () => {
  const init = renderInitScript(GUEST_MODULES);
  assert.ok(init.startsWith("#!/bin/busybox sh\n"));
  assert.ok(init.includes(`for m in ${GUEST_MODULES.join(" ")}; do`));
  assert.ok(init.includes(`${TAG_PARAM}=*) tag=\${arg#${TAG_PARAM}=}`));
  assert.ok(init.includes('mount -t virtiofs "$tag" /mnt'));
  assert.ok(init.includes("poweroff -f"));
  assert.throws(() => renderInitScript(["virtio; rm -rf /"]), InitramfsError);
});

Deno.test("renderInitScript: busybox sh accepts the syntax", async () => {
  await shSyntaxOk(renderInitScript(GUEST_MODULES));
});
