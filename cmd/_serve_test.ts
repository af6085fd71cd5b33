/** virtiofsd-style `-o` options of `serve`. */
import assert from "node:assert/strict";
import { parseDashO } from "./_serve.ts";

Deno.test("serve -o: posix_acl and no_posix_acl, the last one wins", () => {
  assert.equal(parseDashO(["xattr,posix_acl"]).posixAcl, true);
  assert.equal(parseDashO(["posix_acl", "no_posix_acl"]).posixAcl, false);
  assert.equal(parseDashO(["xattr"]).posixAcl, undefined);
  assert.throws(() => parseDashO(["posix_acls"]), /unknown option.*posix_acl/);
});
