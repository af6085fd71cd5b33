/**
 * CaptureReader: streams the records of a vfstrace capture (a file, stdin,
 * any Deno reader) in constant memory, however large the file.
 *
 * Bytes are read in chunks into a buffer that is never overwritten: a
 * record's body is a view into the chunk it came in, so records stay valid
 * after the iteration moves on (holding one keeps its chunk alive: slice a
 * body you keep for long). Only a block that straddles two chunks is copied
 * (the carry-over); {@link CaptureReader.peakBufferedBytes} shows the most
 * the reader held at once.
 *
 * A record whose body did not fit one packet is stored as a chain (the
 * record, then CONTINUATION records; see `docs/capture-format.md`): the reader
 * yields it as one record with the whole body (a fresh array) and its
 * `continuations` count. `raw` yields the packets as they are instead.
 * Apart from the chain being assembled, memory stays constant.
 *
 * A capture being written, or cut by a crash, ends inside a block or a
 * chain: reading stops there and reports {@link CaptureReader.truncatedAt}
 * (the chain's first block) instead of throwing. Corruption in the middle
 * throws a {@link CaptureReadError} with the offset and reason, unless
 * `recover` is set: then a block with a bad content is skipped, lost
 * framing is resynchronised by scanning for the next block that is
 * certainly a record EPB (type, both lengths, interface, record magic and
 * version agree) or a stream's IDB, a packet whose IDB was lost is read on
 * an assumed interface (no name), and a broken chain is dropped (a record
 * that interrupts it is kept); each skipped stretch is in
 * {@link CaptureReader.recoveries}. A file of another record version is an
 * error even with `recover` (reason `bad-version`, at its first record).
 *
 * Each record says its stream's interface (`interfaceId`, `interfaceName`:
 * `vhost-user.frontend`, `hiprio`, `request.0` …); {@link CaptureReader.interfaces}
 * lists the interfaces seen so far.
 *
 * `follow` (tail -f) waits at the end of the data for more, polling, until
 * its AbortSignal fires; the iteration then ends normally.
 *
 * @module
 */
import {
  addRecovery,
  type CaptureRecord,
  DEFAULT_MAX_BLOCK_LENGTH,
  type InterfaceInfo,
  MAX_CHAINED_BODY,
  PcapngChainError,
  PcapngDecodeError,
  type PcapngErrorReason,
  PcapngParser,
  type Recovery,
  type SectionHeader,
} from "../decode/pcapng.ts";

/** Where a CaptureReader gets bytes: any Deno reader (Deno.FsFile, Deno.stdin). */
export interface ReadSource {
  /** Reads into `p`; resolves to the byte count, or null at end of data. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Options of {@link CaptureReader}. */
export interface CaptureReaderOptions {
  /** Name in errors (the path when opened by path). */
  readonly name?: string | undefined;
  /** Bytes asked of the source per read (1 MiB by default). */
  readonly chunkSize?: number | undefined;
  /** Skip corrupt stretches instead of throwing at the first. */
  readonly recover?: boolean | undefined;
  /** At the end of the data, wait for more (like tail -f) until `signal` aborts. */
  readonly follow?: boolean | undefined;
  /** Poll interval of `follow` (100 ms by default). */
  readonly pollMs?: number | undefined;
  /** Stops the iteration (normally, not with an error) when aborted. */
  readonly signal?: AbortSignal | undefined;
  /** Largest block total length accepted before declaring corruption (16 MiB). */
  readonly maxBlockLength?: number | undefined;
  /** Yield every packet as it is, CONTINUATION records included (no reassembly). */
  readonly raw?: boolean | undefined;
  /** Largest reassembled body before a chain is corruption ({@link MAX_CHAINED_BODY}, 64 MiB). */
  readonly maxBodyLength?: number | undefined;
}

/** Reading the capture failed: corrupt data (with its offset) or an I/O error. */
export class CaptureReadError extends Error {
  /** The file path, or the source's name. */
  readonly path: string;
  /** File offset of the problem (for I/O errors: how far reading got). */
  readonly offset: number;
  /** Why: a {@link PcapngErrorReason}, or `io` for a failed read. */
  readonly reason: PcapngErrorReason | "io";
  /** Creates the error; `cause` is the PcapngDecodeError or the I/O error. */
  constructor(
    path: string,
    offset: number,
    reason: PcapngErrorReason | "io",
    message: string,
    cause?: unknown,
  ) {
    super(`capture ${path}: ${message}`, { cause });
    this.name = "CaptureReadError";
    this.path = path;
    this.offset = offset;
    this.reason = reason;
  }
}

/** Counters of a {@link CaptureReader}. */
export interface CaptureReaderStats {
  /** Records yielded (a reassembled chain counts once). */
  readonly records: number;
  /** Whole blocks consumed (all types). */
  readonly blocks: number;
  /** Blocks skipped: unknown types, packets of other link types. */
  readonly skippedBlocks: number;
  /** Bytes read from the source. */
  readonly bytesRead: number;
  /** Stretches skipped by `recover`. */
  readonly recoveries: number;
}

const DEFAULT_CHUNK = 1 << 20;
/** Most records in one {@link CaptureReader.batches} array. */
export const MAX_BATCH = 4096;
const DEFAULT_POLL_MS = 100;
/** Recoveries kept in detail; more are only counted. */
const MAX_RECOVERIES_KEPT = 1000;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Streams the records of a capture. Iterate it once (`for await` over the
 * reader, or over {@link CaptureReader.batches} for arrays of records); the
 * section, interfaces, {@link truncatedAt} and counters are filled in as it
 * goes.
 */
export class CaptureReader implements AsyncIterable<CaptureRecord> {
  /** Name used in errors. */
  readonly name: string;
  #src: ReadSource;
  #file: Deno.FsFile | undefined = undefined;
  /** A regular file opened by {@link open}: read synchronously (see there). */
  #syncFile: Deno.FsFile | undefined = undefined;
  #parser: PcapngParser;
  #chunk: number;
  #recover: boolean;
  #follow: boolean;
  #pollMs: number;
  #signal: AbortSignal | undefined;
  #buf = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  #end = 0;
  #base = 0;
  #eof = false;
  #used = false;
  #records = 0;
  #bytesRead = 0;
  #peak = 0;
  #truncatedAt: number | undefined = undefined;
  #recoveries: Recovery[] = [];
  #recoveryCount = 0;
  #lastResumedAt: number | undefined = undefined;

  /** Opens the capture at `path`; the file is closed when the iteration ends. */
  static async open(path: string, options: CaptureReaderOptions = {}): Promise<CaptureReader> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new CaptureReadError(path, 0, "io", (e as Error).message, e);
    }
    const reader = new CaptureReader(file, { ...options, name: options.name ?? path });
    reader.#file = file;
    // A regular file is read synchronously: from the page cache a chunk takes tens of
    // microseconds, less than the round trip through the runtime's I/O threads that an
    // async read costs (and waits for on a busy machine). Pipes and devices stay async.
    try {
      if ((await file.stat()).isFile) reader.#syncFile = file;
    } catch {
      // Unknown: async reads work for everything.
    }
    return reader;
  }

  /** A reader of standard input. */
  static stdin(options: CaptureReaderOptions = {}): CaptureReader {
    return new CaptureReader(Deno.stdin, { ...options, name: options.name ?? "stdin" });
  }

  /** A reader of `source`, which the caller keeps owning. */
  constructor(source: ReadSource, options: CaptureReaderOptions = {}) {
    this.name = options.name ?? "capture";
    this.#src = source;
    this.#chunk = Math.max(4096, options.chunkSize ?? DEFAULT_CHUNK);
    this.#recover = options.recover ?? false;
    this.#follow = options.follow ?? false;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.#signal = options.signal;
    this.#parser = new PcapngParser({
      maxBlockLength: options.maxBlockLength ?? DEFAULT_MAX_BLOCK_LENGTH,
      assumeInterface: this.#recover,
      raw: options.raw ?? false,
      maxBodyLength: options.maxBodyLength ?? MAX_CHAINED_BODY,
    });
  }

  /** The current section's header, once read. */
  get section(): SectionHeader | undefined {
    return this.#parser.section;
  }

  /** The current section's interfaces. */
  get interfaces(): readonly InterfaceInfo[] {
    return this.#parser.interfaces;
  }

  /**
   * File offset of the record the data ended inside (a capture being
   * written or cut by a crash): the block cut short, or the first block of
   * an incomplete chain; set once the iteration has ended, undefined if the
   * data ended after a whole record.
   */
  get truncatedAt(): number | undefined {
    return this.#truncatedAt;
  }

  /** Stretches skipped by `recover` (the first 1000; {@link stats} counts all). */
  get recoveries(): readonly Recovery[] {
    return this.#recoveries;
  }

  /** Bytes held but not yet consumed. */
  get bufferedBytes(): number {
    return this.#end - this.#pos;
  }

  /** The largest buffer the reader held at once: constant in the file size. */
  get peakBufferedBytes(): number {
    return this.#peak;
  }

  /** Counters. */
  get stats(): CaptureReaderStats {
    return {
      records: this.#records,
      blocks: this.#parser.blocks,
      skippedBlocks: this.#parser.skippedBlocks,
      bytesRead: this.#bytesRead,
      recoveries: this.#recoveryCount,
    };
  }

  /** Closes the file opened by {@link open} (the iteration does it too). Idempotent. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
    this.#syncFile = undefined;
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as {@link records}. */
  [Symbol.asyncIterator](): AsyncGenerator<CaptureRecord, void, undefined> {
    return this.records();
  }

  /**
   * The records, in file order, each with its (first block's) file offset.
   * Throws CaptureReadError for corruption (without `recover`) and read
   * errors. {@link batches} gives the same records with less overhead.
   */
  async *records(): AsyncGenerator<CaptureRecord, void, undefined> {
    const signal = this.#signal;
    for await (const batch of this.#batches()) {
      for (let i = 0; i < batch.length; i++) {
        // An abort stops at the next record, not at the end of the batch.
        if (signal?.aborted) return;
        this.#records++;
        yield batch[i]!;
      }
    }
  }

  /**
   * The records of {@link records} in arrays: every whole record the
   * buffer holds (at most {@link MAX_BATCH}) at once, so that a reader of a
   * large file pays one await per chunk read, not one per record. The
   * records before a damaged block come in a batch before the error is
   * thrown.
   */
  async *batches(): AsyncGenerator<CaptureRecord[], void, undefined> {
    for await (const batch of this.#batches()) {
      this.#records += batch.length;
      yield batch;
    }
  }

  async *#batches(): AsyncGenerator<CaptureRecord[], void, undefined> {
    if (this.#used) throw new Error(`capture ${this.name}: a reader iterates only once`);
    this.#used = true;
    const parser = this.#parser;
    const signal = this.#signal;
    let batch: CaptureRecord[] = [];
    try {
      for (;;) {
        if (signal?.aborted) break;
        let len = -1;
        let rec: CaptureRecord | null = null;
        let whole = false;
        try {
          len = parser.frame(this.#view, this.#pos, this.#end, this.#base);
          if (len >= 0 && this.#pos + len <= this.#end) {
            rec = parser.consume(this.#buf, this.#view, this.#pos, len, this.#base);
            this.#pos += len;
            whole = true;
          }
        } catch (e) {
          // The records before the damage first.
          if (batch.length > 0) {
            yield batch;
            batch = [];
          }
          await this.#onError(e, len);
          continue;
        }
        if (whole) {
          if (rec !== null) {
            batch.push(rec);
            if (batch.length >= MAX_BATCH) {
              yield batch;
              batch = [];
            }
          }
          continue;
        }
        // The block is not whole yet: hand over what is read, then read on.
        if (batch.length > 0) {
          yield batch;
          batch = [];
          continue; // the consumer may have aborted meanwhile
        }
        const had = this.#end - this.#pos;
        if (await this.#fill(len < 0 ? 12 : len)) continue;
        // The data ended; bytes that came before the end may still be judged (a bad header).
        if (this.#end - this.#pos > had) continue;
        if (this.#follow && !signal?.aborted) {
          await sleep(this.#pollMs, signal);
          continue;
        }
        break;
      }
      if (batch.length > 0) yield batch;
      // Leftover bytes after the data ended are the start of a block still to come,
      // and an open chain is a record still to come (it starts earlier).
      if (this.#eof) {
        const chain = parser.pendingChain;
        if (chain !== undefined) this.#truncatedAt = chain;
        else if (this.#end > this.#pos) this.#truncatedAt = this.#base + this.#pos;
      }
    } finally {
      this.close();
    }
  }

  /** Makes `need` bytes from #pos available; false when the data ended first. */
  async #fill(need: number): Promise<boolean> {
    if (this.#end - this.#pos >= need) return true;
    const room = this.#buf.byteLength - this.#end;
    if (this.#buf.byteLength - this.#pos < need || room < this.#chunk >> 3) {
      // A fresh buffer: earlier records keep viewing the old one, unchanged. At least
      // twice what is held, so a resync growing a big candidate a read at a time copies
      // a linear, not quadratic, amount.
      const size = Math.max(this.#chunk, need, 2 * (this.#end - this.#pos));
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#pos, this.#end));
      this.#base += this.#pos;
      this.#end -= this.#pos;
      this.#pos = 0;
      this.#buf = next;
      this.#view = new DataView(next.buffer);
      if (size > this.#peak) this.#peak = size;
    }
    while (this.#end - this.#pos < need) {
      let n: number | null;
      try {
        const into = this.#buf.subarray(this.#end);
        n = this.#syncFile !== undefined
          ? this.#syncFile.readSync(into)
          : await this.#src.read(into);
      } catch (e) {
        throw new CaptureReadError(
          this.name,
          this.#base + this.#end,
          "io",
          `read failed at offset ${this.#base + this.#end}: ${(e as Error).message}`,
          e,
        );
      }
      if (n === null || n === 0) {
        this.#eof = true;
        return false;
      }
      this.#end += n;
      this.#bytesRead += n;
    }
    this.#eof = false;
    return true;
  }

  /** Handles a decode error at #pos: throw, skip the block, or resynchronise. */
  async #onError(e: unknown, len: number): Promise<void> {
    if (!(e instanceof PcapngDecodeError)) throw e;
    const at = this.#base + this.#pos;
    if (!this.#recover || this.#parser.isFatal(e)) {
      throw new CaptureReadError(this.name, e.offset, e.reason, e.message, e);
    }
    // A chain being assembled is lost with the bad block: the skipped stretch starts with it.
    const start = this.#parser.abandonChain() ?? at;
    if (e instanceof PcapngChainError && e.keepsBlock) {
      this.#recovered(start, at, e); // the interrupting block is sound: read it again
      return;
    }
    if (!e.framing && len >= 0) {
      this.#pos += len; // the framing is sound: skip just this block
      this.#recovered(start, this.#base + this.#pos, e);
      return;
    }
    let from = this.#pos + 1;
    for (;;) {
      const atEof = this.#eof && !this.#follow;
      const p = this.#parser.resync(this.#view, from, this.#end, atEof);
      if (p >= 0) {
        this.#pos = p;
        break;
      }
      // Scanned bytes are garbage: drop them, then get more to scan.
      this.#pos = this.#parser.scanPosition;
      if (atEof || this.#signal?.aborted) {
        this.#pos = this.#end;
        break;
      }
      if (!(await this.#fill(this.#end - this.#pos + 1)) && this.#follow) {
        await sleep(this.#pollMs, this.#signal);
      }
      from = this.#pos;
    }
    this.#recovered(start, this.#base + this.#pos, e);
  }

  #recovered(offset: number, resumedAt: number, e: PcapngDecodeError): void {
    const added = addRecovery(
      this.#recoveries,
      { offset, resumedAt, reason: e.reason, message: e.message },
      e,
      this.#lastResumedAt,
      this.#recoveries.length < MAX_RECOVERIES_KEPT,
    );
    if (added) this.#recoveryCount++;
    this.#lastResumedAt = resumedAt;
  }
}
