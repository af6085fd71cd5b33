/**
 * FUSE decode throughput for a realistic mix, measured side by side in one run:
 * LOOKUP, GETATTR, READ 4 KiB, WRITE 128 KiB and READDIRPLUS (20 entries), each
 * request with its reply (10 records per round). Two input shapes: each message
 * as one buffer, and as virtqueue descriptor chains deliver them (the 40/16-byte
 * header in its own segment, payloads in 4 KiB pages).
 *
 * Prints the median over batches of records/s and MB/s; the same decode passing
 * `{ truncatedFrom }` as a capture reader does for every record (whole ones
 * here); and for comparison the encoder's rate on the same records (segments
 * out, payloads not copied).
 *
 * Run: deno task bench:decode [--rounds N] [--batches N]
 */
import {
  decodeReply,
  decodeRequest,
  encodeReply,
  encodeReplySegments,
  encodeRequest,
  encodeRequestSegments,
  type FuseDirentInit,
  type FuseReply,
  type FuseRequest,
  FuseSession,
  Opcode,
} from "../decode/fuse.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
const ROUNDS = arg("rounds", 20_000);
const BATCHES = arg("batches", 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const session = new FuseSession({ minor: 38, flags: 0n });
const attr = {
  ino: 1234n,
  size: 4096n,
  blocks: 8n,
  atime: 1_700_000_000n,
  mtime: 1_700_000_000n,
  ctime: 1_700_000_000n,
  mode: 0o100644,
  nlink: 1,
  uid: 1000,
  gid: 1000,
  blksize: 4096,
};
const entry = { nodeid: 1234n, generation: 1n, "entry_valid": 1n, "attr_valid": 1n, ...attr };
const dirents: FuseDirentInit[] = Array.from({ length: 20 }, (_, i) => ({
  ino: BigInt(2000 + i),
  off: BigInt(i + 1),
  type: 8,
  name: `file-${i}.dat`,
  entry: { ...entry, nodeid: BigInt(2000 + i) },
}));
const h = (opcode: number, unique: bigint) => ({ opcode, unique, nodeid: 1234n, uid: 1000 });

/** [request bytes, reply bytes] pairs of the mix. */
const MIX: [Uint8Array, Uint8Array][] = [
  [
    encodeRequest({ header: h(Opcode.LOOKUP, 2n), names: ["some-file-name.txt"] }, session),
    encodeReply({ header: { unique: 2n }, arg: entry }, Opcode.LOOKUP, session),
  ],
  [
    encodeRequest({ header: h(Opcode.GETATTR, 4n), arg: {} }, session),
    encodeReply(
      { header: { unique: 4n }, arg: { "attr_valid": 1n, ...attr } },
      Opcode.GETATTR,
      session,
    ),
  ],
  [
    encodeRequest({ header: h(Opcode.READ, 6n), arg: { fh: 7n, offset: 0n, size: 4096 } }, session),
    encodeReply({ header: { unique: 6n }, data: new Uint8Array(4096) }, Opcode.READ, session),
  ],
  [
    encodeRequest(
      { header: h(Opcode.WRITE, 8n), arg: { fh: 7n, offset: 0n }, data: new Uint8Array(131072) },
      session,
    ),
    encodeReply({ header: { unique: 8n }, arg: { size: 131072 } }, Opcode.WRITE, session),
  ],
  [
    encodeRequest({ header: h(Opcode.READDIRPLUS, 10n), arg: { fh: 9n, size: 4096 } }, session),
    encodeReply({ header: { unique: 10n }, entries: dirents }, Opcode.READDIRPLUS, session),
  ],
];

/**
 * Splits a message the way Linux virtio-fs lays out a descriptor chain: the
 * header, the non-page arguments in one buffer, page-backed payload in 4 KiB
 * pages.
 */
function chain(msg: Uint8Array, headerSize: number, argsSize: number): Uint8Array[] {
  const segs = [msg.subarray(0, headerSize)];
  const argsEnd = Math.min(msg.byteLength, headerSize + argsSize);
  if (argsEnd > headerSize) segs.push(msg.subarray(headerSize, argsEnd));
  for (let p = argsEnd; p < msg.byteLength; p += 4096) {
    segs.push(msg.subarray(p, Math.min(msg.byteLength, p + 4096)));
  }
  return segs;
}
// Non-page argument bytes per mix entry: [request, reply]; READ/READDIRPLUS replies are pages.
const ARGS: [number, number][] = [[Infinity, Infinity], [Infinity, Infinity], [Infinity, 0], [
  40,
  Infinity,
], [Infinity, 0]];
const CHAINED: [Uint8Array[], Uint8Array[]][] = MIX.map(([q, r], i) => [
  chain(q, 40, ARGS[i]![0]),
  chain(r, 16, ARGS[i]![1]),
]);

const RECORDS_PER_ROUND = MIX.length * 2;
const BYTES_PER_ROUND = MIX.reduce((n, [q, r]) => n + q.byteLength + r.byteLength, 0);

let sink = 0;
function runFlat(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const [q, r] of MIX) {
      const req = decodeRequest(q, session);
      const rep = decodeReply(r, req, session);
      sink += rep.header.len;
    }
  }
}
// What a capture reader passes: each record's original length (equal here: none was cut).
const MIX_LENGTHS = MIX.map(([q, r]) =>
  [q, r, { truncatedFrom: q.byteLength }, { truncatedFrom: r.byteLength }] as const
);
function runFlatOption(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const [q, r, qo, ro] of MIX_LENGTHS) {
      const req = decodeRequest(q, session, qo);
      const rep = decodeReply(r, req, session, ro);
      sink += rep.header.len;
    }
  }
}
function runChained(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const [q, r] of CHAINED) {
      const req = decodeRequest(q, session);
      const rep = decodeReply(r, req, session);
      sink += rep.header.len;
    }
  }
}

const DECODED: [FuseRequest, FuseReply][] = MIX.map(([q, r]) => {
  const req = decodeRequest(q, session);
  return [req, decodeReply(r, req, session)];
});
function runEncode(rounds: number): void {
  for (let i = 0; i < rounds; i++) {
    for (const [req, rep] of DECODED) {
      sink += encodeRequestSegments(req, session).length;
      sink += encodeReplySegments(rep, req, session).length;
    }
  }
}

function measure(fn: (rounds: number) => void): { recs: number; mbs: number } {
  fn(Math.min(ROUNDS, 2000)); // warm-up
  const samples: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    fn(ROUNDS);
    samples.push((performance.now() - t0) / 1000);
  }
  const secs = median(samples);
  return {
    recs: (ROUNDS * RECORDS_PER_ROUND) / secs,
    mbs: (ROUNDS * BYTES_PER_ROUND) / secs / 1e6,
  };
}

const flat = measure(runFlat);
const flatOption = measure(runFlatOption);
const chained = measure(runChained);
const encoded = measure(runEncode);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(
  `FUSE decode, mix of LOOKUP/GETATTR/READ 4K/WRITE 128K/READDIRPLUS×20 with replies ` +
    `(${RECORDS_PER_ROUND} records, ${fmt(BYTES_PER_ROUND)} bytes per round; ` +
    `median of ${BATCHES} batches × ${fmt(ROUNDS)} rounds)`,
);
const line = (what: string, r: { recs: number; mbs: number }) =>
  console.log(
    `  ${what.padEnd(28)}${fmt(r.recs).padStart(11)} records/s ${fmt(r.mbs).padStart(8)} MB/s`,
  );
line("decode, one buffer each:", flat);
line("  … with truncatedFrom:", flatOption);
line("decode, descriptor chains:", chained);
line("encode (for comparison):", encoded);
if (sink === 0) console.log("(unreachable)");
