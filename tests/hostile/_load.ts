/**
 * A guest that writes until killed: connects the built-in client to the
 * socket given as argument, sends INIT, then CREATE + WRITE (64 KiB) +
 * RELEASE in a loop on one request queue, printing "ready" after the first
 * file. For the fault tests (killed with SIGKILL mid-write).
 *
 * @module
 */
import { VhostUserFrontend } from "../../client/mod.ts";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  FuseSession,
  Opcode,
} from "../../decode/fuse.ts";

const fe = VhostUserFrontend.connect(Deno.args[0]!, { name: "load" });
const qs = await fe.start({ memory: { size: 32 << 20 }, queues: 2, queueSize: 64 });
const session = new FuseSession();
let unique = 0n;
async function call(opcode: number, nodeid: bigint, rest: Record<string, unknown>) {
  const bytes = encodeRequest(
    { header: { opcode, unique: unique += 2n, nodeid, pid: 1 }, ...rest },
    session,
  );
  const req = decodeRequest(bytes, new FuseSession({ minor: session.minor }));
  const done = await qs[1]!.submit(bytes, 1 << 17);
  return decodeReply(done.bytes.subarray(0, done.len), req, session);
}
await call(Opcode.INIT, 0n, {
  arg: { major: 7, minor: 38, "max_readahead": 131072, flags: 0x7fffffff },
});
const data = new Uint8Array(65536).fill(0x5a);
for (let k = 0;; k++) {
  const c = await call(Opcode.CREATE, 1n, {
    arg: { flags: 2, mode: 0o100644, umask: 0 },
    names: [`f${k}`],
  });
  const fh = BigInt(c.arg!.fh as bigint);
  const nodeid = BigInt(c.arg!.nodeid as bigint);
  await call(Opcode.WRITE, nodeid, { arg: { fh, offset: 0n, size: data.byteLength }, data });
  await call(Opcode.RELEASE, nodeid, { arg: { fh } });
  if (k === 0) console.log("ready");
}
