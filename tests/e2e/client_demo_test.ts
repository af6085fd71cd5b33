/**
 * End to end: `vfstrace demo` (serve + trace + the built-in client) exits 0,
 * prints live trace lines and the capture's stats, and ends with the path
 * of a capture that `vfstrace show` reads back with the same operations.
 */
import assert from "node:assert/strict";
import { cliArgv } from "../../cmd/backends.ts";

Deno.test("demo: live trace, stats, and a capture that show reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-e2e-demo-" });
  try {
    const capture = `${dir}/demo.pcapng`;
    const run = async (args: string[]) => {
      const argv = cliArgv(...args);
      const out = await new Deno.Command(argv[0]!, {
        args: argv.slice(1),
        env: { NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
    };
    const demo = await run(["demo", "-w", capture]);
    assert.equal(demo.code, 0, demo.stderr);
    const out = demo.stdout;
    // Live lines from the proxy, as they happened.
    assert.match(out, /q1 INIT +7\.38/);
    assert.match(out, /q1 MKDIR +nodeid=1 "notes"/);
    assert.match(out, /q1 LOOKUP +nodeid=\d+ "todo\.txt" = -ENOENT/);
    assert.match(out, /hiprio FORGET/);
    // Then the stats of the capture, then where it is.
    assert.match(out, /errors by errno\n\s+LOOKUP\s+ENOENT\s+1/);
    assert.ok(out.trimEnd().split("\n").some((l) => l === `capture: ${capture}`), out);
    assert.match(out, new RegExp(`view it: \\./vfstrace show ${capture}`));
    // With -w nothing else is left behind: the temporary share and work directory are gone.
    const work = /^# serve (\S+)\/share, with/m.exec(out)?.[1];
    assert.ok(work !== undefined, out);
    assert.equal(await Deno.stat(work).then(() => true, () => false), false, `${work} left behind`);
    const show = await run(["show", capture]);
    assert.equal(show.code, 0, show.stderr);
    const ops = show.stdout.trim().split("\n").map((l) => l.trim().split(/\s+/)[2]);
    for (
      const op of [
        "INIT",
        "MKDIR",
        "CREATE",
        "WRITE",
        "READ",
        "READDIRPLUS",
        "RENAME",
        "UNLINK",
        "RMDIR",
      ]
    ) {
      assert.ok(ops.includes(op), `${op} missing from show: ${show.stdout}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
