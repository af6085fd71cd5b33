/**
 * End to end: the built-in client (FuseClient over the vhost-user front-end)
 * against the C virtiofsd and against `vfstrace serve`, each a real child
 * process on a fresh directory: INIT, LOOKUP, MKDIR, CREATE, WRITE, READ,
 * READDIRPLUS, RENAME, UNLINK… get correct replies (checked against the
 * host directory too), and many requests in flight on one queue are each
 * answered with their own data.
 */
import assert from "node:assert/strict";
import { FuseClient, FuseErrnoError } from "../../client/mod.ts";
import { decodeReply, encodeRequest, Opcode } from "../../decode/fuse.ts";
import { type BackendProcess, startBackend } from "../../cmd/backends.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function withBackend(
  kind: "serve" | "virtiofsd",
  fn: (client: FuseClient, share: string) => Promise<void>,
  indirect = false,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `vfstrace-e2e-client-${kind}-` });
  const share = `${dir}/share`;
  await Deno.mkdir(share);
  let proc: BackendProcess | undefined;
  let client: FuseClient | undefined;
  try {
    proc = await startBackend({ kind, sharedDir: share, socket: `${dir}/vfs.sock` });
    client = await FuseClient.connect(proc.socket, { queueSize: 128, indirect });
    await fn(client, share);
  } finally {
    await client?.close();
    const st = await proc?.stop(5000);
    await Deno.remove(dir, { recursive: true });
    // Both back-ends end on their own, cleanly, when the front-end disconnects.
    if (st !== undefined) {
      assert.equal(st.code, 0, `${kind} exit status; stderr: ${proc?.stderr()}`);
    }
  }
}

for (const kind of ["virtiofsd", "serve"] as const) {
  Deno.test(`client → ${kind}: INIT, LOOKUP, MKDIR, CREATE, WRITE, READ, READDIRPLUS, RENAME, UNLINK`, async () => {
    await withBackend(kind, async (c, share) => {
      const init = c.initReply!;
      assert.equal(init.major, 7);
      assert.ok(Number(init.minor) >= 36, `minor ${init.minor}`);
      assert.ok(c.maxWrite >= 4096);
      assert.equal(c.session.minor, Math.min(38, Number(init.minor)));

      const root = await c.getattr(1n);
      assert.equal(Number(root.mode) & 0o170000, 0o040000);

      await assert.rejects(c.lookup(1n, "missing"), (e: unknown) => {
        assert.ok(e instanceof FuseErrnoError);
        assert.equal(e.errnoName, "ENOENT");
        assert.equal(e.opcode, Opcode.LOOKUP);
        return true;
      });

      const dir = await c.mkdir(1n, "d", 0o750);
      assert.ok(dir.nodeid > 1n);
      assert.equal(Number(dir.out.mode) & 0o7777, 0o750);
      const f = await c.create(dir.nodeid, "f.txt", 0o640);
      assert.ok(f.nodeid > 1n && f.nodeid !== dir.nodeid);
      const text = enc.encode("hello from the built-in client\n");
      assert.equal(await c.write(f.nodeid, f.fh, 0, text), text.length);
      assert.equal(await c.write(f.nodeid, f.fh, 100, text), text.length);
      assert.equal(dec.decode(await c.read(f.nodeid, f.fh, 0, text.length)), dec.decode(text));
      const hole = await c.read(f.nodeid, f.fh, text.length, 100 - text.length);
      assert.ok(hole.every((b) => b === 0));
      const attr = await c.getattr(f.nodeid);
      assert.equal(attr.size, BigInt(100 + text.length));
      assert.equal(Number(attr.mode) & 0o7777, 0o640);
      await c.release(f.nodeid, f.fh);

      // The host sees it.
      assert.equal(
        (await Deno.readFile(`${share}/d/f.txt`)).subarray(0, text.length).join(),
        text.join(),
      );

      const looked = await c.lookup(dir.nodeid, "f.txt");
      assert.equal(looked.nodeid, f.nodeid);
      const link = await c.symlink(dir.nodeid, "ln", "f.txt");
      assert.equal(await c.readlink(link.nodeid), "f.txt");

      const dh = await c.opendir(dir.nodeid);
      const list = await c.readdirplus(dir.nodeid, dh);
      await c.releasedir(dir.nodeid, dh);
      const byName = new Map(list.entries.map((e) => [e.name, e]));
      assert.deepEqual([...byName.keys()].sort(), [".", "..", "f.txt", "ln"]);
      assert.equal(byName.get("f.txt")!.entry!.nodeid, f.nodeid);
      assert.equal(byName.get("f.txt")!.entry!.size, BigInt(100 + text.length));

      await c.rename(dir.nodeid, "f.txt", 1n, "g.txt");
      assert.ok((await Deno.stat(`${share}/g.txt`)).isFile);
      await assert.rejects(c.rmdir(1n, "d"), /ENOTEMPTY/);
      await c.unlink(dir.nodeid, "ln");
      await c.rmdir(1n, "d");
      await c.unlink(1n, "g.txt");
      assert.deepEqual([...Deno.readDirSync(share)], []);
      for (const n of [f.nodeid, link.nodeid, dir.nodeid]) await c.forget(n, 1n);
      await c.forget(f.nodeid, 1n); // the LOOKUP's reference
      const st = await c.statfs();
      assert.ok(Number(st.bsize) > 0 && Number(st.namelen) > 0);
    });
  });

  Deno.test(`client → ${kind}: 96 READs in flight on one queue (indirect chains), each answered with its own data`, async () => {
    await withBackend(kind, async (c) => {
      const f = await c.create(1n, "blocks");
      const block = 1024;
      const n = 96;
      const all = new Uint8Array(block * n);
      for (let i = 0; i < n; i++) all.fill(i, i * block, (i + 1) * block);
      await c.write(f.nodeid, f.fh, 0, all);
      const q = c.frontend.queue(1)!;
      const before = q.stats.completed;
      const reads = Array.from({ length: n }, (_, i) => c.read(f.nodeid, f.fh, i * block, block));
      // All are in the ring before any reply is collected.
      assert.equal(q.inFlight, n);
      const got = await Promise.all(reads);
      for (let i = 0; i < n; i++) {
        assert.equal(got[i]!.length, block);
        assert.ok(got[i]!.every((b) => b === i), `read ${i} got another block's bytes`);
      }
      assert.equal(q.stats.completed - before, n);
      assert.ok(q.stats.peakInFlight >= n);
      await c.release(f.nodeid, f.fh);
    }, true); // indirect: one descriptor per request, so all 96 fit in the 128-entry ring
  });

  Deno.test(`client → ${kind}: raw requests (sendRaw) and an unknown opcode`, async () => {
    await withBackend(kind, async (c) => {
      const unique = c.nextUnique();
      const bytes = encodeRequest({
        header: { opcode: Opcode.GETATTR, unique, nodeid: 1n },
        arg: { getattr_flags: 0, fh: 0n },
      }, c.session);
      const done = await c.sendRaw(bytes, 256);
      const reply = decodeReply(done.bytes, Opcode.GETATTR, c.session);
      assert.equal(reply.header.unique, unique);
      assert.equal(reply.header.error, 0);
      // An opcode no daemon knows is answered ENOSYS, and the session goes on.
      const odd = await c.send({ opcode: 250, nodeid: 1n });
      assert.equal(odd.errno, 38);
      assert.equal(Number((await c.getattr(1n)).mode) & 0o170000, 0o040000);
    });
  });
}
