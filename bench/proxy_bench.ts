/**
 * The proxy's cost without an emulated guest: the built-in front-end sends
 * FUSE GETATTR requests to the C virtiofsd directly and through
 * `vfstrace trace` (a separate process, recording to a capture), side by
 * side in one run, at depth 1 and 16. Prints ops/s medians and the ratio.
 *
 * Run: deno task bench:proxy [--ops 20000] [--rounds 3]
 */
import { VhostUserFrontend } from "../client/mod.ts";
import { encodeRequest, FuseSession, Opcode } from "../decode/fuse.ts";
import { C_VIRTIOFSD } from "../vm/mod.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const OPS = arg("ops", 20000);
const ROUNDS = arg("rounds", 3);
const CLI = new URL("../cmd/vfstrace.ts", import.meta.url).pathname;

async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      if ((await Deno.stat(path)).isSocket) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no socket at ${path}`);
}

/** Starts a back-end (direct virtiofsd, or the proxy in front of one); returns its socket. */
async function startBackend(
  proxied: boolean,
  dir: string,
  share: string,
): Promise<{ socket: string; child: Deno.ChildProcess }> {
  if (!proxied) {
    const socket = `${dir}/virtiofsd.sock`;
    const child = new Deno.Command(C_VIRTIOFSD, {
      args: [`--socket-path=${socket}`, "-o", `source=${share}`, "-o", "cache=auto"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForSocket(socket);
    return { socket, child };
  }
  const socket = `${dir}/proxy.sock`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      CLI,
      "trace",
      "--quiet",
      "--socket-path",
      socket,
      "-w",
      `${dir}/bench.pcapng`,
      "--snaplen",
      "256",
      "--",
      C_VIRTIOFSD,
      "--socket-path={socket}",
      "-o",
      `source=${share}`,
      "-o",
      "cache=auto",
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitForSocket(socket);
  return { socket, child };
}

async function measure(proxied: boolean, depth: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-pbench-" });
  const share = await Deno.makeTempDir({ prefix: "vfstrace-pbench-share-" });
  const { socket, child } = await startBackend(proxied, dir, share);
  const fe = await VhostUserFrontend.connect(socket);
  try {
    const queues = await fe.start({ queueSize: 256 });
    const q = queues[1]!;
    const session = new FuseSession();
    let unique = 1n;
    const init = encodeRequest({
      header: { opcode: Opcode.INIT, unique: unique++ },
      arg: { major: 7, minor: 38, max_readahead: 131072, flags: 0, flags2: 0 },
    }, session);
    await q.submit(init, 4096);
    const getattr = () =>
      encodeRequest({
        header: { opcode: Opcode.GETATTR, unique: unique++, nodeid: 1n },
        arg: { getattr_flags: 0, dummy: 0, fh: 0n },
      }, session).slice();
    // Warm-up, then the timed run.
    const run = async (n: number) => {
      let next = 0;
      const worker = async () => {
        while (next < n) {
          next++;
          await q.submit(getattr(), 256);
        }
      };
      await Promise.all(Array.from({ length: depth }, worker));
    };
    await run(Math.min(1000, OPS));
    const t0 = performance.now();
    await run(OPS);
    return OPS / ((performance.now() - t0) / 1000);
  } finally {
    await fe.close();
    // Both virtiofsd and the proxy exit when their front-end goes away.
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await child.status;
    clearTimeout(timer);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(share, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

console.log(`vfstrace proxy overhead, GETATTR to the C virtiofsd, ${OPS} ops, median of ${ROUNDS}`);
for (const depth of [1, 16]) {
  const direct: number[] = [];
  const proxied: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    direct.push(await measure(false, depth));
    proxied.push(await measure(true, depth));
  }
  const d = median(direct);
  const p = median(proxied);
  console.log(
    `  depth ${String(depth).padStart(2)}: direct ${d.toFixed(0).padStart(7)} ops/s, ` +
      `proxied ${p.toFixed(0).padStart(7)} ops/s, proxied/direct ${(p / d).toFixed(3)}`,
  );
}
