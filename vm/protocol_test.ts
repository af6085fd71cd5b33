import assert from "node:assert/strict";
import { emptyParsedConsole, parseConsole, parseConsoleLine } from "./protocol.ts";

Deno.test("parseConsole: begin, results, expectations, end", () => {
  const p = parseConsole(
    [
      "[    1.234] some kernel line",
      "VFSTRACE-BEGIN 2.50",
      "VFSTRACE-RESULT create ok 0.12 ",
      "VFSTRACE-RESULT rename fail 3 exit 1: expected 'a', got 'b'",
      "VFSTRACE-RESULT xattr skip - no setfattr applet",
      "VFSTRACE-EXPECT stat d/f mode=81a4 size=6 uid=0 gid=0 nlink=1",
      "VFSTRACE-EXPECT sha256 d/f " + "ab".repeat(32),
      "VFSTRACE-EXPECT symlink d/l f_create",
      "VFSTRACE-EXPECT same d/a d/b",
      "VFSTRACE-EXPECT absent d/gone",
      "VFSTRACE-EXPECT xattr d/f user.a 0x68656c6c6f",
      "VFSTRACE-EXPECT xattr d/f user.empty 0x",
      "VFSTRACE-EXPECT noxattr d/f user.b",
      "VFSTRACE-END 0 7.75\r",
    ].join("\n"),
  );
  assert.equal(p.beginUptime, 2.5);
  assert.deepEqual(p.end, { status: 0, uptime: 7.75 });
  assert.deepEqual(p.checks, [
    { name: "create", status: "ok", detail: "", seconds: 0.12 },
    { name: "rename", status: "fail", detail: "exit 1: expected 'a', got 'b'", seconds: 3 },
    { name: "xattr", status: "skip", detail: "no setfattr applet", seconds: undefined },
  ]);
  assert.deepEqual(p.expectations, [
    {
      kind: "stat",
      path: "d/f",
      fields: { mode: 0o100644, size: 6, uid: 0, gid: 0, nlink: 1 },
    },
    { kind: "sha256", path: "d/f", sha256: "ab".repeat(32) },
    { kind: "symlink", path: "d/l", target: "f_create" },
    { kind: "same", path: "d/a", other: "d/b" },
    { kind: "absent", path: "d/gone" },
    { kind: "xattr", path: "d/f", name: "user.a", valueHex: "68656c6c6f" },
    { kind: "xattr", path: "d/f", name: "user.empty", valueHex: "" },
    { kind: "noxattr", path: "d/f", name: "user.b" },
  ]);
  assert.deepEqual(p.malformed, []);
});

Deno.test("parseConsoleLine: markers after other output on the same line", () => {
  const p = emptyParsedConsole();
  assert.equal(parseConsoleLine("Booting from ROM..VFSTRACE-BEGIN 2.29", p), true);
  assert.equal(p.beginUptime, 2.29);
  assert.equal(parseConsoleLine("plain text", p), false);
});

Deno.test("parseConsoleLine: errors and malformed markers are kept", () => {
  const p = emptyParsedConsole();
  parseConsoleLine("VFSTRACE-ERROR mount mount -t virtiofs x /mnt: No such device", p);
  assert.deepEqual(p.errors, [
    { stage: "mount", detail: "mount -t virtiofs x /mnt: No such device" },
  ]);
  for (
    const bad of [
      "VFSTRACE-RESULT name maybe - detail",
      "VFSTRACE-RESULT name ok",
      "VFSTRACE-RESULT name ok soon detail",
      "VFSTRACE-END notanumber 1.0",
      "VFSTRACE-EXPECT sha256 f nothex",
      "VFSTRACE-EXPECT stat f bogus=1",
      "VFSTRACE-EXPECT stat f",
      "VFSTRACE-EXPECT absent f extra",
      "VFSTRACE-EXPECT teleport f",
      "VFSTRACE-EXPECT xattr f user.a",
      "VFSTRACE-EXPECT xattr f user.a 68656c",
      "VFSTRACE-EXPECT xattr f user.a 0x686",
      "VFSTRACE-EXPECT xattr f user.a 0x68656C",
      "VFSTRACE-EXPECT xattr f user.a 0x68 extra",
      "VFSTRACE-EXPECT noxattr f",
      "VFSTRACE-EXPECT noxattr f user.a extra",
    ]
  ) {
    assert.equal(parseConsoleLine(bad, p), true, bad);
  }
  assert.equal(p.malformed.length, 16);
  assert.deepEqual(p.checks, []);
  assert.deepEqual(p.expectations, []);
  assert.equal(p.end, undefined);
});

Deno.test("parseConsoleLine: unknown VFSTRACE- words are not markers", () => {
  const p = emptyParsedConsole();
  assert.equal(parseConsoleLine("VFSTRACE-SOMETHING else", p), false);
  assert.deepEqual(p.malformed, []);
});
