/**
 * End to end: a guest boots with its root file system on `vfstrace serve`.
 * The initramfs mounts the tag and switches root into it; the root init
 * (PID 1 on the share) runs commands and powers off. The tree is Debian
 * (debootstrap minbase, cached) when debootstrap can make it, else a busybox
 * tree; the test says which. Checked in the guest and from the host.
 */
import assert from "node:assert/strict";
import {
  bootGuest,
  busyboxRootfs,
  copyTree,
  ensureDebianRootfs,
  installRootInit,
  prepareGuest,
  rootInitAppend,
} from "../../vm/mod.ts";
import { LAUNCHER, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

const COMMON = String.raw`
t_root() {
  line=$(grep '^[^ ]* / virtiofs ' /proc/mounts) || { cat /proc/mounts; return 1; }
  echo "/ is $line"
}
t_pid1() { [ "$$" = 1 ] && echo "init is pid $$"; }
t_os() { . /etc/os-release && echo "$PRETTY_NAME"; }
t_write() { echo booted > /root/vfstrace-booted && sync && cat /root/vfstrace-booted; }
check root_is_virtiofs t_root
check pid1 t_pid1
check os_release t_os
check write t_write
`;

const DEBIAN = String.raw`
t_dpkg() { n=$(dpkg-query -W -f='${"$"}{Package}\n' | wc -l) && [ "$n" -gt 50 ] && echo "$n packages"; }
t_user() {
  mkdir -p /home/u && chown 1000:1000 /home/u &&
    setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo mine > /home/u/f && id -u'
}
t_apt() { apt-get --version | head -n 1; }
check dpkg t_dpkg
check user_file t_user
check apt t_apt
`;

Deno.test("serve rootfs: a guest boots from the share and runs commands", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-rootfs-" });
  const tree = `${dir}/root`;
  await Deno.mkdir(tree);
  let flavor = "debian";
  try {
    try {
      await copyTree(await ensureDebianRootfs({ onProgress: (m) => console.log(`  ${m}`) }), tree);
    } catch (err) {
      flavor = "busybox";
      console.log(`  no Debian root (${(err as Error).message}); a busybox tree instead`);
      await busyboxRootfs(tree);
    }
    await installRootInit(tree, COMMON + (flavor === "debian" ? DEBIAN : ""));
    const prepared = await prepareGuest({
      workload: { name: "rootfs", description: "boot from the share", script: "exit 0\n" },
    });
    const socket = `${dir}/serve.sock`;
    const serve = new Deno.Command(LAUNCHER, {
      args: ["serve", "--socket-path", socket, "--shared-dir", tree, "--log-level", "warn"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let report;
    try {
      await waitForSocket(socket);
      report = await bootGuest(prepared, {
        socketPath: socket,
        extraAppend: rootInitAppend(),
        timeoutMs: 300_000,
      });
    } finally {
      const timer = setTimeout(() => serve.kill("SIGKILL"), 15_000);
      const end = await serve.output();
      clearTimeout(timer);
      assert.equal(end.code, 0, dec.decode(end.stderr));
    }
    const text = report.checks.map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");
    console.log(`  ${flavor} root, boot to poweroff ${report.bootToPoweroffMs} ms\n${text}`);
    const names = ["root_is_virtiofs", "pid1", "os_release", "write"];
    if (flavor === "debian") names.push("dpkg", "user_file", "apt");
    assert.deepEqual(
      report.checks.map((c) => `${c.name} ${c.status}`),
      names.map((n) => `${n} ok`),
      text,
    );
    if (flavor === "debian") {
      assert.match(report.checks[2]!.detail, /Debian GNU\/Linux/);
      // Created by uid 1000 in the guest: owned by 1000 on the host.
      const st = await Deno.lstat(`${tree}/home/u/f`);
      assert.equal(st.uid, 1000);
      assert.equal(await Deno.readTextFile(`${tree}/home/u/f`), "mine\n");
    }
    assert.equal(await Deno.readTextFile(`${tree}/root/vfstrace-booted`), "booted\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
