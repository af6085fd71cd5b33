import assert from "node:assert/strict";
import { Errno, errnoName, errnoNumber, strerror } from "./mod.ts";

Deno.test("errno names and numbers round-trip, with aliases", () => {
  assert.equal(errnoName(2), "ENOENT");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(11), "EAGAIN");
  assert.equal(errnoName(9999), "E9999");
  assert.equal(errnoNumber("enoent"), 2);
  assert.equal(errnoNumber("EWOULDBLOCK"), Errno.EAGAIN);
  assert.equal(errnoNumber("ENOTSUP"), 95);
  assert.equal(errnoNumber("ENOPE"), undefined);
  for (const [name, no] of Object.entries(Errno)) assert.equal(errnoName(no), name);
  assert.equal(strerror(2), "No such file or directory");
});
