/**
 * End to end: `vfstrace trace` in front of `vfstrace serve` (the proxy must
 * work with our own back-end). A real guest runs the posix workload through
 * both, started through the CLI launcher as users do; the workload must pass,
 * both processes exit 0 after QEMU disconnects, and the capture pairs every
 * FUSE request with its reply.
 */
import assert from "node:assert/strict";
import { CaptureReader, RecordKind } from "../../capture/mod.ts";
import { decodeReply, decodeRequest, type FuseRequest, FuseSession } from "../../decode/fuse.ts";
import { LAUNCHER, type Report, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

Deno.test("trace in front of serve: posix workload passes, capture paired", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-traceserve-" });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  const socket = `${dir}/proxy.sock`;
  const capture = `${dir}/run.pcapng`;
  const trace = new Deno.Command(LAUNCHER, {
    args: [
      "trace",
      "--quiet",
      "--socket-path",
      socket,
      "-w",
      capture,
      "--snaplen",
      "0",
      "--",
      LAUNCHER,
      "serve",
      "--socket-path",
      "{socket}",
      "--shared-dir",
      share,
      "--xattr",
      "--log-level",
      "warn",
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    await waitForSocket(socket);
    const g = await new Deno.Command(LAUNCHER, {
      args: ["guest", "--socket", socket, "--shared-dir", share, "--workload", "posix", "--json"],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const report = JSON.parse(dec.decode(g.stdout)) as Report;
    const summary = [...report.checks, ...report.hostChecks]
      .map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");
    assert.equal(report.passed, true, summary + dec.decode(g.stderr));
    assert.ok(report.checks.filter((c) => c.status === "ok").length >= 20, summary);

    const timer = setTimeout(() => trace.kill("SIGKILL"), 20_000);
    const end = await trace.output();
    clearTimeout(timer);
    const stderr = dec.decode(end.stderr);
    assert.equal(end.code, 0, stderr);

    // Every request answered exactly once, replies decodable against their requests.
    const session = new FuseSession();
    const inflight = new Map<string, FuseRequest>();
    const ops = new Map<string, number>();
    let requests = 0;
    let replies = 0;
    let errors = 0;
    const reader = await CaptureReader.open(capture);
    for await (const r of reader) {
      if (r.kind === RecordKind.FUSE_REQUEST) {
        requests++;
        const req = decodeRequest(r.body, session);
        const name = req.op?.name ?? `opcode ${req.header.opcode}`;
        ops.set(name, (ops.get(name) ?? 0) + 1);
        if (req.op?.reply.kind !== "none") inflight.set(`${r.queue}:${req.header.unique}`, req);
      } else if (r.kind === RecordKind.FUSE_REPLY) {
        replies++;
        if (r.body.byteLength === 0) continue; // FORGET: used, no reply bytes
        const unique = new DataView(r.body.buffer, r.body.byteOffset).getBigUint64(8, true);
        const key = `${r.queue}:${unique}`;
        const req = inflight.get(key);
        assert.ok(req, `reply ${key} has no request`);
        inflight.delete(key);
        if (decodeReply(r.body, req, session).header.error !== 0) errors++;
      } else if (r.kind === RecordKind.NOTE) {
        const note = JSON.parse(dec.decode(r.body)) as { type: string };
        assert.notEqual(note.type, "malformed_chain", "a malformed chain was recorded");
      }
    }
    assert.equal(reader.truncatedAt, undefined);
    assert.equal(inflight.size, 0, `unanswered: ${[...inflight.keys()].join(", ")}`);
    assert.equal(replies, requests);
    assert.ok(requests > 1000, `${requests} requests`);
    for (const op of ["INIT", "CREATE", "WRITE", "READ", "RENAME", "LINK", "SETXATTR", "MKNOD"]) {
      assert.ok((ops.get(op) ?? 0) > 0, `no ${op} in the capture`);
    }
    assert.ok(errors > 0, "the workload's expected errors (ENOENT, EEXIST) are in the capture");
  } finally {
    try {
      trace.kill("SIGKILL");
    } catch { /* gone */ }
    await trace.output().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
