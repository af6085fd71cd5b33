/**
 * show: captures as strace-like text. The engine behind `vfstrace show`
 * and the live output of `vfstrace trace`:
 *
 * - {@link Pairer} (pairing.ts): records in file order → FUSE operations
 *   (request + reply, latency, status) and control events, streaming, in
 *   constant memory;
 * - {@link LineFormatter} (format.ts): events → lines, optional field tree
 *   and hex dump;
 * - {@link EventFilter} (filter.ts): which operations and events to show;
 * - {@link jsonLine} (json.ts): events → NDJSON.
 *
 * @example
 * ```ts
 * const fmt = new LineFormatter({ timeZone: "utc" });
 * const pairer = new Pairer({ onEvent: (e) => console.log(fmt.format(e)) });
 * for await (const rec of await CaptureReader.open("run.pcapng")) pairer.push(rec);
 * pairer.finish();
 * ```
 *
 * @module
 */
export * from "./pairing.ts";
export * from "./format.ts";
export * from "./filter.ts";
export * from "./json.ts";
