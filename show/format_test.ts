import assert from "node:assert/strict";
import {
  type FuseReplyInit,
  type FuseRequestInit,
  InitFlags,
  Opcode,
  type OpcodeName,
} from "../decode/fuse.ts";
import { encodeMessage } from "../decode/vhost_user.ts";
import { CaptureBuilder, T0 } from "./_testing.ts";
import {
  formatDuration,
  formatModeArg,
  formatOperation,
  hexDump,
  LineFormatter,
  type Palette,
  quoteName,
} from "./format.ts";
import { type FuseOperation, pairRecords, type ShowEvent } from "./pairing.ts";

const TIME = "15:00:00.000000";

/** One operation: request at T0, then its reply (an errno number: an error reply). */
async function events(
  name: OpcodeName,
  req: Omit<FuseRequestInit, "header"> & { nodeid?: bigint },
  reply: Omit<FuseReplyInit, "header"> | number | "empty" | "none",
  options: { queue?: number; latencyNs?: number; minor?: number } = {},
): Promise<ShowEvent[]> {
  const b = new CaptureBuilder(options.minor ?? 38);
  const queue = options.queue ?? 1;
  const opcode = Opcode[name];
  const { nodeid, ...rest } = req;
  b.request(queue, { ...rest, header: { opcode, unique: 2n, nodeid: nodeid ?? 1n } }, T0);
  const lat = options.latencyNs ?? 12_300;
  if (reply === "empty") b.rawReply(queue, new Uint8Array(0), lat);
  else if (typeof reply === "number") {
    b.reply(queue, opcode, { header: { unique: 2n, error: -reply } }, lat);
  } else if (reply !== "none") b.reply(queue, opcode, { ...reply, header: { unique: 2n } }, lat);
  return pairRecords(await b.records());
}

async function line(
  name: OpcodeName,
  req: Omit<FuseRequestInit, "header"> & { nodeid?: bigint },
  reply: Omit<FuseReplyInit, "header"> | number | "empty" | "none",
  options: { queue?: number; latencyNs?: number; minor?: number } = {},
): Promise<string> {
  const [op] = await events(name, req, reply, options);
  assert.equal(op?.type, "fuse");
  return formatOperation(op as FuseOperation, { timeZone: "utc" });
}

const attr = { mode: 0o40755, size: 4096n, nlink: 2, ino: 1n };
const file = { nodeid: 7n, mode: 0o100644, size: 7n, nlink: 1, ino: 7n };

Deno.test("format: LOOKUP, GETATTR and entry results", async () => {
  assert.equal(
    await line("LOOKUP", { names: ["tree"] }, 2),
    `${TIME} q1 LOOKUP      nodeid=1 "tree" = -ENOENT <12.3µs>`,
  );
  assert.equal(
    await line("LOOKUP", { names: ["f1"] }, { arg: file }, { latencyNs: 30_000 }),
    `${TIME} q1 LOOKUP      nodeid=1 "f1" = nodeid 7 -rw-r--r-- size=7 <30µs>`,
  );
  assert.equal(
    await line("GETATTR", { arg: {} }, { arg: attr }, { latencyNs: 40_000 }),
    `${TIME} q1 GETATTR     nodeid=1 = 0 mode=drwxr-xr-x size=4096 <40µs>`,
  );
  assert.equal(
    await line("GETATTR", { arg: { getattr_flags: 1, fh: 5n }, nodeid: 9n }, { arg: attr }),
    `${TIME} q1 GETATTR     nodeid=9 fh=5 = 0 mode=drwxr-xr-x size=4096 <12.3µs>`,
  );
});

Deno.test("format: READ, WRITE, READDIR(PLUS)", async () => {
  assert.equal(
    await line(
      "WRITE",
      {
        nodeid: 12n,
        arg: { fh: 3n, offset: 0n },
        data: new Uint8Array(4096),
      },
      { arg: { size: 4096 } },
      { latencyNs: 1_200_000 },
    ),
    `${TIME} q1 WRITE       nodeid=12 fh=3 off=0 size=4096 = 4096 <1.2ms>`,
  );
  assert.equal(
    await line("WRITE", {
      nodeid: 12n,
      arg: { fh: 3n, offset: 8192n, write_flags: 1 },
      data: new Uint8Array(10),
    }, { arg: { size: 10 } }),
    `${TIME} q1 WRITE       nodeid=12 fh=3 off=8192 size=10 WRITE_CACHE = 10 <12.3µs>`,
  );
  assert.equal(
    await line("READ", { nodeid: 2n, arg: { fh: 5n, offset: 4096n, size: 4096 } }, {
      data: new Uint8Array(100),
    }),
    `${TIME} q1 READ        nodeid=2 fh=5 off=4096 size=4096 = 100 <12.3µs>`,
  );
  const dirents = ["a", "b"].map((n, i) => ({
    ino: BigInt(10 + i),
    off: BigInt(i + 1),
    type: 8,
    name: n,
    entry: { ...file, nodeid: BigInt(10 + i) },
  }));
  assert.equal(
    await line("READDIRPLUS", { nodeid: 2n, arg: { fh: 0n, size: 4096 } }, { entries: dirents }),
    `${TIME} q1 READDIRPLUS nodeid=2 fh=0 off=0 size=4096 = 2 entries <12.3µs>`,
  );
  assert.equal(
    await line("READDIR", { nodeid: 2n, arg: { fh: 0n, size: 4096 } }, {
      entries: [{ ino: 1n, off: 1n, type: 4, name: "." }],
    }),
    `${TIME} q1 READDIR     nodeid=2 fh=0 off=0 size=4096 = 1 entry <12.3µs>`,
  );
});

Deno.test("format: CREATE, OPEN, RELEASE, FLUSH, FSYNC, FALLOCATE, LSEEK", async () => {
  assert.equal(
    await line("CREATE", {
      nodeid: 2n,
      names: ["f1"],
      arg: { flags: 0o1101, mode: 0o100644, umask: 0o22 },
    }, { arg: { ...file, nodeid: 3n, fh: 0n, open_flags: 2 } }),
    `${TIME} q1 CREATE      nodeid=2 "f1" 0644 O_WRONLY|O_CREAT|O_TRUNC = nodeid 3 fh=0 ` +
      `FOPEN_KEEP_CACHE <12.3µs>`,
  );
  assert.equal(
    await line("OPEN", { nodeid: 2n, arg: { flags: 0o100000 } }, { arg: { fh: 5n } }),
    `${TIME} q1 OPEN        nodeid=2 O_RDONLY|O_LARGEFILE = fh=5 <12.3µs>`,
  );
  assert.equal(
    await line("RELEASE", { nodeid: 2n, arg: { fh: 5n, flags: 2, release_flags: 1 } }, {}),
    `${TIME} q1 RELEASE     nodeid=2 fh=5 O_RDWR RELEASE_FLUSH = 0 <12.3µs>`,
  );
  assert.equal(
    await line("FLUSH", { nodeid: 2n, arg: { fh: 5n, lock_owner: 9n } }, {}),
    `${TIME} q1 FLUSH       nodeid=2 fh=5 = 0 <12.3µs>`,
  );
  assert.equal(
    await line("FSYNC", { nodeid: 2n, arg: { fh: 5n, fsync_flags: 1 } }, 5),
    `${TIME} q1 FSYNC       nodeid=2 fh=5 FSYNC_FDATASYNC = -EIO <12.3µs>`,
  );
  assert.equal(
    await line("FALLOCATE", { nodeid: 2n, arg: { fh: 5n, length: 4096n, mode: 1 } }, {}),
    `${TIME} q1 FALLOCATE   nodeid=2 fh=5 off=0 len=4096 FALLOC_FL_KEEP_SIZE = 0 <12.3µs>`,
  );
  assert.equal(
    await line("LSEEK", { nodeid: 2n, arg: { fh: 5n, offset: 100n, whence: 3 } }, {
      arg: { offset: 4096n },
    }),
    `${TIME} q1 LSEEK       nodeid=2 fh=5 off=100 SEEK_DATA = 4096 <12.3µs>`,
  );
});

Deno.test("format: SETATTR shows the valid bits and the values they set", async () => {
  assert.equal(
    await line("SETATTR", {
      nodeid: 8n,
      arg: { valid: 1 | 8 | 64, mode: 0o600, size: 0n, fh: 3n, uid: 99 },
    }, { arg: { mode: 0o100600, size: 0n } }),
    `${TIME} q1 SETATTR     nodeid=8 FATTR_MODE|FATTR_SIZE|FATTR_FH mode=0600 size=0 fh=3 ` +
      `= 0 mode=-rw------- size=0 <12.3µs>`,
  );
  assert.equal(
    await line("SETATTR", {
      nodeid: 8n,
      arg: { valid: 16 | 32 | 256, atime: 1700000000n, atimensec: 5 },
    }, { arg: { mode: 0o100600 } }),
    `${TIME} q1 SETATTR     nodeid=8 FATTR_ATIME|FATTR_MTIME|FATTR_MTIME_NOW ` +
      `atime=1700000000.000000005 mtime=now = 0 mode=-rw------- size=0 <12.3µs>`,
  );
});

Deno.test("format: namespace operations", async () => {
  assert.equal(
    await line("MKDIR", { names: ["d"], arg: { mode: 0o40755, umask: 0o22 } }, {
      arg: { ...attr, nodeid: 9n },
    }),
    `${TIME} q1 MKDIR       nodeid=1 "d" 0755 = nodeid 9 drwxr-xr-x size=4096 <12.3µs>`,
  );
  assert.equal(
    await line("MKNOD", { names: ["tty"], arg: { mode: 0o20620, rdev: (4 << 8) | 1 } }, 1),
    `${TIME} q1 MKNOD       nodeid=1 "tty" S_IFCHR|0620 rdev=4:1 = -EPERM <12.3µs>`,
  );
  assert.equal(
    await line("MKNOD", { names: ["p"], arg: { mode: 0o10644 } }, 17),
    `${TIME} q1 MKNOD       nodeid=1 "p" S_IFIFO|0644 = -EEXIST <12.3µs>`,
  );
  assert.equal(
    await line("SYMLINK", { nodeid: 8n, names: ["link", "f1"] }, {
      arg: { nodeid: 10n, mode: 0o120777, size: 2n },
    }),
    `${TIME} q1 SYMLINK     nodeid=8 "link" → "f1" = nodeid 10 lrwxrwxrwx size=2 <12.3µs>`,
  );
  assert.equal(
    await line("LINK", { nodeid: 8n, names: ["hard"], arg: { oldnodeid: 4n } }, {
      arg: { ...file, nodeid: 4n },
    }),
    `${TIME} q1 LINK        nodeid=8 "hard" oldnodeid=4 = nodeid 4 -rw-r--r-- size=7 <12.3µs>`,
  );
  assert.equal(
    await line("UNLINK", { nodeid: 8n, names: ["f4"] }, {}),
    `${TIME} q1 UNLINK      nodeid=8 "f4" = 0 <12.3µs>`,
  );
  assert.equal(
    await line("RMDIR", { names: ["tree"] }, 39),
    `${TIME} q1 RMDIR       nodeid=1 "tree" = -ENOTEMPTY <12.3µs>`,
  );
  assert.equal(
    await line("RENAME", { nodeid: 8n, names: ["f3", "f3b"], arg: { newdir: 8n } }, {}),
    `${TIME} q1 RENAME      nodeid=8 "f3" → 8/"f3b" = 0 <12.3µs>`,
  );
  assert.equal(
    await line("RENAME2", { nodeid: 8n, names: ["a", "b"], arg: { newdir: 9n, flags: 1 } }, 17),
    `${TIME} q1 RENAME2     nodeid=8 "a" → 9/"b" RENAME_NOREPLACE = -EEXIST <12.3µs>`,
  );
  assert.equal(
    await line("READLINK", { nodeid: 3n }, { data: new TextEncoder().encode("f1") }),
    `${TIME} q1 READLINK    nodeid=3 = "f1" <12.3µs>`,
  );
});

Deno.test("format: xattr operations", async () => {
  assert.equal(
    await line("GETXATTR", { nodeid: 3n, names: ["security.capability"], arg: { size: 0 } }, 61),
    `${TIME} q1 GETXATTR    nodeid=3 "security.capability" size=0 = -ENODATA <12.3µs>`,
  );
  assert.equal(
    await line("GETXATTR", { nodeid: 3n, names: ["user.x"], arg: { size: 0 } }, {
      arg: { size: 12 },
    }),
    `${TIME} q1 GETXATTR    nodeid=3 "user.x" size=0 = 12 <12.3µs>`,
  );
  assert.equal(
    await line("GETXATTR", { nodeid: 3n, names: ["user.x"], arg: { size: 64 } }, {
      data: new Uint8Array(5),
    }),
    `${TIME} q1 GETXATTR    nodeid=3 "user.x" size=64 = 5 <12.3µs>`,
  );
  assert.equal(
    await line("LISTXATTR", { nodeid: 3n, arg: { size: 0 } }, { arg: { size: 20 } }),
    `${TIME} q1 LISTXATTR   nodeid=3 size=0 = 20 <12.3µs>`,
  );
  assert.equal(
    await line("SETXATTR", {
      nodeid: 3n,
      names: ["user.x"],
      arg: { flags: 1 },
      data: new Uint8Array(5),
    }, {}),
    `${TIME} q1 SETXATTR    nodeid=3 "user.x" size=5 XATTR_CREATE = 0 <12.3µs>`,
  );
  assert.equal(
    await line("REMOVEXATTR", { nodeid: 3n, names: ["user.x"] }, 61),
    `${TIME} q1 REMOVEXATTR nodeid=3 "user.x" = -ENODATA <12.3µs>`,
  );
});

Deno.test("format: INIT, STATFS, locks, copy, access, destroy", async () => {
  const kernel = InitFlags.parse(["ASYNC_READ", "POSIX_LOCKS", "INIT_EXT", "SECURITY_CTX"]);
  assert.equal(
    await line(
      "INIT",
      {
        nodeid: 0n,
        arg: {
          major: 7,
          minor: 38,
          flags: Number(kernel & 0xffffffffn),
          flags2: Number(kernel >> 32n),
        },
      },
      { arg: { major: 7, minor: 36, flags: 3, max_write: 1048576 } },
      { minor: 36 },
    ),
    `${TIME} q1 INIT        7.38 (4 flags) = 7.36 (2 flags) max_write=1048576 <12.3µs>`,
  );
  assert.equal(
    await line("STATFS", {}, {
      arg: { blocks: 100n, bfree: 50n, bavail: 40n, files: 1000n, ffree: 900n, bsize: 4096 },
    }),
    `${TIME} q1 STATFS      nodeid=1 = 0 bsize=4096 blocks=100 bfree=50 bavail=40 files=1000 ` +
      `ffree=900 namelen=0 <12.3µs>`,
  );
  assert.equal(
    await line("GETLK", {
      nodeid: 3n,
      arg: { fh: 3n, owner: 1n, start: 0n, end: 99n, type: 1, pid: 42 },
    }, { arg: { type: 2 } }),
    `${TIME} q1 GETLK       nodeid=3 fh=3 owner=0x1 F_WRLCK start=0 end=99 pid=42 = ` +
      `F_UNLCK start=0 end=0 pid=0 <12.3µs>`,
  );
  assert.equal(
    await line("SETLKW", { nodeid: 3n, arg: { fh: 3n, type: 0, lk_flags: 1 } }, 11),
    `${TIME} q1 SETLKW      nodeid=3 fh=3 owner=0x0 F_RDLCK start=0 end=0 pid=0 LK_FLOCK ` +
      `= -EAGAIN <12.3µs>`,
  );
  assert.equal(
    await line("COPY_FILE_RANGE", {
      nodeid: 4n,
      arg: { fh_in: 1n, nodeid_out: 5n, fh_out: 2n, off_out: 10n, len: 100n },
    }, { arg: { size: 100 } }),
    `${TIME} q1 COPY_FILE_RANGE nodeid=4 fh=1 off=0 → nodeid=5 fh=2 off=10 len=100 = 100 ` +
      `<12.3µs>`,
  );
  assert.equal(
    await line("ACCESS", { arg: { mask: 4 } }, 13),
    `${TIME} q1 ACCESS      nodeid=1 R_OK = -EACCES <12.3µs>`,
  );
  assert.equal(
    await line("DESTROY", { nodeid: 0n }, {}),
    `${TIME} q1 DESTROY     = 0 <12.3µs>`,
  );
});

Deno.test("format: FORGET and BATCH_FORGET on hiprio have no result", async () => {
  assert.equal(
    await line("FORGET", { nodeid: 3n, arg: { nlookup: 2n } }, "empty", {
      queue: 0,
      latencyNs: 229_000,
    }),
    `${TIME} hiprio FORGET  nodeid=3 nlookup=2 <229µs>`,
  );
  assert.equal(
    await line(
      "BATCH_FORGET",
      {
        nodeid: 0n,
        items: [{ nodeid: 5n, nlookup: 1n }, { nodeid: 6n, nlookup: 1n }],
      },
      "empty",
      { queue: 0 },
    ),
    `${TIME} hiprio BATCH_FORGET count=2 <12.3µs>`,
  );
});

Deno.test("format: generic fallback, unanswered, undecodable", async () => {
  assert.equal(
    await line("SETUPMAPPING", {
      nodeid: 3n,
      arg: { fh: 1n, len: 2097152n, flags: 2n },
    }, {}),
    `${TIME} q1 SETUPMAPPING nodeid=3 fh=1 foffset=0 len=2097152 flags=SETUPMAPPING_FLAG_READ ` +
      `moffset=0 = 0 <12.3µs>`,
  );
  assert.equal(
    await line("LOOKUP", { names: ["x"] }, "none"),
    `${TIME} q1 LOOKUP      nodeid=1 "x" = ? <unanswered>`,
  );
  const b = new CaptureBuilder();
  b.reply(1, Opcode.LOOKUP, { header: { unique: 0x86n, error: -2 } }, 7_000, T0);
  const [orphan] = pairRecords(await b.records());
  assert.equal(
    formatOperation(orphan as FuseOperation, { timeZone: "utc" }),
    `${TIME} q1 ?           unique=0x86 = -ENOENT <7µs> ` +
      `[no request with unique 0x86 on queue 1 before this reply]`,
  );
});

Deno.test("format: time columns, colours, slow marks", async () => {
  const b = new CaptureBuilder();
  b.request(1, { header: { opcode: Opcode.LOOKUP, unique: 2n, nodeid: 1n }, names: ["a"] }, T0);
  b.request(
    1,
    { header: { opcode: Opcode.LOOKUP, unique: 4n, nodeid: 1n }, names: ["b"] },
    T0 + 2_500_000_000n,
  );
  b.reply(1, Opcode.LOOKUP, { header: { unique: 2n, error: -2 } }, 20_000_000);
  b.reply(1, Opcode.LOOKUP, { header: { unique: 4n }, arg: file }, 5_000);
  const ops = pairRecords(await b.records());

  const rel = new LineFormatter({ time: "relative", originNs: T0 - 1_000_000n });
  assert.deepEqual(ops.map((o) => rel.format(o).slice(0, 10)), ["  0.001000", "  2.501000"]);
  const delta = new LineFormatter({ time: "delta" });
  assert.deepEqual(ops.map((o) => delta.format(o).slice(0, 10)), ["  0.000000", "  2.500000"]);
  const late = new LineFormatter({ time: "absolute", timeZone: "utc" });
  assert.equal(late.format(ops[1]!).slice(0, 15), "15:00:02.500000");

  const tag = (t: string) => (s: string) => `<${t}>${s}</${t}>`;
  const colors: Palette = {
    red: tag("r"),
    yellow: tag("y"),
    dim: tag("d"),
    cyan: tag("c"),
    magenta: tag("m"),
  };
  const c = new LineFormatter({ timeZone: "utc", colors, slowNs: 10_000_000 });
  assert.equal(
    c.format(ops[0]!),
    `<d>${TIME}</d> q1 LOOKUP      nodeid=1 "a" = <r>-ENOENT</r> <y><20ms></y>`,
  );
  assert.equal(
    c.format(ops[1]!),
    `<d>15:00:02.500000</d> q1 LOOKUP      nodeid=1 "b" = nodeid 7 -rw-r--r-- size=7 <5µs>`,
  );
});

Deno.test("format: verbose tree and hex dump", async () => {
  const [op] = await events("LOOKUP", { names: ["tree"] }, 2);
  const text = new LineFormatter({ timeZone: "utc", verbose: true, hex: true, hexLimit: 32 })
    .format(op!);
  const lines = text.split("\n");
  assert.equal(lines[0], `${TIME} q1 LOOKUP      nodeid=1 "tree" = -ENOENT <12.3µs>`);
  assert.ok(lines.some((l) => /^ {2}request: seq 0, offset \d+, 45 bytes$/.test(l)), text);
  assert.ok(lines.includes("    fuse_in_header"));
  assert.ok(lines.includes("      opcode: LOOKUP"));
  assert.ok(lines.includes("      unique: 0x2"));
  assert.ok(lines.includes('    name: "tree"'));
  assert.ok(lines.some((l) => /^ {2}reply: seq 1, offset \d+, 16 bytes, latency 12\.3µs$/.test(l)));
  assert.ok(lines.includes("      error: -ENOENT"));
  assert.ok(lines.includes("  request body, 45 bytes:"));
  assert.ok(
    lines.includes(
      "    000000  2d 00 00 00 01 00 00 00  02 00 00 00 00 00 00 00  |-...............|",
    ),
    text,
  );
  assert.ok(lines.includes("    … 13 more bytes"));
});

Deno.test("format: vhost-user messages, notes and gaps", async () => {
  const b = new CaptureBuilder();
  const region = { guestPhysAddr: 0n, memorySize: 4096n, userspaceAddr: 0n, mmapOffset: 0n };
  b.vhostUser(
    0,
    encodeMessage({
      channel: "frontend",
      request: "SET_MEM_TABLE",
      needReply: true,
      payload: { kind: "memory_table", regions: [region, region], xen: false },
    }),
    2,
    T0,
  );
  b.vhostUser(
    1,
    encodeMessage({
      channel: "frontend",
      request: "GET_QUEUE_NUM",
      isReply: true,
      payload: { kind: "u64", value: 2n },
    }),
    0,
    T0,
  );
  b.vhostUser(
    0,
    encodeMessage({
      channel: "frontend",
      request: "SET_VRING_KICK",
      payload: { kind: "vring_index", value: 1n, index: 1, noFd: false },
    }),
    1,
    T0,
  );
  b.note({ type: "features_masked", what: "virtio", masked: "VHOST_F_LOG_ALL" }, T0);
  b.note({ type: "stop", closed_by: "frontend", records: 3, argv: ["a", "b c"] }, T0);
  b.lose(2);
  b.note({ type: "x" }, T0);
  const f = new LineFormatter({ timeZone: "utc" });
  const text = pairRecords(await b.records()).map((e) => f.format(e));
  assert.deepEqual(text, [
    `${TIME} vhost-user → SET_MEM_TABLE regions=2 [2 fds]`,
    `${TIME} vhost-user ← GET_QUEUE_NUM = 2`,
    `${TIME} vhost-user → SET_VRING_KICK vring=1 [1 fd]`,
    `${TIME} note features_masked virtio: VHOST_F_LOG_ALL`,
    `${TIME} note stop closed_by=frontend records=3 argv=a,b c`,
    `${TIME} --- 2 records missing (seq 5-6) ---`,
    `${TIME} note x`,
  ]);
});

Deno.test("format: durations, names, modes, hex", () => {
  const cases: [number, string][] = [
    [850, "850ns"],
    [1234, "1.23µs"],
    [12_300, "12.3µs"],
    [40_000, "40µs"],
    [999_960, "1ms"],
    [1_200_000, "1.2ms"],
    [2_740_000, "2.74ms"],
    [1_500_000_000, "1.5s"],
    [125_000_000_000, "125s"],
  ];
  for (const [ns, want] of cases) assert.equal(formatDuration(ns), want, String(ns));
  assert.equal(quoteName("plain.txt"), '"plain.txt"');
  assert.equal(quoteName('a"b\\c\nd\x01'), '"a\\"b\\\\c\\nd\\x01"');
  assert.equal(quoteName("caf\udce9"), '"caf\\xe9"', "bytes that are not UTF-8");
  assert.equal(formatModeArg(0o644), "0644");
  assert.equal(formatModeArg(0o1777), "01777");
  assert.equal(formatModeArg(0o100600), "S_IFREG|0600");
  assert.deepEqual(hexDump(new Uint8Array([0x41, 0, 0xff]), 0), [
    "000000  41 00 ff                                          |A..|",
  ]);
});
