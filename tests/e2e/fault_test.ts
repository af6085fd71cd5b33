/**
 * End to end: faults around `vfstrace trace` (in front of `vfstrace serve`,
 * driven by the built-in client in a subprocess): SIGTERM of trace, SIGKILL
 * of the client mid-write, and a full disk under the capture. Each: the
 * right exit status and message, a capture that reads back to its last whole
 * record, a shared directory whose files are all whole writes. (SIGINT and
 * the back-end killed are in trace_cli_test.ts.)
 */
import assert from "node:assert/strict";
import { CaptureReader, RecordKind } from "../../capture/mod.ts";
import { VhostUserFrontend } from "../../client/mod.ts";
import { waitForSocket } from "./_rig.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const CLI = `${ROOT}cmd/vfstrace.ts`;
const LOAD = `${ROOT}tests/hostile/_load.ts`;

interface Rig {
  dir: string;
  share: string;
  capture: string;
  trace: Deno.ChildProcess;
  load: Deno.ChildProcess;
}

async function start(captureDir?: string): Promise<Rig> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-fault-" });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  const socket = `${dir}/vfs.sock`;
  const capture = `${captureDir ?? dir}/run.pcapng`;
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
      "-q",
      "--",
      Deno.execPath(),
      "run",
      "--quiet",
      "--allow-all",
      CLI,
      "serve",
      "--socket-path={socket}",
      "--shared-dir",
      share,
    ],
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await waitForSocket(socket);
  const load = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", LOAD, socket],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Wait for the first whole file, then let it write for a while.
  const reader = load.stdout.getReader();
  const first = await reader.read();
  assert.match(new TextDecoder().decode(first.value), /ready/);
  reader.releaseLock();
  await new Promise((r) => setTimeout(r, 1500));
  return { dir, share, capture, trace, load };
}

/** A fresh 512 KiB tmpfs (a disk that fills fast), or undefined (said) when none can be mounted. */
async function smallTmpfs(): Promise<string | undefined> {
  const mnt = await Deno.makeTempDir({ prefix: "vfstrace-e2e-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt],
  }).output();
  if (mount.code === 0) return mnt;
  console.log(`skipped: cannot mount a tmpfs: ${new TextDecoder().decode(mount.stderr)}`);
  await Deno.remove(mnt);
  return undefined;
}

async function unmount(mnt: string): Promise<void> {
  await new Deno.Command("umount", { args: [mnt] }).output();
  await Deno.remove(mnt, { recursive: true });
}

async function readBack(
  path: string,
): Promise<
  { requests: number; replies: number; truncatedAt: number | undefined; notes: string[] }
> {
  let requests = 0;
  let replies = 0;
  const notes: string[] = [];
  const reader = await CaptureReader.open(path);
  for await (const r of reader) {
    if (r.kind === RecordKind.FUSE_REQUEST) requests++;
    else if (r.kind === RecordKind.FUSE_REPLY) replies++;
    else if (r.kind === RecordKind.NOTE) {
      notes.push(JSON.parse(new TextDecoder().decode(r.body)).type);
    }
  }
  return { requests, replies, truncatedAt: reader.truncatedAt, notes };
}

/** Every file in the share holds 0 or whole 64 KiB writes of 0x5a (no torn state the guest was told of). */
async function checkShare(share: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(share)) {
    const b = await Deno.readFile(`${share}/${e.name}`);
    assert.ok(b.byteLength === 0 || b.byteLength === 65536, `${e.name}: ${b.byteLength} bytes`);
    assert.ok(b.every((x) => x === 0x5a), `${e.name}: foreign bytes`);
    n++;
  }
  return n;
}

/** The back-end process trace started (its child). */
function backendPid(tracePid: number): number | undefined {
  // Deno asks for --allow-all to read /proc (the test task does not grant it): cat reads it.
  const out = new Deno.Command("sh", {
    args: ["-c", `cat /proc/${tracePid}/task/*/children`],
    stderr: "null",
  }).outputSync();
  const first = new TextDecoder().decode(out.stdout).trim().split(/\s+/)[0];
  return first === undefined || first === "" ? undefined : Number(first);
}

/**
 * Ends every process of the rig (whatever a failed assertion left running,
 * the back-end included) and removes its directory, so a failure is reported
 * as itself rather than as a directory still being written to.
 */
async function teardown(rig: Rig): Promise<void> {
  const backend = (() => {
    try {
      return backendPid(rig.trace.pid);
    } catch {
      return undefined; // trace already gone
    }
  })();
  try {
    rig.trace.kill("SIGKILL");
  } catch { /* gone */ }
  if (backend !== undefined) {
    try {
      Deno.kill(backend, "SIGKILL");
    } catch { /* gone */ }
  }
  await stop(rig);
  await rig.trace.output().catch(() => {});
  for (let i = 0; i < 50 && backend !== undefined && pidAlive(backend); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  try {
    await Deno.remove(rig.dir, { recursive: true });
  } catch (e) {
    // Say what was still there (and so who may still be writing).
    const left = new Deno.Command("ls", { args: ["-laR", rig.dir] }).outputSync();
    throw new Error(`${e}; left:\n${new TextDecoder().decode(left.stdout)}`);
  }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT"); // signal 0 is not offered; SIGCONT is harmless
    return true;
  } catch {
    return false;
  }
}

async function stop(rig: Rig): Promise<void> {
  try {
    rig.load.kill("SIGKILL");
  } catch { /* gone */ }
  await rig.load.output().catch(() => {});
}

Deno.test("fault: SIGTERM of trace mid-write → exit 143, capture whole up to then", async () => {
  const rig = await start();
  try {
    rig.trace.kill("SIGTERM");
    const out = await rig.trace.output();
    assert.equal(out.code, 143, new TextDecoder().decode(out.stderr));
    await stop(rig);
    const t = await readBack(rig.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.ok(t.requests > 20, `${t.requests} requests`);
    assert.ok(t.replies >= t.requests - 64 && t.replies <= t.requests);
    assert.ok((await checkShare(rig.share)) > 5);
  } finally {
    await teardown(rig);
  }
});

Deno.test("fault: SIGKILL of the client mid-write → trace ends cleanly (exit 0), capture has every reply", async () => {
  const rig = await start();
  try {
    rig.load.kill("SIGKILL");
    await rig.load.output();
    const out = await rig.trace.output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, err);
    const t = await readBack(rig.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.equal(t.notes.at(-1), "stop");
    // In flight when the client died: at most one request without its reply.
    assert.ok(t.replies >= t.requests - 1 && t.replies <= t.requests, `${t.requests}/${t.replies}`);
    assert.ok((await checkShare(rig.share)) > 5);
  } finally {
    await teardown(rig);
  }
});

Deno.test("fault: SIGKILL of the back-end (serve) mid-write → trace exits 1 naming it, capture whole", async () => {
  const rig = await start();
  try {
    const pid = backendPid(rig.trace.pid);
    assert.ok(pid !== undefined, "no back-end process under trace");
    Deno.kill(pid, "SIGKILL");
    const out = await rig.trace.output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, err);
    assert.match(err, /the back-end closed its connection .*killed by SIGKILL/);
    await stop(rig);
    const t = await readBack(rig.capture);
    assert.equal(t.truncatedAt, undefined);
    assert.equal(t.notes.at(-1), "stop");
    assert.ok(t.requests > 20);
    assert.ok((await checkShare(rig.share)) > 5);
  } finally {
    await teardown(rig);
  }
});

Deno.test("fault: the back-end closes its socket between a message and its reply → trace exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-fault-" });
  try {
    const backend = `${dir}/backend.sock`;
    const socket = `${dir}/vfs.sock`;
    const capture = `${dir}/run.pcapng`;
    const listener = Deno.listen({ transport: "unix", path: backend });
    // Reads the first message (GET_FEATURES) and hangs up without answering.
    const served = (async () => {
      const conn = await listener.accept();
      await conn.read(new Uint8Array(4096));
      conn.close();
      listener.close();
    })();
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
        "-q",
        "--backend",
        backend,
      ],
      env: { NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    await waitForSocket(socket);
    const fe = VhostUserFrontend.connect(socket, { name: "fault" });
    await assert.rejects(fe.request("GET_FEATURES"));
    await fe.close();
    await served;
    const out = await trace.output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, err);
    assert.match(err, /the back-end closed its connection while QEMU was still attached/);
    let vhost = 0;
    const notes: string[] = [];
    const reader = await CaptureReader.open(capture);
    for await (const r of reader) {
      if (r.kind === RecordKind.VHOST_USER) vhost++;
      if (r.kind === RecordKind.NOTE) notes.push(JSON.parse(new TextDecoder().decode(r.body)).type);
    }
    assert.equal(reader.truncatedAt, undefined);
    assert.equal(vhost, 1, "the unanswered GET_FEATURES is recorded");
    assert.equal(notes.at(-1), "stop");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "fault: the capture's disk fills up → trace exits 1 naming the capture, file readable",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const mnt = await smallTmpfs();
    if (mnt === undefined) return;
    let rig: Rig | undefined;
    try {
      rig = await start(mnt);
      // 512 KiB fills within a few hundred requests (256-byte snap length, ~300 B a record).
      await new Promise((r) => setTimeout(r, 3000));
      await stop(rig);
      const out = await rig.trace.output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, err);
      // Said once while it happens, and at the end; never a crash.
      assert.match(err, /No space left on device.*the session goes on, records are dropped/);
      assert.match(err, /error: capture \S*run\.pcapng: write failed .*; \d+ records dropped\n/);
      assert.doesNotMatch(err, /Uncaught|\n {4}at /);
      const t = await readBack(rig.capture);
      assert.ok(t.requests > 100, `${t.requests} requests`);
      // The guest went on after the disk filled: more files (3 requests each) than recorded.
      const files = await checkShare(rig.share);
      assert.ok(files * 3 > t.requests + 300, `${files} files, ${t.requests} requests recorded`);
    } finally {
      if (rig !== undefined) await teardown(rig);
      await unmount(mnt);
    }
  },
});

Deno.test({
  name: "fault: serve --capture on a full disk keeps serving, says so, exits 1",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const mnt = await smallTmpfs();
    if (mnt === undefined) return;
    const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-fault-" });
    try {
      const share = `${dir}/share`;
      await Deno.mkdir(share);
      const socket = `${dir}/serve.sock`;
      const serve = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--allow-all",
          CLI,
          "serve",
          "--socket-path",
          socket,
          "--shared-dir",
          share,
          "--capture",
          `${mnt}/serve.pcapng`,
        ],
        env: { NO_COLOR: "1" },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await waitForSocket(socket);
      const load = new Deno.Command(Deno.execPath(), {
        args: ["run", "--quiet", "--allow-all", LOAD, socket],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await new Promise((r) => setTimeout(r, 5000));
      load.kill("SIGKILL");
      await load.status;
      const out = await serve.output();
      const err = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, err);
      assert.match(err, /No space left on device.*serving goes on, records are dropped/);
      assert.doesNotMatch(err, /Uncaught|\n {4}at /);
      const t = await readBack(`${mnt}/serve.pcapng`);
      const files = await checkShare(share);
      assert.ok(files * 3 > t.requests + 300, `${files} files, ${t.requests} requests recorded`);
    } finally {
      await unmount(mnt);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
