import assert from "node:assert/strict";
import { shSyntaxOk } from "./_testing.ts";
import { guestToolchain } from "./deps.ts";
import { compileHelper, GUEST_HELPERS } from "./guest_helpers.ts";
import { GUEST_LIBRARY, parseConsole } from "./protocol.ts";
import { verifyHost } from "./verify.ts";
import { BUILTIN_WORKLOADS, builtinWorkload, isBuiltinWorkload } from "./workloads.ts";

Deno.test("builtinWorkload: known names, RangeError otherwise", () => {
  assert.equal(builtinWorkload("posix").name, "posix");
  assert.equal(builtinWorkload("smoke").name, "smoke");
  assert.equal(isBuiltinWorkload("toString"), false);
  assert.throws(() => builtinWorkload("nope"), RangeError);
});

Deno.test("workload scripts and the helper library parse with busybox sh", async () => {
  await shSyntaxOk(GUEST_LIBRARY);
  for (const w of Object.values(BUILTIN_WORKLOADS)) await shSyntaxOk(w.script);
});

/**
 * Runs `script` with the helper library under busybox sh on the host, cwd =
 * `root`; `env` adds to or overrides the environment.
 */
async function runWithLibrary(
  root: string,
  script: string,
  env: Record<string, string> = {},
): Promise<string> {
  const out = await new Deno.Command("/bin/busybox", {
    args: ["sh", "-c", `. "$0"; ${script}`, `${root}/.lib.sh`],
    cwd: root,
    env: { VT_ROOT: root, PATH: "/usr/bin:/bin", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("helper library: checks and expectations round-trip to host verification", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-lib-test-" });
  try {
    await Deno.writeTextFile(`${root}/.lib.sh`, GUEST_LIBRARY);
    const text = await runWithLibrary(
      root,
      `
mkdir w && cd w || exit 1
t_ok() { echo "first line"; echo "last line"; }
t_fail() { echo bad; echo worse; return 2; }
t_skip() { echo "no such applet"; return 77; }
t_eq() { vt_eq colour red blue; }
check good t_ok
check broken t_fail
check skipped t_skip
check compare t_eq
printf 'hello\\n' > f && chmod 640 f && ln f f2 && ln -s f l && mkfifo p
expect_stat f
expect_sha256 f
expect_symlink l
expect_same f f2
expect_absent nothing
expect_stat p mode
expect_stat . mode
`,
    );
    const parsed = parseConsole(text);
    assert.deepEqual(parsed.malformed, []);
    for (const c of parsed.checks) assert.equal(typeof c.seconds, "number", c.name);
    assert.deepEqual(parsed.checks.map(({ name, status, detail }) => ({ name, status, detail })), [
      { name: "good", status: "ok", detail: "last line" },
      { name: "broken", status: "fail", detail: "exit 2: bad worse" },
      { name: "skipped", status: "skip", detail: "no such applet" },
      { name: "compare", status: "fail", detail: "exit 1: colour: expected 'red', got 'blue'" },
    ]);
    assert.deepEqual(parsed.expectations.map((e) => `${e.kind} ${e.path}`), [
      "stat w/f",
      "sha256 w/f",
      "symlink w/l",
      "same w/f",
      "absent w/nothing",
      "stat w/p",
      "stat w",
    ]);
    const hostChecks = await verifyHost(root, parsed.expectations);
    assert.deepEqual(hostChecks.filter((c) => c.status !== "ok"), []);
    assert.equal(hostChecks.length, 7);

    // What the host sees afterwards is what counts: change the file and the checks fail.
    await Deno.writeTextFile(`${root}/w/f`, "changed\n");
    const after = await verifyHost(root, parsed.expectations);
    assert.deepEqual(
      after.filter((c) => c.status === "fail").map((c) => c.name),
      ["host:stat:w/f", "host:sha256:w/f"],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("helper library: vt_need skips with the reason the image gives", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-lib-test-" });
  try {
    await Deno.writeTextFile(`${root}/.lib.sh`, GUEST_LIBRARY);
    await Deno.mkdir(`${root}/missing`);
    await Deno.writeTextFile(`${root}/missing/vt_nope2`, "vt_nope2 was not built: no gcc\n");
    const text = await runWithLibrary(
      root,
      `
t_have() { vt_need sh cat || return 77; echo ran; }
t_nope() { vt_need sh vt_nope1 || return 77; echo ran; }
t_reason() { vt_need vt_nope2 || return 77; echo ran; }
check have t_have
check nope t_nope
check reason t_reason
`,
      { VT_MISSING: `${root}/missing` },
    );
    assert.deepEqual(parseConsole(text).checks.map((c) => `${c.status} ${c.name} ${c.detail}`), [
      "ok have ran",
      "skip nope the guest has no vt_nope1",
      "skip reason vt_nope2 was not built: no gcc",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const toolchain = await guestToolchain();
const VFS_XATTR = GUEST_HELPERS.find((h) => h.name === "vfs_xattr");

Deno.test({
  name: "helper library: vt_fails, expect_xattr and expect_no_xattr with vfs_xattr",
  ignore: !toolchain.available || VFS_XATTR === undefined,
  fn: async () => {
    if (!toolchain.available || VFS_XATTR === undefined) return;
    const root = await Deno.makeTempDir({ prefix: "vfstrace-lib-test-" });
    try {
      await Deno.writeTextFile(`${root}/.lib.sh`, GUEST_LIBRARY);
      await Deno.mkdir(`${root}/bin`);
      await compileHelper(VFS_XATTR, `${root}/bin/vfs_xattr`, toolchain.cc);
      const text = await runWithLibrary(
        root,
        `
mkdir w && cd w && : > f || exit 1
vfs_xattr set user.text 'two words' f && vfs_xattr set user.nl "$(printf 'a\\nb')" f || exit 1
vfs_xattr set user.empty '' f || exit 1
t_fails_ok() { vt_fails ENODATA vfs_xattr get user.none f; }
t_fails_wrong() { vt_fails EEXIST vfs_xattr get user.none f; }
t_fails_success() { vt_fails ENODATA vfs_xattr get user.text f; }
check fails_ok t_fails_ok
check fails_wrong t_fails_wrong
check fails_success t_fails_success
expect_xattr f user.text
expect_xattr f user.nl
expect_xattr f user.empty
expect_no_xattr f user.none
expect_xattr f user.none || echo "expect_xattr failed as it should"
`,
        { PATH: `${root}/bin:/usr/bin:/bin` },
      );
      const parsed = parseConsole(text);
      assert.deepEqual(parsed.malformed, []);
      assert.deepEqual(parsed.checks.map((c) => `${c.status} ${c.name} ${c.detail}`.trimEnd()), [
        "ok fails_ok",
        "fail fails_wrong exit 1: vfs_xattr get user.none f: expected EEXIST, got: " +
        "vfs_xattr: getxattr(f, user.none): ENODATA (No data available)",
        "fail fails_success exit 1: vfs_xattr get user.text f: succeeded, expected a failure " +
        "with ENODATA",
      ]);
      assert.deepEqual(parsed.expectations, [
        { kind: "xattr", path: "w/f", name: "user.text", valueHex: "74776f20776f726473" },
        { kind: "xattr", path: "w/f", name: "user.nl", valueHex: "610a62" },
        { kind: "xattr", path: "w/f", name: "user.empty", valueHex: "" },
        { kind: "noxattr", path: "w/f", name: "user.none" },
      ]);
      assert.match(text, /expect_xattr failed as it should/);
      const host = await verifyHost(root, parsed.expectations);
      assert.deepEqual(host.filter((c) => c.status !== "ok"), []);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
