/**
 * End to end: `vfstrace replay --diff` of tests/fixtures/guest_session.pcapng
 * (recorded from a Linux 6.1 guest on the C virtiofsd, starting from an empty
 * directory) against the C virtiofsd and against `vfstrace serve`, each on a
 * fresh empty directory: no differences (timestamps, inode numbers, node
 * ids and handles are not compared), the directory ends as the guest left
 * it; and on a directory that is not fresh, differences and exit status 1.
 */
import assert from "node:assert/strict";
import { type BackendProcess, cliArgv, startBackend } from "../../cmd/backends.ts";

const FIXTURE = new URL("../fixtures/guest_session.pcapng", import.meta.url).pathname;

async function replay(
  kind: "serve" | "virtiofsd",
  args: string[],
  prepare: (share: string) => Promise<void> = async () => {},
): Promise<{ code: number; stdout: string; stderr: string; tree: string[]; bigSize: number }> {
  const dir = await Deno.makeTempDir({ prefix: `vfstrace-e2e-replay-${kind}-` });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  await prepare(share);
  let proc: BackendProcess | undefined;
  try {
    // The guest's daemon ran with xattrs on (the kernel's security.capability probes).
    proc = await startBackend({ kind, sharedDir: share, socket: `${dir}/vfs.sock`, xattr: true });
    const argv = cliArgv("replay", FIXTURE, "--socket", proc.socket, ...args);
    const out = await new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const st = await proc.stop(5000);
    assert.equal(st.code, 0, `${kind} exit status; stderr: ${proc.stderr()}`);
    let tree: string[] = [];
    let bigSize = -1;
    try {
      tree = [...Deno.readDirSync(`${share}/tree`)].map((e) => e.name).sort();
      bigSize = Deno.statSync(`${share}/big`).size;
    } catch {
      // checked by the caller
    }
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      tree,
      bigSize,
    };
  } finally {
    await proc?.stop(2000);
    await Deno.remove(dir, { recursive: true });
  }
}

/** The file system type of `path` as stat -f names it (`ext2/ext3` for ext4 too). */
async function fsType(path: string): Promise<string> {
  const out = await new Deno.Command("stat", { args: ["-f", "-c", "%T", path] }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * The fixture was recorded on ext4, where a small directory has size 4096 and 8 blocks. On
 * another file system (tmpfs, xfs, btrfs) those two differ and --diff says so, rightly: then the
 * only differences allowed are directory sizes and blocks.
 */
function assertNoDifferences(stdout: string, fs: string): void {
  const diffs = stdout.split("\n").filter((l) => l.startsWith("#"));
  if (fs === "ext2/ext3") {
    assert.deepEqual(diffs, []);
    assert.match(stdout, /104 replies compared, 0 difference\(s\)/);
    return;
  }
  for (const d of diffs) {
    assert.match(d, /: (size: recorded 4096|blocks: recorded 8), replayed \d+$/, `on ${fs}`);
  }
}

for (const kind of ["virtiofsd", "serve"] as const) {
  for (const mode of [[], ["--concurrent"]]) {
    Deno.test(`replay ${["--diff", ...mode].join(" ")} of the guest fixture on ${kind}: no differences`, async () => {
      const fs = await fsType(await Deno.realPath(Deno.env.get("TMPDIR") ?? "/tmp"));
      const r = await replay(kind, ["--diff", ...mode]);
      assert.equal(
        r.code,
        fs === "ext2/ext3" ? 0 : r.code,
        `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
      );
      assert.match(r.stdout, /replayed 118 of 119 operations \(0 skipped, 21 error replies\)/);
      assertNoDifferences(r.stdout, fs);
      // What session.sh left behind: f1, f2 + its hard link, f3 renamed, f4 removed, f5, a symlink.
      assert.deepEqual(r.tree, ["f1", "f2", "f3b", "f5", "hard", "link"]);
      assert.equal(r.bigSize, 1 << 20);
    });
  }
}

Deno.test("replay --diff on a directory that is not fresh: differences, exit status 1", async () => {
  const r = await replay("serve", ["--diff"], async (share) => {
    await Deno.mkdir(`${share}/tree`);
    await Deno.writeTextFile(`${share}/tree/f1`, "other content\n");
  });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  // The guest's first LOOKUP of "tree" found nothing; here it exists.
  assert.match(r.stdout, /LOOKUP nodeid=1 "tree": result: recorded -ENOENT, replayed 0/);
  assert.match(r.stdout, /MKDIR nodeid=1 "tree".*result: recorded 0, replayed -EEXIST/);
  assert.match(r.stderr, /difference\(s\) from the capture/);
});

Deno.test("replay: a missing capture is a clear error (exit 3)", async () => {
  const argv = cliArgv("replay", "/nonexistent/x.pcapng", "--socket", "/nonexistent/s.sock");
  const out = await new Deno.Command(argv[0]!, { args: argv.slice(1), stdin: "null" }).output();
  assert.equal(out.code, 3);
  assert.match(new TextDecoder().decode(out.stderr), /cannot open \/nonexistent\/x\.pcapng/);
});

Deno.test("replay --diff of a capture cut at the default snap length (256): compared over what was kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-replay-snap-" });
  try {
    const capture = `${dir}/demo.pcapng`;
    const demo = cliArgv("demo", "-w", capture);
    const made = await new Deno.Command(demo[0]!, { args: demo.slice(1), stdin: "null" }).output();
    assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
    const share = `${dir}/share`;
    await Deno.mkdir(share);
    const proc = await startBackend({ kind: "serve", sharedDir: share, socket: `${dir}/vfs.sock` });
    try {
      const argv = cliArgv("replay", capture, "--socket", proc.socket, "--diff");
      const out = await new Deno.Command(argv[0]!, {
        args: argv.slice(1),
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
      assert.match(text, /note: READDIRPLUS .*: listing compared over the \d+ recorded entries/);
      assert.match(text, /note: 4 WRITE\(s\) had data cut by the capture's snap length/);
      assert.match(text, /, 0 difference\(s\)/);
    } finally {
      await proc.stop(5000);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
