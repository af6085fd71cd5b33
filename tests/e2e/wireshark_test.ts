/**
 * The Wireshark dissector contrib/wireshark/vfstrace.lua under Debian's
 * tshark, checked record for record against `vfstrace show --json`: on the
 * golden capture, on a fresh capture made by `vfstrace trace` with a real
 * guest (default snap length, so cut bodies; --notifications, so NOTIFY
 * records), on the golden capture rewritten with a tiny snap length, and on
 * captures cut by editcap (no Lua error anywhere).
 *
 * tshark is required: without it these tests fail with an install hint,
 * unless VFSTRACE_SKIP_TSHARK=1 (CI installs tshark). TSHARK and EDITCAP
 * override the programs.
 */
import assert from "node:assert/strict";
import { CaptureReader, CaptureWriter } from "../../capture/mod.ts";
import { NOTIFY_DIRECTION, RecordFlag, RecordKind } from "../../decode/pcapng.ts";
import { C_VIRTIOFSD } from "../../vm/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const LUA = `${ROOT}contrib/wireshark/vfstrace.lua`;
const VFSTRACE = `${ROOT}vfstrace`;
const FIXTURE = `${ROOT}tests/fixtures/guest_session.pcapng`;
const TSHARK = Deno.env.get("TSHARK") ?? "tshark";
const EDITCAP = Deno.env.get("EDITCAP") ?? "editcap";
const SKIP = Deno.env.get("VFSTRACE_SKIP_TSHARK") === "1";
const dec = new TextDecoder();

async function runs(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

const HAVE_TSHARK = await runs(TSHARK);

/** A test that needs tshark: fails with an install hint without it, unless skipping is asked for. */
function tsharkTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: !HAVE_TSHARK && SKIP,
    fn: async () => {
      if (!HAVE_TSHARK) {
        assert.fail(
          `'${TSHARK}' was not found: install Wireshark's tshark (Debian/Ubuntu: ` +
            "'apt-get install tshark'), or set VFSTRACE_SKIP_TSHARK=1 to skip the dissector tests",
        );
      }
      await fn();
    },
  });
}

// ---------------------------------------------------------------------------
// Running tshark and show

/** Lines of tshark's stderr that are not about the dissector. */
const TSHARK_NOISE = /^Running as user "root" and group "root"\. This could be dangerous\.$/;

/** Runs tshark with the dissector on `file`; asserts exit 0 and a stderr free of (Lua) errors. */
async function tshark(file: string, args: string[], twoPass = false): Promise<string> {
  const out = await new Deno.Command(TSHARK, {
    args: ["-n", ...(twoPass ? ["-2"] : []), "-X", `lua_script:${LUA}`, "-r", file, ...args],
    env: { LC_ALL: "C.UTF-8" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = dec.decode(out.stderr);
  assert.equal(out.code, 0, `tshark ${args.join(" ")}: exit ${out.code}\n${stderr}`);
  const complaints = stderr.split("\n").filter((l) => l.trim() !== "" && !TSHARK_NOISE.test(l));
  assert.deepEqual(complaints, [], `tshark's stderr on ${file}`);
  return dec.decode(out.stdout);
}

/** `-T fields` rows of the frames matching `filter`, one array of strings per frame. */
async function fields(
  file: string,
  filter: string,
  names: readonly string[],
  twoPass = false,
): Promise<string[][]> {
  const text = await tshark(
    file,
    ["-Y", filter, "-T", "fields", "-E", "separator=/t", ...names.flatMap((n) => ["-e", n])],
    twoPass,
  );
  return text.split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
}

/** No Lua error, no internal error of the dissector, in a full verbose dissection of `file`. */
async function assertNoLuaErrors(file: string): Promise<void> {
  const bad = await fields(file, "_ws.lua.error || vfstrace.expert.internal", [
    "frame.number",
    "_ws.lua.error",
    "_ws.expert.message",
  ]);
  assert.deepEqual(bad, [], `Lua errors in ${file}`);
  await tshark(file, ["-V"]); // every field built; stderr must stay clean
}

// deno-lint-ignore no-explicit-any
type Obj = any;

async function showJson(file: string, ...args: string[]): Promise<Obj[]> {
  const out = await new Deno.Command(VFSTRACE, {
    args: ["show", file, "--json", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  return dec.decode(out.stdout).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/** A tshark number field: decimal (maybe negative) or 0x hex. */
function big(s: string | undefined): bigint | undefined {
  return s === undefined || s === "" ? undefined : BigInt(s);
}

function bool(s: string | undefined): boolean {
  return s === "1" || s === "True";
}

// ---------------------------------------------------------------------------
// The comparisons

interface FuseRow {
  seq: number;
  reply: boolean;
  opcode: bigint | undefined;
  unique: bigint | undefined;
  nodeid: bigint | undefined;
  error: bigint | undefined;
}

/** Every FUSE request and reply the JSON shows, in seq (file) order. */
function fuseFromJson(ops: Obj[]): FuseRow[] {
  const rows: FuseRow[] = [];
  for (const o of ops) {
    assert.equal(o.type, "fuse");
    rows.push({
      seq: o.request.seq,
      reply: false,
      opcode: BigInt(o.opcode),
      unique: BigInt(o.unique),
      nodeid: BigInt(o.nodeid),
      error: undefined,
    });
    if (o.reply === undefined) continue;
    // An empty reply (FORGET) has no fuse_out_header: no error.
    const err = o.reply.length === 0
      ? undefined
      : BigInt(o.reply.header?.error ?? (o.errno === undefined ? 0 : -o.errno));
    rows.push({
      seq: o.reply.seq,
      reply: true,
      opcode: BigInt(o.opcode),
      unique: BigInt(o.unique),
      nodeid: undefined,
      error: err,
    });
  }
  return rows.sort((a, b) => a.seq - b.seq);
}

const FUSE_FIELDS = [
  "vfstrace.seq",
  "fuse.reply",
  "fuse.opcode",
  "fuse.unique",
  "fuse.nodeid",
  "fuse.error",
];

function fuseFromTshark(rows: string[][]): FuseRow[] {
  return rows.map(([seq, reply, opcode, unique, nodeid, error]) => ({
    seq: Number(seq),
    reply: bool(reply),
    opcode: big(opcode),
    unique: big(unique),
    nodeid: big(nodeid),
    error: big(error),
  }));
}

/**
 * tshark's `-Y fuse` agrees with show --json on every FUSE request (opcode,
 * unique, nodeid) and reply (opcode of its request, unique, error), record
 * for record in file order, single-pass and two-pass. Returns the counts.
 */
async function assertFuseAgrees(file: string): Promise<{ requests: number; replies: number }> {
  const ops = await showJson(file, "--order", "request");
  const want = fuseFromJson(ops);
  for (const twoPass of [false, true]) {
    const got = fuseFromTshark(await fields(file, "fuse", FUSE_FIELDS, twoPass));
    assert.equal(got.length, want.length, `FUSE records (${twoPass ? "-2" : "one pass"})`);
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i], want[i], `FUSE record #${i} (seq ${want[i]!.seq})`);
    }
  }
  const requests = want.filter((r) => !r.reply).length;
  return { requests, replies: want.length - requests };
}

function addExpected(
  out: Map<number, Map<string, bigint | string>>,
  seq: number,
  abbr: string,
  v: unknown,
): void {
  let m = out.get(seq);
  if (m === undefined) out.set(seq, m = new Map());
  m.set(abbr, typeof v === "string" && !/^-?\d+$/.test(v) ? v : BigInt(v as number | string));
}

/**
 * Every argument field show --json gives (request and reply structs, names)
 * has the same value in tshark's fuse.<op>.<field>, fuse.<op>.reply.<field>
 * and fuse.<label>; and tshark shows none of those fields where JSON has
 * none. A field JSON gives as 0 that tshark lacks is one the negotiated
 * minor leaves out of the struct (show decodes absent fields as 0).
 */
async function assertArgumentsAgree(file: string): Promise<number> {
  const ops = await showJson(file, "--order", "request");
  const want = new Map<number, Map<string, bigint | string>>();
  const dataBytes = new Map<number, number>();
  for (const o of ops) {
    const op = String(o.op).toLowerCase();
    const req = o.request;
    for (const [k, v] of Object.entries(req.arg ?? {})) {
      addExpected(want, req.seq, `fuse.${op}.${k}`, v);
    }
    for (const [k, v] of Object.entries(req.names ?? {})) {
      addExpected(want, req.seq, `fuse.${k}`, v);
    }
    const rep = o.reply;
    if (rep === undefined) continue;
    for (const [k, v] of Object.entries(rep.arg ?? {})) {
      addExpected(want, rep.seq, `fuse.${op}.reply.${k}`, v);
    }
    // JSON counts payloads; tshark shows a text payload (READLINK's target) as text.
    if (rep.data_bytes !== undefined) dataBytes.set(rep.seq, rep.data_bytes);
  }
  const abbrs = [...new Set([...want.values()].flatMap((m) => [...m.keys()]))].sort();
  assert.ok(abbrs.length > 20, `only ${abbrs.length} argument fields`);
  const rows = await fields(file, "fuse", ["vfstrace.seq", ...abbrs]);
  let compared = 0;
  for (const [seqText, ...values] of rows) {
    const seq = Number(seqText);
    const w = want.get(seq) ?? new Map();
    abbrs.forEach((abbr, i) => {
      const got = values[i] ?? "";
      const exp = w.get(abbr);
      const where = `seq ${seq} ${abbr}`;
      if (exp === undefined && got !== "" && /^fuse\.[a-z]+$/.test(abbr) && dataBytes.has(seq)) {
        assert.equal(got.length, dataBytes.get(seq), `${where}: the text payload`);
      } else if (exp === undefined) {
        assert.equal(got, "", `${where}: tshark shows a field show --json does not have`);
      } else if (typeof exp === "string") {
        assert.equal(got, exp, where);
        compared++;
      } else if (got === "") {
        assert.equal(exp, 0n, `${where}: missing in tshark`);
      } else {
        assert.equal(BigInt(got), exp, where);
        compared++;
      }
    });
  }
  return compared;
}

/** vhost-user: name and number of every message, reply flag, and the main payload values. */
async function assertVhostUserAgrees(file: string): Promise<number> {
  const events = (await showJson(file, "--control")).filter((e) => e.type === "vhost-user");
  const rows = await fields(file, "vhost_user", [
    "vfstrace.seq",
    "vhost_user.request",
    "vhost_user.name",
    "vhost_user.flags.reply",
    "vhost_user.u64",
    "vhost_user.vring_state.index",
    "vhost_user.vring_state.num",
    "vhost_user.memory_table.nregions",
    "vhost_user.region.guest_phys_addr",
    "vhost_user.vring_addr.desc_user_addr",
  ]);
  assert.equal(rows.length, events.length, "vhost-user records");
  events.forEach((e, i) => {
    const [seq, request, name, reply, u64, index, n, nregions, gpas, desc] = rows[i]!;
    const at = `vhost-user seq ${e.seq}`;
    assert.equal(Number(seq), e.seq, at);
    assert.ok(e.name !== undefined, `${at}: show decoded it`);
    assert.equal(name, e.name, at);
    assert.equal(Number(request), e.request, at);
    assert.equal(bool(reply), e.reply, at);
    const p = e.payload;
    if (p.kind === "u64" || p.kind === "vring_index") assert.equal(big(u64), BigInt(p.value), at);
    else assert.equal(u64, "", at);
    if (p.kind === "vring_state") {
      assert.equal(Number(index), p.index, at);
      assert.equal(Number(n), p.num, at);
    }
    if (p.kind === "memory_table") {
      assert.equal(Number(nregions), p.regions.length, at);
      assert.deepEqual(
        gpas!.split(",").filter((s) => s !== "").map((s) => BigInt(s)),
        p.regions.map((r: Obj) => BigInt(r.guest_phys_addr)),
        at,
      );
    }
    if (p.kind === "vring_addr") assert.equal(BigInt(desc!), BigInt(p.desc_user_addr), at);
  });
  return events.length;
}

/** NOTE types, and NOTIFY direction, queue and counter. */
async function assertNotesAndNotifyAgree(file: string): Promise<{ notes: number; notify: number }> {
  const all = await showJson(file, "--all");
  const notes = all.filter((e) => e.type === "note");
  const noteRows = await fields(file, "vfstrace.kind == 4", ["vfstrace.seq", "vfstrace.note.type"]);
  assert.deepEqual(noteRows, notes.map((e) => [String(e.seq), e.note.type]));
  const notify = all.filter((e) => e.type === "notify");
  const notifyRows = await fields(file, "vfstrace.kind == 5", [
    "vfstrace.seq",
    "vfstrace.queue",
    "vfstrace.direction",
    "vfstrace.aux.counter",
  ]);
  assert.deepEqual(
    notifyRows,
    notify.map((e) => [
      String(e.seq),
      String(e.queue),
      String(NOTIFY_DIRECTION.valueOf(e.direction)),
      String(e.value),
    ]),
  );
  return { notes: notes.length, notify: notify.length };
}

// ---------------------------------------------------------------------------
// The golden capture

tsharkTest("tshark + vfstrace.lua agree with show --json on the golden capture", async () => {
  const counts = await assertFuseAgrees(FIXTURE);
  let requests = 0;
  for await (const r of await CaptureReader.open(FIXTURE)) {
    if (r.kind === RecordKind.FUSE_REQUEST) requests++;
  }
  assert.equal(counts.requests, requests);
  assert.equal(counts.replies, requests, "every request answered (FORGETs by an empty reply)");
  assert.ok((await assertArgumentsAgree(FIXTURE)) > 500);
  assert.ok((await assertVhostUserAgrees(FIXTURE)) >= 30);
  const n = await assertNotesAndNotifyAgree(FIXTURE);
  assert.ok(n.notes >= 3);
  await assertNoLuaErrors(FIXTURE);
});

tsharkTest("vfstrace.lua: filters, chains and pairing on the golden capture", async () => {
  // fuse.opcode == 1 && fuse.error != 0: the failed LOOKUPs, each the reply to a LOOKUP.
  const failed = await fields(FIXTURE, "fuse.opcode == 1 && fuse.error != 0", [
    "fuse.error",
    "fuse.request_in",
  ]);
  const ops = await showJson(FIXTURE, "--op", "LOOKUP", "--errors");
  assert.equal(failed.length, ops.length);
  assert.ok(failed.every(([e, req]) => e === "-2" && Number(req) > 0));
  // A name filter.
  const nope = await fields(FIXTURE, 'fuse.opcode == 1 && fuse.name == "nope"', ["fuse.unique"]);
  assert.equal(nope.length, 1);
  // The 1 MiB WRITE: first packet CONTINUED, its continuations point back to it.
  const write = await fields(FIXTURE, "fuse.write.size == 1048576", [
    "frame.number",
    "vfstrace.seq",
    "vfstrace.flags.continued",
  ]);
  assert.equal(write.length, 1);
  const [frame, seq, continued] = write[0]!;
  assert.equal(continued, "1");
  const cont = await fields(FIXTURE, "vfstrace.kind == 6", [
    "vfstrace.aux.first_seq",
    "vfstrace.chain_start",
    "fuse.opcode",
  ]);
  assert.equal(cont.length, 4);
  assert.ok(cont.every(([first, start, op]) => first === seq && start === frame && op === ""));
  // Two passes: a request knows its reply.
  const reqs = await fields(
    FIXTURE,
    "fuse.reply == 0 && fuse.opcode == 26",
    ["fuse.reply_in"],
    true,
  );
  assert.equal(reqs.length, 1);
  assert.ok(Number(reqs[0]![0]) > 0);
  // vhost-user by number, and the negotiated feature bits as fields.
  const memTable = await fields(FIXTURE, "vhost_user.request == 5", ["vhost_user.name"]);
  assert.ok(memTable.length >= 1);
  assert.ok(memTable.every(([n]) => n === "SET_MEM_TABLE"));
  const v1 = await fields(FIXTURE, "vhost_user.virtio_fs_features.virtio_f_version_1 == 1", [
    "vhost_user.name",
  ]);
  assert.ok(v1.some(([n]) => n === "GET_FEATURES") && v1.some(([n]) => n === "SET_FEATURES"));
});

// ---------------------------------------------------------------------------
// Cut captures

async function rewrite(from: string, to: string, snaplen: number): Promise<number> {
  const w = CaptureWriter.create(to, { snaplen });
  let cut = 0;
  for await (const r of await CaptureReader.open(from)) {
    w.append({
      kind: r.kind,
      body: r.body,
      flags: r.flags & ~(RecordFlag.TRUNCATED | RecordFlag.CONTINUED),
      queue: r.queue,
      fdCount: r.fdCount,
      direction: r.direction,
      head: r.head,
      residenceNs: r.residenceNs,
      aux: r.aux,
      timestampNs: r.timestampNs,
    });
    const limit = r.kind === RecordKind.FUSE_REQUEST
      ? Math.max(snaplen, 40)
      : Math.max(snaplen, 16);
    if (
      (r.kind === RecordKind.FUSE_REQUEST || r.kind === RecordKind.FUSE_REPLY) &&
      r.body.byteLength > limit
    ) cut++;
  }
  await w.close();
  return cut;
}

tsharkTest(
  "vfstrace.lua: bodies cut by a snap length (TRUNCATED) decode as far as they go",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-wireshark-" });
    try {
      for (const snaplen of [48, 20]) {
        const file = `${dir}/snap${snaplen}.pcapng`;
        const cut = await rewrite(FIXTURE, file, snaplen);
        assert.ok(cut > 100, `${cut} bodies cut`);
        const truncated = await fields(file, "vfstrace.flags.truncated == 1", ["vfstrace.seq"]);
        assert.equal(truncated.length, cut);
        await assertFuseAgrees(file);
        await assertNoLuaErrors(file);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

tsharkTest("vfstrace.lua: packets cut anywhere by editcap raise no Lua error", async () => {
  assert.ok(await runs(EDITCAP), `'${EDITCAP}' not found (it comes with tshark)`);
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-wireshark-" });
  try {
    for (const s of [1, 3, 20, 32, 40, 44, 48, 52, 60, 72, 90, 120]) {
      const file = `${dir}/s${s}.pcapng`;
      const out = await new Deno.Command(EDITCAP, { args: ["-s", String(s), FIXTURE, file] })
        .output();
      assert.ok(out.success, dec.decode(out.stderr));
      await assertNoLuaErrors(file);
      // With the whole fuse_in_header there, every request still shows its opcode and unique.
      if (s >= 32 + 40) {
        const reqs = await fields(file, "fuse && fuse.reply == 0", ["fuse.opcode", "fuse.unique"]);
        assert.equal(reqs.length, 119);
        assert.ok(reqs.every(([op, u]) => op !== "" && u !== ""));
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

tsharkTest("vfstrace.lua: corrupted records raise no Lua error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-wireshark-" });
  try {
    for (let seed = 1; seed <= 6; seed++) {
      // A small deterministic generator: the same files on every run.
      let x = seed;
      const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      const file = `${dir}/corrupt${seed}.pcapng`;
      const w = CaptureWriter.create(file);
      for await (const r of await CaptureReader.open(FIXTURE)) {
        let body = r.body.slice(0, 4096);
        const what = rnd();
        if (what < 0.5 && body.byteLength > 0) {
          for (let i = 0; i < 1 + Math.floor(rnd() * 4); i++) {
            // Mostly in the headers and argument structs.
            const span = rnd() < 0.6 ? Math.min(body.byteLength, 64) : body.byteLength;
            body[Math.floor(rnd() * span)] = rnd() < 0.3 ? 0xff : Math.floor(rnd() * 256);
          }
        } else if (what < 0.7) {
          body = body.slice(0, Math.floor(rnd() * body.byteLength));
        }
        w.append({
          kind: rnd() < 0.05 ? Math.floor(rnd() * 8) : r.kind,
          body,
          flags: r.flags & ~(RecordFlag.TRUNCATED | RecordFlag.CONTINUED),
          queue: r.queue,
          fdCount: r.fdCount,
          direction: rnd() < 0.05 ? Math.floor(rnd() * 6) : r.direction,
          head: r.head,
          aux: r.aux,
          timestampNs: r.timestampNs,
        });
      }
      await w.close();
      await assertNoLuaErrors(file);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// A fresh capture by the trace CLI

const WORKLOAD = [
  "t_work() {",
  "  mkdir d && echo hello > d/a && ln -s a d/l && ln d/a d/h && ls -la d >/dev/null &&",
  "  cat d/a d/l >/dev/null && mv d/a d/b && dd if=/dev/zero of=d/z bs=4k count=3 2>/dev/null &&",
  "  rm d/b d/l d/h d/z && rmdir d && ! cat nope 2>/dev/null",
  "}",
  "check work t_work",
].join("\n");

/** `vfstrace trace` (default snap length, --notifications) in front of virtiofsd, with a real guest. */
async function freshCapture(dir: string): Promise<string> {
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  const socket = `${dir}/vfs.sock`;
  const capture = `${dir}/run.pcapng`;
  const script = `${dir}/work.sh`;
  await Deno.writeTextFile(script, WORKLOAD);
  const trace = new Deno.Command(VFSTRACE, {
    args: [
      "trace",
      "--socket-path",
      socket,
      "--notifications",
      "-q",
      "-w",
      capture,
      "--",
      C_VIRTIOFSD,
      "--socket-path={socket}",
      "-o",
      `source=${share}`,
      "-o",
      "xattr",
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      if ((await Deno.stat(socket)).isSocket) break;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const g = await new Deno.Command(VFSTRACE, {
    args: ["guest", "--socket", socket, "--script", script],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const t = await trace.output();
  assert.equal(g.code, 0, dec.decode(g.stdout) + dec.decode(g.stderr));
  assert.equal(t.code, 0, dec.decode(t.stderr));
  return capture;
}

tsharkTest("tshark + vfstrace.lua agree with show --json on a fresh trace capture", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-wireshark-" });
  try {
    const file = await freshCapture(dir);
    let truncated = 0;
    let notify = 0;
    for await (const r of await CaptureReader.open(file)) {
      if ((r.flags & RecordFlag.TRUNCATED) !== 0) truncated++;
      if (r.kind === RecordKind.NOTIFY) notify++;
    }
    assert.ok(truncated >= 1, "the default snap length cut some bodies");
    assert.ok(notify > 10, "--notifications recorded kicks and calls");
    const counts = await assertFuseAgrees(file);
    assert.ok(counts.requests > 30);
    assert.ok((await assertArgumentsAgree(file)) > 200);
    assert.ok((await assertVhostUserAgrees(file)) >= 30);
    const n = await assertNotesAndNotifyAgree(file);
    assert.equal(n.notify, notify);
    const cut = await fields(file, "vfstrace.expert.snaplen", ["vfstrace.seq"]);
    assert.equal(cut.length, truncated);
    await assertNoLuaErrors(file);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
