/**
 * Test support for stats/ and report/, not public API: FUSE request and
 * reply records built with the public encoders, shaped as a capture reader
 * yields them, to feed the real Pairer.
 *
 * @module
 */
import {
  encodeReply,
  encodeRequest,
  type FuseReplyInit,
  type FuseRequestInit,
  FuseSession,
} from "../decode/fuse.ts";
import { RecordKind } from "../decode/pcapng.ts";
import type { ShowRecord } from "../show/mod.ts";

/** 2026-11-25T15:00:00Z in ns. */
export const T0 = 1_795_618_800_000_000_000n;

/** A record as a v2 reader yields it (the residence is optional, as in v1 files). */
export type TestRecord = ShowRecord & { readonly residenceNs?: number | undefined };

/** Options of one record. */
export interface RecordOptions {
  /** Record time (default: the builder's clock, advancing 1 µs a record). */
  readonly at?: bigint | undefined;
  /** The proxy's residence, as a v2 capture stores it. */
  readonly residenceNs?: number | undefined;
  /** Keep only this many bytes of the body (a snap length). */
  readonly snaplen?: number | undefined;
}

/** Builds request/reply records in file order. */
export class RecordMaker {
  /** Encoding session (7.38: the Linux 6.1 guest). */
  readonly session: FuseSession = new FuseSession({ minor: 38, flags: 0n });
  /** Time of the next record. */
  now: bigint = T0;
  /** The records so far. */
  readonly records: TestRecord[] = [];
  #seq = 0;

  #push(kind: number, queue: number, body: Uint8Array, aux: bigint, o: RecordOptions): void {
    if (o.at !== undefined) this.now = o.at;
    const cut = o.snaplen !== undefined && o.snaplen < body.byteLength;
    this.records.push({
      timestampNs: this.now,
      kind,
      flags: cut ? 1 : 0,
      queue,
      fdCount: 0,
      direction: 0,
      seq: this.#seq++,
      aux,
      body: cut ? body.slice(0, o.snaplen) : body,
      originalLength: body.byteLength,
      ...(o.residenceNs === undefined ? {} : { residenceNs: o.residenceNs }),
    });
    this.now += 1_000n;
  }

  /** A FUSE_REQUEST record. */
  request(queue: number, req: FuseRequestInit, o: RecordOptions = {}): this {
    this.#push(RecordKind.FUSE_REQUEST, queue, encodeRequest(req, this.session), 0n, o);
    return this;
  }

  /** A FUSE_REPLY to an `opcode` request; `latencyNs` is the proxy's measure (aux). */
  reply(
    queue: number,
    opcode: number,
    rep: FuseReplyInit,
    latencyNs: number,
    o: RecordOptions = {},
  ): this {
    const body = encodeReply(rep, opcode, this.session);
    this.#push(RecordKind.FUSE_REPLY, queue, body, BigInt(latencyNs), o);
    return this;
  }

  /** A 0-byte used entry (what ends a FORGET). */
  used(queue: number, latencyNs: number, o: RecordOptions = {}): this {
    this.#push(RecordKind.FUSE_REPLY, queue, new Uint8Array(0), BigInt(latencyNs), o);
    return this;
  }

  /** A record of another kind (a NOTE, a vhost-user message) with an opaque body. */
  other(kind: number, o: RecordOptions = {}): this {
    this.#push(kind, 0xffff, new Uint8Array([0x7b, 0x7d]), 0n, o);
    return this;
  }

  /** Skips `n` sequence numbers: records lost before the file. */
  lose(n: number): this {
    this.#seq += n;
    return this;
  }
}
