/**
 * Generates the table part of the Wireshark dissector `vfstrace.lua` from the
 * project's one table per protocol, so the dissector cannot drift from the
 * decoders: the record header layout, kinds, flags, directions and stream
 * names (decode/pcapng.ts), the FUSE opcode table with every request and
 * reply part, struct layout, flag and value name (decode/fuse_table.ts,
 * fuse_layouts.ts, fuse_flags.ts), errno names (sys/errno.ts), and the
 * vhost-user message tables, payload layouts and feature bits
 * (decode/vhost_user_table.ts).
 *
 * The tables go between the BEGIN/END GENERATED markers of vfstrace.lua; the
 * rest of that file is the hand-written dissector that reads them.
 *
 * ```sh
 * deno task wireshark            # rewrite the tables in vfstrace.lua
 * deno task wireshark --check    # exit 1 when vfstrace.lua is stale
 * ```
 *
 * @module
 */
import {
  DIRECTION_BY_KIND,
  FUSE_IN_HEADER_SIZE,
  FUSE_OUT_HEADER_SIZE,
  HEAD_NONE,
  LINKTYPE_USER0,
  MAX_PACKET_DATA,
  NOTE_TYPES,
  NOTIFY_DIRECTION,
  QUEUE_NONE,
  QUEUE_STREAM_BASE,
  RECORD_FLAGS,
  RECORD_KIND,
  RECORD_LAYOUT,
  RECORD_MAGIC,
  RECORD_VERSION,
  RecordKind,
  STREAM_NAMES,
  streamName,
  VHOST_USER_DIRECTION,
  VhostUserDirection,
} from "../../decode/pcapng.ts";
import {
  FUSE_EXT_GROUPS,
  FUSE_EXT_MINOR,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_NR_SECCTX,
  FUSE_NAME_MAX,
  FUSE_NOTIFY,
  FUSE_OPS,
  type NamePart,
  type ReplySpec,
  type RequestSpec,
} from "../../decode/fuse_table.ts";
import {
  FuseDirentHead,
  FuseEntryOut,
  FuseExtHeader,
  FuseInHeader,
  FuseOutHeader,
  FuseSecctx,
  FuseSecctxHeader,
  FuseSuppGroups,
  OpcodeNames,
} from "../../decode/fuse_layouts.ts";
import { NotifyCode, OpenFlags } from "../../decode/fuse_flags.ts";
import {
  CONFIG_HEADER_LAYOUT,
  MEM_REG_HEADER_LAYOUT,
  MEMORY_REGION_LAYOUT,
  MEMORY_REGION_XEN_LAYOUT,
  MEMORY_TABLE_HEADER_LAYOUT,
  type MessageSpec,
  type PayloadForm,
  type PayloadKind,
  payloadLayout,
  SHMEM_CONFIG_HEADER_LAYOUT,
  U64_LAYOUT,
  VHOST_MEMORY_BASELINE_NREGIONS,
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FLAGS_KNOWN,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_FS_BACKEND_ENTRIES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
  VHOST_USER_FS_FLAGS,
  VHOST_USER_HEADER_LAYOUT,
  VHOST_USER_HEADER_SIZE,
  VHOST_USER_MAX_CONFIG_SIZE,
  VHOST_USER_MAX_FDS,
  VHOST_USER_MAX_PAYLOAD,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_REPLY_MASK,
  VHOST_USER_VERSION,
  VHOST_USER_VERSION_MASK,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
  VIRTIO_FS_CONFIG_LAYOUT,
  VIRTIO_MAX_SHMEM_REGIONS,
} from "../../decode/vhost_user.ts";
import {
  BitNames,
  type Display,
  fieldSize,
  type FieldSpec,
  type Layout,
  ValueNames,
} from "../../decode/struct.ts";
import { Errno } from "../../sys/errno.ts";

/** The line that opens the generated part of vfstrace.lua. */
export const BEGIN_MARKER = "-- BEGIN GENERATED TABLES";
/** The line that closes it. */
export const END_MARKER = "-- END GENERATED TABLES";

/** Where the dissector lives, relative to the repository root. */
export const LUA_PATH = "contrib/wireshark/vfstrace.lua";

// ---------------------------------------------------------------------------
// Lua text

/** A Lua value as this generator builds it. */
type Lua = null | boolean | number | string | Lua[] | LuaTable;
/** A Lua table with string keys (emitted in insertion order) or integer keys. */
interface LuaTable {
  readonly [key: string]: Lua | undefined;
}
/** Marks an object whose keys are integers (`[1] = …`), emitted in ascending order. */
const INT_KEYS = Symbol("int keys");

function intKeyed(entries: Iterable<readonly [number, Lua]>): LuaTable {
  const t: Record<string, Lua> = {};
  for (const [k, v] of [...entries].sort((a, b) => a[0] - b[0])) t[String(k)] = v;
  Object.defineProperty(t, INT_KEYS, { value: true });
  return t;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LUA_KEYWORDS = new Set([
  "and",
  "break",
  "do",
  "else",
  "elseif",
  "end",
  "false",
  "for",
  "function",
  "goto",
  "if",
  "in",
  "local",
  "nil",
  "not",
  "or",
  "repeat",
  "return",
  "then",
  "true",
  "until",
  "while",
]);

function luaString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`generate: non-ASCII text in a table: ${s}`);
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function luaKey(k: string, intKeys: boolean): string {
  if (intKeys) return `[${k}]`;
  return IDENT.test(k) && !LUA_KEYWORDS.has(k) ? k : `[${luaString(k)}]`;
}

/** Serialises `v`; a table whose one-line form fits in 100 columns stays on one line. */
function lua(v: Lua, indent = ""): string {
  if (v === null) return "nil";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error(`generate: ${v} is not an exact integer`);
    return String(v);
  }
  if (typeof v === "string") return luaString(v);
  const one = oneLine(v);
  if (one.length + indent.length <= 100) return one;
  const inner = indent + "  ";
  const parts = entries(v).map(([k, x]) => `${k === undefined ? "" : `${k} = `}${lua(x, inner)}`);
  return `{\n${parts.map((p) => `${inner}${p},`).join("\n")}\n${indent}}`;
}

function entries(v: Lua[] | LuaTable): [string | undefined, Lua][] {
  if (Array.isArray(v)) return v.map((x) => [undefined, x]);
  const intKeys = (v as { [INT_KEYS]?: boolean })[INT_KEYS] === true;
  return Object.entries(v).filter(([, x]) => x !== undefined).map((
    [k, x],
  ) => [luaKey(k, intKeys), x as Lua]);
}

function oneLine(v: Lua): string {
  if (v === null || typeof v !== "object") return lua(v);
  const parts = entries(v).map(([k, x]) => `${k === undefined ? "" : `${k} = `}${oneLine(x)}`);
  return parts.length === 0 ? "{}" : `{ ${parts.join(", ")} }`;
}

// ---------------------------------------------------------------------------
// Collecting sets and layouts

/** Custom displays (`display.kind === "custom"`) met while collecting; vfstrace.lua implements each. */
const customs = new Set<string>();

class Collector {
  readonly sets = new Map<string, BitNames | ValueNames>();
  readonly layouts = new Map<string, Layout>();

  set(s: BitNames | ValueNames): string {
    const have = this.sets.get(s.name);
    if (have !== undefined && have !== s && lua(setLua(have)) !== lua(setLua(s))) {
      throw new Error(`generate: two different name tables are both called ${s.name}`);
    }
    if (have === undefined) this.sets.set(s.name, s);
    return s.name;
  }

  display(d: Display | undefined): string | undefined {
    if (d === undefined || d.kind === "dec") return undefined;
    switch (d.kind) {
      case "hex":
        return "hex";
      case "flags":
        return `flags:${this.set(d.set)}`;
      case "enum":
        return `enum:${this.set(d.set)}`;
      case "custom":
        customs.add(d.name);
        return `custom:${d.name}`;
    }
  }

  layout(l: Layout | undefined): string | undefined {
    if (l === undefined) return undefined;
    const have = this.layouts.get(l.name);
    if (have !== undefined && have !== l && lua(this.fields(have)) !== lua(this.fields(l))) {
      throw new Error(`generate: two different layouts are both called ${l.name}`);
    }
    if (have === undefined) {
      this.layouts.set(l.name, l);
      this.fields(l); // collects the sets it names
    }
    return l.name;
  }

  fields(l: Layout): Lua[] {
    return l.fields.map((f: FieldSpec) => {
      const t: Record<string, Lua> = {
        name: f.name,
        type: typeof f.type === "string" ? f.type : "bytes",
        size: fieldSize(f),
        offset: l.offsets.get(f.name) ?? 0,
      };
      if ((f.since ?? 0) > 0) t.since = f.since!;
      if (f.pad === true) t.pad = true;
      const show = this.display(f.display);
      if (show !== undefined) t.show = show;
      return t;
    });
  }
}

/** Splits a 64-bit mask into the two 32-bit words Lua 5.2 can test with bit32. */
function words(v: bigint): [number, number] {
  return [Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn)];
}

function setLua(s: BitNames | ValueNames): Lua {
  if (s instanceof BitNames) {
    // { name, low word, high word }, in the table's order: names() takes bits in this order.
    return { flags: s.bits.map(([bit, name]) => [name, ...words(bit)]) };
  }
  const values: [number, Lua][] = [];
  for (const [name, v] of s.entries()) if (s.nameOf(v) === name) values.push([v, name]);
  return { enum: intKeyed(values) };
}

// ---------------------------------------------------------------------------
// The tables

function namesLua(names: readonly NamePart[] | undefined): Lua | undefined {
  return names?.map((n) =>
    n.lenField === undefined ? { label: n.label } : {
      label: n.label,
      len: n.lenField,
    }
  );
}

function bodyLua(c: Collector, b: RequestSpec | ReplySpec): Record<string, Lua> {
  const t: Record<string, Lua> = {};
  const s = c.layout(b.struct);
  if (s !== undefined) t.struct = s;
  const names = namesLua(b.names);
  if (names !== undefined) t.names = names;
  if (b.data !== undefined) {
    t.data = b.data.sizeField === undefined
      ? { label: b.data.label }
      : { label: b.data.label, size: b.data.sizeField };
  }
  if (b.items !== undefined) {
    t.items = {
      label: b.items.label,
      layout: c.layout(b.items.layout)!,
      count: b.items.countField,
    };
  }
  return t;
}

function fuseLua(c: Collector): Lua {
  const ops = intKeyed(
    [...FUSE_OPS.values()].map((op) => {
      const request = bodyLua(c, op.request);
      if (op.request.creates === true) request.creates = true;
      if (op.request.version !== undefined) request.version = op.request.version;
      const reply: Record<string, Lua> = { kind: op.reply.kind, ...bodyLua(c, op.reply) };
      if (op.reply.version !== undefined) reply.version = op.reply.version;
      if (op.reply.limit !== undefined) reply.limit = op.reply.limit;
      return [op.opcode, { name: op.name, since: op.since, request, reply }] as const;
    }),
  );
  const notify = intKeyed(
    [...FUSE_NOTIFY.values()].map((
      n,
    ) => [n.code, { name: n.name, since: n.since, ...bodyLua(c, n) }]),
  );
  // Name labels are strings (fuse.<label>); a data part labelled like a name is text too.
  const nameLabels = new Set<string>();
  for (const op of FUSE_OPS.values()) {
    for (const b of [op.request, op.reply]) for (const n of b.names ?? []) nameLabels.add(n.label);
  }
  for (const n of FUSE_NOTIFY.values()) for (const p of n.names ?? []) nameLabels.add(p.label);
  return {
    kernel_version: FUSE_KERNEL_VERSION,
    minor: FUSE_KERNEL_MINOR_VERSION,
    ext_minor: FUSE_EXT_MINOR,
    max_nr_secctx: FUSE_MAX_NR_SECCTX,
    ext_groups: FUSE_EXT_GROUPS,
    name_max: FUSE_NAME_MAX,
    in_header: c.layout(FuseInHeader)!,
    out_header: c.layout(FuseOutHeader)!,
    dirent: c.layout(FuseDirentHead)!,
    direntplus_entry: c.layout(FuseEntryOut)!,
    ext_header: c.layout(FuseExtHeader)!,
    secctx_header: c.layout(FuseSecctxHeader)!,
    secctx: c.layout(FuseSecctx)!,
    supp_groups: c.layout(FuseSuppGroups)!,
    opcode_names: c.set(OpcodeNames),
    notify_codes: c.set(NotifyCode),
    open_flags: c.set(OpenFlags),
    name_labels: [...nameLabels].sort(),
    ops,
    notify,
  };
}

function formsLua(c: Collector, forms: readonly PayloadForm[]): Lua {
  return forms.map((f) => {
    const t: Record<string, Lua> = { payload: f.payload };
    const show = c.display(f.display);
    if (show !== undefined) t.show = show;
    return t;
  });
}

function messagesLua(c: Collector, table: ReadonlyMap<number, MessageSpec>): Lua {
  return intKeyed(
    [...table.values()].map((m) => {
      const t: Record<string, Lua> = { name: m.name };
      if (m.legacyName !== undefined) t.legacy = m.legacyName;
      t.request = formsLua(c, m.requestForms);
      t.reply = formsLua(c, m.replyForms);
      return [m.request, t] as const;
    }),
  );
}

/**
 * Payload sizes decodeMessage accepts for the kinds whose size is fixed (the
 * dissector has hand-written size rules for the others).
 */
export function fixedPayloadSizes(kinds: Iterable<PayloadKind>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...kinds].sort()) {
    const l = payloadLayout(k);
    if (l !== undefined) out[k] = l.size();
    else if (k === "empty") out[k] = 0;
    else if (k === "u64" || k === "vring_index") out[k] = U64_LAYOUT.size();
    else if (k === "shmem_config") {
      out[k] = SHMEM_CONFIG_HEADER_LAYOUT.size() + U64_LAYOUT.size() * VIRTIO_MAX_SHMEM_REGIONS;
    } else if (k === "fs_backend") out[k] = 4 * U64_LAYOUT.size() * VHOST_USER_FS_BACKEND_ENTRIES;
  }
  return out;
}

/** Every payload kind the vhost-user message tables use, and `raw` (unknown messages). */
export function payloadKinds(): Set<PayloadKind> {
  const kinds = new Set<PayloadKind>(["raw"]);
  for (
    const t of [
      VHOST_USER_FRONTEND_MESSAGES,
      VHOST_USER_BACKEND_MESSAGES,
      VHOST_USER_FS_DAX_BACKEND_MESSAGES,
    ]
  ) {
    for (const m of t.values()) {
      for (const f of [...m.requestForms, ...m.replyForms]) kinds.add(f.payload);
    }
  }
  return kinds;
}

function vhostUserLua(c: Collector): Lua {
  const kinds = payloadKinds();
  const layouts: Record<string, Lua> = {};
  for (const k of [...kinds].sort()) {
    const l = c.layout(payloadLayout(k));
    if (l !== undefined) layouts[k] = l;
  }
  const channel: [number, Lua][] = [];
  for (const [name, v] of VHOST_USER_DIRECTION.entries()) {
    channel.push([
      v,
      v === VhostUserDirection.BACKEND_CHANNEL_REQUEST ||
        v === VhostUserDirection.BACKEND_CHANNEL_REPLY
        ? "backend"
        : "frontend",
    ]);
    if (!/^(FRONTEND|BACKEND)/.test(name)) throw new Error(`generate: direction ${name}?`);
  }
  return {
    header: c.layout(VHOST_USER_HEADER_LAYOUT)!,
    header_size: VHOST_USER_HEADER_SIZE,
    version: VHOST_USER_VERSION,
    version_mask: VHOST_USER_VERSION_MASK,
    reply_mask: VHOST_USER_REPLY_MASK,
    need_reply_mask: VHOST_USER_NEED_REPLY_MASK,
    flags_known: VHOST_USER_FLAGS_KNOWN,
    max_payload: VHOST_USER_MAX_PAYLOAD,
    max_fds: VHOST_USER_MAX_FDS,
    vring_idx_mask: VHOST_USER_VRING_IDX_MASK,
    vring_nofd_mask: VHOST_USER_VRING_NOFD_MASK,
    memory_baseline_nregions: VHOST_MEMORY_BASELINE_NREGIONS,
    max_config_size: VHOST_USER_MAX_CONFIG_SIZE,
    max_shmem_regions: VIRTIO_MAX_SHMEM_REGIONS,
    fs_backend_entries: VHOST_USER_FS_BACKEND_ENTRIES,
    fs_flags: c.set(VHOST_USER_FS_FLAGS),
    u64: c.layout(U64_LAYOUT)!,
    memory_table: c.layout(MEMORY_TABLE_HEADER_LAYOUT)!,
    region: c.layout(MEMORY_REGION_LAYOUT)!,
    region_xen: c.layout(MEMORY_REGION_XEN_LAYOUT)!,
    mem_reg: c.layout(MEM_REG_HEADER_LAYOUT)!,
    config: c.layout(CONFIG_HEADER_LAYOUT)!,
    shmem_config: c.layout(SHMEM_CONFIG_HEADER_LAYOUT)!,
    virtio_fs_config: c.layout(VIRTIO_FS_CONFIG_LAYOUT)!,
    channel_by_direction: intKeyed(channel),
    payload_layouts: layouts,
    payload_sizes: fixedPayloadSizes(kinds),
    frontend: messagesLua(c, VHOST_USER_FRONTEND_MESSAGES),
    backend: messagesLua(c, VHOST_USER_BACKEND_MESSAGES),
    backend_dax: messagesLua(c, VHOST_USER_FS_DAX_BACKEND_MESSAGES),
  };
}

function recordLua(c: Collector): Lua {
  // Virtqueue streams are named by rule; check the rule's two parts against streamName.
  const hiprio = streamName(QUEUE_STREAM_BASE);
  const first = streamName(QUEUE_STREAM_BASE + 1);
  const prefix = first.slice(0, -1);
  if (!first.endsWith("0") || streamName(QUEUE_STREAM_BASE + 13) !== `${prefix}12`) {
    throw new Error(`generate: request queue names no longer follow "<prefix>N": ${first}`);
  }
  const kinds: Record<string, Lua> = {};
  for (const [name, v] of Object.entries(RecordKind)) kinds[name] = v;
  return {
    layout: c.layout(RECORD_LAYOUT)!,
    linktype: LINKTYPE_USER0,
    magic: RECORD_MAGIC,
    version: RECORD_VERSION,
    header_size: RECORD_LAYOUT.size(),
    queue_none: QUEUE_NONE,
    head_none: HEAD_NONE,
    max_packet_data: MAX_PACKET_DATA,
    fuse_in_header_size: FUSE_IN_HEADER_SIZE,
    fuse_out_header_size: FUSE_OUT_HEADER_SIZE,
    kind_names: c.set(RECORD_KIND),
    kinds,
    flag_names: c.set(RECORD_FLAGS),
    direction_by_kind: intKeyed(
      [...DIRECTION_BY_KIND.entries()].map(([k, set]) => [k, c.set(set)] as const),
    ),
    vhost_user_directions: c.set(VHOST_USER_DIRECTION),
    notify_directions: c.set(NOTIFY_DIRECTION),
    stream_names: c.set(STREAM_NAMES),
    queue_stream_base: QUEUE_STREAM_BASE,
    hiprio_name: hiprio,
    request_queue_prefix: prefix,
    note_types: Object.keys(NOTE_TYPES),
  };
}

/** The custom display names met by the last {@link generateTables} call. */
export function customDisplays(): string[] {
  return [...customs].sort();
}

/** The Lua text that goes between the markers (markers included). */
export function generateTables(): string {
  customs.clear();
  const c = new Collector();
  const record = recordLua(c);
  const fuse = fuseLua(c);
  const vhostUser = vhostUserLua(c);
  const errno = intKeyed(Object.entries(Errno).map(([name, no]) => [no, name] as const));
  const layouts: Record<string, Lua> = {};
  for (const name of [...c.layouts.keys()].sort()) {
    const l = c.layouts.get(name)!;
    layouts[name] = { size: l.size(), fields: c.fields(l) };
  }
  const sets: Record<string, Lua> = {};
  for (const name of [...c.sets.keys()].sort()) sets[name] = setLua(c.sets.get(name)!);
  const body = [
    `T.record = ${lua(record)}`,
    `T.fuse = ${lua(fuse)}`,
    `T.vhost_user = ${lua(vhostUser)}`,
    `T.errno = ${lua(errno)}`,
    `T.customs = ${lua(customDisplays())}`,
    `T.layouts = ${lua(layouts)}`,
    `T.sets = ${lua(sets)}`,
  ];
  return [
    `${BEGIN_MARKER}: contrib/wireshark/generate.ts writes this part from the`,
    "-- tables of decode/pcapng.ts, decode/fuse_table.ts, decode/fuse_layouts.ts,",
    "-- decode/fuse_flags.ts, decode/vhost_user_table.ts and sys/errno.ts.",
    "-- Do not edit it: change those tables and run `deno task wireshark`.",
    "local T = {}",
    ...body,
    END_MARKER,
  ].join("\n");
}

/** Replaces the generated part of `source` (markers included) with `tables`. */
export function spliceTables(source: string, tables: string): string {
  const begin = source.indexOf(BEGIN_MARKER);
  const endAt = source.indexOf(END_MARKER);
  if (begin < 0 || endAt < begin) {
    throw new Error(`${LUA_PATH}: no "${BEGIN_MARKER}" … "${END_MARKER}" section`);
  }
  return source.slice(0, begin) + tables + source.slice(endAt + END_MARKER.length);
}

/** The generated part of `source`, markers included. */
export function tablesOf(source: string): string {
  const begin = source.indexOf(BEGIN_MARKER);
  const endAt = source.indexOf(END_MARKER);
  if (begin < 0 || endAt < begin) return "";
  return source.slice(begin, endAt + END_MARKER.length);
}

/**
 * Custom displays the tables use that the hand-written part of `source` does
 * not implement (it must define `CUSTOM["name"] = function …` for each).
 */
export function missingFormatters(source: string): string[] {
  const hand = spliceTables(source, "");
  return customDisplays().filter((n) => !hand.includes(`CUSTOM[${luaString(n)}] = function`));
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url).pathname;
  const path = `${root}${LUA_PATH}`;
  const source = await Deno.readTextFile(path);
  const next = spliceTables(source, generateTables());
  const missing = missingFormatters(next);
  if (missing.length > 0) {
    console.error(`${LUA_PATH} has no formatter for custom display(s): ${missing.join(", ")}`);
    Deno.exit(1);
  }
  if (Deno.args.includes("--check")) {
    if (next !== source) {
      console.error(`${LUA_PATH} is stale: run 'deno task wireshark'`);
      Deno.exit(1);
    }
  } else if (next !== source) {
    await Deno.writeTextFile(path, next);
    console.error(`${LUA_PATH}: tables regenerated`);
  } else {
    console.error(`${LUA_PATH}: tables up to date`);
  }
}
