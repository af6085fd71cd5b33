import { fuzzShow } from "./_show_fuzz.ts";

Deno.test("fuzz: damaged records never throw out of pairing, formatting or JSON", async () => {
  await fuzzShow(1, 400);
});
