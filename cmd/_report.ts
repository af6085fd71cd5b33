/**
 * `vfstrace report`: a capture as one self-contained HTML page (charts and
 * tables, nothing fetched); the engine is report/, fed by stats/.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { renderReport } from "../report/mod.ts";
import { CliError, ExitCode, wholeNumber } from "./_common.ts";
import { cutError, readCaptureStats, type ReadOptions, writeStdout } from "./_stats.ts";

interface ReportCliOptions extends ReadOptions {
  output: string;
  title?: string | undefined;
  top: number;
  slowest: number;
}

/** Builds the `report` subcommand. */
export function reportCommand(): Command<[string]> {
  return new Command("report")
    .description(
      "Write a capture as one self-contained HTML page: summary, operations per second by " +
        "operation, latency histograms (log scale), the slowest requests and the errors.",
    )
    .argument("<file>", "the capture (pcapng), or - for standard input")
    .requiredOption("-o, --output <file.html>", "where to write the page (- for standard output)")
    .option("--title <text>", "page title (default: vfstrace report: <capture>)")
    .option(
      "--top <n>",
      "operations with their own series in the rate chart; the rest is 'other'",
      wholeNumber("--top", 1),
      8,
    )
    .option("--slowest <n>", "slowest requests listed", wholeNumber("--slowest", 0), 25)
    .option("--recover", "skip damaged blocks instead of stopping at the first")
    .option(
      "--max-in-flight <n>",
      "requests awaiting a reply kept before the oldest counts as unanswered (default 16384)",
      wholeNumber("--max-in-flight", 1),
    )
    .option("-q, --quiet", "no warnings on stderr (lost records, damage skipped)")
    .addHelpText(
      "after",
      `
The page has no external references (inline style, script and data; charts are SVG
drawn by the page), so it opens offline in any browser. It embeds only aggregates
and top-N lists, so it stays small for large captures.

Exit status: 0 success, 1 the capture is corrupt (--recover skips damaged blocks) or
ends inside a record (the output covers the records before it),
2 bad usage, 3 the capture is missing or the page cannot be written.

Example:
  vfstrace report run.pcapng -o report.html && xdg-open report.html`,
    )
    .action(async (file, opts) => {
      await runReport(file, opts as ReportCliOptions);
    });
}

async function runReport(file: string, opts: ReportCliOptions): Promise<void> {
  const { stats, cutAt } = await readCaptureStats("report", file, opts, opts.slowest);
  const html = renderReport(stats, { title: opts.title, topOperations: opts.top });
  if (opts.output === "-") {
    writeStdout(html);
  } else {
    try {
      await Deno.writeTextFile(opts.output, html);
    } catch (e) {
      throw new CliError(
        `cannot write ${opts.output}: ${(e as Error).message}`,
        ExitCode.Environment,
      );
    }
  }
  if (cutAt !== undefined) throw cutError(file, cutAt);
}
