/**
 * NDJSON for `vfstrace show --json`: one object per event, every decoded
 * field.
 *
 * Conventions (stable, for jq and scripts):
 * - keys are snake_case; struct fields keep their C names;
 * - 64-bit values are JSON numbers when they are at most 2^53 − 1 (exact in
 *   every JSON reader), else decimal strings; `timestamp_ns` is therefore a
 *   string (ns since the epoch exceed 2^53) and `time` the same instant as
 *   an ISO 8601 UTC text with nanoseconds;
 * - byte arrays inside structs are lowercase hex strings; payloads (WRITE
 *   data, READ replies) are not included, only their `data_bytes` count;
 * - padding fields are left out; flags, modes and enums stay raw numbers
 *   (the names are in the table of decode/fuse_flags.ts), except the
 *   operation name, `errno` name and directions, which are given by name.
 *
 * @module
 */
import type { Decoded, FieldValue, FuseReply, FuseRequest, Layout } from "../decode/fuse.ts";
import { FuseInHeader, FuseOutHeader } from "../decode/fuse_layouts.ts";
import {
  HEAD_NONE,
  NOTIFY_DIRECTION,
  RECORD_KIND,
  VHOST_USER_DIRECTION,
} from "../decode/pcapng.ts";
import { formatPayload } from "../decode/vhost_user.ts";
import { hexBytes } from "../decode/struct.ts";
import { errnoName } from "../sys/errno.ts";
import type { ControlEvent, FuseOperation, ShowEvent, ShowRecord } from "./pairing.ts";

/** A JSON value as this module builds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** A bigint as a JSON number when exact, else a decimal string. */
export function jsonBigint(v: bigint): number | string {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v.toString();
}

/** A decoded field value for JSON: numbers, safe bigints as numbers, bytes as hex. */
export function jsonField(v: FieldValue): number | string {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return jsonBigint(v);
  return hexBytes(v);
}

/** ISO 8601 UTC with nanoseconds: `2026-11-25T15:00:21.123456789Z`. */
export function isoTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const frac = ns - sec * 1_000_000_000n;
  const iso = new Date(Number(sec) * 1000).toISOString(); // …T15:00:21.000Z
  return iso.slice(0, iso.length - 4) + frac.toString().padStart(9, "0") + "Z";
}

function structJson(layout: Layout | undefined, values: object): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  const vals = values as Readonly<Record<string, unknown>>;
  if (layout === undefined) {
    for (const [k, v] of Object.entries(vals)) {
      if (typeof v === "number" || typeof v === "bigint" || v instanceof Uint8Array) {
        out[k] = jsonField(v);
      }
    }
    return out;
  }
  for (const f of layout.fields) {
    if (f.pad === true) continue;
    const v = vals[f.name];
    if (typeof v === "number" || typeof v === "bigint" || v instanceof Uint8Array) {
      out[f.name] = jsonField(v);
    }
  }
  return out;
}

function itemsJson(layout: Layout | undefined, items: readonly Decoded[]): Json[] {
  return items.map((it) => structJson(layout, it));
}

function bytesOf(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  return n;
}

function recordJson(r: ShowRecord): { [key: string]: Json } {
  const out: { [key: string]: Json } = { seq: r.seq };
  if (r.offset !== undefined) out.offset = r.offset;
  out.length = r.body.byteLength;
  out.original_length = r.originalLength;
  out.flags = r.flags;
  if (r.head !== undefined && r.head !== HEAD_NONE) out.head = r.head;
  if (r.residenceNs !== undefined) out.residence_ns = r.residenceNs;
  return out;
}

function requestJson(req: FuseRequest, out: { [key: string]: Json }): void {
  out.header = structJson(FuseInHeader, req.header);
  const spec = req.op?.request;
  if (req.arg !== undefined) out.arg = structJson(spec?.struct, req.arg);
  if (req.names.length > 0) {
    const names: { [key: string]: Json } = {};
    for (let i = 0; i < req.names.length; i++) {
      names[spec?.names?.[i]?.label ?? `name${i}`] = req.names[i]!;
    }
    out.names = names;
  }
  if (req.data.length > 0) out.data_bytes = bytesOf(req.data);
  if (req.items.length > 0) out.items = itemsJson(spec?.items?.layout, req.items);
  if (req.extensions.length > 0) {
    out.extensions = req.extensions.map((x): Json => {
      if (x.kind === "secctx") {
        return {
          kind: "secctx",
          contexts: x.contexts.map((c) => ({ name: c.name, value: hexBytes(c.value) })),
        };
      }
      if (x.kind === "groups") return { kind: "groups", groups: [...x.groups] };
      return { kind: "unknown", type: x.type, data: hexBytes(x.data) };
    });
  }
  if (req.truncated !== undefined) {
    out.truncated = { have: req.truncated.have, want: req.truncated.want };
  }
}

function replyJson(rep: FuseReply, out: { [key: string]: Json }): void {
  out.header = structJson(FuseOutHeader, rep.header);
  if (rep.notify !== undefined) out.notify = rep.notify.name;
  const struct = rep.notify?.struct ?? rep.op?.reply.struct;
  if (rep.arg !== undefined) out.arg = structJson(struct, rep.arg);
  if (rep.names.length > 0) out.names = [...rep.names];
  if (rep.data.length > 0) out.data_bytes = bytesOf(rep.data);
  if (rep.items.length > 0) out.items = itemsJson(rep.op?.reply.items?.layout, rep.items);
  if (rep.entries.length > 0) {
    out.entries = rep.entries.map((e) => {
      const o: { [key: string]: Json } = {
        ino: jsonBigint(e.ino),
        off: jsonBigint(e.off),
        type: e.type,
        name: e.name,
      };
      if (e.entry !== undefined) o.entry = structJson(struct, e.entry);
      return o;
    });
  }
  if (rep.truncated !== undefined) {
    out.truncated = { have: rep.truncated.have, want: rep.truncated.want };
  }
}

/** The JSON object of one FUSE operation. */
export function operationJson(op: FuseOperation): { [key: string]: Json } {
  const o: { [key: string]: Json } = {
    type: "fuse",
    time: isoTime(op.timestampNs),
    "timestamp_ns": op.timestampNs.toString(),
    queue: op.queue,
    unique: jsonBigint(op.unique),
    op: op.name,
    opcode: op.opcode,
    nodeid: jsonBigint(op.nodeid),
    status: op.status,
  };
  if (op.errno !== undefined) {
    o.errno = op.errno;
    o.error = errnoName(op.errno);
  }
  if (op.latencyNs !== undefined) o.latency_ns = op.latencyNs;
  if (op.problem !== undefined) o.problem = op.problem;
  if (op.request !== undefined) {
    const r = recordJson(op.request.record);
    if (op.request.decoded !== undefined) requestJson(op.request.decoded, r);
    if (op.request.problem !== undefined) r.problem = op.request.problem;
    o.request = r;
  }
  if (op.reply !== undefined) {
    const r = recordJson(op.reply.record);
    if (op.reply.decoded !== undefined) replyJson(op.reply.decoded, r);
    if (op.reply.problem !== undefined) r.problem = op.reply.problem;
    o.reply = r;
  }
  return o;
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** Any decoded value (vhost-user payloads) as JSON, camelCase keys as snake_case. */
function anyJson(v: unknown): Json {
  if (v === null || v === undefined) return null;
  if (typeof v === "bigint") return jsonBigint(v);
  if (typeof v === "number" || typeof v === "string" || typeof v === "boolean") return v;
  if (v instanceof Uint8Array) return hexBytes(v);
  if (Array.isArray(v)) return v.map(anyJson);
  if (typeof v === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) out[snake(k)] = anyJson(x);
    return out;
  }
  return String(v);
}

/** The JSON object of a control event. */
export function controlJson(ev: ControlEvent): { [key: string]: Json } {
  const o: { [key: string]: Json } = {
    type: ev.type,
    time: isoTime(ev.timestampNs),
    "timestamp_ns": ev.timestampNs.toString(),
  };
  switch (ev.type) {
    case "vhost-user": {
      o.seq = ev.record.seq;
      o.direction = VHOST_USER_DIRECTION.format(ev.direction);
      o.fds = ev.fdCount;
      const m = ev.message;
      if (m !== undefined) {
        o.name = m.name;
        o.request = m.request;
        o.reply = m.isReply;
        o.need_reply = m.needReply;
        o.size = m.size;
        o.payload = anyJson(m.payload);
        o.text = formatPayload(m.payload, m.form);
      }
      if (ev.latencyNs !== undefined) o.latency_ns = ev.latencyNs;
      if (ev.problem !== undefined) o.problem = ev.problem;
      break;
    }
    case "note":
      o.seq = ev.record.seq;
      // Notes are JSON already: kept exactly as written.
      if (ev.note !== undefined) o.note = ev.note as unknown as Json;
      if (ev.problem !== undefined) o.problem = ev.problem;
      break;
    case "notify":
      o.seq = ev.record.seq;
      o.queue = ev.queue;
      o.direction = NOTIFY_DIRECTION.format(ev.direction);
      o.value = jsonBigint(ev.value);
      break;
    case "gap":
      o.first_seq = ev.firstSeq;
      o.count = ev.count;
      break;
    case "record":
      o.seq = ev.record.seq;
      o.kind = RECORD_KIND.format(ev.record.kind);
      o.length = ev.record.body.byteLength;
      break;
  }
  return o;
}

/** One NDJSON line (no newline) for any event. */
export function jsonLine(ev: ShowEvent): string {
  return JSON.stringify(ev.type === "fuse" ? operationJson(ev) : controlJson(ev));
}
