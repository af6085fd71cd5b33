import assert from "node:assert/strict";
import { lgetxattr } from "../sys/xattr.ts";
import { type GuestToolchain, guestToolchain } from "./deps.ts";
import { InitramfsError } from "./errors.ts";
import {
  compileHelper,
  GUEST_HELPERS,
  type GuestHelper,
  helpersId,
  installHelpers,
} from "./guest_helpers.ts";
import { MISSING_HELPERS_DIR } from "./protocol.ts";

const toolchain = await guestToolchain();
const noToolchain: GuestToolchain = { available: false, reason: "no /usr/bin/gcc on the host" };
const VFS_XATTR = GUEST_HELPERS.find((h) => h.name === "vfs_xattr");

interface Run {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

/** Builds vfs_xattr warning-free into a temp dir and runs `fn` with a runner for it. */
async function withVfsXattr(
  fn: (run: (...args: string[]) => Promise<Run>, dir: string) => Promise<void>,
): Promise<void> {
  if (!toolchain.available || VFS_XATTR === undefined) throw new Error("no toolchain");
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
  try {
    await compileHelper(VFS_XATTR, `${dir}/vfs_xattr`, toolchain.cc, ["-Werror"]);
    const run = async (...args: string[]): Promise<Run> => {
      const o = await new Deno.Command(`${dir}/vfs_xattr`, {
        args,
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      return {
        code: o.code,
        stdout: o.stdout,
        out: dec.decode(o.stdout),
        err: dec.decode(o.stderr),
      };
    };
    await fn(run, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "vfs_xattr: set/get/size/list/remove with create/replace semantics and errno names",
  ignore: !toolchain.available,
  fn: () =>
    withVfsXattr(async (run, dir) => {
      await Deno.writeTextFile(`${dir}/f`, "");
      const big = Array.from({ length: 1000 }, (_, i) => String(i).padStart(4, "0")).join("");
      assert.deepEqual(await run("set", "user.small", "hello", "f", "create"), {
        code: 0,
        stdout: new Uint8Array(0),
        out: "",
        err: "",
      });
      assert.equal((await run("set", "user.big", big, "f")).code, 0);
      // The host sees exactly what the helper wrote.
      assert.deepEqual(lgetxattr(`${dir}/f`, "user.big"), new TextEncoder().encode(big));

      const get = await run("get", "user.small", "f");
      assert.equal(get.code, 0);
      assert.equal(get.out, "hello", "the value as is, no newline added");
      assert.equal((await run("get", "user.big", "f")).out, big);
      assert.equal((await run("size", "user.big", "f")).out, "4000\n");
      assert.deepEqual((await run("list", "f")).out.split("\n").sort(), [
        "",
        "user.big",
        "user.small",
      ]);

      const exists = await run("set", "user.small", "again", "f", "create");
      assert.equal(exists.code, 1);
      assert.equal(exists.err, "vfs_xattr: setxattr(f, user.small): EEXIST (File exists)\n");
      const noData = await run("set", "user.none", "x", "f", "replace");
      assert.equal(noData.code, 1);
      assert.match(noData.err, /^vfs_xattr: setxattr\(f, user\.none\): ENODATA \(/);
      assert.equal((await run("set", "user.small", "replaced", "f", "replace")).code, 0);
      assert.equal((await run("get", "user.small", "f")).out, "replaced");

      assert.equal((await run("remove", "user.big", "f")).code, 0);
      const gone = await run("get", "user.big", "f");
      assert.equal(gone.code, 1);
      assert.match(gone.err, /^vfs_xattr: getxattr\(f, user\.big\): ENODATA /);
      assert.match(
        (await run("remove", "user.big", "f")).err,
        /removexattr\(f, user\.big\): ENODATA/,
      );
      assert.equal((await run("list", "f")).out, "user.small\n");
      assert.match((await run("list", "missing")).err, /listxattr\(missing\): ENOENT/);

      // Empty values and empty lists print nothing and succeed.
      assert.equal((await run("set", "user.empty", "", "f")).code, 0);
      assert.deepEqual(await run("get", "user.empty", "f"), {
        code: 0,
        stdout: new Uint8Array(0),
        out: "",
        err: "",
      });
      await Deno.writeTextFile(`${dir}/bare`, "");
      assert.deepEqual(await run("list", "bare"), {
        code: 0,
        stdout: new Uint8Array(0),
        out: "",
        err: "",
      });
    }),
});

Deno.test({
  name: "vfs_xattr: usage errors exit 2, output errors exit 1",
  ignore: !toolchain.available,
  fn: () =>
    withVfsXattr(async (run, dir) => {
      await Deno.writeTextFile(`${dir}/f`, "");
      for (
        const args of [
          [],
          ["frobnicate"],
          ["set", "user.a", "v"],
          ["set", "user.a", "v", "f", "sometimes"],
          ["get", "user.a"],
          ["list"],
          ["remove", "user.a", "f", "extra"],
        ]
      ) {
        const r = await run(...args);
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.err, /^usage: vfs_xattr set NAME VALUE FILE/);
      }
      assert.equal((await run("set", "user.a", "v", "f")).code, 0);
      // A value that cannot be written out is a failure, not a silent success.
      const devFull = await new Deno.Command("/bin/sh", {
        args: ["-c", `"$0" get user.a f > /dev/full`, `${dir}/vfs_xattr`],
        cwd: dir,
        stderr: "piped",
      }).output();
      assert.equal(devFull.code, 1);
      assert.match(new TextDecoder().decode(devFull.stderr), /writing to stdout/);
    }),
});

Deno.test("helpersId: changes with the sources and the toolchain, stable otherwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
  try {
    await Deno.writeTextFile(`${dir}/a.c`, "int main(void) { return 0; }\n");
    const helper: GuestHelper = { name: "a", source: new URL(`file://${dir}/a.c`) };
    const none = await helpersId(noToolchain, [helper]);
    assert.equal(await helpersId(noToolchain, [helper]), none);
    const other = await helpersId({ available: false, reason: "something else" }, [helper]);
    assert.notEqual(other, none);
    await Deno.writeTextFile(`${dir}/a.c`, "int main(void) { return 1; }\n");
    assert.notEqual(await helpersId(noToolchain, [helper]), none);
    if (toolchain.available) assert.notEqual(await helpersId(toolchain, [helper]), none);
    await assert.rejects(
      helpersId(noToolchain, [{ name: "b", source: new URL(`file://${dir}/missing.c`) }]),
      InitramfsError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("installHelpers: without a toolchain each helper says why it is missing", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
  try {
    await installHelpers(root, noToolchain);
    for (const h of GUEST_HELPERS) {
      assert.equal(
        await Deno.readTextFile(`${root}${MISSING_HELPERS_DIR}/${h.name}`),
        `${h.name} was not built: no /usr/bin/gcc on the host\n`,
      );
      await assert.rejects(Deno.stat(`${root}/bin/${h.name}`), Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "installHelpers: static binaries in bin/; a compiler error is an InitramfsError",
  ignore: !toolchain.available,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
    try {
      await installHelpers(root, toolchain);
      for (const h of GUEST_HELPERS) {
        const st = await Deno.stat(`${root}/bin/${h.name}`);
        assert.ok(st.isFile && (st.mode ?? 0) & 0o100, h.name);
        // Static: no program interpreter (ld.so) to find in the initramfs.
        const elf = await Deno.readFile(`${root}/bin/${h.name}`);
        assert.equal(new TextDecoder().decode(elf).includes("/lib64/ld-linux"), false);
      }
      await Deno.writeTextFile(`${root}/broken.c`, "int main(void) { return }\n");
      const err = await installHelpers(`${root}/out`, toolchain, [
        { name: "broken", source: new URL(`file://${root}/broken.c`) },
      ]).then(() => undefined, (e) => e);
      assert.ok(err instanceof InitramfsError, String(err));
      assert.match(err.message, /compiling the guest helper broken failed: .*error/s);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "vfs_lock: fcntl and flock contention, F_GETLK, POSIX owner semantics",
  ignore: !toolchain.available,
  fn: async () => {
    const helper = GUEST_HELPERS.find((h) => h.name === "vfs_lock");
    assert.ok(helper && toolchain.available);
    const cc = toolchain.cc;
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
    const dec = new TextDecoder();
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(`${dir}/vfs_lock`, { args, cwd: dir }).output();
      return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
    };
    try {
      await compileHelper(helper, `${dir}/vfs_lock`, cc, ["-Werror"]);
      await Deno.writeTextFile(`${dir}/f`, "");
      const owner = await run("owner", "f");
      assert.equal(owner.code, 0, owner.err);
      assert.match(owner.out, /after close of the other descriptor: released/);
      // A holder in another process: refused, reported by F_GETLK, then free again.
      const holder = new Deno.Command(`${dir}/vfs_lock`, {
        args: ["fcntl", "f", "w", "0", "10", "nb", "800"],
        cwd: dir,
        stdout: "piped",
      }).spawn();
      const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assert.equal((await reader.read()).value, "locked\n");
      const refused = await run("fcntl", "f", "w", "5", "1", "nb");
      assert.equal(refused.code, 1);
      assert.match(refused.err, /^fcntl\(F_SETLK\): EAGAIN /);
      assert.equal((await run("getlk", "f", "r", "0", "0")).out, "w 0 10\n");
      assert.equal((await run("fcntl", "f", "w", "10", "5", "nb")).code, 0);
      const waited = await run("fcntl", "f", "w", "0", "0", "wait");
      assert.equal(waited.out, "locked\n");
      assert.equal((await holder.status).code, 0);
      await reader.cancel();
      assert.equal((await run("getlk", "f", "w", "0", "0")).out, "unlocked\n");
      assert.equal((await run("flock", "f", "ex", "nb")).code, 0);
      assert.equal((await run("bogus", "f")).code, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "vfs_ops: rename2, seek, append, unlinked, create; errno names; usage exits 2",
  ignore: !toolchain.available,
  fn: async () => {
    const helper = GUEST_HELPERS.find((h) => h.name === "vfs_ops");
    assert.ok(helper && toolchain.available);
    const cc = toolchain.cc;
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-helper-test-" });
    const dec = new TextDecoder();
    const run = async (...args: string[]) => {
      const o = await new Deno.Command(`${dir}/vfs_ops`, { args, cwd: dir }).output();
      return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
    };
    try {
      await compileHelper(helper, `${dir}/vfs_ops`, cc, ["-Werror"]);
      await Deno.writeTextFile(`${dir}/a`, "a");
      await Deno.writeTextFile(`${dir}/b`, "b");
      const exists = await run("rename2", "noreplace", "a", "b");
      assert.equal(exists.code, 1);
      assert.match(exists.err, /^renameat2: EEXIST /);
      assert.equal((await run("rename2", "exchange", "a", "b")).code, 0);
      assert.equal(await Deno.readTextFile(`${dir}/a`), "b");
      assert.equal((await run("append", "log", "3", "x")).code, 0);
      assert.equal(await Deno.readTextFile(`${dir}/log`), "x\nx\nx\n");
      assert.equal((await run("seek", "data", "log", "0")).out, "0\n");
      assert.equal((await run("unlinked", "u")).out, "still here nlink=0\n");
      assert.equal((await run("create", "c", "640")).code, 0);
      // The mode asked for, less whatever the umask takes.
      const mode = (await Deno.stat(`${dir}/c`)).mode! & 0o777;
      assert.equal(mode & ~0o640, 0);
      assert.equal(mode & 0o600, 0o600);
      assert.equal((await run("nope", "x")).code, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
