import assert from "node:assert/strict";
import {
  At,
  close,
  copyFileRange,
  fstat,
  fstatat,
  getdents64,
  getRlimitNofile,
  linkat,
  lseek,
  mkdirat,
  O,
  openat,
  preadv,
  pwritev,
  readlinkat,
  Rename,
  renameat2,
  S,
  Seek,
  symlinkat,
  SysError,
  unlinkat,
  utimensat,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("fs: *at calls relative to an O_PATH directory fd, errors carry errno names", () => {
  const dir = Deno.makeTempDirSync({ prefix: "vfstrace-sys-fs-" });
  const dfd = openat(At.FDCWD, dir, O.PATH | O.DIRECTORY);
  try {
    mkdirat(dfd, "d", 0o750);
    assert.equal(fstatat(dfd, "d", At.SYMLINK_NOFOLLOW).mode & S.IFMT, S.IFDIR);
    const fd = openat(dfd, "f", O.CREAT | O.RDWR | O.EXCL, 0o644);
    assert.equal(pwritev(fd, [enc.encode("hello "), enc.encode("world")], 0n), 11);
    const a = new Uint8Array(3);
    const b = new Uint8Array(20);
    assert.equal(preadv(fd, [a, b], 2n), 9);
    assert.equal(dec.decode(a) + dec.decode(b.subarray(0, 6)), "llo world");
    assert.equal(copyFileRange(fd, 0n, fd, 100n, 5n), 5);
    assert.equal(lseek(fd, 0n, Seek.END), 105n);
    close(fd);
    // Raw byte names that are not UTF-8 work too.
    const raw = new Uint8Array([0x66, 0xff, 0x67]);
    symlinkat("f", dfd, raw);
    assert.equal(dec.decode(readlinkat(dfd, raw)), "f");
    linkat(dfd, "f", dfd, "g");
    assert.equal(fstatat(dfd, "g").nlink, 2n);
    assert.throws(
      () => renameat2(dfd, "f", dfd, "g", Rename.NOREPLACE),
      (e: unknown) => e instanceof SysError && e.code === "EEXIST" && e.call === "renameat2",
    );
    utimensat(dfd, "f", { sec: 1000n, nsec: 5 }, "omit");
    assert.equal(fstatat(dfd, "f").atime, 1000n);
    const pfd = openat(dfd, "f", O.PATH | O.NOFOLLOW);
    assert.equal(fstat(pfd).size, 105n);
    close(pfd);
    const rd = openat(At.FDCWD, dir, O.RDONLY | O.DIRECTORY);
    const names = getdents64(rd, new Uint8Array(4096)).map((d) => d.name);
    close(rd);
    assert.equal(names.length, 6); // . .. d f g and the raw-named link
    unlinkat(dfd, "d", At.REMOVEDIR);
    assert.throws(
      () => unlinkat(dfd, "d", At.REMOVEDIR),
      (e: unknown) => e instanceof SysError && e.code === "ENOENT",
    );
    assert.ok(getRlimitNofile().soft > 0n);
  } finally {
    close(dfd);
    Deno.removeSync(dir, { recursive: true });
  }
});
