/**
 * `vfstrace demo`: the whole tool in one command, with nothing installed
 * beyond `npm ci`. `serve` shares a temporary directory, `trace` sits in
 * front of it recording a capture and printing the live trace, and the
 * built-in client (or, with `--guest`, a real Linux guest under QEMU) runs a
 * short workload through it; then the capture's `stats`, its path and the
 * commands that read it.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { FuseClient, FuseErrnoError } from "../client/mod.ts";
import { type BackendProcess, cliArgv, startBackend } from "./backends.ts";
import { CliError, colors, ExitCode, onInterrupt } from "./_common.ts";
import { statsCommand } from "./_stats.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the built-in client does through the proxy: a short, realistic session. */
export async function demoWorkload(
  client: FuseClient,
  say: (s: string) => void | Promise<void>,
): Promise<void> {
  await say("mkdir notes; write notes/todo.txt; read it back");
  const notes = await client.mkdir(1n, "notes");
  const todo = await client.create(notes.nodeid, "todo.txt");
  const text = enc.encode("1. trace virtio-fs\n2. read the capture\n");
  await client.write(todo.nodeid, todo.fh, 0, text);
  await client.flush(todo.nodeid, todo.fh);
  await client.release(todo.nodeid, todo.fh);
  const fh = await client.open(todo.nodeid, 0);
  const back = await client.read(todo.nodeid, fh, 0, 4096);
  await client.release(todo.nodeid, fh, 0);
  if (dec.decode(back) !== dec.decode(text)) {
    throw new Error("demo: notes/todo.txt read back differs from what was written");
  }
  await say("a 256 KiB file in 64 KiB writes, fsync");
  const big = await client.create(notes.nodeid, "data.bin");
  const chunk = new Uint8Array(64 << 10).map((_, i) => i & 0xff);
  await Promise.all(
    [0, 1, 2, 3].map((i) => client.write(big.nodeid, big.fh, i * chunk.length, chunk)),
  );
  await client.fsync(big.nodeid, big.fh);
  await client.release(big.nodeid, big.fh);
  await say("list notes/ (READDIRPLUS), stat, symlink");
  const dh = await client.opendir(notes.nodeid);
  const listing = await client.readdirplus(notes.nodeid, dh);
  await client.releasedir(notes.nodeid, dh);
  const names = listing.entries.map((e) => e.name).filter((n) => n !== "." && n !== "..");
  if (!names.includes("todo.txt") || !names.includes("data.bin")) {
    throw new Error(`demo: listing of notes/ lacks files: ${names.join(", ")}`);
  }
  await client.getattr(todo.nodeid);
  const link = await client.symlink(notes.nodeid, "latest", "todo.txt");
  await client.readlink(link.nodeid);
  await client.statfs();
  await say("rename todo.txt → done.txt; look up the old name (ENOENT, on purpose)");
  await client.rename(notes.nodeid, "todo.txt", notes.nodeid, "done.txt");
  try {
    await client.lookup(notes.nodeid, "todo.txt");
    throw new Error("demo: notes/todo.txt still exists after the rename");
  } catch (err) {
    if (!(err instanceof FuseErrnoError) || err.errnoName !== "ENOENT") throw err;
  }
  await say("clean up: unlink, rmdir, forget");
  for (const n of ["done.txt", "data.bin", "latest"]) await client.unlink(notes.nodeid, n);
  await client.rmdir(1n, "notes");
  for (const e of [todo, big, link]) await client.forget(e.nodeid, 1n);
  await client.forget(notes.nodeid, 1n);
}

interface DemoOptions {
  write?: string | undefined;
  guest?: true | undefined;
  keep?: true | undefined;
}

/** Builds the `demo` subcommand. */
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "Show vfstrace at work with nothing to set up: serve a temporary directory, trace it into " +
        "a capture with live output, drive it with the built-in client, then print the stats.",
    )
    .option("-w, --write <file>", "where the capture goes (default: a new temporary directory)")
    .option("--guest", "drive it with a real Linux guest under QEMU instead (vm/ rig; slower)")
    .option("--keep", "keep the shared directory (its path is printed)")
    .addHelpText(
      "after",
      `
Steps: 'vfstrace serve' on a temporary directory; 'vfstrace trace' in front of
it recording to the capture (its live lines are printed as they happen); the
built-in client (a vhost-user front-end and virtio-fs driver in TypeScript)
mounts it with FUSE_INIT and works in it: mkdir, create, write, read, fsync,
readdirplus, symlink, rename, a lookup that fails with ENOENT, unlink, rmdir;
then 'vfstrace stats' of the capture. With --guest, 'vfstrace guest' boots a
Linux guest that runs the smoke workload on the mount instead (needs QEMU;
see README).`,
    )
    .action(async (opts: DemoOptions) => {
      await runDemo(opts);
    });
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const work = await Deno.makeTempDir({ prefix: "vfstrace-demo-" });
  const share = `${work}/share`;
  await Deno.mkdir(share);
  const capture = opts.write ?? `${work}/demo.pcapng`;
  const socket = `${work}/vfs.sock`;
  const say = (s: string) => console.log(colors.cyan(`# ${s}`));
  let proxy: BackendProcess | undefined;
  const unregister = onInterrupt(async () => {
    try {
      proxy?.child.kill("SIGTERM");
    } catch {
      // gone already
    }
    if (opts.keep !== true) await Deno.remove(share, { recursive: true }).catch(() => {});
  });
  try {
    say(`serve ${share}, with trace in front recording to ${capture}`);
    proxy = await startBackend({
      kind: "serve",
      sharedDir: share,
      socket,
      trace: { capture, live: true },
      stdout: "inherit",
    });
    if (opts.guest === true) {
      say("boot a Linux guest on it (QEMU), run the smoke workload");
      const argv = cliArgv(
        "guest",
        "--socket",
        socket,
        "--shared-dir",
        share,
        "--workload",
        "smoke",
      );
      const st = await new Deno.Command(argv[0]!, {
        args: argv.slice(1),
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!st.success) {
        throw new CliError(`the guest run failed (exit ${st.code})`, st.code === 3 ? 3 : 1);
      }
    } else {
      say("the built-in client connects: vhost-user set-up, FUSE_INIT");
      const client = await FuseClient.connect(socket);
      try {
        // A pause before each step lets the live lines of the previous one print first.
        await demoWorkload(client, async (s) => {
          await new Promise((r) => setTimeout(r, 300));
          say(s);
        });
      } finally {
        await client.close();
      }
    }
    const st = await proxy.stop(10_000);
    if (!st.success) {
      throw new CliError(
        `the proxy ended with status ${st.code}: ${proxy.stderr().trim()}`,
        ExitCode.Failure,
      );
    }
    console.log();
    say(`vfstrace stats ${capture}`);
    await statsCommand().exitOverride().parseAsync([capture], { from: "user" });
    console.log();
    console.log(`capture: ${capture}`);
    console.log(`view it: ./vfstrace show ${capture}`);
    console.log(`         ./vfstrace stats ${capture}`);
    console.log(`         ./vfstrace report ${capture} -o report.html`);
    if (opts.keep === true) console.log(`shared directory kept: ${share}`);
  } finally {
    if (proxy !== undefined) await proxy.stop(2000).catch(() => {});
    unregister();
    await Deno.remove(socket).catch(() => {});
    if (opts.keep !== true) await Deno.remove(share, { recursive: true }).catch(() => {});
    // With -w the capture lives elsewhere: nothing of the work directory is left to keep.
    if (opts.write !== undefined && opts.keep !== true) await Deno.remove(work).catch(() => {});
  }
}
