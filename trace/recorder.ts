/**
 * What the tracing engine tells a recording: one call per vhost-user message,
 * FUSE request, FUSE reply, notification and note. The capture writer
 * implements it; tests use {@link MemoryRecorder}.
 *
 * @module
 */

/** Which way a vhost-user message went. */
export const VhostDirection = {
  /** Front-end (QEMU) → back-end, main socket. */
  FrontToBack: 0,
  /** Back-end → front-end, main socket (replies). */
  BackToFront: 1,
  /** Back-end → front-end on the backend channel (requests). */
  BackendChannelRequest: 2,
  /** Front-end → back-end on the backend channel (replies). */
  BackendChannelReply: 3,
} as const;

/** A {@link VhostDirection} value. */
export type VhostDirection = typeof VhostDirection[keyof typeof VhostDirection];

/** Which notification happened. */
export const NotifyKind = {
  /** The guest kicked a queue. */
  GuestKick: 0,
  /** The backend signalled a call. */
  BackendCall: 1,
  /** The proxy kicked the backend. */
  BackendKick: 2,
  /** The proxy signalled the guest. */
  GuestCall: 3,
} as const;

/** A {@link NotifyKind} value. */
export type NotifyKind = typeof NotifyKind[keyof typeof NotifyKind];

/** A FUSE request as taken from a guest queue. */
export interface RequestRecord {
  /** Virtqueue index (0 = hiprio). */
  queue: number;
  /** Descriptor head. */
  head: number;
  /** Buffers in the chain. */
  descriptors: number;
  /** Device-writable capacity in bytes. */
  writableCapacity: number;
  /** The device-readable bytes, as segments (zero-copy views of guest memory). */
  body: readonly Uint8Array[];
  /** Total of `body`. */
  length: number;
  /** Proxy residence: guest kick seen → back-end kicked, ns. */
  residenceNs: bigint;
}

/** A FUSE reply as the backend returned it. */
export interface ReplyRecord {
  /** Virtqueue index. */
  queue: number;
  /** Descriptor head. */
  head: number;
  /** The device-written bytes (first `length` bytes of the writable buffers). */
  body: readonly Uint8Array[];
  /** Bytes written per the used element (clamped to the chain's capacity). */
  length: number;
  /** Time since the request was taken from the guest ring, ns. */
  latencyNs: bigint;
  /** Sequence number of the request record, or -1 when it was not recorded. */
  requestSeq: number;
}

/** Receives everything the engine observes. Implementations must not keep `body` views. */
export interface TraceRecorder {
  /** A vhost-user message that was relayed (bytes exactly as received). */
  vhostUser(direction: VhostDirection, bytes: Uint8Array, fdCount: number): void;
  /** A request; returns its record sequence number. */
  request(record: RequestRecord): number;
  /** A reply; returns its record sequence number. */
  reply(record: ReplyRecord): number;
  /**
   * The proxy residence of replies just recorded (back-end call seen →
   * guest notified), known only once the guest was notified, which must
   * come after their bytes were recorded.
   */
  replyResidence(seqs: readonly number[], residenceNs: bigint): void;
  /**
   * A batch of replies starts: what is recorded until {@link endBatch}
   * must stay amendable by {@link replyResidence} (a capture keeps it in
   * memory). Optional: recorders that do not amend records skip it.
   */
  beginBatch?(): void;
  /** The batch begun by {@link beginBatch} ended (after {@link replyResidence}). */
  endBatch?(): void;
  /** A chain the guest made available that could not be relayed. */
  malformed(queue: number, head: number, reason: string): void;
  /** A kick or call. */
  notify(kind: NotifyKind, queue: number, count: bigint): void;
  /** Anything else worth knowing later (JSON-able, with a `type`). */
  note(note: { type: string; [key: string]: unknown }): void;
}

/** One entry of a {@link MemoryRecorder}. */
export type RecordedEvent =
  | { kind: "vhost"; direction: VhostDirection; bytes: Uint8Array; fdCount: number }
  | {
    kind: "request";
    seq: number;
    queue: number;
    head: number;
    bytes: Uint8Array;
    residenceNs: bigint;
  }
  | {
    kind: "reply";
    seq: number;
    queue: number;
    head: number;
    bytes: Uint8Array;
    requestSeq: number;
    latencyNs: bigint;
    residenceNs: bigint | undefined;
  }
  | { kind: "malformed"; queue: number; head: number; reason: string }
  | { kind: "notify"; notify: NotifyKind; queue: number; count: bigint }
  | { kind: "note"; note: { type: string; [key: string]: unknown } };

/** Concatenates segments into one array. */
export function concatSegments(segments: readonly Uint8Array[], length?: number): Uint8Array {
  const total = length ?? segments.reduce((n, s) => n + s.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const s of segments) {
    if (off >= total) break;
    const part = s.byteLength <= total - off ? s : s.subarray(0, total - off);
    out.set(part, off);
    off += part.byteLength;
  }
  return out;
}

/** Keeps copies of everything in memory (tests, small tools). */
export class MemoryRecorder implements TraceRecorder {
  /** Everything recorded, in order. */
  readonly events: RecordedEvent[] = [];
  #seq = 0;
  #replies = new Map<number, Extract<RecordedEvent, { kind: "reply" }>>();

  /** Records a vhost-user message. */
  vhostUser(direction: VhostDirection, bytes: Uint8Array, fdCount: number): void {
    this.events.push({ kind: "vhost", direction, bytes: bytes.slice(), fdCount });
  }

  /** Records a request. */
  request(r: RequestRecord): number {
    const seq = this.#seq++;
    this.events.push({
      kind: "request",
      seq,
      queue: r.queue,
      head: r.head,
      bytes: concatSegments(r.body, r.length),
      residenceNs: r.residenceNs,
    });
    return seq;
  }

  /** Records a reply. */
  reply(r: ReplyRecord): number {
    const seq = this.#seq++;
    const event: Extract<RecordedEvent, { kind: "reply" }> = {
      kind: "reply",
      seq,
      queue: r.queue,
      head: r.head,
      bytes: concatSegments(r.body, r.length),
      requestSeq: r.requestSeq,
      latencyNs: r.latencyNs,
      residenceNs: undefined,
    };
    this.events.push(event);
    this.#replies.set(seq, event);
    return seq;
  }

  /** Nothing to hold: events are amended in place. */
  beginBatch(): void {}

  /** Nothing to release. */
  endBatch(): void {}

  /** Stamps the residence on replies recorded earlier. */
  replyResidence(seqs: readonly number[], residenceNs: bigint): void {
    for (const seq of seqs) {
      const e = this.#replies.get(seq);
      if (e !== undefined) e.residenceNs = residenceNs;
      this.#replies.delete(seq);
    }
  }

  /** Records a malformed chain. */
  malformed(queue: number, head: number, reason: string): void {
    this.events.push({ kind: "malformed", queue, head, reason });
  }

  /** Records a notification. */
  notify(notify: NotifyKind, queue: number, count: bigint): void {
    this.events.push({ kind: "notify", notify, queue, count });
  }

  /** Records a note. */
  note(note: { type: string; [key: string]: unknown }): void {
    this.events.push({ kind: "note", note });
  }
}
