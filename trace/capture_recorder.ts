/**
 * The recording side of `vfstrace trace`: turns what the proxy observes into
 * pcapng records (capture/ format, see docs/capture-format.md): each record
 * with its stream, descriptor head and the proxy's residence.
 *
 * @module
 */
import {
  CaptureWriteError,
  type CaptureWriter,
  encodeNote,
  FUSE_IN_HEADER_SIZE,
  type JsonValue,
  type Note,
  NotifyDirection,
  packRequestAux,
  RecordFlag,
  RecordKind,
  VhostUserDirection,
} from "../capture/mod.ts";
import {
  concatSegments,
  NotifyKind,
  type ReplyRecord,
  type RequestRecord,
  type TraceRecorder,
  VhostDirection,
} from "./recorder.ts";
import { fuseOp } from "../decode/fuse_table.ts";
import type { ShowRecord } from "../show/mod.ts";

const VHOST_DIRECTION: Record<VhostDirection, number> = {
  [VhostDirection.FrontToBack]: VhostUserDirection.FRONTEND_TO_BACKEND,
  [VhostDirection.BackToFront]: VhostUserDirection.BACKEND_TO_FRONTEND,
  [VhostDirection.BackendChannelRequest]: VhostUserDirection.BACKEND_CHANNEL_REQUEST,
  [VhostDirection.BackendChannelReply]: VhostUserDirection.BACKEND_CHANNEL_REPLY,
};

const NOTIFY_DIRECTION: Record<NotifyKind, number> = {
  [NotifyKind.GuestKick]: NotifyDirection.GUEST_KICK,
  [NotifyKind.BackendCall]: NotifyDirection.BACKEND_CALL,
  [NotifyKind.BackendKick]: NotifyDirection.KICK_TO_BACKEND,
  [NotifyKind.GuestCall]: NotifyDirection.CALL_TO_GUEST,
};

/** Options of {@link CaptureRecorder}. */
export interface CaptureRecorderOptions {
  /** Record kick/call notifications (many records; off by default). */
  notifications?: boolean;
  /** Sees every request/reply/note after it is written (live output, counters). */
  tap?: TraceRecorder;
  /**
   * Receives each FUSE record as written (same seq and timestamp; bodies
   * copied, cut at {@link LIVE_BODY_LIMIT}): the live output.
   */
  onRecord?: (record: ShowRecord) => void;
  /**
   * Told when the capture stops taking records (disk full, I/O error). The
   * recorder never throws it at the proxy: the session goes on, the writer
   * drops and counts what follows (CaptureWriter.dropped).
   */
  onWriteError?: (error: CaptureWriteError) => void;
}

/** Body bytes passed to `onRecord`: enough for every header, argument and name. */
export const LIVE_BODY_LIMIT = 64 * 1024;

/** A TraceRecorder writing to a {@link CaptureWriter}. */
export class CaptureRecorder implements TraceRecorder {
  #writer: CaptureWriter;
  #notifications: boolean;
  #tap: TraceRecorder | undefined;
  #onRecord: ((record: ShowRecord) => void) | undefined;
  #onWriteError: ((error: CaptureWriteError) => void) | undefined;

  /** Records into `writer` (the caller closes it). */
  constructor(writer: CaptureWriter, options: CaptureRecorderOptions = {}) {
    this.#writer = writer;
    this.#notifications = options.notifications ?? false;
    this.#tap = options.tap;
    this.#onRecord = options.onRecord;
    this.#onWriteError = options.onWriteError;
  }

  /** Appends; a failing capture is reported once and costs the record, not the session. */
  #append(record: Parameters<CaptureWriter["append"]>[0]): number {
    let seq = -1;
    this.#guard(() => (seq = this.#writer.append(record)));
    return seq;
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof CaptureWriteError)) throw err;
      this.#onWriteError?.(err);
    }
  }

  /** Hands a copy of a record just written to the live output. */
  #live(
    kind: number,
    seq: number,
    timestampNs: bigint,
    fields: { queue: number; head: number; flags: number; aux: bigint },
    body: readonly Uint8Array[],
    length: number,
  ): void {
    const kept = Math.min(length, LIVE_BODY_LIMIT);
    this.#onRecord?.({
      timestampNs,
      kind,
      flags: fields.flags | (kept < length ? RecordFlag.TRUNCATED : 0),
      queue: fields.queue,
      fdCount: 0,
      direction: 0,
      seq,
      aux: fields.aux,
      head: fields.head,
      body: concatSegments(body, kept),
      originalLength: length,
    });
  }

  /** Writes a VHOST_USER record. */
  vhostUser(direction: VhostDirection, bytes: Uint8Array, fdCount: number): void {
    this.#append({
      kind: RecordKind.VHOST_USER,
      direction: VHOST_DIRECTION[direction],
      body: bytes,
      fdCount,
    });
    this.#tap?.vhostUser(direction, bytes, fdCount);
  }

  /**
   * Writes a FUSE_REQUEST record with its head and residence, and returns
   * its seq (a body longer than a packet takes more seqs: see
   * CaptureWriter.append).
   */
  request(r: RequestRecord): number {
    const timestampNs = this.#writer.nowNs();
    // A chain's capacity is a sum of u32 lengths: saturate rather than fail the relay.
    const aux = packRequestAux(
      Math.min(r.descriptors, 0xffff),
      Math.min(r.writableCapacity, 0xffffffff),
    );
    const problem = requestProblem(r.body, r.length);
    const flags = problem === undefined ? 0 : RecordFlag.MALFORMED;
    const seq = this.#append({
      timestampNs,
      kind: RecordKind.FUSE_REQUEST,
      queue: r.queue,
      head: r.head,
      residenceNs: r.residenceNs < 0n ? 0n : r.residenceNs,
      body: r.body,
      aux,
      flags,
      // Only a snap length looks at it: spare the lookup otherwise.
      keep: this.#writer.snaplen === undefined ? undefined : requestKeep(r.body),
    });
    if (this.#onRecord !== undefined) {
      this.#live(
        RecordKind.FUSE_REQUEST,
        seq,
        timestampNs,
        {
          queue: r.queue,
          head: r.head,
          flags,
          aux,
        },
        r.body,
        r.length,
      );
    }
    this.#tap?.request(r);
    if (problem !== undefined) {
      this.note({ type: "malformed_request", queue: r.queue, head: r.head, seq, reason: problem });
    }
    return seq;
  }

  /**
   * Writes a FUSE_REPLY record (the body cut to the used length); its
   * residence comes later, by {@link replyResidence}.
   */
  reply(r: ReplyRecord): number {
    const body: Uint8Array[] = [];
    let left = r.length;
    for (const seg of r.body) {
      if (left <= 0) break;
      const part = seg.byteLength <= left ? seg : seg.subarray(0, left);
      body.push(part);
      left -= part.byteLength;
    }
    const timestampNs = this.#writer.nowNs();
    const flags = r.requestSeq >= 0 ? RecordFlag.PAIRED : 0;
    const aux = r.latencyNs < 0n ? 0n : r.latencyNs;
    const seq = this.#append({
      timestampNs,
      kind: RecordKind.FUSE_REPLY,
      queue: r.queue,
      head: r.head,
      body,
      flags,
      aux,
    });
    if (this.#onRecord !== undefined) {
      this.#live(
        RecordKind.FUSE_REPLY,
        seq,
        timestampNs,
        {
          queue: r.queue,
          head: r.head,
          flags,
          aux,
        },
        body,
        r.length,
      );
    }
    this.#tap?.reply(r);
    return seq;
  }

  /** Holds the capture in memory so the batch's replies can be amended. */
  beginBatch(): void {
    this.#guard(() => this.#writer.hold());
    this.#tap?.beginBatch?.();
  }

  /** Lets the capture write the batch out. */
  endBatch(): void {
    this.#guard(() => this.#writer.release());
    this.#tap?.endBatch?.();
  }

  /**
   * Amends the residence_ns of replies still in memory (the batch being
   * held); a reply already written out keeps 0 (not measured).
   */
  replyResidence(seqs: readonly number[], residenceNs: bigint): void {
    this.#guard(() => {
      for (let i = 0; i < seqs.length; i++) this.#writer.amendResidence(seqs[i]!, residenceNs);
    });
    this.#tap?.replyResidence(seqs, residenceNs);
  }

  /** Writes a malformed_chain NOTE. */
  malformed(queue: number, head: number, reason: string): void {
    this.note({ type: "malformed_chain", queue, head, reason });
    this.#tap?.malformed(queue, head, reason);
  }

  /** Writes a NOTIFY record when notifications are recorded. */
  notify(kind: NotifyKind, queue: number, count: bigint): void {
    if (this.#notifications) {
      this.#append({
        kind: RecordKind.NOTIFY,
        queue,
        direction: NOTIFY_DIRECTION[kind],
        aux: count,
      });
    }
    this.#tap?.notify(kind, queue, count);
  }

  /** Writes a NOTE record. */
  note(note: { type: string; [key: string]: unknown }): void {
    this.#append({
      kind: RecordKind.NOTE,
      flags: RecordFlag.SYNTHETIC,
      body: encodeNote(toJson(note)),
    });
    this.#tap?.note(note);
  }
}

/**
 * What a snap length must keep of a request: fuse_in_header and the
 * opcode's argument struct (its newest size: at worst a few data bytes
 * more under an old protocol minor), so the cut record still decodes.
 */
export function requestKeep(body: readonly Uint8Array[]): number {
  const first = body[0];
  if (first === undefined || first.byteLength < 8) return FUSE_IN_HEADER_SIZE;
  const opcode = (first[4]! | (first[5]! << 8) | (first[6]! << 16) | (first[7]! << 24)) >>> 0;
  return FUSE_IN_HEADER_SIZE + (fuseOp(opcode)?.request.struct?.size() ?? 0);
}

/** JSON-safe copy: bigints become strings. */
function toJson(note: { type: string; [key: string]: unknown }): Note {
  return JSON.parse(
    JSON.stringify(note, (_k, v) => (typeof v === "bigint" ? v.toString() : v)),
  ) as { type: string; [key: string]: JsonValue };
}

/**
 * What is wrong with a request's fuse_in_header, checked cheaply on every
 * request: too short, a len other than the chain's readable bytes, or an
 * opcode no FUSE version defines. Undefined when it looks right.
 */
function requestProblem(body: readonly Uint8Array[], length: number): string | undefined {
  if (length < FUSE_IN_HEADER_SIZE) {
    return `${length} bytes, shorter than fuse_in_header (${FUSE_IN_HEADER_SIZE})`;
  }
  const first = body[0]!;
  const head = first.byteLength >= 8 ? first : concatSegments(body, 8);
  const dv = new DataView(head.buffer, head.byteOffset, 8);
  const len = dv.getUint32(0, true);
  const opcode = dv.getUint32(4, true);
  if (len !== length) return `fuse_in_header.len ${len}, but the chain holds ${length} bytes`;
  if (fuseOp(opcode) === undefined) return `unknown opcode ${opcode}`;
  return undefined;
}
