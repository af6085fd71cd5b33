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
  statx,
  StatxMask,
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

Deno.test("fs: statx of an O_PATH fd agrees with fstat, symlinks not followed", () => {
  const dir = Deno.makeTempDirSync({ prefix: "vfstrace-sys-statx-" });
  const dfd = openat(At.FDCWD, dir, O.PATH | O.DIRECTORY);
  try {
    const fd = openat(dfd, "f", O.CREAT | O.RDWR | O.EXCL, 0o640);
    pwritev(fd, [enc.encode("twelve bytes")], 0n);
    close(fd);
    utimensat(dfd, "f", { sec: 1234n, nsec: 56 }, { sec: 5678n, nsec: 90 });
    symlinkat("f", dfd, "l");
    const pf = openat(dfd, "f", O.PATH | O.NOFOLLOW);
    const pl = openat(dfd, "l", O.PATH | O.NOFOLLOW);
    try {
      const sx = statx(pf, "", At.EMPTY_PATH | At.SYMLINK_NOFOLLOW, StatxMask.BASIC_STATS);
      const st = fstat(pf);
      assert.equal(sx.mask & StatxMask.BASIC_STATS, StatxMask.BASIC_STATS);
      assert.equal(sx.size, 12n);
      assert.equal(sx.mode, st.mode);
      assert.equal(sx.ino, st.ino);
      assert.equal(sx.uid, st.uid);
      assert.equal(sx.nlink, 1);
      assert.deepEqual(sx.atime, { sec: 1234n, nsec: 56 });
      assert.deepEqual(sx.mtime, { sec: 5678n, nsec: 90 });
      assert.equal(sx.ctime.sec, st.ctime);
      const sl = statx(pl, "", At.EMPTY_PATH | At.SYMLINK_NOFOLLOW, StatxMask.TYPE);
      assert.equal(sl.mode & S.IFMT, S.IFLNK);
    } finally {
      close(pf);
      close(pl);
    }
    assert.throws(
      () => statx(dfd, "missing", 0, StatxMask.BASIC_STATS),
      (e: unknown) => e instanceof SysError && e.code === "ENOENT" && e.call === "statx",
    );
  } finally {
    close(dfd);
    Deno.removeSync(dir, { recursive: true });
  }
});
