/**
 * The randomized test of reader_fuzz as a function of its seed and input count.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CaptureReader,
  CaptureReadError,
  type CaptureRecord,
  decodeCapture,
  PCAPNG_BLOCK,
  type ReadSource,
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RECORD_VERSION,
} from "./mod.ts";
import {
  bigWrite,
  buildCapture,
  concat,
  mutateBlocks,
  Rng,
  sampleRecords,
  sampleWithChains,
} from "../decode/_pcapng_samples.ts";
import { hexBytes } from "../decode/struct.ts";

/** Serves `bytes` in reads of random size (1 to `maxRead`). */
class MemorySource implements ReadSource {
  #bytes: Uint8Array;
  #pos = 0;
  #rng: Rng;
  #max: number;
  constructor(bytes: Uint8Array, rng: Rng, maxRead: number) {
    this.#bytes = bytes;
    this.#rng = rng;
    this.#max = maxRead;
  }
  read(p: Uint8Array): Promise<number | null> {
    const left = this.#bytes.byteLength - this.#pos;
    if (left === 0) return Promise.resolve(null);
    const n = Math.min(p.byteLength, left, 1 + this.#rng.below(this.#max));
    p.set(this.#bytes.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return Promise.resolve(n);
  }
}

function mutate(rng: Rng, b: Uint8Array): Uint8Array {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (rng.below(8)) {
    case 7: // whole packets lost, repeated or reordered (breaks chains cleanly)
      return mutateBlocks(rng, b);
    case 0:
      if (b.byteLength) b[rng.below(b.byteLength)] = rng.below(256);
      return b;
    case 1:
      return b.slice(0, rng.below(b.byteLength + 1));
    case 2: {
      const at = rng.below(b.byteLength + 1);
      return concat([b.subarray(0, at), rng.bytes(1 + rng.below(300)), b.subarray(at)]);
    }
    case 3:
      if (b.byteLength >= 8) {
        const at = 4 * rng.below((b.byteLength >> 2) - 1);
        v.setUint32(at, rng.pick([0, 8, 13, 64, 0xfffffffc, PCAPNG_BLOCK.EPB]), true);
      }
      return b;
    case 4: {
      // A fake EPB header with a record magic, to tempt the resynchroniser.
      const fake = new Uint8Array(28 + RECORD_HEADER_SIZE);
      const f = new DataView(fake.buffer);
      f.setUint32(0, PCAPNG_BLOCK.EPB, true);
      f.setUint32(4, 32 + 4 * rng.below(200), true);
      f.setUint32(20, RECORD_HEADER_SIZE, true);
      f.setUint32(24, RECORD_HEADER_SIZE, true);
      f.setUint16(28, RECORD_MAGIC, true);
      f.setUint8(30, RECORD_VERSION);
      const at = rng.below(b.byteLength + 1);
      return concat([b.subarray(0, at), fake, b.subarray(at)]);
    }
    case 5: {
      const at = rng.below(b.byteLength + 1);
      return concat([b.subarray(0, at), b.subarray(Math.min(b.byteLength, at + rng.below(500)))]);
    }
    default:
      if (b.byteLength) b.fill(rng.below(256), rng.below(b.byteLength), rng.below(b.byteLength));
      return b;
  }
}

interface Outcome {
  offsets: number[];
  /** Body length and continuations of each record. */
  shapes: string[];
  truncatedAt: number | undefined;
  error: string | undefined;
  recoveries: string[];
}

async function viaReader(
  bytes: Uint8Array,
  rng: Rng,
  recover: boolean,
  raw: boolean,
): Promise<Outcome> {
  const chunkSize = rng.pick([4096, 8192, 65536]);
  // Byte-sized reads of the big sample would only cost time: its blocks span chunks anyway.
  const reads = bytes.byteLength > 65536 ? [500, 70000] : [1, 13, 500, 70000];
  const reader = new CaptureReader(new MemorySource(bytes, rng, rng.pick(reads)), {
    chunkSize,
    recover,
    raw,
  });
  const offsets: number[] = [];
  const shapes: string[] = [];
  let error: string | undefined;
  try {
    for await (const r of reader) {
      offsets.push(r.offset);
      shapes.push(`${r.body.byteLength}/${r.continuations}`);
    }
  } catch (e) {
    if (!(e instanceof CaptureReadError)) throw e;
    error = `${e.reason}@${e.offset}`;
  }
  return {
    offsets,
    shapes,
    truncatedAt: error === undefined ? reader.truncatedAt : undefined,
    error,
    recoveries: reader.recoveries.map((r) => `${r.reason}@${r.offset}-${r.resumedAt}`),
  };
}

function viaBuffer(bytes: Uint8Array, recover: boolean, raw: boolean): Outcome {
  const d = decodeCapture(bytes, { recover, raw });
  return {
    offsets: d.records.map((r: CaptureRecord) => r.offset),
    shapes: d.records.map((r) => `${r.body.byteLength}/${r.continuations}`),
    truncatedAt: d.error === undefined ? d.truncatedAt : undefined,
    error: d.error === undefined ? undefined : `${d.error.reason}@${d.error.offset}`,
    recoveries: d.recoveries.map((r) => `${r.reason}@${r.offset}-${r.resumedAt}`),
  };
}

/**
 * Runs 20000 inputs by default; the test and `deno task fuzz` call it.
 * Throws (AssertionError or the unexpected error, with the input) on the first failure.
 */
export async function fuzzReader(seed: number, iterations: number): Promise<number> {
  const SEED = seed;
  const ITERATIONS = iterations;
  const rng = new Rng(SEED);
  // Half with record chains of small parts; and one with a chain as the writer splits it.
  const corpus = Array.from(
    { length: 16 },
    (_, i) =>
      buildCapture(
        i % 2
          ? sampleWithChains(3 + rng.below(20), i + 1, 3000).packets
          : sampleRecords(3 + rng.below(20), i + 1, 3000),
      ).bytes,
  );
  corpus.push(buildCapture([...sampleRecords(3, 99), { ...bigWrite(3, 300_000), seq: 3 }]).bytes);
  let errors = 0;
  let recovered = 0;
  let chainErrors = 0;
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    let bytes: Uint8Array = rng.pick(corpus).slice();
    const rounds = 1 + rng.below(3);
    for (let r = 0; r < rounds; r++) bytes = mutate(rng, bytes);
    const recover = rng.below(2) === 0;
    const raw = rng.below(8) === 0;
    const context = `seed ${SEED} iteration ${i} recover=${recover} raw=${raw}`;
    let got: Outcome;
    try {
      got = await viaReader(bytes, rng, recover, raw);
    } catch (e) {
      assert.fail(`${context}: threw ${String(e)} for ${hexBytes(bytes.subarray(0, 200))}`);
    }
    const want = viaBuffer(bytes, recover, raw);
    assert.deepEqual(got, want, context);
    if (want.error !== undefined) errors++;
    if (
      want.error?.startsWith("bad-chain") || want.recoveries.some((r) => r.startsWith("bad-chain"))
    ) {
      chainErrors++;
    }
    if (want.recoveries.length) recovered++;
  }
  const ms = performance.now() - started;
  assert.ok(errors > ITERATIONS / 10, `${errors} errors`);
  assert.ok(recovered > ITERATIONS / 10, `${recovered} recovered`);
  assert.ok(chainErrors > ITERATIONS / 50, `${chainErrors} with broken chains`);
  console.log(
    `  ${ITERATIONS} inputs in ${ms.toFixed(0)} ms: ${errors} errors, ${recovered} recovered, ` +
      `${chainErrors} with broken chains`,
  );
  return iterations;
}
