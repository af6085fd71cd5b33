import { fuzzFuse } from "./_fuse_fuzz.ts";

Deno.test("fuse randomized: 300k mutated valid messages, some cut as a capture would, throw only DecodeError", () => {
  fuzzFuse(0xf05e_2025, 300_000);
});
