import assert from "node:assert/strict";
import { lsetxattr } from "../sys/xattr.ts";
import { HostCommandError } from "./errors.ts";
import type { Expectation } from "./protocol.ts";
import { GETFATTR, hostXattr, safeRelativePath, sha256File, verifyHost } from "./verify.ts";

const enc = new TextEncoder();

Deno.test("safeRelativePath", () => {
  for (const ok of ["a", "a/b", "a.b/c_d", "...x"]) assert.equal(safeRelativePath(ok), true, ok);
  for (const bad of ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a/."]) {
    assert.equal(safeRelativePath(bad), false, bad);
  }
});

Deno.test("verifyHost: each kind of mismatch is a failed check with a reason", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-verify-test-" });
  try {
    await Deno.writeTextFile(`${root}/f`, "hello\n");
    await Deno.chmod(`${root}/f`, 0o640);
    await Deno.writeTextFile(`${root}/g`, "other\n");
    await Deno.symlink("f", `${root}/l`);
    const expectations: Expectation[] = [
      { kind: "stat", path: "f", fields: { size: 6, mode: 0o100640, nlink: 1 } },
      { kind: "stat", path: "f", fields: { size: 7, mode: 0o100644 } },
      { kind: "stat", path: "missing", fields: { size: 1 } },
      {
        kind: "sha256",
        path: "f",
        sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
      },
      { kind: "sha256", path: "g", sha256: "0".repeat(64) },
      { kind: "symlink", path: "l", target: "f" },
      { kind: "symlink", path: "l", target: "g" },
      { kind: "symlink", path: "f", target: "g" },
      { kind: "same", path: "f", other: "g" },
      { kind: "absent", path: "f" },
      { kind: "absent", path: "../etc" },
    ];
    const results = await verifyHost(root, expectations);
    assert.deepEqual(
      results.map((r) => r.status),
      ["ok", "fail", "fail", "ok", "fail", "ok", "fail", "fail", "fail", "fail", "fail"],
    );
    assert.match(
      results[1]?.detail ?? "",
      /size: guest 7, host 6; mode: guest 0100644, host 0100640/,
    );
    assert.match(results[2]?.detail ?? "", /missing on the host/);
    assert.match(results[7]?.detail ?? "", /not a symlink/);
    assert.match(results[8]?.detail ?? "", /different inodes/);
    assert.match(results[10]?.detail ?? "", /unsafe path/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("sha256File: streams files larger than its buffer", async () => {
  const path = await Deno.makeTempFile();
  try {
    const data = new Uint8Array(3 * (1 << 20) + 17).map((_, i) => i * 7);
    await Deno.writeFile(path, data);
    const want = [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.equal(await sha256File(path), want);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("verifyHost: xattr and noxattr expectations read the host's attributes", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-verify-test-" });
  try {
    await Deno.writeTextFile(`${root}/f`, "");
    lsetxattr(`${root}/f`, "user.a", enc.encode("hello"));
    lsetxattr(`${root}/f`, "user.bin", new Uint8Array([0, 1, 0xff]));
    lsetxattr(`${root}/f`, "user.empty", new Uint8Array(0));
    const expectations: Expectation[] = [
      { kind: "xattr", path: "f", name: "user.a", valueHex: "68656c6c6f" },
      { kind: "xattr", path: "f", name: "user.bin", valueHex: "0001ff" },
      { kind: "xattr", path: "f", name: "user.empty", valueHex: "" },
      { kind: "noxattr", path: "f", name: "user.gone" },
      { kind: "xattr", path: "f", name: "user.a", valueHex: "68656c6c" },
      { kind: "xattr", path: "f", name: "user.gone", valueHex: "00" },
      { kind: "noxattr", path: "f", name: "user.bin" },
      { kind: "xattr", path: "missing", name: "user.a", valueHex: "" },
      { kind: "noxattr", path: "../f", name: "user.a" },
    ];
    const results = await verifyHost(root, expectations);
    assert.deepEqual(results.map((r) => `${r.status} ${r.name}: ${r.detail}`), [
      "ok host:xattr:f: user.a = 'hello' (5 bytes)",
      "ok host:xattr:f: user.bin = 0x0001ff (3 bytes)",
      "ok host:xattr:f: user.empty = '' (0 bytes)",
      "ok host:noxattr:f: no user.gone",
      "fail host:xattr:f: user.a: guest 'hell' (4 bytes), host 'hello' (5 bytes)",
      "fail host:xattr:f: user.gone: absent on the host",
      "fail host:noxattr:f: user.bin: present on the host (0x0001ff (3 bytes))",
      "fail host:xattr:missing: missing on the host",
      "fail host:noxattr:../f: refusing unsafe path '../f'",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("hostXattr: getfattr when installed, libc otherwise, same answers", async () => {
  const root = await Deno.makeTempDir({ prefix: "vfstrace-verify-test-" });
  try {
    await Deno.writeTextFile(`${root}/f`, "");
    const value = new Uint8Array(3000).map((_, i) => (i * 13) & 0xff);
    lsetxattr(`${root}/f`, "user.v", value);
    // A stand-in with getfattr's interface and wording (attr 2.5.1), so that path runs anywhere.
    const fake = `${root}/getfattr`;
    await Deno.writeTextFile(
      fake,
      `#!/bin/sh
for a; do last=$a; done
case "$last" in
  */has) printf 'v\\0\\n' ;;
  */none) echo "$last: user.v: No such attribute" >&2; exit 1 ;;
  *) echo "getfattr: $last: Permission denied" >&2; exit 1 ;;
esac
`,
    );
    await Deno.chmod(fake, 0o755);
    const readers: [string, string | null][] = [["libc", null], ["fake getfattr", fake]];
    if (await Deno.stat(GETFATTR).then(() => true, () => false)) {
      readers.push(["getfattr", GETFATTR]);
    }
    for (const [what, getfattr] of readers) {
      const opts = { getfattr };
      if (getfattr !== fake) {
        assert.deepEqual(await hostXattr(`${root}/f`, "user.v", opts), value, what);
        assert.equal(await hostXattr(`${root}/f`, "user.none", opts), undefined, what);
      }
      await assert.rejects(hostXattr(`${root}/missing`, "user.v", opts), what);
    }
    assert.deepEqual(
      await hostXattr(`${root}/has`, "user.v", { getfattr: fake }),
      enc.encode("v\0\n"),
    );
    assert.equal(await hostXattr(`${root}/none`, "user.v", { getfattr: fake }), undefined);
    await assert.rejects(
      hostXattr(`${root}/other`, "user.v", { getfattr: fake }),
      HostCommandError,
    );
    // An absent getfattr falls back to libc.
    assert.deepEqual(
      await hostXattr(`${root}/f`, "user.v", { getfattr: `${root}/no-getfattr` }),
      value,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
