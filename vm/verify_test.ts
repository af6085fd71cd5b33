import assert from "node:assert/strict";
import type { Expectation } from "./protocol.ts";
import { safeRelativePath, sha256File, verifyHost } from "./verify.ts";

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
