/**
 * End to end: the hostile-guest corpus (tests/hostile/) against
 * `vfstrace trace` in front of the C virtiofsd, through the CLI. Every case must leave the process
 * alive (or, behind trace, the C virtiofsd dead and trace gone with a clear
 * message and a whole capture), get the reply it should, and be recorded as
 * malformed where it is.
 */
import assert from "node:assert/strict";
import { hostileCases } from "../hostile/cases.ts";
import { runHostile, summarize } from "../hostile/run.ts";

Deno.test("hostile guest corpus against trace", async () => {
  const cases = hostileCases();
  assert.ok(cases.length >= 200, `only ${cases.length} cases`);
  const report = await runHostile("trace", cases);
  console.log(summarize("trace", report));
  const failed = report.results.filter((r) => r.failures.length > 0);
  assert.deepEqual(failed.map((r) => `${r.name}: ${r.failures.join("; ")}`), []);
  assert.equal(report.results.length, cases.length);
});
