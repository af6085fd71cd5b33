/**
 * End to end: a real Linux guest (QEMU, TCG) runs the posix workload on a
 * virtiofs mount served by the C virtiofsd, and the host checks what it left.
 * Needs root, qemu-system-x86, busybox-static, cpio and Debian's package
 * archive on first run (the kernel is cached afterwards); gcc and libc6-dev
 * for the xattr check, which is skipped without them.
 */
import assert from "node:assert/strict";
import { lgetxattr } from "../../sys/xattr.ts";
import {
  bootGuest,
  builtinWorkload,
  prepareGuest,
  Virtiofsd,
  VirtiofsdError,
} from "../../vm/mod.ts";

/** Checks the posix workload must report; a missing one means the script broke early. */
const POSIX_CHECKS = [
  "create",
  "read",
  "excl_create",
  "overwrite",
  "append",
  "pwrite",
  "truncate",
  "rename",
  "rename_over",
  "hardlink",
  "symlink",
  "chmod",
  "chown",
  "utimes",
  "readdir_1000",
  "unlink",
  "mkfifo",
  "xattr",
  "statfs",
  "bigfile_64m",
  "fsync",
  "fallocate",
  "umount",
];

Deno.test("posix workload against the C virtiofsd: every guest and host check passes", async () => {
  const prepared = await prepareGuest({
    workload: builtinWorkload("posix"),
    onProgress: (m) => console.error(`  ${m}`),
  });
  const share = await Deno.makeTempDir({ prefix: "vfstrace-e2e-share-" });
  const sockDir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-sock-" });
  const socketPath = `${sockDir}/virtiofsd.sock`;
  const daemon = await Virtiofsd.start({ socketPath, sharedDir: share });
  try {
    const report = await bootGuest(prepared, {
      socketPath,
      sharedDir: share,
      timeoutMs: 300_000,
      afterGuest: async () => {
        assert.notEqual(await daemon.wait(10_000), undefined, "virtiofsd did not exit after QEMU");
      },
    });
    const summary = [...report.checks, ...(report.hostChecks ?? [])]
      .map((c) => `${c.status} ${c.name} ${c.detail}`)
      .join("\n");
    console.error(
      `  boot-to-poweroff ${report.bootToPoweroffMs} ms, workload ${report.workloadMs} ms, ` +
        `prepare ${report.prepareMs} ms`,
    );

    assert.deepEqual(report.checks.map((c) => c.name), POSIX_CHECKS, summary);
    const failed = report.checks.filter((c) => c.status === "fail");
    assert.deepEqual(failed, [], summary);
    // Only xattr may be skipped, and only when the host could not build its helper.
    const xattr = report.checks.find((c) => c.name === "xattr");
    if (prepared.tools.toolchain.available) {
      assert.equal(xattr?.status, "ok", summary);
    } else {
      assert.equal(xattr?.status, "skip", summary);
      assert.match(xattr.detail, /^vfs_xattr was not built: no /);
    }
    for (const c of report.checks.filter((c) => c.status === "skip")) {
      assert.equal(c.name, "xattr", summary);
    }
    assert.equal(report.workloadStatus, 0, report.run.console);
    assert.ok(report.hostChecks !== undefined && report.hostChecks.length >= 25, summary);
    assert.deepEqual(report.hostChecks.filter((c) => c.status !== "ok"), [], summary);
    assert.equal(report.passed, true);
    assert.equal(daemon.status?.code, 0, daemon.stderr);

    // Spot-check the host side independently of the guest's own claims.
    const big = await Deno.stat(`${share}/vfstrace-posix/big.bin`);
    assert.equal(big.size, 64 << 20);
    assert.equal(await Deno.readLink(`${share}/vfstrace-posix/l_sym`), "f_create");
    assert.equal(await Deno.readTextFile(`${share}/vfstrace-posix/f_app`), "abc");
    if (prepared.tools.toolchain.available) {
      const f = `${share}/vfstrace-posix/f_xattr`;
      const host = report.hostChecks.map((c) => c.name);
      assert.ok(host.includes("host:xattr:vfstrace-posix/f_xattr"), summary);
      assert.ok(host.includes("host:noxattr:vfstrace-posix/f_xattr"), summary);
      assert.deepEqual(lgetxattr(f, "user.vfstrace.small"), new TextEncoder().encode("replaced"));
      assert.equal(lgetxattr(f, "user.vfstrace.big"), undefined);
    }
  } finally {
    await daemon.stop();
    await Deno.remove(share, { recursive: true });
    await Deno.remove(sockDir, { recursive: true });
  }
});

Deno.test("Virtiofsd.start: a daemon that exits before listening is a VirtiofsdError", async () => {
  const sockDir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-sock-" });
  try {
    const err = await Virtiofsd.start({
      socketPath: `${sockDir}/virtiofsd.sock`,
      sharedDir: `${sockDir}/does-not-exist`,
    }).then((d) => d.stop().then(() => undefined), (e) => e);
    assert.ok(err instanceof VirtiofsdError, String(err));
    assert.notEqual(err.exitCode, 0);
    assert.ok(err.stderr.length > 0);
  } finally {
    await Deno.remove(sockDir, { recursive: true });
  }
});
