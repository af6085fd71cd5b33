/**
 * The dissector's tables must be what generate.ts makes from the project's
 * protocol tables today: a change to an opcode, layout, flag, kind or
 * vhost-user message that is not followed by `deno task wireshark` fails here.
 */
import assert from "node:assert/strict";
import { decodeMessage, lookupMessage, type PayloadKind } from "../../decode/vhost_user.ts";
import {
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
} from "../../decode/vhost_user_table.ts";
import { DecodeError } from "../../decode/struct.ts";
import {
  BEGIN_MARKER,
  customDisplays,
  END_MARKER,
  fixedPayloadSizes,
  generateTables,
  LUA_PATH,
  missingFormatters,
  payloadKinds,
  spliceTables,
  tablesOf,
} from "./generate.ts";

const SOURCE = await Deno.readTextFile(new URL("./vfstrace.lua", import.meta.url));

function firstDifference(a: string, b: string): string {
  const x = a.split("\n");
  const y = b.split("\n");
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if (x[i] !== y[i]) {
      return `line ${i + 1} of the tables: committed ${JSON.stringify(x[i])}, ` +
        `generated ${JSON.stringify(y[i])}`;
    }
  }
  return "no difference";
}

Deno.test("vfstrace.lua: the committed tables are what the generator makes now", () => {
  const committed = tablesOf(SOURCE);
  assert.notEqual(committed, "", `${LUA_PATH} has no ${BEGIN_MARKER} … ${END_MARKER} section`);
  const now = generateTables();
  assert.ok(
    committed === now,
    `${LUA_PATH} is stale, run 'deno task wireshark': ${firstDifference(committed, now)}`,
  );
  // Splicing is idempotent: the file is exactly its hand-written part plus the tables.
  assert.equal(spliceTables(SOURCE, now), SOURCE);
});

Deno.test("vfstrace.lua: a formatter for every custom display the tables use", () => {
  generateTables();
  assert.ok(customDisplays().length > 0);
  assert.deepEqual(missingFormatters(SOURCE), []);
  // And the check notices a missing one.
  const without = SOURCE.replace('CUSTOM["mode"] = function', "CUSTOM_mode = function");
  assert.deepEqual(missingFormatters(without), ["mode"]);
});

Deno.test("generate: a stale table is noticed", () => {
  const stale = SOURCE.replace('name = "LOOKUP"', 'name = "LOOKUP2"');
  assert.notEqual(stale, SOURCE);
  assert.notEqual(tablesOf(stale), generateTables());
});

/** A (channel, request number, reply?) whose form list holds `kind`, for decodeMessage. */
function messageWith(
  kind: PayloadKind,
): { channel: "frontend" | "backend"; request: number; reply: boolean } | undefined {
  const tables = [
    ["frontend", VHOST_USER_FRONTEND_MESSAGES],
    ["backend", VHOST_USER_BACKEND_MESSAGES],
    ["backend", VHOST_USER_FS_DAX_BACKEND_MESSAGES],
  ] as const;
  for (const [channel, t] of tables) {
    for (const m of t.values()) {
      // Only messages whose forms of that side are all of this kind: the size decides nothing else.
      if (m.requestForms.every((f) => f.payload === kind)) {
        return { channel, request: m.request, reply: false };
      }
      if (m.replyForms.every((f) => f.payload === kind)) {
        return { channel, request: m.request, reply: true };
      }
    }
  }
  return undefined;
}

Deno.test("generate: the fixed payload sizes are the ones decodeMessage accepts", () => {
  const sizes = fixedPayloadSizes(payloadKinds());
  assert.ok(Object.keys(sizes).length >= 10);
  for (const [kind, size] of Object.entries(sizes)) {
    const m = messageWith(kind as PayloadKind);
    assert.ok(m, `no message carries only ${kind}`);
    const decode = (n: number) => {
      const bytes = new Uint8Array(12 + n);
      const v = new DataView(bytes.buffer);
      v.setUint32(0, m.request, true);
      v.setUint32(4, 1 | (m.reply ? 4 : 0), true);
      v.setUint32(8, n, true);
      return decodeMessage(bytes, 0, { channel: m.channel, fds: "report" });
    };
    const spec = lookupMessage(m.channel, m.request);
    assert.ok(spec);
    const got = decode(size);
    assert.equal(got.form.payload, kind, `${spec.name}: ${size} bytes decode as ${kind}`);
    assert.throws(() => decode(size + 8), DecodeError, `${kind} does not take ${size + 8} bytes`);
  }
});
