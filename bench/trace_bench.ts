/**
 * What the tracing proxy costs a real guest, measured side by side in one
 * run: the same workloads booted against the C virtiofsd directly and through
 * `trace` (recording to a capture file), alternating, several rounds. Prints
 * the medians, proxied ÷ direct, and the proxy residence p50/p99 measured by
 * the proxy itself.
 *
 * Workloads: `meta` creates, stats and unlinks N files (default 2000);
 * `stream` writes then reads back a file of M MiB (default 256) with dd.
 *
 * Run: deno task bench:trace [--rounds 3] [--files 2000] [--mib 256]
 */
import { CaptureReader, RecordKind } from "../capture/mod.ts";
import { bootGuest, C_VIRTIOFSD, prepareGuest, Virtiofsd, type Workload } from "../vm/mod.ts";
import {
  arg,
  checkTimes,
  CLI,
  median,
  percentile,
  type Times,
  waitForSocket,
} from "./_guest_bench.ts";
const ROUNDS = arg("rounds", 3);
const FILES = arg("files", 2000);
const MIB = arg("mib", 256);

const workload: Workload = {
  name: "trace-bench",
  description: `${FILES} create+stat+unlink; ${MIB} MiB write + read`,
  script: `
t_meta() {
  mkdir m && i=0 && while [ $i -lt ${FILES} ]; do : > m/f$i; i=$((i+1)); done &&
    i=0 && while [ $i -lt ${FILES} ]; do stat m/f$i > /dev/null || return 1; i=$((i+1)); done &&
    i=0 && while [ $i -lt ${FILES} ]; do rm m/f$i; i=$((i+1)); done && rmdir m
}
t_stream_write() { dd if=/dev/zero of=big bs=1M count=${MIB} conv=fsync 2>/dev/null; }
t_stream_read() { vt_drop_caches && dd if=big of=/dev/null bs=1M 2>/dev/null && rm big; }
check meta t_meta
check stream_write t_stream_write
check stream_read t_stream_read
`,
};

/** Residence samples read back from the proxied runs' captures. */
class Residence {
  requests: number[] = [];
  replies: number[] = [];

  async readCapture(path: string): Promise<void> {
    for await (const r of await CaptureReader.open(path)) {
      if (r.residenceNs === undefined) continue;
      if (r.kind === RecordKind.FUSE_REQUEST) this.requests.push(Number(r.residenceNs));
      else if (r.kind === RecordKind.FUSE_REPLY) this.replies.push(Number(r.residenceNs));
    }
  }
}

async function runOnce(proxied: boolean, residence: Residence): Promise<Times> {
  const share = await Deno.makeTempDir({ prefix: "vfstrace-bench-share-" });
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-bench-" });
  const prepared = await prepareGuest({ workload });
  try {
    let socketPath = `${dir}/virtiofsd.sock`;
    let daemon: Virtiofsd | undefined;
    let trace: Deno.ChildProcess | undefined;
    const capture = `${dir}/bench.pcapng`;
    if (proxied) {
      // The CLI as users run it: its own process, recording with the default snap length.
      socketPath = `${dir}/proxy.sock`;
      trace = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--allow-all",
          CLI,
          "trace",
          "--quiet",
          "--socket-path",
          socketPath,
          "-w",
          capture,
          "--",
          C_VIRTIOFSD,
          "--socket-path={socket}",
          "-o",
          `source=${share}`,
        ],
        stdout: "null",
        stderr: "inherit",
      }).spawn();
      await waitForSocket(socketPath);
    } else {
      daemon = await Virtiofsd.start({ socketPath, sharedDir: share, xattr: false });
    }
    const report = await bootGuest(prepared, { socketPath, timeoutMs: 600_000 });
    if (trace !== undefined) {
      const st = await trace.status;
      if (!st.success) throw new Error(`vfstrace trace exited with ${st.code}`);
      await residence.readCapture(capture);
    }
    await daemon?.wait(30_000);
    await daemon?.stop();
    return checkTimes(report, proxied ? "proxied" : "direct");
  } finally {
    await Deno.remove(share, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
}

const direct: Times[] = [];
const proxied: Times[] = [];
const tap = new Residence();
for (let round = 0; round < ROUNDS; round++) {
  // Alternate so drift in machine load hits both sides alike.
  direct.push(await runOnce(false, tap));
  proxied.push(await runOnce(true, tap));
  console.error(`round ${round + 1}/${ROUNDS} done`);
}

console.log(
  `vfstrace trace overhead, real guest (QEMU TCG), C virtiofsd; median of ${ROUNDS} rounds`,
);
console.log(`  ${"check".padEnd(14)} ${"direct".padStart(9)} ${"proxied".padStart(9)}  ratio`);
for (const name of ["meta", "stream_write", "stream_read"]) {
  const d = median(direct.map((t) => t[name] ?? NaN));
  const p = median(proxied.map((t) => t[name] ?? NaN));
  console.log(
    `  ${name.padEnd(14)} ${d.toFixed(2).padStart(8)}s ${p.toFixed(2).padStart(8)}s  ${
      (p / d).toFixed(3)
    }`,
  );
}
const us = (ns: number) => `${(ns / 1000).toFixed(1)} µs`;
console.log(
  `  residence, requests (kick seen → back-end kicked): p50 ${
    us(percentile(tap.requests, 0.5))
  }, p99 ${us(percentile(tap.requests, 0.99))} (${tap.requests.length} requests)`,
);
console.log(
  `  residence, replies (call seen → guest notified):  p50 ${
    us(percentile(tap.replies, 0.5))
  }, p99 ${us(percentile(tap.replies, 0.99))} (${tap.replies.length} replies)`,
);
