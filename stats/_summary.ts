/**
 * The arguments and result of an operation as `vfstrace show` prints them,
 * without the time, queue, name and latency columns: `nodeid=1 "tree" =
 * -ENOENT`. Taken from show's own line formatter, so the two never
 * disagree.
 *
 * @module
 */
import { formatDuration, type FuseOperation, LineFormatter } from "../show/mod.ts";

/** Longest summary kept: a report table cell, not a dump. */
const MAX_SUMMARY = 200;

// Relative time from origin 0 gives a fixed-shape first column, easy to cut off.
const formatter = new LineFormatter({ time: "relative", originNs: 0n });

/** `nodeid=1 "tree" = -ENOENT` for a LOOKUP line (see the module doc). */
export function operationSummary(op: FuseOperation): string {
  let line = formatter.formatOperation(op).trimStart();
  // time, then the queue label: two space-free tokens.
  for (let k = 0; k < 2; k++) {
    const sp = line.indexOf(" ");
    line = sp < 0 ? "" : line.slice(sp + 1);
  }
  if (line.startsWith(op.name)) line = line.slice(op.name.length);
  line = line.trimStart();
  if (op.latencyNs !== undefined) {
    const lat = " <" + formatDuration(op.latencyNs) + ">";
    const at = line.lastIndexOf(lat);
    if (at >= 0) line = line.slice(0, at) + line.slice(at + lat.length);
  }
  return line.length > MAX_SUMMARY ? line.slice(0, MAX_SUMMARY - 1) + "…" : line;
}
