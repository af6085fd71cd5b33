/**
 * Test material for the capture format: a seedable RNG, realistic records
 * of every kind, and whole capture buffers built from them. Used by the
 * pcapng tests, the capture tests and the capture benchmark.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CaptureRecord,
  decodeBlocks,
  encodeEnhancedPacket,
  encodeInterfaceDescription,
  encodeNote,
  encodeRecord,
  encodeSectionHeader,
  HEAD_NONE,
  MAX_CHAINED_BODY,
  MAX_RECORD_BODY,
  NotifyDirection,
  packRequestAux,
  QUEUE_NONE,
  RECORD_MAGIC,
  RecordFlag,
  type RecordInput,
  RecordKind,
  recordStream,
  residenceField,
  Stream,
  STREAM_OF_CHAIN,
  StreamInterfaces,
  VhostUserDirection,
} from "./pcapng.ts";

/** xorshift32: tiny, seedable, and the same on every run. */
export class Rng {
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
    return this.u32() % n;
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)] as T;
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

function fuseInHeader(len: number, opcode: number, unique: bigint, nodeid: bigint): Uint8Array {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  v.setUint32(0, len, true);
  v.setUint32(4, opcode, true);
  v.setBigUint64(8, unique, true);
  v.setBigUint64(16, nodeid, true);
  v.setUint32(24, 1000, true);
  v.setUint32(28, 1000, true);
  v.setUint32(32, 4242, true);
  return b;
}

function fuseOutHeader(len: number, error: number, unique: bigint): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, len, true);
  v.setInt32(4, error, true);
  v.setBigUint64(8, unique, true);
  return b;
}

function vhostUser(request: number, flags: number, payload: Uint8Array): Uint8Array {
  const b = new Uint8Array(12 + payload.byteLength);
  const v = new DataView(b.buffer);
  v.setUint32(0, request, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, payload.byteLength, true);
  b.set(payload, 12);
  return b;
}

/** Epoch ns the samples start at (2026-11-25, a value above 2^53 like real ones). */
export const SAMPLE_EPOCH_NS = 1_795_617_855_723_316_700n;

/**
 * `count` records cycling through every kind and direction, with bodies of
 * random size up to `maxBody` (FUSE data), explicit timestamps and seqs.
 */
export function sampleRecords(count: number, seed = 1, maxBody = 8192): RecordInput[] {
  const rng = new Rng(seed);
  const out: RecordInput[] = [];
  let ts = SAMPLE_EPOCH_NS;
  let unique = 2n;
  for (let i = 0; i < count; i++) {
    ts += BigInt(1 + rng.below(100_000));
    const base = { seq: i, timestampNs: ts };
    switch (i % 8) {
      case 0: // vhost-user request with fds (SET_MEM_TABLE-like)
        out.push({
          ...base,
          kind: RecordKind.VHOST_USER,
          direction: VhostUserDirection.FRONTEND_TO_BACKEND,
          fdCount: rng.below(9),
          body: vhostUser(5, 1, rng.bytes(8 + 32 * rng.below(9))),
        });
        break;
      case 1: // vhost-user reply or backend channel traffic
        out.push({
          ...base,
          kind: RecordKind.VHOST_USER,
          direction: rng.pick([
            VhostUserDirection.BACKEND_TO_FRONTEND,
            VhostUserDirection.BACKEND_CHANNEL_REQUEST,
            VhostUserDirection.BACKEND_CHANNEL_REPLY,
          ]),
          body: vhostUser(1, 5, rng.bytes(8)),
          flags: rng.below(4) === 0 ? RecordFlag.MALFORMED : 0,
        });
        break;
      case 2:
      case 3: { // FUSE request, sometimes with write data
        const data = rng.below(3) === 0 ? rng.bytes(rng.below(maxBody + 1)) : new Uint8Array(0);
        const args = rng.bytes(8 * rng.below(6));
        const len = 40 + args.byteLength + data.byteLength;
        unique += 2n;
        out.push({
          ...base,
          kind: RecordKind.FUSE_REQUEST,
          queue: 1 + rng.below(2),
          head: rng.below(1024),
          residenceNs: rng.below(4) === 0 ? undefined : rng.below(200_000),
          body: data.byteLength ? [fuseInHeader(len, 16, unique, 1n), args, data] : concat([
            fuseInHeader(len, 3, unique, 1n),
            args,
          ]),
          aux: packRequestAux(2 + rng.below(3), 16 + rng.below(1 << 17)),
        });
        break;
      }
      case 4: { // FUSE reply, paired
        const data = rng.bytes(rng.below(maxBody + 1));
        out.push({
          ...base,
          kind: RecordKind.FUSE_REPLY,
          queue: rng.below(2),
          head: rng.below(1024),
          // Sometimes past the u32 range: stored saturated.
          residenceNs: rng.below(8) === 0 ? 5_000_000_000n : BigInt(rng.below(100_000)),
          flags: RecordFlag.PAIRED,
          body: concat([fuseOutHeader(16 + data.byteLength, 0, unique), data]),
          aux: BigInt(1000 + rng.below(1_000_000)),
        });
        break;
      }
      case 5: // NOTE
        out.push({
          ...base,
          kind: RecordKind.NOTE,
          flags: RecordFlag.SYNTHETIC,
          body: encodeNote({ type: "features_masked", mask: "0x40000000", names: ["LOG_ALL"] }),
          comment: rng.below(2) ? "masked by --hide-features" : undefined,
        });
        break;
      case 6: // NOTIFY with counter
        out.push({
          ...base,
          kind: RecordKind.NOTIFY,
          queue: rng.below(3),
          direction: rng.pick(Object.values(NotifyDirection)),
          body: new Uint8Array(8).fill(1, 0, 1),
          aux: 1 + rng.below(5),
        });
        break;
      default: // NOTIFY without body, no queue
        out.push({
          ...base,
          kind: RecordKind.NOTIFY,
          queue: QUEUE_NONE,
          direction: NotifyDirection.CALL_TO_GUEST,
        });
    }
  }
  return out;
}

/**
 * A FUSE WRITE request as a Linux 6.1 guest sends it: fuse_in_header +
 * fuse_write_in + `size` bytes of data, as segments the way a descriptor
 * chain holds them (header and args, then 4 KiB pages). The default is the
 * 1 MiB write whose fuse_in_header.len is 1048656.
 */
export function bigWrite(seq: number, size = 1 << 20, seed = seq + 1): RecordInput {
  const rng = new Rng(seed);
  const len = 40 + 40 + size;
  const args = new Uint8Array(40);
  const v = new DataView(args.buffer);
  v.setBigUint64(8, BigInt(seed) << 20n, true); // offset
  v.setUint32(16, size, true);
  const pages: Uint8Array[] = [];
  for (let o = 0; o < size; o += 4096) pages.push(rng.bytes(Math.min(4096, size - o)));
  return {
    seq,
    timestampNs: SAMPLE_EPOCH_NS + BigInt(seq) * 1000n,
    kind: RecordKind.FUSE_REQUEST,
    queue: 1,
    head: seq & 0xff,
    residenceNs: 1234 + seq,
    body: [concat([fuseInHeader(len, 16, BigInt(seq) * 2n, 5n), args]), ...pages],
    aux: packRequestAux(2 + pages.length, 16 + 24),
    comment: seed % 2 ? "big write" : undefined,
  };
}

/**
 * A chain written packet by packet, with parts of the given sizes (any
 * size: readers do not require full packets), as raw RecordInputs; and the
 * logical record a reader assembles from them.
 */
export function miniChain(
  seq: number,
  sizes: readonly number[],
  rng: Rng,
  kind: number = RecordKind.FUSE_REPLY,
): { parts: RecordInput[]; logical: RecordInput } {
  const bodies = sizes.map((n) => rng.bytes(n));
  const whole = concat(bodies);
  const base = {
    timestampNs: SAMPLE_EPOCH_NS + BigInt(seq) * 977n,
    queue: 1 + rng.below(2),
    head: rng.below(1024),
  };
  const logical: RecordInput = {
    ...base,
    seq,
    kind,
    flags: RecordFlag.PAIRED,
    body: whole,
    aux: 77,
    residenceNs: 999,
  };
  const parts: RecordInput[] = bodies.map((body, i) => ({
    ...base,
    seq: (seq + i) >>> 0,
    kind: i === 0 ? kind : RecordKind.CONTINUATION,
    flags: (i === 0 ? RecordFlag.PAIRED : 0) | (i < bodies.length - 1 ? RecordFlag.CONTINUED : 0),
    body,
    aux: i === 0 ? 77 : seq,
    residenceNs: i === 0 ? 999 : undefined,
    originalLength: i === 0 ? whole.byteLength : undefined,
  }));
  return { parts, logical };
}

/**
 * Sample records with chains among them: mini chains (small parts, cheap to
 * mutate) every few records. Returns the packets to encode one by one, the
 * logical records a reader yields, and for each logical record its index
 * in `packets`.
 */
export function sampleWithChains(
  count: number,
  seed = 1,
  maxBody = 2000,
): { packets: RecordInput[]; logical: RecordInput[]; firstPacket: number[] } {
  const rng = new Rng(seed ^ 0x5a5a);
  const packets: RecordInput[] = [];
  const logical: RecordInput[] = [];
  const firstPacket: number[] = [];
  let seq = 0;
  for (const r of sampleRecords(count, seed, maxBody)) {
    if (rng.below(4) === 0) {
      const n = 2 + rng.below(4);
      const sizes = Array.from({ length: n }, () => 1 + rng.below(300));
      const c = miniChain(
        seq,
        sizes,
        rng,
        rng.pick([RecordKind.FUSE_REQUEST, RecordKind.FUSE_REPLY]),
      );
      firstPacket.push(packets.length);
      packets.push(...c.parts);
      logical.push(c.logical);
      seq += n;
    }
    const plain = { ...r, seq };
    firstPacket.push(packets.length);
    packets.push(plain);
    logical.push(plain);
    seq++;
  }
  return { packets, logical, firstPacket };
}

/** The SHB options of the samples (a CaptureWriter given them writes the same SHB). */
export const SAMPLE_SECTION = {
  userAppl: "vfstrace test",
  os: "Linux test",
  hardware: "x86_64",
} as const;

/**
 * A file header for hand-built captures: the SHB and one IDB, interface 0
 * named `vfstrace` (any record may go on it: records say their stream).
 */
export function sampleHeader(): Uint8Array {
  return concat([
    encodeSectionHeader(SAMPLE_SECTION),
    encodeInterfaceDescription({ description: "test capture" }),
  ]);
}

/**
 * A whole capture laid out as CaptureWriter lays it out (records with
 * explicit seqs and timestamps give the same bytes): the SHB, then each
 * record's EPBs on its stream's interface, a stream's IDB right before its
 * first record (a CONTINUATION given as is goes on the previous record's
 * stream). Also each record's first EPB offset.
 */
export function buildCapture(records: readonly RecordInput[]): {
  bytes: Uint8Array;
  starts: number[];
} {
  const parts = [encodeSectionHeader(SAMPLE_SECTION)];
  const ifaces = new StreamInterfaces();
  const starts: number[] = [];
  let off = parts[0]!.byteLength;
  let last: number = Stream.VFSTRACE;
  for (const r of records) {
    let stream = recordStream(r.kind, r.direction ?? 0, r.queue ?? QUEUE_NONE);
    if (stream === STREAM_OF_CHAIN) stream = last;
    last = stream;
    if (ifaces.idOf(stream) < 0) {
      const idb = ifaces.block(stream);
      parts.push(idb);
      off += idb.byteLength;
      ifaces.add(stream);
    }
    const b = encodeRecord({ ...r, interfaceId: ifaces.idOf(stream) });
    starts.push(off);
    off += b.byteLength;
    parts.push(b);
  }
  return { bytes: concat(parts), starts };
}

/** The streams of `records` in the order buildCapture and CaptureWriter give them interfaces. */
export function sampleStreams(records: readonly RecordInput[]): number[] {
  const out: number[] = [];
  let last: number = Stream.VFSTRACE;
  for (const r of records) {
    let stream = recordStream(r.kind, r.direction ?? 0, r.queue ?? QUEUE_NONE);
    if (stream === STREAM_OF_CHAIN) stream = last;
    last = stream;
    if (!out.includes(stream)) out.push(stream);
  }
  return out;
}

/**
 * A capture of the version-1 format (vfstrace before the 32-byte header):
 * one IDB, `n` NOTIFY records with 24-byte record headers.
 */
export function versionOneCapture(n: number): Uint8Array {
  const parts = [sampleHeader()];
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(24 + 8);
    const v = new DataView(data.buffer);
    v.setUint16(0, RECORD_MAGIC, true);
    v.setUint8(2, 1);
    v.setUint8(3, RecordKind.NOTIFY);
    v.setUint16(6, 1, true);
    v.setUint32(12, i, true);
    parts.push(encodeEnhancedPacket({ timestamp: BigInt(i), data }));
  }
  return concat(parts);
}

/** Body of a record input as one array. */
export function bodyOf(r: RecordInput): Uint8Array {
  const b = r.body;
  if (b === undefined) return new Uint8Array(0);
  return b instanceof Uint8Array ? b : concat(b);
}

/**
 * Asserts that decoded `got` carries exactly what `want` asked for, a
 * chain reassembled (`continuations` as the encoder splits a body; pass
 * `continuations` for chains written part by part).
 */
export function assertRecord(
  got: CaptureRecord,
  want: RecordInput,
  limit?: number,
  continuations?: number,
): void {
  const body = bodyOf(want);
  const cap = Math.min(body.byteLength, limit ?? MAX_CHAINED_BODY, MAX_CHAINED_BODY);
  const original = want.originalLength ?? body.byteLength;
  assert.equal(
    got.continuations,
    continuations ?? (cap > MAX_RECORD_BODY ? Math.ceil(cap / MAX_RECORD_BODY) - 1 : 0),
  );
  assert.equal(got.kind, want.kind);
  assert.equal(got.seq, want.seq ?? 0);
  assert.equal(got.timestampNs, want.timestampNs ?? 0n);
  assert.equal(
    got.flags,
    (want.flags ?? 0) | (cap < original ? RecordFlag.TRUNCATED : 0),
  );
  assert.equal(got.queue, want.queue ?? QUEUE_NONE);
  assert.equal(got.fdCount, want.fdCount ?? 0);
  assert.equal(got.direction, want.direction ?? 0);
  assert.equal(got.head, want.head ?? HEAD_NONE);
  assert.equal(
    got.residenceNs,
    want.residenceNs === undefined ? undefined : residenceField(want.residenceNs),
  );
  assert.equal(got.aux, BigInt(want.aux ?? 0));
  // Byte-wise, without building a diff of megabytes on failure.
  assert.equal(got.body.byteLength, cap);
  const at = firstDifference(got.body, body);
  assert.equal(at, -1, `body differs at byte ${at}`);
  assert.equal(got.originalLength, original);
  assert.equal(got.comment, want.comment);
}

/** Index of the first byte where `a` differs from `b` (over `a`'s length), or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.byteLength > b.byteLength) return b.byteLength;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * Whole-block damage, as a lossy copy would do it: drops, duplicates or
 * swaps whole blocks after the Section Header Block (a lost packet or IDB,
 * a repeated one, two out of order). Returns `b` unchanged when it has too
 * few whole blocks.
 */
export function mutateBlocks(rng: Rng, b: Uint8Array): Uint8Array {
  const spans = decodeBlocks(b).blocks.slice(1).map((x) => [x.offset, x.offset + x.length]);
  if (spans.length < 2) return b;
  const k = rng.below(spans.length - 1);
  const [a0, a1] = spans[k]! as [number, number];
  const [, b1] = spans[k + 1]! as [number, number];
  switch (rng.below(3)) {
    case 0:
      return concat([b.subarray(0, a0), b.subarray(a1)]);
    case 1:
      return concat([b.subarray(0, a1), b.subarray(a0, a1), b.subarray(a1)]);
    default:
      return concat([b.subarray(0, a0), b.subarray(a1, b1), b.subarray(a0, a1), b.subarray(b1)]);
  }
}
