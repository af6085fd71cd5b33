/**
 * End to end: `vfstrace serve` in place of virtiofsd, started through the CLI
 * as users do; a real Linux guest (QEMU) runs the smoke and posix workloads
 * on it, and the posix results must match the C virtiofsd's check for check.
 * Needs what guest_virtiofsd_test.ts needs.
 */
import assert from "node:assert/strict";
import { CLI, type Report, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

function cli(args: string[], stdout: "piped" | "null" = "piped"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", CLI, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout,
    stderr: "piped",
  }).spawn();
}

/** Runs `workload` on a guest served by `vfstrace serve` (extra options given); returns both ends. */
async function underServe(
  workload: string,
  extra: string[],
): Promise<{ report: Report; serveCode: number; serveStderr: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-serve-" });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  const socket = `${dir}/serve.sock`;
  const serve = cli(["serve", "--socket-path", socket, "--shared-dir", share, ...extra], "null");
  try {
    await waitForSocket(socket);
    const guest = await cli([
      "guest",
      "--socket",
      socket,
      "--shared-dir",
      share,
      "--workload",
      workload,
      "--json",
    ]).output();
    const report = JSON.parse(dec.decode(guest.stdout)) as Report;
    // As virtiofsd: the server exits 0 by itself once QEMU has gone.
    const timer = setTimeout(() => serve.kill("SIGKILL"), 15_000);
    const done = await serve.output();
    clearTimeout(timer);
    return { report, serveCode: done.code, serveStderr: dec.decode(done.stderr), dir };
  } catch (err) {
    try {
      serve.kill("SIGKILL");
    } catch { /* gone */ }
    throw err;
  }
}

function summary(r: Report): string {
  return [...r.checks, ...r.hostChecks].map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");
}

Deno.test("vfstrace serve: smoke workload passes, capture readable, exit 0 after disconnect", async () => {
  const capture = await Deno.makeTempFile({ suffix: ".pcapng" });
  const run = await underServe("smoke", ["--capture", capture]);
  try {
    assert.equal(run.report.passed, true, summary(run.report));
    assert.equal(run.serveCode, 0, run.serveStderr);
    const stats = await cli(["stats", capture]).output();
    assert.equal(stats.code, 0, dec.decode(stats.stderr));
    const text = dec.decode(stats.stdout);
    for (const op of ["INIT", "LOOKUP", "CREATE", "WRITE", "READ", "READDIRPLUS"]) {
      assert.match(text, new RegExp(`^${op}\\s`, "m"));
    }
  } finally {
    await Deno.remove(run.dir, { recursive: true });
    await Deno.remove(capture);
  }
});

Deno.test("vfstrace serve: posix workload gives the C virtiofsd's results check for check", async () => {
  // Both with xattrs on (vm/ starts the C virtiofsd with -o xattr).
  const ours = await underServe("posix", ["--xattr"]);
  let reference: Report;
  try {
    const c = await cli(["guest", "--virtiofsd", "--workload", "posix", "--json"]).output();
    reference = JSON.parse(dec.decode(c.stdout)) as Report;
  } finally {
    await Deno.remove(ours.dir, { recursive: true });
  }
  assert.equal(ours.serveCode, 0, ours.serveStderr);
  const statuses = (r: Report) =>
    [...r.checks, ...r.hostChecks].map((c) => `${c.name} ${c.status}`);
  assert.deepEqual(statuses(ours.report), statuses(reference), summary(ours.report));
  assert.equal(ours.report.passed, true, summary(ours.report));
});

Deno.test("vfstrace serve: command line", async () => {
  const caps = await cli(["serve", "--print-capabilities"]).output();
  assert.equal(caps.code, 0);
  assert.deepEqual(JSON.parse(dec.decode(caps.stdout)), {
    type: "fs",
    features: ["separate-options"],
  });
  const bad = await cli(["serve", "--socket-path", "/tmp/x.sock", "--bogus"]).output();
  assert.equal(bad.code, 2);
  assert.match(dec.decode(bad.stderr), /unknown option '--bogus'/);
  const badO = await cli(["serve", "--socket-path", "/tmp/x.sock", "-o", "source=/tmp,nope"])
    .output();
  assert.equal(badO.code, 2);
  assert.match(dec.decode(badO.stderr), /-o nope: unknown option/);
  const noDir = await cli(["serve", "--socket-path", "/tmp/x.sock"]).output();
  assert.equal(noDir.code, 2);
  assert.match(dec.decode(noDir.stderr), /--shared-dir/);
});

Deno.test("vfstrace serve: posix_more workload at least as good as the C virtiofsd, check for check", async () => {
  const ours = await underServe("posix_more", ["--xattr"]);
  let reference: Report;
  try {
    const c = await cli(["guest", "--virtiofsd", "--workload", "posix_more", "--json"]).output();
    reference = JSON.parse(dec.decode(c.stdout)) as Report;
  } finally {
    await Deno.remove(ours.dir, { recursive: true });
  }
  assert.equal(ours.serveCode, 0, ours.serveStderr);
  const table = [...reference.checks, ...reference.hostChecks].map((c) => {
    const o = [...ours.report.checks, ...ours.report.hostChecks].find((x) => x.name === c.name);
    return `${c.name.padEnd(24)} virtiofsd ${c.status.padEnd(4)} serve ${o?.status ?? "missing"}`;
  });
  console.log(table.join("\n"));
  for (const c of [...reference.checks, ...reference.hostChecks]) {
    if (c.status !== "ok") continue;
    const o = [...ours.report.checks, ...ours.report.hostChecks].find((x) => x.name === c.name);
    assert.equal(
      o?.status,
      "ok",
      `${c.name}: virtiofsd passes, serve does not\n${summary(ours.report)}`,
    );
  }
  // serve passes everything, O_TMPFILE included (the C virtiofsd answers it ENOSYS).
  assert.equal(ours.report.passed, true, summary(ours.report));
});

Deno.test("vfstrace serve --writeback: the guest caches writes, the posix workload passes", async () => {
  const capture = await Deno.makeTempFile({ suffix: ".pcapng" });
  const ours = await underServe("posix", ["--xattr", "--writeback", "--capture", capture]);
  try {
    assert.equal(ours.serveCode, 0, ours.serveStderr);
    assert.equal(ours.report.passed, true, summary(ours.report));
    const init = await cli(["show", capture, "--op", "INIT", "-v"]).output();
    assert.equal(init.code, 0, dec.decode(init.stderr));
    // Negotiated: the reply's flags carry it.
    const text = dec.decode(init.stdout);
    const reply = text.slice(text.indexOf("reply:"));
    assert.match(reply, /^\s+flags: .*\bWRITEBACK_CACHE\b/m, text);
  } finally {
    await Deno.remove(ours.dir, { recursive: true });
    await Deno.remove(capture);
  }
});
