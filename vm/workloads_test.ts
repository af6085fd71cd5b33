import assert from "node:assert/strict";
import { shSyntaxOk } from "./_testing.ts";
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

/** Runs `script` with the helper library under busybox sh on the host, cwd = `root`. */
async function runWithLibrary(root: string, script: string): Promise<string> {
  const out = await new Deno.Command("/bin/busybox", {
    args: ["sh", "-c", `. "$0"; ${script}`, `${root}/.lib.sh`],
    cwd: root,
    env: { VT_ROOT: root, PATH: "/usr/bin:/bin" },
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
