import assert from "node:assert/strict";
import { Errno, lgetxattr, lsetxattr, SysError, XattrFlags } from "./mod.ts";

const enc = new TextEncoder();

/** Runs `fn` on a fresh empty file in a temporary directory. */
async function withFile(fn: (dir: string, file: string) => void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-xattr-test-" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "");
    fn(dir, `${dir}/f`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("lgetxattr: values round-trip whole, empty ones too; absent is undefined", async () => {
  await withFile((_dir, f) => {
    // Longer than any small fixed buffer, still within one ext4 block.
    const big = new Uint8Array(3000).map((_, i) => (i * 31 + 7) & 0xff);
    lsetxattr(f, "user.vfstrace.small", enc.encode("hello"));
    lsetxattr(f, "user.vfstrace.big", big);
    lsetxattr(f, "user.vfstrace.empty", new Uint8Array(0));
    assert.deepEqual(lgetxattr(f, "user.vfstrace.small"), enc.encode("hello"));
    assert.deepEqual(lgetxattr(f, "user.vfstrace.big"), big);
    assert.deepEqual(lgetxattr(f, "user.vfstrace.empty"), new Uint8Array(0));
    assert.equal(lgetxattr(f, "user.vfstrace.none"), undefined);
  });
});

Deno.test("lsetxattr: XATTR_CREATE and XATTR_REPLACE fail with EEXIST and ENODATA", async () => {
  await withFile((_dir, f) => {
    lsetxattr(f, "user.a", enc.encode("1"), XattrFlags.XATTR_CREATE);
    assert.throws(
      () => lsetxattr(f, "user.a", enc.encode("2"), XattrFlags.XATTR_CREATE),
      (e) => e instanceof SysError && e.errno === Errno.EEXIST && e.call === "lsetxattr",
    );
    assert.throws(
      () => lsetxattr(f, "user.b", enc.encode("2"), XattrFlags.XATTR_REPLACE),
      (e) => e instanceof SysError && e.code === "ENODATA",
    );
    lsetxattr(f, "user.a", enc.encode("3"), XattrFlags.XATTR_REPLACE);
    assert.deepEqual(lgetxattr(f, "user.a"), enc.encode("3"));
  });
});

Deno.test("lgetxattr: other failures are SysErrors naming the path and attribute", async () => {
  await withFile((dir, f) => {
    assert.throws(
      () => lgetxattr(`${dir}/missing`, "user.a"),
      (e) =>
        e instanceof SysError && e.code === "ENOENT" &&
        e.message.startsWith(`lgetxattr(${dir}/missing, user.a): ENOENT`),
    );
    // The l- calls do not follow symlinks: the link's own attributes are read.
    Deno.symlinkSync(f, `${dir}/l`);
    lsetxattr(f, "user.a", enc.encode("target"));
    assert.equal(lgetxattr(`${dir}/l`, "user.a"), undefined);
    assert.throws(() => lgetxattr(f, "user.a\0b"), TypeError);
  });
});
