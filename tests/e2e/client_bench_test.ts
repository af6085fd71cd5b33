/**
 * End to end: `vfstrace bench` runs every workload briefly against the C
 * virtiofsd and `vfstrace serve` side by side and prints sane output: a
 * table per workload and depth, a JSON document with positive figures and
 * the first back-end as the ratio reference; the shares are left as found.
 * No timing is asserted.
 */
import assert from "node:assert/strict";
import { type BackendProcess, cliArgv, startBackend } from "../../cmd/backends.ts";

async function withBoth(
  fn: (sockets: string[], shares: string[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-bench-" });
  const procs: BackendProcess[] = [];
  const shares: string[] = [];
  try {
    for (const kind of ["virtiofsd", "serve"] as const) {
      const share = `${dir}/${kind}`;
      await Deno.mkdir(share);
      shares.push(share);
      procs.push(await startBackend({ kind, sharedDir: share, socket: `${dir}/${kind}.sock` }));
    }
    await fn(procs.map((p) => p.socket), shares);
    for (const p of procs) {
      const st = await p.stop(5000);
      assert.equal(st.code, 0, `${p.name} exit status; stderr: ${p.stderr()}`);
    }
  } finally {
    for (const p of procs) await p.stop(1000);
    await Deno.remove(dir, { recursive: true });
  }
}

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = cliArgv("bench", ...args);
  const out = await new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("bench --json: every workload at depths 1 and 4 on virtiofsd and serve", async () => {
  await withBoth(async (sockets, shares) => {
    const r = await bench([
      "--socket",
      sockets[0]!,
      "--label",
      "virtiofsd",
      "--socket",
      sockets[1]!,
      "--label",
      "serve",
      "--workload",
      "meta,seq,rand,readdir",
      "--depth",
      "1,4",
      "--duration",
      "0.2",
      "--rounds",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as {
      results: {
        workload: string;
        depth: number;
        rounds: number;
        backends: {
          label: string;
          opsPerSec: number;
          mbPerSec: number;
          ratio: number;
          rounds: { ops: number }[];
          latencyUs: { count: number; p50: number; p99: number; max: number };
        }[];
      }[];
    };
    assert.deepEqual(
      doc.results.map((x) => `${x.workload}/${x.depth}`),
      ["meta/1", "meta/4", "seq/1", "seq/4", "rand/1", "rand/4", "readdir/1", "readdir/4"],
    );
    for (const res of doc.results) {
      assert.deepEqual(res.backends.map((b) => b.label), ["virtiofsd", "serve"]);
      assert.equal(res.backends[0]!.ratio, 1);
      for (const b of res.backends) {
        const what = `${res.workload}/${res.depth} ${b.label}`;
        assert.equal(b.rounds.length, 2, what);
        assert.ok(b.rounds.every((x) => x.ops > 0), what);
        assert.ok(b.opsPerSec > 0 && b.ratio > 0, what);
        assert.ok(b.latencyUs.count > 0 && b.latencyUs.p50 > 0, what);
        assert.ok(b.latencyUs.p50 <= b.latencyUs.p99 && b.latencyUs.p99 <= b.latencyUs.max, what);
        if (res.workload !== "meta") assert.ok(b.mbPerSec > 0, what);
      }
    }
    // Each workload removes its private directory.
    for (const s of shares) assert.deepEqual([...Deno.readDirSync(s)], []);
  });
});

Deno.test("bench: the text tables, and a socket nobody listens on is a clear error", async () => {
  await withBoth(async (sockets) => {
    const r = await bench([
      "--socket",
      sockets[1]!,
      "--socket",
      sockets[0]!,
      "--workload",
      "rand",
      "--depth",
      "2",
      "--duration",
      "0.2",
      "--rounds",
      "1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^rand, depth 2: 1 interleaved rounds of 0\.2 s, medians$/m);
    assert.match(r.stdout, /back-end\s+ops\/s\s+MB\/s\s+p50 µs\s+p90 µs\s+p99 µs\s+max µs\s+ratio/);
    const rows = r.stdout.split("\n").filter((l) => l.includes(".sock"));
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /1\.000$/);
  });
  const bad = await bench(["--socket", "/nonexistent/vfs.sock", "--duration", "0.1"]);
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /cannot drive \/nonexistent\/vfs\.sock/);
  const usage = await bench(["--socket", "/x", "--workload", "nope"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /unknown 'nope'/);
});
