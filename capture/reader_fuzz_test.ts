import { fuzzReader } from "./_reader_fuzz.ts";

Deno.test("reader randomized: 20k mutated captures, streamed in random pieces, agree with decodeCapture", async () => {
  await fuzzReader(0x5eed_cafe, 20_000);
});
