/**
 * Test support for show/, not public API: builds captures in memory with the
 * FUSE encoders and the real capture writer, and reads them back as the
 * reader would, so the tests exercise the same bytes as a real file.
 *
 * @module
 */
import { CaptureWriter, decodeCapture, RecordKind } from "../capture/mod.ts";
import type { CaptureRecord, Note, RecordInput } from "../capture/mod.ts";
import {
  encodeReply,
  encodeRequest,
  type FuseReplyInit,
  type FuseRequestInit,
  FuseSession,
} from "../decode/fuse.ts";

const FILLER = new TextEncoder().encode("~");

/** 2026-11-25T15:00:00Z in ns: a fixed, readable origin for expected lines. */
export const T0 = 1_795_618_800_000_000_000n;

/** Builds one capture; timestamps advance by `step` ns per record unless given. */
export class CaptureBuilder {
  #chunks: Uint8Array[] = [];
  #writer: CaptureWriter;
  /** Session used to encode (INIT-aware structs). */
  readonly session: FuseSession;
  /** Time of the next record. */
  now: bigint = T0;
  /** Default time between records. */
  step = 1_000n;

  /** A builder at protocol `minor` (7.38 by default: the Linux 6.1 guest). */
  constructor(minor?: number, snaplen?: number) {
    this.session = new FuseSession({ minor: minor ?? 38, flags: 0n });
    this.#writer = new CaptureWriter({
      writeSync: (p) => {
        this.#chunks.push(p.slice());
        return p.byteLength;
      },
    }, { flushIntervalMs: 0, snaplen, userAppl: "test", os: "test", hardware: "test" });
  }

  #append(rec: RecordInput, at: bigint | undefined): void {
    if (at !== undefined) this.now = at;
    this.#writer.append({ ...rec, timestampNs: this.now });
    this.now += this.step;
  }

  /** A FUSE_REQUEST on `queue` (from descriptor `head`, when given). */
  request(queue: number, req: FuseRequestInit, at?: bigint, head?: number): this {
    this.#append({
      kind: RecordKind.FUSE_REQUEST,
      queue,
      head,
      body: encodeRequest(req, this.session),
    }, at);
    return this;
  }

  /** A FUSE_REPLY to an `opcode` request on `queue`; `latencyNs` goes to aux. */
  reply(queue: number, opcode: number, rep: FuseReplyInit, latencyNs?: number, at?: bigint): this {
    this.#append({
      kind: RecordKind.FUSE_REPLY,
      queue,
      flags: 4,
      aux: BigInt(latencyNs ?? 0),
      body: encodeReply(rep, opcode, this.session),
    }, at);
    return this;
  }

  /** A raw FUSE_REPLY body (malformed replies, 0-byte used entries), for descriptor `head`. */
  rawReply(
    queue: number,
    body: Uint8Array,
    latencyNs?: number,
    at?: bigint,
    head?: number,
  ): this {
    const aux = BigInt(latencyNs ?? 0);
    this.#append({ kind: RecordKind.FUSE_REPLY, queue, head, aux, body }, at);
    return this;
  }

  /** A raw FUSE_REQUEST body. */
  rawRequest(queue: number, body: Uint8Array, at?: bigint): this {
    this.#append({ kind: RecordKind.FUSE_REQUEST, queue, body }, at);
    return this;
  }

  /** A VHOST_USER record. */
  vhostUser(direction: number, body: Uint8Array, fdCount?: number, at?: bigint): this {
    this.#append({ kind: RecordKind.VHOST_USER, direction, body, fdCount: fdCount ?? 0 }, at);
    return this;
  }

  /** A NOTE record. */
  note(note: Note, at?: bigint): this {
    this.#append({
      kind: RecordKind.NOTE,
      flags: 8,
      body: new TextEncoder().encode(JSON.stringify(note)),
    }, at);
    return this;
  }

  /** Skips `n` sequence numbers (records lost before the file): fillers that records() drops. */
  lose(n: number): this {
    for (let i = 0; i < n; i++) this.#writer.append({ kind: RecordKind.NOTE, body: FILLER });
    return this;
  }

  /** The records as a reader returns them. */
  async records(): Promise<CaptureRecord[]> {
    await this.#writer.close();
    let n = 0;
    for (const c of this.#chunks) n += c.byteLength;
    const bytes = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) {
      bytes.set(c, o);
      o += c.byteLength;
    }
    const got = decodeCapture(bytes);
    if (got.error !== undefined) throw got.error;
    // lose(): the filler records stand for records that never reached the file.
    return got.records.filter((r) =>
      !(r.kind === RecordKind.NOTE && r.body.byteLength === FILLER.byteLength &&
        r.body[0] === FILLER[0])
    );
  }
}
