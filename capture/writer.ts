/**
 * CaptureWriter: appends vfstrace records to a pcapng capture (format in
 * `decode/pcapng.ts` and `docs/capture-format.md`) from the proxy's hot path.
 *
 * `append` is synchronous and copies the record into an in-memory buffer,
 * so the caller may reuse its buffers (guest memory) right away. The buffer
 * goes to the sink as whole blocks only, when it fills, every
 * `flushIntervalMs`, on `flush()` and on `close()`: a process killed at any
 * point leaves a file that reads back to its last whole record.
 *
 * Each stream (vhost-user from either side, the backend channel, each
 * virtqueue, vfstrace's own notes) is a pcapng interface. The file starts
 * with the Section Header Block alone; a stream's Interface Description
 * Block is appended together with its first record, right before it.
 *
 * Amending: {@link CaptureWriter.hold} keeps everything appended in memory
 * (the buffer grows, up to `maxHeldBytes`) until the matching
 * {@link CaptureWriter.release}, so {@link CaptureWriter.amendResidence} can
 * patch a record's residence_ns after the fact: the proxy records a reply
 * before the guest may reuse its buffers, and knows its residence only once
 * the guest was notified.
 *
 * A body longer than one packet allows (a 1 MiB FUSE WRITE) is written as
 * a chain: the record and its CONTINUATION records, in one `append`, so no
 * other record comes between them; each continuation takes a seq. The
 * buffer may be flushed between two blocks of a chain (it stays small);
 * a crash there leaves an incomplete chain at the end of the file, which
 * readers treat like a cut final record.
 *
 * A sink with `writeSync` (files, stdout) is written synchronously: a full
 * buffer costs one write(2) inside the `append` that overflowed it. A sink
 * with only an async `write` gets the buffers queued and written in the
 * background; past `maxPendingBytes` queued, records are dropped (counted,
 * and reported in the file by a `dropped` NOTE) rather than stalling the VM.
 *
 * Write errors (ENOSPC, EIO, a closed pipe) stop the writer: the first call
 * that sees the failure throws a {@link CaptureWriteError} naming the sink,
 * the first lost record's seq and how many records were lost; every record
 * appended after that counts as dropped, and `close()` throws the final
 * tally again. Nothing is lost silently.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import {
  encodeNote,
  encodeSectionHeader,
  EPB_RESIDENCE_OFFSET,
  FUSE_IN_HEADER_SIZE,
  FUSE_OUT_HEADER_SIZE,
  MAX_CHAINED_BODY,
  type Note,
  RecordEncoder,
  RecordFlag,
  type RecordInput,
  RecordKind,
  residenceField,
  Stream,
  STREAM_OF_CHAIN,
  StreamInterfaces,
} from "../decode/pcapng.ts";

/** A sink written synchronously (Deno.FsFile, Deno.stdout, anything with writeSync). */
export interface SyncSink {
  /** Writes some of `p`; returns how many bytes were written. */
  writeSync(p: Uint8Array): number;
}

/** A sink written asynchronously (any Deno writer). */
export interface AsyncSink {
  /** Writes some of `p`; resolves to how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/** Where a CaptureWriter puts its bytes; `writeSync` is preferred when both exist. */
export type CaptureSink = SyncSink | AsyncSink;

/** Options of {@link CaptureWriter}. */
export interface CaptureWriterOptions {
  /** Name in errors (the path when opened by path; `stdout`; `capture` otherwise). */
  readonly name?: string | undefined;
  /**
   * Largest body kept of FUSE_REQUEST/FUSE_REPLY records; the FUSE header
   * (or the record's `keep` bytes) is always kept. Unlimited by default,
   * but no body exceeds {@link MAX_CHAINED_BODY} (64 MiB); bodies longer
   * than one packet are stored as chains.
   */
  readonly snaplen?: number | undefined;
  /** In-memory buffer before a write (64 KiB by default). */
  readonly bufferSize?: number | undefined;
  /**
   * Longest time a record waits in the buffer, so `follow` readers see it
   * (100 ms by default; 0: only when the buffer fills or on flush).
   */
  readonly flushIntervalMs?: number | undefined;
  /**
   * Async sinks: queued bytes beyond which records are dropped (16 MiB by
   * default). A record is kept or dropped whole, chain included, so a body
   * longer than this limit is always dropped (and reported).
   */
  readonly maxPendingBytes?: number | undefined;
  /**
   * Largest buffer while {@link CaptureWriter.hold} holds it (16 MiB by
   * default); beyond, it is flushed anyway and records written out can no
   * longer be amended.
   */
  readonly maxHeldBytes?: number | undefined;
  /**
   * Timestamp source, ns since the epoch. By default Date.now at open plus
   * performance.now since: sub-microsecond, monotonic within the run.
   */
  readonly clock?: (() => bigint) | undefined;
  /** shb_userappl; `vfstrace <version>` by default. */
  readonly userAppl?: string | undefined;
  /** shb_os; `Linux <release>` by default. */
  readonly os?: string | undefined;
  /** shb_hardware; the CPU architecture by default. */
  readonly hardware?: string | undefined;
}

/** Counters of a {@link CaptureWriter} (a chain counts as one record). */
export interface CaptureWriterStats {
  /** Records `append` took into the buffer (a later write failure may still drop them). */
  readonly records: number;
  /** Records that reached the sink. */
  readonly written: number;
  /** Records lost: write failure, or async backpressure. */
  readonly dropped: number;
  /** Bytes that reached the sink, file header included. */
  readonly bytes: number;
  /** Bytes accepted but not yet written (buffer + async queue). */
  readonly pendingBytes: number;
}

/** Writing the capture failed; records from `seq` on were lost. */
export class CaptureWriteError extends Error {
  /** The file path, or the sink's name. */
  readonly path: string;
  /** Sequence number of the first record that did not reach the sink. */
  readonly seq: number;
  /** Records lost so far (at close: in total). */
  readonly dropped: number;
  /** errno name of the cause when known, e.g. `ENOSPC`. */
  readonly code: string | undefined;
  /** Creates the error; `cause` is the failed write's error. */
  constructor(path: string, seq: number, dropped: number, cause: unknown, what = "write") {
    const code = errorCode(cause);
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(
      `capture ${path}: ${what} failed at record seq ${seq}: ${msg}; ` +
        `${dropped} record${dropped === 1 ? "" : "s"} dropped`,
      { cause },
    );
    this.name = "CaptureWriteError";
    this.path = path;
    this.seq = seq;
    this.dropped = dropped;
    this.code = code;
  }
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A buffer handed to an async sink, with its records' end offsets and seqs. */
interface Pending {
  readonly bytes: Uint8Array;
  readonly ends: number[];
  readonly seqs: number[];
  /** Seq of a chain whose blocks end the buffer but whose end is in a later one, or -1. */
  readonly tailSeq: number;
}

const TWO32 = 0x1_0000_0000;
const DEFAULT_BUFFER = 64 << 10;
const DEFAULT_INTERVAL_MS = 100;
const DEFAULT_MAX_PENDING = 16 << 20;
const DEFAULT_MAX_HELD = 16 << 20;
/** A buffer grown past this while held goes back to `bufferSize` once released. */
const SHRINK_ABOVE = 1 << 20;

function defaultOs(): string {
  try {
    return `Linux ${Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim()}`;
  } catch {
    return Deno.build.os; // no read permission, or not Linux
  }
}

/**
 * Appends vfstrace records to a pcapng capture. Writes the Section Header
 * Block at open, and each stream's Interface Description Block with the
 * stream's first record.
 */
export class CaptureWriter {
  /** Name used in errors. */
  readonly name: string;
  #sync: SyncSink | undefined;
  #async: AsyncSink | undefined;
  #file: Deno.FsFile | undefined = undefined;
  #fsync = false;
  #snaplen: number | undefined;
  #bufferSize: number;
  #intervalMs: number;
  #maxPending: number;
  #maxHeld: number;
  #clock: (() => bigint) | undefined;
  #enc = new RecordEncoder();
  #ifaces = new StreamInterfaces();
  /** Stream of the last record written: a CONTINUATION given as is goes on it. */
  #lastStream: number = Stream.VFSTRACE;
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;
  #ends: number[] = [];
  #seqs: number[] = [];
  /** Offset in #buf of each buffered record's first EPB (parallel to #seqs); -1: not there whole. */
  #starts: number[] = [];
  /** Buffers handed to the sink so far: a chain spanning two is not amendable. */
  #generation = 0;
  #held = 0;
  /** Seq of the chain `append` is writing, or -1: owner of buffered blocks not in #ends. */
  #chainSeq = -1;
  #queue: Pending[] = [];
  #queued = 0;
  #draining: Promise<void> | undefined = undefined;
  #seq = 0;
  #records = 0;
  #written = 0;
  #bytes = 0;
  #dropped = 0;
  #bpCount = 0;
  #bpFirst = 0;
  #bpLast = 0;
  #error: CaptureWriteError | undefined = undefined;
  #reported = false;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #closed = false;
  #forced = false;
  // Default clock: epoch ns at open as two u32 halves, plus performance.now.
  #baseHi: number;
  #baseLo: number;
  #perf0: number;
  #lastOff = 0;
  #tsHi = 0;
  #tsLo = 0;

  /**
   * Opens `path` (created or truncated) and writes the file header. The
   * file is fsynced and closed by {@link close}. Throws CaptureWriteError
   * when the header cannot be written.
   */
  static create(path: string, options: CaptureWriterOptions = {}): CaptureWriter {
    const file = Deno.openSync(path, { write: true, create: true, truncate: true });
    try {
      const writer = new CaptureWriter(file, { ...options, name: options.name ?? path });
      writer.#file = file;
      // fsync a regular file only: on a pipe or a device it fails or means nothing.
      writer.#fsync = file.statSync().isFile;
      return writer;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** A writer on standard output (e.g. piped into `tshark -r -`). */
  static stdout(options: CaptureWriterOptions = {}): CaptureWriter {
    return new CaptureWriter(Deno.stdout, { ...options, name: options.name ?? "stdout" });
  }

  /**
   * A writer on `sink`, which stays open after {@link close} (the caller
   * owns it). Writes the file header now (sync sinks) or first (async).
   */
  constructor(sink: CaptureSink, options: CaptureWriterOptions = {}) {
    this.name = options.name ?? "capture";
    if ("writeSync" in sink && typeof sink.writeSync === "function") this.#sync = sink;
    else this.#async = sink as AsyncSink;
    this.#snaplen = options.snaplen;
    this.#bufferSize = Math.max(4096, options.bufferSize ?? DEFAULT_BUFFER);
    this.#intervalMs = options.flushIntervalMs ?? DEFAULT_INTERVAL_MS;
    this.#maxPending = options.maxPendingBytes ?? DEFAULT_MAX_PENDING;
    this.#maxHeld = options.maxHeldBytes ?? DEFAULT_MAX_HELD;
    this.#clock = options.clock;
    this.#buf = new Uint8Array(this.#bufferSize);
    this.#view = new DataView(this.#buf.buffer);
    const base = BigInt(Date.now()) * 1_000_000n;
    this.#perf0 = performance.now();
    this.#baseHi = Number(base >> 32n);
    this.#baseLo = Number(base & 0xffffffffn);

    const shb = encodeSectionHeader({
      userAppl: options.userAppl ?? `vfstrace ${denoJson.version}`,
      os: options.os ?? defaultOs(),
      hardware: options.hardware ?? Deno.build.arch,
    });
    this.#buf.set(shb, 0);
    this.#len = shb.byteLength;
    // The header goes out now, so even a capture that never gets a record is a valid file.
    this.#flushBuffer();
    if (this.#error !== undefined) {
      this.#reported = true;
      throw this.#error;
    }
  }

  /** Counters. */
  get stats(): CaptureWriterStats {
    return {
      records: this.#records,
      written: this.#written,
      dropped: this.#dropped,
      bytes: this.#bytes,
      pendingBytes: this.#len + this.#queued,
    };
  }

  /** Records lost so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** The write failure that stopped the writer, if any. */
  get error(): CaptureWriteError | undefined {
    return this.#error;
  }

  /** The snap length of FUSE bodies, if one was set. */
  get snaplen(): number | undefined {
    return this.#snaplen;
  }

  /** Sequence number the next record gets. */
  get nextSeq(): number {
    return this.#seq;
  }

  /** The streams that have an interface, by interface id (IDBs appended so far). */
  get streams(): readonly number[] {
    return this.#ifaces.streams;
  }

  /** Whether {@link hold} is in effect. */
  get held(): boolean {
    return this.#held > 0;
  }

  /**
   * Keeps what is appended from now on in memory until the matching
   * {@link release} (holds nest), so {@link amendResidence} can still patch
   * it. The buffer grows as needed up to `maxHeldBytes`; past that it is
   * flushed anyway (those records can no longer be amended). Neither the
   * flush interval nor a full buffer writes while held; {@link flush} and
   * {@link close} still do.
   */
  hold(): void {
    this.#held++;
  }

  /**
   * Ends a {@link hold}. Once no hold is left, a buffer that reached
   * `bufferSize` is written out, and the flush interval applies again.
   */
  release(): void {
    if (this.#held === 0) return;
    if (--this.#held > 0) return;
    if (this.#len >= this.#bufferSize && !this.#closed) this.#flushBuffer();
    if (this.#buf.byteLength > Math.max(SHRINK_ABOVE, this.#bufferSize) && this.#len === 0) {
      this.#buf = new Uint8Array(this.#bufferSize);
      this.#view = new DataView(this.#buf.buffer);
    }
    this.#armTimer();
  }

  /**
   * Sets the residence_ns of the record `seq` (a chain: its first record)
   * to `ns`, measured ({@link residenceField}: saturating, at least 1).
   * Returns false, changing nothing, when the record is no longer in memory
   * (written out: not held, or past `maxHeldBytes`), was dropped, or is not
   * a record of this writer.
   */
  amendResidence(seq: number, ns: bigint | number): boolean {
    const seqs = this.#seqs;
    const n = seqs.length;
    if (n === 0 || this.#error !== undefined) return false;
    // Seqs in the buffer increase (mod 2^32): binary search on the distance from the first.
    const first = seqs[0]!;
    const want = (seq - first) >>> 0;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const d = (seqs[mid]! - first) >>> 0;
      if (d === want) {
        const start = this.#starts[mid]!;
        if (start < 0) return false;
        this.#view.setUint32(start + EPB_RESIDENCE_OFFSET, residenceField(ns), true);
        return true;
      }
      if (d < want) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** Now, on the writer's clock (ns since the epoch): for latencies consistent with timestamps. */
  nowNs(): bigint {
    if (this.#clock !== undefined) return this.#clock();
    this.#tick();
    return (BigInt(this.#tsHi) << 32n) | BigInt(this.#tsLo);
  }

  /**
   * Appends one record and returns its seq. The body is copied. FUSE
   * bodies are cut to the snap length (never below `keep`). A body longer
   * than one packet is written as a chain whose continuations take the
   * next seqs ({@link nextSeq} advances by 1 + continuations). Throws
   * EncodeError for out-of-range fields (no seq is used), and
   * CaptureWriteError once when a write failure is first seen (this record
   * and the unwritten ones are counted as dropped).
   */
  append(record: RecordInput): number {
    if (this.#closed) throw new Error(`capture ${this.name}: append after close`);
    // After drops, resume only once half the queue drained (no flapping), report first.
    if (
      this.#bpCount > 0 && this.#error === undefined &&
      this.#queued + this.#len <= this.#maxPending >> 1
    ) {
      this.#appendDroppedNote();
    }
    const kind = record.kind;
    let limit = MAX_CHAINED_BODY;
    if (
      this.#snaplen !== undefined &&
      (kind === RecordKind.FUSE_REQUEST || kind === RecordKind.FUSE_REPLY)
    ) {
      const keep = record.keep ??
        (kind === RecordKind.FUSE_REQUEST ? FUSE_IN_HEADER_SIZE : FUSE_OUT_HEADER_SIZE);
      limit = Math.max(this.#snaplen, keep);
    }
    const enc = this.#enc;
    const len = enc.measure(record, limit);
    const blocks = enc.blockCount;
    const seq = this.#seq;
    this.#seq = (seq + blocks) >>> 0;
    if (this.#error !== undefined) {
      this.#dropped++;
      this.#throwUnreported();
      return seq;
    }
    if (
      this.#async !== undefined && !this.#forced &&
      (this.#bpCount > 0 || this.#queued + this.#len + len > this.#maxPending)
    ) {
      // Backpressure: the sink is slower than the guest. Drop and say so later.
      if (this.#bpCount === 0) this.#bpFirst = seq;
      this.#bpLast = (seq + blocks - 1) >>> 0; // the whole gap, continuations' seqs included
      this.#bpCount++;
      this.#dropped++;
      return seq;
    }
    const stream = enc.stream === STREAM_OF_CHAIN ? this.#lastStream : enc.stream;
    let iface = this.#ifaces.idOf(stream);
    const idb = iface < 0 ? this.#ifaces.block(stream) : undefined;
    const first = blocks === 1 ? len : enc.blockLength(0);
    // The IDB and the record's first block go to the same buffer: the IDB never lands alone.
    if (!this.#reserve(first + (idb?.byteLength ?? 0))) return this.#lostInAppend(seq);
    if (idb !== undefined) {
      this.#buf.set(idb, this.#len);
      this.#len += idb.byteLength;
      iface = this.#ifaces.add(stream);
    }
    enc.useInterface(iface);
    this.#lastStream = stream;
    let start = this.#len;
    const ts = record.timestampNs;
    if (ts !== undefined) {
      this.#tsHi = Number(ts >> 32n);
      this.#tsLo = Number(ts & 0xffffffffn);
    } else if (this.#clock !== undefined) {
      const t = this.#clock();
      this.#tsHi = Number(t >> 32n);
      this.#tsLo = Number(t & 0xffffffffn);
    } else {
      this.#tick();
    }
    if (blocks === 1) {
      this.#len += enc.write(this.#buf, this.#view, this.#len, seq, this.#tsHi, this.#tsLo);
    } else {
      // Block by block: the buffer stays one packet big, and is flushed between whole blocks.
      this.#chainSeq = seq;
      const generation = this.#generation;
      for (let i = 0; i < blocks; i++) {
        if (i > 0 && !this.#reserve(enc.blockLength(i))) {
          this.#chainSeq = -1;
          return this.#lostInAppend(seq);
        }
        this.#len += enc.writeBlock(
          i,
          this.#buf,
          this.#view,
          this.#len,
          seq,
          this.#tsHi,
          this.#tsLo,
        );
      }
      this.#chainSeq = -1;
      // Its first block went out with an earlier buffer: nothing left to amend.
      if (this.#generation !== generation) start = -1;
    }
    this.#ends.push(this.#len);
    this.#seqs.push(seq);
    this.#starts.push(start);
    this.#records++;
    if (this.#held === 0) this.#armTimer();
    return seq;
  }

  /** Starts the flush interval's timer if records wait and none runs. */
  #armTimer(): void {
    if (this.#timer !== undefined || this.#intervalMs <= 0 || this.#len === 0 || this.#closed) {
      return;
    }
    const timer = setTimeout(() => {
      this.#timer = undefined;
      // Held: the release re-arms it.
      if (this.#len > 0 && !this.#closed && this.#held === 0) this.#flushBuffer();
    }, this.#intervalMs);
    // A pending flush must not keep the process alive.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Makes room for a block of `len` bytes; false when the flush that needed failed. */
  #reserve(len: number): boolean {
    if (this.#len + len <= this.#buf.byteLength) return true;
    if (this.#held > 0 && this.#len + len <= this.#maxHeld) {
      // Held records stay amendable: grow (copying) rather than write them out.
      let size = this.#buf.byteLength;
      while (size < this.#len + len) size *= 2;
      const next = new Uint8Array(Math.min(size, Math.max(this.#maxHeld, this.#len + len)));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
      return true;
    }
    if (this.#len > 0) this.#flushBuffer();
    if (this.#error !== undefined) return false;
    if (len > this.#buf.byteLength) {
      let size = this.#buf.byteLength;
      while (size < len) size *= 2;
      this.#buf = new Uint8Array(size);
      this.#view = new DataView(this.#buf.buffer);
    }
    return true;
  }

  /** The record being appended is lost to a write failure seen just now. */
  #lostInAppend(seq: number): number {
    this.#dropped++;
    this.#throwUnreported();
    return seq;
  }

  /** Appends a NOTE record (JSON body, SYNTHETIC flag); returns its seq. */
  note(note: Note, comment?: string): number {
    return this.append({
      kind: RecordKind.NOTE,
      flags: RecordFlag.SYNTHETIC,
      body: encodeNote(note),
      comment,
    });
  }

  /**
   * Writes everything accepted so far to the sink (for async sinks: and
   * waits for it). Throws CaptureWriteError if a failure was not yet reported.
   */
  async flush(): Promise<void> {
    this.#throwUnreported();
    if (this.#len > 0) this.#flushBuffer();
    while (this.#draining !== undefined) await this.#draining;
    this.#throwUnreported();
  }

  /**
   * Flushes, fsyncs and closes a file opened by {@link create} (a sink
   * passed in stays open). Throws CaptureWriteError, with the final count
   * of dropped records, if any write failed during the writer's life.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#bpCount > 0 && this.#error === undefined) this.#appendDroppedNote();
    this.#closed = true;
    try {
      if (this.#len > 0) this.#flushBuffer();
      while (this.#draining !== undefined) await this.#draining;
      if (this.#file !== undefined && this.#fsync && this.#error === undefined) {
        try {
          this.#file.syncSync();
        } catch (e) {
          this.#fail(e, this.#seq, 0, "fsync");
        }
      }
    } finally {
      this.#file?.close();
      this.#file = undefined;
    }
    const e = this.#error;
    if (e !== undefined) {
      this.#reported = true;
      throw new CaptureWriteError(this.name, e.seq, this.#dropped, e.cause);
    }
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #tick(): void {
    let off = Math.round((performance.now() - this.#perf0) * 1e6);
    if (off < this.#lastOff) off = this.#lastOff;
    this.#lastOff = off;
    const offHi = Math.floor(off / TWO32);
    let lo = this.#baseLo + (off - offHi * TWO32);
    let hi = this.#baseHi + offHi;
    if (lo >= TWO32) {
      lo -= TWO32;
      hi++;
    }
    this.#tsHi = hi;
    this.#tsLo = lo;
  }

  #appendDroppedNote(): void {
    const note: Note = {
      type: "dropped",
      count: this.#bpCount,
      "first_seq": this.#bpFirst,
      "last_seq": this.#bpLast,
      reason: "backpressure: the sink was slower than the traffic",
    };
    this.#bpCount = 0;
    // The report itself must get through: past close and past the backpressure limit.
    const closed = this.#closed;
    this.#closed = false;
    this.#forced = true;
    try {
      this.note(note);
    } finally {
      this.#closed = closed;
      this.#forced = false;
    }
  }

  #throwUnreported(): void {
    if (this.#error !== undefined && !this.#reported) {
      this.#reported = true;
      // Report the count as of now, not as of the failure.
      const e = this.#error;
      throw new CaptureWriteError(this.name, e.seq, this.#dropped, e.cause);
    }
  }

  /** Hands the buffer to the sink: written now (sync) or queued (async). */
  #flushBuffer(): void {
    if (this.#error !== undefined) return;
    this.#generation++;
    this.#starts.length = 0;
    if (this.#sync !== undefined) {
      this.#writeSync(this.#buf, this.#len, this.#ends, this.#seqs, this.#chainSeq);
      this.#len = 0;
      this.#ends.length = 0;
      this.#seqs.length = 0;
      return;
    }
    this.#queue.push({
      bytes: this.#buf.subarray(0, this.#len),
      ends: this.#ends,
      seqs: this.#seqs,
      tailSeq: this.#chainSeq,
    });
    this.#queued += this.#len;
    // The queued buffer is owned by the pending write; start a fresh one.
    this.#buf = new Uint8Array(this.#bufferSize);
    this.#view = new DataView(this.#buf.buffer);
    this.#len = 0;
    this.#ends = [];
    this.#seqs = [];
    if (this.#draining === undefined) {
      this.#draining = this.#drain().finally(() => {
        this.#draining = undefined;
      });
    }
  }

  #writeSync(
    bytes: Uint8Array,
    len: number,
    ends: number[],
    seqs: number[],
    tailSeq: number,
  ): void {
    const sink = this.#sync!;
    let off = 0;
    try {
      while (off < len) {
        const n = sink.writeSync(bytes.subarray(off, len));
        if (!(n > 0)) throw new Error(`write returned ${n}`);
        off += n;
        this.#bytes += n;
      }
      this.#written += ends.length;
    } catch (e) {
      this.#lost(e, off, ends, seqs, tailSeq);
    }
  }

  async #drain(): Promise<void> {
    const sink = this.#async!;
    while (this.#queue.length > 0 && this.#error === undefined) {
      const item = this.#queue[0]!;
      let off = 0;
      try {
        while (off < item.bytes.byteLength) {
          const n = await sink.write(item.bytes.subarray(off));
          if (!(n > 0)) throw new Error(`write returned ${n}`);
          off += n;
          this.#bytes += n;
        }
      } catch (e) {
        this.#queue.shift();
        this.#queued -= item.bytes.byteLength;
        this.#lost(e, off, item.ends, item.seqs, item.tailSeq);
        return;
      }
      this.#queue.shift();
      this.#queued -= item.bytes.byteLength;
      this.#written += item.ends.length;
    }
  }

  /**
   * A write failed after `off` bytes of a buffer holding records ending at
   * `ends`, and maybe, after them, the first blocks of chain `tailSeq`.
   */
  #lost(e: unknown, off: number, ends: number[], seqs: number[], tailSeq: number): void {
    let whole = 0;
    while (whole < ends.length && ends[whole]! <= off) whole++;
    this.#written += whole;
    let lost = ends.length - whole;
    // Everything still queued or buffered is lost with it.
    for (const q of this.#queue) lost += q.ends.length;
    lost += this.#async !== undefined ? this.#ends.length : 0;
    this.#queue = [];
    this.#queued = 0;
    if (this.#async !== undefined) {
      this.#len = 0;
      this.#ends = [];
      this.#seqs = [];
      this.#starts = [];
    }
    // The first record lost: a whole one, else the chain cut after them (the append
    // writing it counts it as dropped).
    this.#fail(e, seqs[whole] ?? (tailSeq >= 0 ? tailSeq : this.#seq), lost, "write");
  }

  #fail(e: unknown, seq: number, lost: number, what: string): void {
    this.#dropped += lost;
    if (this.#error === undefined) {
      this.#error = new CaptureWriteError(this.name, seq, this.#dropped, e, what);
    }
  }
}
