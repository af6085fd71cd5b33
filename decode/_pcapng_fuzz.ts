/**
 * The randomized test of pcapng_fuzz as a function of its seed and input count.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DecodeError, hexBytes } from "./struct.ts";
import {
  decodeBlock,
  decodeBlocks,
  decodeCapture,
  encodeInterfaceDescription,
  MAX_RECORD_BODY,
  PCAPNG_BLOCK,
  PcapngDecodeError,
  PcapngRecordVersionError,
  RECORD_MAGIC,
  RecordFlag,
  RecordKind,
} from "./pcapng.ts";
import {
  bigWrite,
  buildCapture,
  concat,
  mutateBlocks,
  Rng,
  sampleRecords,
  sampleWithChains,
} from "./_pcapng_samples.ts";

const INTERESTING_U32 = [
  0,
  1,
  4,
  8,
  12,
  28,
  32,
  56,
  0x7ffffffc,
  0xfffffffc,
  0xffffffff,
  PCAPNG_BLOCK.SHB,
  PCAPNG_BLOCK.EPB,
  0x4d3c2b1a,
];

/**
 * A small valid capture: a few records, sometimes an extra block type or
 * section; every other one with record chains of small parts (cheap to
 * mutate, and every chain rule in reach).
 */
function corpusEntry(rng: Rng, i: number): Uint8Array {
  const records = i % 2
    ? sampleWithChains(1 + rng.below(8), i + 1, 600).packets
    : sampleRecords(1 + rng.below(8), i + 1, 600);
  const { bytes } = buildCapture(records);
  switch (rng.below(4)) {
    case 0:
      return concat([bytes, buildCapture(sampleRecords(2, i + 99, 100)).bytes]);
    case 1:
      return concat([bytes, encodeInterfaceDescription({ linkType: 1 })]);
    default:
      return bytes;
  }
}

/** Applies one random mutation; may change the length. */
function mutate(rng: Rng, b: Uint8Array, corpus: readonly Uint8Array[]): Uint8Array {
  const v = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset, x.byteLength);
  const aligned = () => 4 * rng.below(Math.max(1, b.byteLength >> 2));
  switch (rng.below(11)) {
    case 10: // whole packets lost, repeated or reordered (breaks chains cleanly)
      return mutateBlocks(rng, b);
    case 0: // one random byte
      if (b.byteLength) b[rng.below(b.byteLength)] = rng.below(256);
      return b;
    case 1: // one bit
      if (b.byteLength) b[rng.below(b.byteLength)]! ^= 1 << rng.below(8);
      return b;
    case 2: // truncate
      return b.slice(0, rng.below(b.byteLength + 1));
    case 3: { // insert garbage anywhere
      const at = rng.below(b.byteLength + 1);
      return concat([b.subarray(0, at), rng.bytes(1 + rng.below(40)), b.subarray(at)]);
    }
    case 4: { // delete a range
      const at = rng.below(b.byteLength + 1);
      return concat([
        b.subarray(0, at),
        b.subarray(Math.min(b.byteLength, at + 1 + rng.below(64))),
      ]);
    }
    case 5: // an interesting u32 at an aligned spot (lengths, types, magics)
      if (b.byteLength >= 4) v(b).setUint32(aligned(), rng.pick(INTERESTING_U32), true);
      return b;
    case 6: // a length field near the truth
      if (b.byteLength >= 8) {
        const a = aligned();
        const at = a + 8 <= b.byteLength ? a : 0;
        const len = v(b).getUint32(at + 4, true);
        v(b).setUint32(at + 4, (len + 4 * (rng.below(9) - 4)) >>> 0, true);
      }
      return b;
    case 7: // splice two captures (a new section mid-file, or garbage)
      return concat([b.subarray(0, rng.below(b.byteLength + 1)), rng.pick(corpus)]);
    case 8: // a record magic where it does not belong
      if (b.byteLength >= 2) v(b).setUint16(rng.below(b.byteLength - 1), RECORD_MAGIC, true);
      return b;
    default: { // duplicate a random stretch
      const at = rng.below(b.byteLength + 1);
      const n = rng.below(200);
      return concat([b.subarray(0, at), b.subarray(at, at + n), b.subarray(at)]);
    }
  }
}

function expectDecodeError(e: unknown, context: string): PcapngDecodeError {
  if (!(e instanceof PcapngDecodeError) || !(e instanceof DecodeError)) {
    assert.fail(`${context}: threw ${String(e)}`);
  }
  return e;
}

/**
 * Runs 120000 inputs by default; the test and `deno task fuzz` call it.
 * Throws (AssertionError or the unexpected error, with the input) on the first failure.
 */
export function fuzzPcapng(seed: number, iterations: number): number {
  const SEED = seed;
  const ITERATIONS = iterations;
  const rng = new Rng(SEED);
  const corpus = Array.from({ length: 24 }, (_, i) => corpusEntry(rng, i));
  // And one chain as the writer splits it: a full first packet and a short continuation.
  corpus.push(buildCapture([bigWrite(0, MAX_RECORD_BODY - 80 + 333), { kind: 4, seq: 2 }]).bytes);
  const outcome = {
    clean: 0,
    truncated: 0,
    error: 0,
    recovered: 0,
    records: 0,
    chains: 0,
    badChain: 0,
  };
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) {
    let bytes: Uint8Array = rng.pick(corpus).slice();
    const rounds = 1 + rng.below(3);
    for (let r = 0; r < rounds; r++) bytes = mutate(rng, bytes, corpus);
    const context = `seed ${SEED} iteration ${i} (${bytes.byteLength} bytes)`;
    try {
      const strict = decodeCapture(bytes);
      const blocks = decodeBlocks(bytes);
      if (strict.error !== undefined) {
        expectDecodeError(strict.error, context);
        outcome.error++;
        if (strict.error.reason === "bad-chain") outcome.badChain++;
      } else if (strict.truncatedAt !== undefined) outcome.truncated++;
      else outcome.clean++;
      if (blocks.error !== undefined) expectDecodeError(blocks.error, context);
      outcome.records += strict.records.length;
      for (const r of strict.records) {
        // Reassembled: no chain packet shows through.
        assert.notEqual(r.kind, RecordKind.CONTINUATION, context);
        assert.equal(r.flags & RecordFlag.CONTINUED, 0, context);
        if (r.continuations > 0) outcome.chains++;
      }
      if (i % 4 === 1) {
        // Raw mode never judges chains.
        const raw = decodeCapture(bytes, { raw: true });
        assert.notEqual(raw.error?.reason, "bad-chain", context);
        assert.ok(raw.records.every((r) => r.continuations === 0), context);
      }
      if (i % 2 === 0) {
        const rec = decodeCapture(bytes, { recover: true });
        if (rec.recoveries.length) outcome.recovered++;
        // Recovery changes nothing before the first problem.
        assert.ok(rec.records.length >= strict.records.length, context);
        for (let k = 0; k < strict.records.length; k++) {
          assert.equal(rec.records[k]!.offset, strict.records[k]!.offset, context);
        }
        // Recovery stops only for a big-endian section or a first record of another version.
        if (rec.error !== undefined) {
          assert.ok(
            rec.error.reason === "big-endian" || rec.error instanceof PcapngRecordVersionError,
            `${context}: ${rec.error.message}`,
          );
        }
        for (const r of rec.records) assert.ok(r.body.byteLength <= r.originalLength, context);
        // Stretches are in file order and do not overlap (chain remains fold into one).
        for (let k = 1; k < rec.recoveries.length; k++) {
          assert.ok(rec.recoveries[k]!.offset >= rec.recoveries[k - 1]!.resumedAt, context);
        }
      }
      // The stateless block decoder at arbitrary aligned offsets.
      const at = 4 * rng.below((bytes.byteLength >> 2) + 1);
      try {
        decodeBlock(bytes, at);
      } catch (e) {
        expectDecodeError(e, `${context} decodeBlock at ${at}`);
      }
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.fail(`${context}: ${String(e)} for ${hexBytes(bytes.subarray(0, 256))}`);
    }
  }
  const ms = performance.now() - started;
  // Every outcome must be common, or the mutations are too weak or too strong.
  assert.ok(outcome.clean > ITERATIONS / 50, JSON.stringify(outcome));
  assert.ok(outcome.truncated > ITERATIONS / 20, JSON.stringify(outcome));
  assert.ok(outcome.error > ITERATIONS / 4, JSON.stringify(outcome));
  assert.ok(outcome.recovered > ITERATIONS / 10, JSON.stringify(outcome));
  assert.ok(outcome.chains > ITERATIONS / 10, JSON.stringify(outcome));
  assert.ok(outcome.badChain > ITERATIONS / 50, JSON.stringify(outcome));
  console.log(`  ${ITERATIONS} inputs in ${ms.toFixed(0)} ms: ${JSON.stringify(outcome)}`);
  return iterations;
}
