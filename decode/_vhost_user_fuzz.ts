/**
 * The randomized test of vhost_user_fuzz as a function of its seed and input count.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DecodeError, hexBytes } from "./struct.ts";
import {
  type Channel,
  decodeMessage,
  type DecodeOptions,
  encodeMessage,
  VHOST_USER_HEADER_SIZE,
} from "./vhost_user.ts";
import { allSamples } from "./_vhost_user_samples.ts";

/** xorshift32: tiny, seedable, and the same on every run. */
class Rng {
  #s: number;
  /** Seeds the generator (0 is replaced, xorshift needs a non-zero state). */
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
    return this.u32() % n;
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)] as T;
  }
}

const INTERESTING_U32 = [
  0,
  1,
  2,
  7,
  8,
  9,
  12,
  31,
  32,
  40,
  0xff,
  0x100,
  0x101,
  0x7fff_ffff,
  0xffff_ffff,
];
const INTERESTING_U64 = [0n, 1n, 0x100n, 0x1ffn, 1n << 63n, (1n << 64n) - 1n];
const FD_COUNTS = [0, 0, 0, 1, 1, 1, 2, 2, 3, 7, 8, 9, 10, -1, 1.5, Number.NaN];

/** Applies one random mutation; may change the length. */
function mutate(rng: Rng, b: Uint8Array): Uint8Array {
  const v = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset, x.byteLength);
  switch (rng.below(9)) {
    case 0: { // one random byte
      if (b.byteLength) b[rng.below(b.byteLength)] = rng.below(256);
      return b;
    }
    case 1: { // one bit
      if (b.byteLength) b[rng.below(b.byteLength)]! ^= 1 << rng.below(8);
      return b;
    }
    case 2: // truncate
      return b.slice(0, rng.below(b.byteLength + 1));
    case 3: { // append garbage
      const extra = Uint8Array.from({ length: 1 + rng.below(64) }, () => rng.below(256));
      const out = new Uint8Array(b.byteLength + extra.byteLength);
      out.set(b);
      out.set(extra, b.byteLength);
      return out;
    }
    case 4: // header size: near the truth or anything
      if (b.byteLength >= 12) {
        const size = v(b).getUint32(8, true);
        v(b).setUint32(
          8,
          rng.below(2) ? (size + rng.below(17) - 8) >>> 0 : rng.pick(INTERESTING_U32),
          true,
        );
      }
      return b;
    case 5: // request number: neighbours, unknown, huge
      if (b.byteLength >= 4) {
        v(b).setUint32(0, rng.below(3) ? rng.below(50) : rng.pick(INTERESTING_U32), true);
      }
      return b;
    case 6: // flags
      if (b.byteLength >= 8) v(b).setUint32(4, rng.below(3) ? rng.below(16) : rng.u32(), true);
      return b;
    case 7: // an interesting u32 in the payload
      if (b.byteLength >= VHOST_USER_HEADER_SIZE + 4) {
        const at = VHOST_USER_HEADER_SIZE +
          4 * rng.below((b.byteLength - VHOST_USER_HEADER_SIZE) >> 2);
        v(b).setUint32(at, rng.pick(INTERESTING_U32), true);
      }
      return b;
    default: // an interesting u64 in the payload
      if (b.byteLength >= VHOST_USER_HEADER_SIZE + 8) {
        const at = VHOST_USER_HEADER_SIZE +
          8 * rng.below((b.byteLength - VHOST_USER_HEADER_SIZE) >> 3);
        v(b).setBigUint64(at, rng.pick(INTERESTING_U64), true);
      }
      return b;
  }
}

/**
 * Runs 300000 inputs by default; the test and `deno task fuzz` call it.
 * Throws (AssertionError or the unexpected error, with the input) on the first failure.
 */
export function fuzzVhostUser(seed: number, iterations: number): number {
  const SEED = seed;
  const ITERATIONS = iterations;
  const rng = new Rng(SEED);
  const corpus = allSamples().map((s) => ({
    bytes: encodeMessage({
      channel: s.channel,
      request: s.spec.name,
      isReply: s.isReply,
      payload: s.payload,
    }),
    channel: s.channel,
    fdCount: s.fdCount,
  }));
  const channels: readonly Channel[] = ["frontend", "backend"];
  let decoded = 0;
  let rejected = 0;
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    const base = rng.pick(corpus);
    let bytes: Uint8Array = base.bytes.slice();
    const rounds = 1 + rng.below(3);
    for (let r = 0; r < rounds; r++) bytes = mutate(rng, bytes);
    // Keep the right fd count and channel often enough to reach deep checks.
    const fdCount = rng.below(2) ? base.fdCount : rng.pick(FD_COUNTS);
    const options: DecodeOptions = {
      channel: rng.below(8) ? base.channel : rng.pick(channels),
      dialect: rng.pick(["auto", "current", "virtio-fs-dax"] as const),
      unknown: rng.below(4) ? "raw" : "error",
      fds: rng.below(4) ? "error" : "report",
    };
    let m;
    try {
      m = decodeMessage(bytes, fdCount, options);
    } catch (e) {
      if (!(e instanceof DecodeError)) {
        assert.fail(
          `seed ${SEED} iteration ${i}: ${String(e)} for ${hexBytes(bytes)} fds=${fdCount} ` +
            JSON.stringify(options),
        );
      }
      rejected++;
      continue;
    }
    decoded++;
    // Whatever decodes re-encodes to exactly the same bytes.
    assert.deepEqual(encodeMessage(m), bytes, `seed ${SEED} iteration ${i}: ${hexBytes(bytes)}`);
  }
  const ms = performance.now() - started;
  // Both outcomes must be common, or the mutations are too weak or too strong.
  assert.ok(decoded > ITERATIONS / 20, `only ${decoded} decoded`);
  assert.ok(rejected > ITERATIONS / 4, `only ${rejected} rejected`);
  console.log(
    `  ${ITERATIONS} inputs in ${ms.toFixed(0)} ms: ${decoded} decoded, ${rejected} DecodeError`,
  );
  return iterations;
}
