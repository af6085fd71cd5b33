/**
 * Golden facts of a real session: tests/fixtures/guest_session.pcapng is a
 * Linux 6.1 guest (QEMU, vhost-user-fs) running tests/fixtures/session.sh
 * through `vfstrace trace` in front of the C virtiofsd 7.2 (see
 * tests/fixtures/README.md). Every vhost-user message and FUSE record must
 * decode, and the decoded fields must be what that guest and daemon say.
 *
 * Facts that change from run to run (node ids, inode numbers, uniques,
 * addresses, record order within a listing) are cross-checked against each
 * other rather than pinned, so a re-recording with the same guest and daemon
 * passes unchanged.
 */
import assert from "node:assert/strict";
import {
  CaptureReader,
  type CaptureRecord,
  decodeNote,
  type Note,
  RecordFlag,
  RecordKind,
  VhostUserDirection,
} from "../capture/mod.ts";
import {
  decodeReply,
  decodeRequest,
  formatMode,
  formatOutError,
  type FuseReply,
  type FuseRequest,
  FuseSession,
  InitFlags,
  InitFlags2,
  InitFlagsLow,
  initFlagsOf,
  Opcode,
} from "../decode/fuse.ts";
import {
  decodeMessage,
  type MemoryRegion,
  type VhostUserMessage,
  VIRTIO_FEATURES,
} from "../decode/vhost_user.ts";

const FIXTURE = decodeURIComponent(
  new URL("./fixtures/guest_session.pcapng", import.meta.url).pathname,
);

/** A FUSE request with the reply that answered it. */
interface Exchange {
  readonly queue: number;
  readonly requestRecord: CaptureRecord;
  readonly request: FuseRequest;
  replyRecord: CaptureRecord | undefined;
  /** Undefined for FORGET/BATCH_FORGET: the used entry carries no bytes. */
  reply: FuseReply | undefined;
}

interface Vhost {
  readonly record: CaptureRecord;
  readonly message: VhostUserMessage;
}

interface Session {
  readonly records: readonly CaptureRecord[];
  readonly vhost: readonly Vhost[];
  readonly notes: readonly Note[];
  readonly exchanges: readonly Exchange[];
  readonly fuse: FuseSession;
  readonly requestRecords: number;
  readonly replyRecords: number;
}

const NO_REPLY = new Set<number>([Opcode.FORGET, Opcode.BATCH_FORGET]);

function uniqueOf(body: Uint8Array): bigint {
  return new DataView(body.buffer, body.byteOffset, body.byteLength).getBigUint64(8, true);
}

/**
 * Reads the capture once, decoding every record in order with one FUSE
 * session; replies pair with their request by (queue, unique). A reply with
 * no bytes is the used entry of a FORGET (no reply on the wire): it pairs
 * with the oldest unanswered FORGET on its queue.
 */
async function load(): Promise<Session> {
  const reader = await CaptureReader.open(FIXTURE);
  const records: CaptureRecord[] = [];
  const vhost: Vhost[] = [];
  const notes: Note[] = [];
  const exchanges: Exchange[] = [];
  const pending = new Map<string, Exchange>();
  const forgets: Exchange[] = [];
  const fuse = new FuseSession();
  let requestRecords = 0;
  let replyRecords = 0;
  for await (const rec of reader) {
    records.push(rec);
    const what = `record seq ${rec.seq} at offset ${rec.offset}`;
    const cut = (rec.flags & RecordFlag.TRUNCATED) !== 0;
    assert.equal(cut, rec.body.byteLength < rec.originalLength, `${what}: TRUNCATED flag`);
    assert.equal(rec.flags & RecordFlag.MALFORMED, 0, `${what}: MALFORMED`);
    // Whole records decode as before; a record the capture cut decodes as far as it goes.
    const options = { truncatedFrom: rec.originalLength };
    switch (rec.kind) {
      case RecordKind.VHOST_USER: {
        const channel = rec.direction === VhostUserDirection.FRONTEND_TO_BACKEND ||
            rec.direction === VhostUserDirection.BACKEND_TO_FRONTEND
          ? "frontend"
          : "backend";
        vhost.push({ record: rec, message: decodeMessage(rec.body, rec.fdCount, { channel }) });
        break;
      }
      case RecordKind.NOTE:
        notes.push(decodeNote(rec.body));
        break;
      case RecordKind.FUSE_REQUEST: {
        requestRecords++;
        const request = decodeRequest(rec.body, fuse, options);
        const ex: Exchange = {
          queue: rec.queue,
          requestRecord: rec,
          request,
          replyRecord: undefined,
          reply: undefined,
        };
        exchanges.push(ex);
        if (NO_REPLY.has(request.header.opcode)) forgets.push(ex);
        else pending.set(`${rec.queue}:${request.header.unique}`, ex);
        break;
      }
      case RecordKind.FUSE_REPLY: {
        replyRecords++;
        assert.notEqual(rec.flags & RecordFlag.PAIRED, 0, `${what}: PAIRED`);
        if (rec.body.byteLength === 0) {
          const i = forgets.findIndex((f) => f.queue === rec.queue);
          assert.ok(i >= 0, `${what}: an empty reply with no FORGET outstanding`);
          const ex = forgets.splice(i, 1)[0];
          if (ex !== undefined) ex.replyRecord = rec;
          break;
        }
        const key = `${rec.queue}:${uniqueOf(rec.body)}`;
        const ex = pending.get(key);
        assert.ok(ex !== undefined, `${what}: reply ${key} has no request`);
        pending.delete(key);
        ex.replyRecord = rec;
        ex.reply = decodeReply(rec.body, ex.request, fuse, options);
        break;
      }
    }
  }
  assert.equal(reader.truncatedAt, undefined, "the capture ends at a block boundary");
  assert.equal(pending.size, 0, `unanswered: ${[...pending.keys()].join(", ")}`);
  assert.equal(forgets.length, 0, "every FORGET has its (empty) used entry");
  return { records, vhost, notes, exchanges, fuse, requestRecords, replyRecords };
}

let loaded: Promise<Session> | undefined;
function session(): Promise<Session> {
  loaded ??= load();
  return loaded;
}

function vhostByName(s: Session, name: string, isReply: boolean): Vhost[] {
  return s.vhost.filter((v) => v.message.name === name && v.message.isReply === isReply);
}

function ops(s: Session, opcode: number): Exchange[] {
  return s.exchanges.filter((e) => e.request.header.opcode === opcode);
}

function lookups(s: Session, name: string): Exchange[] {
  return ops(s, Opcode.LOOKUP).filter((e) => e.request.names[0] === name);
}

function replyOf(e: Exchange): FuseReply {
  assert.ok(e.reply !== undefined, `${e.request.op?.name} ${e.request.header.unique}: no reply`);
  return e.reply;
}

function u64(payload: VhostUserMessage["payload"]): bigint {
  assert.equal(payload.kind, "u64");
  return (payload as { value: bigint }).value;
}

function dataLength(segs: readonly Uint8Array[]): number {
  return segs.reduce((n, s) => n + s.byteLength, 0);
}

function concat(segs: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(dataLength(segs));
  let p = 0;
  for (const s of segs) {
    out.set(s, p);
    p += s.byteLength;
  }
  return out;
}

Deno.test("guest fixture: every record decodes; FUSE requests and replies pair one to one", async () => {
  const s = await session();
  assert.ok(s.vhost.length > 30, `${s.vhost.length} vhost-user messages`);
  for (const v of s.vhost) assert.ok(v.message.known, `${v.message.name} is in the table`);
  assert.ok(s.exchanges.length > 100, `${s.exchanges.length} FUSE requests`);
  assert.equal(s.requestRecords, s.replyRecords, "requests and replies");
  for (const e of s.exchanges) {
    assert.ok(e.replyRecord !== undefined);
    assert.ok(e.request.op !== undefined, `opcode ${e.request.header.opcode} is known`);
    if (NO_REPLY.has(e.request.header.opcode)) {
      // FORGETs travel on the high-priority queue 0 and are answered by an empty used entry.
      assert.equal(e.queue, 0);
      assert.equal(e.replyRecord.body.byteLength, 0);
      assert.equal(e.reply, undefined);
    } else {
      assert.equal(e.queue, 1, "one request queue");
      assert.equal(replyOf(e).opcode, e.request.header.opcode);
      assert.ok(e.replyRecord.timestampNs >= e.requestRecord.timestampNs);
    }
  }
  assert.ok(ops(s, Opcode.FORGET).length > 0, "FORGETs are in the session");
  // The proxy's own count agrees.
  const stop = s.notes.find((n) => n.type === "stop");
  assert.equal(stop?.requests, s.requestRecords);
  assert.equal(stop?.replies, s.replyRecords);
  assert.equal(stop?.malformed, 0);
});

Deno.test("guest fixture: QEMU's SET_MEM_TABLE has 2 regions with one fd each", async () => {
  const s = await session();
  const tables = vhostByName(s, "SET_MEM_TABLE", false);
  assert.equal(tables.length, 1);
  const t = tables[0]!;
  assert.equal(t.record.direction, VhostUserDirection.FRONTEND_TO_BACKEND);
  assert.equal(t.message.payload.kind, "memory_table");
  const regions = (t.message.payload as { regions: readonly MemoryRegion[] }).regions;
  // A 512 MiB memfd guest (pc machine): RAM below the legacy VGA hole
  // [0xa0000, 0xc0000) and the rest above it, both from the one memfd (mmap
  // offset = guest address). The region the proxy adds for its own use is
  // only in what the back-end got, which is not recorded.
  assert.equal(regions.length, 2);
  assert.equal(t.record.fdCount, regions.length, "one fd per region");
  assert.equal(t.message.fds.ok, true);
  assert.deepEqual(
    regions.map((r) => [r.guestPhysAddr, r.memorySize, r.mmapOffset]),
    [[0n, 0xa0000n, 0n], [0xc0000n, 0x1ff40000n, 0xc0000n]],
  );
  const total = regions.reduce((n, r) => n + r.memorySize, 0n);
  assert.equal(total, (512n << 20n) - 0x20000n, "512 MiB less the 128 KiB hole");
  for (const r of regions) assert.notEqual(r.userspaceAddr, 0n, "QEMU's own mapping");
  // REPLY_ACK was negotiated: the back-end acknowledged the table.
  const acks = vhostByName(s, "SET_MEM_TABLE", true);
  assert.equal(acks.length, 1);
  assert.equal(u64(acks[0]!.message.payload), 0n);
});

Deno.test("guest fixture: GET_FEATURES offers LOG_ALL; the proxy masks it and notes it", async () => {
  const s = await session();
  const offers = vhostByName(s, "GET_FEATURES", true);
  assert.ok(offers.length >= 1);
  for (const o of offers) {
    // Recorded as the back-end sent it, before the proxy's mask.
    assert.equal(o.record.direction, VhostUserDirection.BACKEND_TO_FRONTEND);
    assert.equal(u64(o.message.payload), 0x1_7500_0000n);
    assert.deepEqual(VIRTIO_FEATURES.names(u64(o.message.payload)), [
      "VIRTIO_F_NOTIFY_ON_EMPTY",
      "VHOST_F_LOG_ALL",
      "VIRTIO_RING_F_INDIRECT_DESC",
      "VIRTIO_RING_F_EVENT_IDX",
      "VHOST_USER_F_PROTOCOL_FEATURES",
      "VIRTIO_F_VERSION_1",
    ]);
  }
  const masked = s.notes.filter((n) => n.type === "features_masked" && n.what === "virtio");
  assert.equal(masked.length, offers.length, "one note per offer");
  for (const n of masked) assert.equal(n.masked, "VHOST_F_LOG_ALL");
  // QEMU acknowledged what it saw, LOG_ALL not among it.
  const set = vhostByName(s, "SET_FEATURES", false);
  assert.equal(set.length, 1);
  assert.deepEqual(VIRTIO_FEATURES.names(u64(set[0]!.message.payload)), [
    "VIRTIO_RING_F_INDIRECT_DESC",
    "VIRTIO_RING_F_EVENT_IDX",
    "VHOST_USER_F_PROTOCOL_FEATURES",
    "VIRTIO_F_VERSION_1",
  ]);
});

Deno.test("guest fixture: the 6.1 guest's INIT 7.38, virtiofsd's 7.36 reply, a 7.36 session", async () => {
  const s = await session();
  const inits = ops(s, Opcode.INIT);
  assert.equal(inits.length, 1);
  const init = inits[0]!;
  const arg = init.request.arg!;
  assert.equal(init.request.header.len, 104, "40-byte header, 64-byte fuse_init_in");
  assert.equal(arg.major, 7);
  assert.equal(arg.minor, 38);
  assert.equal(arg["max_readahead"], 131072);
  // Everything the 6.1 kernel asks for, by name.
  assert.deepEqual(InitFlagsLow.names(arg.flags as number), [
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
  // 7.38's HAS_EXPIRE_ONLY but not its CREATE_SUPP_GROUP.
  assert.deepEqual(InitFlags2.names(arg.flags2 as number), [
    "SECURITY_CTX",
    "HAS_INODE_DAX",
    "HAS_EXPIRE_ONLY",
  ]);
  assert.equal(InitFlags.names(initFlagsOf(arg)).includes("CREATE_SUPP_GROUP"), false);

  const reply = replyOf(init);
  const out = reply.arg!;
  assert.equal(reply.header.len, 80, "16-byte header, 64-byte fuse_init_out");
  assert.equal(out.major, 7);
  assert.equal(out.minor, 36);
  assert.equal(out["max_readahead"], 131072);
  assert.equal(out["max_write"], 1048576);
  assert.equal(out["max_pages"], 256);
  assert.equal(out["time_gran"], 1);
  assert.equal(out["max_background"], 0);
  assert.equal(out["congestion_threshold"], 0);
  // No INIT_EXT in the answer: flags2 does not count, so no SECURITY_CTX, SETXATTR_EXT.
  assert.deepEqual(InitFlags.names(initFlagsOf(out)), [
    "ASYNC_READ",
    "ATOMIC_O_TRUNC",
    "EXPORT_SUPPORT",
    "BIG_WRITES",
    "AUTO_INVAL_DATA",
    "DO_READDIRPLUS",
    "READDIRPLUS_AUTO",
    "ASYNC_DIO",
    "PARALLEL_DIROPS",
    "MAX_PAGES",
  ]);

  assert.equal(s.fuse.kernelMinor, 38);
  assert.equal(s.fuse.daemonMinor, 36);
  assert.equal(s.fuse.minor, 36, "both sides use the lower minor");
  assert.equal(s.fuse.has("MAX_PAGES"), true);
  assert.equal(s.fuse.has("WRITEBACK_CACHE"), false);
  assert.equal(s.fuse.has("POSIX_LOCKS"), false);
  assert.equal(s.fuse.setxattrExt, false);
  // Below 7.38 total_extlen is padding: nothing after INIT sets it.
  for (const e of s.exchanges) assert.equal(e.request.header["total_extlen"], 0);
});

Deno.test("guest fixture: LOOKUP tree/nope is ENOENT; LOOKUP tree/f2 is a regular file", async () => {
  const s = await session();
  const nope = lookups(s, "nope");
  assert.equal(nope.length, 1, "`cat tree/nope`");
  const miss = replyOf(nope[0]!);
  assert.equal(miss.header.len, 16);
  assert.equal(formatOutError(miss.header.error), "-ENOENT");
  assert.equal(miss.arg, undefined);
  // Asked in the directory the LOOKUP of "tree" just before it returned.
  const before = lookups(s, "tree").filter((e) =>
    e.requestRecord.offset < nope[0]!.requestRecord.offset && replyOf(e).header.error === 0
  );
  assert.equal(nope[0]!.request.header.nodeid, replyOf(before.at(-1)!).arg?.nodeid);

  // `ln tree/f2 tree/hard` looks f2 up, then links that node id.
  const f2 = lookups(s, "f2").filter((e) => replyOf(e).header.error === 0);
  assert.ok(f2.length >= 1);
  const hit = replyOf(f2.at(-1)!).arg!;
  assert.ok((hit.nodeid as bigint) > 1n, "not the root");
  assert.equal(formatMode(hit.mode as number), "-rw-r--r--");
  assert.equal(hit.size, 7n, '"file 2\\n"');
  assert.equal(hit.nlink, 1);
  const links = ops(s, Opcode.LINK);
  assert.equal(links.length, 1);
  assert.equal(links[0]!.request.arg?.oldnodeid, hit.nodeid);
  assert.deepEqual(links[0]!.request.names, ["hard"]);
  const linked = replyOf(links[0]!).arg!;
  assert.equal(linked.nodeid, hit.nodeid);
  assert.equal(linked.nlink, 2);
});

Deno.test("guest fixture: READDIRPLUS of tree lists . .. f1…f5 with their attributes", async () => {
  const s = await session();
  const listings = ops(s, Opcode.READDIRPLUS).filter((e) => replyOf(e).entries.length > 0);
  assert.ok(listings.length >= 1);
  const created = new Map(
    ops(s, Opcode.CREATE).map((e) => [e.request.names[0], replyOf(e).arg?.nodeid]),
  );
  for (const [i, l] of listings.entries()) {
    const r = replyOf(l);
    assert.ok(r.header.len <= 16 + (l.request.arg?.size as number), "within the size asked");
    assert.deepEqual(r.entries.map((e) => e.name).sort(), [
      ".",
      "..",
      "f1",
      "f2",
      "f3",
      "f4",
      "f5",
    ]);
    for (const e of r.entries) {
      assert.ok(e.entry !== undefined);
      assert.equal(e.entry.ino, e.ino);
      if (e.name === "." || e.name === "..") {
        // virtiofsd does not look these up: node id 0, only the type bits of the mode.
        assert.equal(e.type, 4, "DT_DIR");
        assert.equal(formatMode(e.entry.mode as number), "d---------");
        assert.equal(e.entry.nodeid, 0n);
      } else {
        assert.equal(e.type, 8, "DT_REG");
        assert.equal(formatMode(e.entry.mode as number), "-rw-r--r--");
        assert.equal(e.entry.size, 7n);
        // The first listing comes before any FORGET: the node ids CREATE gave.
        if (i === 0) assert.equal(e.entry.nodeid, created.get(e.name), e.name);
      }
    }
  }
});

Deno.test("guest fixture: the 1 MiB WRITE, whole or cut by the capture, and its reply", async () => {
  const s = await session();
  const writes = ops(s, Opcode.WRITE).filter((e) => e.request.arg?.size === 1048576);
  assert.equal(writes.length, 1, "dd bs=1M count=1 is one WRITE");
  const w = writes[0]!;
  const req = w.request;
  assert.equal(req.arg?.offset, 0n);
  assert.equal(req.header.len, 40 + 40 + 1048576);
  assert.equal(w.requestRecord.originalLength, req.header.len);
  const data = dataLength(req.data);
  if (w.requestRecord.body.byteLength < w.requestRecord.originalLength) {
    // A capture without continuation records keeps the first 262120 bytes.
    assert.deepEqual(req.truncated, { have: w.requestRecord.body.byteLength, want: 1048656 });
    assert.equal(data, w.requestRecord.body.byteLength - 80);
  } else {
    assert.equal(req.truncated, undefined);
    assert.equal(data, 1048576);
  }
  const reply = replyOf(w);
  assert.equal(reply.header.error, 0);
  assert.equal(reply.arg?.size, 1048576, "write_out: all of it written");
  assert.equal(reply.truncated, undefined);
});

Deno.test("guest fixture: READ replies carry at most the size asked, and read back the WRITE", async () => {
  const s = await session();
  const reads = ops(s, Opcode.READ);
  assert.ok(reads.length > 0);
  for (const r of reads) {
    const n = dataLength(replyOf(r).data);
    assert.ok(n <= (r.request.arg?.size as number), `READ ${r.request.header.unique}: ${n} bytes`);
  }
  // `md5sum < big` after dropping caches reads the file back from the daemon.
  const write = ops(s, Opcode.WRITE).find((e) => e.request.arg?.size === 1048576)!;
  const written = concat(write.request.data);
  const big = lookups(s, "big").filter((e) => replyOf(e).header.error === 0).at(-1)!;
  const file = new Uint8Array(1048576);
  let total = 0;
  for (const r of reads.filter((e) => e.request.header.nodeid === replyOf(big).arg?.nodeid)) {
    const d = concat(replyOf(r).data);
    file.set(d, Number(r.request.arg?.offset));
    total += d.byteLength;
  }
  assert.equal(total, 1048576, "the whole file was read once");
  assert.ok(written.byteLength > 0);
  assert.deepEqual(file.subarray(0, written.byteLength), written, "as far as the capture kept it");
});
