/**
 * `vfstrace show`: a capture as strace-like lines, one per FUSE operation
 * (request + reply), streaming in constant memory; the engine is show/.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { CaptureReader, CaptureReadError, LINKTYPE_USER0 } from "../capture/mod.ts";
import {
  EventFilter,
  type FilterOptions,
  FilterSyntaxError,
  LineBuffer,
  LineFormatter,
  Pairer,
  parseDuration,
  parseId,
  parseQueue,
  parseTimeBound,
  type ShowEvent,
  type TimeBound,
  writeJsonLine,
} from "../show/mod.ts";
import { CliError, colors, ExitCode, onInterrupt, wholeNumber } from "./_common.ts";

const FLUSH_INTERVAL_MS = 100;
/**
 * Bytes asked of the file per read. Records are views of these chunks, and a
 * chunk that outlives a young-generation GC (a request waiting for its
 * reply) waits for a full one: smaller chunks keep less of that garbage
 * (peak RSS ~175 MiB instead of ~240 at 1M records, and flat with the file's
 * size), at no cost in speed.
 */
const READ_CHUNK = 1 << 18;

interface ShowOptions {
  relative?: true | undefined;
  delta?: true | undefined;
  utc?: true | undefined;
  verbose?: true | undefined;
  hex?: true | undefined;
  hexLimit: number;
  control?: true | undefined;
  all?: true | undefined;
  order: string;
  op?: string[] | undefined;
  nodeid?: bigint[] | undefined;
  unique?: bigint[] | undefined;
  queue?: number[] | undefined;
  errors?: true | undefined;
  errno?: string[] | undefined;
  slow?: number | undefined;
  markSlow?: number | undefined;
  name?: string | undefined;
  since?: TimeBound | undefined;
  until?: TimeBound | undefined;
  json?: true | undefined;
  follow?: true | undefined;
  recover?: true | undefined;
  maxInFlight?: number | undefined;
  quiet?: true | undefined;
}

/** Runs a show/ parser, turning its FilterSyntaxError into a usage error. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FilterSyntaxError) throw new CliError(e.message, ExitCode.Usage);
    throw e;
  }
}

function items(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** A repeatable, comma-separated option, each item parsed by `parse`. */
function list<T>(parse: (item: string) => T) {
  return (value: string, previous: T[] | undefined): T[] => [
    ...(previous ?? []),
    ...items(value).map((v) => usage(() => parse(v))),
  ];
}

/** Builds the `show` subcommand. */
export function showCommand(): Command<[string]> {
  return new Command("show")
    .description(
      "Print a capture as strace-like lines: one per FUSE operation (request and reply paired, " +
        "with arguments, result and latency), in the order operations complete.",
    )
    .argument("<file>", "the capture (pcapng), or - for standard input")
    .addOption(new Option("-r, --relative", "times in seconds since the first record"))
    .addOption(
      new Option("-d, --delta", "times in seconds since the previous line").conflicts("relative"),
    )
    .option("--utc", "absolute times in UTC (default: local time)")
    .option("-v, --verbose", "every field of both messages, as a tree under each line")
    .option("-x, --hex", "hex dump of the message bodies under each line")
    .option(
      "--hex-limit <bytes>",
      "bytes of each body the hex dump shows, 0 for all",
      wholeNumber("--hex-limit", 0),
      1024,
    )
    .option("--control", "also show vhost-user messages (and record gaps)")
    .option("--all", "also show vhost-user messages, notes, notifications and record gaps")
    .addOption(
      new Option("--order <order>", "print operations when they complete, or in request order")
        .choices(["reply", "request"])
        .default("reply"),
    )
    .option(
      "--op <names>",
      "only these operations (LOOKUP,READ, or numbers for unknown opcodes: 99; repeatable)",
      list((s) => s),
    )
    .option(
      "--nodeid <ids>",
      "only operations involving these node ids",
      list((s) => parseId(s, "--nodeid")),
    )
    .option(
      "--unique <ids>",
      "only these request uniques (decimal or 0x)",
      list((s) => parseId(s, "--unique")),
    )
    .option("--queue <queues>", "only these queues (1, q1, hiprio)", list((s) => parseQueue(s)))
    .option("-e, --errors", "only operations that failed")
    .option(
      "--errno <names>",
      "only operations that failed with these errnos (ENOENT,EIO)",
      list((s) => s),
    )
    .option(
      "--slow <duration>",
      "only operations at least this slow (2ms, 500us, 1.5s)",
      (v: string) => usage(() => parseDuration(v, "--slow")),
    )
    .option(
      "--mark-slow <duration>",
      "highlight operations at least this slow (default 10ms)",
      (v: string) => usage(() => parseDuration(v, "--mark-slow")),
    )
    .option("--name <glob>", "only operations with a name argument matching (*.log, f?)")
    .option(
      "--since <time>",
      "nothing before: seconds since the start (2.5), a time of day (15:00:21) or a date-time",
      (v: string) => usage(() => parseTimeBound(v, "--since")),
    )
    .option(
      "--until <time>",
      "nothing after (same forms as --since)",
      (v: string) => usage(() => parseTimeBound(v, "--until")),
    )
    .addOption(
      new Option("--json", "one JSON object per line (NDJSON) with every decoded field")
        .conflicts(["verbose", "hex"]),
    )
    .option("-f, --follow", "keep reading as the capture grows, until interrupted (Ctrl-C)")
    .option("--recover", "skip damaged blocks instead of stopping at the first")
    .option(
      "--max-in-flight <n>",
      "requests awaiting a reply kept before the oldest is shown as unanswered (default 16384)",
      wholeNumber("--max-in-flight", 1),
    )
    .option("-q, --quiet", "no warnings on stderr (unanswered, undecodable, lost records)")
    .addHelpText(
      "after",
      `
Lines: time queue OPERATION arguments = result <latency>
  15:00:49.984566 q1 LOOKUP      nodeid=1 "tree" = -ENOENT <127µs>
  15:00:50.178490 q1 WRITE       nodeid=8 fh=0 off=0 size=1048576 = 1048576 <525µs>
  15:00:50.083555 hiprio FORGET  nodeid=3 nlookup=2 <229µs>
The time is the request's; a line is printed when the operation completes (as strace
does), so with overlapping requests times are not sorted (--order request sorts them).
Queue 0 is hiprio. Requests still unanswered at the end are shown with "= ? <unanswered>".
Errors are red and operations slower than --mark-slow yellow on a terminal (NO_COLOR
turns colour off).

JSON (--json): one object per line; 64-bit values are numbers when at most 2^53-1, else
decimal strings; timestamp_ns is a string, time an ISO 8601 UTC text.

Exit status: 0 success (also when the reader of the output goes away, as with | head),
1 the capture is corrupt (stops at the damage; --recover skips it) or ends inside a
record (cut short; what came before is shown), 2 bad usage, 3 the file is missing or
unreadable.

Examples:
  vfstrace show run.pcapng | less
  vfstrace show run.pcapng --errors --op LOOKUP,OPEN
  vfstrace show run.pcapng --slow 2ms -r
  vfstrace show run.pcapng --name '*.log' --json | jq .latency_ns
  vfstrace show -f run.pcapng`,
    )
    .action(async (file, opts) => {
      await runShow(file, opts);
    });
}

/** Output bytes gathered before a write: big writes, few calls. */
const FLUSH_AT = 1 << 18;

/** Characters of text lines gathered before they are encoded, in one call. */
const TEXT_BATCH = 1 << 14;
const encoder = new TextEncoder();

/**
 * Buffered stdout that stops quietly when the reader goes away (EPIPE).
 * JSON lines are written into one byte buffer directly; text lines are
 * gathered as a string and encoded into it a batch at a time (one
 * `encodeInto` per ~16 K characters beats encoding line by line).
 */
class Output {
  /** The bytes waiting; lines go in whole (see {@link mark}). */
  readonly buffer = new LineBuffer(FLUSH_AT + (1 << 16));
  /** The reader closed the pipe: stop producing. */
  closed = false;
  #pending = "";

  /** Where the next line starts, to drop it with {@link rollback} if building it fails. */
  mark(): number {
    if (this.#pending !== "") this.#encode();
    return this.buffer.length;
  }

  /** Drops what was written since `mark` (no flush happens inside a line). */
  rollback(mark: number): void {
    this.buffer.length = mark;
  }

  /** Ends the line written into {@link buffer}. */
  endLine(): void {
    this.buffer.byte(10);
    if (this.buffer.length >= FLUSH_AT) this.flush();
  }

  /** Adds a whole line. */
  line(s: string): void {
    if (this.closed) return;
    this.#pending += s;
    this.#pending += "\n";
    if (this.#pending.length >= TEXT_BATCH) this.#encode();
  }

  #encode(): void {
    const s = this.#pending;
    this.#pending = "";
    const buf = this.buffer;
    buf.reserve(3 * s.length);
    buf.length += encoder.encodeInto(s, buf.bytes.subarray(buf.length)).written;
    if (buf.length >= FLUSH_AT) this.flush();
  }

  flush(): void {
    if (this.#pending !== "") this.#encode();
    const buf = this.buffer;
    if (buf.length === 0 || this.closed) return;
    const bytes = buf.bytes.subarray(0, buf.length);
    try {
      // Sync writes: a slow pager simply holds us back, no queue grows.
      for (let off = 0; off < bytes.byteLength;) off += Deno.stdout.writeSync(bytes.subarray(off));
    } catch (e) {
      if (e instanceof Deno.errors.BrokenPipe) this.closed = true;
      else throw e;
    } finally {
      buf.clear();
    }
  }
}

function filterOptions(opts: ShowOptions): FilterOptions {
  return {
    ops: opts.op,
    nodeids: opts.nodeid,
    uniques: opts.unique,
    queues: opts.queue,
    errorsOnly: opts.errors === true,
    errnos: opts.errno,
    slowerThanNs: opts.slow,
    namePattern: opts.name,
    since: opts.since,
    until: opts.until,
    timeZone: opts.utc === true ? "utc" : "local",
  };
}

async function openReader(
  file: string,
  opts: ShowOptions,
  signal: AbortSignal | undefined,
): Promise<CaptureReader> {
  const ropts = {
    chunkSize: READ_CHUNK,
    recover: opts.recover === true,
    follow: opts.follow === true,
    signal,
  };
  if (file === "-") return CaptureReader.stdin(ropts);
  try {
    const st = await Deno.stat(file);
    if (st.isDirectory) {
      throw new CliError(`${file} is a directory, not a capture`, ExitCode.Environment);
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot open ${file}: ${(e as Error).message}`, ExitCode.Environment);
  }
  try {
    return await CaptureReader.open(file, ropts);
  } catch (e) {
    throw new CliError(`cannot open ${file}: ${(e as Error).message}`, ExitCode.Environment, {
      cause: e,
    });
  }
}

async function runShow(file: string, opts: ShowOptions): Promise<void> {
  const filter = usage(() => new EventFilter(filterOptions(opts)));
  const json = opts.json === true;
  const showControl = opts.control === true || opts.all === true;
  const showAll = opts.all === true;
  const formatter = new LineFormatter({
    time: opts.relative === true ? "relative" : opts.delta === true ? "delta" : "absolute",
    timeZone: opts.utc === true ? "utc" : "local",
    colors,
    slowNs: opts.markSlow,
    verbose: opts.verbose === true,
    hex: opts.hex === true,
    hexLimit: opts.hexLimit,
  });
  const out = new Output();
  const onEvent = (ev: ShowEvent): void => {
    if (ev.type === "fuse") {
      if (!filter.matches(ev)) return;
    } else {
      const wanted = ev.type === "vhost-user" || ev.type === "gap" ? showControl : showAll;
      if (!wanted || !filter.inTime(ev.timestampNs)) return;
    }
    if (out.closed) return;
    let mark = -1;
    try {
      if (json) {
        mark = out.mark();
        writeJsonLine(ev, out.buffer);
        out.endLine();
      } else {
        out.line(formatter.format(ev));
      }
    } catch (e) {
      // A formatter bug costs one line, not the rest of a long capture.
      if (mark >= 0) out.rollback(mark);
      const at = ev.type === "gap"
        ? ""
        : ` (record seq ${
          "record" in ev ? ev.record.seq : ev.request?.record.seq ?? ev.reply?.record.seq
        })`;
      out.line(
        `${formatter.time(ev.timestampNs)} [cannot show this ${ev.type} event${at}: ${
          (e as Error).message
        }]`,
      );
    }
  };
  const pairer = new Pairer({
    onEvent,
    order: opts.order === "request" ? "request" : "reply",
    maxInFlight: opts.maxInFlight,
  });

  // --follow ends with Ctrl-C: stop reading, show what is still in flight, then exit.
  const abort = opts.follow === true ? new AbortController() : undefined;
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  const unregister = abort === undefined ? () => {} : onInterrupt(() => {
    abort.abort();
    return done;
  });

  const reader = await openReader(file, opts, abort?.signal);
  let first = true;
  let failure: CaptureReadError | undefined;
  // Lines wait in the buffer at most this long: a growing capture (--follow, a pipe from
  // `vfstrace trace -w -`) shows up as it comes, while a file streams in 256 KiB writes.
  const ticker = setInterval(() => out.flush(), FLUSH_INTERVAL_MS);
  try {
    // Batches: one await per chunk of the file, not per record.
    batches: for await (const batch of reader.batches()) {
      if (first && batch.length > 0) {
        first = false;
        formatter.origin = batch[0]!.timestampNs;
        filter.setOrigin(batch[0]!.timestampNs);
      }
      for (let i = 0; i < batch.length; i++) {
        pairer.push(batch[i]!);
        if (out.closed) break batches;
      }
    }
  } catch (e) {
    if (!(e instanceof CaptureReadError)) throw e;
    failure = e;
  } finally {
    clearInterval(ticker);
  }
  try {
    if (!out.closed) pairer.finish();
    out.flush();
  } finally {
    finished();
    unregister();
  }
  if (out.closed) return;
  if (failure !== undefined) {
    // Skipping cannot help a file that is not a (little-endian, this version's) capture.
    const hint = failure.reason === "io" || opts.recover === true ||
        failure.reason === "not-pcapng" || failure.reason === "big-endian" ||
        failure.reason === "bad-version"
      ? ""
      : "; --recover skips damaged blocks";
    const pcap = failure.reason === "not-pcapng" && file !== "-" ? await pcapHint(file) : "";
    throw new CliError(`${failure.message}${pcap}${hint}`, ExitCode.Failure);
  }
  if (opts.follow !== true) await notACapture(file, reader);
  // A file that ends inside a record was cut short (or is still being written: --follow
  // waits for the rest): everything before it is shown, and the exit status says so.
  const cut = opts.follow !== true ? reader.truncatedAt : undefined;
  if (opts.quiet !== true) warn(reader, pairer, cut === undefined);
  if (cut !== undefined) throw new CliError(cutMessage(file, cut), ExitCode.Failure);
}

/** The error of a capture that ends inside the record at `offset`. */
export function cutMessage(file: string, offset: number): string {
  return `capture ${file === "-" ? "stdin" : file} ends inside a record at offset ${offset} ` +
    "(cut short, or still being written: -f follows it); the records before it are shown";
}

/** `; it is a classic pcap file…` when `file` starts with a pcap magic, else nothing. */
async function pcapHint(file: string): Promise<string> {
  try {
    using f = await Deno.open(file);
    const head = new Uint8Array(4);
    if ((await f.read(head)) !== 4) return "";
    const magic = new DataView(head.buffer).getUint32(0, true);
    return [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1].includes(magic)
      ? "; it is a classic pcap file, and vfstrace captures are pcapng"
      : "";
  } catch {
    return "";
  }
}

const LINK_TYPES: Readonly<Record<number, string>> = {
  1: "Ethernet",
  101: "raw IP",
  113: "Linux cooked",
  276: "Linux cooked v2",
};

/**
 * Throws when the data was read to its end without error but was no
 * capture: empty, or a pcapng whose packets are all of other link types (a
 * network capture), which the reader skips silently (files merged with one
 * still read).
 */
async function notACapture(file: string, reader: CaptureReader): Promise<void> {
  const name = file === "-" ? "stdin" : file;
  const st = reader.stats;
  if (st.bytesRead === 0) {
    throw new CliError(`${name} is empty: not a vfstrace capture`, ExitCode.Failure);
  }
  if (st.records > 0) return;
  if (reader.section === undefined && reader.truncatedAt === undefined) {
    throw new CliError(
      `${name} is not a pcapng file (no Section Header Block in its ${st.bytesRead} bytes)` +
        (file === "-" ? "" : await pcapHint(file)),
      ExitCode.Failure,
    );
  }
  const others = [...new Set(reader.interfaces.map((i) => i.linkType))]
    .filter((t) => t !== LINKTYPE_USER0);
  if (others.length > 0 || st.skippedBlocks > 0) {
    const kinds = others.map((t) => `${t}${LINK_TYPES[t] ? ` (${LINK_TYPES[t]})` : ""}`);
    throw new CliError(
      `${name} is a pcapng file but not a vfstrace capture: ` +
        (kinds.length > 0
          ? `its packets are of link type ${
            kinds.join(", ")
          }, vfstrace's of ${LINKTYPE_USER0} (USER0)`
          : "no vfstrace record in it"),
      ExitCode.Failure,
    );
  }
}

function warn(reader: CaptureReader, pairer: Pairer, sayCut: boolean): void {
  const s = pairer.stats;
  const say = (m: string) => console.error(colors.yellow(`vfstrace show: ${m}`));
  if (sayCut && reader.truncatedAt !== undefined) {
    say(
      `the capture ends inside a record at offset ${reader.truncatedAt} ` +
        "(still being written, or cut short)",
    );
  }
  if (reader.stats.recoveries > 0) {
    const r = reader.recoveries;
    say(
      `skipped ${reader.stats.recoveries} damaged stretch(es)` +
        (r[0] === undefined ? "" : `, the first at offset ${r[0].offset}: ${r[0].message}`),
    );
  }
  if (s.lostRecords > 0) say(`${s.lostRecords} records missing (gaps in seq)`);
  if (s.evicted > 0) {
    say(`${s.evicted} requests waited too long and were shown as unanswered (--max-in-flight)`);
  }
  const unanswered = s.unanswered - s.evicted;
  if (unanswered > 0) say(`${unanswered} requests without a reply at the end of the capture`);
  if (s.undecodable > 0) say(`${s.undecodable} operations could not be fully decoded`);
  if (s.orphanReplies > 0) say(`${s.orphanReplies} replies without their request`);
}
