/**
 * End to end through the CLI: `vfstrace guest --virtiofsd` exit statuses and
 * JSON report with a real guest (see guest_virtiofsd_test.ts for what it needs).
 */
import assert from "node:assert/strict";

const CLI = new URL("../../cmd/vfstrace.ts", import.meta.url).pathname;

async function vfstrace(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-all", CLI, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("vfstrace guest --virtiofsd --workload smoke --json: exit 0 and a passing report", async () => {
  const r = await vfstrace("guest", "--virtiofsd", "--workload", "smoke", "--json");
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.passed, true);
  assert.equal(report.workload, "smoke");
  assert.ok(report.checks.length >= 6);
  assert.ok(report.hostChecks.length >= 7);
  assert.equal(report.virtiofsd.exitCode, 0);
  assert.ok(report.bootToPoweroffMs > 0);
});

Deno.test("vfstrace guest: a failing check exits 1 and names the check", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/fails.sh`,
      't_bad() { echo "deliberate failure"; return 1; }\ncheck deliberate t_bad\n',
    );
    const r = await vfstrace("guest", "--virtiofsd", "--script", `${dir}/fails.sh`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /FAIL\s+deliberate\s+[\d.]+ s\s+exit 1: deliberate failure/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vfstrace guest: usage and environment errors", async () => {
  assert.equal((await vfstrace("guest")).code, 2);
  assert.equal((await vfstrace("guest", "--virtiofsd", "--workload", "nope")).code, 2);
  assert.equal((await vfstrace("guest", "--socket", "/nonexistent/vfstrace.sock")).code, 3);
});

Deno.test("vfstrace guest: SIGTERM mid-run exits 143 and leaves no temp files or processes", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "vfstrace-e2e-sigterm-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-all", CLI, "guest", "--virtiofsd", "--workload", "posix"],
      env: { NO_COLOR: "1", TMPDIR: tmp },
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Wait until the run has created its temporary socket and share directories.
    for (let i = 0; i < 100 && [...Deno.readDirSync(tmp)].length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    // At least the socket and share directories (more while helpers are being built).
    assert.ok([...Deno.readDirSync(tmp)].length >= 2, "the run never created its temp dirs");
    await new Promise((r) => setTimeout(r, 1500)); // QEMU is booting now
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 143);
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
    // QEMU and virtiofsd die with the CLI (parent-death signal); give them a moment.
    let alive = -1;
    for (let i = 0; i < 30 && alive !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const ps = await new Deno.Command("pgrep", { args: ["-f", tmp], stdout: "piped" }).output();
      alive = new TextDecoder().decode(ps.stdout).trim().split("\n").filter((l) => l).length;
    }
    assert.equal(alive, 0, "QEMU or virtiofsd outlived the CLI");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
