/**
 * capture: vfstrace capture files (pcapng). {@link CaptureWriter} appends
 * records from the proxy's hot path; {@link CaptureReader} streams them back
 * in constant memory. The format itself (blocks, the record header, the
 * kind/flag/direction tables) is `decode/pcapng.ts`, re-exported here;
 * `docs/capture-format.md` describes it for people.
 *
 * @module
 */
export * from "../decode/pcapng.ts";
// The layout language the format's tables are written in (Layout, ValueNames, errors).
export * from "../decode/struct.ts";
export * from "./writer.ts";
export * from "./reader.ts";
