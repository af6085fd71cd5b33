/**
 * End to end through the CLI: `vfstrace show` on the golden capture of a real
 * Linux 6.1 guest session (tests/fixtures/guest_session.pcapng, workload in
 * tests/fixtures/session.sh), through the ./vfstrace launcher.
 *
 * Node ids, uniques and times differ between recordings (see the fixture's
 * README), so the expectations are cross-checked against the capture itself
 * (read with CaptureReader) and against each other, not pinned. The 1 MiB
 * WRITE may be whole or cut at 262120 bytes, depending on the recording.
 */
import assert from "node:assert/strict";
import {
  CaptureReader,
  type CaptureRecord,
  CaptureWriter,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeSectionHeader,
  RecordKind,
  VhostUserDirection,
} from "../../capture/mod.ts";
import { encodeReply, encodeRequest, FuseSession } from "../../decode/fuse.ts";
import { encodeMessage } from "../../decode/vhost_user.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const VFSTRACE = `${ROOT}vfstrace`;
const FIXTURE = `${ROOT}tests/fixtures/guest_session.pcapng`;
const LINE = /^\d\d:\d\d:\d\d\.\d{6} (q\d+|hiprio) +[A-Z_0-9]+ /;
const LAT = "<[\\d.]+(?:ns|µs|ms|s)>";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function show(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(VFSTRACE, {
    args: ["show", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l !== "");
}

async function fixtureRecords(): Promise<CaptureRecord[]> {
  const out: CaptureRecord[] = [];
  for await (const r of await CaptureReader.open(FIXTURE)) out.push(r);
  return out;
}

function countKind(recs: CaptureRecord[], kind: number): number {
  return recs.filter((r) => r.kind === kind).length;
}

// deno-lint-ignore no-explicit-any
type Obj = any;

async function jsonOps(...args: string[]): Promise<Obj[]> {
  const r = await show(FIXTURE, "--json", ...args);
  assert.equal(r.code, 0, r.stderr);
  return lines(r.stdout).map((l) => JSON.parse(l));
}

Deno.test("show: one line per operation of the real session, with real content", async () => {
  const recs = await fixtureRecords();
  const r = await show(FIXTURE, "--utc");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "every request answered, nothing undecodable");
  const out = lines(r.stdout);
  assert.equal(out.length, countKind(recs, RecordKind.FUSE_REQUEST));
  const bad = out.find((l) => !LINE.test(l));
  assert.equal(bad, undefined);

  // INIT: the guest offers 7.38, virtiofsd 7.2 answers 7.36 with max_write 1 MiB.
  assert.match(
    out[0]!,
    /^\S+ q1 INIT {8}7\.38 \(\d+ flags\) = 7\.36 \(\d+ flags\) max_write=1048576 </,
  );

  // "tree" is created, then found again by a LOOKUP after the caches are dropped.
  const tree = out.map((l) => /LOOKUP {6}nodeid=1 "tree" = nodeid (\d+) drwxr-xr-x /.exec(l)?.[1])
    .filter((n) => n !== undefined);
  assert.ok(tree.length >= 1, "a LOOKUP of tree that succeeds");
  const dir = tree[tree.length - 1];
  // `cat tree/nope`: the ENOENT LOOKUP, in that directory.
  const nope = out.filter((l) => l.includes('"nope"'));
  assert.equal(nope.length, 1);
  assert.match(nope[0]!, new RegExp(` q1 LOOKUP {6}nodeid=${dir} "nope" = -ENOENT ${LAT}$`));

  // `ls -la tree`: READDIRPLUS lists . .. f1..f5 = 7 entries, then 0 at the end.
  assert.ok(
    out.some((l) => / q1 READDIRPLUS nodeid=\d+ fh=\d+ off=0 size=\d+ = 7 entries </.test(l)),
  );

  // The 1 MiB WRITE goes to the node CREATE made for "big".
  const big = out.map((l) =>
    /CREATE {6}nodeid=1 "big" 0644 O_WRONLY\|O_CREAT\|O_TRUNC\S* = nodeid (\d+) fh=(\d+)/.exec(l)
  )
    .find((m) => m !== null);
  assert.ok(big, "CREATE of big");
  assert.ok(
    out.some((l) =>
      new RegExp(` q1 WRITE {7}nodeid=${big[1]} fh=${big[2]} off=0 size=1048576 = 1048576 ${LAT}$`)
        .test(l)
    ),
  );
  // FORGETs travel on hiprio and get no result.
  assert.ok(
    out.some((l) => new RegExp(` hiprio FORGET  nodeid=\\d+ nlookup=\\d+ ${LAT}$`).test(l)),
  );
  assert.ok(
    out.some((l) => / q1 SYMLINK {5}nodeid=\d+ "link" → "f1" = nodeid \d+ lrwxrwxrwx /.test(l)),
  );
  assert.ok(out.some((l) => / q1 RENAME {6}nodeid=(\d+) "f3" → \1\/"f3b" = 0 /.test(l)));
  assert.ok(out.some((l) => / q1 RMDIR {7}nodeid=1 "tree" = -ENOTEMPTY /.test(l)));
});

Deno.test("show --json: one object per operation with the decoded fields", async () => {
  const recs = await fixtureRecords();
  const objs = await jsonOps();
  assert.equal(objs.length, countKind(recs, RecordKind.FUSE_REQUEST));
  assert.ok(objs.every((o) => o.type === "fuse" && o.status === "ok" || o.status === "error"));

  const nope = objs.filter((o) => o.request?.names?.name === "nope");
  assert.equal(nope.length, 1);
  const [n] = nope;
  assert.equal(n.op, "LOOKUP");
  assert.equal(n.status, "error");
  assert.equal(n.error, "ENOENT");
  assert.equal(n.errno, 2);
  assert.equal(n.reply.header.error, -2);
  assert.equal(n.reply.header.unique, n.unique);
  assert.equal(typeof n.timestamp_ns, "string");
  assert.equal(Date.parse(n.time), Number(BigInt(n.timestamp_ns) / 1_000_000n));
  const req = recs.find((r) => r.seq === n.request.seq);
  assert.equal(req?.timestampNs.toString(), n.timestamp_ns, "the time is the request's");

  const writes = objs.filter((o) => o.op === "WRITE" && o.request.arg.size === 1048576);
  assert.equal(writes.length, 1);
  const [w] = writes;
  assert.equal(w.reply.arg.size, 1048576);
  if (w.request.truncated === undefined) assert.equal(w.request.data_bytes, 1048576);
  else assert.deepEqual(w.request.truncated, { have: 262120, want: 1048656 });

  const [init] = objs;
  assert.equal(init.op, "INIT");
  assert.equal(init.request.arg.minor, 38);
  assert.equal(init.reply.arg.minor, 36);
  assert.equal(init.reply.arg.max_write, 1048576);

  const listing = objs.find((o) => o.op === "READDIRPLUS" && o.reply.entries?.length === 7);
  assert.deepEqual(listing.reply.entries.map((e: Obj) => e.name).sort(), [
    ".",
    "..",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
  ]);
});

/** Keys in `o`, in order, must be a subsequence of `allowed` and include `required`. */
function assertKeys(o: Obj, allowed: string[], required: string[], what: string): void {
  const keys = Object.keys(o);
  let i = 0;
  for (const k of keys) {
    while (i < allowed.length && allowed[i] !== k) i++;
    assert.ok(i < allowed.length, `${what}: key ${k} unexpected or out of order in ${keys}`);
  }
  for (const k of required) assert.ok(k in o, `${what}: no ${k}`);
}

const isInt = (x: unknown) => Number.isSafeInteger(x);
/** A 64-bit value: a number when exact, else a decimal string. */
const isU64 = (x: unknown) =>
  (isInt(x) && (x as number) >= 0) ||
  (typeof x === "string" && /^\d+$/.test(x) && BigInt(x) > 2n ** 53n - 1n);

Deno.test("show --json: every line of the session follows the documented schema", async () => {
  const objs = await jsonOps("--all");
  const side = [
    "seq",
    "offset",
    "length",
    "original_length",
    "flags",
    "head",
    "residence_ns",
    "header",
    "notify",
    "arg",
    "names",
    "data_bytes",
    "items",
    "entries",
    "extensions",
    "truncated",
    "problem",
  ];
  let ops = 0;
  for (const o of objs) {
    const what = JSON.stringify(o).slice(0, 200);
    assert.equal(typeof o.time, "string", what);
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, what);
    assert.match(o.timestamp_ns, /^\d+$/, what);
    assert.equal(
      Date.parse(o.time),
      Number(BigInt(o.timestamp_ns) / 1_000_000n),
      `${what}: time and timestamp_ns agree`,
    );
    if (o.type !== "fuse") {
      assert.ok(["vhost-user", "note", "notify", "gap", "record"].includes(o.type), what);
      continue;
    }
    ops++;
    assertKeys(
      o,
      [
        "type",
        "time",
        "timestamp_ns",
        "queue",
        "unique",
        "op",
        "opcode",
        "nodeid",
        "status",
        "errno",
        "error",
        "latency_ns",
        "problem",
        "request",
        "reply",
      ],
      ["type", "time", "timestamp_ns", "queue", "unique", "op", "opcode", "nodeid", "status"],
      what,
    );
    assert.ok(isInt(o.queue) && isU64(o.unique) && isU64(o.nodeid) && isInt(o.opcode), what);
    assert.equal(typeof o.op, "string", what);
    assert.ok(["ok", "error", "unanswered", "undecodable"].includes(o.status), what);
    assert.equal("errno" in o, o.status === "error", what);
    assert.equal("error" in o, "errno" in o, what);
    if ("errno" in o) assert.ok(isInt(o.errno) && /^E[A-Z0-9]+$/.test(o.error), what);
    if ("latency_ns" in o) assert.ok(isInt(o.latency_ns) && o.latency_ns >= 0, what);
    for (const name of ["request", "reply"] as const) {
      const r = o[name];
      if (r === undefined) continue;
      assertKeys(r, side, ["seq", "length", "original_length", "flags"], `${what} ${name}`);
      for (const k of ["seq", "offset", "length", "original_length", "flags", "head"]) {
        if (k in r) assert.ok(isInt(r[k]), `${what} ${name}.${k}`);
      }
      assert.ok(r.length <= r.original_length, what);
      if (r.header !== undefined) {
        for (const v of Object.values(r.header)) assert.ok(isInt(v) || isU64(v), what);
      }
      for (const struct of [r.arg, ...(r.items ?? []), ...(r.entries ?? [])]) {
        if (struct === undefined) continue;
        for (const [k, v] of Object.entries(struct)) {
          if (k === "name") assert.equal(typeof v, "string", what);
          else if (k === "entry") assert.equal(typeof v, "object", what);
          // Numbers, exact 64-bit strings, or hex strings of byte arrays.
          else {assert.ok(
              isInt(v) || isU64(v) || (typeof v === "string" && /^[0-9a-f]*$/.test(v)),
              `${what} ${k}`,
            );}
        }
      }
    }
    // The operation's own fields repeat its request's header.
    if (o.request?.header !== undefined) {
      assert.equal(o.request.header.opcode, o.opcode, what);
      assert.equal(o.request.header.unique, o.unique, what);
      assert.equal(o.request.header.nodeid, o.nodeid, what);
    }
    if (o.reply?.header !== undefined && o.reply.header.error < 0) {
      assert.equal(-o.reply.header.error, o.errno, what);
    }
  }
  assert.ok(ops > 100, `${ops} operations`);
});

Deno.test("show: filters agree with the JSON of the whole session", async () => {
  const all = await jsonOps();

  const errs = lines((await show(FIXTURE, "--errors", "--op", "lookup")).stdout);
  const wantErrs = all.filter((o) => o.op === "LOOKUP" && o.status === "error");
  assert.equal(errs.length, wantErrs.length);
  assert.ok(errs.length >= 10);
  assert.ok(errs.every((l) => / LOOKUP .* = -ENOENT </.test(l)), errs.join("\n"));

  const names = lines((await show(FIXTURE, "--name", "f[1-2]", "--op", "CREATE")).stdout);
  assert.deepEqual(names.map((l) => /"(f\d)"/.exec(l)?.[1]), ["f1", "f2"]);

  // --slow at the median latency keeps exactly the operations at least that slow.
  const lats = all.map((o) => o.latency_ns).filter((x) => x !== undefined).sort((a, b) => a - b);
  const mid = lats[lats.length >> 1];
  const slow = lines((await show(FIXTURE, "--slow", `${mid}ns`)).stdout);
  assert.equal(slow.length, all.filter((o) => o.latency_ns >= mid).length);

  const hiprio = lines((await show(FIXTURE, "--queue", "hiprio")).stdout);
  assert.equal(hiprio.length, all.filter((o) => o.queue === 0).length);
  assert.ok(hiprio.length > 0 && hiprio.every((l) => l.includes(" hiprio FORGET ")));

  const nope = all.find((o) => o.request?.names?.name === "nope");
  const node = lines(
    (await show(FIXTURE, "--nodeid", String(nope.nodeid), "--errno", "ENOENT")).stdout,
  );
  assert.ok(node.some((l) => l.includes('"nope" = -ENOENT')));
  const uniq = lines((await show(FIXTURE, "--unique", `0x${nope.unique.toString(16)}`)).stdout);
  assert.equal(uniq.length, 1);
  assert.ok(uniq[0]!.includes('"nope"'));

  // A window of relative time: every line's time (-r) falls inside it.
  const win = lines((await show(FIXTURE, "-r", "--since", "2.5", "--until", "2.9")).stdout);
  assert.ok(win.length > 0);
  assert.ok(
    win.every((l) =>
      Number(l.trim().split(" ")[0]) >= 2.5 && Number(l.trim().split(" ")[0]) <= 2.9
    ),
  );

  const bad = await show(FIXTURE, "--slow", "2");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--slow: '2' needs a unit/);
});

Deno.test("show -v and --control/--all: field trees, vhost-user messages, notes", async () => {
  const recs = await fixtureRecords();
  const v = await show(FIXTURE, "-v", "--op", "WRITE", "--utc");
  assert.equal(v.code, 0, v.stderr);
  const text = v.stdout;
  assert.match(text, /^ {4}fuse_in_header$/m);
  assert.match(text, /^ {6}opcode: WRITE$/m);
  assert.match(text, /^ {4}fuse_write_in$/m);
  assert.match(text, /^ {6}size: 1048576$/m);
  assert.match(text, /^ {4}data: (1048576|262040) bytes$/m);
  assert.match(text, /^ {4}fuse_write_out$/m);

  const ops = countKind(recs, RecordKind.FUSE_REQUEST);
  const vhost = countKind(recs, RecordKind.VHOST_USER);
  const c = lines((await show(FIXTURE, "--control")).stdout);
  assert.equal(c.length, ops + vhost);
  assert.ok(c.some((l) => l.endsWith(" vhost-user → SET_MEM_TABLE regions=2 [2 fds]")));
  assert.ok(c.some((l) => / vhost-user ← GET_FEATURES = \S*VHOST_F_LOG_ALL/.test(l)));
  assert.ok(c.some((l) => / vhost-user → SET_VRING_KICK vring=1 \[1 fd\]$/.test(l)));
  assert.ok(!c.some((l) => l.includes(" note ")));

  const all = lines((await show(FIXTURE, "--all")).stdout);
  assert.equal(all.length, ops + vhost + countKind(recs, RecordKind.NOTE));
  assert.ok(all.some((l) => l.endsWith(" note features_masked virtio: VHOST_F_LOG_ALL")));
  assert.ok(all.some((l) => / note stop /.test(l)));
});

/** File offsets of the EPBs (type 6) and the record kind and queue each holds. */
function blocks(bytes: Uint8Array): { at: number; kind: number; queue: number }[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = [];
  for (let p = 0; p + 12 <= bytes.byteLength;) {
    const type = v.getUint32(p, true);
    const len = v.getUint32(p + 4, true);
    if (type === 6) out.push({ at: p, kind: bytes[p + 28 + 3]!, queue: v.getUint16(p + 34, true) });
    p += len;
  }
  return out;
}

Deno.test("show: stdin, exit statuses, corrupt files, a reader that goes away", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-show-" });
  try {
    const expected = lines((await show(FIXTURE)).stdout).length;
    const piped = await new Deno.Command("sh", {
      args: ["-c", `"${VFSTRACE}" show - < "${FIXTURE}"`],
      stdout: "piped",
    }).output();
    assert.equal(lines(new TextDecoder().decode(piped.stdout)).length, expected);

    assert.equal((await show(`${dir}/missing.pcapng`)).code, 3);
    assert.equal((await show(dir)).code, 3);
    assert.equal((await show(FIXTURE, "--no-such-option")).code, 2);
    assert.equal((await show(FIXTURE, "-r", "-d")).code, 2);
    assert.equal((await show(FIXTURE, "--op", "LOKUP")).code, 2);

    // Break the length of a LOOKUP-queue request block in the middle of the file.
    const bytes = await Deno.readFile(FIXTURE);
    const epbs = blocks(bytes);
    const victim = epbs.slice(epbs.length >> 1).find((b) =>
      b.kind === RecordKind.FUSE_REQUEST && b.queue === 1
    )!;
    const corrupt = bytes.slice();
    corrupt[victim.at + 4]! ^= 0x55;
    await Deno.writeFile(`${dir}/corrupt.pcapng`, corrupt);
    const broken = await show(`${dir}/corrupt.pcapng`);
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      new RegExp(`offset ${victim.at + 4}.*--recover skips damaged blocks`),
    );
    assert.ok(lines(broken.stdout).length > 10, "what came before the damage is shown");
    // Every whole record before the damage, and none after, as --json shows them.
    const recs = await fixtureRecords();
    const before = async (path: string, end: number) => {
      const r = await show(path, "--json");
      const shown = lines(r.stdout).map((l) => JSON.parse(l));
      const seqs = (side: "request" | "reply") =>
        shown.flatMap((o) => o[side] === undefined ? [] : [o[side].seq]).sort((a, b) => a - b);
      const want = (kind: number) =>
        recs.filter((x) => x.kind === kind && x.offset < end).map((x) => x.seq);
      assert.deepEqual(seqs("request"), want(RecordKind.FUSE_REQUEST));
      assert.deepEqual(seqs("reply"), want(RecordKind.FUSE_REPLY));
      return r;
    };
    assert.equal((await before(`${dir}/corrupt.pcapng`, victim.at)).code, 1);
    const recovered = await show(`${dir}/corrupt.pcapng`, "--recover");
    assert.equal(recovered.code, 0, recovered.stderr);
    assert.match(recovered.stderr, /skipped 1 damaged stretch/);
    assert.match(
      recovered.stdout,
      /\[no request with unique 0x[0-9a-f]+ on queue 1 before this reply\]/,
    );

    // A capture that ends inside a record (cut short, or still being written): what
    // came before is shown, then where it ends, and the exit status says so.
    const cutAt = epbs[epbs.length >> 1]!.at + 10;
    await Deno.writeFile(`${dir}/cut.pcapng`, bytes.subarray(0, cutAt));
    const cut = await show(`${dir}/cut.pcapng`);
    assert.equal(cut.code, 1);
    assert.match(
      cut.stderr,
      new RegExp(`cut.pcapng ends inside a record at offset ${cutAt - 10} \\(cut short`),
    );
    assert.equal(cut.stderr.match(/ends inside a record/g)?.length, 1, cut.stderr);
    assert.ok(lines(cut.stdout).length > 10);
    assert.equal((await before(`${dir}/cut.pcapng`, cutAt - 10)).code, 1);
    const cutQuiet = await show(`${dir}/cut.pcapng`, "-q");
    assert.equal(cutQuiet.code, 1);
    assert.match(cutQuiet.stderr, /ends inside a record/);

    // `show big | head -1` ends quietly with status 0.
    const big = await Deno.open(`${dir}/big.pcapng`, { write: true, create: true });
    for (let i = 0; i < 30; i++) await big.write(bytes);
    big.close();
    const head = await new Deno.Command("bash", {
      args: [
        "-c",
        `"${VFSTRACE}" show "${dir}/big.pcapng" | head -1; echo "status=\${PIPESTATUS[0]}"`,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.deepEqual(lines(dec.decode(head.stdout)).slice(1), ["status=0"]);
    assert.equal(dec.decode(head.stderr), "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("show --follow: lines appear as the capture grows; Ctrl-C ends it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-follow-" });
  try {
    const bytes = await Deno.readFile(FIXTURE);
    const expected = lines((await show(FIXTURE)).stdout).length;
    const path = `${dir}/live.pcapng`;
    // The first part ends inside a block: the reader must wait there.
    const split = blocks(bytes).find((b) => b.kind === RecordKind.FUSE_REPLY)!.at + 30;
    await Deno.writeFile(path, bytes.subarray(0, split + 2000));
    const child = new Deno.Command(VFSTRACE, {
      args: ["show", "-f", path],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    let ended = false;
    let pending: Promise<ReadableStreamReadResult<string>> | undefined;
    /** Reads until `done()` or the end of the output; fails after 10 s instead of hanging. */
    const readUntil = async (done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!done() && !ended) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`show -f: timed out; its output so far:\n${seen}`);
        pending ??= reader.read();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const got = await Promise.race([
          pending,
          new Promise<null>((r) => (timer = setTimeout(() => r(null), left))),
        ]);
        clearTimeout(timer);
        if (got === null) continue;
        pending = undefined;
        if (got.done) ended = true;
        else seen += got.value;
      }
    };
    try {
      await readUntil(() => seen.includes(" INIT "));
      await Deno.writeFile(path, bytes.subarray(split + 2000), { append: true });
      await readUntil(() => seen.includes(" DESTROY "));
      child.kill("SIGINT");
      await readUntil(() => false);
    } catch (e) {
      child.kill("SIGKILL");
      throw e;
    }
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.code, 130);
    assert.equal(lines(seen).length, expected);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

Deno.test("show: a file that is not a vfstrace capture is a clear error, never silence", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-notcap-" });
  try {
    // A network capture as tshark writes it: pcapng, one Ethernet interface, one frame.
    const frame = Uint8Array.from({ length: 60 }, (_, i) => i);
    const ethernet = concat(
      encodeSectionHeader({ userAppl: "Dumpcap (Wireshark) 4.0.17" }),
      encodeInterfaceDescription({ linkType: 1, name: "eth0", tsresol: 6 }),
      encodeEnhancedPacket({ timestamp: 1_700_000_000_000_000n, data: frame }),
    );
    // The same frame in a classic pcap file (magic, v2.4, snaplen, Ethernet; then the record).
    const pcap = new Uint8Array(24 + 16 + frame.byteLength);
    const pv = new DataView(pcap.buffer);
    pv.setUint32(0, 0xa1b2c3d4, true);
    pv.setUint16(4, 2, true);
    pv.setUint16(6, 4, true);
    pv.setUint32(16, 65535, true);
    pv.setUint32(20, 1, true);
    pv.setUint32(32, frame.byteLength, true);
    pv.setUint32(36, frame.byteLength, true);
    pcap.set(frame, 40);
    let x = 7;
    const random = Uint8Array.from(
      { length: 4096 },
      () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24,
    );
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "ethernet.pcapng",
        ethernet,
        /is a pcapng file but not a vfstrace capture: .*link type 1 \(Ethernet\)/,
      ],
      ["classic.pcap", pcap, /not a pcapng file .*it is a classic pcap file/],
      ["random.bin", random, /not a pcapng file/],
      ["notes.txt", new TextEncoder().encode("just some text\n"), /not a pcapng file/],
      ["empty", new Uint8Array(0), /is empty: not a vfstrace capture/],
    ];
    for (const [name, bytes, message] of cases) {
      await Deno.writeFile(`${dir}/${name}`, bytes);
      for (const mode of [[], ["--json"], ["--recover"]]) {
        const r = await show(`${dir}/${name}`, ...mode);
        const what = `${name} ${mode.join(" ")}`;
        assert.equal(r.code, 1, `${what}: ${r.stderr}`);
        assert.equal(r.stdout, "", what);
        assert.match(r.stderr, message, what);
        assert.doesNotMatch(r.stderr, /--recover skips/, `${what}: skipping cannot help`);
      }
    }

    // A network capture merged with a vfstrace one still reads: its packets are skipped.
    await Deno.writeFile(`${dir}/merged.pcapng`, concat(ethernet, await Deno.readFile(FIXTURE)));
    const merged = await show(`${dir}/merged.pcapng`);
    assert.equal(merged.code, 0, merged.stderr);
    assert.equal(lines(merged.stdout).length, lines((await show(FIXTURE)).stdout).length);

    // A capture without any record yet (vfstrace writes its header at once) is not an error.
    const none = await Deno.open(`${dir}/none.pcapng`, { write: true, create: true });
    await new CaptureWriter(none).close();
    none.close();
    const quiet = await show(`${dir}/none.pcapng`);
    assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [0, "", ""]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("show: unknown opcodes, messages and records are shown raw with their number", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-unknown-" });
  try {
    const path = `${dir}/unknown.pcapng`;
    const session = new FuseSession({ minor: 38, flags: 0n });
    const w = CaptureWriter.create(path, { flushIntervalMs: 0 });
    let t = 1_795_618_800_000_000_000n;
    const raw = (bytes: number[]) => ({ kind: "raw" as const, bytes: Uint8Array.from(bytes) });
    w.append({
      kind: RecordKind.VHOST_USER,
      direction: VhostUserDirection.FRONTEND_TO_BACKEND,
      body: encodeMessage({ channel: "frontend", request: 999, payload: raw([0x34, 0x12, 0, 0]) }),
      timestampNs: t++,
    });
    w.append({
      kind: RecordKind.VHOST_USER,
      direction: VhostUserDirection.BACKEND_CHANNEL_REQUEST,
      body: encodeMessage({ channel: "backend", request: 77, payload: raw([0xab]) }),
      timestampNs: t++,
    });
    const fuse = (
      queue: number,
      opcode: number,
      unique: bigint,
      error: number,
      data?: number[],
    ) => {
      const bytes = data === undefined ? undefined : Uint8Array.from(data);
      w.append({
        kind: RecordKind.FUSE_REQUEST,
        queue,
        body: encodeRequest({ header: { opcode, unique, nodeid: 5n }, data: bytes }, session),
        timestampNs: t++,
      });
      w.append({
        kind: RecordKind.FUSE_REPLY,
        queue,
        body: encodeReply({ header: { unique, error }, data: bytes }, opcode, session),
        timestampNs: t++,
      });
    };
    fuse(1, 99, 2n, 0, [1, 2, 3, 4]);
    fuse(1, 4000, 4n, -38);
    w.append({ kind: 200, body: Uint8Array.of(1, 2, 3), timestampNs: t++ });
    await w.close();

    const text = await show(path, "--all", "--utc");
    assert.equal(text.code, 0, text.stderr);
    const out = lines(text.stdout);
    assert.equal(out.length, 5, "nothing dropped:\n" + text.stdout);
    assert.match(out[0]!, / vhost-user → unknown message 999 raw=34120000$/);
    assert.match(out[1]!, / backend-channel ← unknown message 77 raw=ab$/);
    assert.match(out[2]!, / q1 opcode 99 +nodeid=5 \[4 bytes\] = 0 </);
    assert.match(out[3]!, / q1 opcode 4000 +nodeid=5 = -ENOSYS </);
    assert.match(out[4]!, / record 200, 3 bytes$/);
    // The unknown opcodes are operations: filters and the default view keep them.
    assert.equal(lines((await show(path)).stdout).length, 2);
    assert.equal(lines((await show(path, "--nodeid", "5")).stdout).length, 2);
    assert.match(
      (await show(path, "--errors")).stdout,
      /^\S+ q1 opcode 4000 .* = -ENOSYS <[^\n]*\n$/,
    );
    // --op takes the number of an unknown opcode, as the line shows it.
    for (const sel of ["99", "0x63", "opcode 99"]) {
      const one = await show(path, "--op", sel);
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stdout, /^\S+ q1 opcode 99 +nodeid=5 \[4 bytes\] = 0 <[^\n]*\n$/, sel);
    }
    const both = lines((await show(path, "--op", "4000,99", "--json")).stdout).map((l) =>
      JSON.parse(l).opcode
    );
    assert.deepEqual(both, [99, 4000]);
    assert.equal(lines((await show(path, "--op", "4096")).stdout).length, 0);
    assert.equal((await show(path, "--op", "0x1_000")).code, 2);

    const json = await show(path, "--all", "--json");
    assert.equal(json.code, 0, json.stderr);
    const [vu, backend, op99, op4000, rec] = lines(json.stdout).map((l) => JSON.parse(l));
    assert.deepEqual(
      [vu.type, vu.name, vu.request, vu.payload, vu.size],
      ["vhost-user", "unknown message 999", 999, { kind: "raw", bytes: "34120000" }, 4],
    );
    assert.deepEqual([backend.name, backend.request, backend.direction], [
      "unknown message 77",
      77,
      "BACKEND_CHANNEL_REQUEST",
    ]);
    assert.deepEqual([op99.op, op99.opcode, op99.status], ["opcode 99", 99, "ok"]);
    assert.equal(op99.request.header.opcode, 99);
    assert.equal(op99.request.data_bytes, 4);
    assert.equal(op99.reply.data_bytes, 4);
    assert.deepEqual([op4000.op, op4000.opcode, op4000.error], ["opcode 4000", 4000, "ENOSYS"]);
    assert.deepEqual([rec.type, rec.kind, rec.length], ["record", "200", 3]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("show: colours on a terminal only; NO_COLOR and a pipe turn them off", async () => {
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/" };
  const run = async (extra: Record<string, string>, tty: boolean): Promise<string> => {
    const cmd = `"${VFSTRACE}" show "${FIXTURE}" --errors`;
    // script(1) runs the command on a pseudo-terminal.
    const out = await new Deno.Command(tty ? "script" : "sh", {
      args: tty ? ["-q", "-e", "-c", cmd, "/dev/null"] : ["-c", cmd],
      env: { ...env, ...extra },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout);
  };
  const red = "\x1b[31m";
  const onTty = await run({}, true);
  assert.ok(onTty.includes(red) && onTty.includes("-ENOENT"), JSON.stringify(onTty.slice(0, 300)));
  const noColor = await run({ NO_COLOR: "1" }, true);
  assert.ok(noColor.includes("-ENOENT") && !noColor.includes("\x1b["), "NO_COLOR");
  const piped = await run({}, false);
  assert.ok(piped.includes("-ENOENT") && !piped.includes("\x1b["), "a pipe");
  assert.ok((await run({ FORCE_COLOR: "1" }, false)).includes(red), "FORCE_COLOR");
});
