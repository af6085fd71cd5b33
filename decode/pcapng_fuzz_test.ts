import { fuzzPcapng } from "./_pcapng_fuzz.ts";

Deno.test("pcapng randomized: 120k mutated captures give records or PcapngDecodeError only", () => {
  fuzzPcapng(0x9ca9_2026, 120_000);
});
