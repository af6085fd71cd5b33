/**
 * The vfstrace capture format: a standard little-endian pcapng file that
 * Wireshark and tshark open as is, whose packets are vfstrace records.
 * Pure: encoders, a block decoder and a streaming-friendly parser over byte
 * buffers; no I/O (capture/ does that). `docs/capture-format.md` is the
 * complete description, for people writing readers or a dissector; the
 * tables here ({@link RECORD_LAYOUT}, {@link RECORD_KIND}, {@link RECORD_FLAGS},
 * the direction tables, {@link STREAM_NAMES}) are the single source of truth
 * that the printer and the Wireshark dissector read.
 *
 * File:
 *
 * 1. Section Header Block: byte-order magic 0x1A2B3C4D, version 1.0,
 *    section length -1 (unknown), options shb_userappl `vfstrace <version>`,
 *    shb_os, shb_hardware.
 * 2. One Interface Description Block per stream ({@link Stream}: vfstrace
 *    itself, vhost-user from the front-end, from the back-end, the backend
 *    channel, and each virtqueue: `hiprio`, `request.0` …), written right
 *    before the stream's first record (pcapng allows an IDB anywhere in a
 *    section before its first use): link type LINKTYPE_USER0 (147),
 *    snaplen 0, if_name the stream's name ({@link streamName}),
 *    if_description, if_tsresol 9 (nanoseconds since the Unix epoch).
 * 3. One Enhanced Packet Block per record, on its stream's interface
 *    (several for a record whose body does not fit one packet: a chain,
 *    below). Its packet data is the 32-byte {@link RECORD_LAYOUT} header
 *    followed by the record body. A body cut by a snap length has captured
 *    length < original length (and the TRUNCATED flag). An EPB may carry
 *    opt_comment options; readers skip options they do not know.
 *
 * Record header, version 2 (little-endian, {@link RECORD_LAYOUT}
 * `vfstrace_record`): magic u16 0x5646 ("FV" on disk, "VF" as a number),
 * version u8 2, kind u8, flags u16, queue u16 (0xffff: not a virtqueue),
 * fd_count u16, direction u8, reserved u8, head u16 (descriptor head,
 * 0xffff: none), reserved2 u16, seq u32, residence_ns u32 (the proxy's
 * added time, saturating; 0: not measured), aux u64 (per kind). Records are
 * self-contained: the interface repeats what queue and direction say.
 * Readers reject other record versions ("bad-version").
 *
 * Packet data is capped at {@link MAX_PACKET_DATA} (262144) bytes, because
 * Wireshark refuses a whole file (not only the packet) when one USER0 packet
 * is longer. A longer body (a 1 MiB FUSE WRITE or READ reply) is stored
 * whole as a chain of packets:
 *
 * - the record itself carries the first {@link MAX_RECORD_BODY} bytes and
 *   the CONTINUED flag; its EPB original length is 32 + the full body
 *   length, so tools that ignore chains still see the true size;
 * - it is followed immediately (no other block in between) by CONTINUATION
 *   records (kind 6) on the same interface, with the same queue, direction,
 *   head and timestamp, `aux` = the seq of the first record, fd_count 0,
 *   residence_ns 0, and the next bytes of the body; every one but the last
 *   has CONTINUED. Their EPB original length is their own length;
 * - every packet of the chain consumes a seq: the first record has seq S,
 *   its n continuations S+1 … S+n, and the next record S+n+1. A seq gap
 *   between logical records (S + continuations + 1 ≠ next seq) is still a
 *   loss signal;
 * - a snap length cuts the logical body (TRUNCATED on the first record),
 *   and the chain holds only the bytes kept; no chain holds more than
 *   {@link MAX_CHAINED_BODY} bytes (longer bodies are cut, TRUNCATED).
 *
 * Readers reassemble a chain into one logical record ({@link PcapngParser},
 * {@link decodeCapture}; `raw` gives the packets as they are). A chain
 * that a file ends inside is an incomplete final record (`truncatedAt` = its
 * first block); a CONTINUATION without the record it continues, one that
 * does not match it (aux, seq, queue, direction, head, interface), a chain
 * broken by another block, or longer than the reader's limit, is a
 * `bad-chain` error ({@link PcapngChainError}).
 *
 * Decoding errors are {@link PcapngDecodeError} (a {@link DecodeError}) with
 * a machine-readable {@link PcapngErrorReason}; "truncated" means the bytes
 * end inside a block, the normal state of a capture being written or cut by
 * a crash.
 *
 * @module
 */
import { BitNames, DecodeError, EncodeError, type Layout, layout, ValueNames } from "./struct.ts";

// ---------------------------------------------------------------------------
// pcapng constants

/** pcapng block type numbers that vfstrace writes or names. */
export const PCAPNG_BLOCK = {
  SHB: 0x0a0d0d0a,
  IDB: 1,
  PB: 2,
  SPB: 3,
  NRB: 4,
  ISB: 5,
  EPB: 6,
  DSB: 0x0a,
  CB: 0x0bad,
  DCB: 0x40000bad,
} as const;

/** Names of pcapng block types (unknown types are skipped when reading). */
export const PCAPNG_BLOCK_TYPE: ValueNames = new ValueNames("pcapng_block_type", PCAPNG_BLOCK);

/** Byte-order magic of a section written in the reader's (little-endian) order. */
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** The byte-order magic as a little-endian reader sees a big-endian section. */
export const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
/** pcapng major version written and accepted. */
export const PCAPNG_MAJOR = 1;
/** pcapng minor version written. */
export const PCAPNG_MINOR = 0;
/** LINKTYPE_USER0: the link type reserved for private use, ours in this file. */
export const LINKTYPE_USER0 = 147;
/** if_tsresol value meaning 10^-9 s (nanoseconds). */
export const TSRESOL_NANOSECONDS = 9;
/** if_tsresol pcapng assumes when the option is absent (microseconds). */
export const TSRESOL_DEFAULT = 6;

/** pcapng option codes used by vfstrace (codes are per block type). */
export const PCAPNG_OPTION = {
  END_OF_OPT: 0,
  COMMENT: 1,
  SHB_HARDWARE: 2,
  SHB_OS: 3,
  SHB_USERAPPL: 4,
  IF_NAME: 2,
  IF_DESCRIPTION: 3,
  IF_TSRESOL: 9,
} as const;

/**
 * Largest packet data (record header + body) in one EPB. Wireshark's pcapng
 * reader rejects a USER0 packet above WTAP_MAX_PACKET_SIZE_STANDARD (262144)
 * as a bad file and stops reading there, so no record may exceed it.
 */
export const MAX_PACKET_DATA = 262144;

/**
 * Largest logical body a chain stores (64 MiB), and the default limit of
 * readers: bounds what a reader must assemble in memory for one record.
 * FUSE messages stay far below (1 MiB + headers with max_pages 256).
 */
export const MAX_CHAINED_BODY = 64 << 20;

/**
 * Default cap on any block's total length when reading. Larger length fields
 * are treated as corruption rather than buffered (a reader of stdin cannot
 * know the file size); vfstrace's own blocks stay below 330 KiB.
 */
export const DEFAULT_MAX_BLOCK_LENGTH = 16 << 20;

/**
 * Largest block considered when resynchronising after corruption: bounds the
 * bytes a reader must buffer to reject a candidate (an EPB of
 * {@link MAX_PACKET_DATA} with a long comment fits).
 */
export const MAX_RESYNC_BLOCK_LENGTH = 1 << 20;

/** Longest option value pcapng can express (16-bit option length). */
export const MAX_OPTION_LENGTH = 0xffff;

// ---------------------------------------------------------------------------
// Block layouts (the fixed parts; options follow, then the trailing length)

/** Fixed part of the Section Header Block. */
export const SHB_LAYOUT: Layout = layout("pcapng_shb", [
  { name: "block_type", type: "u32", display: { kind: "hex" } },
  { name: "block_total_length", type: "u32" },
  { name: "byte_order_magic", type: "u32", display: { kind: "hex" } },
  { name: "major_version", type: "u16" },
  { name: "minor_version", type: "u16" },
  { name: "section_length", type: "i64" },
]);

/** Fixed part of the Interface Description Block. */
export const IDB_LAYOUT: Layout = layout("pcapng_idb", [
  { name: "block_type", type: "u32", display: { kind: "hex" } },
  { name: "block_total_length", type: "u32" },
  { name: "link_type", type: "u16" },
  { name: "reserved", type: "u16", pad: true },
  { name: "snaplen", type: "u32" },
]);

/** Fixed part of the Enhanced Packet Block; packet data follows. */
export const EPB_LAYOUT: Layout = layout("pcapng_epb", [
  { name: "block_type", type: "u32", display: { kind: "hex" } },
  { name: "block_total_length", type: "u32" },
  { name: "interface_id", type: "u32" },
  { name: "timestamp_high", type: "u32" },
  { name: "timestamp_low", type: "u32" },
  { name: "captured_length", type: "u32" },
  { name: "original_length", type: "u32" },
]);

function at(l: Layout, field: string): number {
  const o = l.offsets.get(field);
  if (o === undefined) throw new Error(`${l.name} has no field ${field}`);
  return o;
}

// Offsets for the hot paths, derived from the layouts so they cannot drift.
const SHB_FIXED = SHB_LAYOUT.size();
const IDB_FIXED = IDB_LAYOUT.size();
const EPB_FIXED = EPB_LAYOUT.size();
const O_BOM = at(SHB_LAYOUT, "byte_order_magic");
const O_IF = at(EPB_LAYOUT, "interface_id");
const O_TSH = at(EPB_LAYOUT, "timestamp_high");
const O_TSL = at(EPB_LAYOUT, "timestamp_low");
const O_CAP = at(EPB_LAYOUT, "captured_length");
const O_ORIG = at(EPB_LAYOUT, "original_length");
/** Smallest legal total length per block type: fixed part + trailing length. */
const MIN_SHB = SHB_FIXED + 4;
const MIN_IDB = IDB_FIXED + 4;
const MIN_EPB = EPB_FIXED + 4;
const MIN_BLOCK = 12;
const SHB_TYPE_BYTES = [0x0a, 0x0d, 0x0d, 0x0a];

// ---------------------------------------------------------------------------
// The vfstrace record

/** The 16-bit record magic ("VF"). */
export const RECORD_MAGIC = 0x5646;
/**
 * Record header version written and accepted (2: the 32-byte header with
 * head and residence_ns). Readers reject every other version.
 */
export const RECORD_VERSION = 2;
/** `queue` value of records that do not belong to a virtqueue. */
export const QUEUE_NONE = 0xffff;
/** `head` value of records that have no descriptor head (anything but FUSE requests and replies). */
export const HEAD_NONE = 0xffff;
/** Largest `residence_ns`: longer residences saturate here (≈ 4.29 s). */
export const RESIDENCE_MAX = 0xffffffff;
/** Bytes of fuse_in_header: the part of a FUSE_REQUEST body a snap length never cuts. */
export const FUSE_IN_HEADER_SIZE = 40;
/** Bytes of fuse_out_header: the part of a FUSE_REPLY body a snap length never cuts. */
export const FUSE_OUT_HEADER_SIZE = 16;

/** Record kinds (the `kind` byte). */
export const RecordKind = {
  VHOST_USER: 1,
  FUSE_REQUEST: 2,
  FUSE_REPLY: 3,
  NOTE: 4,
  NOTIFY: 5,
  /** The next bytes of the body of the record before it (see {@link RecordFlag.CONTINUED}). */
  CONTINUATION: 6,
} as const;

/** Names of record kinds. */
export const RECORD_KIND: ValueNames = new ValueNames("vfstrace_record_kind", RecordKind);

/** Record flag bits (the `flags` word). */
export const RecordFlag = {
  /** The body was cut (snap length or packet cap); original length holds the full size. */
  TRUNCATED: 1,
  /** The proxy could not decode it; the body is kept raw. */
  MALFORMED: 2,
  /** A reply whose request is in the file. */
  PAIRED: 4,
  /** Generated by vfstrace (notes, drop reports), not seen on the wire. */
  SYNTHETIC: 8,
  /** The body goes on in the CONTINUATION record that follows this packet. */
  CONTINUED: 16,
} as const;

/** Names of record flag bits. */
export const RECORD_FLAGS: BitNames = new BitNames("vfstrace_record_flags", RecordFlag);

/** `direction` of VHOST_USER records. */
export const VhostUserDirection = {
  /** Main socket, front-end (QEMU) → back-end: a request. */
  FRONTEND_TO_BACKEND: 0,
  /** Main socket, back-end → front-end: a reply. */
  BACKEND_TO_FRONTEND: 1,
  /** Backend channel, back-end → front-end: a request. */
  BACKEND_CHANNEL_REQUEST: 2,
  /** Backend channel, front-end → back-end: a reply. */
  BACKEND_CHANNEL_REPLY: 3,
} as const;

/** Names of VHOST_USER directions. */
export const VHOST_USER_DIRECTION: ValueNames = new ValueNames(
  "vfstrace_vhost_user_direction",
  VhostUserDirection,
);

/** `direction` of NOTIFY records: which eventfd was signalled, by whom. */
export const NotifyDirection = {
  /** The guest kicked a queue (QEMU's kick eventfd). */
  GUEST_KICK: 0,
  /** The back-end signalled its call eventfd. */
  BACKEND_CALL: 1,
  /** The proxy kicked the back-end. */
  KICK_TO_BACKEND: 2,
  /** The proxy signalled the guest (QEMU's call eventfd). */
  CALL_TO_GUEST: 3,
} as const;

/** Names of NOTIFY directions. */
export const NOTIFY_DIRECTION: ValueNames = new ValueNames(
  "vfstrace_notify_direction",
  NotifyDirection,
);

/**
 * Direction table per record kind. Kinds not listed (FUSE_REQUEST,
 * FUSE_REPLY, NOTE) always have direction 0: the kind says it.
 */
export const DIRECTION_BY_KIND: ReadonlyMap<number, ValueNames> = new Map([
  [RecordKind.VHOST_USER, VHOST_USER_DIRECTION],
  [RecordKind.NOTIFY, NOTIFY_DIRECTION],
]);

/** Name of `direction` for a record of `kind`, or its number. */
export function formatDirection(kind: number, direction: number): string {
  return DIRECTION_BY_KIND.get(kind)?.format(direction) ?? String(direction);
}

/**
 * The 32-byte record header (version 2) at the start of every EPB's packet
 * data; 8-byte aligned so `aux` is. `head` is the descriptor head of FUSE
 * requests and replies ({@link HEAD_NONE} otherwise). `residence_ns` is the
 * proxy's added time, u32 ns saturating at {@link RESIDENCE_MAX}, 0 when not
 * measured: FUSE_REQUEST guest kick seen → back-end kicked, FUSE_REPLY
 * back-end call seen → guest notified. `aux` by kind: FUSE_REQUEST
 * {@link packRequestAux}; FUSE_REPLY latency ns since the request record;
 * VHOST_USER 0; NOTE 0; NOTIFY the eventfd counter; CONTINUATION the seq of
 * the chain's first record. Reserved fields are written 0 and ignored.
 */
export const RECORD_LAYOUT: Layout = layout("vfstrace_record", [
  { name: "magic", type: "u16", display: { kind: "hex" } },
  { name: "version", type: "u8" },
  { name: "kind", type: "u8", display: { kind: "enum", set: RECORD_KIND } },
  { name: "flags", type: "u16", display: { kind: "flags", set: RECORD_FLAGS } },
  { name: "queue", type: "u16" },
  { name: "fd_count", type: "u16" },
  { name: "direction", type: "u8" },
  { name: "reserved", type: "u8", pad: true },
  { name: "head", type: "u16" },
  { name: "reserved2", type: "u16", pad: true },
  { name: "seq", type: "u32" },
  { name: "residence_ns", type: "u32" },
  { name: "aux", type: "u64", display: { kind: "hex" } },
]);

/** Bytes of the record header. */
export const RECORD_HEADER_SIZE: number = RECORD_LAYOUT.size();
/**
 * Largest body one packet carries ({@link MAX_PACKET_DATA} − header); longer
 * bodies continue in CONTINUATION records.
 */
export const MAX_RECORD_BODY: number = MAX_PACKET_DATA - RECORD_HEADER_SIZE;

const R_MAGIC = at(RECORD_LAYOUT, "magic");
const R_VERSION = at(RECORD_LAYOUT, "version");
const R_KIND = at(RECORD_LAYOUT, "kind");
const R_FLAGS = at(RECORD_LAYOUT, "flags");
const R_QUEUE = at(RECORD_LAYOUT, "queue");
const R_FDS = at(RECORD_LAYOUT, "fd_count");
const R_DIR = at(RECORD_LAYOUT, "direction");
const R_RESERVED = at(RECORD_LAYOUT, "reserved");
const R_HEAD = at(RECORD_LAYOUT, "head");
const R_RESERVED2 = at(RECORD_LAYOUT, "reserved2");
const R_SEQ = at(RECORD_LAYOUT, "seq");
const R_RESIDENCE = at(RECORD_LAYOUT, "residence_ns");
const R_AUX = at(RECORD_LAYOUT, "aux");

/**
 * Offset of `residence_ns` from the start of a record's EPB: where a writer
 * amends the residence of a record still in its buffer.
 */
export const EPB_RESIDENCE_OFFSET: number = EPB_LAYOUT.size() + R_RESIDENCE;

/** The parts of a FUSE_REQUEST record's `aux`. */
export interface RequestAux {
  /** Descriptors in the chain. */
  readonly descriptors: number;
  /** Bytes of device-writable buffers the chain offers for the reply. */
  readonly writable: number;
}

/**
 * FUSE_REQUEST aux: descriptor count (u16) in bits 0–15, bits 16–31 zero,
 * writable capacity in bytes (u32) in bits 32–63, so each half is a u32.
 * Throws EncodeError for values that do not fit.
 */
export function packRequestAux(descriptors: number, writable: number): bigint {
  if (!isUint(descriptors, 0xffff) || !isUint(writable, 0xffffffff)) {
    throw new EncodeError(
      `vfstrace_record.aux: descriptors ${descriptors}, writable ${writable} do not fit u16, u32`,
    );
  }
  return (BigInt(writable) << 32n) | BigInt(descriptors);
}

/** Splits a FUSE_REQUEST aux into its parts. */
export function unpackRequestAux(aux: bigint): RequestAux {
  return {
    descriptors: Number(aux & 0xffffn),
    writable: Number((aux >> 32n) & 0xffffffffn),
  };
}

/**
 * The `residence_ns` value of a measured residence of `ns` nanoseconds:
 * saturates at {@link RESIDENCE_MAX}; anything below 1 ns (a coarse clock,
 * never negative in practice) is stored as 1, because 0 means "not measured".
 */
export function residenceField(ns: bigint | number): number {
  const n = typeof ns === "bigint" ? (ns > 0xffffffffn ? RESIDENCE_MAX : Number(ns)) : ns;
  if (!(n >= 1)) return 1; // NaN too
  return n >= RESIDENCE_MAX ? RESIDENCE_MAX : Math.floor(n);
}

// ---------------------------------------------------------------------------
// Streams: one pcapng interface each

/**
 * The streams of a capture that are not a virtqueue. Each stream is one
 * pcapng interface, named by {@link STREAM_NAMES}; virtqueue q is stream
 * {@link QUEUE_STREAM_BASE} + q. The record header says the same
 * (kind, direction, queue: {@link recordStream}), so records stand alone.
 */
export const Stream = {
  /** vfstrace itself: notes, drop reports, and records that name no other stream. */
  VFSTRACE: 0,
  /** vhost-user messages from the front-end (QEMU) on the main socket. */
  VHOST_USER_FRONTEND: 1,
  /** vhost-user messages from the back-end on the main socket (replies). */
  VHOST_USER_BACKEND: 2,
  /** The vhost-user backend channel, both directions. */
  BACKEND_CHANNEL: 3,
} as const;

/** Stream of virtqueue 0; virtqueue q (FUSE requests, replies, notifications) is this + q. */
export const QUEUE_STREAM_BASE = 4;

/**
 * The one table of stream names (the interfaces' if_name), for the streams
 * that are not virtqueues. Virtqueues are named by rule: queue 0 `hiprio`,
 * queue N+1 `request.N` ({@link streamName}, {@link streamOfName}).
 */
export const STREAM_NAMES: ValueNames = new ValueNames("vfstrace_stream", {
  "vfstrace": Stream.VFSTRACE,
  "vhost-user.frontend": Stream.VHOST_USER_FRONTEND,
  "vhost-user.backend": Stream.VHOST_USER_BACKEND,
  "backend-channel": Stream.BACKEND_CHANNEL,
});

const STREAM_DESCRIPTIONS: readonly string[] = [
  "vfstrace: notes and drop reports",
  "vhost-user messages from the front-end (QEMU), main socket",
  "vhost-user messages from the back-end, main socket",
  "vhost-user backend channel, both directions",
];

/** Name of the hiprio queue's stream (virtqueue 0). */
const HIPRIO = "hiprio";
/** Request queue N (virtqueue N + 1) is named `request.N`. */
const REQUEST_PREFIX = "request.";
const REQUEST_NAME = /^request\.(0|[1-9][0-9]{0,4})$/;

/** The interface name of `stream`: the table, or the virtqueue rule. */
export function streamName(stream: number): string {
  if (stream >= QUEUE_STREAM_BASE) {
    const q = stream - QUEUE_STREAM_BASE;
    return q === 0 ? HIPRIO : `${REQUEST_PREFIX}${q - 1}`;
  }
  return STREAM_NAMES.nameOf(stream) ?? `stream ${stream}`;
}

/** The stream an interface name stands for, or undefined for a name vfstrace does not write. */
export function streamOfName(name: string): number | undefined {
  const fixed = STREAM_NAMES.valueOf(name);
  if (fixed !== undefined) return fixed;
  if (name === HIPRIO) return QUEUE_STREAM_BASE;
  const m = REQUEST_NAME.exec(name);
  if (m === null) return undefined;
  const q = Number(m[1]) + 1;
  return q < QUEUE_NONE ? QUEUE_STREAM_BASE + q : undefined;
}

/** A virtqueue stream's queue index, or undefined for the other streams. */
export function streamQueue(stream: number): number | undefined {
  return stream >= QUEUE_STREAM_BASE ? stream - QUEUE_STREAM_BASE : undefined;
}

/** if_description of `stream`'s interface. */
export function streamDescription(stream: number): string {
  if (stream >= QUEUE_STREAM_BASE) {
    const q = stream - QUEUE_STREAM_BASE;
    return `virtqueue ${q} (${streamName(stream)}): FUSE requests, replies and notifications`;
  }
  return STREAM_DESCRIPTIONS[stream] ?? streamName(stream);
}

function vhostUserStream(direction: number): number {
  switch (direction) {
    case VhostUserDirection.FRONTEND_TO_BACKEND:
      return Stream.VHOST_USER_FRONTEND;
    case VhostUserDirection.BACKEND_TO_FRONTEND:
      return Stream.VHOST_USER_BACKEND;
    case VhostUserDirection.BACKEND_CHANNEL_REQUEST:
    case VhostUserDirection.BACKEND_CHANNEL_REPLY:
      return Stream.BACKEND_CHANNEL;
    default:
      return Stream.VFSTRACE;
  }
}

/**
 * What {@link recordStream} returns for a CONTINUATION: it belongs to the
 * stream of the record it continues, which its own header cannot say.
 */
export const STREAM_OF_CHAIN = -1;

/**
 * The stream of a record: VHOST_USER by direction (front-end, back-end,
 * backend channel); FUSE_REQUEST, FUSE_REPLY and NOTIFY by queue; NOTE,
 * unknown kinds and queue-less records `vfstrace`; CONTINUATION
 * {@link STREAM_OF_CHAIN}.
 */
export function recordStream(kind: number, direction: number, queue: number): number {
  switch (kind) {
    case RecordKind.VHOST_USER:
      return vhostUserStream(direction);
    case RecordKind.FUSE_REQUEST:
    case RecordKind.FUSE_REPLY:
    case RecordKind.NOTIFY:
      return queue === QUEUE_NONE ? Stream.VFSTRACE : QUEUE_STREAM_BASE + queue;
    case RecordKind.CONTINUATION:
      return STREAM_OF_CHAIN;
    default:
      return Stream.VFSTRACE;
  }
}

// ---------------------------------------------------------------------------
// NOTE bodies

/**
 * NOTE types vfstrace writes, with the fields each carries (more may come;
 * readers show unknown types and fields as they are).
 */
export const NOTE_TYPES = {
  start: "the proxy started: masked_virtio_features, masked_protocol_features (names)",
  stop: "the session ended: closed_by (frontend|backend|proxy), requests, replies, malformed, " +
    "error?",
  features_masked: "feature bits hidden from the front-end: what (virtio|protocol), offered, " +
    "masked (names joined by |)",
  malformed_chain: "a descriptor chain the proxy could not relay: queue, head, reason",
  malformed_request: "a FUSE request whose fuse_in_header does not fit its chain (the record " +
    "is flagged MALFORMED): queue, head, seq, reason",
  undecodable_message: "a vhost-user message that did not decode: channel, request, error",
  shadow_region_moved: "the shadow rings' memory region moved: from, to (guest addresses)",
  kick_without_fd: "a queue kicked without an eventfd (polling, not relayed): queue, detail",
  vring_stopped_with_pending: "a queue stopped with chains the back-end never took: " +
    "queue, unconsumed",
  backend_used_unknown_head: "the back-end returned a head not in flight: queue, head, len",
  backend_used_len_over_capacity: "the back-end's used length exceeds the chain: " +
    "queue, head, len, capacity",
  queue_broken: "a queue stopped being relayed: queue, reason",
  proxy_error: "the proxy failed: error",
  dropped: "records lost before reaching the file: count, first_seq, last_seq, reason",
} as const;

/** A JSON value. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** The body of a NOTE record: a JSON object with a string `type`. */
export interface Note {
  /** What happened; see {@link NOTE_TYPES}. */
  readonly type: string;
  /** The note's details. */
  readonly [field: string]: JsonValue;
}

const utf8 = new TextEncoder();
const utf8Lossy = new TextDecoder("utf-8", { fatal: false });
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 JSON of `note` (a NOTE record body). Throws EncodeError if it is not JSON. */
export function encodeNote(note: Note): Uint8Array {
  if (typeof note.type !== "string" || note.type === "") {
    throw new EncodeError("vfstrace note: `type` must be a non-empty string");
  }
  let text: string;
  try {
    text = JSON.stringify(note);
  } catch (e) {
    throw new EncodeError(`vfstrace note ${note.type}: ${(e as Error).message}`);
  }
  return utf8.encode(text);
}

/** Parses a NOTE body. Throws DecodeError unless it is a UTF-8 JSON object with a string `type`. */
export function decodeNote(body: Uint8Array): Note {
  let value: unknown;
  try {
    value = JSON.parse(utf8Strict.decode(body));
  } catch (e) {
    throw new DecodeError(`vfstrace note: not UTF-8 JSON: ${(e as Error).message}`, 0);
  }
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    typeof (value as { type?: unknown }).type !== "string"
  ) {
    throw new DecodeError("vfstrace note: not a JSON object with a string `type`", 0);
  }
  return value as Note;
}

// ---------------------------------------------------------------------------
// Errors

/** Why a pcapng byte sequence was rejected. */
export type PcapngErrorReason =
  /** The bytes end inside a block: normal for a capture being written or cut by a crash. */
  | "truncated"
  /** The first block is not a Section Header Block. */
  | "not-pcapng"
  /** A big-endian section: readable pcapng, but vfstrace only reads little-endian. */
  | "big-endian"
  /** A Section Header Block whose byte-order magic is neither order. */
  | "bad-magic"
  /**
   * A pcapng major version other than 1, or a vfstrace record version other
   * than {@link RECORD_VERSION} (a capture of another vfstrace format).
   */
  | "bad-version"
  /** A block type that cannot occur (0 is reserved). */
  | "bad-type"
  /** Total length fields not a multiple of 4, below the minimum, or disagreeing. */
  | "bad-length"
  /** A total length above the reader's limit. */
  | "too-long"
  /** Options that run past their block. */
  | "bad-options"
  /** An EPB naming an interface that no IDB described. */
  | "bad-interface"
  /** An EPB on the vfstrace interface that does not hold a valid record. */
  | "bad-record"
  /** A CONTINUATION record that does not continue the record before it (see PcapngChainError). */
  | "bad-chain";

/**
 * A rejected pcapng input. `offset` (and the message) count from the start
 * of the input, or of the file for streaming readers.
 */
export class PcapngDecodeError extends DecodeError {
  /** Machine-readable cause. */
  readonly reason: PcapngErrorReason;
  /** Creates the error for the problem at `offset`. */
  constructor(reason: PcapngErrorReason, message: string, offset: number) {
    super(`pcapng: ${message}`, offset);
    this.name = "PcapngDecodeError";
    this.reason = reason;
  }

  /**
   * True when the block boundaries themselves are lost (lengths, type,
   * magic), so a reader must scan for the next block; false when the block
   * framing is sound and only its content is bad (skip one block).
   */
  get framing(): boolean {
    return this.reason !== "bad-options" && this.reason !== "bad-interface" &&
      this.reason !== "bad-record" && this.reason !== "bad-version" &&
      this.reason !== "bad-chain";
  }
}

/**
 * A record chain that cannot be assembled (reason `bad-chain`): a
 * CONTINUATION with no record to continue, one that does not match its
 * chain, a chain interrupted by another block, or a chain longer than the
 * reader's limit. `offset` is in the block where the problem shows.
 */
export class PcapngChainError extends PcapngDecodeError {
  /** Offset of the first block of the chain being assembled, if any. */
  readonly chainOffset: number | undefined;
  /**
   * True when the block where the problem showed is sound and is to be read
   * again once the broken chain is dropped (a record interrupting a chain);
   * false when that block is part of the bad stretch (a continuation).
   */
  readonly keepsBlock: boolean;
  /** Creates the error for the block at `offset`. */
  constructor(
    message: string,
    offset: number,
    chainOffset: number | undefined,
    keepsBlock: boolean,
  ) {
    super("bad-chain", message, offset);
    this.name = "PcapngChainError";
    this.chainOffset = chainOffset;
    this.keepsBlock = keepsBlock;
  }

  /**
   * A continuation with no chain to join: the rest of a chain whose start
   * was lost. Recovering readers fold it into the stretch skipped just
   * before it rather than count one loss per packet.
   */
  get orphan(): boolean {
    return this.chainOffset === undefined && !this.keepsBlock;
  }
}

/**
 * A record of another format version (reason `bad-version`). When it is the
 * first record of the input, the file is of that version, not corrupt:
 * recovering readers stop there too ({@link PcapngParser.isFatal}).
 */
export class PcapngRecordVersionError extends PcapngDecodeError {
  /** The record's version byte. */
  readonly version: number;
  /** Creates the error for the version byte at `offset`. */
  constructor(version: number, message: string, offset: number) {
    super("bad-version", message, offset);
    this.name = "PcapngRecordVersionError";
    this.version = version;
  }
}

// ---------------------------------------------------------------------------
// Encoding: SHB, IDB, generic EPB

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function isUint(v: number, max: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= max;
}

type Option = readonly [code: number, value: Uint8Array];

function optionBytes(code: number, value: string | Uint8Array | undefined, out: Option[]): void {
  if (value === undefined) return;
  const bytes = typeof value === "string" ? utf8.encode(value) : value;
  if (bytes.byteLength > MAX_OPTION_LENGTH) {
    throw new EncodeError(`pcapng option ${code}: ${bytes.byteLength} bytes exceed 65535`);
  }
  out.push([code, bytes]);
}

function optionsLength(opts: readonly Option[]): number {
  if (opts.length === 0) return 0;
  let n = 4; // opt_endofopt
  for (const [, v] of opts) n += 4 + pad4(v.byteLength);
  return n;
}

function writeOptions(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  opts: readonly Option[],
): number {
  if (opts.length === 0) return offset;
  let p = offset;
  for (const [code, v] of opts) {
    view.setUint16(p, code, true);
    view.setUint16(p + 2, v.byteLength, true);
    bytes.set(v, p + 4);
    bytes.fill(0, p + 4 + v.byteLength, p + 4 + pad4(v.byteLength));
    p += 4 + pad4(v.byteLength);
  }
  view.setUint32(p, 0, true); // opt_endofopt, length 0
  return p + 4;
}

/** Options of the Section Header Block. */
export interface SectionOptions {
  /** shb_userappl, e.g. `vfstrace 0.1.0`. */
  readonly userAppl?: string | undefined;
  /** shb_os, e.g. `Linux 6.1.0-18-amd64`. */
  readonly os?: string | undefined;
  /** shb_hardware, e.g. `x86_64`. */
  readonly hardware?: string | undefined;
  /** opt_comment. */
  readonly comment?: string | undefined;
}

/** Encodes a little-endian Section Header Block, version 1.0, section length -1. */
export function encodeSectionHeader(options: SectionOptions = {}): Uint8Array {
  const opts: Option[] = [];
  optionBytes(PCAPNG_OPTION.COMMENT, options.comment, opts);
  optionBytes(PCAPNG_OPTION.SHB_HARDWARE, options.hardware, opts);
  optionBytes(PCAPNG_OPTION.SHB_OS, options.os, opts);
  optionBytes(PCAPNG_OPTION.SHB_USERAPPL, options.userAppl, opts);
  const len = SHB_FIXED + optionsLength(opts) + 4;
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  SHB_LAYOUT.encode(view, 0, {
    block_type: PCAPNG_BLOCK.SHB,
    block_total_length: len,
    byte_order_magic: BYTE_ORDER_MAGIC,
    major_version: PCAPNG_MAJOR,
    minor_version: PCAPNG_MINOR,
    section_length: -1n,
  });
  view.setUint32(writeOptions(bytes, view, SHB_FIXED, opts), len, true);
  return bytes;
}

/** Fields and options of an Interface Description Block. */
export interface InterfaceOptions {
  /** Link type; {@link LINKTYPE_USER0} by default. */
  readonly linkType?: number | undefined;
  /** Snap length; 0 (unlimited) by default. */
  readonly snaplen?: number | undefined;
  /** if_name; `vfstrace` by default. */
  readonly name?: string | undefined;
  /** if_description. */
  readonly description?: string | undefined;
  /** if_tsresol byte; {@link TSRESOL_NANOSECONDS} by default. */
  readonly tsresol?: number | undefined;
  /** opt_comment. */
  readonly comment?: string | undefined;
}

/** Encodes an Interface Description Block (by default: vfstrace's USER0, ns timestamps). */
export function encodeInterfaceDescription(options: InterfaceOptions = {}): Uint8Array {
  const opts: Option[] = [];
  optionBytes(PCAPNG_OPTION.COMMENT, options.comment, opts);
  optionBytes(PCAPNG_OPTION.IF_NAME, options.name ?? "vfstrace", opts);
  optionBytes(PCAPNG_OPTION.IF_DESCRIPTION, options.description, opts);
  const tsresol = options.tsresol ?? TSRESOL_NANOSECONDS;
  if (!isUint(tsresol, 0xff)) throw new EncodeError(`pcapng if_tsresol ${tsresol} is not a u8`);
  optionBytes(PCAPNG_OPTION.IF_TSRESOL, Uint8Array.of(tsresol), opts);
  const len = IDB_FIXED + optionsLength(opts) + 4;
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  IDB_LAYOUT.encode(view, 0, {
    block_type: PCAPNG_BLOCK.IDB,
    block_total_length: len,
    link_type: options.linkType ?? LINKTYPE_USER0,
    snaplen: options.snaplen ?? 0,
  });
  view.setUint32(writeOptions(bytes, view, IDB_FIXED, opts), len, true);
  return bytes;
}

/** The IDB of `stream`'s interface: USER0, ns timestamps, its name and description. */
export function encodeStreamInterface(stream: number): Uint8Array {
  return encodeInterfaceDescription({
    name: streamName(stream),
    description: streamDescription(stream),
  });
}

/**
 * The interfaces of a section being written: which stream has which
 * interface id. A writer asks {@link idOf} before each record; for a
 * stream without one it writes {@link block} just before the record and
 * then calls {@link add}, so every IDB comes right before its first use.
 */
export class StreamInterfaces {
  #ids = new Map<number, number>();
  #blocks = new Map<number, Uint8Array>();
  #streams: number[] = [];

  /** Interface id of `stream`, or -1 while it has no IDB. */
  idOf(stream: number): number {
    return this.#ids.get(stream) ?? -1;
  }

  /** The IDB that describes `stream` (cached). */
  block(stream: number): Uint8Array {
    let b = this.#blocks.get(stream);
    if (b === undefined) {
      b = encodeStreamInterface(stream);
      this.#blocks.set(stream, b);
    }
    return b;
  }

  /** Records that `stream`'s IDB was written; returns its interface id (the next one). */
  add(stream: number): number {
    const known = this.#ids.get(stream);
    if (known !== undefined) return known;
    const id = this.#streams.length;
    this.#ids.set(stream, id);
    this.#streams.push(stream);
    return id;
  }

  /** The streams by interface id, in the order their IDBs were written. */
  get streams(): readonly number[] {
    return this.#streams;
  }
}

/** Input of {@link encodeEnhancedPacket}: any packet, not only vfstrace records. */
export interface EnhancedPacketInput {
  /** Interface id; 0 by default. */
  readonly interfaceId?: number | undefined;
  /** Timestamp in units of the interface's if_tsresol (ns for vfstrace). */
  readonly timestamp: bigint;
  /** Captured packet data. */
  readonly data: Uint8Array;
  /** Original packet length; `data.length` by default. */
  readonly originalLength?: number | undefined;
  /** opt_comment. */
  readonly comment?: string | undefined;
}

/** Encodes any Enhanced Packet Block (tests, tools); records use {@link encodeRecord}. */
export function encodeEnhancedPacket(input: EnhancedPacketInput): Uint8Array {
  const opts: Option[] = [];
  optionBytes(PCAPNG_OPTION.COMMENT, input.comment, opts);
  const cap = input.data.byteLength;
  const orig = input.originalLength ?? cap;
  if (!isUint(orig, 0xffffffff) || orig < cap) {
    throw new EncodeError(`pcapng_epb: original length ${orig} < captured length ${cap}`);
  }
  if (input.timestamp < 0n || input.timestamp >= 1n << 64n) {
    throw new EncodeError(`pcapng_epb: timestamp ${input.timestamp} is not a u64`);
  }
  const len = EPB_FIXED + pad4(cap) + optionsLength(opts) + 4;
  const bytes = new Uint8Array(len);
  const view = new DataView(bytes.buffer);
  EPB_LAYOUT.encode(view, 0, {
    block_type: PCAPNG_BLOCK.EPB,
    block_total_length: len,
    interface_id: input.interfaceId ?? 0,
    timestamp_high: Number(input.timestamp >> 32n),
    timestamp_low: Number(input.timestamp & 0xffffffffn),
    captured_length: cap,
    original_length: orig,
  });
  bytes.set(input.data, EPB_FIXED);
  view.setUint32(writeOptions(bytes, view, EPB_FIXED + pad4(cap), opts), len, true);
  return bytes;
}

// ---------------------------------------------------------------------------
// Encoding: records

/**
 * A record to encode. Absent fields are 0, except `queue` ({@link QUEUE_NONE})
 * and `head` ({@link HEAD_NONE}).
 * A body longer than {@link MAX_RECORD_BODY} becomes a chain (the encoder
 * adds CONTINUED and the CONTINUATION records). A chain part given by the
 * caller (`kind` CONTINUATION or the CONTINUED flag: tools copying raw
 * packets) is written as given, TRUNCATED not added, and must fit a packet.
 */
export interface RecordInput {
  /** {@link RecordKind}. */
  readonly kind: number;
  /** The body, whole or as segments (a descriptor chain's buffers) that are concatenated. */
  readonly body?: Uint8Array | readonly Uint8Array[] | undefined;
  /** {@link RecordFlag} bits; TRUNCATED is added when the body is cut, CONTINUED when split. */
  readonly flags?: number | undefined;
  /** Virtqueue index, or {@link QUEUE_NONE} (the default). */
  readonly queue?: number | undefined;
  /** File descriptors that came with a vhost-user message. */
  readonly fdCount?: number | undefined;
  /** Direction, per kind ({@link DIRECTION_BY_KIND}). */
  readonly direction?: number | undefined;
  /** Descriptor head of a FUSE request or reply, or {@link HEAD_NONE} (the default). */
  readonly head?: number | undefined;
  /**
   * The proxy's residence in ns, when measured (absent: 0, not measured):
   * stored by {@link residenceField} (saturating; a measured 0 becomes 1).
   */
  readonly residenceNs?: bigint | number | undefined;
  /** EPB interface id; 0 by default. A writer assigns its own, per stream. */
  readonly interfaceId?: number | undefined;
  /** Sequence number; a writer assigns its own. Continuations take the next ones. */
  readonly seq?: number | undefined;
  /** Per-kind u64 ({@link RECORD_LAYOUT}); a number must be a safe integer. */
  readonly aux?: bigint | number | undefined;
  /** Nanoseconds since the Unix epoch; a writer's clock supplies it when absent. */
  readonly timestampNs?: bigint | undefined;
  /** Full body length when `body` was already cut by the caller (≥ the bytes given). */
  readonly originalLength?: number | undefined;
  /** Short text stored as the EPB's opt_comment (of the first packet of a chain). */
  readonly comment?: string | undefined;
  /**
   * Body bytes a writer's snap length never cuts (FUSE header + op
   * arguments); the FUSE header size by default.
   */
  readonly keep?: number | undefined;
}

const TWO32 = 0x1_0000_0000;
/** EPB of a full continuation: fixed part + header + MAX_RECORD_BODY + trailing length. */
const FULL_CONTINUATION = EPB_FIXED + pad4(MAX_PACKET_DATA) + 4;

/**
 * Encodes records into caller-owned buffers without allocating (except for
 * comments): {@link measure} validates a record and computes its length,
 * {@link write} then puts it at an offset. A body longer than
 * {@link MAX_RECORD_BODY} is a chain of {@link blockCount} EPBs, which
 * {@link writeBlock} can also write one at a time (a writer flushing whole
 * blocks between them). A writer keeps one.
 */
export class RecordEncoder {
  #kind = 0;
  #flags = 0;
  #queue = 0;
  #fds = 0;
  #dir = 0;
  #head = HEAD_NONE;
  #residence = 0;
  #iface = 0;
  #stream = 0;
  #auxHi = 0;
  #auxLo = 0;
  #segments: Uint8Array | readonly Uint8Array[] | undefined = undefined;
  #captured = 0;
  #original = 0;
  #comment: Uint8Array | undefined = undefined;
  #length = 0;
  #firstLength = 0;
  #blocks = 1;
  #next = 0;
  // Read position in the body segments, for writing a chain block by block.
  #segIndex = 0;
  #segOffset = 0;

  /**
   * Validates `record` and prepares it; returns the total length of its
   * EPBs (one, or a chain). At most `limit` body bytes are kept, never more
   * than {@link MAX_CHAINED_BODY} (TRUNCATED set if fewer than the body).
   * Throws EncodeError for values that do not fit their fields.
   */
  measure(record: RecordInput, limit: number = MAX_CHAINED_BODY): number {
    const kind = record.kind;
    const flags = record.flags ?? 0;
    const queue = record.queue ?? QUEUE_NONE;
    const fds = record.fdCount ?? 0;
    const dir = record.direction ?? 0;
    const head = record.head ?? HEAD_NONE;
    const iface = record.interfaceId ?? 0;
    if (
      !isUint(kind, 0xff) || !isUint(flags, 0xffff) || !isUint(queue, 0xffff) ||
      !isUint(fds, 0xffff) || !isUint(dir, 0xff) || !isUint(head, 0xffff) ||
      !isUint(iface, 0xffffffff)
    ) {
      throw new EncodeError(
        `vfstrace_record: kind ${kind}, flags ${flags}, queue ${queue}, fd_count ${fds}, ` +
          `direction ${dir}, head ${head} or interface ${iface} out of range`,
      );
    }
    const res = record.residenceNs;
    let residence = 0;
    if (res !== undefined) {
      if (typeof res === "number" ? !Number.isSafeInteger(res) || res < 0 : res < 0n) {
        throw new EncodeError(`vfstrace_record.residence_ns: ${res} is not a count of ns`);
      }
      residence = residenceField(res);
    }
    const aux = record.aux ?? 0;
    if (typeof aux === "number") {
      if (!Number.isSafeInteger(aux) || aux < 0) {
        throw new EncodeError(`vfstrace_record.aux: ${aux} is not a safe u64 number`);
      }
      this.#auxHi = Math.floor(aux / TWO32);
      this.#auxLo = aux - this.#auxHi * TWO32;
    } else {
      if (aux < 0n || aux >= 1n << 64n) {
        throw new EncodeError(`vfstrace_record.aux: ${aux} is not a u64`);
      }
      this.#auxHi = Number(aux >> 32n);
      this.#auxLo = Number(aux & 0xffffffffn);
    }
    const body = record.body;
    let total = 0;
    if (body instanceof Uint8Array) total = body.byteLength;
    else if (body !== undefined) { for (const s of body) total += s.byteLength; }
    const original = record.originalLength ?? total;
    if (!isUint(original, 0xffffffff - RECORD_HEADER_SIZE) || original < total) {
      throw new EncodeError(
        `vfstrace_record: original length ${original} is below the ${total} body bytes given`,
      );
    }
    const cap = Math.min(total, Math.max(0, Math.min(limit, MAX_CHAINED_BODY)));
    // A chain part given as is: its original length is the chain's, not a cut.
    const part = kind === RecordKind.CONTINUATION || (flags & RecordFlag.CONTINUED) !== 0;
    if (part && cap > MAX_RECORD_BODY) {
      throw new EncodeError(
        `vfstrace_record: a chain part (CONTINUATION or CONTINUED) of ${cap} body bytes ` +
          `exceeds ${MAX_RECORD_BODY}`,
      );
    }
    let optLen = 0;
    let comment: Uint8Array | undefined;
    if (record.comment !== undefined) {
      comment = utf8.encode(record.comment);
      if (comment.byteLength > MAX_OPTION_LENGTH) {
        throw new EncodeError(
          `vfstrace_record: comment of ${comment.byteLength} bytes exceeds 65535`,
        );
      }
      optLen = 4 + pad4(comment.byteLength) + 4;
    }
    this.#kind = kind;
    this.#queue = queue;
    this.#fds = fds;
    this.#dir = dir;
    this.#head = head;
    this.#residence = residence;
    this.#iface = iface;
    this.#stream = recordStream(kind, dir, queue);
    this.#segments = body;
    this.#segIndex = 0;
    this.#segOffset = 0;
    this.#next = 0;
    this.#captured = cap;
    this.#original = original;
    this.#comment = comment;
    this.#flags = cap < original && !part ? flags | RecordFlag.TRUNCATED : flags;
    if (cap <= MAX_RECORD_BODY) {
      this.#blocks = 1;
      this.#firstLength = EPB_FIXED + pad4(RECORD_HEADER_SIZE + cap) + optLen + 4;
      this.#length = this.#firstLength;
    } else {
      this.#flags |= RecordFlag.CONTINUED;
      this.#blocks = Math.ceil(cap / MAX_RECORD_BODY);
      this.#firstLength = EPB_FIXED + pad4(MAX_PACKET_DATA) + optLen + 4;
      this.#length = this.#firstLength + (this.#blocks - 2) * FULL_CONTINUATION +
        this.blockLength(this.#blocks - 1);
    }
    return this.#length;
  }

  /**
   * The measured record's stream ({@link recordStream}; {@link STREAM_OF_CHAIN}
   * for a CONTINUATION given as is).
   */
  get stream(): number {
    return this.#stream;
  }

  /** Puts the measured record on interface `id` (a writer's id for its stream). */
  useInterface(id: number): void {
    this.#iface = id;
  }

  /** Body bytes the measured record keeps (over the whole chain). */
  get capturedBodyLength(): number {
    return this.#captured;
  }

  /** EPBs of the measured record: 1, or 1 + its CONTINUATION records. */
  get blockCount(): number {
    return this.#blocks;
  }

  /** Length of EPB `i` (0 ≤ i < {@link blockCount}) of the measured record. */
  blockLength(i: number): number {
    if (i === 0) return this.#firstLength;
    const chunk = i < this.#blocks - 1
      ? MAX_RECORD_BODY
      : this.#captured - (this.#blocks - 1) * MAX_RECORD_BODY;
    return EPB_FIXED + pad4(RECORD_HEADER_SIZE + chunk) + 4;
  }

  /**
   * Writes all EPBs of the measured record at `offset` (the caller made
   * room for the measured length) with `seq` (continuations take the
   * following seqs) and the timestamp as two u32 halves of nanoseconds.
   * Returns the bytes written.
   */
  write(
    bytes: Uint8Array,
    view: DataView,
    offset: number,
    seq: number,
    tsHigh: number,
    tsLow: number,
  ): number {
    let p = offset;
    for (let i = 0; i < this.#blocks; i++) {
      p += this.writeBlock(i, bytes, view, p, seq, tsHigh, tsLow);
    }
    return p - offset;
  }

  /**
   * Writes EPB `i` of the measured record at `offset` (room for
   * {@link blockLength}(i)); blocks must be written in order, each once.
   * `seq` is the first record's. Returns the bytes written.
   */
  writeBlock(
    i: number,
    bytes: Uint8Array,
    view: DataView,
    offset: number,
    seq: number,
    tsHigh: number,
    tsLow: number,
  ): number {
    if (i !== this.#next || i >= this.#blocks) {
      throw new Error(`RecordEncoder: block ${i} written out of order (next ${this.#next})`);
    }
    this.#next = i + 1;
    const last = i === this.#blocks - 1;
    const len = this.blockLength(i);
    const chunk = i === 0
      ? Math.min(this.#captured, MAX_RECORD_BODY)
      : last
      ? this.#captured - i * MAX_RECORD_BODY
      : MAX_RECORD_BODY;
    const p = offset;
    view.setUint32(p, PCAPNG_BLOCK.EPB, true);
    view.setUint32(p + 4, len, true);
    view.setUint32(p + O_IF, this.#iface, true);
    view.setUint32(p + O_TSH, tsHigh, true);
    view.setUint32(p + O_TSL, tsLow, true);
    view.setUint32(p + O_CAP, RECORD_HEADER_SIZE + chunk, true);
    const h = p + EPB_FIXED;
    view.setUint16(h + R_MAGIC, RECORD_MAGIC, true);
    view.setUint8(h + R_VERSION, RECORD_VERSION);
    view.setUint16(h + R_QUEUE, this.#queue, true);
    view.setUint8(h + R_DIR, this.#dir);
    view.setUint8(h + R_RESERVED, 0);
    view.setUint16(h + R_HEAD, this.#head, true);
    view.setUint16(h + R_RESERVED2, 0, true);
    if (i === 0) {
      view.setUint32(p + O_ORIG, RECORD_HEADER_SIZE + this.#original, true);
      view.setUint8(h + R_KIND, this.#kind);
      view.setUint16(h + R_FLAGS, this.#flags, true);
      view.setUint16(h + R_FDS, this.#fds, true);
      view.setUint32(h + R_SEQ, seq >>> 0, true);
      view.setUint32(h + R_RESIDENCE, this.#residence, true);
      view.setUint32(h + R_AUX, this.#auxLo, true);
      view.setUint32(h + R_AUX + 4, this.#auxHi, true);
    } else {
      // A continuation is whole as a packet; aux ties it to the chain's first record.
      view.setUint32(p + O_ORIG, RECORD_HEADER_SIZE + chunk, true);
      view.setUint8(h + R_KIND, RecordKind.CONTINUATION);
      view.setUint16(h + R_FLAGS, last ? 0 : RecordFlag.CONTINUED, true);
      view.setUint16(h + R_FDS, 0, true);
      view.setUint32(h + R_SEQ, (seq + i) >>> 0, true);
      view.setUint32(h + R_RESIDENCE, 0, true);
      view.setUint32(h + R_AUX, seq >>> 0, true);
      view.setUint32(h + R_AUX + 4, 0, true);
    }
    let q = this.#copyBody(bytes, h + RECORD_HEADER_SIZE, chunk);
    const dataEnd = h + pad4(RECORD_HEADER_SIZE + chunk);
    while (q < dataEnd) bytes[q++] = 0;
    if (i === 0 && this.#comment !== undefined) {
      const c = this.#comment;
      view.setUint16(q, PCAPNG_OPTION.COMMENT, true);
      view.setUint16(q + 2, c.byteLength, true);
      bytes.set(c, q + 4);
      q += 4 + c.byteLength;
      const end = dataEnd + 4 + pad4(c.byteLength);
      while (q < end) bytes[q++] = 0;
      view.setUint32(q, 0, true);
      q += 4;
    }
    view.setUint32(q, len, true);
    if (last) this.#segments = undefined; // do not keep the caller's buffers alive
    return len;
  }

  /** Copies the next `n` body bytes to `bytes[at]`; returns where they end. */
  #copyBody(bytes: Uint8Array, at: number, n: number): number {
    const body = this.#segments;
    if (n === 0 || body === undefined) return at;
    let q = at;
    if (body instanceof Uint8Array) {
      const from = this.#segOffset;
      bytes.set(from === 0 && n === body.byteLength ? body : body.subarray(from, from + n), q);
      this.#segOffset = from + n;
      return q + n;
    }
    let left = n;
    while (left > 0) {
      const s = body[this.#segIndex];
      if (s === undefined) break;
      const from = this.#segOffset;
      const k = Math.min(left, s.byteLength - from);
      bytes.set(from === 0 && k === s.byteLength ? s : s.subarray(from, from + k), q);
      q += k;
      left -= k;
      if (from + k === s.byteLength) {
        this.#segIndex++;
        this.#segOffset = 0;
      } else {
        this.#segOffset = from + k;
      }
    }
    return q;
  }
}

const sharedEncoder = new RecordEncoder();

/**
 * Encodes `record` as one EPB (on `record.interfaceId`, 0 by default), or as a chain of EPBs (the
 * record, then its CONTINUATION records, seqs `seq`, `seq + 1`, …) when its
 * body is longer than {@link MAX_RECORD_BODY}. Keeps at most `limit` body
 * bytes (never more than {@link MAX_CHAINED_BODY}); a cut body gets the
 * TRUNCATED flag and the full size as original length.
 */
export function encodeRecord(record: RecordInput, limit: number = MAX_CHAINED_BODY): Uint8Array {
  const len = sharedEncoder.measure(record, limit);
  const ts = record.timestampNs ?? 0n;
  if (ts < 0n || ts >= 1n << 64n) {
    throw new EncodeError(`vfstrace_record: timestamp ${ts} is not a u64`);
  }
  const seq = record.seq ?? 0;
  if (!isUint(seq, 0xffffffff)) throw new EncodeError(`vfstrace_record.seq: ${seq} is not a u32`);
  const bytes = new Uint8Array(len);
  sharedEncoder.write(
    bytes,
    new DataView(bytes.buffer),
    0,
    seq,
    Number(ts >> 32n),
    Number(ts & 0xffffffffn),
  );
  return bytes;
}

// ---------------------------------------------------------------------------
// Decoded blocks and records

/** A decoded Section Header Block. */
export interface SectionHeader {
  /** Discriminant. */
  readonly type: "shb";
  /** Where the block starts. */
  readonly offset: number;
  /** Block total length. */
  readonly length: number;
  /** pcapng major version (1). */
  readonly majorVersion: number;
  /** pcapng minor version. */
  readonly minorVersion: number;
  /** Section length; -1 when unknown (always for vfstrace). */
  readonly sectionLength: bigint;
  /** shb_userappl. */
  readonly userAppl: string | undefined;
  /** shb_os. */
  readonly os: string | undefined;
  /** shb_hardware. */
  readonly hardware: string | undefined;
  /** opt_comment(s), joined by newlines. */
  readonly comment: string | undefined;
}

/** A decoded Interface Description Block. */
export interface InterfaceDescription {
  /** Discriminant. */
  readonly type: "idb";
  /** Where the block starts. */
  readonly offset: number;
  /** Block total length. */
  readonly length: number;
  /** Link type ({@link LINKTYPE_USER0} for vfstrace). */
  readonly linkType: number;
  /** Snap length (0: unlimited). */
  readonly snaplen: number;
  /** if_name. */
  readonly name: string | undefined;
  /** if_description. */
  readonly description: string | undefined;
  /** if_tsresol byte ({@link TSRESOL_DEFAULT} when absent). */
  readonly tsresol: number;
  /** opt_comment(s), joined by newlines. */
  readonly comment: string | undefined;
}

/** A decoded Enhanced Packet Block. */
export interface EnhancedPacket {
  /** Discriminant. */
  readonly type: "epb";
  /** Where the block starts. */
  readonly offset: number;
  /** Block total length. */
  readonly length: number;
  /** Interface id (index of the IDB in the section). */
  readonly interfaceId: number;
  /** High 32 bits of the timestamp (in if_tsresol units). */
  readonly timestampHigh: number;
  /** Low 32 bits of the timestamp. */
  readonly timestampLow: number;
  /** Bytes of packet data present. */
  readonly capturedLength: number;
  /** Packet length before any snap length. */
  readonly originalLength: number;
  /** The captured packet data (a view into the input). */
  readonly data: Uint8Array;
  /** opt_comment(s), joined by newlines. */
  readonly comment: string | undefined;
}

/** A block of a type vfstrace does not interpret (skipped). */
export interface UnknownBlock {
  /** Discriminant. */
  readonly type: "unknown";
  /** Where the block starts. */
  readonly offset: number;
  /** Block total length. */
  readonly length: number;
  /** The block type number. */
  readonly blockType: number;
}

/** Any decoded pcapng block. */
export type PcapngBlock = SectionHeader | InterfaceDescription | EnhancedPacket | UnknownBlock;

/**
 * One vfstrace record as read back: a logical record (a chain reassembled)
 * or, in `raw` mode and from {@link decodeRecord}, one packet.
 */
export interface CaptureRecord {
  /** Byte offset of its (first) EPB (in the file, for readers; in the buffer otherwise). */
  readonly offset: number;
  /** Nanoseconds since the Unix epoch. */
  readonly timestampNs: bigint;
  /** {@link RecordKind}. */
  readonly kind: number;
  /** {@link RecordFlag} bits. */
  readonly flags: number;
  /** Virtqueue index or {@link QUEUE_NONE}. */
  readonly queue: number;
  /** File descriptors that came with a vhost-user message. */
  readonly fdCount: number;
  /** Direction, per kind. */
  readonly direction: number;
  /** Descriptor head of a FUSE request or reply; {@link HEAD_NONE} otherwise. */
  readonly head: number;
  /**
   * Sequence number. The next record's is `seq + continuations + 1`; more
   * means records were dropped before the file.
   */
  readonly seq: number;
  /**
   * The proxy's residence in ns (FUSE_REQUEST: kick seen → back-end kicked;
   * FUSE_REPLY: call seen → guest notified), {@link RESIDENCE_MAX} meaning
   * that long or longer; undefined when not measured (the field is 0).
   */
  readonly residenceNs: number | undefined;
  /** Per-kind u64. */
  readonly aux: bigint;
  /** The EPB's interface id (index of its IDB in the section). */
  readonly interfaceId: number;
  /**
   * if_name of the record's interface: its stream (`vhost-user.frontend`,
   * `hiprio`, `request.0` …); undefined when the IDB has none, or was lost
   * and assumed by a recovering reader. The record's own fields say the
   * same ({@link recordStream}) and are authoritative.
   */
  readonly interfaceName: string | undefined;
  /**
   * The captured body: a view into the reader's buffer (never overwritten),
   * or a fresh array for a reassembled chain.
   */
  readonly body: Uint8Array;
  /** Full body length before any cut (≥ `body.length`). */
  readonly originalLength: number;
  /** The EPB's opt_comment, if any. */
  readonly comment: string | undefined;
  /** CONTINUATION packets reassembled into this record (0 when it fit one packet, and in raw mode). */
  readonly continuations: number;
}

// Scratch for joining two u32 halves into one bigint with a single allocation.
const tsScratch = new DataView(new ArrayBuffer(8));

/**
 * Converts an EPB timestamp (two u32 halves in if_tsresol units) to
 * nanoseconds since the epoch.
 */
export function timestampToNs(high: number, low: number, tsresol: number): bigint {
  tsScratch.setUint32(0, low, true);
  tsScratch.setUint32(4, high, true);
  const ticks = tsScratch.getBigUint64(0, true);
  if (tsresol === TSRESOL_NANOSECONDS) return ticks;
  if (tsresol & 0x80) return (ticks * 1_000_000_000n) >> BigInt(tsresol & 0x7f);
  return tsresol <= 9 ? ticks * 10n ** BigInt(9 - tsresol) : ticks / 10n ** BigInt(tsresol - 9);
}

type OptionSink = (code: number, value: Uint8Array) => void;

/** Walks the options in [start, end); throws bad-options when one overruns. */
function walkOptions(
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  base: number,
  what: string,
  sink: OptionSink,
): void {
  let p = start;
  while (p + 4 <= end) {
    const code = view.getUint16(p, true);
    const len = view.getUint16(p + 2, true);
    if (code === PCAPNG_OPTION.END_OF_OPT) return;
    if (p + 4 + len > end) {
      throw new PcapngDecodeError(
        "bad-options",
        `${what}: option ${code} of ${len} bytes runs past the block`,
        base + p,
      );
    }
    sink(code, bytes.subarray(p + 4, p + 4 + len));
    // Both ends are 4-aligned from the block start, so no stray tail is possible.
    p += 4 + pad4(len);
  }
}

function joinComment(prev: string | undefined, value: Uint8Array): string {
  const s = utf8Lossy.decode(value);
  return prev === undefined ? s : `${prev}\n${s}`;
}

function checkTrailer(view: DataView, pos: number, len: number, base: number): void {
  const trailer = view.getUint32(pos + len - 4, true);
  if (trailer !== len) {
    throw new PcapngDecodeError(
      "bad-length",
      `block total length ${len} at the start but ${trailer} at the end`,
      base + pos,
    );
  }
}

/**
 * Checks the 8-byte header of the block at `pos` (bytes up to `end` are
 * present) and returns its total length, or -1 when more bytes are needed
 * to tell. `first` enforces that a file starts with a Section Header Block.
 * Throws PcapngDecodeError for a header that can never be valid.
 */
export function blockFrameLength(
  view: DataView,
  pos: number,
  end: number,
  base = 0,
  first = false,
  maxBlockLength: number = DEFAULT_MAX_BLOCK_LENGTH,
): number {
  const avail = end - pos;
  if (first) {
    // Reject a non-pcapng file from its first bytes, even a short one.
    for (let i = 0; i < 4 && i < avail; i++) {
      if (view.getUint8(pos + i) !== SHB_TYPE_BYTES[i]) notPcapng(base + pos);
    }
  }
  if (avail < 8) return -1;
  const type = view.getUint32(pos, true);
  if (type === PCAPNG_BLOCK.SHB) {
    // The type is a palindrome; the byte order shows only in the magic, and
    // the length cannot be read before the order is known.
    if (avail < 12) return -1;
    const magic = view.getUint32(pos + O_BOM, true);
    if (magic !== BYTE_ORDER_MAGIC) {
      if (magic === BYTE_ORDER_MAGIC_SWAPPED) {
        throw new PcapngDecodeError(
          "big-endian",
          "big-endian section (byte-order magic 0x4D3C2B1A): vfstrace reads only little-endian " +
            "pcapng; rewrite it on a little-endian machine with `editcap -F pcapng IN OUT`",
          base + pos + O_BOM,
        );
      }
      throw new PcapngDecodeError(
        "bad-magic",
        `section header byte-order magic 0x${magic.toString(16)}, expected 0x1a2b3c4d`,
        base + pos + O_BOM,
      );
    }
  } else if (type === 0) {
    throw new PcapngDecodeError("bad-type", "block type 0 (reserved)", base + pos);
  }
  const len = view.getUint32(pos + 4, true);
  const min = type === PCAPNG_BLOCK.SHB
    ? MIN_SHB
    : type === PCAPNG_BLOCK.IDB
    ? MIN_IDB
    : type === PCAPNG_BLOCK.EPB
    ? MIN_EPB
    : MIN_BLOCK;
  if ((len & 3) !== 0 || len < min) {
    throw new PcapngDecodeError(
      "bad-length",
      `${PCAPNG_BLOCK_TYPE.format(type)} block total length ${len} ` +
        ((len & 3) !== 0 ? "is not a multiple of 4" : `is below the minimum ${min}`),
      base + pos + 4,
    );
  }
  if (len > maxBlockLength) {
    throw new PcapngDecodeError(
      "too-long",
      `${PCAPNG_BLOCK_TYPE.format(type)} block total length ${len} exceeds the ` +
        `${maxBlockLength}-byte limit`,
      base + pos + 4,
    );
  }
  return len;
}

function notPcapng(offset: number): never {
  throw new PcapngDecodeError(
    "not-pcapng",
    "not a pcapng file (it does not start with a Section Header Block)",
    offset,
  );
}

function truncated(pos: number, len: number, avail: number, base: number): PcapngDecodeError {
  return new PcapngDecodeError(
    "truncated",
    `block of ${len} bytes but only ${avail} bytes left (truncated)`,
    base + pos,
  );
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function decodeShb(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  len: number,
  base: number,
): SectionHeader {
  const major = view.getUint16(pos + at(SHB_LAYOUT, "major_version"), true);
  const minor = view.getUint16(pos + at(SHB_LAYOUT, "minor_version"), true);
  if (major !== PCAPNG_MAJOR) {
    throw new PcapngDecodeError(
      "bad-version",
      `pcapng version ${major}.${minor} is not supported (only 1.x)`,
      base + pos + at(SHB_LAYOUT, "major_version"),
    );
  }
  let userAppl: string | undefined;
  let os: string | undefined;
  let hardware: string | undefined;
  let comment: string | undefined;
  walkOptions(bytes, view, pos + SHB_FIXED, pos + len - 4, base, "SHB", (code, v) => {
    if (code === PCAPNG_OPTION.COMMENT) comment = joinComment(comment, v);
    else if (code === PCAPNG_OPTION.SHB_USERAPPL) userAppl = utf8Lossy.decode(v);
    else if (code === PCAPNG_OPTION.SHB_OS) os = utf8Lossy.decode(v);
    else if (code === PCAPNG_OPTION.SHB_HARDWARE) hardware = utf8Lossy.decode(v);
  });
  return {
    type: "shb",
    offset: base + pos,
    length: len,
    majorVersion: major,
    minorVersion: minor,
    sectionLength: view.getBigInt64(pos + at(SHB_LAYOUT, "section_length"), true),
    userAppl,
    os,
    hardware,
    comment,
  };
}

function decodeIdb(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  len: number,
  base: number,
): InterfaceDescription {
  let name: string | undefined;
  let description: string | undefined;
  let comment: string | undefined;
  let tsresol = TSRESOL_DEFAULT;
  walkOptions(bytes, view, pos + IDB_FIXED, pos + len - 4, base, "IDB", (code, v) => {
    if (code === PCAPNG_OPTION.COMMENT) comment = joinComment(comment, v);
    else if (code === PCAPNG_OPTION.IF_NAME) name = utf8Lossy.decode(v);
    else if (code === PCAPNG_OPTION.IF_DESCRIPTION) description = utf8Lossy.decode(v);
    else if (code === PCAPNG_OPTION.IF_TSRESOL && v.byteLength >= 1) tsresol = v[0]!;
  });
  return {
    type: "idb",
    offset: base + pos,
    length: len,
    linkType: view.getUint16(pos + at(IDB_LAYOUT, "link_type"), true),
    snaplen: view.getUint32(pos + at(IDB_LAYOUT, "snaplen"), true),
    name,
    description,
    tsresol,
    comment,
  };
}

/** Captured length of the EPB at `pos` after checking it fits its block. */
function epbCaptured(view: DataView, pos: number, len: number, base: number): number {
  const cap = view.getUint32(pos + O_CAP, true);
  if (cap > len - MIN_EPB) {
    throw new PcapngDecodeError(
      "bad-length",
      `EPB captured length ${cap} does not fit its ${len}-byte block`,
      base + pos + O_CAP,
    );
  }
  const orig = view.getUint32(pos + O_ORIG, true);
  if (orig < cap) {
    throw new PcapngDecodeError(
      "bad-record",
      `EPB original length ${orig} is below its captured length ${cap}`,
      base + pos + O_ORIG,
    );
  }
  return cap;
}

function epbComment(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  len: number,
  cap: number,
  base: number,
): string | undefined {
  const start = pos + EPB_FIXED + pad4(cap);
  const end = pos + len - 4;
  if (start >= end) return undefined; // the common case: no options
  let comment: string | undefined;
  walkOptions(bytes, view, start, end, base, "EPB", (code, v) => {
    if (code === PCAPNG_OPTION.COMMENT) comment = joinComment(comment, v);
  });
  return comment;
}

/**
 * Decodes the whole block at `offset` of `bytes` (stateless: any block
 * type, any position). Throws PcapngDecodeError; `truncated` when the block
 * runs past the end of `bytes`.
 */
export function decodeBlock(
  bytes: Uint8Array,
  offset = 0,
  maxBlockLength: number = DEFAULT_MAX_BLOCK_LENGTH,
): PcapngBlock {
  const view = viewOf(bytes);
  const end = bytes.byteLength;
  const len = blockFrameLength(view, offset, end, 0, false, maxBlockLength);
  if (len < 0 || offset + len > end) {
    throw len < 0
      ? new PcapngDecodeError(
        "truncated",
        `block header needs 8 bytes, ${end - offset} left (truncated)`,
        offset,
      )
      : truncated(offset, len, end - offset, 0);
  }
  return decodeFramed(bytes, view, offset, len, 0);
}

function decodeFramed(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  len: number,
  base: number,
): PcapngBlock {
  checkTrailer(view, pos, len, base);
  const type = view.getUint32(pos, true);
  switch (type) {
    case PCAPNG_BLOCK.SHB:
      return decodeShb(bytes, view, pos, len, base);
    case PCAPNG_BLOCK.IDB:
      return decodeIdb(bytes, view, pos, len, base);
    case PCAPNG_BLOCK.EPB: {
      const cap = epbCaptured(view, pos, len, base);
      return {
        type: "epb",
        offset: base + pos,
        length: len,
        interfaceId: view.getUint32(pos + O_IF, true),
        timestampHigh: view.getUint32(pos + O_TSH, true),
        timestampLow: view.getUint32(pos + O_TSL, true),
        capturedLength: cap,
        originalLength: view.getUint32(pos + O_ORIG, true),
        data: bytes.subarray(pos + EPB_FIXED, pos + EPB_FIXED + cap),
        comment: epbComment(bytes, view, pos, len, cap, base),
      };
    }
    default:
      return { type: "unknown", offset: base + pos, length: len, blockType: type };
  }
}

/** Result of {@link decodeBlocks}. */
export interface DecodedBlocks {
  /** Every whole block before the end or the error, in order. */
  readonly blocks: PcapngBlock[];
  /** The error that stopped decoding (a truncated last block included), if any. */
  readonly error: PcapngDecodeError | undefined;
}

/**
 * Decodes every block of a whole pcapng buffer: typed blocks up to the
 * first problem, and that problem as a PcapngDecodeError (returned, not
 * thrown). The first block must be a Section Header Block.
 */
export function decodeBlocks(bytes: Uint8Array): DecodedBlocks {
  const view = viewOf(bytes);
  const blocks: PcapngBlock[] = [];
  let pos = 0;
  try {
    while (pos < bytes.byteLength) {
      const len = blockFrameLength(view, pos, bytes.byteLength, 0, pos === 0);
      if (len < 0 || pos + len > bytes.byteLength) {
        const avail = bytes.byteLength - pos;
        return {
          blocks,
          error: len < 0
            ? new PcapngDecodeError("truncated", `${avail} bytes of a block header`, pos)
            : truncated(pos, len, avail, 0),
        };
      }
      blocks.push(decodeFramed(bytes, view, pos, len, 0));
      pos += len;
    }
  } catch (e) {
    if (e instanceof PcapngDecodeError) return { blocks, error: e };
    throw e;
  }
  return { blocks, error: undefined };
}

// ---------------------------------------------------------------------------
// Records

/** Magic, version and size of the record header at `h`; throws PcapngDecodeError. */
function checkRecordHeader(view: DataView, h: number, cap: number, at: number): void {
  // Magic and version before the size: a version-1 packet (24-byte header) must say so.
  if (cap >= R_VERSION + 1) {
    const magic = view.getUint16(h + R_MAGIC, true);
    if (magic !== RECORD_MAGIC) {
      throw new PcapngDecodeError(
        "bad-record",
        `record magic 0x${magic.toString(16)}, expected 0x5646`,
        at + R_MAGIC,
      );
    }
    const version = view.getUint8(h + R_VERSION);
    if (version !== RECORD_VERSION) throw recordVersionError(version, at + R_VERSION);
  }
  if (cap < RECORD_HEADER_SIZE) {
    throw new PcapngDecodeError(
      "bad-record",
      `packet of ${cap} bytes is shorter than the ${RECORD_HEADER_SIZE}-byte vfstrace record header`,
      at,
    );
  }
}

function recordVersionError(version: number, at: number): PcapngRecordVersionError {
  const who = version < RECORD_VERSION
    ? "an older vfstrace wrote it: re-record the session, or read it with that vfstrace"
    : "a newer vfstrace wrote it: read it with that vfstrace";
  return new PcapngRecordVersionError(
    version,
    `vfstrace record version ${version} is not supported (this vfstrace reads version ` +
      `${RECORD_VERSION} only; ${who})`,
    at,
  );
}

function recordFromEpb(
  bytes: Uint8Array,
  view: DataView,
  pos: number,
  len: number,
  cap: number,
  base: number,
  id: number,
  iface: InterfaceInfo,
): CaptureRecord {
  const h = pos + EPB_FIXED;
  checkRecordHeader(view, h, cap, base + h);
  const orig = view.getUint32(pos + O_ORIG, true);
  const residence = view.getUint32(h + R_RESIDENCE, true);
  return {
    offset: base + pos,
    timestampNs: timestampToNs(
      view.getUint32(pos + O_TSH, true),
      view.getUint32(pos + O_TSL, true),
      iface.tsresol,
    ),
    kind: view.getUint8(h + R_KIND),
    flags: view.getUint16(h + R_FLAGS, true),
    queue: view.getUint16(h + R_QUEUE, true),
    fdCount: view.getUint16(h + R_FDS, true),
    direction: view.getUint8(h + R_DIR),
    head: view.getUint16(h + R_HEAD, true),
    seq: view.getUint32(h + R_SEQ, true),
    residenceNs: residence === 0 ? undefined : residence,
    aux: view.getBigUint64(h + R_AUX, true),
    interfaceId: id,
    interfaceName: iface.block?.name,
    body: bytes.subarray(h + RECORD_HEADER_SIZE, h + cap),
    originalLength: orig - RECORD_HEADER_SIZE,
    comment: len > EPB_FIXED + pad4(cap) + 4
      ? epbComment(bytes, view, pos, len, cap, base)
      : undefined,
    continuations: 0,
  };
}

/**
 * The vfstrace record inside a decoded EPB: one packet, so a chain's first
 * record has only its first bytes (and CONTINUED), and continuations are
 * returned as they are. `tsresol` is the if_tsresol of the EPB's interface
 * (nanoseconds for files vfstrace writes), `interfaceName` its if_name.
 * Throws PcapngDecodeError: `bad-record` when the packet is not a record,
 * `bad-version` for a record of another format version.
 */
export function decodeRecord(
  epb: EnhancedPacket,
  tsresol: number = TSRESOL_NANOSECONDS,
  interfaceName: string | undefined = undefined,
): CaptureRecord {
  const d = epb.data;
  const view = viewOf(d);
  checkRecordHeader(view, 0, d.byteLength, epb.offset + EPB_FIXED);
  const residence = view.getUint32(R_RESIDENCE, true);
  return {
    offset: epb.offset,
    timestampNs: timestampToNs(epb.timestampHigh, epb.timestampLow, tsresol),
    kind: view.getUint8(R_KIND),
    flags: view.getUint16(R_FLAGS, true),
    queue: view.getUint16(R_QUEUE, true),
    fdCount: view.getUint16(R_FDS, true),
    direction: view.getUint8(R_DIR),
    head: view.getUint16(R_HEAD, true),
    seq: view.getUint32(R_SEQ, true),
    residenceNs: residence === 0 ? undefined : residence,
    aux: view.getBigUint64(R_AUX, true),
    interfaceId: epb.interfaceId,
    interfaceName,
    body: d.subarray(RECORD_HEADER_SIZE),
    originalLength: Math.max(epb.originalLength, d.byteLength) - RECORD_HEADER_SIZE,
    comment: epb.comment,
    continuations: 0,
  };
}

// ---------------------------------------------------------------------------
// The stateful parser shared by whole-buffer decoding and streaming readers

/** What the parser knows about one interface of the current section. */
export interface InterfaceInfo {
  /** Link type. */
  readonly linkType: number;
  /** if_tsresol byte. */
  readonly tsresol: number;
  /** The IDB, or undefined when assumed during recovery. */
  readonly block: InterfaceDescription | undefined;
}

/** The interface a recovering reader assumes when the IDB itself was lost or unreadable. */
const ASSUMED_INTERFACE: InterfaceInfo = {
  linkType: LINKTYPE_USER0,
  tsresol: TSRESOL_NANOSECONDS,
  block: undefined,
};

/** Options of {@link PcapngParser}. */
export interface ParserOptions {
  /** Largest block total length accepted ({@link DEFAULT_MAX_BLOCK_LENGTH}). */
  readonly maxBlockLength?: number | undefined;
  /**
   * Assume a vfstrace interface (USER0, ns, no name) for an EPB whose IDB
   * was not seen, and keep the place of an IDB that does not decode; set by
   * recovering readers so a lost IDB does not lose its stream (records say
   * their stream themselves).
   */
  readonly assumeInterface?: boolean | undefined;
  /** Return every packet as it is: no chain reassembly, no chain checks. */
  readonly raw?: boolean | undefined;
  /** Largest reassembled body before a chain is `bad-chain` ({@link MAX_CHAINED_BODY}). */
  readonly maxBodyLength?: number | undefined;
}

/** A chain being reassembled. */
interface Chain {
  readonly first: CaptureRecord;
  readonly interfaceId: number;
  readonly parts: Uint8Array[];
  length: number;
  nextSeq: number;
}

const KIND_NAMES = (kind: number) => RECORD_KIND.nameOf(kind) ?? `kind ${kind}`;

/**
 * Block-by-block state of a pcapng stream: the current section, its
 * interfaces, and the record chain being reassembled. The caller owns the
 * bytes and positions, so the same parser serves a whole buffer
 * ({@link decodeCapture}) and a chunked file reader. `base` arguments give
 * the stream offset of `bytes[0]`, for errors and record offsets.
 */
export class PcapngParser {
  /** Largest block total length accepted. */
  readonly maxBlockLength: number;
  #section: SectionHeader | undefined = undefined;
  #interfaces: InterfaceInfo[] = [];
  #assume: boolean;
  #started = false;
  #skipped = 0;
  #blocks = 0;
  #raw: boolean;
  #maxBody: number;
  #chain: Chain | undefined = undefined;
  #sawRecord = false;
  /** Where {@link resync} stopped for lack of bytes. */
  scanPosition = 0;

  /** Creates a parser at the start of a stream. */
  constructor(options: ParserOptions = {}) {
    this.maxBlockLength = options.maxBlockLength ?? DEFAULT_MAX_BLOCK_LENGTH;
    this.#assume = options.assumeInterface ?? false;
    this.#raw = options.raw ?? false;
    this.#maxBody = options.maxBodyLength ?? MAX_CHAINED_BODY;
  }

  /**
   * Offset of the first block of the chain being reassembled, if any. When
   * the data ends here, that record is incomplete: the capture is
   * truncated at this offset.
   */
  get pendingChain(): number | undefined {
    return this.#chain?.first.offset;
  }

  /**
   * Drops the chain being reassembled (a recovering reader, after an
   * error); returns its first block's offset, or undefined if none.
   */
  abandonChain(): number | undefined {
    const at = this.#chain?.first.offset;
    this.#chain = undefined;
    return at;
  }

  /** The current section's header, once seen. */
  get section(): SectionHeader | undefined {
    return this.#section;
  }

  /** Interfaces of the current section, by id. */
  get interfaces(): readonly InterfaceInfo[] {
    return this.#interfaces;
  }

  /**
   * Whether a recovering reader must stop at `e` anyway: a big-endian
   * section, or a record of another version before any record was read
   * (the file is of another format version; skipping would lose it all).
   */
  isFatal(e: PcapngDecodeError): boolean {
    return e.reason === "big-endian" || (e instanceof PcapngRecordVersionError && !this.#sawRecord);
  }

  /** Whole blocks consumed. */
  get blocks(): number {
    return this.#blocks;
  }

  /** Blocks skipped: unknown types and packets on other link types. */
  get skippedBlocks(): number {
    return this.#skipped;
  }

  /**
   * Total length of the block at `pos` once its header is valid, or -1
   * when fewer bytes than needed to tell are present. Throws
   * PcapngDecodeError.
   */
  frame(view: DataView, pos: number, end: number, base: number): number {
    return blockFrameLength(view, pos, end, base, !this.#started, this.maxBlockLength);
  }

  /**
   * Consumes the whole block [pos, pos + len) framed by {@link frame}:
   * returns its vfstrace record, or null for other blocks (section and
   * interface blocks update the state) and for the packets of a chain but
   * its last, which returns the reassembled record. Throws
   * PcapngDecodeError (PcapngChainError for chains); a failing block
   * leaves the state as it was (the chain included: see
   * {@link abandonChain}), except that a bad Section Header Block still
   * ends the previous section.
   */
  consume(
    bytes: Uint8Array,
    view: DataView,
    pos: number,
    len: number,
    base: number,
  ): CaptureRecord | null {
    checkTrailer(view, pos, len, base);
    this.#started = true;
    const type = view.getUint32(pos, true);
    if (this.#chain !== undefined && type !== PCAPNG_BLOCK.EPB) {
      this.#interrupted(`a ${PCAPNG_BLOCK_TYPE.format(type)} block`, base + pos);
    }
    if (type === PCAPNG_BLOCK.EPB) {
      const cap = epbCaptured(view, pos, len, base);
      const id = view.getUint32(pos + O_IF, true);
      let iface = this.#interfaces[id];
      if (iface === undefined) {
        if (!this.#assume) {
          throw new PcapngDecodeError(
            "bad-interface",
            `EPB on interface ${id}, but the section describes ${this.#interfaces.length}`,
            base + pos + O_IF,
          );
        }
        iface = ASSUMED_INTERFACE;
      }
      if (iface.linkType !== LINKTYPE_USER0) {
        if (this.#chain !== undefined) {
          this.#interrupted(
            `a packet on interface ${id} (link type ${iface.linkType})`,
            base + pos,
          );
        }
        this.#skipped++;
        this.#blocks++;
        return null;
      }
      const rec = recordFromEpb(bytes, view, pos, len, cap, base, id, iface);
      // Writers put a stream's IDB right before its first packet, which names the next id:
      // here that IDB was lost. Keep its place so the later IDBs keep their ids.
      if (iface === ASSUMED_INTERFACE && id === this.#interfaces.length) {
        this.#interfaces.push(ASSUMED_INTERFACE);
      }
      this.#sawRecord = true;
      const out = this.#raw ? rec : this.#chained(rec, id);
      this.#blocks++;
      return out;
    }
    if (type === PCAPNG_BLOCK.SHB) {
      this.#interfaces = [];
      this.#section = undefined;
      this.#section = decodeShb(bytes, view, pos, len, base);
    } else if (type === PCAPNG_BLOCK.IDB) {
      let idb: InterfaceDescription;
      try {
        idb = decodeIdb(bytes, view, pos, len, base);
      } catch (e) {
        // Keep its place, or every later interface would take the wrong id.
        if (this.#assume) this.#interfaces.push(ASSUMED_INTERFACE);
        throw e;
      }
      this.#interfaces.push({ linkType: idb.linkType, tsresol: idb.tsresol, block: idb });
    } else {
      this.#skipped++;
    }
    this.#blocks++;
    return null;
  }

  /** Chain handling of a packet: the record, null (chain goes on), or the assembled record. */
  #chained(rec: CaptureRecord, id: number): CaptureRecord | null {
    const chain = this.#chain;
    const continued = (rec.flags & RecordFlag.CONTINUED) !== 0;
    if (chain === undefined) {
      if (rec.kind === RecordKind.CONTINUATION) {
        throw new PcapngChainError(
          `CONTINUATION record (seq ${rec.seq}, of seq ${rec.aux}) follows no record with ` +
            "CONTINUED: the start of its chain is missing",
          rec.offset,
          undefined,
          false,
        );
      }
      if (!continued) return rec;
      this.#checkLength(rec, rec.body.byteLength, rec.offset, undefined);
      this.#chain = {
        first: rec,
        interfaceId: id,
        parts: [rec.body],
        length: rec.body.byteLength,
        nextSeq: (rec.seq + 1) >>> 0,
      };
      return null;
    }
    const first = chain.first;
    if (rec.kind !== RecordKind.CONTINUATION) {
      this.#interrupted(`a ${KIND_NAMES(rec.kind)} record (seq ${rec.seq})`, rec.offset);
    }
    const h = rec.offset + EPB_FIXED;
    let what: string | undefined;
    let at = rec.offset;
    if (rec.aux !== BigInt(first.seq)) {
      what = `continues seq ${rec.aux}`;
      at = h + R_AUX;
    } else if (rec.seq !== chain.nextSeq) {
      what = `has seq ${rec.seq}, expected ${chain.nextSeq}`;
      at = h + R_SEQ;
    } else if (rec.queue !== first.queue || rec.direction !== first.direction) {
      what = `has queue ${rec.queue} direction ${rec.direction}, not ` +
        `${first.queue} ${first.direction}`;
      at = h + R_QUEUE;
    } else if (rec.head !== first.head) {
      what = `has head ${rec.head}, not ${first.head}`;
      at = h + R_HEAD;
    } else if (id !== chain.interfaceId) {
      what = `is on interface ${id}, not ${chain.interfaceId}`;
    }
    if (what !== undefined) {
      throw new PcapngChainError(
        `CONTINUATION record (seq ${rec.seq}) ${what}: it does not continue the ` +
          `${KIND_NAMES(first.kind)} record seq ${first.seq} at offset ${first.offset}`,
        at,
        first.offset,
        false,
      );
    }
    const length = chain.length + rec.body.byteLength;
    this.#checkLength(first, length, rec.offset, first.offset);
    chain.parts.push(rec.body);
    chain.length = length;
    chain.nextSeq = (rec.seq + 1) >>> 0;
    if ((rec.flags & RecordFlag.CONTINUED) !== 0) return null;
    this.#chain = undefined;
    const body = new Uint8Array(length);
    let o = 0;
    for (const p of chain.parts) {
      body.set(p, o);
      o += p.byteLength;
    }
    return {
      ...first,
      flags: first.flags & ~RecordFlag.CONTINUED,
      body,
      continuations: chain.parts.length - 1,
    };
  }

  #checkLength(
    first: CaptureRecord,
    length: number,
    at: number,
    chainOffset: number | undefined,
  ): void {
    const limit = Math.min(this.#maxBody, first.originalLength);
    if (length <= limit) return;
    throw new PcapngChainError(
      `the ${KIND_NAMES(first.kind)} record seq ${first.seq} at offset ${first.offset} ` +
        `reaches ${length} body bytes, more than ` +
        (limit === first.originalLength
          ? `its original length ${limit}`
          : `the ${this.#maxBody}-byte limit`),
      at,
      chainOffset,
      false,
    );
  }

  #interrupted(what: string, at: number): never {
    const chain = this.#chain!;
    throw new PcapngChainError(
      `the ${KIND_NAMES(chain.first.kind)} record seq ${chain.first.seq} at offset ` +
        `${chain.first.offset} has CONTINUED, but ${what} follows instead of its CONTINUATION`,
      at,
      chain.first.offset,
      true,
    );
  }

  /**
   * Scans from `from` for the next block that is certainly vfstrace's,
   * after corruption: a record EPB (consistent lengths, a USER0 interface —
   * any id when interfaces are assumed —, record magic and version), or an
   * IDB as vfstrace writes them (USER0, a stream's if_name), so a stream
   * whose IDB followed the corruption keeps its interface. Returns its
   * position, or -1 when none was found before `end`; then
   * {@link scanPosition} is where scanning must go on once more bytes are
   * there (`end` itself when `atEof`: the rest is garbage).
   */
  resync(view: DataView, from: number, end: number, atEof: boolean): number {
    this.#started = true;
    const limit = Math.min(this.maxBlockLength, MAX_RESYNC_BLOCK_LENGTH);
    for (let p = from; p + 8 <= end; p++) {
      const type = view.getUint32(p, true);
      if (type !== PCAPNG_BLOCK.EPB && type !== PCAPNG_BLOCK.IDB) continue;
      const len = view.getUint32(p + 4, true);
      const min = type === PCAPNG_BLOCK.EPB ? MIN_EPB + RECORD_HEADER_SIZE : MIN_IDB;
      const max = type === PCAPNG_BLOCK.EPB ? limit : MAX_RESYNC_IDB_LENGTH;
      if ((len & 3) !== 0 || len < min || len > max) continue;
      if (p + len > end) {
        if (atEof) continue;
        this.scanPosition = p;
        return -1;
      }
      if (view.getUint32(p + len - 4, true) !== len) continue;
      if (type === PCAPNG_BLOCK.IDB) {
        if (isStreamIdb(view, p, len)) return p;
        continue;
      }
      const cap = view.getUint32(p + O_CAP, true);
      if (cap < RECORD_HEADER_SIZE || cap > len - MIN_EPB) continue;
      if (view.getUint32(p + O_ORIG, true) < cap) continue;
      const id = view.getUint32(p + O_IF, true);
      const iface = this.#interfaces[id] ?? (this.#assume ? ASSUMED_INTERFACE : undefined);
      if (iface === undefined || iface.linkType !== LINKTYPE_USER0) continue;
      const h = p + EPB_FIXED;
      if (view.getUint16(h + R_MAGIC, true) !== RECORD_MAGIC) continue;
      if (view.getUint8(h + R_VERSION) !== RECORD_VERSION) continue;
      return p;
    }
    this.scanPosition = atEof ? end : Math.max(from, end - 7);
    return -1;
  }
}

/** Longest IDB a resync accepts: vfstrace's are about 120 bytes. */
const MAX_RESYNC_IDB_LENGTH = 1024;

/**
 * Whether the framed block at `p` is an IDB as vfstrace writes it: USER0,
 * reserved 0, well-formed options ending with opt_endofopt, an if_name that
 * names a stream and if_tsresol 9. Never throws.
 */
function isStreamIdb(view: DataView, p: number, len: number): boolean {
  if (view.getUint16(p + at(IDB_LAYOUT, "link_type"), true) !== LINKTYPE_USER0) return false;
  if (view.getUint16(p + at(IDB_LAYOUT, "reserved"), true) !== 0) return false;
  const end = p + len - 4;
  let q = p + IDB_FIXED;
  let named = false;
  let ns = false;
  while (q + 4 <= end) {
    const code = view.getUint16(q, true);
    const n = view.getUint16(q + 2, true);
    if (code === PCAPNG_OPTION.END_OF_OPT) return n === 0 && named && ns;
    if (q + 4 + n > end) return false;
    if (code === PCAPNG_OPTION.IF_NAME) {
      const name = utf8Lossy.decode(
        new Uint8Array(view.buffer, view.byteOffset + q + 4, n),
      );
      named = streamOfName(name) !== undefined;
    } else if (code === PCAPNG_OPTION.IF_TSRESOL) {
      ns = n === 1 && view.getUint8(q + 4) === TSRESOL_NANOSECONDS;
    }
    q += 4 + pad4(n);
  }
  return false;
}

/** A stretch of bytes a recovering reader skipped. */
export interface Recovery {
  /** Where the bad data starts (the first block of a chain that was being assembled). */
  readonly offset: number;
  /** Where reading resumed (the end of the input when nothing valid followed). */
  readonly resumedAt: number;
  /** What was wrong (at `offset`, or later in the stretch for a broken chain). */
  readonly reason: PcapngErrorReason;
  /** The full error message. */
  readonly message: string;
}

/**
 * Folds a recovery into `list`: the rest of a chain whose start was lost
 * (an orphan continuation right where the last skipped stretch ended)
 * extends that stretch instead of counting as a loss of its own. Returns
 * true when a new stretch was added. Shared by {@link decodeCapture} and
 * streaming readers so both report the same stretches.
 */
export function addRecovery(
  list: Recovery[],
  recovery: Recovery,
  error: PcapngDecodeError,
  lastResumedAt: number | undefined,
  keep = true,
): boolean {
  if (
    error instanceof PcapngChainError && error.orphan && lastResumedAt === recovery.offset
  ) {
    const i = list.length - 1;
    const last = list[i];
    if (last !== undefined && last.resumedAt === recovery.offset) {
      list[i] = { ...last, resumedAt: recovery.resumedAt };
    }
    return false;
  }
  if (keep) list.push(recovery);
  return true;
}

/** Result of {@link decodeCapture}. */
export interface DecodedCapture {
  /** The records, in file order (chains reassembled unless `raw`). */
  readonly records: CaptureRecord[];
  /** The (last) section header, if one was read. */
  readonly section: SectionHeader | undefined;
  /**
   * Offset where the input ends inside a record: a truncated final block,
   * or the first block of a chain the input ends inside.
   */
  readonly truncatedAt: number | undefined;
  /** The error that stopped decoding (never `truncated`), if any. */
  readonly error: PcapngDecodeError | undefined;
  /** Stretches skipped (with `recover`). */
  readonly recoveries: Recovery[];
  /** Blocks skipped: unknown types, other link types. */
  readonly skippedBlocks: number;
}

/** Options of {@link decodeCapture}. */
export interface DecodeCaptureOptions {
  /** Skip corrupt stretches instead of stopping at the first one. */
  readonly recover?: boolean | undefined;
  /** Largest block total length accepted. */
  readonly maxBlockLength?: number | undefined;
  /** Return every packet as it is, continuations included (no reassembly). */
  readonly raw?: boolean | undefined;
  /** Largest reassembled body ({@link MAX_CHAINED_BODY}). */
  readonly maxBodyLength?: number | undefined;
}

/**
 * Decodes the vfstrace records of a whole capture held in memory,
 * reassembling chains. Never throws for bad input: a truncated final block
 * or chain ends it normally (`truncatedAt`), other problems stop it
 * (`error`) or, with `recover`, are skipped (`recoveries`): a bad block's
 * content skips that block, lost framing scans for the next valid record
 * or IDB, a broken chain is dropped (the record interrupting it is kept). A
 * big-endian section, and a first record of another format version, are
 * always an error.
 */
export function decodeCapture(
  bytes: Uint8Array,
  options: DecodeCaptureOptions = {},
): DecodedCapture {
  const recover = options.recover ?? false;
  const parser = new PcapngParser({
    maxBlockLength: options.maxBlockLength,
    assumeInterface: recover,
    raw: options.raw,
    maxBodyLength: options.maxBodyLength,
  });
  const view = viewOf(bytes);
  const end = bytes.byteLength;
  const records: CaptureRecord[] = [];
  const recoveries: Recovery[] = [];
  let truncatedAt: number | undefined;
  let error: PcapngDecodeError | undefined;
  let lastResumedAt: number | undefined;
  let pos = 0;
  while (pos < end) {
    let len = -1;
    try {
      len = parser.frame(view, pos, end, 0);
      if (len < 0 || pos + len > end) {
        truncatedAt = pos;
        break;
      }
      const rec = parser.consume(bytes, view, pos, len, 0);
      if (rec !== null) records.push(rec);
      pos += len;
    } catch (e) {
      if (!(e instanceof PcapngDecodeError)) throw e;
      if (!recover || parser.isFatal(e)) {
        error = e;
        break;
      }
      // A chain being assembled is lost with the bad block: the skipped stretch starts with it.
      const from = parser.abandonChain() ?? pos;
      const next = e instanceof PcapngChainError && e.keepsBlock
        ? pos
        : e.framing || len < 0
        ? parser.resync(view, pos + 1, end, true)
        : pos + len;
      const resumedAt = next < 0 ? end : next;
      const r = { offset: from, resumedAt, reason: e.reason, message: e.message };
      addRecovery(recoveries, r, e, lastResumedAt);
      lastResumedAt = resumedAt;
      pos = resumedAt;
    }
  }
  // The input ends inside a chain: its record is incomplete, like a cut final block.
  const chainAt = parser.pendingChain;
  if (error === undefined && chainAt !== undefined) truncatedAt = chainAt;
  return {
    records,
    section: parser.section,
    truncatedAt,
    error,
    recoveries,
    skippedBlocks: parser.skippedBlocks,
  };
}
