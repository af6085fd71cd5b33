/**
 * The vhost-user protocol as data: constants, struct layouts, bit and value
 * names, and the two message tables (front-end → back-end requests on the
 * main socket, back-end → front-end requests on the backend channel) with
 * their replies. The codec in `vhost_user.ts`, the printer and the
 * dissector all read these tables; nothing here does any decoding.
 *
 * Source of truth: QEMU `docs/interop/vhost-user.rst` (master, with
 * GET_SHMEM_CONFIG, SHMEM_MAP/UNMAP and GET_VRING_BASE_SKIP_DRAIN), checked
 * against what QEMU's front-end actually puts on the wire where the two
 * differ (noted per entry).
 *
 * @module
 */
import { BitNames, type Display, type Layout, layout, ValueNames } from "./struct.ts";

// ---------------------------------------------------------------------------
// Constants

/** Bytes of the message header (request, flags, size). */
export const VHOST_USER_HEADER_SIZE = 12;
/**
 * Largest payload this codec accepts. QEMU's payload union is 2056 bytes
 * today (the shared-memory config); 4096 leaves room for that to grow and
 * matches rust-vmm's limit, while still rejecting garbage sizes early.
 */
export const VHOST_USER_MAX_PAYLOAD = 4096;
/** Most file descriptors one message may carry (QEMU and libvhost-user limit). */
export const VHOST_USER_MAX_FDS = 8;
/** The only protocol version (low two flag bits). */
export const VHOST_USER_VERSION = 1;
/** Flag bits holding the version. */
export const VHOST_USER_VERSION_MASK = 0x3;
/** Flag bit set on every reply. */
export const VHOST_USER_REPLY_MASK = 0x4;
/** Flag bit asking for a REPLY_ACK reply. */
export const VHOST_USER_NEED_REPLY_MASK = 0x8;
/** Every flag bit the spec defines; the rest are reserved. */
export const VHOST_USER_FLAGS_KNOWN = 0xf;
/** Vring index bits in the u64 of SET_VRING_KICK/CALL/ERR and the vring area. */
export const VHOST_USER_VRING_IDX_MASK = 0xff;
/** "No file descriptor" bit in the same u64s (and in SET_DEVICE_STATE_FD's reply). */
export const VHOST_USER_VRING_NOFD_MASK = 0x100;
/** Regions in a SET_MEM_TABLE message. */
export const VHOST_MEMORY_BASELINE_NREGIONS = 8;
/** Largest config space GET_CONFIG / SET_CONFIG carry. */
export const VHOST_USER_MAX_CONFIG_SIZE = 256;
/** Entries of VhostUserShMemConfig.memory_sizes. */
export const VIRTIO_MAX_SHMEM_REGIONS = 256;
/** Entries in each array of the (never upstreamed) virtio-fs DAX backend message. */
export const VHOST_USER_FS_BACKEND_ENTRIES = 8;
/** Feature bit (in GET/SET_FEATURES) that enables protocol-feature negotiation. */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;

// ---------------------------------------------------------------------------
// Feature bits

/** Protocol feature bit numbers (VHOST_USER_PROTOCOL_F_*), current names. */
export const VHOST_USER_PROTOCOL_F = {
  MQ: 0,
  LOG_SHMFD: 1,
  RARP: 2,
  REPLY_ACK: 3,
  NET_MTU: 4,
  BACKEND_REQ: 5,
  CROSS_ENDIAN: 6,
  CRYPTO_SESSION: 7,
  PAGEFAULT: 8,
  CONFIG: 9,
  BACKEND_SEND_FD: 10,
  HOST_NOTIFIER: 11,
  INFLIGHT_SHMFD: 12,
  RESET_DEVICE: 13,
  INBAND_NOTIFICATIONS: 14,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
  XEN_MMAP: 17,
  SHARED_OBJECT: 18,
  DEVICE_STATE: 19,
  GET_VRING_BASE_INFLIGHT: 20,
  GPA_ADDRESSES: 21,
  SHMEM: 22,
  GET_VRING_BASE_SKIP_DRAIN: 23,
} as const;

/** A current protocol feature name. */
export type ProtocolFeatureName = keyof typeof VHOST_USER_PROTOCOL_F;

/**
 * Old names still found in C headers (QEMU ≤ 7.2, libvhost-user, the C
 * virtiofsd). The spec's own #define list says MTU where the prose says
 * NET_MTU; SHMEM was briefly SHMEM_MAP.
 */
export const VHOST_USER_PROTOCOL_F_LEGACY: Readonly<Record<string, ProtocolFeatureName>> = {
  MTU: "NET_MTU",
  SLAVE_REQ: "BACKEND_REQ",
  SLAVE_SEND_FD: "BACKEND_SEND_FD",
  SHMEM_MAP: "SHMEM",
};

function bitsOf(numbers: Readonly<Record<string, number>>): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const [name, bit] of Object.entries(numbers)) out[name] = 1n << BigInt(bit);
  return out;
}

/**
 * Protocol feature names for GET/SET_PROTOCOL_FEATURES. Formatting uses the
 * current names; parsing also accepts the legacy ones (they come last, so
 * they are never printed).
 */
export const VHOST_USER_PROTOCOL_FEATURES: BitNames = new BitNames("vhost_user_protocol_features", {
  ...bitsOf(VHOST_USER_PROTOCOL_F),
  ...bitsOf(
    Object.fromEntries(
      Object.entries(VHOST_USER_PROTOCOL_F_LEGACY).map(([old, cur]) => [
        old,
        VHOST_USER_PROTOCOL_F[cur],
      ]),
    ),
  ),
});

/** Device-independent virtio feature bit numbers, plus the vhost ones. */
export const VIRTIO_F = {
  VIRTIO_F_NOTIFY_ON_EMPTY: 24,
  VHOST_F_LOG_ALL: 26,
  VIRTIO_F_ANY_LAYOUT: 27,
  VIRTIO_RING_F_INDIRECT_DESC: 28,
  VIRTIO_RING_F_EVENT_IDX: 29,
  VHOST_USER_F_PROTOCOL_FEATURES: 30,
  VIRTIO_F_VERSION_1: 32,
  VIRTIO_F_ACCESS_PLATFORM: 33,
  VIRTIO_F_RING_PACKED: 34,
  VIRTIO_F_IN_ORDER: 35,
  VIRTIO_F_ORDER_PLATFORM: 36,
  VIRTIO_F_SR_IOV: 37,
  VIRTIO_F_NOTIFICATION_DATA: 38,
  VIRTIO_F_NOTIF_CONFIG_DATA: 39,
  VIRTIO_F_RING_RESET: 40,
  VIRTIO_F_ADMIN_VQ: 41,
} as const;

/** virtio-fs device feature bits. */
export const VIRTIO_FS_F = { VIRTIO_FS_F_NOTIFICATION: 0 } as const;

/** Virtio feature names (transport and vhost bits only; device bits print as hex). */
export const VIRTIO_FEATURES: BitNames = new BitNames("virtio_features", {
  ...bitsOf(VIRTIO_F),
  VIRTIO_F_IOMMU_PLATFORM: 1n << 33n, // legacy alias, parse only
});

/**
 * Virtio feature names for a virtio-fs device: the transport bits plus
 * VIRTIO_FS_F_NOTIFICATION. The tables use this for GET/SET_FEATURES because
 * vfstrace traces virtio-fs; bit 0 means something else on other devices.
 */
export const VIRTIO_FS_FEATURES: BitNames = new BitNames("virtio_fs_features", {
  ...bitsOf(VIRTIO_FS_F),
  ...bitsOf(VIRTIO_F),
  VIRTIO_F_IOMMU_PLATFORM: 1n << 33n,
});

/** Virtio device status bits (SET_STATUS / GET_STATUS). */
export const VIRTIO_DEVICE_STATUS: BitNames = new BitNames("virtio_device_status", {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 0x40,
  FAILED: 0x80,
});

// ---------------------------------------------------------------------------
// Field value names

/** Flags of struct vhost_vring_addr. */
export const VHOST_VRING_FLAGS: BitNames = new BitNames("vhost_vring_flags", {
  VHOST_VRING_F_LOG: 1,
});

/** vhost_iotlb_msg.perm. */
export const VHOST_IOTLB_PERM: ValueNames = new ValueNames("vhost_iotlb_perm", {
  NO_ACCESS: 0,
  RO: 1,
  WO: 2,
  RW: 3,
});

/** vhost_iotlb_msg.type (5 and 6 are kernel-only batching markers). */
export const VHOST_IOTLB_TYPE: ValueNames = new ValueNames("vhost_iotlb_type", {
  MISS: 1,
  UPDATE: 2,
  INVALIDATE: 3,
  ACCESS_FAIL: 4,
  BATCH_BEGIN: 5,
  BATCH_END: 6,
});

/** VhostUserConfig.flags. */
export const VHOST_SET_CONFIG_TYPE: ValueNames = new ValueNames("vhost_set_config_type", {
  FRONTEND: 0,
  MIGRATION: 1,
});

/** VhostUserTransferDeviceState.direction. */
export const VHOST_TRANSFER_STATE_DIRECTION: ValueNames = new ValueNames(
  "vhost_transfer_state_direction",
  { SAVE: 0, LOAD: 1 },
);

/** VhostUserTransferDeviceState.phase. */
export const VHOST_TRANSFER_STATE_PHASE: ValueNames = new ValueNames(
  "vhost_transfer_state_phase",
  { STOPPED: 0 },
);

/** Xen mmap flags of a memory region (XEN_MMAP protocol feature). */
export const VHOST_USER_XEN_MMAP_FLAGS: BitNames = new BitNames("vhost_user_xen_mmap_flags", {
  FOREIGN: 1,
  GRANT: 2,
  NO_ADVANCE_MAP: 0x100,
});

/** VhostUserMMap.flags (SHMEM_MAP). */
export const VHOST_USER_MMAP_FLAGS: BitNames = new BitNames("vhost_user_mmap_flags", {
  MAP_RW: 1,
});

/** Per-entry flags of the virtio-fs DAX backend message. */
export const VHOST_USER_FS_FLAGS: BitNames = new BitNames("vhost_user_fs_flags", {
  MAP_R: 1,
  MAP_W: 2,
});

const hex: Display = { kind: "hex" };

/** Formats the u64 of SET_VRING_KICK/CALL/ERR and the vring area: `3` or `3|NOFD`. */
export function formatVringIndex(value: number | bigint): string {
  const v = BigInt(value);
  const index = Number(v & BigInt(VHOST_USER_VRING_IDX_MASK));
  const rest = v & ~BigInt(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK);
  let s = String(index);
  if (v & BigInt(VHOST_USER_VRING_NOFD_MASK)) s += "|NOFD";
  if (rest !== 0n) s += `|0x${rest.toString(16)}`;
  return s;
}

/** Formats SEND_RARP's u64: the MAC address is its first six bytes in memory. */
export function formatMac(value: number | bigint): string {
  const v = BigInt(value);
  const parts: string[] = [];
  for (let i = 0n; i < 6n; i++) parts.push(((v >> (8n * i)) & 0xffn).toString(16).padStart(2, "0"));
  return parts.join(":");
}

/** Formats SET_DEVICE_STATE_FD's reply: error code in bits 0-7, NOFD in bit 8. */
export function formatDeviceStateResult(value: number | bigint): string {
  const v = BigInt(value);
  const err = v & 0xffn;
  return `${err === 0n ? "ok" : `error ${err}`}${
    v & BigInt(VHOST_USER_VRING_NOFD_MASK) ? "|NOFD" : "|fd"
  }`;
}

/** Formats a 16-byte UUID (first three groups big-endian, as the spec says). */
export function formatUuid(bytes: Uint8Array): string {
  const h = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
    h.slice(20, 32)
  }`;
}

/** Formats header flags: `v1|REPLY|NEED_REPLY`. */
export function formatHeaderFlags(value: number | bigint): string {
  const f = Number(value);
  let s = `v${f & VHOST_USER_VERSION_MASK}`;
  if (f & VHOST_USER_REPLY_MASK) s += "|REPLY";
  if (f & VHOST_USER_NEED_REPLY_MASK) s += "|NEED_REPLY";
  const rest = f & ~VHOST_USER_FLAGS_KNOWN;
  if (rest !== 0) s += `|0x${(rest >>> 0).toString(16)}`;
  return s;
}

// ---------------------------------------------------------------------------
// Struct layouts (names as in QEMU; field names as in the C structs)

/** The 12-byte message header. */
export const VHOST_USER_HEADER_LAYOUT: Layout = layout("VhostUserHeader", [
  { name: "request", type: "u32" },
  {
    name: "flags",
    type: "u32",
    display: { kind: "custom", name: "vhost_user_flags", format: formatHeaderFlags },
  },
  { name: "size", type: "u32" },
]);

/** struct vhost_vring_state. */
export const VRING_STATE_LAYOUT: Layout = layout("vhost_vring_state", [
  { name: "index", type: "u32" },
  { name: "num", type: "u32" },
]);

/** struct vhost_vring_addr. */
export const VRING_ADDR_LAYOUT: Layout = layout("vhost_vring_addr", [
  { name: "index", type: "u32" },
  { name: "flags", type: "u32", display: { kind: "flags", set: VHOST_VRING_FLAGS } },
  { name: "desc_user_addr", type: "u64", display: hex },
  { name: "used_user_addr", type: "u64", display: hex },
  { name: "avail_user_addr", type: "u64", display: hex },
  { name: "log_guest_addr", type: "u64", display: hex },
]);

/** VhostUserMemoryRegion. */
export const MEMORY_REGION_LAYOUT: Layout = layout("VhostUserMemoryRegion", [
  { name: "guest_phys_addr", type: "u64", display: hex },
  { name: "memory_size", type: "u64", display: hex },
  { name: "userspace_addr", type: "u64", display: hex },
  { name: "mmap_offset", type: "u64", display: hex },
]);

/** VhostUserMemoryRegion with the two XEN_MMAP fields appended. */
export const MEMORY_REGION_XEN_LAYOUT: Layout = layout("VhostUserMemoryRegion(xen)", [
  ...MEMORY_REGION_LAYOUT.fields,
  {
    name: "xen_mmap_flags",
    type: "u32",
    display: { kind: "flags", set: VHOST_USER_XEN_MMAP_FLAGS },
  },
  { name: "domid", type: "u32" },
]);

/** The fixed part of VhostUserMemory; `nregions` regions follow. */
export const MEMORY_TABLE_HEADER_LAYOUT: Layout = layout("VhostUserMemory", [
  { name: "nregions", type: "u32" },
  { name: "padding", type: "u32", pad: true },
]);

/** The fixed part of VhostUserMemRegMsg; one region follows. */
export const MEM_REG_HEADER_LAYOUT: Layout = layout("VhostUserMemRegMsg", [
  { name: "padding", type: "u64", pad: true },
]);

/** VhostUserLog (SET_LOG_BASE; the spec says u64, QEMU sends this). */
export const LOG_LAYOUT: Layout = layout("VhostUserLog", [
  { name: "mmap_size", type: "u64", display: hex },
  { name: "mmap_offset", type: "u64", display: hex },
]);

/** struct vhost_iotlb_msg, padded to 32 bytes as in the C union. */
export const IOTLB_LAYOUT: Layout = layout("vhost_iotlb_msg", [
  { name: "iova", type: "u64", display: hex },
  { name: "size", type: "u64", display: hex },
  { name: "uaddr", type: "u64", display: hex },
  { name: "perm", type: "u8", display: { kind: "enum", set: VHOST_IOTLB_PERM } },
  { name: "type", type: "u8", display: { kind: "enum", set: VHOST_IOTLB_TYPE } },
  { name: "padding", type: { bytes: 6 }, pad: true },
]);

/** The fixed part of VhostUserConfig; `size` bytes of config space follow. */
export const CONFIG_HEADER_LAYOUT: Layout = layout("VhostUserConfig", [
  { name: "offset", type: "u32" },
  { name: "size", type: "u32" },
  { name: "flags", type: "u32", display: { kind: "enum", set: VHOST_SET_CONFIG_TYPE } },
]);

/** VhostUserVringArea (backend VRING_HOST_NOTIFIER_MSG). */
export const VRING_AREA_LAYOUT: Layout = layout("VhostUserVringArea", [
  {
    name: "u64",
    type: "u64",
    display: { kind: "custom", name: "vring_index", format: formatVringIndex },
  },
  { name: "size", type: "u64", display: hex },
  { name: "offset", type: "u64", display: hex },
]);

/** VhostUserInflight, padded to 24 bytes as in the C union. */
export const INFLIGHT_LAYOUT: Layout = layout("VhostUserInflight", [
  { name: "mmap_size", type: "u64", display: hex },
  { name: "mmap_offset", type: "u64", display: hex },
  { name: "num_queues", type: "u16" },
  { name: "queue_size", type: "u16" },
  { name: "padding", type: { bytes: 4 }, pad: true },
]);

/** VhostUserShared. */
export const SHARED_OBJECT_LAYOUT: Layout = layout("VhostUserShared", [
  { name: "uuid", type: { bytes: 16 } },
]);

/** VhostUserTransferDeviceState. */
export const DEVICE_STATE_LAYOUT: Layout = layout("VhostUserTransferDeviceState", [
  {
    name: "direction",
    type: "u32",
    display: { kind: "enum", set: VHOST_TRANSFER_STATE_DIRECTION },
  },
  { name: "phase", type: "u32", display: { kind: "enum", set: VHOST_TRANSFER_STATE_PHASE } },
]);

/** VhostUserMMap (backend SHMEM_MAP / SHMEM_UNMAP). */
export const SHMEM_MAP_LAYOUT: Layout = layout("VhostUserMMap", [
  { name: "shmid", type: "u8" },
  { name: "padding", type: { bytes: 7 }, pad: true },
  { name: "fd_offset", type: "u64", display: hex },
  { name: "shm_offset", type: "u64", display: hex },
  { name: "len", type: "u64", display: hex },
  { name: "flags", type: "u64", display: { kind: "flags", set: VHOST_USER_MMAP_FLAGS } },
]);

/** The fixed part of VhostUserShMemConfig; 256 u64 sizes follow. */
export const SHMEM_CONFIG_HEADER_LAYOUT: Layout = layout("VhostUserShMemConfig", [
  { name: "nregions", type: "u32" },
  { name: "padding", type: "u32", pad: true },
]);

/** The u64 payload. */
export const U64_LAYOUT: Layout = layout("u64", [{ name: "value", type: "u64" }]);

/** struct virtio_fs_config (notify_buf_size only with VIRTIO_FS_F_NOTIFICATION). */
export const VIRTIO_FS_CONFIG_LAYOUT: Layout = layout("virtio_fs_config", [
  { name: "tag", type: { bytes: 36 } },
  { name: "num_request_queues", type: "u32" },
  { name: "notify_buf_size", type: "u32" },
]);

// ---------------------------------------------------------------------------
// Message tables

/** Which socket a message travels on. */
export type Channel = "frontend" | "backend";

/**
 * Which numbering the backend channel uses. `current` is the spec; the
 * virtio-fs DAX messages (FS_MAP…FS_IO) were only ever in the virtio-fs
 * development trees and reuse numbers 6-9, so they are a separate dialect.
 */
export type BackendDialect = "current" | "virtio-fs-dax";

/** How a payload is laid out; the codec has one decoder per kind. */
export type PayloadKind =
  | "empty"
  | "u64"
  | "vring_index"
  | "vring_state"
  | "vring_addr"
  | "memory_table"
  | "mem_reg"
  | "log"
  | "iotlb"
  | "config"
  | "crypto_session"
  | "vring_area"
  | "inflight"
  | "shared_object"
  | "device_state"
  | "shmem_map"
  | "shmem_config"
  | "fs_backend"
  | "raw";

/** How many file descriptors a message form carries. */
export type FdRule =
  /** Exactly `count`. */
  | { readonly kind: "exact"; readonly count: number }
  /** Between `min` and `max` (a feature not visible in the message decides). */
  | { readonly kind: "range"; readonly min: number; readonly max: number }
  /** One per memory region (SET_MEM_TABLE). */
  | { readonly kind: "per_region" }
  /** One, unless bit 8 (NOFD) of the payload's u64 is set; then none. */
  | { readonly kind: "nofd_flag" }
  /** One when the inflight area has a size, none when mmap_size is 0. */
  | { readonly kind: "if_mmap_size" };

/** One accepted shape of a request or reply payload. */
export interface PayloadForm {
  /** Payload layout. */
  readonly payload: PayloadKind;
  /** File descriptors that come with it. */
  readonly fds: FdRule;
  /** How to show a u64 payload (features, status, MAC…). */
  readonly display?: Display;
  /** Why this form exists, when it is not the spec's main one. */
  readonly note?: string;
}

/**
 * When a request is answered: `always` (GET_* and friends), `need_reply`
 * (only when NEED_REPLY is set, i.e. REPLY_ACK), or `conditional` (a
 * negotiated feature or migration phase decides; see the entry's note).
 */
export type ReplyPolicy = "always" | "need_reply" | "conditional";

/** One message type. */
export interface MessageSpec {
  /** Request number. */
  readonly request: number;
  /** Current name without the VHOST_USER_ prefix, e.g. `SET_BACKEND_REQ_FD`. */
  readonly name: string;
  /** Name before the SLAVE → BACKEND rename, when there was one. */
  readonly legacyName?: string;
  /** Socket the request travels on. */
  readonly channel: Channel;
  /** Set only for the virtio-fs DAX backend messages. */
  readonly dialect?: BackendDialect;
  /** Accepted request payloads, tried in order by size. */
  readonly requestForms: readonly PayloadForm[];
  /** Accepted reply payloads, tried in order by size. */
  readonly replyForms: readonly PayloadForm[];
  /** When a reply comes. */
  readonly reply: ReplyPolicy;
  /** Protocol feature that must be negotiated before sending it. */
  readonly protocolFeature?: ProtocolFeatureName;
  /** Virtio feature bit that must be negotiated before sending it. */
  readonly feature?: keyof typeof VIRTIO_F;
  /** Deprecated by the spec. */
  readonly deprecated?: boolean;
  /** Where the wire and the spec differ, or what the spec leaves open. */
  readonly note?: string;
}

const none: FdRule = { kind: "exact", count: 0 };
const one: FdRule = { kind: "exact", count: 1 };
const upToOne: FdRule = { kind: "range", min: 0, max: 1 };

const empty: PayloadForm = { payload: "empty", fds: none };
const u64: PayloadForm = { payload: "u64", fds: none };
/** The REPLY_ACK reply: u64, zero for success. */
const ack: PayloadForm = { payload: "u64", fds: none, note: "REPLY_ACK: 0 is success" };
const state: PayloadForm = { payload: "vring_state", fds: none };
const features: PayloadForm = {
  payload: "u64",
  fds: none,
  display: { kind: "flags", set: VIRTIO_FS_FEATURES },
};
const protocolFeatures: PayloadForm = {
  payload: "u64",
  fds: none,
  display: { kind: "flags", set: VHOST_USER_PROTOCOL_FEATURES },
};
const status: PayloadForm = {
  payload: "u64",
  fds: none,
  display: { kind: "flags", set: VIRTIO_DEVICE_STATUS },
};
const vringFile: PayloadForm = {
  payload: "vring_index",
  fds: { kind: "nofd_flag" },
  display: { kind: "custom", name: "vring_index", format: formatVringIndex },
};
const sharedObject: PayloadForm = { payload: "shared_object", fds: none };
const shmemMap: PayloadForm = { payload: "shmem_map", fds: none };
const fsBackend: PayloadForm = { payload: "fs_backend", fds: none };

type Entry = Omit<MessageSpec, "channel" | "request" | "name" | "replyForms" | "reply"> & {
  readonly replyForms?: readonly PayloadForm[];
  readonly reply?: ReplyPolicy;
};

function table(
  channel: Channel,
  numbers: Readonly<Record<string, number>>,
  entries: Readonly<Record<string, Entry>>,
): ReadonlyMap<number, MessageSpec> {
  const out = new Map<number, MessageSpec>();
  for (const [name, e] of Object.entries(entries)) {
    const request = numbers[name];
    if (request === undefined) throw new Error(`vhost-user table: no number for ${name}`);
    // A message without its own reply is answered only via REPLY_ACK.
    const spec: MessageSpec = {
      request,
      name,
      channel,
      replyForms: e.replyForms ?? [ack],
      reply: e.reply ?? (e.replyForms ? "always" : "need_reply"),
      ...e,
    };
    out.set(request, Object.freeze(spec));
  }
  return out;
}

/** Front-end → back-end request numbers (current names). */
export const VHOST_USER_FRONTEND_REQUEST = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  CREATE_CRYPTO_SESSION: 26,
  CLOSE_CRYPTO_SESSION: 27,
  POSTCOPY_ADVISE: 28,
  POSTCOPY_LISTEN: 29,
  POSTCOPY_END: 30,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  GPU_SET_SOCKET: 33,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
  GET_SHARED_OBJECT: 41,
  SET_DEVICE_STATE_FD: 42,
  CHECK_DEVICE_STATE: 43,
  GET_SHMEM_CONFIG: 44,
  GET_VRING_BASE_SKIP_DRAIN: 45,
} as const;

/** Back-end → front-end request numbers on the backend channel (current names). */
export const VHOST_USER_BACKEND_REQUEST = {
  BACKEND_IOTLB_MSG: 1,
  BACKEND_CONFIG_CHANGE_MSG: 2,
  BACKEND_VRING_HOST_NOTIFIER_MSG: 3,
  BACKEND_VRING_CALL: 4,
  BACKEND_VRING_ERR: 5,
  BACKEND_SHARED_OBJECT_ADD: 6,
  BACKEND_SHARED_OBJECT_REMOVE: 7,
  BACKEND_SHARED_OBJECT_LOOKUP: 8,
  BACKEND_SHMEM_MAP: 9,
  BACKEND_SHMEM_UNMAP: 10,
} as const;

/**
 * The virtio-fs DAX backend requests of the virtio-fs development QEMU and C
 * virtiofsd (VHOST_USER_SLAVE_FS_*). Never in upstream QEMU; they collide
 * with the shared-object and SHMEM_MAP numbers.
 */
export const VHOST_USER_FS_DAX_BACKEND_REQUEST = {
  BACKEND_FS_MAP: 6,
  BACKEND_FS_UNMAP: 7,
  BACKEND_FS_SYNC: 8,
  BACKEND_FS_IO: 9,
} as const;

/** Every front-end → back-end message of the current spec, by request number. */
export const VHOST_USER_FRONTEND_MESSAGES: ReadonlyMap<number, MessageSpec> = table(
  "frontend",
  VHOST_USER_FRONTEND_REQUEST,
  {
    GET_FEATURES: { requestForms: [empty], replyForms: [features] },
    SET_FEATURES: { requestForms: [features] },
    SET_OWNER: { requestForms: [empty] },
    RESET_OWNER: { requestForms: [empty], deprecated: true },
    SET_MEM_TABLE: {
      requestForms: [
        { payload: "memory_table", fds: { kind: "per_region" } },
      ],
      replyForms: [
        ack,
        { payload: "memory_table", fds: none, note: "postcopy: the back-end's mapping bases" },
      ],
      reply: "conditional",
      note: "Replies with its mappings after POSTCOPY_LISTEN; the front-end then acks with " +
        "an 8-byte SET_MEM_TABLE request (u64 0, no fds), which decodes as an empty table.",
    },
    SET_LOG_BASE: {
      requestForms: [{ payload: "log", fds: upToOne, note: "fd only with LOG_SHMFD" }],
      reply: "conditional",
      note: "The spec says u64; QEMU and libvhost-user send VhostUserLog (16 bytes). " +
        "Replied to (u64) only with LOG_SHMFD.",
    },
    SET_LOG_FD: { requestForms: [{ payload: "empty", fds: one }] },
    SET_VRING_NUM: { requestForms: [state] },
    SET_VRING_ADDR: { requestForms: [{ payload: "vring_addr", fds: none }] },
    SET_VRING_BASE: {
      requestForms: [state],
      note: "num is the avail index (split) or both wrapped indices (packed)",
    },
    GET_VRING_BASE: { requestForms: [state], replyForms: [state] },
    SET_VRING_KICK: { requestForms: [vringFile] },
    SET_VRING_CALL: { requestForms: [vringFile] },
    SET_VRING_ERR: { requestForms: [vringFile] },
    GET_PROTOCOL_FEATURES: {
      requestForms: [empty],
      replyForms: [protocolFeatures],
      feature: "VHOST_USER_F_PROTOCOL_FEATURES",
    },
    SET_PROTOCOL_FEATURES: {
      requestForms: [protocolFeatures],
      feature: "VHOST_USER_F_PROTOCOL_FEATURES",
    },
    GET_QUEUE_NUM: { requestForms: [empty], replyForms: [u64], protocolFeature: "MQ" },
    SET_VRING_ENABLE: { requestForms: [state], feature: "VHOST_USER_F_PROTOCOL_FEATURES" },
    SEND_RARP: {
      requestForms: [{
        payload: "u64",
        fds: none,
        display: { kind: "custom", name: "mac", format: formatMac },
      }],
      protocolFeature: "RARP",
    },
    NET_SET_MTU: { requestForms: [u64], protocolFeature: "NET_MTU" },
    SET_BACKEND_REQ_FD: {
      legacyName: "SET_SLAVE_REQ_FD",
      requestForms: [{ payload: "empty", fds: one }],
      protocolFeature: "BACKEND_REQ",
    },
    IOTLB_MSG: {
      requestForms: [{ payload: "iotlb", fds: none }],
      replyForms: [ack],
      reply: "always",
      feature: "VIRTIO_F_ACCESS_PLATFORM",
    },
    SET_VRING_ENDIAN: { requestForms: [state], protocolFeature: "CROSS_ENDIAN" },
    GET_CONFIG: {
      requestForms: [{ payload: "config", fds: none }],
      replyForms: [
        { payload: "config", fds: none },
        { payload: "empty", fds: none, note: "the back-end failed" },
      ],
      protocolFeature: "CONFIG",
    },
    SET_CONFIG: {
      requestForms: [{ payload: "config", fds: none }],
      protocolFeature: "CONFIG",
    },
    CREATE_CRYPTO_SESSION: {
      requestForms: [{ payload: "crypto_session", fds: none }],
      replyForms: [{ payload: "crypto_session", fds: none }],
      protocolFeature: "CRYPTO_SESSION",
      note: "The session struct embeds QEMU-internal types; only session_id (last 8 bytes) " +
        "is decoded.",
    },
    CLOSE_CRYPTO_SESSION: { requestForms: [u64], protocolFeature: "CRYPTO_SESSION" },
    POSTCOPY_ADVISE: {
      requestForms: [empty],
      replyForms: [{ payload: "empty", fds: one, note: "the userfaultfd" }],
      protocolFeature: "PAGEFAULT",
    },
    POSTCOPY_LISTEN: { requestForms: [empty], protocolFeature: "PAGEFAULT" },
    POSTCOPY_END: {
      requestForms: [empty],
      replyForms: [u64],
      protocolFeature: "PAGEFAULT",
    },
    GET_INFLIGHT_FD: {
      requestForms: [{ payload: "inflight", fds: none }],
      replyForms: [{ payload: "inflight", fds: { kind: "if_mmap_size" } }],
      protocolFeature: "INFLIGHT_SHMFD",
      note: "The spec says no reply; every implementation replies with the area and its fd.",
    },
    SET_INFLIGHT_FD: {
      requestForms: [{ payload: "inflight", fds: one }],
      protocolFeature: "INFLIGHT_SHMFD",
    },
    GPU_SET_SOCKET: { requestForms: [{ payload: "empty", fds: one }] },
    RESET_DEVICE: { requestForms: [empty], protocolFeature: "RESET_DEVICE" },
    VRING_KICK: { requestForms: [state], protocolFeature: "INBAND_NOTIFICATIONS" },
    GET_MAX_MEM_SLOTS: {
      requestForms: [empty],
      replyForms: [u64],
      protocolFeature: "CONFIGURE_MEM_SLOTS",
    },
    ADD_MEM_REG: {
      requestForms: [
        { payload: "mem_reg", fds: one },
        { payload: "u64", fds: none, note: "postcopy: the front-end's ack of the reply" },
      ],
      replyForms: [
        ack,
        { payload: "mem_reg", fds: none, note: "postcopy: the back-end's mapping base" },
      ],
      reply: "conditional",
      protocolFeature: "CONFIGURE_MEM_SLOTS",
    },
    REM_MEM_REG: {
      requestForms: [{
        payload: "mem_reg",
        fds: upToOne,
        note: "no fd SHOULD be sent; back-ends MAY accept one",
      }],
      replyForms: [ack, { payload: "mem_reg", fds: none }],
      reply: "need_reply",
      protocolFeature: "CONFIGURE_MEM_SLOTS",
      note: "The spec lists a region as the reply; QEMU only reads a REPLY_ACK u64.",
    },
    SET_STATUS: { requestForms: [status], protocolFeature: "STATUS" },
    GET_STATUS: { requestForms: [empty], replyForms: [status], protocolFeature: "STATUS" },
    GET_SHARED_OBJECT: {
      requestForms: [
        sharedObject,
        { payload: "empty", fds: none, note: "QEMU forgets to set the size" },
      ],
      replyForms: [
        { payload: "u64", fds: upToOne, note: "the dma-buf fd on success" },
        { payload: "empty", fds: upToOne },
      ],
      protocolFeature: "SHARED_OBJECT",
    },
    SET_DEVICE_STATE_FD: {
      requestForms: [{ payload: "device_state", fds: one }],
      replyForms: [{
        payload: "u64",
        fds: { kind: "nofd_flag" },
        display: { kind: "custom", name: "device_state_result", format: formatDeviceStateResult },
      }],
      protocolFeature: "DEVICE_STATE",
    },
    CHECK_DEVICE_STATE: {
      requestForms: [empty],
      replyForms: [u64],
      protocolFeature: "DEVICE_STATE",
    },
    GET_SHMEM_CONFIG: {
      requestForms: [empty],
      replyForms: [{ payload: "shmem_config", fds: none }],
      protocolFeature: "SHMEM",
    },
    GET_VRING_BASE_SKIP_DRAIN: {
      requestForms: [state],
      replyForms: [state],
      protocolFeature: "GET_VRING_BASE_SKIP_DRAIN",
    },
  },
);

/** Every back-end → front-end message of the current spec, by request number. */
export const VHOST_USER_BACKEND_MESSAGES: ReadonlyMap<number, MessageSpec> = table(
  "backend",
  VHOST_USER_BACKEND_REQUEST,
  {
    BACKEND_IOTLB_MSG: {
      legacyName: "SLAVE_IOTLB_MSG",
      requestForms: [{ payload: "iotlb", fds: none }],
      protocolFeature: "BACKEND_REQ",
      feature: "VIRTIO_F_ACCESS_PLATFORM",
    },
    BACKEND_CONFIG_CHANGE_MSG: {
      legacyName: "SLAVE_CONFIG_CHANGE_MSG",
      requestForms: [empty],
      protocolFeature: "CONFIG",
    },
    BACKEND_VRING_HOST_NOTIFIER_MSG: {
      legacyName: "SLAVE_VRING_HOST_NOTIFIER_MSG",
      requestForms: [{ payload: "vring_area", fds: { kind: "nofd_flag" } }],
      protocolFeature: "HOST_NOTIFIER",
    },
    BACKEND_VRING_CALL: {
      legacyName: "SLAVE_VRING_CALL",
      requestForms: [state],
      protocolFeature: "INBAND_NOTIFICATIONS",
    },
    BACKEND_VRING_ERR: {
      legacyName: "SLAVE_VRING_ERR",
      requestForms: [state],
      protocolFeature: "INBAND_NOTIFICATIONS",
    },
    BACKEND_SHARED_OBJECT_ADD: { requestForms: [sharedObject], protocolFeature: "SHARED_OBJECT" },
    BACKEND_SHARED_OBJECT_REMOVE: {
      requestForms: [sharedObject],
      protocolFeature: "SHARED_OBJECT",
    },
    BACKEND_SHARED_OBJECT_LOOKUP: {
      requestForms: [sharedObject],
      replyForms: [{ payload: "u64", fds: upToOne, note: "the dma-buf fd on success" }],
      protocolFeature: "SHARED_OBJECT",
    },
    BACKEND_SHMEM_MAP: {
      requestForms: [{ payload: "shmem_map", fds: one }],
      protocolFeature: "SHMEM",
    },
    BACKEND_SHMEM_UNMAP: { requestForms: [shmemMap], protocolFeature: "SHMEM" },
  },
);

/**
 * The virtio-fs DAX backend messages (VhostUserFSSlaveMsg with 8 entries),
 * as the virtio-fs development QEMU and C virtiofsd used them. Replies are
 * a u64 result (REPLY_ACK style; FS_IO returns the byte count).
 */
export const VHOST_USER_FS_DAX_BACKEND_MESSAGES: ReadonlyMap<number, MessageSpec> = new Map(
  [
    ...table("backend", VHOST_USER_FS_DAX_BACKEND_REQUEST, {
      BACKEND_FS_MAP: {
        legacyName: "SLAVE_FS_MAP",
        requestForms: [{ payload: "fs_backend", fds: one }],
        protocolFeature: "BACKEND_SEND_FD",
      },
      BACKEND_FS_UNMAP: {
        legacyName: "SLAVE_FS_UNMAP",
        requestForms: [fsBackend],
        protocolFeature: "BACKEND_REQ",
      },
      BACKEND_FS_SYNC: {
        legacyName: "SLAVE_FS_SYNC",
        requestForms: [fsBackend],
        protocolFeature: "BACKEND_REQ",
      },
      BACKEND_FS_IO: {
        legacyName: "SLAVE_FS_IO",
        requestForms: [{ payload: "fs_backend", fds: one }],
        protocolFeature: "BACKEND_SEND_FD",
      },
    }).entries(),
  ].map(([n, spec]) => [n, Object.freeze({ ...spec, dialect: "virtio-fs-dax" as const })]),
);

function requestNames(
  name: string,
  ...tables: ReadonlyMap<number, MessageSpec>[]
): ValueNames {
  const values: Record<string, number> = {};
  for (const t of tables) for (const spec of t.values()) values[spec.name] = spec.request;
  return new ValueNames(name, values);
}

/** Front-end request names by number (for printers and the dissector). */
export const VHOST_USER_FRONTEND_REQUEST_NAMES: ValueNames = requestNames(
  "vhost_user_request",
  VHOST_USER_FRONTEND_MESSAGES,
);

/** Backend-channel request names by number (current dialect). */
export const VHOST_USER_BACKEND_REQUEST_NAMES: ValueNames = requestNames(
  "vhost_user_backend_request",
  VHOST_USER_BACKEND_MESSAGES,
);
