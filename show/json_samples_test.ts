/**
 * The NDJSON writer (show --json's fast path, typed struct writers) and the
 * object builders (`JSON.stringify(operationJson(op))`, the reference) must
 * not drift: every opcode's request and reply samples (and notifications),
 * at three protocol minors, whole, cut by the capture's snap length and
 * damaged, must give the same text both ways.
 */
import assert from "node:assert/strict";
import { encodeReply, encodeRequest, InitFlags, Opcode } from "../decode/fuse.ts";
import {
  fuseSamples,
  LINUX_6_1_FLAGS,
  notifySamples,
  type SampleConfig,
  sessionFor,
} from "../decode/_fuse_samples.ts";
import { decodeRequest } from "../decode/fuse.ts";
import { CaptureBuilder } from "./_testing.ts";
import { controlJson, jsonLine, operationJson } from "./json.ts";
import { pairRecords, type ShowEvent } from "./pairing.ts";
import type { CaptureRecord } from "../capture/mod.ts";

const CONFIGS: SampleConfig[] = [
  { minor: 45, flags: InitFlags.parse(InitFlags.bits.map(([, n]) => n)) },
  { minor: 38, flags: LINUX_6_1_FLAGS },
  { minor: 8, flags: 0n },
];

function reference(e: ShowEvent): string {
  return JSON.stringify(e.type === "fuse" ? operationJson(e) : controlJson(e));
}

function assertSame(events: readonly ShowEvent[], what: string): number {
  let fuse = 0;
  for (const e of events) {
    if (e.type === "fuse") fuse++;
    const want = reference(e);
    assert.equal(jsonLine(e), want, `${what}: ${want}`);
  }
  return fuse;
}

/** Every sample as request + reply (+ an error reply), and every notification. */
async function sampleRecords(config: SampleConfig, snaplen?: number): Promise<CaptureRecord[]> {
  const b = new CaptureBuilder(config.minor, snaplen);
  let unique = 1n;
  for (const s of fuseSamples(config)) {
    if (s.op.opcode === Opcode.INIT) continue; // would renegotiate the builder's session
    const request = decodeRequest(encodeRequest(s.request, sessionFor(config)), sessionFor(config));
    const replies = s.replies.length > 0 ? s.replies : [undefined];
    for (const rep of replies) {
      unique += 2n;
      b.request(1, { ...s.request, header: { ...s.request.header, unique } });
      if (rep === undefined) continue;
      b.rawReply(
        1,
        encodeReply({ ...rep, header: { ...rep.header, unique } }, request, sessionFor(config)),
        1000,
      );
    }
    if (s.replies.length > 0) {
      unique += 2n;
      b.request(1, { ...s.request, header: { ...s.request.header, unique } });
      b.reply(1, s.op.opcode, { header: { unique, error: -2 } }, 500);
    }
  }
  for (const n of notifySamples(config.minor)) {
    b.rawReply(0, encodeReply(n.reply, undefined, sessionFor(config)));
  }
  return await b.records();
}

Deno.test("json: the writer matches the object builders for every opcode's request and reply", async () => {
  for (const config of CONFIGS) {
    const recs = await sampleRecords(config);
    const n = assertSame(pairRecords(recs), `minor ${config.minor}`);
    assert.ok(n > 100, `minor ${config.minor}: ${n} operations`);
    // Cut by the capture's snap length: structs partly held, names and data lost.
    for (const snaplen of [40, 56, 64, 100]) {
      assertSame(
        pairRecords(await sampleRecords(config, snaplen)),
        `minor ${config.minor}, snaplen ${snaplen}`,
      );
    }
  }
});

Deno.test("json: malformed and truncated records write the same text both ways", async () => {
  const recs = await sampleRecords(CONFIGS[1]!);
  let x = 777;
  const r = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;
  for (let round = 0; round < 60; round++) {
    const damaged = recs.map((rec) => {
      const roll = r();
      if (roll > 0.4) return rec;
      // Bytes flipped, or the body cut short (a shorter record than its header says).
      if (roll > 0.2 || rec.body.byteLength === 0) {
        const body = rec.body.slice();
        for (let i = 0; i < 2 && body.length > 0; i++) {
          body[Math.floor(r() * Math.min(body.length, 64))] = r() * 256;
        }
        return { ...rec, body };
      }
      return { ...rec, body: rec.body.slice(0, Math.floor(r() * rec.body.byteLength)) };
    });
    assertSame(pairRecords(damaged, { maxInFlight: 1 + (round % 7) }), `round ${round}`);
  }
});
