/**
 * End to end through the CLI: `vfstrace trace` in front of the real C
 * virtiofsd with a real guest, then the capture read back and checked; and
 * the failure paths (the back-end killed, the proxy interrupted).
 */
import assert from "node:assert/strict";
import { CaptureReader, RecordKind } from "../../capture/mod.ts";
import { decodeReply, decodeRequest, type FuseRequest, FuseSession } from "../../decode/fuse.ts";
import { decodeMessage } from "../../decode/vhost_user.ts";
import { C_VIRTIOFSD } from "../../vm/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = `${ROOT}cmd/vfstrace.ts`;

interface Session {
  dir: string;
  share: string;
  socket: string;
  capture: string;
  trace: Deno.ChildProcess;
}

async function startTrace(extra: string[] = []): Promise<Session> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-tracecli-" });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  const socket = `${dir}/vfs.sock`;
  const capture = `${dir}/run.pcapng`;
  const trace = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      CLI,
      "trace",
      "--socket-path",
      socket,
      "-w",
      capture,
      ...extra,
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
  return { dir, share, socket, capture, trace };
}

function guestProcess(s: Session, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", CLI, "guest", "--socket", s.socket, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function guest(s: Session, args: string[]): Promise<Deno.CommandOutput> {
  return guestProcess(s, args).output();
}

async function finish(s: Session): Promise<{ code: number; stderr: string }> {
  const out = await s.trace.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

interface Tally {
  ops: Map<string, number>;
  requests: number;
  replies: number;
  errors: Map<string, number>;
  vhostUnknown: number;
  vhostTotal: number;
  notes: string[];
  truncatedAt: number | undefined;
}

/** Reads a capture back, decoding every record; pairs replies with requests by (queue, unique). */
async function tally(path: string): Promise<Tally> {
  const t: Tally = {
    ops: new Map(),
    requests: 0,
    replies: 0,
    errors: new Map(),
    vhostUnknown: 0,
    vhostTotal: 0,
    notes: [],
    truncatedAt: undefined,
  };
  const session = new FuseSession();
  const inflight = new Map<string, FuseRequest>();
  const byHead = new Map<string, string>();
  const reader = await CaptureReader.open(path);
  for await (const r of reader) {
    // Bodies cut by the snap length (256 by default) decode as far as they go.
    const cut = { truncatedFrom: r.originalLength };
    if (r.kind === RecordKind.VHOST_USER) {
      const m = decodeMessage(r.body, r.fdCount, {
        channel: r.direction >= 2 ? "backend" : "frontend",
        fds: "report",
      });
      t.vhostTotal++;
      if (!m.known) t.vhostUnknown++;
    } else if (r.kind === RecordKind.FUSE_REQUEST) {
      t.requests++;
      const req = decodeRequest(r.body, session, cut);
      const name = req.op?.name ?? `opcode ${req.header.opcode}`;
      t.ops.set(name, (t.ops.get(name) ?? 0) + 1);
      const key = `${r.queue}:${req.header.unique}`;
      inflight.set(key, req);
      byHead.set(`${r.queue}:${r.head}`, key);
    } else if (r.kind === RecordKind.FUSE_REPLY) {
      t.replies++;
      if (r.body.byteLength === 0) continue; // FORGET: used with no reply bytes
      const unique = new DataView(r.body.buffer, r.body.byteOffset).getBigUint64(8, true);
      const key = `${r.queue}:${unique}`;
      const req = inflight.get(key);
      assert.ok(req, `reply ${key} has no request`);
      inflight.delete(key);
      const rep = decodeReply(r.body, req, session, cut);
      if (rep.header.error !== 0) {
        const k = `${req.op?.name} ${rep.header.error}`;
        t.errors.set(k, (t.errors.get(k) ?? 0) + 1);
      }
    } else if (r.kind === RecordKind.NOTE) {
      t.notes.push(JSON.parse(new TextDecoder().decode(r.body)).type);
    }
  }
  t.truncatedAt = reader.truncatedAt;
  return t;
}

/** Waits until the capture being written holds more than `n` FUSE requests. */
async function waitForRequests(path: string, n: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    let count = 0;
    try {
      for await (const r of await CaptureReader.open(path)) {
        if (r.kind === RecordKind.FUSE_REQUEST) count++;
      }
    } catch {
      // not created yet
    }
    if (count > n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the capture never reached ${n} requests`);
}

Deno.test("trace CLI: a real guest session recorded whole and exact", async () => {
  const s = await startTrace(["--snaplen", "4096"]);
  try {
    const script = `${s.dir}/creates.sh`;
    // A known number of operations, to reconcile with the capture.
    await Deno.writeTextFile(
      script,
      [
        "t_creates() {",
        "  mkdir many && i=0 && while [ $i -lt 50 ]; do echo x > many/f$i; i=$((i+1)); done",
        "}",
        "t_unlinks() { rm many/f* && rmdir many; }",
        "t_missing() { ! cat nope 2>/dev/null; }",
        "check creates t_creates",
        "check unlinks t_unlinks",
        "check missing t_missing",
      ].join("\n"),
    );
    const g = await guest(s, ["--script", script]);
    assert.equal(
      g.code,
      0,
      new TextDecoder().decode(g.stdout) + new TextDecoder().decode(g.stderr),
    );
    const end = await finish(s);
    assert.equal(end.code, 0, end.stderr);
    assert.match(
      end.stderr,
      /session ended by the frontend: (\d+) requests, \1 replies, 0 malformed/,
    );

    const t = await tally(s.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.equal(t.replies, t.requests);
    assert.equal(t.vhostUnknown, 0);
    assert.ok(t.vhostTotal > 20);
    assert.equal(t.ops.get("CREATE"), 50);
    assert.equal(t.ops.get("UNLINK"), 50);
    assert.equal(t.ops.get("MKDIR"), 1);
    assert.equal(t.ops.get("RMDIR"), 1);
    assert.equal(t.ops.get("INIT"), 1);
    assert.ok((t.errors.get("LOOKUP -2") ?? 0) >= 1, "the ENOENT lookup of 'nope'");
    assert.deepEqual(t.notes.filter((n) => n === "start" || n === "stop"), ["start", "stop"]);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("trace CLI: back-end killed mid-workload → exit 1, capture readable to the end", async () => {
  const s = await startTrace();
  try {
    const running = guestProcess(s, ["--workload", "posix", "--timeout", "60"]);
    await waitForRequests(s.capture, 200);
    const kill = await new Deno.Command("pkill", {
      args: ["-KILL", "-f", `virtiofsd --socket-path=.*vfstrace-backend`],
    }).output();
    assert.equal(kill.code, 0, "no back-end to kill");
    const end = await finish(s);
    assert.equal(end.code, 1);
    assert.match(end.stderr, /the back-end closed its connection .*killed by SIGKILL/);
    // The guest hangs on its dead device (as it would without the proxy); stop it.
    running.kill("SIGTERM");
    assert.notEqual((await running.output()).code, 0);
    const t = await tally(s.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.ok(t.requests > 100);
    assert.equal(t.notes.at(-1), "stop");
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("trace CLI: SIGINT mid-workload → exit 130, capture complete up to then", async () => {
  const s = await startTrace();
  try {
    const running = guestProcess(s, ["--workload", "posix", "--timeout", "60"]);
    await waitForRequests(s.capture, 200);
    s.trace.kill("SIGINT");
    const end = await finish(s);
    assert.equal(end.code, 130, end.stderr);
    running.kill("SIGTERM");
    await running.output();
    const t = await tally(s.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.ok(t.requests > 100);
  } finally {
    await Deno.remove(s.dir, { recursive: true });
  }
});
