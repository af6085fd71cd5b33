/**
 * FUSE opcode groups served over the device by the built-in front-end, each
 * result checked on the host as well.
 */
import assert from "node:assert/strict";
import type { FuseReply } from "../decode/fuse.ts";
import { Errno } from "../sys/errno.ts";
import { getxattr, setxattr, type Stat } from "../sys/mod.ts";
import { InitFlags } from "../decode/fuse.ts";
import { accessAllowed } from "./fs.ts";
import { allInitFlags, rig } from "./_testing.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function ok(rep: FuseReply, what: string): FuseReply {
  assert.equal(rep.header.error, 0, `${what}: error ${rep.header.error}`);
  return rep;
}

function nodeOf(rep: FuseReply): bigint {
  return BigInt(rep.arg!.nodeid as bigint);
}

function fhOf(rep: FuseReply): bigint {
  return BigInt(rep.arg!.fh as bigint);
}

Deno.test("read path: LOOKUP, GETATTR, OPEN, READ, READDIRPLUS, RELEASE, FORGET, STATFS", async () => {
  const r = await rig();
  try {
    await Deno.writeTextFile(`${r.dir}/hello.txt`, "hello, world\n");
    await Deno.mkdir(`${r.dir}/sub`);
    await r.init();
    const look = ok(await r.call("LOOKUP", { names: ["hello.txt"] }), "LOOKUP");
    const node = nodeOf(look);
    assert.equal(look.arg!.size, 13n);
    assert.equal(
      (await r.call("LOOKUP", { names: ["missing"] })).header.error,
      -Errno.ENOENT,
    );
    const attr = ok(await r.call("GETATTR", { nodeid: node, arg: {} }), "GETATTR");
    assert.equal(attr.arg!.size, 13n);
    const open = ok(await r.call("OPEN", { nodeid: node, arg: { flags: 0 } }), "OPEN");
    const read = ok(
      await r.call("READ", { nodeid: node, arg: { fh: fhOf(open), offset: 7, size: 100 } }),
      "READ",
    );
    assert.equal(dec.decode(read.data[0]), "world\n");
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh: fhOf(open) } }), "RELEASE");
    assert.equal(r.device.server.handleCount, 0);

    const od = ok(await r.call("OPENDIR", { nodeid: 1n, arg: {} }), "OPENDIR");
    const list = ok(
      await r.call("READDIRPLUS", { nodeid: 1n, arg: { fh: fhOf(od), offset: 0, size: 4096 } }),
      "READDIRPLUS",
    );
    const names = list.entries.map((e) => e.name).sort();
    assert.deepEqual(names, [".", "..", "hello.txt", "sub"]);
    const sub = list.entries.find((e) => e.name === "sub")!;
    assert.ok(BigInt(sub.entry!.nodeid as bigint) > 1n);
    ok(await r.call("RELEASEDIR", { nodeid: 1n, arg: { fh: fhOf(od) } }), "RELEASEDIR");

    const fs = ok(await r.call("STATFS", { nodeid: 1n }), "STATFS");
    assert.ok(Number(fs.arg!.bsize) > 0);

    // One LOOKUP + one READDIRPLUS entry each: forgetting those counts drops them.
    const before = r.device.server.inodeCount;
    await r.forget([{ nodeid: node, nlookup: 2n }, {
      nodeid: BigInt(sub.entry!.nodeid as bigint),
      nlookup: 1n,
    }]);
    assert.equal(r.device.server.inodeCount, before - 2);
    assert.equal(
      (await r.call("GETATTR", { nodeid: node, arg: {} })).header.error,
      -Errno.ESTALE,
    );
  } finally {
    await r.close();
  }
});

Deno.test("READDIR offsets are stable cookies: small pages list every name once", async () => {
  const r = await rig();
  try {
    for (let i = 0; i < 300; i++) await Deno.writeTextFile(`${r.dir}/file-${i}`, "");
    await r.init();
    const fh = fhOf(ok(await r.call("OPENDIR", { nodeid: 1n, arg: {} }), "OPENDIR"));
    const seen: string[] = [];
    let offset = 0n;
    for (;;) {
      const rep = ok(
        await r.call("READDIR", { nodeid: 1n, arg: { fh, offset, size: 512 } }),
        "READDIR",
      );
      if (rep.entries.length === 0) break;
      for (const e of rep.entries) seen.push(e.name);
      offset = rep.entries.at(-1)!.off;
    }
    const files = seen.filter((n) => n.startsWith("file-"));
    assert.equal(files.length, 300);
    assert.equal(new Set(files).size, 300);
  } finally {
    await r.close();
  }
});

Deno.test("write path: CREATE, WRITE, SETATTR, MKDIR, RENAME(2), LINK, SYMLINK, UNLINK, RMDIR, FSYNC, FLUSH", async () => {
  const r = await rig();
  try {
    await r.init();
    const cr = ok(
      await r.call("CREATE", { names: ["a.txt"], arg: { flags: 0o102, mode: 0o100640 } }),
      "CREATE",
    );
    const node = nodeOf(cr);
    const fh = fhOf(cr);
    const big = new Uint8Array(1 << 20).map((_, i) => i * 7);
    const wr = ok(
      await r.call("WRITE", { nodeid: node, arg: { fh, offset: 0 }, data: big }),
      "WRITE",
    );
    assert.equal(wr.arg!.size, 1 << 20);
    ok(await r.call("FSYNC", { nodeid: node, arg: { fh } }), "FSYNC");
    ok(await r.call("FLUSH", { nodeid: node, arg: { fh } }), "FLUSH");
    assert.deepEqual(await Deno.readFile(`${r.dir}/a.txt`), big);
    assert.equal((await Deno.stat(`${r.dir}/a.txt`)).mode! & 0o777, 0o640);
    // A 1 MiB READ lands straight in guest memory.
    const rd = ok(
      await r.call("READ", { nodeid: node, arg: { fh, offset: 0, size: 1 << 20 } }, {
        capacity: (1 << 20) + 16,
      }),
      "READ",
    );
    assert.deepEqual(rd.data[0], big);

    // SETATTR: mode, size, times (explicit and now).
    const FATTR_MODE = 1;
    const FATTR_SIZE = 8;
    const FATTR_ATIME = 16;
    const FATTR_MTIME = 32;
    const MTIME_NOW = 256;
    ok(
      await r.call("SETATTR", {
        nodeid: node,
        arg: { valid: FATTR_MODE | FATTR_SIZE | FATTR_ATIME, mode: 0o600, size: 10, atime: 1000 },
      }),
      "SETATTR",
    );
    let st = await Deno.stat(`${r.dir}/a.txt`);
    assert.equal(st.size, 10);
    assert.equal(st.mode! & 0o777, 0o600);
    assert.equal(st.atime!.getTime(), 1_000_000);
    const t0 = Date.now();
    ok(
      await r.call("SETATTR", { nodeid: node, arg: { valid: FATTR_MTIME | MTIME_NOW } }),
      "SETATTR now",
    );
    st = await Deno.stat(`${r.dir}/a.txt`);
    assert.ok(st.mtime!.getTime() >= t0 - 1000);
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh } }), "RELEASE");

    const md = ok(await r.call("MKDIR", { names: ["d"], arg: { mode: 0o755 } }), "MKDIR");
    const d = nodeOf(md);
    ok(await r.call("RENAME", { names: ["a.txt", "b.txt"], arg: { newdir: d } }), "RENAME");
    assert.equal((await Deno.stat(`${r.dir}/d/b.txt`)).size, 10);
    await Deno.writeTextFile(`${r.dir}/c.txt`, "c");
    const RENAME_NOREPLACE = 1;
    assert.equal(
      (await r.call("RENAME2", {
        nodeid: d,
        names: ["b.txt", "c.txt"],
        arg: { newdir: 1n, flags: RENAME_NOREPLACE },
      })).header.error,
      -Errno.EEXIST,
    );
    const ln = ok(
      await r.call("LINK", { nodeid: 1n, names: ["hard"], arg: { oldnodeid: node } }),
      "LINK",
    );
    assert.equal(nodeOf(ln), node);
    assert.equal(ln.arg!.nlink, 2);
    const sl = ok(await r.call("SYMLINK", { names: ["sym", "/etc/passwd"] }), "SYMLINK");
    const rl = ok(await r.call("READLINK", { nodeid: nodeOf(sl) }), "READLINK");
    assert.equal(dec.decode(rl.data[0]), "/etc/passwd");
    assert.equal(await Deno.readLink(`${r.dir}/sym`), "/etc/passwd");
    ok(await r.call("UNLINK", { names: ["hard"] }), "UNLINK");
    assert.equal(
      (await r.call("RMDIR", { names: ["d"] })).header.error,
      -Errno.ENOTEMPTY,
    );
    ok(await r.call("UNLINK", { nodeid: d, names: ["b.txt"] }), "UNLINK b");
    ok(await r.call("RMDIR", { names: ["d"] }), "RMDIR");
    assert.deepEqual(
      [...Deno.readDirSync(r.dir)].map((e) => e.name).sort(),
      ["c.txt", "sym"],
    );
  } finally {
    await r.close();
  }
});

Deno.test("security: one name component, no escape through .. or symlinks, readonly", async () => {
  const r = await rig();
  try {
    await Deno.symlink("/etc", `${r.dir}/out`);
    await r.init();
    assert.equal((await r.call("LOOKUP", { names: ["a/b"] })).header.error, -Errno.EINVAL);
    // ".." of the shared directory is the shared directory.
    assert.equal(nodeOf(ok(await r.call("LOOKUP", { names: [".."] }), "..")), 1n);
    // A symlink is looked up as itself, never followed to the host's /etc.
    const out = ok(await r.call("LOOKUP", { names: ["out"] }), "LOOKUP out");
    assert.equal(Number(out.arg!.mode) & 0o170000, 0o120000);
    assert.equal(
      (await r.call("LOOKUP", { nodeid: nodeOf(out), names: ["passwd"] })).header.error,
      -Errno.ENOTDIR,
    );
    assert.equal(
      (await r.call("CREATE", { names: [".."], arg: { flags: 0o102, mode: 0o100644 } }))
        .header.error,
      -Errno.EEXIST,
    );
    // What a hostile guest kernel could send on a symlink's node: never followed.
    const outside = await Deno.makeTempFile({ prefix: "vfstrace-sentinel-" });
    try {
      await Deno.writeTextFile(outside, "secret");
      await Deno.symlink(outside, `${r.dir}/s`);
      const s = nodeOf(ok(await r.call("LOOKUP", { names: ["s"] }), "LOOKUP s"));
      for (const flags of [0, 2, 0o1002]) {
        assert.notEqual((await r.call("OPEN", { nodeid: s, arg: { flags } })).header.error, 0);
      }
      assert.notEqual(
        (await r.call("SETATTR", { nodeid: s, arg: { valid: 1 << 3, size: 0 } })).header.error,
        0,
      );
      await r.call("SETATTR", { nodeid: s, arg: { valid: 1, mode: 0o777 } });
      // A hard link to the symlink links the symlink, not its target.
      ok(await r.call("LINK", { names: ["hl"], arg: { oldnodeid: s } }), "LINK");
      assert.ok((await Deno.lstat(`${r.dir}/hl`)).isSymlink);
      const st = await Deno.stat(outside);
      assert.equal(st.nlink, 1);
      assert.equal(st.mode! & 0o777, 0o600);
      assert.equal(await Deno.readTextFile(outside), "secret");
      // Device nodes and FIFOs are never opened on the host.
      ok(await r.call("MKNOD", { names: ["null"], arg: { mode: 0o20666, rdev: 0x103 } }), "c");
      ok(await r.call("MKNOD", { names: ["p"], arg: { mode: 0o10666, rdev: 0 } }), "p");
      const dev = nodeOf(ok(await r.call("LOOKUP", { names: ["null"] }), "LOOKUP null"));
      const fifo = nodeOf(ok(await r.call("LOOKUP", { names: ["p"] }), "LOOKUP p"));
      assert.equal(
        (await r.call("OPEN", { nodeid: dev, arg: { flags: 2 } })).header.error,
        -Errno.EPERM,
      );
      assert.equal(
        (await r.call("OPEN", { nodeid: fifo, arg: { flags: 0 } })).header.error,
        -Errno.ENXIO,
      );
    } finally {
      await Deno.remove(outside);
    }
  } finally {
    await r.close();
  }
  const ro = await rig({ readonly: true });
  try {
    await Deno.writeTextFile(`${ro.dir}/f`, "x");
    await ro.init();
    assert.equal(
      (await ro.call("MKDIR", { names: ["d"], arg: { mode: 0o755 } })).header.error,
      -Errno.EROFS,
    );
    const f = nodeOf(ok(await ro.call("LOOKUP", { names: ["f"] }), "LOOKUP"));
    assert.equal(
      (await ro.call("OPEN", { nodeid: f, arg: { flags: 2 } })).header.error,
      -Errno.EROFS,
    );
    ok(await ro.call("OPEN", { nodeid: f, arg: { flags: 0 } }), "OPEN ro");
  } finally {
    await ro.close();
  }
});

Deno.test("xattrs: size probes, CREATE/REPLACE, list, remove", async () => {
  const r = await rig({ xattr: true });
  try {
    await Deno.writeTextFile(`${r.dir}/f`, "x");
    await r.init();
    const f = nodeOf(ok(await r.call("LOOKUP", { names: ["f"] }), "LOOKUP"));
    const XATTR_CREATE = 1;
    const XATTR_REPLACE = 2;
    const set = (flags: number, value: string) =>
      r.call("SETXATTR", {
        nodeid: f,
        names: ["user.k"],
        arg: { flags },
        data: enc.encode(value),
      });
    const first = await set(0, "v1");
    if (first.header.error === -Errno.EOPNOTSUPP) return; // tmpfs without user xattrs
    ok(first, "SETXATTR");
    assert.equal((await set(XATTR_CREATE, "v2")).header.error, -Errno.EEXIST);
    ok(await set(XATTR_REPLACE, "value-2"), "REPLACE");
    const probe = ok(
      await r.call("GETXATTR", { nodeid: f, names: ["user.k"], arg: { size: 0 } }),
      "probe",
    );
    assert.equal(probe.arg!.size, 7);
    const got = ok(
      await r.call("GETXATTR", { nodeid: f, names: ["user.k"], arg: { size: 64 } }),
      "GETXATTR",
    );
    assert.equal(dec.decode(got.data[0]), "value-2");
    assert.equal(
      (await r.call("GETXATTR", { nodeid: f, names: ["user.k"], arg: { size: 2 } })).header.error,
      -Errno.ERANGE,
    );
    const list = ok(await r.call("LISTXATTR", { nodeid: f, arg: { size: 256 } }), "LISTXATTR");
    assert.ok(dec.decode(list.data[0]).split("\0").includes("user.k"));
    ok(await r.call("REMOVEXATTR", { nodeid: f, names: ["user.k"] }), "REMOVEXATTR");
    assert.equal(
      (await r.call("GETXATTR", { nodeid: f, names: ["user.k"], arg: { size: 0 } })).header.error,
      -Errno.ENODATA,
    );
  } finally {
    await r.close();
  }
});

Deno.test("MKNOD, locks (GETLK/SETLK/SETLKW, flock), FALLOCATE, LSEEK, COPY_FILE_RANGE, SYNCFS", async () => {
  const r = await rig({ posixLock: true, flock: true });
  try {
    await r.init();
    const S_IFIFO = 0o010000;
    const fifo = ok(
      await r.call("MKNOD", { names: ["p"], arg: { mode: S_IFIFO | 0o644, rdev: 0 } }),
      "MKNOD",
    );
    assert.equal(Number(fifo.arg!.mode) & 0o170000, S_IFIFO);
    assert.ok((await Deno.lstat(`${r.dir}/p`)).isFifo);

    const cr = ok(
      await r.call("CREATE", { names: ["f"], arg: { flags: 0o102, mode: 0o100644 } }),
      "CREATE",
    );
    const node = nodeOf(cr);
    const fh1 = fhOf(cr);
    const fh2 = fhOf(ok(await r.call("OPEN", { nodeid: node, arg: { flags: 2 } }), "OPEN"));
    const F_WRLCK = 1;
    const F_UNLCK = 2;
    const MAX = 0x7fff_ffff_ffff_ffffn;
    ok(
      await r.call("SETLK", {
        nodeid: node,
        arg: { fh: fh1, owner: 1n, start: 0, end: MAX, type: F_WRLCK },
      }),
      "SETLK",
    );
    const lk = ok(
      await r.call("GETLK", {
        nodeid: node,
        arg: { fh: fh2, owner: 2n, start: 0, end: 10, type: F_WRLCK },
      }),
      "GETLK",
    );
    assert.equal(lk.arg!.type, F_WRLCK);
    assert.equal(
      (await r.call("SETLK", {
        nodeid: node,
        arg: { fh: fh2, owner: 2n, start: 0, end: 10, type: F_WRLCK },
      })).header.error,
      -Errno.EAGAIN,
    );
    // SETLKW waits (without blocking the server) until the holder unlocks.
    let waited = false;
    const wait = r.call("SETLKW", {
      nodeid: node,
      arg: { fh: fh2, owner: 2n, start: 0, end: 10, type: F_WRLCK },
    }).then((rep) => (waited = rep.header.error === 0));
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(waited, false);
    ok(
      await r.call("SETLK", {
        nodeid: node,
        arg: { fh: fh1, owner: 1n, start: 0, end: MAX, type: F_UNLCK },
      }),
      "unlock",
    );
    await wait;
    assert.equal(waited, true);
    // flock through SETLK with LK_FLOCK.
    ok(
      await r.call("SETLK", {
        nodeid: node,
        arg: { fh: fh1, type: F_WRLCK, "lk_flags": 1 },
      }),
      "flock",
    );

    ok(
      await r.call("FALLOCATE", { nodeid: node, arg: { fh: fh1, offset: 0, length: 1 << 16 } }),
      "FALLOCATE",
    );
    assert.equal((await Deno.stat(`${r.dir}/f`)).size, 1 << 16);
    ok(
      await r.call("WRITE", {
        nodeid: node,
        arg: { fh: fh1, offset: 0 },
        data: enc.encode("0123456789"),
      }),
      "WRITE",
    );
    const SEEK_DATA = 3;
    const sk = ok(
      await r.call("LSEEK", { nodeid: node, arg: { fh: fh1, offset: 0, whence: SEEK_DATA } }),
      "LSEEK",
    );
    assert.equal(sk.arg!.offset, 0n);
    const cp = ok(
      await r.call("COPY_FILE_RANGE", {
        nodeid: node,
        arg: {
          "fh_in": fh1,
          "off_in": 2,
          "nodeid_out": node,
          "fh_out": fh2,
          "off_out": 100,
          len: 5,
        },
      }),
      "COPY_FILE_RANGE",
    );
    assert.equal(cp.arg!.size, 5);
    const bytes = await Deno.readFile(`${r.dir}/f`);
    assert.equal(dec.decode(bytes.subarray(100, 105)), "23456");
    ok(await r.call("SYNCFS", { nodeid: 1n, arg: {} }), "SYNCFS");
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh: fh1, "release_flags": 2 } }), "REL");
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh: fh2 } }), "REL2");
    ok(await r.call("DESTROY"), "DESTROY");
    assert.equal(r.device.server.handleCount, 0);
    assert.equal(r.device.server.inodeCount, 1);
  } finally {
    await r.close();
  }
});

Deno.test("POSIX locks belong to the owner: one fh shared by two owners contends, FLUSH releases", async () => {
  const r = await rig({ posixLock: true });
  try {
    await r.init();
    const cr = ok(
      await r.call("CREATE", { names: ["f"], arg: { flags: 0o102, mode: 0o100644 } }),
      "CREATE",
    );
    const node = nodeOf(cr);
    const fh = fhOf(cr);
    const fh2 = fhOf(ok(await r.call("OPEN", { nodeid: node, arg: { flags: 2 } }), "OPEN"));
    const F_WRLCK = 1;
    const lock = (op: "SETLK" | "SETLKW", owner: bigint, f = fh) =>
      r.call(op, { nodeid: node, arg: { fh: f, owner, start: 0, end: 99, type: F_WRLCK } });
    ok(await lock("SETLK", 1n), "owner 1 locks");
    // A forked child shares the fh, yet its locks are its own.
    assert.equal((await lock("SETLK", 2n)).header.error, -Errno.EAGAIN);
    // The same process through another open file: its own lock, no conflict.
    ok(await lock("SETLK", 1n, fh2), "owner 1 again through fh2");
    // Owner 2 waits; meanwhile the server answers everything else.
    let granted = false;
    const waiting = lock("SETLKW", 2n).then((rep) => (granted = rep.header.error === 0));
    for (let i = 0; i < 5; i++) ok(await r.call("GETATTR", { nodeid: node, arg: {} }), "GETATTR");
    assert.equal(granted, false);
    // close(2) by owner 1 (FLUSH with its lock owner) releases its locks.
    ok(await r.call("FLUSH", { nodeid: node, arg: { fh: fh2, "lock_owner": 1n } }), "FLUSH");
    await waiting;
    assert.equal(granted, true);
    ok(await r.call("FLUSH", { nodeid: node, arg: { fh, "lock_owner": 2n } }), "FLUSH 2");
    ok(await lock("SETLK", 3n), "owner 3 after both flushed");
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh } }), "REL");
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh: fh2 } }), "REL2");
    await r.forget([{ nodeid: node, nlookup: 1n }]);
    assert.equal(r.device.server.inodeCount, 1);
  } finally {
    await r.close();
  }
});

Deno.test("TMPFILE: a nameless open file, written, then linked in; set-group-ID dirs pass the bit on", async () => {
  const r = await rig();
  try {
    await r.init();
    const t = ok(
      // The kernel sends the anonymous dentry's name, "/", which says nothing.
      await r.call("TMPFILE", { names: ["/"], arg: { flags: 2, mode: 0o100640, umask: 0 } }),
      "TMPFILE",
    );
    const node = nodeOf(t);
    ok(
      await r.call("WRITE", {
        nodeid: node,
        arg: { fh: fhOf(t), offset: 0 },
        data: enc.encode("tmp"),
      }),
      "WRITE",
    );
    assert.deepEqual([...Deno.readDirSync(r.dir)], []);
    ok(await r.call("LINK", { names: ["linked"], arg: { oldnodeid: node } }), "LINK");
    assert.equal(await Deno.readTextFile(`${r.dir}/linked`), "tmp");
    assert.equal((await Deno.stat(`${r.dir}/linked`)).mode! & 0o777, 0o640);
    ok(await r.call("RELEASE", { nodeid: node, arg: { fh: fhOf(t) } }), "RELEASE");

    await Deno.mkdir(`${r.dir}/sg`);
    await Deno.chmod(`${r.dir}/sg`, 0o2775);
    const sg = nodeOf(ok(await r.call("LOOKUP", { names: ["sg"] }), "LOOKUP sg"));
    const d = ok(
      await r.call("MKDIR", { nodeid: sg, names: ["d"], arg: { mode: 0o755, umask: 0 } }),
      "MKDIR",
    );
    assert.equal(Number(d.arg!.mode) & 0o7777, 0o2755);
    assert.equal((await Deno.stat(`${r.dir}/sg/d`)).mode! & 0o7777, 0o2755);
  } finally {
    await r.close();
  }
});

Deno.test("a cap on the fds a guest holds: EMFILE past it, room again after FORGET and RELEASE", async () => {
  const r = await rig({ maxFds: 4 });
  try {
    await r.init();
    for (const n of ["a", "b", "c", "d", "e"]) await Deno.writeTextFile(`${r.dir}/${n}`, n);
    const nodes: bigint[] = [];
    for (const n of ["a", "b", "c"]) {
      nodes.push(nodeOf(ok(await r.call("LOOKUP", { names: [n] }), n)));
    }
    const fh = fhOf(ok(await r.call("OPEN", { nodeid: nodes[0]!, arg: { flags: 0 } }), "OPEN"));
    assert.equal(r.device.server.heldFds, 4);
    assert.equal((await r.call("LOOKUP", { names: ["d"] })).header.error, -Errno.EMFILE);
    assert.equal(
      (await r.call("OPEN", { nodeid: nodes[1]!, arg: { flags: 0 } })).header.error,
      -Errno.EMFILE,
    );
    assert.equal(
      (await r.call("MKDIR", { names: ["x"], arg: { mode: 0o755 } })).header.error,
      -Errno.EMFILE,
    );
    // Nothing was created on the host for the refused MKDIR.
    await assert.rejects(Deno.lstat(`${r.dir}/x`));
    // Reads on what is held still work.
    const rd = ok(
      await r.call("READ", { nodeid: nodes[0]!, arg: { fh, offset: 0, size: 10 } }),
      "READ",
    );
    assert.equal(dec.decode(rd.data[0]), "a");
    ok(await r.call("RELEASE", { nodeid: nodes[0]!, arg: { fh } }), "RELEASE");
    await r.forget([{ nodeid: nodes[2]!, nlookup: 1n }]);
    assert.equal(r.device.server.heldFds, 2);
    ok(await r.call("LOOKUP", { names: ["d"] }), "LOOKUP after room was made");
  } finally {
    await r.close();
  }
});

Deno.test("STATX: the host's statx of the inode, btime included, by fh too", async () => {
  const r = await rig();
  try {
    await Deno.writeTextFile(`${r.dir}/f`, "0123456789");
    await Deno.utime(`${r.dir}/f`, 1000, 2000);
    await Deno.symlink("f", `${r.dir}/l`);
    await r.init();
    const node = nodeOf(ok(await r.call("LOOKUP", { names: ["f"] }), "LOOKUP"));
    const STATX_BASIC_STATS = 0x7ff;
    const STATX_BTIME = 0x800;
    const STATX_MNT_ID = 0x1000;
    const sx = ok(
      await r.call("STATX", {
        nodeid: node,
        arg: { sx_mask: STATX_BTIME | STATX_MNT_ID, sx_flags: 0 },
      }),
      "STATX",
    );
    const st = await Deno.lstat(`${r.dir}/f`);
    const mask = Number(sx.arg!.mask);
    // The basic fields come whatever was asked; a host mount id never does.
    assert.equal(mask & STATX_BASIC_STATS, STATX_BASIC_STATS);
    assert.equal(mask & STATX_MNT_ID, 0);
    assert.equal(sx.arg!.size, 10n);
    assert.equal(sx.arg!.ino, BigInt(st.ino!));
    assert.equal(sx.arg!.mode, st.mode);
    assert.equal(sx.arg!.nlink, 1);
    assert.equal(sx.arg!.atime_sec, 1000n);
    assert.equal(sx.arg!.mtime_sec, 2000n);
    if ((mask & STATX_BTIME) !== 0 && st.birthtime !== null) {
      assert.equal(sx.arg!.btime_sec, BigInt(Math.floor(st.birthtime.getTime() / 1000)));
    }
    // By open handle (GETATTR_FH), after the name is gone.
    const fh = fhOf(ok(await r.call("OPEN", { nodeid: node, arg: { flags: 0 } }), "OPEN"));
    await Deno.remove(`${r.dir}/f`);
    const byFh = ok(
      await r.call("STATX", { nodeid: node, arg: { getattr_flags: 1, fh, sx_mask: 0 } }),
      "STATX fh",
    );
    assert.equal(byFh.arg!.nlink, 0);
    // A symlink is the link itself, not its target.
    const ln = nodeOf(ok(await r.call("LOOKUP", { names: ["l"] }), "LOOKUP l"));
    const sl = ok(
      await r.call("STATX", { nodeid: ln, arg: { sx_mask: STATX_BASIC_STATS } }),
      "STATX l",
    );
    assert.equal(Number(sl.arg!.mode) & 0o170000, 0o120000);
    assert.equal(
      (await r.call("STATX", { nodeid: 999n, arg: {} })).header.error,
      -Errno.ESTALE,
    );
  } finally {
    await r.close();
  }
});

Deno.test("ACCESS: the caller's owner/group/other bits, root's rules, F_OK, EROFS", async () => {
  const st = (mode: number, uid = 1000, gid = 100): Stat => ({
    dev: 0n,
    ino: 1n,
    nlink: 1n,
    mode,
    uid,
    gid,
    rdev: 0n,
    size: 0n,
    blksize: 4096,
    blocks: 0n,
    atime: 0n,
    atimeNsec: 0,
    mtime: 0n,
    mtimeNsec: 0,
    ctime: 0n,
    ctimeNsec: 0,
  });
  const [X, W, R] = [1, 2, 4];
  const f = st(0o100640);
  assert.ok(accessAllowed(f, 1000, 5, R | W)); // owner rw-
  assert.ok(!accessAllowed(f, 1000, 5, X));
  assert.ok(accessAllowed(f, 2000, 100, R)); // group r--
  assert.ok(!accessAllowed(f, 2000, 100, W));
  assert.ok(!accessAllowed(f, 2000, 5, R)); // others ---
  assert.ok(accessAllowed(f, 2000, 5, 0)); // F_OK
  // The owner's bits apply to the owner even when the group's would allow more.
  assert.ok(!accessAllowed(st(0o100070), 1000, 100, R));
  // Root: read and write always, execute only with some x bit, search any directory.
  assert.ok(accessAllowed(st(0o100000), 0, 0, R | W));
  assert.ok(!accessAllowed(st(0o100600), 0, 0, X));
  assert.ok(accessAllowed(st(0o100001), 0, 0, X));
  assert.ok(accessAllowed(st(0o040000), 0, 0, X));

  const r = await rig();
  const ro = await rig({ readonly: true });
  try {
    await Deno.writeTextFile(`${r.dir}/f`, "x");
    await Deno.chmod(`${r.dir}/f`, 0o604);
    const owner = (await Deno.stat(`${r.dir}/f`)).uid!;
    await r.init();
    const node = nodeOf(ok(await r.call("LOOKUP", { names: ["f"] }), "LOOKUP"));
    const access = async (mask: number, uid: number, gid: number) =>
      (await r.call("ACCESS", { nodeid: node, uid, gid, arg: { mask } })).header.error;
    const stranger = owner === 0 ? 4242 : owner + 1;
    assert.equal(await access(R | W, owner, 4242), 0); // owner rw-
    assert.equal(await access(R, stranger, 4242), 0); // others r--
    assert.equal(await access(W, stranger, 4242), -Errno.EACCES);
    assert.equal(await access(X, stranger, 4242), -Errno.EACCES);
    assert.equal(await access(0, stranger, 4242), 0);
    assert.equal(
      (await r.call("ACCESS", { nodeid: 999n, arg: { mask: 0 } })).header.error,
      -Errno.ESTALE,
    );

    await ro.init();
    assert.equal((await ro.call("ACCESS", { nodeid: 1n, arg: { mask: R } })).header.error, 0);
    assert.equal(
      (await ro.call("ACCESS", { nodeid: 1n, arg: { mask: W } })).header.error,
      -Errno.EROFS,
    );
  } finally {
    await r.close();
    await ro.close();
  }
});

Deno.test("HANDLE_KILLPRIV_V2: WRITE, SETATTR and OPEN with the kill flag clear set-id bits and file caps", async () => {
  const r = await rig();
  try {
    const mk = async (name: string, mode: number) => {
      await Deno.writeTextFile(`${r.dir}/${name}`, "0123456789");
      await Deno.chmod(`${r.dir}/${name}`, mode);
    };
    const mode = async (name: string) => (await Deno.stat(`${r.dir}/${name}`)).mode! & 0o7777;
    await mk("w", 0o6755);
    await mk("w-nox", 0o6644);
    await mk("keep", 0o4755);
    await mk("t", 0o6775);
    await mk("o", 0o4755);
    // A file capability (v2, CAP_NET_BIND_SERVICE), where the host allows one.
    const cap = new Uint8Array(20);
    new DataView(cap.buffer).setUint32(0, 0x0200_0001, true);
    new DataView(cap.buffer).setUint32(4, 1 << 10, true);
    let caps = true;
    try {
      setxattr(`${r.dir}/w`, "security.capability", cap, 0);
    } catch {
      caps = false;
    }
    const init = ok(await r.init(), "INIT");
    const flags = BigInt(init.arg!.flags as number) | (BigInt(init.arg!.flags2 as number) << 32n);
    assert.ok((flags & InitFlags.bit("HANDLE_KILLPRIV_V2")!) !== 0n);
    const open = async (name: string, flags = 2, openFlags = 0) => {
      const node = nodeOf(ok(await r.call("LOOKUP", { names: [name] }), "LOOKUP"));
      const o = ok(
        await r.call("OPEN", { nodeid: node, arg: { flags, open_flags: openFlags } }),
        "OPEN",
      );
      return { node, fh: fhOf(o) };
    };
    const write = async (name: string, writeFlags: number) => {
      const { node, fh } = await open(name);
      ok(
        await r.call("WRITE", {
          nodeid: node,
          arg: { fh, offset: 0, write_flags: writeFlags },
          data: enc.encode("x"),
        }),
        "WRITE",
      );
    };
    const WRITE_KILL_SUIDGID = 4;
    await write("w", WRITE_KILL_SUIDGID);
    assert.equal(await mode("w"), 0o755);
    if (caps) {
      assert.throws(() => getxattr(`${r.dir}/w`, "security.capability", null));
    }
    // Set-group-ID without group-execute is not a privilege: kept.
    await write("w-nox", WRITE_KILL_SUIDGID);
    assert.equal(await mode("w-nox"), 0o2644);
    // Without the flag (a caller with CAP_FSETID) nothing changes.
    await write("keep", 0);
    assert.equal(await mode("keep"), 0o4755);

    const FATTR_SIZE = 8;
    const FATTR_KILL_SUIDGID = 1 << 11;
    const t = nodeOf(ok(await r.call("LOOKUP", { names: ["t"] }), "LOOKUP t"));
    ok(
      await r.call("SETATTR", {
        nodeid: t,
        arg: { valid: FATTR_SIZE | FATTR_KILL_SUIDGID, size: 3 },
      }),
      "SETATTR",
    );
    assert.equal(await mode("t"), 0o775);
    assert.equal((await Deno.stat(`${r.dir}/t`)).size, 3);

    const O_TRUNC = 0o1000;
    const OPEN_KILL_SUIDGID = 1;
    await open("o", 2, OPEN_KILL_SUIDGID); // no O_TRUNC: nothing to kill
    assert.equal(await mode("o"), 0o4755);
    await open("o", 2 | O_TRUNC, OPEN_KILL_SUIDGID);
    assert.equal(await mode("o"), 0o755);
    assert.equal((await Deno.stat(`${r.dir}/o`)).size, 0);
  } finally {
    await r.close();
  }

  // Not negotiated: the flags are not the server's business.
  const r2 = await rig();
  try {
    await Deno.writeTextFile(`${r2.dir}/w`, "x");
    await Deno.chmod(`${r2.dir}/w`, 0o4755);
    await r2.init(38, allInitFlags() & ~InitFlags.bit("HANDLE_KILLPRIV_V2")!);
    const node = nodeOf(ok(await r2.call("LOOKUP", { names: ["w"] }), "LOOKUP"));
    const fh = fhOf(ok(await r2.call("OPEN", { nodeid: node, arg: { flags: 2 } }), "OPEN"));
    ok(
      await r2.call("WRITE", {
        nodeid: node,
        arg: { fh, offset: 0, write_flags: 4 },
        data: enc.encode("y"),
      }),
      "WRITE",
    );
    const uid = Deno.uid();
    // A root server keeps the bit (CAP_FSETID); an unprivileged one sees the host clear it.
    if (uid === 0) assert.equal((await Deno.stat(`${r2.dir}/w`)).mode! & 0o7777, 0o4755);
  } finally {
    await r2.close();
  }
});

/** A minimal POSIX ACL as the system.posix_acl_* xattr value: owner, group, others. */
function minimalAcl(user: number, group: number, other: number): Uint8Array {
  const b = new Uint8Array(4 + 3 * 8);
  const v = new DataView(b.buffer);
  v.setUint32(0, 2, true);
  [[0x01, user], [0x04, group], [0x20, other]].forEach(([tag, perm], i) => {
    v.setUint16(4 + i * 8, tag!, true);
    v.setUint16(6 + i * 8, perm!, true);
    v.setUint32(8 + i * 8, 0xffff_ffff, true);
  });
  return b;
}

Deno.test("POSIX_ACL and SETXATTR_EXT: negotiated with xattr, default ACLs replace the umask, ACL_KILL_SGID", async () => {
  const r = await rig({ xattr: true, posixAcl: true });
  try {
    await Deno.mkdir(`${r.dir}/d`);
    await Deno.chmod(`${r.dir}/d`, 0o2775);
    const init = ok(await r.init(), "INIT");
    const flags = BigInt(init.arg!.flags as number) | (BigInt(init.arg!.flags2 as number) << 32n);
    for (const f of ["POSIX_ACL", "SETXATTR_EXT"]) {
      assert.ok((flags & InitFlags.bit(f)!) !== 0n, f);
    }
    assert.equal(r.device.server.session.has("SETXATTR_EXT"), true);
    const d = nodeOf(ok(await r.call("LOOKUP", { names: ["d"] }), "LOOKUP"));
    // A default ACL u::rwx,g::r-x,o::--- on d, set through the server (extended setxattr_in).
    ok(
      await r.call("SETXATTR", {
        nodeid: d,
        names: ["system.posix_acl_default"],
        arg: { flags: 0, setxattr_flags: 0 },
        data: minimalAcl(7, 5, 0),
      }),
      "SETXATTR default",
    );
    const got = ok(
      await r.call("GETXATTR", {
        nodeid: d,
        names: ["system.posix_acl_default"],
        arg: { size: 64 },
      }),
      "GETXATTR default",
    );
    assert.deepEqual(got.data[0], minimalAcl(7, 5, 0));
    // Inside d the default ACL, not the umask, cuts the mode: 0666 → 0640, 0777 → 0750.
    const cr = ok(
      await r.call("CREATE", {
        nodeid: d,
        names: ["f"],
        arg: { flags: 0o102, mode: 0o100666, umask: 0o077 },
      }),
      "CREATE",
    );
    assert.equal(Number(cr.arg!.mode) & 0o777, 0o640);
    ok(
      await r.call("MKDIR", { nodeid: d, names: ["sub"], arg: { mode: 0o777, umask: 0o077 } }),
      "MKDIR",
    );
    assert.equal((await Deno.stat(`${r.dir}/d/sub`)).mode! & 0o777, 0o750);
    // Outside, the umask applies as before.
    ok(
      await r.call("MKDIR", { names: ["plain"], arg: { mode: 0o777, umask: 0o027 } }),
      "MKDIR plain",
    );
    assert.equal((await Deno.stat(`${r.dir}/plain`)).mode! & 0o777, 0o750);

    // An access ACL set by a caller outside the group: set-group-ID goes.
    const SETXATTR_ACL_KILL_SGID = 1;
    ok(
      await r.call("SETXATTR", {
        nodeid: d,
        names: ["system.posix_acl_access"],
        arg: { flags: 0, setxattr_flags: 0 },
        data: minimalAcl(7, 7, 5),
      }),
      "SETXATTR access",
    );
    assert.equal((await Deno.stat(`${r.dir}/d`)).mode! & 0o7777, 0o2775);
    ok(
      await r.call("SETXATTR", {
        nodeid: d,
        names: ["system.posix_acl_access"],
        arg: { flags: 0, setxattr_flags: SETXATTR_ACL_KILL_SGID },
        data: minimalAcl(7, 5, 5),
      }),
      "SETXATTR access kill",
    );
    assert.equal((await Deno.stat(`${r.dir}/d`)).mode! & 0o7777, 0o755);
  } finally {
    await r.close();
  }
  // Without posixAcl (or without xattr) neither ACLs nor, without xattr, SETXATTR_EXT.
  for (const [opts, ext] of [[{ xattr: true }, true], [{ posixAcl: true }, false]] as const) {
    const r2 = await rig(opts);
    try {
      const init = ok(await r2.init(), "INIT");
      const flags = BigInt(init.arg!.flags as number) |
        (BigInt(init.arg!.flags2 as number) << 32n);
      assert.equal((flags & InitFlags.bit("POSIX_ACL")!) !== 0n, false);
      assert.equal((flags & InitFlags.bit("SETXATTR_EXT")!) !== 0n, ext);
    } finally {
      await r2.close();
    }
  }
});
