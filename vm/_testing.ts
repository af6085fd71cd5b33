/**
 * Helpers shared by the vm/ unit tests. Internal to vm/.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Fails unless `busybox sh -n` parses `script`. */
export async function shSyntaxOk(script: string): Promise<void> {
  const child = new Deno.Command("/bin/busybox", {
    args: ["sh", "-n"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}
