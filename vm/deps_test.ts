import assert from "node:assert/strict";
import { guestToolchain, TOOLCHAIN_TOOLS } from "./deps.ts";

Deno.test("guestToolchain: available when every file exists, else names what to install", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vfstrace-deps-test-" });
  try {
    await Deno.writeTextFile(`${dir}/cc`, "");
    await Deno.writeTextFile(`${dir}/libc.a`, "");
    const cc = { binary: `${dir}/cc`, package: "gcc" };
    const libc = { binary: `${dir}/libc.a`, package: "libc6-dev" };
    assert.deepEqual(await guestToolchain([cc, libc]), {
      available: true,
      cc: `${dir}/cc`,
      staticLibc: `${dir}/libc.a`,
    });
    const noLibc = { binary: `${dir}/none/libc.a`, package: "libc6-dev" };
    assert.deepEqual(await guestToolchain([cc, noLibc]), {
      available: false,
      reason: `no ${dir}/none/libc.a on the host (apt-get install libc6-dev)`,
    });
    const noCc = { binary: `${dir}/none/cc`, package: "gcc" };
    assert.deepEqual(await guestToolchain([noCc, noLibc]), {
      available: false,
      reason: `no ${dir}/none/cc, ${dir}/none/libc.a on the host (apt-get install gcc libc6-dev)`,
    });
    await assert.rejects(guestToolchain([cc]), RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TOOLCHAIN_TOOLS: the compiler and the static libc, from gcc and libc6-dev", () => {
  assert.deepEqual(TOOLCHAIN_TOOLS.map((t) => t.package), ["gcc", "libc6-dev"]);
});
