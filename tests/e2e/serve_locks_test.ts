/**
 * End to end: two guest processes contend on fcntl (POSIX record) and flock
 * locks on a share served by `vfstrace serve` (the `locks` workload), with
 * the locks kept in the guest kernel (the default, as virtiofsd's) and with
 * them served on the host (`-o posix_lock,flock`), where a waiting F_SETLKW
 * must not stall other requests. The C virtiofsd with the same options is
 * the reference: serve must pass every check it passes. (It answers
 * F_SETLKW and waiting flock with EOPNOTSUPP, so those fail on it.)
 */
import assert from "node:assert/strict";
import { Virtiofsd } from "../../vm/mod.ts";
import { LAUNCHER, type Report, waitForSocket } from "./_rig.ts";

const dec = new TextDecoder();

async function guest(socket: string, share: string): Promise<Report> {
  const g = await new Deno.Command(LAUNCHER, {
    args: ["guest", "--socket", socket, "--shared-dir", share, "--workload", "locks", "--json"],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  try {
    return JSON.parse(dec.decode(g.stdout)) as Report;
  } catch {
    throw new Error(`guest failed: ${dec.decode(g.stderr)}`);
  }
}

/** The locks workload under `vfstrace serve` with `extra` options; the capture's op counts. */
async function underServe(extra: string[]): Promise<{ report: Report; ops: string }> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-locks-" });
  try {
    const share = `${dir}/share`;
    await Deno.mkdir(share);
    const socket = `${dir}/serve.sock`;
    const capture = `${dir}/run.pcapng`;
    const serve = new Deno.Command(LAUNCHER, {
      args: [
        "serve",
        "--socket-path",
        socket,
        "--shared-dir",
        share,
        "--capture",
        capture,
        "--log-level",
        "warn",
        ...extra,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let report: Report;
    try {
      await waitForSocket(socket);
      report = await guest(socket, share);
    } finally {
      const timer = setTimeout(() => serve.kill("SIGKILL"), 15_000);
      const end = await serve.output();
      clearTimeout(timer);
      assert.equal(end.code, 0, dec.decode(end.stderr));
    }
    const stats = await new Deno.Command(LAUNCHER, { args: ["stats", capture] }).output();
    assert.equal(stats.code, 0, dec.decode(stats.stderr));
    return { report, ops: dec.decode(stats.stdout) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function summary(r: Report): string {
  return [...r.checks, ...r.hostChecks].map((c) => `${c.status} ${c.name} ${c.detail}`).join("\n");
}

const opCount = (stats: string, op: string): number =>
  Number(new RegExp(`^${op}\\s+(\\d+)`, "m").exec(stats)?.[1] ?? 0);

Deno.test("serve locks: guest-local (default) and served on the host, against the C virtiofsd", async () => {
  const local = await underServe([]);
  assert.equal(local.report.passed, true, summary(local.report));
  assert.equal(opCount(local.ops, "SETLK") + opCount(local.ops, "SETLKW"), 0, local.ops);

  const served = await underServe(["-o", "posix_lock,flock"]);
  assert.equal(served.report.passed, true, summary(served.report));
  // The locks really went to the server, waiting ones included.
  assert.ok(opCount(served.ops, "SETLK") > 5, served.ops);
  assert.ok(opCount(served.ops, "SETLKW") >= 2, served.ops);
  assert.ok(opCount(served.ops, "GETLK") >= 3, served.ops);
  const wait = served.report.checks.find((c) => c.name === "fcntl_wait");
  assert.match(wait?.detail ?? "", /^waited \d/);

  // The reference with the same options: serve does at least as well, check for check.
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-locks-c-" });
  try {
    const share = `${dir}/share`;
    await Deno.mkdir(share);
    const daemon = await Virtiofsd.start({
      socketPath: `${dir}/c.sock`,
      sharedDir: share,
      extraArgs: ["-o", "posix_lock", "-o", "flock"],
    });
    let reference: Report;
    try {
      reference = await guest(`${dir}/c.sock`, share);
    } finally {
      await daemon.stop();
    }
    for (const c of reference.checks) {
      if (c.status !== "ok") continue;
      const ours = served.report.checks.find((o) => o.name === c.name);
      assert.equal(ours?.status, "ok", `${c.name}: virtiofsd passes, serve does not`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
