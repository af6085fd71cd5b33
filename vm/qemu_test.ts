import assert from "node:assert/strict";
import { GuestSetupError, QemuError, QemuTimeoutError } from "./errors.ts";
import { buildQemuArgs, cleanConsoleLine, runGuest, validateTag } from "./qemu.ts";

Deno.test("buildQemuArgs: the documented TCG + vhost-user-fs command line", () => {
  const argv = buildQemuArgs({
    kernel: "/k/vmlinuz",
    initrd: "/k/initrd.gz",
    socketPath: "/run/fs.sock",
    tag: "myfs",
  });
  const joined = argv.join(" ");
  assert.equal(argv[0], "qemu-system-x86_64");
  for (
    const part of [
      "-accel tcg -cpu max -m 512M -nographic -no-reboot",
      "-kernel /k/vmlinuz -initrd /k/initrd.gz",
      "-append console=ttyS0 quiet panic=-1 vfstrace.tag=myfs",
      "-chardev socket,id=char0,path=/run/fs.sock",
      "-device vhost-user-fs-pci,queue-size=1024,chardev=char0,tag=myfs",
      "-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem",
    ]
  ) {
    assert.ok(joined.includes(part), `missing '${part}' in ${joined}`);
  }
  const custom = buildQemuArgs({
    kernel: "k",
    initrd: "i",
    socketPath: "s",
    tag: "t",
    memoryMiB: 1024,
    qemu: "/opt/qemu",
    extraAppend: ["loglevel=7"],
  });
  assert.equal(custom[0], "/opt/qemu");
  assert.ok(custom.includes("1024M"));
  assert.ok(custom.includes("memory-backend-memfd,id=mem,size=1024M,share=on"));
  assert.ok(custom.includes("console=ttyS0 quiet panic=-1 vfstrace.tag=t loglevel=7"));
  assert.throws(() => buildQemuArgs({ kernel: "k", initrd: "i", socketPath: "a,b", tag: "t" }));
});

Deno.test("validateTag", () => {
  validateTag("vfstrace");
  validateTag("a".repeat(36));
  for (const bad of ["", "a".repeat(37), "has space", "a,b", "tag=x"]) {
    assert.throws(() => validateTag(bad), RangeError, bad);
  }
});

Deno.test("cleanConsoleLine: drops terminal escapes and control characters", () => {
  assert.equal(
    cleanConsoleLine(
      "\x1bc\x1b[?7l\x1b[2JBooting from ROM..\x1bc\x1b[?7l\x1b[2JVFSTRACE-BEGIN 2.29\r",
    ),
    "Booting from ROM..VFSTRACE-BEGIN 2.29",
  );
  assert.equal(cleanConsoleLine("a\tb"), "a\tb");
});

/** Writes an executable shell script standing in for QEMU. */
async function fakeQemu(body: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-fake-qemu-" });
  const path = `${dir}/qemu`;
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

async function withFake<T>(body: string, fn: (qemu: string) => Promise<T>): Promise<T> {
  const qemu = await fakeQemu(body);
  try {
    return await fn(qemu);
  } finally {
    await Deno.remove(qemu.slice(0, qemu.lastIndexOf("/")), { recursive: true });
  }
}

const base = { kernel: "k", initrd: "i", socketPath: "/s", tag: "t", timeoutMs: 10_000 };

Deno.test("runGuest: parses a complete run and streams lines", async () => {
  const lines: string[] = [];
  const run = await withFake(
    String.raw`printf 'SeaBIOS\r\n\033c\033[2JVFSTRACE-BEGIN 2.50\r\n'
echo 'VFSTRACE-RESULT create ok 0.25'
echo 'VFSTRACE-RESULT chmod fail - exit 1: mode'
echo 'VFSTRACE-EXPECT absent d/x'
echo 'a warning' >&2
printf 'VFSTRACE-END 3 7.75'`,
    (qemu) => runGuest({ ...base, qemu, onConsoleLine: (l) => lines.push(l) }),
  );
  assert.deepEqual(run.checks.map((c) => `${c.name}:${c.status}`), ["create:ok", "chmod:fail"]);
  assert.deepEqual(run.expectations, [{ kind: "absent", path: "d/x" }]);
  assert.equal(run.workloadStatus, 3);
  assert.equal(run.workloadMs, 5250);
  assert.equal(run.stderr, "a warning\n");
  assert.equal(lines[0], "SeaBIOS");
  assert.equal(lines.at(-1), "VFSTRACE-END 3 7.75");
  assert.ok(run.bootToPoweroffMs >= 0);
  assert.ok(run.command.some((a) => a.endsWith("/qemu")));
});

Deno.test("runGuest: a guest that never powers off is killed at the time limit", async () => {
  const t0 = performance.now();
  const err = await withFake(
    "echo 'still booting'; exec sleep 30",
    (qemu) => runGuest({ ...base, qemu, timeoutMs: 300 }).then(() => undefined, (e) => e),
  );
  assert.ok(err instanceof QemuTimeoutError, String(err));
  assert.equal(err.timeoutMs, 300);
  assert.match(err.consoleTail, /still booting/);
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("runGuest: QEMU failing surfaces its status and stderr", async () => {
  const err = await withFake(
    "echo \"qemu: Failed to connect to '/s': Connection refused\" >&2; exit 1",
    (qemu) => runGuest({ ...base, qemu }).then(() => undefined, (e) => e),
  );
  assert.ok(err instanceof QemuError, String(err));
  assert.equal(err.exitCode, 1);
  assert.match(err.stderr, /Connection refused/);
  assert.match(err.message, /exited 1: .*Connection refused/);
});

Deno.test("runGuest: init's error marker becomes GuestSetupError", async () => {
  const err = await withFake(
    "echo 'VFSTRACE-ERROR mount mount -t virtiofs t /mnt: No such device'",
    (qemu) => runGuest({ ...base, qemu }).then(() => undefined, (e) => e),
  );
  assert.ok(err instanceof GuestSetupError, String(err));
  assert.equal(err.stage, "mount");
  assert.match(err.message, /No such device/);
});

Deno.test("runGuest: powering off before the end marker is a GuestSetupError", async () => {
  for (
    const [body, stage] of [["echo 'Kernel panic'", "boot"], [
      "echo 'VFSTRACE-BEGIN 1.0'",
      "workload",
    ]]
  ) {
    const err = await withFake(
      body ?? "",
      (qemu) => runGuest({ ...base, qemu }).then(() => undefined, (e) => e),
    );
    assert.ok(err instanceof GuestSetupError, String(err));
    assert.equal(err.stage, stage);
  }
});
