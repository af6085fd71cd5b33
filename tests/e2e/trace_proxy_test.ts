/**
 * End to end: the tracing proxy between a real guest (QEMU) and the real C
 * virtiofsd. The guest must behave exactly as without the proxy, and the
 * recording must hold every request with its reply.
 */
import assert from "node:assert/strict";
import { bootGuest, builtinWorkload, C_VIRTIOFSD, prepareGuest } from "../../vm/mod.ts";
import { MemoryRecorder, type RecordedEvent } from "../../trace/recorder.ts";
import { runTrace } from "../../trace/run.ts";

type Of<K extends RecordedEvent["kind"]> = Extract<RecordedEvent, { kind: K }>;

Deno.test("posix workload through the proxy: guest passes, every request is paired", async () => {
  const prepared = await prepareGuest({ workload: builtinWorkload("posix") });
  const share = await Deno.makeTempDir({ prefix: "vfstrace-e2e-share-" });
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-trace-" });
  const socketPath = `${dir}/proxy.sock`;
  const recorder = new MemoryRecorder();
  let listening!: () => void;
  const ready = new Promise<void>((resolve) => (listening = resolve));
  const traced = runTrace({
    listen: { socketPath },
    backend: {
      command: [C_VIRTIOFSD, "--socket-path={socket}", "-o", `source=${share}`, "-o", "xattr"],
    },
    recorder,
    onListening: () => listening(),
  });
  try {
    await ready;
    const report = await bootGuest(prepared, { socketPath, sharedDir: share, timeoutMs: 300_000 });
    const failed = [...report.checks, ...(report.hostChecks ?? [])].filter((c) =>
      c.status === "fail"
    );
    assert.deepEqual(failed, []);
    assert.equal(report.passed, true);

    const result = await traced;
    assert.equal(result.end?.closedBy, "frontend");
    assert.equal(result.backendStatus?.code, 0);
    const requests = recorder.events.filter((e): e is Of<"request"> => e.kind === "request");
    const replies = recorder.events.filter((e): e is Of<"reply"> => e.kind === "reply");
    assert.ok(requests.length > 5000, `only ${requests.length} requests`);
    assert.equal(replies.length, requests.length);
    assert.equal(recorder.events.filter((e) => e.kind === "malformed").length, 0);
    // Residence is measured for every request and every reply.
    assert.ok(requests.every((r) => r.residenceNs > 0n));
    assert.ok(replies.every((r) => r.residenceNs !== undefined && r.residenceNs > 0n));
    const sorted = (xs: bigint[]) => xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const p = (xs: bigint[], q: number) => xs[Math.floor((xs.length - 1) * q)];
    const reqRes = sorted(requests.map((r) => r.residenceNs));
    const repRes = sorted(replies.map((r) => r.residenceNs!));
    console.log(
      `residence ns: requests p50 ${p(reqRes, 0.5)} p99 ${p(reqRes, 0.99)}; ` +
        `replies p50 ${p(repRes, 0.5)} p99 ${p(repRes, 0.99)}`,
    );
    // Every reply belongs to exactly one request, and carries its FUSE unique.
    const bySeq = new Map(requests.map((r) => [r.seq, r]));
    const seen = new Set<number>();
    for (const r of replies) {
      const req = bySeq.get(r.requestSeq);
      assert.ok(req, `reply for unknown request ${r.requestSeq}`);
      assert.ok(!seen.has(r.requestSeq), `request ${r.requestSeq} answered twice`);
      seen.add(r.requestSeq);
      // FORGET and BATCH_FORGET (hiprio) come back used with no reply bytes.
      if (r.bytes.byteLength === 0) {
        const opcode = new DataView(req.bytes.buffer).getUint32(4, true);
        assert.ok(opcode === 2 || opcode === 42, `empty reply to opcode ${opcode}`);
        continue;
      }
      const reqUnique = new DataView(req.bytes.buffer).getBigUint64(8, true);
      const repUnique = new DataView(r.bytes.buffer).getBigUint64(8, true);
      assert.equal(repUnique, reqUnique);
    }
    // The first request on the request queue is FUSE_INIT (opcode 26), answered with 0.
    const first = requests.find((r) => r.queue === 1)!;
    assert.equal(new DataView(first.bytes.buffer).getUint32(4, true), 26);
    const initReply = replies.find((r) => r.requestSeq === first.seq)!;
    assert.equal(new DataView(initReply.bytes.buffer).getInt32(4, true), 0);
    // The control plane is recorded, with the masked features noted.
    assert.ok(recorder.events.some((e) => e.kind === "vhost"));
    assert.ok(
      recorder.events.some((e) => e.kind === "note" && e.note.type === "features_masked"),
    );
  } finally {
    await traced.catch(() => {});
    await Deno.remove(share, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});
