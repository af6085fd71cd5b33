import { fuzzVhostUser } from "./_vhost_user_fuzz.ts";

Deno.test("vhost-user randomized: 300k mutated valid messages throw only DecodeError", () => {
  fuzzVhostUser(0x5eed_2026, 300_000);
});
