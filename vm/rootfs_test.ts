import assert from "node:assert/strict";
import { shSyntaxOk } from "./_testing.ts";
import { renderInitScript, ROOT_INIT_PARAM } from "./initramfs.ts";
import {
  busyboxRootfs,
  installRootInit,
  renderRootInit,
  ROOT_INIT_PATH,
  rootInitAppend,
} from "./rootfs.ts";

Deno.test("root init: the body between the helpers and the power-off; parses with busybox sh", async () => {
  const text = renderRootInit("check one true\n");
  assert.match(text, /^#!\/bin\/sh\n/);
  assert.ok(text.indexOf("check() {") < text.indexOf("check one true"));
  assert.ok(text.indexOf("check one true") < text.indexOf("VFSTRACE-END 0"));
  assert.match(text, /sysrq-trigger/);
  await shSyntaxOk(text);
  assert.deepEqual(rootInitAppend(), [`${ROOT_INIT_PARAM}=${ROOT_INIT_PATH}`]);
  // The initramfs's init switches root only when the parameter is given.
  const init = renderInitScript(["virtio_fs"]);
  assert.match(init, new RegExp(`${ROOT_INIT_PARAM.replace(".", "\\.")}=\\*\\)`));
  assert.match(init, /exec switch_root \/mnt "\$rootinit"/);
  await shSyntaxOk(init);
});

Deno.test({
  name: "busybox root: applets, /bin/sh, the root init installed executable",
  ignore: !(await Deno.stat("/bin/busybox").then(() => true, () => false)),
  fn: async () => {
    const tree = await Deno.makeTempDir({ prefix: "vfstrace-rootfs-test-" });
    try {
      await busyboxRootfs(tree);
      assert.equal(await Deno.readLink(`${tree}/bin/sh`), "busybox");
      await installRootInit(tree, "check x true\n");
      const st = await Deno.stat(`${tree}${ROOT_INIT_PATH}`);
      assert.equal(st.mode! & 0o777, 0o755);
      // Run it on the host with a harmless PATH: checks print, the end marker comes.
      const body = (await Deno.readTextFile(`${tree}${ROOT_INIT_PATH}`)).split("\nsync\n")[0]!;
      const out = await new Deno.Command(`${tree}/bin/sh`, { args: ["-c", body] }).output();
      assert.equal(new TextDecoder().decode(out.stdout), "VFSTRACE-RESULT x ok - \n");
    } finally {
      await Deno.remove(tree, { recursive: true });
    }
  },
});
