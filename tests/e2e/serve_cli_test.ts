/**
 * End to end: `vfstrace serve`'s virtiofsd-compatible command line, as
 * libvirt and users run it: a listening socket handed over with `--fd N`,
 * `--persist` serving a second guest after the first disconnected,
 * `--socket-group`, `--announce-submounts` (a tmpfs mounted inside the share
 * shows up in the guest as its own mount), and the usage errors.
 */
import assert from "node:assert/strict";
import { close, listenUnix, setCloexec } from "../../sys/mod.ts";
import { type Check, LAUNCHER, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

function serve(args: string[]): Deno.ChildProcess {
  return new Deno.Command(LAUNCHER, {
    args: ["serve", ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function guest(socket: string, script: string, dir: string): Promise<Check[]> {
  const file = `${dir}/script-${crypto.randomUUID()}.sh`;
  await Deno.writeTextFile(file, script);
  const g = await new Deno.Command(LAUNCHER, {
    args: ["guest", "--socket", socket, "--script", file, "--json"],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  try {
    return (JSON.parse(dec.decode(g.stdout)) as { checks: Check[] }).checks;
  } catch {
    throw new Error(`guest: ${dec.decode(g.stderr)}`);
  }
}

const statuses = (cs: Check[]) => cs.map((c) => `${c.name} ${c.status}`);
const text = (cs: Check[]) => cs.map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");

Deno.test("serve as libvirt starts it (--fd=N, -o …, --thread-pool-size) with --persist: two guests in turn", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-servecli-" });
  const socket = `${dir}/handed.sock`;
  // As libvirt does: the socket is bound and listening before serve starts.
  const fd = listenUnix(socket);
  setCloexec(fd, false);
  let child: Deno.ChildProcess | undefined;
  try {
    await Deno.mkdir(`${dir}/share`);
    // libvirt's argv for <binary path=…> with cache, sandbox, xattr and lock settings.
    child = serve([
      `--fd=${fd}`,
      "-o",
      `source=${dir}/share,cache=none,sandbox=chroot,xattr,flock,posix_lock`,
      "--thread-pool-size=4",
      "--persist",
    ]);
    close(fd);
    const first = await guest(
      socket,
      "check first sh -c 'echo one > first && cat first'\nexit 0\n",
      dir,
    );
    assert.deepEqual(statuses(first), ["first ok", "umount ok"], text(first));
    // The first front-end has gone; with --persist the next one is served.
    const second = await guest(
      socket,
      't_second() { vt_eq content one "$(cat first)" && echo two > second; }\n' +
        "check second t_second\nexit 0\n",
      dir,
    );
    assert.deepEqual(statuses(second), ["second ok", "umount ok"], text(second));
    assert.equal(await Deno.readTextFile(`${dir}/share/second`), "two\n");
    // Still serving: it ends on SIGTERM.
    child.kill("SIGTERM");
    const end = await child.output();
    const err = dec.decode(end.stderr);
    assert.equal(end.code, 143, err);
    assert.match(err, /served 2 connection\(s\)|front-end connected[\s\S]*front-end connected/);
  } finally {
    try {
      child?.kill("SIGKILL");
    } catch { /* gone */ }
    await child?.output().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve --socket-group: the socket file gets the group and mode 0770", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-servecli-" });
  const socket = `${dir}/g.sock`;
  await Deno.mkdir(`${dir}/share`);
  const group = (await Deno.readTextFile("/etc/group")).split("\n")
    .map((l) => l.split(":")).find((f) => f[2] !== undefined && f[2] !== "0" && f[0] !== "");
  assert.ok(group, "a non-root group in /etc/group");
  const child = serve([
    "--socket-path",
    socket,
    "--shared-dir",
    `${dir}/share`,
    "--socket-group",
    group[0]!,
  ]);
  try {
    await waitForSocket(socket);
    const st = await Deno.lstat(socket);
    assert.equal(st.gid, Number(group[2]));
    assert.equal(st.mode! & 0o777, 0o770);
    const bad = await serve([
      "--socket-path",
      `${dir}/h.sock`,
      "--shared-dir",
      `${dir}/share`,
      "--socket-group",
      "no-such-group-here",
    ]).output();
    assert.notEqual(bad.code, 0);
    assert.match(dec.decode(bad.stderr), /no-such-group-here/);
  } finally {
    child.kill("SIGTERM");
    await child.output();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "serve --announce-submounts: a mount inside the share is its own mount in the guest",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-servecli-" });
    const share = `${dir}/share`;
    await Deno.mkdir(`${share}/sub`, { recursive: true });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "vfstrace-sub", `${share}/sub`],
    }).output();
    assert.equal(mount.code, 0, dec.decode(mount.stderr));
    const socket = `${dir}/s.sock`;
    const child = serve([
      "--socket-path",
      socket,
      "--shared-dir",
      share,
      "--announce-submounts",
      "--log-level",
      "warn",
    ]);
    try {
      await waitForSocket(socket);
      const checks = await guest(
        socket,
        String.raw`
t_sub() {
  # The guest mounts it on first access (an automount).
  a=$(stat -c %d /mnt) && b=$(stat -c %d /mnt/sub/.) || return 1
  grep -q ' /mnt/sub virtiofs ' /proc/mounts || { grep virtiofs /proc/mounts; return 1; }
  [ "$a" != "$b" ] || { echo "same st_dev $a"; return 1; }
  echo in-sub > /mnt/sub/f && echo "own mount, st_dev $a vs $b"
}
check submount t_sub
exit 0
`,
        dir,
      );
      assert.deepEqual(statuses(checks), ["submount ok", "umount ok"], text(checks));
      assert.equal(await Deno.readTextFile(`${share}/sub/f`), "in-sub\n");
      const end = await child.output();
      assert.equal(end.code, 0, dec.decode(end.stderr));
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.output().catch(() => {});
      await new Deno.Command("umount", { args: [`${share}/sub`] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("serve: usage errors are clear and exit 2; virtiofsd options accepted", async () => {
  const run = (args: string[]) => serve(args).output();
  const both = await run(["--socket-path", "/tmp/x.sock", "--fd", "3", "--shared-dir", "/tmp"]);
  assert.equal(both.code, 2);
  assert.match(dec.decode(both.stderr), /--socket-path.*cannot be used with.*--fd|--fd/);
  const cache = await run(["--socket-path", "/tmp/x.sock", "--cache", "sometimes"]);
  assert.equal(cache.code, 2);
  assert.match(dec.decode(cache.stderr), /sometimes/);
  const fd = await run(["--fd", "x", "--shared-dir", "/tmp"]);
  assert.equal(fd.code, 2);
  assert.match(dec.decode(fd.stderr), /--fd: expected a whole number/);
  // Accepted as virtiofsd accepts them; only the missing shared directory is reported.
  const compat = await run([
    "--socket-path",
    "/tmp/x.sock",
    "--thread-pool-size",
    "4",
    "--rlimit-nofile",
    "4096",
    "-o",
    "cache=always,flock,posix_lock,no_xattr,writeback",
    "--log-level",
    "debug",
  ]);
  assert.equal(compat.code, 2);
  assert.match(dec.decode(compat.stderr), /give --shared-dir DIR \(or -o source=DIR\)/);
  const missing = await run(["--socket-path", "/tmp/x.sock", "--shared-dir", "/nonexistent/dir"]);
  assert.equal(missing.code, 3);
  assert.match(dec.decode(missing.stderr), /\/nonexistent\/dir/);
});
