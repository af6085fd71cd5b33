/**
 * The randomized test of fuse_fuzz as a function of its seed and input count.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  DecodeError,
  decodeReply,
  decodeRequest,
  EncodeError,
  encodeReply,
  encodeRequest,
  type FuseRequest,
  FuseSession,
  InitFlags,
} from "./fuse.ts";
import {
  fuseSamples,
  LINUX_6_1_FLAGS,
  notifySamples,
  type SampleConfig,
  sessionFor,
} from "./_fuse_samples.ts";
import { hexBytes } from "./struct.ts";

/** xorshift32: tiny, seedable, and the same on every run. */
class Rng {
  #s: number;
  /** Seeds the generator (0 is replaced: xorshift needs a non-zero state). */
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  /** Next u32. */
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** Integer in [0, n). */
  below(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  /** A random element. */
  pick<T>(xs: readonly T[]): T {
    const x = xs[this.below(xs.length)];
    if (x === undefined) throw new Error("pick from empty list");
    return x;
  }
}

interface Seed {
  readonly kind: "request" | "reply";
  readonly bytes: Uint8Array;
  readonly config: SampleConfig;
  /** For replies: the decoded request they answer. */
  readonly request: FuseRequest | undefined;
}

const CONFIGS: SampleConfig[] = [
  { minor: 45, flags: InitFlags.parse(InitFlags.bits.map(([, n]) => n)) },
  { minor: 38, flags: LINUX_6_1_FLAGS },
  { minor: 36, flags: LINUX_6_1_FLAGS },
  { minor: 8, flags: 0n },
];

function corpus(): Seed[] {
  const out: Seed[] = [];
  for (const config of CONFIGS) {
    for (const s of fuseSamples(config)) {
      const bytes = encodeRequest(s.request, sessionFor(config));
      const request = decodeRequest(bytes, sessionFor(config));
      out.push({ kind: "request", bytes, config, request: undefined });
      for (const r of s.replies) {
        out.push({
          kind: "reply",
          bytes: encodeReply(r, request, sessionFor(config)),
          config,
          request,
        });
      }
    }
    for (const n of notifySamples(config.minor)) {
      out.push({
        kind: "reply",
        bytes: encodeReply(n.reply, undefined, sessionFor(config)),
        config,
        request: undefined,
      });
    }
  }
  return out;
}

const INTERESTING = [
  0,
  1,
  2,
  7,
  8,
  9,
  16,
  24,
  31,
  32,
  33,
  255,
  1024,
  1025,
  0x7fff_ffff,
  0x8000_0000,
  0xffff_ffff,
];

/** A mutated message and the length a capture record would claim for it. */
interface Mutant {
  readonly bytes: Uint8Array;
  /** Set for capture cuts: decode with `{ truncatedFrom }`. */
  readonly truncatedFrom: number | undefined;
}

/**
 * Sometimes cuts `b` as a capture's snap length does, claiming its length
 * (usually the truth, sometimes a lie); sometimes passes the option uncut.
 */
function captureCut(rng: Rng, b: Uint8Array): Mutant {
  const r = rng.below(10);
  if (r >= 3) return { bytes: b, truncatedFrom: undefined };
  if (r === 2) return { bytes: b, truncatedFrom: b.byteLength };
  const cut = b.slice(0, rng.below(b.byteLength + 1));
  const claim = rng.chance(0.85)
    ? b.byteLength
    : rng.pick([0, cut.byteLength, cut.byteLength + 1, b.byteLength + 1, rng.u32(), NaN, 0.5]);
  return { bytes: cut, truncatedFrom: claim };
}

function mutate(rng: Rng, seed: Seed): Uint8Array {
  let b = seed.bytes.slice();
  const rounds = 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    switch (rng.below(9)) {
      case 0: // bit flips
        for (let k = 1 + rng.below(4); k > 0 && b.byteLength > 0; k--) {
          const i = rng.below(b.byteLength);
          b[i] = (b[i] ?? 0) ^ (1 << rng.below(8));
        }
        break;
      case 1: // a random byte
        if (b.byteLength > 0) b[rng.below(b.byteLength)] = rng.below(256);
        break;
      case 2: // truncation
        b = b.slice(0, rng.below(b.byteLength + 1));
        break;
      case 3: { // extension
        const more = new Uint8Array(1 + rng.below(64)).map(() =>
          rng.chance(0.5) ? 0 : rng.below(256)
        );
        const c = new Uint8Array(b.byteLength + more.byteLength);
        c.set(b);
        c.set(more, b.byteLength);
        b = c;
        break;
      }
      case 4: // len lies
        if (b.byteLength >= 4) {
          v.setUint32(0, rng.chance(0.5) ? b.byteLength + rng.below(17) - 8 : rng.u32(), true);
        }
        break;
      case 5: { // an interesting u32 at an aligned offset (counts, sizes, namelens)
        if (b.byteLength >= 8) {
          const at = 4 * rng.below(b.byteLength >> 2);
          v.setUint32(
            at,
            rng.chance(0.7) ? rng.pick(INTERESTING) : rng.below(b.byteLength * 2),
            true,
          );
        }
        break;
      }
      case 6: // request: total_extlen / opcode; reply: error / unique
        if (seed.kind === "request" && b.byteLength >= 40) {
          if (rng.chance(0.5)) {
            v.setUint16(36, rng.chance(0.5) ? rng.below(8) : rng.below(0x10000), true);
          } else {v.setUint32(
              4,
              rng.chance(0.8) ? rng.below(60) : rng.pick([4096, 0x1a000000, rng.u32()]),
              true,
            );}
        } else if (b.byteLength >= 16) {
          if (rng.chance(0.5)) {
            v.setInt32(4, rng.chance(0.5) ? -rng.below(600) : rng.below(12), true);
          } else v.setBigUint64(8, rng.chance(0.5) ? 0n : BigInt(rng.u32()), true);
        }
        break;
      case 7: // zero a stretch (NULs in names, zero counts)
        if (b.byteLength > 0) {
          const i = rng.below(b.byteLength);
          b.fill(0, i, i + 1 + rng.below(8));
        }
        break;
      case 8: // 0xff a stretch (names without NUL, huge sizes)
        if (b.byteLength > 0) {
          const i = rng.below(b.byteLength);
          b.fill(0xff, i, i + 1 + rng.below(8));
        }
        break;
    }
  }
  // Usually keep len honest so decoding gets past the header.
  if (b.byteLength >= 4 && rng.chance(0.7)) {
    new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(0, b.byteLength, true);
  }
  return b;
}

function segment(rng: Rng, b: Uint8Array): Uint8Array | Uint8Array[] {
  if (rng.chance(0.5)) return b;
  const cuts = Array.from({ length: rng.below(5) }, () => rng.below(b.byteLength + 1)).sort((
    x,
    y,
  ) => x - y);
  const out: Uint8Array[] = [];
  let p = 0;
  for (const c of [...cuts, b.byteLength]) {
    out.push(b.subarray(p, c));
    p = c;
  }
  return out;
}

function sessionOf(rng: Rng, config: SampleConfig): FuseSession {
  // Also decode under the wrong or unknown state: flags unknown, other minors.
  switch (rng.below(4)) {
    case 0:
      return new FuseSession();
    case 1:
      return new FuseSession({ minor: rng.pick([7, 12, 23, 36, 37, 38, 45]) });
    default:
      return sessionFor(config);
  }
}

/**
 * Runs 300000 inputs by default; the test and `deno task fuzz` call it.
 * Throws (AssertionError or the unexpected error, with the input) on the first failure.
 */
export function fuzzFuse(seed: number, iterations: number): number {
  const rng = new Rng(seed);
  const seeds = corpus();
  const requests = seeds.filter((s) => s.request !== undefined).map((s) =>
    s.request as FuseRequest
  );
  const N = iterations;
  let decoded = 0;
  let rejected = 0;
  let cut = 0;
  const failures: string[] = [];
  const fail = (what: string, i: number, e: unknown, input: Uint8Array | Uint8Array[]) => {
    if (failures.length < 5) {
      const bytes = input instanceof Uint8Array
        ? input
        : Uint8Array.from(input.flatMap((s) => [...s]));
      failures.push(`#${i} ${what}: ${String(e)}\n  input ${hexBytes(bytes)}`);
    }
  };
  for (let i = 0; i < N; i++) {
    const seed = rng.pick(seeds);
    const m = captureCut(rng, mutate(rng, seed));
    const input = segment(rng, m.bytes);
    const options = m.truncatedFrom === undefined ? undefined : { truncatedFrom: m.truncatedFrom };
    const session = sessionOf(rng, seed.config);
    const pairing: FuseRequest | number | undefined = seed.kind === "request"
      ? undefined
      : rng.chance(0.6)
      ? seed.request
      : rng.chance(0.3)
      ? (seed.request?.header.opcode ?? rng.below(60))
      : rng.chance(0.5)
      ? rng.pick(requests)
      : undefined;
    let rec;
    try {
      rec = seed.kind === "request"
        ? decodeRequest(input, session, options)
        : decodeReply(input, pairing, session, options);
      decoded++;
      if (rec.truncated !== undefined) cut++;
      // A cut is reported exactly when the bytes fall short of the header's len.
      const want = rec.truncated?.want ?? m.bytes.byteLength;
      if (
        rec.header.len !== want ||
        (rec.truncated !== undefined && rec.truncated.have !== m.bytes.byteLength) ||
        (rec.truncated !== undefined && !(rec.truncated.have < want))
      ) {
        fail("truncation marker", i, JSON.stringify(rec.truncated), input);
      }
    } catch (e) {
      if (!(e instanceof DecodeError) || e.message.includes("internal")) {
        fail("decode", i, e, input);
      }
      rejected++;
      continue;
    }
    // A cut record is a partial view, not a message: only whole ones must re-encode.
    if (rec.truncated !== undefined) continue;
    // Whatever decodes must re-encode (or be refused with EncodeError), and decode again.
    try {
      const again = seed.kind === "request"
        ? decodeRequest(
          encodeRequest(rec as FuseRequest, new FuseSession({ minor: session.minor })),
          new FuseSession({ minor: session.minor }),
        )
        : undefined;
      if (again !== undefined) {
        assert.equal(again.header.opcode, (rec as FuseRequest).header.opcode);
      }
      if (seed.kind === "reply" && "entries" in rec) {
        const s2 = new FuseSession({ minor: session.minor });
        decodeReply(
          encodeReply(rec, pairing, s2),
          pairing,
          new FuseSession({ minor: session.minor }),
        );
      }
    } catch (e) {
      if (!(e instanceof EncodeError)) fail("re-encode", i, e, input);
    }
  }
  assert.deepEqual(failures, []);
  // Both outcomes must be common, or the mutations are too weak or too strong.
  assert.ok(decoded > N / 10, `only ${decoded} decoded`);
  assert.ok(rejected > N / 10, `only ${rejected} rejected`);
  assert.ok(cut > N / 100, `only ${cut} cut messages decoded`);
  return N;
}
