/**
 * `vfstrace stats`: what a capture adds up to, like `strace -c`: per
 * operation counts, errors by errno, latency quantiles, bytes; per queue;
 * totals; the proxy's residence. Text or one JSON document. The engine is
 * stats/; records are paired by show/'s Pairer.
 *
 * Also home of {@link readCaptureStats}, which `vfstrace report` shares.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import { CaptureReader, CaptureReadError } from "../capture/mod.ts";
import {
  type CaptureStats,
  type CollectResult,
  collectStats,
  formatStatsTable,
  STATS_SORTS,
  statsJson,
  type StatsSort,
} from "../stats/mod.ts";
import { CliError, colors, ExitCode, wholeNumber } from "./_common.ts";

/** Options `stats` and `report` share for reading the capture. */
export interface ReadOptions {
  /** Skip damaged blocks. */
  readonly recover?: true | undefined;
  /** Pairer in-flight limit. */
  readonly maxInFlight?: number | undefined;
  /** No warnings on stderr. */
  readonly quiet?: true | undefined;
}

interface StatsOptions extends ReadOptions {
  json?: true | undefined;
  sort: string;
}

/** Builds the `stats` subcommand. */
export function statsCommand(): Command<[string]> {
  return new Command("stats")
    .description(
      "Summarise a capture like strace -c: per FUSE operation the calls, errors (by errno), " +
        "latency min/p50/p90/p99/max and bytes; per queue; totals; the proxy's residence.",
    )
    .argument("<file>", "the capture (pcapng), or - for standard input")
    .option("--json", "one JSON document instead of the table")
    .addOption(
      new Option("-s, --sort <order>", "order of the operation rows").choices(STATS_SORTS)
        .default("time"),
    )
    .option("--recover", "skip damaged blocks instead of stopping at the first")
    .option(
      "--max-in-flight <n>",
      "requests awaiting a reply kept before the oldest counts as unanswered (default 16384)",
      wholeNumber("--max-in-flight", 1),
    )
    .option("-q, --quiet", "no warnings on stderr (lost records, damage skipped, evicted requests)")
    .addHelpText(
      "after",
      `
Rows: one per operation name, sorted by total time (--sort count|errors|name).
  % time    share of the summed latency of all operations
  total     summed latency; min/max exact; p50/p90/p99 within 0.78% (a log-bucketed
            histogram keeps memory constant however large the capture)
  read      READ reply data; written: WRITE request sizes (exact even when the
            capture cut the bodies with --snaplen)
  res p50/p99  the proxy's residence (request + reply side), when the capture has it
Latency includes failed operations; unanswered ones have none.

JSON (--json): one document; times as ns strings with ISO 8601 UTC, durations as
integer ns, absent values null (residence: null when not measured).

Exit status: 0 success, 1 the capture is corrupt (--recover skips damaged blocks) or
ends inside a record (the output covers the records before it),
2 bad usage, 3 the file is missing or unreadable.

Examples:
  vfstrace stats run.pcapng
  vfstrace stats run.pcapng --sort errors
  vfstrace stats run.pcapng --json | jq '.operations[] | {op, p99: .latency.p99_ns}'`,
    )
    .action(async (file, opts) => {
      await runStats(file, opts as StatsOptions);
    });
}

async function openReader(file: string, recover: boolean): Promise<CaptureReader> {
  if (file === "-") return CaptureReader.stdin({ recover });
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
    return await CaptureReader.open(file, { recover });
  } catch (e) {
    throw new CliError(`cannot open ${file}: ${(e as Error).message}`, ExitCode.Environment, {
      cause: e,
    });
  }
}

/**
 * Reads and aggregates the capture `file` (`-`: stdin) for a command
 * called `command`: missing file → exit 3, corruption → exit 1 with the
 * offset (a hint at --recover), warnings on stderr unless quiet.
 */
export async function readCaptureStats(
  command: string,
  file: string,
  opts: ReadOptions,
  slowest = 0,
): Promise<{ stats: CaptureStats; cutAt: number | undefined }> {
  const reader = await openReader(file, opts.recover === true);
  let result: CollectResult;
  try {
    result = await collectStats(reader, {
      name: file === "-" ? "stdin" : file,
      maxInFlight: opts.maxInFlight,
      slowest,
    });
  } catch (e) {
    if (!(e instanceof CaptureReadError)) throw e;
    const hint = e.reason === "io" || opts.recover === true
      ? ""
      : "; --recover skips damaged blocks";
    // The message has the offset and reason already: no cause chain to repeat them.
    throw new CliError(`${e.message}${hint}`, ExitCode.Failure);
  } finally {
    reader.close();
  }
  if (opts.quiet !== true) warn(command, reader, result);
  return { stats: result.stats, cutAt: reader.truncatedAt };
}

/**
 * The error of a capture that ends inside the record at `offset`: raised
 * after the output of the records before it, so the exit status says so.
 */
export function cutError(file: string, offset: number): CliError {
  return new CliError(
    `capture ${file === "-" ? "stdin" : file} ends inside a record at offset ${offset} ` +
      "(cut short, or still being written); the figures cover the records before it",
    ExitCode.Failure,
  );
}

function warn(command: string, reader: CaptureReader, result: CollectResult): void {
  const s = result.pairer;
  const say = (m: string) => console.error(colors.yellow(`vfstrace ${command}: ${m}`));
  if (reader.stats.recoveries > 0) {
    const r = reader.recoveries[0];
    say(
      `skipped ${reader.stats.recoveries} damaged stretch(es)` +
        (r === undefined ? "" : `, the first at offset ${r.offset}: ${r.message}`),
    );
  }
  if (s.lostRecords > 0) say(`${s.lostRecords} records missing (gaps in seq)`);
  if (s.evicted > 0) {
    say(`${s.evicted} requests waited too long and were counted as unanswered (--max-in-flight)`);
  }
}

async function runStats(file: string, opts: StatsOptions): Promise<void> {
  const sort = opts.sort as StatsSort;
  const { stats, cutAt } = await readCaptureStats("stats", file, opts);
  const text = opts.json === true
    ? JSON.stringify(statsJson(stats, sort), null, 2) + "\n"
    : formatStatsTable(stats, { sort, colors });
  writeStdout(text);
  if (cutAt !== undefined) throw cutError(file, cutAt);
}

/** Writes all of `text` to stdout; a reader that went away (| head) is not an error. */
export function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  try {
    for (let off = 0; off < bytes.byteLength;) off += Deno.stdout.writeSync(bytes.subarray(off));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}
