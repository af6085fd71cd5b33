/**
 * The streaming pairer: capture records in, strace-like events out.
 *
 * Feed records in file order to {@link Pairer.push}; it decodes FUSE
 * requests as they come (one {@link FuseSession} follows the connection's
 * INIT), pairs each reply with its request by (queue, `unique`), and emits
 * one {@link FuseOperation} per request. vhost-user messages, notes,
 * notifications and sequence gaps become {@link ControlEvent}s.
 *
 * Order. By default an operation is emitted when it completes (its reply's
 * place in the file), as strace prints a call when it returns; its time is
 * still the request's. `order: "request"` emits in request order instead,
 * holding completed operations until every earlier one is out.
 *
 * Replies without a unique: FORGET and BATCH_FORGET get no FUSE reply, only
 * their descriptor chain back in the used ring, recorded as a 0-byte
 * FUSE_REPLY. It ends the reply-less request in flight on its queue with the
 * same descriptor head (heads are unique among chains in flight); without
 * heads (live records, older captures) the oldest one (FIFO), which is how
 * back-ends process the hiprio queue.
 *
 * Memory stays constant: only requests in flight are kept, at most
 * `maxInFlight`; beyond that the oldest is emitted as unanswered with an
 * `evicted` problem and counted. Requests that wait long have their bodies
 * copied out of the reader's chunk so they do not keep whole chunks alive.
 * {@link Pairer.finish} emits the requests still in flight as unanswered.
 *
 * Decoding never throws out of the pairer: a message that does not decode
 * yields an operation with status or problem saying why. Bodies a capture
 * cut (snap length) decode as far as they go.
 *
 * @module
 */
import {
  decodeReply,
  decodeRequest,
  fuseOp,
  type FuseReply,
  type FuseRequest,
  FuseSession,
  type FuseSessionOptions,
} from "../decode/fuse.ts";
import {
  type CaptureRecord,
  decodeNote,
  HEAD_NONE,
  type Note,
  RecordKind,
  VhostUserDirection,
} from "../decode/pcapng.ts";
import { decodeMessage, type VhostUserMessage } from "../decode/vhost_user.ts";
import { type InFlightEntry, InFlightTable } from "./_in_flight.ts";

/**
 * What the pairer needs of a record: a {@link CaptureRecord} from a reader,
 * or one built by the live tracer (no offset).
 */
export type ShowRecord =
  & Pick<
    CaptureRecord,
    | "timestampNs"
    | "kind"
    | "flags"
    | "queue"
    | "fdCount"
    | "direction"
    | "seq"
    | "aux"
    | "body"
    | "originalLength"
  >
  & {
    /** File offset of the record's block, when read from a file. */
    readonly offset?: number | undefined;
    /** CONTINUATION packets folded into the record (for gap detection). */
    readonly continuations?: number | undefined;
    /** Descriptor head of a FUSE request or reply ({@link HEAD_NONE}: unknown). */
    readonly head?: number | undefined;
    /** The proxy's residence in ns, when measured. */
    readonly residenceNs?: number | undefined;
  };

/**
 * How an operation ended. `error`: the reply carries a negative errno.
 * `unanswered`: no reply was seen (the capture ended, or it was evicted).
 * `undecodable`: a message did not decode, or the reply has no request,
 * and the result is not an error. `problem` says more.
 */
export type OperationStatus = "ok" | "error" | "unanswered" | "undecodable";

/** The request half of an operation. */
export interface RequestSide {
  /** The FUSE_REQUEST record. */
  readonly record: ShowRecord;
  /** Decoded; undefined when the body did not decode (see `problem`). */
  readonly decoded: FuseRequest | undefined;
  /** Why decoding failed. */
  readonly problem: string | undefined;
}

/** The reply half of an operation. */
export interface ReplySide {
  /** The FUSE_REPLY record (a 0-byte one for FORGET and BATCH_FORGET). */
  readonly record: ShowRecord;
  /** Decoded; undefined for a 0-byte used entry or when decoding failed. */
  readonly decoded: FuseReply | undefined;
  /** Why decoding failed. */
  readonly problem: string | undefined;
}

/** One FUSE request with its reply: what a `show` line prints. */
export interface FuseOperation {
  /** Discriminant. */
  readonly type: "fuse";
  /** How it ended. */
  readonly status: OperationStatus;
  /** Virtqueue (0 is hiprio). */
  readonly queue: number;
  /** `fuse_in_header.unique` (0 when unknown). */
  readonly unique: bigint;
  /** FUSE opcode; -1 when unknown (a reply without its request). */
  readonly opcode: number;
  /** `LOOKUP`, `opcode 99` for an unknown opcode, `?` without a request. */
  readonly name: string;
  /** `fuse_in_header.nodeid` (0 when unknown). */
  readonly nodeid: bigint;
  /** When the request was recorded (the reply's time when there is no request). */
  readonly timestampNs: bigint;
  /** Request to reply: the proxy's measure (reply aux), else the timestamp difference. */
  readonly latencyNs: number | undefined;
  /** Positive errno of an error reply. */
  readonly errno: number | undefined;
  /** The request, absent for a reply whose request is not in the capture. */
  readonly request: RequestSide | undefined;
  /** The reply, absent while unanswered. */
  readonly reply: ReplySide | undefined;
  /** The opcode never gets a FUSE reply (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY). */
  readonly noReply: boolean;
  /** What went wrong: a decoding failure, eviction, a reply without request. */
  readonly problem: string | undefined;
}

/** A vhost-user message on the control socket or the backend channel. */
export interface VhostUserEvent {
  /** Discriminant. */
  readonly type: "vhost-user";
  /** The VHOST_USER record. */
  readonly record: ShowRecord;
  /** Record time. */
  readonly timestampNs: bigint;
  /** {@link VhostUserDirection}. */
  readonly direction: number;
  /** File descriptors passed with it. */
  readonly fdCount: number;
  /** Decoded; undefined when it did not decode (see `problem`). */
  readonly message: VhostUserMessage | undefined;
  /** Why decoding failed. */
  readonly problem: string | undefined;
  /** The proxy's relay latency (record aux), when known. */
  readonly latencyNs: number | undefined;
}

/** A NOTE record written by vfstrace. */
export interface NoteEvent {
  /** Discriminant. */
  readonly type: "note";
  /** The NOTE record. */
  readonly record: ShowRecord;
  /** Record time. */
  readonly timestampNs: bigint;
  /** The parsed note; undefined when the body is not a note (see `problem`). */
  readonly note: Note | undefined;
  /** Why parsing failed. */
  readonly problem: string | undefined;
}

/** An eventfd kick or call. */
export interface NotifyEvent {
  /** Discriminant. */
  readonly type: "notify";
  /** The NOTIFY record. */
  readonly record: ShowRecord;
  /** Record time. */
  readonly timestampNs: bigint;
  /** Virtqueue. */
  readonly queue: number;
  /** {@link NotifyDirection}. */
  readonly direction: number;
  /** The eventfd counter (record aux). */
  readonly value: bigint;
}

/** Records missing from the file: a jump in `seq`. */
export interface GapEvent {
  /** Discriminant. */
  readonly type: "gap";
  /** Time of the record after the gap. */
  readonly timestampNs: bigint;
  /** First missing seq. */
  readonly firstSeq: number;
  /** Records missing. */
  readonly count: number;
}

/** A record of a kind this version does not know. */
export interface UnknownRecordEvent {
  /** Discriminant. */
  readonly type: "record";
  /** The record. */
  readonly record: ShowRecord;
  /** Record time. */
  readonly timestampNs: bigint;
}

/** Everything but FUSE operations. */
export type ControlEvent = VhostUserEvent | NoteEvent | NotifyEvent | GapEvent | UnknownRecordEvent;

/** What the pairer emits. */
export type ShowEvent = FuseOperation | ControlEvent;

/** Options of {@link Pairer}. */
export interface PairerOptions {
  /** Receives every event, in the chosen order. */
  readonly onEvent: (event: ShowEvent) => void;
  /** `reply` (default): at completion, like strace; `request`: in request order. */
  readonly order?: "reply" | "request" | undefined;
  /** Requests kept in flight before the oldest is evicted (16384 by default). */
  readonly maxInFlight?: number | undefined;
  /** Starting FUSE state, for captures that begin after INIT. */
  readonly session?: FuseSessionOptions | undefined;
}

/** Counters of a {@link Pairer}. */
export interface PairerStats {
  /** Records pushed. */
  readonly records: number;
  /** FUSE operations emitted. */
  readonly operations: number;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Requests evicted to bound memory (emitted as unanswered). */
  readonly evicted: number;
  /** Operations emitted as unanswered (evicted ones included). */
  readonly unanswered: number;
  /** Replies whose request was not in the capture. */
  readonly orphanReplies: number;
  /** Operations with a decoding problem. */
  readonly undecodable: number;
  /** Records missing according to `seq`. */
  readonly lostRecords: number;
}

const DEFAULT_MAX_IN_FLIGHT = 16384;
/** Requests older than this many records get their bodies copied out of the reader's chunk. */
const COMPACT_AFTER = 8192;
const IN_HEADER = 40;
const OUT_HEADER = 16;
const UNIQUE_SAFE_HI = 32;
const MAX_SAFE = 0x20000000000000n; // (hi·2³² + lo)·2¹⁶ + queue stays below 2⁵³

interface Pending extends InFlightEntry {
  record: ShowRecord;
  decoded: FuseRequest | undefined;
  problem: string | undefined;
  readonly queue: number;
  readonly unique: bigint;
  readonly opcode: number;
  readonly name: string;
  readonly nodeid: bigint;
  readonly key: number | string;
  readonly arrival: number;
  readonly noReply: boolean;
  compacted: boolean;
  slot: Slot | undefined;
  prev: Pending | undefined;
  next: Pending | undefined;
}

interface Slot {
  event: ShowEvent | undefined;
}

/** A FIFO that does not shift arrays on every pop. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  at(i: number): T | undefined {
    return this.#items[this.#head + i];
  }

  /** Removes and returns the first item `match` accepts. */
  take(match: (item: T) => boolean): T | undefined {
    for (let i = this.#head; i < this.#items.length; i++) {
      const item = this.#items[i];
      if (item !== undefined && match(item)) {
        if (i === this.#head) return this.shift();
        this.#items.splice(i, 1);
        return item;
      }
    }
    return undefined;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

function messageOf(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  // DecodeError appends "(at offset N)"; keep it: it locates the problem in the body.
  return m;
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16)) + b[o + 3]! * 0x1000000;
}

function u64(b: Uint8Array, o: number): bigint {
  return (BigInt(u32(b, o + 4)) << 32n) | BigInt(u32(b, o));
}

/** Pairing key of (queue, unique at offset 8 of a FUSE header). */
function keyOf(b: Uint8Array, queue: number): number | string {
  const lo = u32(b, 8);
  const hi = u32(b, 12);
  return hi < UNIQUE_SAFE_HI ? (hi * 4294967296 + lo) * 65536 + queue : `${queue}:${hi}:${lo}`;
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

/** Options for a body a capture cut: decode it as far as it goes. */
function cutOptions(rec: ShowRecord): { truncatedFrom: number } | undefined {
  return rec.originalLength > rec.body.byteLength
    ? { truncatedFrom: rec.originalLength }
    : undefined;
}

/** Copies a record's body and re-points the decoded views into the copy. */
function compactRequest(p: Pending): void {
  const old = p.record.body;
  const body = old.slice();
  p.record = { ...p.record, body };
  const d = p.decoded;
  if (d !== undefined && d.data.length > 0) {
    const data = d.data.map((v) =>
      v.buffer === old.buffer && v.byteOffset >= old.byteOffset &&
        v.byteOffset + v.byteLength <= old.byteOffset + old.byteLength
        ? body.subarray(v.byteOffset - old.byteOffset, v.byteOffset - old.byteOffset + v.byteLength)
        : v.slice()
    );
    p.decoded = { ...d, data };
  }
  p.compacted = true;
}

/**
 * Turns capture records into {@link ShowEvent}s: FUSE operations (request
 * + reply) and control events. Push records in file order, then call
 * {@link finish}.
 */
export class Pairer {
  #onEvent: (event: ShowEvent) => void;
  #byRequestOrder: boolean;
  #max: number;
  #session: FuseSession;
  #inFlight = new InFlightTable<Pending>();
  /** Reply-less requests (FORGET…) per queue, ended by 0-byte used entries in order. */
  #noReply = new Map<number, Fifo<Pending>>();
  #noReplyCount = 0;
  #window = new Fifo<Slot>();
  #records = 0;
  #operations = 0;
  #evicted = 0;
  #unanswered = 0;
  #orphans = 0;
  #undecodable = 0;
  #lost = 0;
  #nextSeq = -1;
  #lastCompact = 0;
  #finished = false;

  /** A pairer sending events to `options.onEvent`. */
  constructor(options: PairerOptions) {
    this.#onEvent = options.onEvent;
    this.#byRequestOrder = options.order === "request";
    this.#max = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.#session = new FuseSession(options.session ?? {});
  }

  /** The FUSE connection state learnt so far (minor, INIT flags). */
  get session(): FuseSession {
    return this.#session;
  }

  /** Counters. */
  get stats(): PairerStats {
    return {
      records: this.#records,
      operations: this.#operations,
      inFlight: this.#inFlight.size + this.#noReplyCount,
      evicted: this.#evicted,
      unanswered: this.#unanswered,
      orphanReplies: this.#orphans,
      undecodable: this.#undecodable,
      lostRecords: this.#lost,
    };
  }

  /** Takes the next record in file order; emits what it completes. Never throws for bad data. */
  push(rec: ShowRecord): void {
    if (this.#finished) throw new Error("Pairer.push after finish");
    this.#records++;
    this.#checkSeq(rec);
    switch (rec.kind) {
      case RecordKind.FUSE_REQUEST:
        this.#onRequest(rec);
        break;
      case RecordKind.FUSE_REPLY:
        this.#onReply(rec);
        break;
      case RecordKind.VHOST_USER:
        this.#control(this.#vhostUser(rec));
        break;
      case RecordKind.NOTE:
        this.#control(this.#note(rec));
        break;
      case RecordKind.NOTIFY:
        this.#control({
          type: "notify",
          record: rec,
          timestampNs: rec.timestampNs,
          queue: rec.queue,
          direction: rec.direction,
          value: rec.aux,
        });
        break;
      default:
        this.#control({ type: "record", record: rec, timestampNs: rec.timestampNs });
    }
    if (this.#records - this.#lastCompact >= COMPACT_AFTER) this.#compact();
  }

  /** Emits every request still in flight as unanswered, in request order. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const left: Pending[] = [];
    for (let p = this.#inFlight.oldest; p !== undefined; p = p.next) left.push(p);
    for (const fifo of this.#noReply.values()) {
      for (let i = 0; i < fifo.length; i++) left.push(fifo.at(i)!);
    }
    left.sort((a, b) => a.arrival - b.arrival);
    this.#inFlight.clear();
    this.#noReply.clear();
    this.#noReplyCount = 0;
    for (const p of left) this.#complete(p, undefined, undefined);
    // Request order: everything left is now complete.
    this.#drain();
  }

  #checkSeq(rec: ShowRecord): void {
    const expected = this.#nextSeq;
    // A lower seq starts a new section (concatenated captures): not a loss.
    if (expected >= 0 && rec.seq > expected) {
      const count = rec.seq - expected;
      this.#lost += count;
      this.#control({ type: "gap", timestampNs: rec.timestampNs, firstSeq: expected, count });
    }
    this.#nextSeq = rec.seq + (rec.continuations ?? 0) + 1;
  }

  #onRequest(rec: ShowRecord): void {
    const body = rec.body;
    if (body.byteLength < IN_HEADER) {
      this.#emitOp({
        type: "fuse",
        status: "undecodable",
        queue: rec.queue,
        unique: 0n,
        opcode: -1,
        name: "?",
        nodeid: 0n,
        timestampNs: rec.timestampNs,
        latencyNs: undefined,
        errno: undefined,
        request: {
          record: rec,
          decoded: undefined,
          problem: `request of ${body.byteLength} bytes, shorter than fuse_in_header`,
        },
        reply: undefined,
        noReply: false,
        problem: `request of ${body.byteLength} bytes, shorter than fuse_in_header`,
      });
      return;
    }
    let decoded: FuseRequest | undefined;
    let problem: string | undefined;
    try {
      decoded = decodeRequest(body, this.#session, cutOptions(rec));
    } catch (e) {
      problem = messageOf(e);
    }
    let opcode: number;
    let unique: bigint;
    let nodeid: bigint;
    if (decoded !== undefined) {
      opcode = decoded.header.opcode;
      unique = decoded.header.unique;
      nodeid = decoded.header.nodeid;
    } else {
      opcode = u32(body, 4);
      unique = u64(body, 8);
      nodeid = u64(body, 16);
    }
    const op = fuseOp(opcode);
    const noReply = op !== undefined && op.reply.kind === "none";
    const p: Pending = {
      record: rec,
      decoded,
      problem,
      queue: rec.queue,
      unique,
      opcode,
      name: op?.name ?? operationName(opcode),
      nodeid,
      key: noReply ? -1 : keyOf(body, rec.queue),
      arrival: this.#records,
      noReply,
      compacted: false,
      slot: undefined,
      prev: undefined,
      next: undefined,
    };
    if (this.#byRequestOrder) {
      p.slot = { event: undefined };
      this.#window.push(p.slot);
    }
    if (noReply) {
      let fifo = this.#noReply.get(rec.queue);
      if (fifo === undefined) this.#noReply.set(rec.queue, fifo = new Fifo());
      fifo.push(p);
      this.#noReplyCount++;
    } else {
      const prev = this.#inFlight.get(p.key);
      if (prev !== undefined) {
        // The same unique again before a reply: the first will never be answered as itself.
        this.#inFlight.remove(prev);
        this.#complete(
          prev,
          undefined,
          `superseded by request seq ${rec.seq} with the same unique`,
        );
      }
      this.#inFlight.add(p);
    }
    this.#bound();
  }

  #onReply(rec: ShowRecord): void {
    const body = rec.body;
    if (rec.originalLength === 0) {
      const fifo = this.#noReply.get(rec.queue);
      const head = rec.head ?? HEAD_NONE;
      const p = head === HEAD_NONE
        ? fifo?.shift()
        : fifo?.take((q) => q.record.head === head) ?? fifo?.shift();
      if (p !== undefined) {
        this.#noReplyCount--;
        this.#complete(p, { record: rec, decoded: undefined, problem: undefined }, undefined);
      } else {
        this.#orphan(rec, undefined, "empty used entry with no FORGET in flight on its queue");
      }
      return;
    }
    if (body.byteLength < OUT_HEADER) {
      this.#orphan(
        rec,
        undefined,
        `reply of ${body.byteLength} bytes, shorter than fuse_out_header`,
      );
      return;
    }
    const key = keyOf(body, rec.queue);
    const p = this.#inFlight.get(key);
    if (p === undefined) {
      let decoded: FuseReply | undefined;
      let problem: string | undefined;
      try {
        decoded = decodeReply(body, undefined, this.#session, cutOptions(rec));
      } catch (e) {
        problem = messageOf(e);
      }
      const unique = u64(body, 8);
      if (unique === 0n && decoded !== undefined) {
        // A notification (unique 0): the daemon speaks first, no request to pair.
        this.#emitNotification(rec, decoded);
        return;
      }
      this.#orphan(
        rec,
        decoded,
        problem ?? `no request with unique ${hex(unique)} on queue ${rec.queue} before this reply`,
      );
      return;
    }
    this.#inFlight.remove(p);
    let decoded: FuseReply | undefined;
    let problem: string | undefined;
    try {
      decoded = decodeReply(body, p.decoded ?? p.opcode, this.#session, cutOptions(rec));
    } catch (e) {
      problem = messageOf(e);
    }
    this.#complete(p, { record: rec, decoded, problem }, undefined);
  }

  /** Builds and emits (or slots) the operation of `p`; `reply` undefined: unanswered. */
  #complete(p: Pending, reply: ReplySide | undefined, why: string | undefined): void {
    let latencyNs: number | undefined;
    let errno: number | undefined;
    let status: OperationStatus;
    if (reply !== undefined) {
      const aux = reply.record.aux;
      latencyNs = aux > 0n && aux < MAX_SAFE
        ? Number(aux)
        : Number(reply.record.timestampNs - p.record.timestampNs);
      const rb = reply.record.body;
      const error = rb.byteLength >= OUT_HEADER ? u32(rb, 4) | 0 : 0;
      if (error < 0) errno = -error;
    }
    const problem = why ?? p.problem ?? reply?.problem;
    if (reply === undefined) status = "unanswered";
    else if (errno !== undefined) status = "error";
    else if (problem !== undefined) status = "undecodable";
    else status = "ok";
    if (p.slot !== undefined && this.#window.peek() !== p.slot && !p.compacted) {
      // It will wait behind earlier requests: do not pin the reader's chunk meanwhile.
      compactRequest(p);
    }
    const op: FuseOperation = {
      type: "fuse",
      status,
      queue: p.queue,
      unique: p.unique,
      opcode: p.opcode,
      name: p.name,
      nodeid: p.nodeid,
      timestampNs: p.record.timestampNs,
      latencyNs,
      errno,
      request: { record: p.record, decoded: p.decoded, problem: p.problem },
      reply,
      noReply: p.noReply,
      problem,
    };
    if (p.slot !== undefined) {
      p.slot.event = op;
      this.#count(op);
      this.#drain();
    } else {
      this.#emitOp(op);
    }
  }

  #orphan(rec: ShowRecord, decoded: FuseReply | undefined, problem: string): void {
    this.#orphans++;
    const body = rec.body;
    const error = body.byteLength >= OUT_HEADER ? u32(body, 4) | 0 : 0;
    this.#emitOp({
      type: "fuse",
      status: error < 0 ? "error" : "undecodable",
      queue: rec.queue,
      unique: body.byteLength >= OUT_HEADER ? u64(body, 8) : 0n,
      opcode: -1,
      name: "?",
      nodeid: 0n,
      timestampNs: rec.timestampNs,
      latencyNs: rec.aux > 0n && rec.aux < MAX_SAFE ? Number(rec.aux) : undefined,
      errno: error < 0 ? -error : undefined,
      request: undefined,
      reply: { record: rec, decoded, problem: undefined },
      noReply: false,
      problem,
    });
  }

  #emitNotification(rec: ShowRecord, decoded: FuseReply): void {
    this.#emitOp({
      type: "fuse",
      status: "ok",
      queue: rec.queue,
      unique: 0n,
      opcode: 0,
      name: `NOTIFY_${decoded.notify?.name ?? decoded.header.error}`,
      nodeid: 0n,
      timestampNs: rec.timestampNs,
      latencyNs: undefined,
      errno: undefined,
      request: undefined,
      reply: { record: rec, decoded, problem: undefined },
      noReply: false,
      problem: undefined,
    });
  }

  #count(op: FuseOperation): void {
    this.#operations++;
    if (op.status === "unanswered") this.#unanswered++;
    // Replies without a request are counted apart (orphanReplies).
    if (op.problem !== undefined && op.status !== "unanswered" && op.request !== undefined) {
      this.#undecodable++;
    }
  }

  #emitOp(op: FuseOperation): void {
    if (this.#byRequestOrder) {
      this.#window.push({ event: op });
      this.#count(op);
      this.#drain();
      return;
    }
    this.#count(op);
    this.#onEvent(op);
  }

  #control(ev: ControlEvent): void {
    if (this.#byRequestOrder) {
      this.#window.push({ event: ev });
      this.#drain();
      return;
    }
    this.#onEvent(ev);
  }

  /** Request order: emits the completed slots at the head of the window. */
  #drain(): void {
    const w = this.#window;
    for (let s = w.peek(); s !== undefined && s.event !== undefined; s = w.peek()) {
      w.shift();
      this.#onEvent(s.event);
    }
  }

  /** Keeps the in-flight requests (and the request-order window) within the cap. */
  #bound(): void {
    while (this.#inFlight.size + this.#noReplyCount > this.#max) {
      this.#evictOldest();
    }
    // A request that never completes would hold the window open forever.
    while (this.#byRequestOrder && this.#window.length > this.#max) {
      const head = this.#window.peek();
      if (head === undefined || head.event !== undefined) break;
      if (!this.#evictOldest()) break;
    }
  }

  #evictOldest(): boolean {
    let oldest: Pending | undefined = this.#inFlight.oldest;
    let fromFifo: Fifo<Pending> | undefined;
    for (const fifo of this.#noReply.values()) {
      const head = fifo.peek();
      if (head !== undefined && (oldest === undefined || head.arrival < oldest.arrival)) {
        oldest = head;
        fromFifo = fifo;
      }
    }
    if (oldest === undefined) return false;
    if (fromFifo !== undefined) {
      fromFifo.shift();
      this.#noReplyCount--;
    } else {
      this.#inFlight.remove(oldest);
    }
    this.#evicted++;
    this.#complete(
      oldest,
      undefined,
      `evicted: more than ${this.#max} requests in flight (raise the limit to keep it)`,
    );
    return true;
  }

  /** Copies the bodies of long-waiting requests out of the reader's chunks. */
  #compact(): void {
    this.#lastCompact = this.#records;
    const before = this.#records - COMPACT_AFTER;
    for (let p = this.#inFlight.oldest; p !== undefined; p = p.next) {
      if (p.arrival > before) break; // arrival order: the rest are younger
      if (!p.compacted) compactRequest(p);
    }
    for (const fifo of this.#noReply.values()) {
      for (let i = 0; i < fifo.length; i++) {
        const p = fifo.at(i)!;
        if (p.arrival > before) break;
        if (!p.compacted) compactRequest(p);
      }
    }
  }

  #vhostUser(rec: ShowRecord): VhostUserEvent {
    let message: VhostUserMessage | undefined;
    let problem: string | undefined;
    try {
      const channel = rec.direction === VhostUserDirection.BACKEND_CHANNEL_REQUEST ||
          rec.direction === VhostUserDirection.BACKEND_CHANNEL_REPLY
        ? "backend"
        : "frontend";
      message = decodeMessage(rec.body, rec.fdCount, { channel, fds: "report" });
    } catch (e) {
      problem = messageOf(e);
    }
    const aux = rec.aux;
    return {
      type: "vhost-user",
      record: rec,
      timestampNs: rec.timestampNs,
      direction: rec.direction,
      fdCount: rec.fdCount,
      message,
      problem,
      latencyNs: aux > 0n && aux < MAX_SAFE ? Number(aux) : undefined,
    };
  }

  #note(rec: ShowRecord): NoteEvent {
    let note: Note | undefined;
    let problem: string | undefined;
    try {
      note = decodeNote(rec.body);
    } catch (e) {
      problem = messageOf(e);
    }
    return { type: "note", record: rec, timestampNs: rec.timestampNs, note, problem };
  }
}

/** Pairs a whole list of records (tests, small captures): the events in emission order. */
export function pairRecords(
  records: Iterable<ShowRecord>,
  options: Omit<PairerOptions, "onEvent"> = {},
): ShowEvent[] {
  const out: ShowEvent[] = [];
  const pairer = new Pairer({ ...options, onEvent: (e) => out.push(e) });
  for (const r of records) pairer.push(r);
  pairer.finish();
  return out;
}

/** The name of an opcode (`LOOKUP`), or `opcode N` when unknown. */
export function operationName(opcode: number): string {
  return fuseOp(opcode)?.name ?? `opcode ${opcode}`;
}
