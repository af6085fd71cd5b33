import assert from "node:assert/strict";
import {
  DecodeError,
  decodeName,
  decodeReply,
  decodeRequest,
  EncodeError,
  encodeErrorReply,
  encodeName,
  encodeReply,
  encodeRequest,
  encodeRequestSegments,
  formatMode,
  formatOpenFlags,
  formatOutError,
  formatRdev,
  FUSE_LAYOUTS,
  FUSE_NOTIFY,
  FUSE_OPS,
  fuseOp,
  type FuseReply,
  type FuseReplyInit,
  type FuseRequest,
  type FuseRequestInit,
  FuseSession,
  InitFlags,
  InitFlags2,
  InitFlagsLow,
  Opcode,
  OpcodeNames,
  SetattrValid,
} from "./fuse.ts";
import {
  fuseSamples,
  LINUX_6_1_FLAGS,
  notifySamples,
  type SampleConfig,
  sessionFor,
} from "./_fuse_samples.ts";
import { formatField } from "./struct.ts";

function flat(segs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(segs.reduce((n, s) => n + s.byteLength, 0));
  let p = 0;
  for (const s of segs) {
    out.set(s, p);
    p += s.byteLength;
  }
  return out;
}

/** A DataView of exactly `b` (encoder outputs may share a larger buffer). */
function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function toSegs(d: Uint8Array | readonly Uint8Array[] | undefined): readonly Uint8Array[] {
  return d === undefined ? [] : d instanceof Uint8Array ? [d] : d;
}

/** Splits `b` at `cuts` (sorted offsets). */
function split(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  for (
    const c of [...cuts.map((c) => Math.min(c, b.byteLength)).sort((x, y) => x - y), b.byteLength]
  ) {
    out.push(b.subarray(p, c));
    p = c;
  }
  return out;
}

function assertRequestMatches(rec: FuseRequest, init: FuseRequestInit, len: number, what: string) {
  assert.deepEqual(rec.header, { ...init.header, len }, `${what}: header`);
  assert.equal(rec.op, fuseOp(init.header.opcode), `${what}: op`);
  assert.deepEqual(rec.arg, init.arg, `${what}: arg`);
  assert.deepEqual(rec.names, init.names ?? [], `${what}: names`);
  assert.deepEqual(flat(rec.data), flat(toSegs(init.data)), `${what}: data`);
  assert.deepEqual(rec.items, init.items ?? [], `${what}: items`);
  assert.deepEqual(rec.extensions, init.extensions ?? [], `${what}: extensions`);
}

function assertReplyMatches(rec: FuseReply, init: FuseReplyInit, len: number, what: string) {
  assert.deepEqual(rec.header, { error: 0, ...init.header, len }, `${what}: header`);
  assert.deepEqual(rec.arg, init.arg, `${what}: arg`);
  assert.deepEqual(rec.names, init.names ?? [], `${what}: names`);
  assert.deepEqual(flat(rec.data), flat(toSegs(init.data)), `${what}: data`);
  assert.deepEqual(rec.items, init.items ?? [], `${what}: items`);
  assert.deepEqual(rec.entries, init.entries ?? [], `${what}: entries`);
}

const CONFIGS: SampleConfig[] = [
  { minor: 45, flags: InitFlags.parse(InitFlags.bits.map(([, n]) => n)) },
  { minor: 38, flags: LINUX_6_1_FLAGS },
  { minor: 37, flags: LINUX_6_1_FLAGS & ~(InitFlags.bit("SETXATTR_EXT") ?? 0n) },
  { minor: 36, flags: LINUX_6_1_FLAGS },
  { minor: 31, flags: 0n },
  { minor: 22, flags: 0n },
  { minor: 8, flags: 0n },
  { minor: 4, flags: 0n },
];

Deno.test("fuse: the table covers every opcode through 7.45, CUSE_INIT and the notify codes", () => {
  const expected = [
    "LOOKUP FORGET GETATTR SETATTR READLINK SYMLINK MKNOD MKDIR UNLINK RMDIR RENAME LINK OPEN",
    "READ WRITE STATFS RELEASE FSYNC SETXATTR GETXATTR LISTXATTR REMOVEXATTR FLUSH INIT OPENDIR",
    "READDIR RELEASEDIR FSYNCDIR GETLK SETLK SETLKW ACCESS CREATE INTERRUPT BMAP DESTROY IOCTL",
    "POLL NOTIFY_REPLY BATCH_FORGET FALLOCATE READDIRPLUS RENAME2 LSEEK COPY_FILE_RANGE",
    "SETUPMAPPING REMOVEMAPPING SYNCFS TMPFILE STATX COPY_FILE_RANGE_64 CUSE_INIT",
  ].join(" ").split(" ");
  assert.deepEqual([...FUSE_OPS.values()].map((o) => o.name), expected);
  assert.equal(fuseOp(1)?.name, "LOOKUP");
  assert.equal(fuseOp(8)?.name, "MKNOD");
  assert.equal(fuseOp(20)?.name, "FSYNC");
  assert.equal(fuseOp(52)?.name, "STATX");
  assert.equal(fuseOp(4096)?.name, "CUSE_INIT");
  assert.equal(fuseOp(7), undefined);
  assert.equal(fuseOp(19), undefined);
  assert.equal(fuseOp(54), undefined);
  assert.equal(OpcodeNames.format(44), "READDIRPLUS");
  assert.equal(fuseOp(Opcode.STATX)?.since, 39);
  assert.equal(fuseOp(Opcode.TMPFILE)?.since, 37);
  assert.deepEqual(
    [...FUSE_NOTIFY.values()].map((n) => `${n.code}:${n.name}`),
    [
      "1:POLL",
      "2:INVAL_INODE",
      "3:INVAL_ENTRY",
      "4:STORE",
      "5:RETRIEVE",
      "6:DELETE",
      "7:RESEND",
      "8:INC_EPOCH",
      "9:PRUNE",
    ],
  );
});

Deno.test("fuse: struct sizes match include/uapi/linux/fuse.h, newest and compat", () => {
  const newest: Record<string, number> = {
    "fuse_in_header": 40,
    "fuse_out_header": 16,
    "fuse_attr": 88,
    "fuse_entry_out": 128,
    "fuse_attr_out": 104,
    "fuse_open_out": 16,
    "fuse_entry_out+fuse_open_out": 144,
    "fuse_forget_in": 8,
    "fuse_forget_one": 16,
    "fuse_batch_forget_in": 8,
    "fuse_getattr_in": 16,
    "fuse_mknod_in": 16,
    "fuse_mkdir_in": 8,
    "fuse_rename_in": 8,
    "fuse_rename2_in": 16,
    "fuse_link_in": 8,
    "fuse_setattr_in": 88,
    "fuse_open_in": 8,
    "fuse_create_in": 16,
    "fuse_release_in": 24,
    "fuse_flush_in": 24,
    "fuse_read_in": 40,
    "fuse_write_in": 40,
    "fuse_write_out": 8,
    "fuse_statfs_out": 80,
    "fuse_fsync_in": 16,
    "fuse_setxattr_in": 16,
    "fuse_getxattr_in": 8,
    "fuse_getxattr_out": 8,
    "fuse_lk_in": 48,
    "fuse_lk_out": 24,
    "fuse_access_in": 8,
    "fuse_init_in": 64,
    "fuse_init_out": 64,
    "cuse_init_in": 16,
    "cuse_init_out": 72,
    "fuse_interrupt_in": 8,
    "fuse_bmap_in": 16,
    "fuse_bmap_out": 8,
    "fuse_ioctl_in": 32,
    "fuse_ioctl_iovec": 16,
    "fuse_ioctl_out": 16,
    "fuse_poll_in": 24,
    "fuse_poll_out": 8,
    "fuse_fallocate_in": 32,
    "fuse_lseek_in": 24,
    "fuse_lseek_out": 8,
    "fuse_copy_file_range_in": 56,
    "fuse_copy_file_range_out": 8,
    "fuse_setupmapping_in": 40,
    "fuse_removemapping_in": 4,
    "fuse_removemapping_one": 16,
    "fuse_syncfs_in": 8,
    "fuse_statx_in": 24,
    "fuse_statx_out": 288,
    "fuse_notify_poll_wakeup_out": 8,
    "fuse_notify_inval_inode_out": 24,
    "fuse_notify_inval_entry_out": 16,
    "fuse_notify_delete_out": 24,
    "fuse_notify_store_out": 24,
    "fuse_notify_retrieve_out": 32,
    "fuse_notify_retrieve_in": 40,
    "fuse_notify_prune_out": 16,
    "fuse_nodeid": 8,
    "fuse_dirent": 24,
    "fuse_ext_header": 8,
    "fuse_secctx_header": 8,
    "fuse_secctx": 8,
    "fuse_supp_groups": 4,
  };
  for (const [name, layout] of FUSE_LAYOUTS) {
    assert.equal(layout.size(), newest[name], name);
  }
  assert.equal(FUSE_LAYOUTS.size, Object.keys(newest).length);
  const compat: [string, number, number][] = [
    ["fuse_entry_out", 8, 120], // FUSE_COMPAT_ENTRY_OUT_SIZE
    ["fuse_attr_out", 8, 96], // FUSE_COMPAT_ATTR_OUT_SIZE
    ["fuse_write_in", 8, 24], // FUSE_COMPAT_WRITE_IN_SIZE
    ["fuse_mknod_in", 11, 8], // FUSE_COMPAT_MKNOD_IN_SIZE
    ["fuse_create_in", 11, 8], // sizeof(fuse_open_in) before 7.12
    ["fuse_setxattr_in", 32, 8], // FUSE_COMPAT_SETXATTR_IN_SIZE
    ["fuse_init_out", 4, 8], // FUSE_COMPAT_INIT_OUT_SIZE
    ["fuse_init_out", 22, 24], // FUSE_COMPAT_22_INIT_OUT_SIZE
    ["fuse_init_in", 35, 16],
    ["fuse_init_in", 5, 8],
    ["fuse_statfs_out", 3, 48], // FUSE_COMPAT_STATFS_SIZE
    ["fuse_getattr_in", 8, 0],
  ];
  for (const [name, minor, size] of compat) {
    assert.equal(FUSE_LAYOUTS.get(name)?.size(minor), size, `${name} at 7.${minor}`);
  }
});

Deno.test("fuse: every request, reply and error reply round-trips at several minors", () => {
  let checked = 0;
  for (const config of CONFIGS) {
    for (const s of fuseSamples(config)) {
      const what = `${s.label} @7.${config.minor}`;
      const session = sessionFor(config);
      const bytes = encodeRequest(s.request, session);
      const rec = decodeRequest(bytes, sessionFor(config));
      assertRequestMatches(rec, s.request, bytes.byteLength, what);
      assert.deepEqual(encodeRequest(rec, sessionFor(config)), bytes, `${what}: re-encoded`);
      // The same message as a descriptor chain, cut at two places.
      const segs = split(bytes, [
        Math.min(40, bytes.byteLength),
        Math.floor(bytes.byteLength * 0.7),
      ]);
      const recSeg = decodeRequest(segs, sessionFor(config));
      assertRequestMatches(recSeg, s.request, bytes.byteLength, `${what} (segments)`);
      assert.deepEqual(flat(encodeRequestSegments(recSeg, sessionFor(config))), bytes);
      for (const [i, reply] of s.replies.entries()) {
        const rs = sessionFor(config);
        const rb = encodeReply(reply, rec, rs);
        const rrec = decodeReply(rb, rec, sessionFor(config));
        assert.equal(rrec.op, s.op);
        assertReplyMatches(rrec, reply, rb.byteLength, `${what} reply ${i}`);
        assert.deepEqual(
          encodeReply(rrec, rec, sessionFor(config)),
          rb,
          `${what} reply ${i} re-encoded`,
        );
        const rsegs = split(rb, [16, Math.floor((rb.byteLength + 16) / 2)]);
        assertReplyMatches(decodeReply(rsegs, rec, sessionFor(config)), reply, rb.byteLength, what);
        checked++;
      }
      const err = encodeErrorReply(s.request.header.unique, 2);
      assert.equal(err.byteLength, 16);
      const erec = decodeReply(err, rec, sessionFor(config));
      assert.deepEqual(erec.header, { len: 16, error: -2, unique: s.request.header.unique });
      assert.equal(erec.arg, undefined);
      assert.deepEqual(encodeReply(erec, rec, sessionFor(config)), err);
      assert.equal(formatOutError(erec.header.error), "-ENOENT");
      checked++;
    }
    for (const n of notifySamples(config.minor)) {
      const nb = encodeReply(n.reply, undefined, sessionFor(config));
      const nrec = decodeReply(nb, undefined, sessionFor(config));
      assert.equal(nrec.notify?.name, n.label);
      assertReplyMatches(nrec, n.reply, nb.byteLength, `notify ${n.label}`);
      assert.deepEqual(encodeReply(nrec, undefined, sessionFor(config)), nb);
      checked++;
    }
  }
  assert.ok(checked > 8 * 60, `${checked} replies checked`);
});

Deno.test("fuse: golden bytes of a LOOKUP request and its reply", () => {
  const s = new FuseSession({ minor: 38, flags: LINUX_6_1_FLAGS });
  const bytes = encodeRequest(
    {
      header: { opcode: 1, unique: 0x10n, nodeid: 1n, uid: 1000, gid: 1000, pid: 77 },
      names: ["ab"],
    },
    s,
  );
  // deno-fmt-ignore
  assert.deepEqual([...bytes], [
    43, 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
    0xe8, 3, 0, 0, 0xe8, 3, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x62, 0,
  ]);
  const rec = decodeRequest(bytes, s);
  assert.equal(rec.op?.name, "LOOKUP");
  assert.deepEqual(rec.names, ["ab"]);
  const reply = encodeReply(
    { header: { unique: 0x10n }, arg: { nodeid: 5n, mode: 0o40755 } },
    rec,
    s,
  );
  assert.equal(reply.byteLength, 16 + 128);
  const v = view(reply);
  assert.equal(v.getUint32(0, true), 144);
  assert.equal(v.getBigUint64(16, true), 5n);
  assert.equal(v.getUint32(16 + 40 + 60, true), 0o40755); // fuse_attr.mode at 60
  const r = decodeReply(reply, rec, s);
  assert.equal(
    formatField(r.op!.reply.struct!.fields.find((f) => f.name === "mode")!, r.arg!.mode!),
    "drwxr-xr-x",
  );
});

Deno.test("fuse: a Linux 6.1 guest's INIT (7.38) and C virtiofsd's 7.36 reply", () => {
  // Built by hand from fuse.h offsets, not by the encoder.
  const req = new Uint8Array(104);
  const v = new DataView(req.buffer);
  v.setUint32(0, 104, true); // len
  v.setUint32(4, 26, true); // FUSE_INIT
  v.setBigUint64(8, 2n, true); // unique
  v.setUint32(40, 7, true); // major
  v.setUint32(44, 38, true); // minor
  v.setUint32(48, 0x20000, true); // max_readahead
  v.setUint32(52, 0x7bfffffb, true); // all of bits 0..30 except FILE_OPS(2), MAP_ALIGNMENT(26)
  v.setUint32(56, 1, true); // flags2: SECURITY_CTX
  const session = new FuseSession();
  const rec = decodeRequest(req, session);
  assert.equal(rec.op?.name, "INIT");
  assert.equal(rec.arg?.minor, 38);
  assert.equal(rec.arg?.["max_readahead"], 131072);
  assert.deepEqual(InitFlagsLow.names(rec.arg!.flags as number), [
    "ASYNC_READ",
    "POSIX_LOCKS",
    "ATOMIC_O_TRUNC",
    "EXPORT_SUPPORT",
    "BIG_WRITES",
    "DONT_MASK",
    "SPLICE_WRITE",
    "SPLICE_MOVE",
    "SPLICE_READ",
    "FLOCK_LOCKS",
    "HAS_IOCTL_DIR",
    "AUTO_INVAL_DATA",
    "DO_READDIRPLUS",
    "READDIRPLUS_AUTO",
    "ASYNC_DIO",
    "WRITEBACK_CACHE",
    "NO_OPEN_SUPPORT",
    "PARALLEL_DIROPS",
    "HANDLE_KILLPRIV",
    "POSIX_ACL",
    "ABORT_ERROR",
    "MAX_PAGES",
    "CACHE_SYMLINKS",
    "NO_OPENDIR_SUPPORT",
    "EXPLICIT_INVAL_DATA",
    "SUBMOUNTS",
    "HANDLE_KILLPRIV_V2",
    "SETXATTR_EXT",
    "INIT_EXT",
  ]);
  assert.deepEqual(InitFlags2.names(rec.arg!.flags2 as number), ["SECURITY_CTX"]);
  assert.equal(session.kernelMinor, 38);
  assert.equal(session.kernelFlags, LINUX_6_1_FLAGS);
  assert.deepEqual(encodeRequest(rec, new FuseSession()), req);

  // The daemon answers 7.36 with a 64-byte fuse_init_out.
  const rep = new Uint8Array(80);
  const w = new DataView(rep.buffer);
  w.setUint32(0, 80, true);
  w.setBigUint64(8, 2n, true);
  w.setUint32(16, 7, true);
  w.setUint32(20, 36, true);
  w.setUint32(24, 0x20000, true);
  w.setUint32(28, (1 << 30) | (1 << 29) | (1 << 13) | 1, true); // INIT_EXT SETXATTR_EXT DO_READDIRPLUS ASYNC_READ
  w.setUint16(32, 12, true); // max_background
  w.setUint16(34, 9, true); // congestion_threshold
  w.setUint32(36, 1 << 20, true); // max_write
  w.setUint32(40, 1, true); // time_gran
  w.setUint16(44, 256, true); // max_pages
  w.setUint32(48, 1, true); // flags2: SECURITY_CTX
  const out = decodeReply(rep, rec, session);
  assert.equal(out.arg?.["max_write"], 1 << 20);
  assert.equal(out.arg?.["max_pages"], 256);
  assert.equal(session.minor, 36);
  assert.equal(session.daemonMinor, 36);
  assert.equal(session.has("SETXATTR_EXT"), true);
  assert.equal(session.has("SECURITY_CTX"), true);
  assert.equal(session.has("WRITEBACK_CACHE"), false);
  assert.deepEqual(encodeReply(out, rec, new FuseSession({ minor: 38 })), rep);

  // From now on 7.36 rules: inline security context, 16-byte setxattr_in.
  const mk = encodeRequest({
    header: { opcode: Opcode.MKDIR, unique: 4n, nodeid: 1n },
    arg: { mode: 0o755, umask: 0o22 },
    names: ["d"],
    extensions: [{ kind: "secctx", contexts: [] }],
  }, session);
  assert.equal(mk.byteLength, 40 + 8 + 2 + 8);
  assert.equal(view(mk).getUint16(36, true), 0, "no total_extlen before 7.38");
  assert.deepEqual(decodeRequest(mk, session).extensions, [{ kind: "secctx", contexts: [] }]);
  const sx = encodeRequest({
    header: { opcode: Opcode.SETXATTR, unique: 6n },
    arg: { flags: 1 },
    names: ["user.a"],
    data: new Uint8Array(3),
  }, session);
  assert.equal(sx.byteLength, 40 + 16 + 7 + 3);
});

Deno.test("fuse: version-dependent layouts at several minors", () => {
  const write = (minor: number) =>
    encodeRequest({
      header: { opcode: Opcode.WRITE, unique: 2n },
      arg: { fh: 1n, offset: 4096n },
      data: new Uint8Array(10),
    }, new FuseSession({ minor }));
  assert.equal(write(8).byteLength, 40 + 24 + 10);
  assert.equal(write(9).byteLength, 40 + 40 + 10);
  const w8 = decodeRequest(write(8), new FuseSession({ minor: 8 }));
  assert.equal(w8.arg?.size, 10);
  assert.equal(w8.arg?.["lock_owner"], 0n);
  assert.equal(w8.arg?.offset, 4096n);

  const sizeOf = (
    opcode: number,
    minor: number,
    flags: bigint | undefined,
    arg = {},
    names: string[] = [],
  ) =>
    encodeRequest(
      { header: { opcode, unique: 2n }, arg, names },
      new FuseSession(flags === undefined ? { minor } : { minor, flags }),
    ).byteLength - 40 - names.reduce((n, s) => n + s.length + 1, 0);
  assert.equal(sizeOf(Opcode.MKNOD, 11, 0n, {}, ["n"]), 8);
  assert.equal(sizeOf(Opcode.MKNOD, 12, 0n, {}, ["n"]), 16);
  assert.equal(sizeOf(Opcode.CREATE, 11, 0n, {}, ["n"]), 8);
  assert.equal(sizeOf(Opcode.CREATE, 12, 0n, {}, ["n"]), 16);
  assert.equal(sizeOf(Opcode.GETATTR, 8, 0n), 0);
  assert.equal(sizeOf(Opcode.GETATTR, 9, 0n), 16);
  const ext = InitFlags.bit("SETXATTR_EXT") ?? 0n;
  assert.equal(sizeOf(Opcode.SETXATTR, 45, 0n, {}, ["user.x"]), 8);
  assert.equal(sizeOf(Opcode.SETXATTR, 33, ext, {}, ["user.x"]), 16);
  assert.equal(sizeOf(Opcode.INIT, 45, undefined, { major: 7, minor: 35 }), 16);
  assert.equal(sizeOf(Opcode.INIT, 45, undefined, { major: 7, minor: 36 }), 64);
  assert.equal(sizeOf(Opcode.INIT, 45, undefined, { major: 7, minor: 5 }), 8);

  // Flags unknown (a trace that starts after INIT): the setxattr form is inferred.
  for (const flags of [0n, ext]) {
    const body = encodeRequest({
      header: { opcode: Opcode.SETXATTR, unique: 2n },
      arg: { flags: 2 },
      names: ["security.capability"],
      data: new Uint8Array([1, 2, 3, 4, 5]),
    }, new FuseSession({ minor: 38, flags }));
    const unknown = new FuseSession({ minor: 38 });
    const rec = decodeRequest(body, unknown);
    assert.deepEqual(rec.names, ["security.capability"]);
    assert.deepEqual(flat(rec.data), new Uint8Array([1, 2, 3, 4, 5]));
    assert.equal(unknown.setxattrExt, flags !== 0n);
    assert.deepEqual(encodeRequest(rec, unknown), body);
  }

  // Replies: compat entry/attr/statfs/init_out sizes.
  const reply = (opcode: number, minor: number, arg = {}) =>
    encodeReply({ header: { unique: 2n }, arg }, opcode, new FuseSession({ minor })).byteLength -
    16;
  assert.equal(reply(Opcode.LOOKUP, 8), 120);
  assert.equal(reply(Opcode.LOOKUP, 9), 128);
  assert.equal(reply(Opcode.GETATTR, 8), 96);
  assert.equal(reply(Opcode.GETATTR, 38), 104);
  assert.equal(reply(Opcode.STATFS, 3), 48);
  assert.equal(reply(Opcode.CREATE, 8), 136);
  assert.equal(reply(Opcode.INIT, 45, { major: 7, minor: 4 }), 8);
  assert.equal(reply(Opcode.INIT, 45, { major: 7, minor: 22 }), 24);
  assert.equal(reply(Opcode.INIT, 45, { major: 7, minor: 36 }), 64);
  // The INIT reply is sized by the lower of the kernel's and the daemon's minors.
  const s = new FuseSession();
  decodeRequest(
    encodeRequest({ header: { opcode: 26, unique: 2n }, arg: { major: 7, minor: 22 } }, s),
    s,
  );
  assert.equal(
    encodeReply({ header: { unique: 2n }, arg: { major: 7, minor: 38 } }, 26, s).byteLength,
    40,
  );
  assert.equal(s.minor, 22);

  // total_extlen: counted from 7.38, padding before.
  const withExt = (minor: number) =>
    encodeRequest({
      header: { opcode: Opcode.CREATE, unique: 2n },
      arg: {},
      names: ["f"],
      extensions: [{ kind: "groups", groups: [7] }],
    }, new FuseSession({ minor }));
  const b38 = withExt(38);
  assert.equal(view(b38).getUint16(36, true), 2);
  assert.deepEqual(decodeRequest(b38, new FuseSession({ minor: 38 })).extensions, [
    { kind: "groups", groups: [7] },
  ]);
  assert.equal(view(withExt(37)).getUint16(36, true), 0);
});

Deno.test("fuse: unknown opcodes and notify codes decode as raw records", () => {
  const s = new FuseSession();
  const b = encodeRequest({
    header: { opcode: 999, unique: 8n, nodeid: 3n },
    data: new Uint8Array([1, 2, 3]),
  }, s);
  const rec = decodeRequest(b, s);
  assert.equal(rec.op, undefined);
  assert.equal(rec.header.opcode, 999);
  assert.deepEqual(flat(rec.data), new Uint8Array([1, 2, 3]));
  assert.deepEqual(encodeRequest(rec, s), b);
  const r = encodeReply({ header: { unique: 8n }, data: new Uint8Array([9]) }, rec, s);
  const rr = decodeReply(r, rec, s);
  assert.equal(rr.op, undefined);
  assert.deepEqual(flat(rr.data), new Uint8Array([9]));
  const n = encodeReply(
    { header: { unique: 0n, error: 77 }, data: new Uint8Array(4) },
    undefined,
    s,
  );
  const nr = decodeReply(n, undefined, s);
  assert.equal(nr.notify, undefined);
  assert.equal(nr.header.error, 77);
  assert.equal(flat(nr.data).byteLength, 4);
  // An unpaired reply (no request known) keeps its body raw.
  assert.equal(flat(decodeReply(r, undefined, s).data).byteLength, 1);
});

Deno.test("fuse: payloads stay views of the input; headers split across segments are gathered", () => {
  const s = new FuseSession({ minor: 38 });
  const payload = new Uint8Array(3 * 4096).map((_, i) => i & 0xff);
  const segs = encodeRequestSegments(
    {
      header: { opcode: Opcode.WRITE, unique: 2n },
      arg: { fh: 1n },
      data: [payload.subarray(0, 4096), payload.subarray(4096)],
    },
    s,
  );
  assert.equal(segs.length, 3);
  assert.equal(segs[1]!.buffer, payload.buffer, "encoder passes payload through");
  const bytes = flat(segs);
  // Every cut position for the first 90 bytes: header and struct straddle segments.
  for (let cut = 1; cut < 90; cut++) {
    const chain = [bytes.subarray(0, cut), bytes.subarray(cut, 100), bytes.subarray(100)];
    const rec = decodeRequest(chain, s);
    assert.equal(rec.arg?.size, payload.byteLength);
    assert.deepEqual(flat(rec.data), payload);
    for (const d of rec.data) assert.equal(d.buffer, bytes.buffer, "payload not copied");
  }
  const lookup = encodeRequest({ header: { opcode: 1, unique: 2n }, names: ["a-long-name"] }, s);
  for (let cut = 1; cut < lookup.byteLength; cut++) {
    const rec = decodeRequest(
      [lookup.subarray(0, cut), new Uint8Array(0), lookup.subarray(cut)],
      s,
    );
    assert.deepEqual(rec.names, ["a-long-name"], `cut at ${cut}`);
  }
});

interface Bad {
  readonly name: string;
  readonly bytes: () => Uint8Array | Uint8Array[];
  readonly kind: "request" | "reply";
  readonly request?: FuseRequest | number;
  readonly minor?: number;
  readonly fragments: readonly string[];
}

function edit(b: Uint8Array, f: (v: DataView) => void): Uint8Array {
  const c = b.slice();
  f(new DataView(c.buffer));
  return c;
}

function fixLen(b: Uint8Array): Uint8Array {
  return edit(b, (v) => v.setUint32(0, b.byteLength, true));
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return flat(parts);
}

/** A success reply header (len fixed later) followed by `n` zero bytes. */
function okWith(n: number): Uint8Array {
  return fixLen(
    cat(edit(encodeErrorReply(2n, 1), (v) => v.setInt32(4, 0, true)), new Uint8Array(n)),
  );
}

Deno.test("fuse: malformed input is a DecodeError naming opcode, field and offset", () => {
  const s38 = () => new FuseSession({ minor: 38 });
  const req = (init: FuseRequestInit, minor = 38) =>
    encodeRequest(init, new FuseSession({ minor }));
  const lookup = req({ header: { opcode: 1, unique: 2n }, names: ["abc"] });
  const write = req({
    header: { opcode: Opcode.WRITE, unique: 2n },
    arg: {},
    data: new Uint8Array(16),
  });
  const forget = req({
    header: { opcode: Opcode.BATCH_FORGET, unique: 2n },
    arg: {},
    items: [{ nodeid: 1n, nlookup: 1n }, { nodeid: 2n, nlookup: 1n }],
  });
  const create = req({
    header: { opcode: Opcode.CREATE, unique: 2n },
    arg: {},
    names: ["f"],
    extensions: [
      { kind: "secctx", contexts: [{ name: "security.selinux", value: new Uint8Array([65, 0]) }] },
      { kind: "groups", groups: [5] },
    ],
  });
  // create: 40 header + 16 create_in + 2 name = 58; secctx ext at 58 (8 + 32 = 40 bytes), groups at 98.
  const readReq = decodeRequest(
    req({ header: { opcode: 15, unique: 2n }, arg: { size: 8 } }),
    s38(),
  );
  const rdplus = decodeRequest(
    req({ header: { opcode: 44, unique: 2n }, arg: { size: 4096 } }),
    s38(),
  );
  const dirents = encodeReply(
    {
      header: { unique: 2n },
      entries: [{ ino: 1n, off: 1n, type: 4, name: "abc" }, {
        ino: 2n,
        off: 2n,
        type: 8,
        name: "d",
      }],
    },
    28,
    s38(),
  );
  const direntplus = encodeReply(
    {
      header: { unique: 2n },
      entries: [{ ino: 1n, off: 1n, type: 4, name: "abc", entry: {} }],
    },
    rdplus,
    s38(),
  );
  const ioctlRetry = encodeReply(
    {
      header: { unique: 2n },
      arg: { flags: 4, "in_iovs": 1, "out_iovs": 0 },
      items: [{ base: 1n, len: 2n }],
    },
    Opcode.IOCTL,
    s38(),
  );
  const inval = encodeReply(
    {
      header: { unique: 0n, error: 3 },
      arg: { parent: 1n },
      names: ["gone"],
    },
    undefined,
    s38(),
  );
  const prune = encodeReply(
    {
      header: { unique: 0n, error: 9 },
      arg: {},
      items: [{ nodeid: 1n }],
    },
    undefined,
    s38(),
  );
  const cases: Bad[] = [
    {
      name: "empty",
      kind: "request",
      bytes: () => new Uint8Array(0),
      fragments: ["fuse_in_header truncated", "0 available"],
    },
    {
      name: "short header",
      kind: "request",
      bytes: () => lookup.subarray(0, 39),
      fragments: ["needs 40 bytes, 39"],
    },
    {
      name: "len too long",
      kind: "request",
      bytes: () => edit(lookup, (v) => v.setUint32(0, 99, true)),
      fragments: ["LOOKUP request", "len says 99 bytes, the message has 44", "offset 0"],
    },
    {
      name: "len too short",
      kind: "request",
      bytes: () => edit(lookup, (v) => v.setUint32(0, 40, true)),
      fragments: ["len says 40"],
    },
    {
      name: "truncated message",
      kind: "request",
      bytes: () => fixLen(lookup.subarray(0, 42)),
      fragments: ["name is not NUL-terminated", "offset 40"],
    },
    {
      name: "name without NUL",
      kind: "request",
      bytes: () => edit(lookup, (v) => v.setUint8(43, 0x41)),
      fragments: ["LOOKUP request: name is not NUL-terminated"],
    },
    {
      name: "symlink target without NUL",
      kind: "request",
      bytes: () =>
        fixLen(req({ header: { opcode: 6, unique: 2n }, names: ["a", "b"] }).subarray(0, 43)),
      fragments: ["SYMLINK request: target is not NUL-terminated"],
    },
    {
      name: "struct truncated",
      kind: "request",
      bytes: () => fixLen(req({ header: { opcode: 15, unique: 2n }, arg: {} }).subarray(0, 60)),
      fragments: [
        "READ request: fuse_read_in truncated, needs 40 bytes, 20 available",
        "offset 40",
      ],
    },
    {
      name: "trailing bytes",
      kind: "request",
      bytes: () =>
        fixLen(cat(req({ header: { opcode: 14, unique: 2n }, arg: {} }), new Uint8Array(3))),
      fragments: ["OPEN request: 3 unexpected bytes", "offset 48"],
    },
    {
      name: "write size lies",
      kind: "request",
      bytes: () => edit(write, (v) => v.setUint32(56, 17, true)),
      fragments: [
        "WRITE request: fuse_write_in.size says 17 bytes of data, 16 bytes follow",
        "offset 80",
      ],
    },
    {
      name: "batch forget count lies",
      kind: "request",
      bytes: () => edit(forget, (v) => v.setUint32(40, 3, true)),
      fragments: [
        "BATCH_FORGET request: fuse_batch_forget_in.count says 3 forgets (48 bytes), 32 bytes follow",
      ],
    },
    {
      name: "batch forget count huge",
      kind: "request",
      bytes: () => edit(forget, (v) => v.setUint32(40, 0xffffffff, true)),
      fragments: ["count says 4294967295"],
    },
    {
      name: "removemapping count lies",
      kind: "request",
      bytes: () =>
        edit(
          req({ header: { opcode: 49, unique: 2n }, arg: {}, items: [{}] }),
          (v) => v.setUint32(40, 0, true),
        ),
      fragments: ["REMOVEMAPPING request: fuse_removemapping_in.count says 0"],
    },
    {
      name: "total_extlen beyond body",
      kind: "request",
      bytes: () => edit(lookup, (v) => v.setUint16(36, 9, true)),
      fragments: ["total_extlen 9 (72 bytes) exceeds the 4-byte body", "offset 36"],
    },
    {
      name: "extension size zero",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(58, 0, true)),
      fragments: ["CREATE request: extension #0 fuse_ext_header.size 0 invalid", "offset 58"],
    },
    {
      name: "extension size unaligned",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(98, 12, true)),
      fragments: ["extension #1 fuse_ext_header.size 12 invalid"],
    },
    {
      name: "extension size beyond",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(98, 24, true)),
      fragments: ["size 24 invalid (multiple of 8, 8..16)"],
    },
    {
      name: "secctx size lies",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(66, 200, true)),
      fragments: ["fuse_secctx #0.size says 200 context bytes"],
    },
    {
      name: "secctx count lies",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(62, 2, true)),
      fragments: ["fuse_secctx #1 truncated"],
    },
    {
      name: "secctx without NUL",
      kind: "request",
      bytes: () =>
        edit(create, (v) => {
          for (let i = 74; i < 98; i++) v.setUint8(i, 0x41);
        }),
      fragments: ["fuse_secctx #0 name is not NUL-terminated"],
    },
    {
      name: "groups count lies",
      kind: "request",
      bytes: () => edit(create, (v) => v.setUint32(106, 3, true)),
      fragments: ["fuse_supp_groups.nr_groups 3 needs a 24-byte extension, header says 16"],
    },
    {
      name: "setxattr value size lies",
      kind: "request",
      minor: 38,
      bytes: () =>
        edit(
          req({
            header: { opcode: 21, unique: 2n },
            arg: {},
            names: ["n"],
            data: new Uint8Array(4),
          }),
          (v) => v.setUint32(40, 5, true),
        ),
      fragments: ["SETXATTR request: fuse_setxattr_in.size says 5 bytes of value, 4 bytes follow"],
    },
    {
      name: "reply: short header",
      kind: "reply",
      request: 1,
      bytes: () => new Uint8Array(15),
      fragments: ["fuse_out_header truncated, needs 16 bytes, 15 available"],
    },
    {
      name: "reply: len lies",
      kind: "reply",
      request: 1,
      bytes: () => edit(encodeErrorReply(2n, 2), (v) => v.setUint32(0, 20, true)),
      fragments: ["LOOKUP reply: fuse_out_header.len says 20 bytes, the message has 16"],
    },
    {
      name: "reply: positive error",
      kind: "reply",
      request: 1,
      bytes: () => edit(encodeErrorReply(2n, 2), (v) => v.setInt32(4, 5, true)),
      fragments: ["error 5 is not a negated errno", "offset 4"],
    },
    {
      name: "reply: error beyond -511",
      kind: "reply",
      request: 1,
      bytes: () => edit(encodeErrorReply(2n, 2), (v) => v.setInt32(4, -512, true)),
      fragments: ["error -512"],
    },
    {
      name: "reply: error with body",
      kind: "reply",
      request: 1,
      bytes: () => fixLen(cat(encodeErrorReply(2n, 13), new Uint8Array(8))),
      fragments: ["LOOKUP reply: error reply EACCES carries 8 body bytes", "offset 16"],
    },
    {
      name: "reply: entry_out short",
      kind: "reply",
      request: 1,
      bytes: () =>
        fixLen(encodeReply({ header: { unique: 2n }, arg: {} }, 1, s38()).subarray(0, 100)),
      fragments: ["LOOKUP reply: fuse_entry_out truncated, needs 128 bytes, 84 available"],
    },
    {
      name: "reply: attr_out long",
      kind: "reply",
      request: 3,
      bytes: () =>
        fixLen(cat(encodeReply({ header: { unique: 2n }, arg: {} }, 3, s38()), new Uint8Array(8))),
      fragments: ["GETATTR reply: 8 unexpected bytes after fuse_attr_out", "offset 120"],
    },
    {
      name: "reply: empty kind with body",
      kind: "reply",
      request: 10,
      bytes: () => okWith(8),
      fragments: ["UNLINK reply: expected no body, got 8 bytes"],
    },
    {
      name: "reply: to FORGET",
      kind: "reply",
      request: 2,
      bytes: () => okWith(8),
      fragments: ["FORGET reply: no reply is expected"],
    },
    {
      name: "reply: READ beyond request",
      kind: "reply",
      request: readReq,
      bytes: () => encodeReply({ header: { unique: 2n }, data: new Uint8Array(9) }, 15, s38()),
      fragments: ["READ reply: 9 bytes exceed the 8 the request asked for"],
    },
    {
      name: "dirent namelen 0",
      kind: "reply",
      request: 28,
      bytes: () => edit(dirents, (v) => v.setUint32(32, 0, true)),
      fragments: ["READDIR reply: fuse_dirent #0 namelen 0 outside 1..1024", "offset 32"],
    },
    {
      name: "dirent namelen beyond",
      kind: "reply",
      request: 28,
      bytes: () => edit(dirents, (v) => v.setUint32(32 + 32, 9, true)),
      fragments: ["fuse_dirent #1 with namelen 9 needs 40 bytes (8-aligned), 32 left"],
    },
    {
      name: "dirent unaligned end",
      kind: "reply",
      request: 28,
      bytes: () => fixLen(dirents.subarray(0, dirents.byteLength - 3)),
      fragments: ["fuse_dirent #1 with namelen 1 needs 32 bytes (8-aligned), 29 left"],
    },
    {
      name: "dirent truncated head",
      kind: "reply",
      request: 28,
      bytes: () => fixLen(dirents.subarray(0, 16 + 32 + 10)),
      fragments: ["fuse_dirent #1 truncated, needs 24 bytes, 10 left", "offset 48"],
    },
    {
      name: "dirent name with slash",
      kind: "reply",
      request: 28,
      bytes: () => edit(dirents, (v) => v.setUint8(41, 0x2f)),
      fragments: ["fuse_dirent #0 name contains '/'"],
    },
    {
      name: "direntplus truncated",
      kind: "reply",
      request: rdplus,
      bytes: () => fixLen(direntplus.subarray(0, 100)),
      fragments: ["READDIRPLUS reply: fuse_direntplus #0 truncated, needs 152 bytes, 84 left"],
    },
    {
      name: "ioctl iovec count lies",
      kind: "reply",
      request: Opcode.IOCTL,
      bytes: () => edit(ioctlRetry, (v) => v.setUint32(28, 5, true)),
      fragments: [
        "IOCTL reply: fuse_ioctl_out.in_iovs+out_iovs says 6 iovecs (96 bytes), 16 bytes follow",
      ],
    },
    {
      name: "getxattr probe wrong size",
      kind: "reply",
      request: decodeRequest(
        req({ header: { opcode: 22, unique: 2n }, arg: { size: 0 }, names: ["user.a"] }),
        s38(),
      ),
      bytes: () => okWith(12),
      fragments: ["GETXATTR reply: 4 unexpected bytes after fuse_getxattr_out"],
    },
    {
      name: "init reply truncated",
      kind: "reply",
      request: Opcode.INIT,
      bytes: () => okWith(4),
      fragments: ["INIT reply: fuse_init_out truncated"],
    },
    {
      name: "notify inval_entry namelen lies",
      kind: "reply",
      bytes: () => edit(inval, (v) => v.setUint32(24, 40, true)),
      fragments: [
        "FUSE notify INVAL_ENTRY: fuse_notify_inval_entry_out.namelen says 40 bytes of name, 5 bytes follow",
      ],
    },
    {
      name: "notify inval_entry no NUL",
      kind: "reply",
      bytes: () => edit(inval, (v) => v.setUint8(36, 0x41)),
      fragments: ["notify INVAL_ENTRY: name is not NUL-terminated", "offset 36"],
    },
    {
      name: "notify prune count lies",
      kind: "reply",
      bytes: () => edit(prune, (v) => v.setUint32(16, 2, true)),
      fragments: [
        "notify PRUNE: fuse_notify_prune_out.count says 2 nodeids (16 bytes), 8 bytes follow",
      ],
    },
    {
      name: "notify len lies",
      kind: "reply",
      bytes: () => edit(prune, (v) => v.setUint32(0, 1, true)),
      fragments: ["notify PRUNE: fuse_out_header.len says 1 bytes"],
    },
  ];
  for (const c of cases) {
    const session = new FuseSession({ minor: c.minor ?? 38 });
    assert.throws(
      () =>
        c.kind === "request"
          ? decodeRequest(c.bytes(), session)
          : decodeReply(c.bytes(), c.request, session),
      (e: unknown) => {
        assert.ok(e instanceof DecodeError, `${c.name}: ${String(e)}`);
        for (const f of c.fragments) {
          assert.ok(e.message.includes(f), `${c.name}: "${e.message}" lacks "${f}"`);
        }
        return true;
      },
      c.name,
    );
  }
});

Deno.test("fuse: encode rejects what cannot go on the wire", () => {
  const s = new FuseSession();
  const bad: [string, () => unknown, string][] = [
    [
      "NUL in name",
      () => encodeRequest({ header: { opcode: 1, unique: 2n }, names: ["a\0b"] }, s),
      "name contains NUL",
    ],
    [
      "missing name",
      () => encodeRequest({ header: { opcode: 12, unique: 2n }, arg: {}, names: ["a"] }, s),
      "missing newname",
    ],
    [
      "u32 overflow",
      () => encodeRequest({ header: { opcode: 15, unique: 2n }, arg: { size: 2 ** 32 } }, s),
      "fuse_read_in.size: cannot encode 4294967296 as u32",
    ],
    [
      "negative u64",
      () => encodeRequest({ header: { opcode: 15, unique: 2n }, arg: { fh: -1n } }, s),
      "fuse_read_in.fh",
    ],
    [
      "lone surrogate",
      () => encodeRequest({ header: { opcode: 1, unique: 2n }, names: ["\ud800"] }, s),
      "lone surrogate",
    ],
    [
      "reply to FORGET",
      () => encodeReply({ header: { unique: 2n } }, Opcode.FORGET, s),
      "FORGET takes no reply",
    ],
    [
      "positive error",
      () => encodeReply({ header: { unique: 2n, error: 2 } }, 1, s),
      "not a negated errno",
    ],
    [
      "slash in dirent",
      () =>
        encodeReply(
          { header: { unique: 2n }, entries: [{ ino: 1n, off: 1n, type: 8, name: "a/b" }] },
          28,
          s,
        ),
      "has '/'",
    ],
    ["errno 0", () => encodeErrorReply(2n, 0), "errno 0"],
  ];
  for (const [name, f, fragment] of bad) {
    assert.throws(f, (e: unknown) => {
      assert.ok(e instanceof EncodeError, `${name}: ${String(e)}`);
      assert.ok(e.message.includes(fragment), `${name}: ${e.message}`);
      return true;
    });
  }
});

Deno.test("fuse: names survive non-UTF-8 bytes; flag, mode and errno formatting", () => {
  const raw = new Uint8Array([
    0x61,
    0xff,
    0xc3,
    0xa9,
    0xed,
    0xa0,
    0x80,
    0xf0,
    0x9f,
    0x98,
    0x80,
    0xc3,
  ]);
  const name = decodeName(raw);
  assert.equal(name, "a\udcffé\udced\udca0\udc80😀\udcc3");
  assert.deepEqual(encodeName(name), raw);
  assert.deepEqual(encodeName("plain"), new TextEncoder().encode("plain"));

  assert.equal(formatMode(0o40755), "drwxr-xr-x");
  assert.equal(formatMode(0o100644), "-rw-r--r--");
  assert.equal(formatMode(0o120777), "lrwxrwxrwx");
  assert.equal(formatMode(0o104755), "-rwsr-xr-x");
  assert.equal(formatMode(0o102644), "-rw-r-Sr--");
  assert.equal(formatMode(0o41777), "drwxrwxrwt");
  assert.equal(formatMode(0o20620), "crw--w----");
  assert.equal(formatMode(0o755), "?rwxr-xr-x");
  assert.equal(formatOpenFlags(0), "O_RDONLY");
  assert.equal(formatOpenFlags(0o100102), "O_RDWR|O_CREAT|O_LARGEFILE");
  assert.equal(formatOpenFlags(0o4010001), "O_WRONLY|O_SYNC");
  assert.equal(formatOpenFlags(0o20200000), "O_RDONLY|O_TMPFILE");
  assert.equal(formatRdev((8 << 8) | 1), "8:1");
  assert.equal(formatOutError(0), "0");
  assert.equal(formatOutError(-13), "-EACCES");
  assert.equal(formatOutError(3), "NOTIFY_INVAL_ENTRY");
  assert.equal(SetattrValid.format(1 | 8 | 0x800), "FATTR_MODE|FATTR_SIZE|FATTR_KILL_SUIDGID");
  assert.equal(InitFlags.format(1n << 40n), "ALLOW_IDMAP");
  assert.equal(InitFlags2.format(1 << 8), "ALLOW_IDMAP");
  const release = fuseOp(Opcode.RELEASE)!.request.struct!;
  const show = (layout: typeof release, field: string, v: number | bigint) =>
    formatField(layout.fields.find((f) => f.name === field)!, v);
  assert.equal(show(release, "release_flags", 3), "RELEASE_FLUSH|RELEASE_FLOCK_UNLOCK");
  assert.equal(show(fuseOp(Opcode.GETLK)!.request.struct!, "type", 1), "F_WRLCK");
  assert.equal(show(fuseOp(Opcode.LSEEK)!.request.struct!, "whence", 4), "SEEK_HOLE");
  assert.equal(show(fuseOp(Opcode.RENAME2)!.request.struct!, "flags", 2), "RENAME_EXCHANGE");
  assert.equal(
    show(fuseOp(Opcode.FALLOCATE)!.request.struct!, "mode", 3),
    "FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE",
  );
  assert.equal(
    show(fuseOp(Opcode.OPEN)!.reply.struct!, "open_flags", 5),
    "FOPEN_DIRECT_IO|FOPEN_NONSEEKABLE",
  );
  assert.equal(show(fuseOp(Opcode.IOCTL)!.request.struct!, "flags", 0x14), "IOCTL_RETRY|IOCTL_DIR");
  assert.equal(show(fuseOp(Opcode.FSYNC)!.request.struct!, "fsync_flags", 1), "FSYNC_FDATASYNC");
  assert.equal(
    show(fuseOp(Opcode.WRITE)!.request.struct!, "write_flags", 6),
    "WRITE_LOCKOWNER|WRITE_KILL_SUIDGID",
  );
  assert.equal(show(fuseOp(Opcode.GETATTR)!.request.struct!, "getattr_flags", 1), "GETATTR_FH");
  assert.equal(show(fuseOp(Opcode.READ)!.request.struct!, "read_flags", 2), "READ_LOCKOWNER");
});
