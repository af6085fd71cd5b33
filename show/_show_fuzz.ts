/**
 * The randomized test of show_fuzz as a function of its seed and input count.
 *
 * @module
 */
/**
 * Damaged input must never throw out of the pairer, the formatter (every
 * mode) or the JSON writer: bodies with flipped bytes, cut short, swapped
 * between records, and records shuffled out of order.
 */
import assert from "node:assert/strict";
import type { CaptureRecord } from "../capture/mod.ts";
import { Opcode } from "../decode/fuse.ts";
import { encodeMessage } from "../decode/vhost_user.ts";
import { CaptureBuilder } from "./_testing.ts";
import { LineFormatter } from "./format.ts";
import { jsonLine } from "./json.ts";
import { Pairer, type ShowEvent } from "./pairing.ts";

/** xorshift32: deterministic, so a failure can be replayed by its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

async function sampleRecords(): Promise<CaptureRecord[]> {
  const b = new CaptureBuilder();
  const file = { nodeid: 7n, mode: 0o100644, size: 7n };
  let u = 2n;
  const pair = (
    op: keyof typeof Opcode,
    req: Record<string, unknown>,
    rep: Record<string, unknown>,
    queue = 1,
  ) => {
    b.request(queue, { ...req, header: { opcode: Opcode[op], unique: u, nodeid: 2n } });
    b.reply(queue, Opcode[op], { ...rep, header: { unique: u } }, 1000);
    u += 2n;
  };
  pair("INIT", { arg: { major: 7, minor: 38, flags: 3 } }, { arg: { major: 7, minor: 38 } });
  pair("LOOKUP", { names: ["a"] }, { arg: file });
  pair("GETATTR", { arg: {} }, { arg: file });
  pair("SETATTR", { arg: { valid: 0xfff, mode: 0o644 } }, { arg: file });
  pair("CREATE", { names: ["c"], arg: { flags: 0o101, mode: 0o100644 } }, {
    arg: { ...file, fh: 1n },
  });
  pair("WRITE", { arg: { fh: 1n }, data: new Uint8Array(300) }, { arg: { size: 300 } });
  pair("READ", { arg: { fh: 1n, size: 4096 } }, { data: new Uint8Array(200) });
  pair("READDIRPLUS", { arg: { fh: 1n, size: 4096 } }, {
    entries: [{ ino: 1n, off: 1n, type: 4, name: ".", entry: file }],
  });
  pair("RENAME2", { names: ["x", "y"], arg: { newdir: 3n, flags: 1 } }, {});
  pair("SYMLINK", { names: ["l", "t"] }, { arg: file });
  pair("GETXATTR", { names: ["user.a"], arg: { size: 0 } }, { arg: { size: 4 } });
  pair("SETXATTR", { names: ["user.a"], data: new Uint8Array(4) }, {});
  pair("STATFS", {}, { arg: { blocks: 1n } });
  pair("GETLK", { arg: { fh: 1n } }, { arg: { type: 2 } });
  pair("COPY_FILE_RANGE", { arg: { len: 10n } }, { arg: { size: 10 } });
  pair("SETUPMAPPING", { arg: { len: 4096n } }, {});
  b.request(0, { header: { opcode: Opcode.FORGET, unique: u, nodeid: 3n }, arg: { nlookup: 1n } });
  b.rawReply(0, new Uint8Array(0));
  b.vhostUser(
    0,
    encodeMessage({
      channel: "frontend",
      request: "SET_VRING_NUM",
      payload: { kind: "vring_state", index: 0, num: 256 },
    }),
  );
  b.note({ type: "features_masked", what: "virtio", masked: "X" });
  return await b.records();
}

function mutate(recs: CaptureRecord[], r: () => number): CaptureRecord[] {
  const out = recs.map((rec) => {
    const roll = r();
    if (roll < 0.3) {
      const body = rec.body.slice();
      for (let i = 0, n = 1 + Math.floor(r() * 4); i < n && body.length > 0; i++) {
        body[Math.floor(r() * body.length)] = Math.floor(r() * 256);
      }
      return { ...rec, body };
    }
    if (roll < 0.45) {
      const body = rec.body.slice(0, Math.floor(r() * rec.body.length));
      // Sometimes claim the cut (as a snap length would), sometimes not.
      return { ...rec, body, originalLength: r() < 0.5 ? rec.originalLength : body.length };
    }
    if (roll < 0.5) return { ...rec, body: recs[Math.floor(r() * recs.length)]!.body };
    if (roll < 0.55) return { ...rec, kind: 1 + Math.floor(r() * 7), queue: Math.floor(r() * 3) };
    return rec;
  });
  if (r() < 0.3) {
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  return out;
}

/**
 * Runs 400 inputs by default; the test and `deno task fuzz` call it.
 * Throws (AssertionError or the unexpected error, with the input) on the first failure.
 */
export async function fuzzShow(first: number, iterations: number): Promise<number> {
  const recs = await sampleRecords();
  const formatters = [
    new LineFormatter({ timeZone: "utc" }),
    new LineFormatter({ time: "delta", verbose: true, hex: true, hexLimit: 64 }),
    new LineFormatter({ time: "relative", verbose: true }),
  ];
  let events = 0;
  let problems = 0;
  for (let k = 0; k < iterations; k++) {
    const seed = (first + k) >>> 0;
    const input = mutate(recs, rng(seed));
    try {
      const seen: ShowEvent[] = [];
      const p = new Pairer({
        onEvent: (e) => seen.push(e),
        order: seed % 2 ? "reply" : "request",
        maxInFlight: 1 + (seed % 8),
      });
      for (const rec of input) p.push(rec);
      p.finish();
      for (const e of seen) {
        for (const f of formatters) assert.equal(typeof f.format(e), "string");
        JSON.parse(jsonLine(e));
      }
      events += seen.length;
      for (const e of seen) if (e.type === "fuse" && e.problem !== undefined) problems++;
    } catch (e) {
      throw new Error(`seed ${seed}: ${(e as Error).stack}`);
    }
  }
  assert.ok(events > iterations * 10);
  assert.ok(problems > iterations, `the damage reached the decoders (${problems} problems)`);
  return iterations;
}
