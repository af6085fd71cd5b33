import assert from "node:assert/strict";
import { cacheDir, sha256Hex } from "./cache.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("cacheDir: VFSTRACE_CACHE, then XDG_CACHE_HOME, then HOME", () => {
  const all = { VFSTRACE_CACHE: "/c", XDG_CACHE_HOME: "/x", HOME: "/h" };
  assert.equal(cacheDir(env(all)), "/c");
  assert.equal(cacheDir(env({ ...all, VFSTRACE_CACHE: "" })), "/x/vfstrace");
  assert.equal(cacheDir(env({ HOME: "/h" })), "/h/.cache/vfstrace");
  assert.throws(() => cacheDir(env({})), /VFSTRACE_CACHE/);
});

Deno.test("sha256Hex: known vector", async () => {
  assert.equal(
    await sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});
