/**
 * report: a capture as one self-contained HTML page (inline CSS, SVG charts
 * drawn by inline script from embedded JSON, no URL anywhere): summary,
 * operations per second by operation, latency histograms on a log axis, the
 * slowest requests and the errors. The engine behind `vfstrace report`.
 *
 * @example
 * ```ts
 * const { stats } = await collectStats(await CaptureReader.open("run.pcapng"), { slowest: 25 });
 * await Deno.writeTextFile("report.html", renderReport(stats));
 * ```
 *
 * @module
 */
export * from "./html.ts";
