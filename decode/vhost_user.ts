/**
 * vhost-user message codec: bytes (plus the number of fds that came with
 * them) ⇄ typed messages, driven by the tables in `vhost_user_table.ts`.
 * Pure: no I/O, no state between messages. Every malformed input ends in a
 * {@link DecodeError} naming the message, the field and the offset; bad
 * values handed to the encoder end in an {@link EncodeError}.
 *
 * Unknown request numbers decode as `unknown message N` with a raw payload
 * (a tracer must relay what it does not understand), unless
 * `{ unknown: "error" }` is passed.
 *
 * @module
 */
import {
  DecodeError,
  EncodeError,
  type FieldSpec,
  type FieldValue,
  formatField,
  hexBytes,
  type Layout,
} from "./struct.ts";
import {
  type BackendDialect,
  type Channel,
  CONFIG_HEADER_LAYOUT,
  DEVICE_STATE_LAYOUT,
  type FdRule,
  formatUuid,
  INFLIGHT_LAYOUT,
  IOTLB_LAYOUT,
  LOG_LAYOUT,
  MEM_REG_HEADER_LAYOUT,
  MEMORY_REGION_LAYOUT,
  MEMORY_REGION_XEN_LAYOUT,
  MEMORY_TABLE_HEADER_LAYOUT,
  type MessageSpec,
  type PayloadForm,
  type PayloadKind,
  SHARED_OBJECT_LAYOUT,
  SHMEM_CONFIG_HEADER_LAYOUT,
  SHMEM_MAP_LAYOUT,
  VHOST_MEMORY_BASELINE_NREGIONS,
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FLAGS_KNOWN,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_FS_BACKEND_ENTRIES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
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
  VRING_ADDR_LAYOUT,
  VRING_AREA_LAYOUT,
  VRING_STATE_LAYOUT,
} from "./vhost_user_table.ts";

export * from "./vhost_user_table.ts";

// ---------------------------------------------------------------------------
// Payload types (field names are the C names in camelCase)

/** No payload. */
export interface EmptyPayload {
  /** Discriminant. */
  readonly kind: "empty";
}

/** A single u64 (features, status, REPLY_ACK result…). */
export interface U64Payload {
  /** Discriminant. */
  readonly kind: "u64";
  /** The value. */
  readonly value: bigint;
}

/** The u64 of SET_VRING_KICK/CALL/ERR: vring index in bits 0-7, NOFD in bit 8. */
export interface VringIndexPayload {
  /** Discriminant. */
  readonly kind: "vring_index";
  /** The whole u64 as sent; it alone is encoded. */
  readonly value: bigint;
  /** Bits 0-7 (derived). */
  readonly index: number;
  /** Bit 8: no fd comes with the message (derived). */
  readonly noFd: boolean;
}

/** struct vhost_vring_state. */
export interface VringStatePayload {
  /** Discriminant. */
  readonly kind: "vring_state";
  /** Vring index. */
  readonly index: number;
  /** Size, base index(es), enable flag or endianness, per message. */
  readonly num: number;
}

/** struct vhost_vring_addr. */
export interface VringAddrPayload {
  /** Discriminant. */
  readonly kind: "vring_addr";
  /** Vring index. */
  readonly index: number;
  /** VHOST_VRING_F_LOG. */
  readonly flags: number;
  /** Descriptor table address. */
  readonly descUserAddr: bigint;
  /** Used ring address. */
  readonly usedUserAddr: bigint;
  /** Available ring address. */
  readonly availUserAddr: bigint;
  /** Guest address for used-ring dirty logging. */
  readonly logGuestAddr: bigint;
}

/** VhostUserMemoryRegion (the Xen fields only with XEN_MMAP). */
export interface MemoryRegion {
  /** Guest physical address. */
  readonly guestPhysAddr: bigint;
  /** Size in bytes. */
  readonly memorySize: bigint;
  /** Front-end user address (or GPA with GPA_ADDRESSES). */
  readonly userspaceAddr: bigint;
  /** Offset of the region in its fd. */
  readonly mmapOffset: bigint;
  /** Xen mmap flags (XEN_MMAP layout only). */
  readonly xenMmapFlags?: number;
  /** Xen domain id (XEN_MMAP layout only). */
  readonly domid?: number;
}

/** VhostUserMemory as sent: only `nregions` regions are on the wire. */
export interface MemoryTablePayload {
  /** Discriminant. */
  readonly kind: "memory_table";
  /** The regions; nregions is their count. */
  readonly regions: readonly MemoryRegion[];
  /** 40-byte Xen regions instead of 32-byte ones. */
  readonly xen: boolean;
  /** Reserved u32 after nregions. */
  readonly padding?: number;
}

/** VhostUserMemRegMsg (ADD_MEM_REG / REM_MEM_REG). */
export interface MemRegPayload {
  /** Discriminant. */
  readonly kind: "mem_reg";
  /** The region. */
  readonly region: MemoryRegion;
  /** 40-byte Xen region instead of a 32-byte one. */
  readonly xen: boolean;
  /** Reserved u64 before the region. */
  readonly padding?: bigint;
}

/** VhostUserLog (SET_LOG_BASE). */
export interface LogPayload {
  /** Discriminant. */
  readonly kind: "log";
  /** Size of the log area. */
  readonly mmapSize: bigint;
  /** Offset of the log in its fd. */
  readonly mmapOffset: bigint;
}

/** struct vhost_iotlb_msg. */
export interface IotlbPayload {
  /** Discriminant. */
  readonly kind: "iotlb";
  /** I/O virtual address. */
  readonly iova: bigint;
  /** Size. */
  readonly size: bigint;
  /** User address. */
  readonly uaddr: bigint;
  /** VHOST_IOTLB_PERM. */
  readonly perm: number;
  /** VHOST_IOTLB_TYPE. */
  readonly type: number;
  /** The six bytes of C struct padding. */
  readonly padding?: Uint8Array;
}

/** VhostUserConfig; its size field is `data.byteLength`. */
export interface ConfigPayload {
  /** Discriminant. */
  readonly kind: "config";
  /** Offset in the device config space. */
  readonly offset: number;
  /** VHOST_SET_CONFIG_TYPE. */
  readonly flags: number;
  /** Config space bytes (zeros in a GET_CONFIG request). */
  readonly data: Uint8Array;
}

/** VhostUserCryptoSession: opaque except for the trailing session id. */
export interface CryptoSessionPayload {
  /** Discriminant. */
  readonly kind: "crypto_session";
  /** Everything before session_id (layout depends on the QEMU version). */
  readonly body: Uint8Array;
  /** Session id; negative for failure. */
  readonly sessionId: bigint;
}

/** VhostUserVringArea (backend VRING_HOST_NOTIFIER_MSG). */
export interface VringAreaPayload {
  /** Discriminant. */
  readonly kind: "vring_area";
  /** Vring index and NOFD as sent; it alone is encoded. */
  readonly u64: bigint;
  /** Bits 0-7 of u64 (derived). */
  readonly index: number;
  /** Bit 8 of u64 (derived). */
  readonly noFd: boolean;
  /** Size of the notifier area. */
  readonly size: bigint;
  /** Offset of the area in the fd. */
  readonly offset: bigint;
}

/** VhostUserInflight. */
export interface InflightPayload {
  /** Discriminant. */
  readonly kind: "inflight";
  /** Size of the inflight area. */
  readonly mmapSize: bigint;
  /** Offset of the area in the fd. */
  readonly mmapOffset: bigint;
  /** Number of virtqueues. */
  readonly numQueues: number;
  /** Virtqueue size. */
  readonly queueSize: number;
  /** The four bytes of C struct padding. */
  readonly padding?: Uint8Array;
}

/** VhostUserShared. */
export interface SharedObjectPayload {
  /** Discriminant. */
  readonly kind: "shared_object";
  /** 16-byte UUID. */
  readonly uuid: Uint8Array;
}

/** VhostUserTransferDeviceState. */
export interface DeviceStatePayload {
  /** Discriminant. */
  readonly kind: "device_state";
  /** VHOST_TRANSFER_STATE_DIRECTION. */
  readonly direction: number;
  /** VHOST_TRANSFER_STATE_PHASE. */
  readonly phase: number;
}

/** VhostUserMMap (backend SHMEM_MAP / SHMEM_UNMAP). */
export interface ShmemMapPayload {
  /** Discriminant. */
  readonly kind: "shmem_map";
  /** VIRTIO Shared Memory Region id. */
  readonly shmid: number;
  /** Offset in the fd. */
  readonly fdOffset: bigint;
  /** Offset in the shared memory region. */
  readonly shmOffset: bigint;
  /** Length of the mapping. */
  readonly len: bigint;
  /** VHOST_USER_MMAP_FLAGS. */
  readonly flags: bigint;
  /** The seven reserved bytes after shmid. */
  readonly padding?: Uint8Array;
}

/** VhostUserShMemConfig (GET_SHMEM_CONFIG reply). */
export interface ShmemConfigPayload {
  /** Discriminant. */
  readonly kind: "shmem_config";
  /** Number of valid regions. */
  readonly nregions: number;
  /** 256 sizes, indexed by shmid. */
  readonly memorySizes: readonly bigint[];
  /** Reserved u32. */
  readonly padding?: number;
}

/** VhostUserFSSlaveMsg with 8 entries (virtio-fs DAX dialect), arrays as on the wire. */
export interface FsBackendPayload {
  /** Discriminant. */
  readonly kind: "fs_backend";
  /** Offsets in the file, 8 entries. */
  readonly fdOffset: readonly bigint[];
  /** Offsets in the DAX cache window, 8 entries. */
  readonly cOffset: readonly bigint[];
  /** Lengths (0 ends the list), 8 entries. */
  readonly len: readonly bigint[];
  /** VHOST_USER_FS_FLAGS, 8 entries. */
  readonly flags: readonly bigint[];
}

/** Bytes not interpreted: unknown messages, or a deliberate escape hatch when encoding. */
export interface RawPayload {
  /** Discriminant. */
  readonly kind: "raw";
  /** The payload bytes. */
  readonly bytes: Uint8Array;
}

/** Any decoded payload; `kind` tells which. */
export type Payload =
  | EmptyPayload
  | U64Payload
  | VringIndexPayload
  | VringStatePayload
  | VringAddrPayload
  | MemoryTablePayload
  | MemRegPayload
  | LogPayload
  | IotlbPayload
  | ConfigPayload
  | CryptoSessionPayload
  | VringAreaPayload
  | InflightPayload
  | SharedObjectPayload
  | DeviceStatePayload
  | ShmemMapPayload
  | ShmemConfigPayload
  | FsBackendPayload
  | RawPayload;

/** How many fds a message came with against what its form allows. */
export interface FdCheck {
  /** fds that came with the message. */
  readonly count: number;
  /** Fewest allowed. */
  readonly min: number;
  /** Most allowed. */
  readonly max: number;
  /** The rule in words, e.g. `one per region (2)`. */
  readonly rule: string;
  /** count is within [min, max]. */
  readonly ok: boolean;
}

/** A decoded message. */
export interface VhostUserMessage {
  /** Socket it travelled on. */
  readonly channel: Channel;
  /** Request number from the header. */
  readonly request: number;
  /** Current name, or `unknown message N`. */
  readonly name: string;
  /** Pre-rename name (SLAVE_…), if any. */
  readonly legacyName?: string;
  /** The number is in the table. */
  readonly known: boolean;
  /** Raw header flags. */
  readonly flags: number;
  /** REPLY flag. */
  readonly isReply: boolean;
  /** NEED_REPLY flag. */
  readonly needReply: boolean;
  /** Payload size from the header. */
  readonly size: number;
  /** Decoded payload. */
  readonly payload: Payload;
  /** The table form the payload matched (display hints, fd rule). */
  readonly form: PayloadForm;
  /** fd count check. */
  readonly fds: FdCheck;
  /** Table entry, absent for unknown messages. */
  readonly spec?: MessageSpec;
}

/** Options of {@link decodeMessage}. */
export interface DecodeOptions {
  /** `frontend`: the main socket; `backend`: the backend request channel. */
  readonly channel: Channel;
  /**
   * Numbering of backend requests 6-9. `auto` (default) takes the
   * virtio-fs DAX meaning only for requests whose payload has its size;
   * replies keep the current meaning.
   */
  readonly dialect?: BackendDialect | "auto";
  /** `raw` (default): unknown numbers decode as raw; `error`: DecodeError. */
  readonly unknown?: "raw" | "error";
  /** `error` (default): a wrong fd count is a DecodeError; `report`: only `fds.ok` is false. */
  readonly fds?: "error" | "report";
}

/** The fields of a header, validated. */
export interface VhostUserHeader {
  /** Request number. */
  readonly request: number;
  /** Raw flags. */
  readonly flags: number;
  /** Payload size. */
  readonly size: number;
  /** REPLY flag. */
  readonly isReply: boolean;
  /** NEED_REPLY flag. */
  readonly needReply: boolean;
}

/** What {@link encodeMessage} needs; a decoded {@link VhostUserMessage} qualifies. */
export interface EncodeInput {
  /** Socket it will travel on. */
  readonly channel: Channel;
  /** Request number or name (current or legacy, with or without `VHOST_USER_`). */
  readonly request: number | string;
  /** Set the REPLY flag. */
  readonly isReply?: boolean;
  /** Set the NEED_REPLY flag (requests only). */
  readonly needReply?: boolean;
  /** Payload; `empty` when omitted. A `raw` payload skips validation. */
  readonly payload?: Payload;
  /** Numbering for backend requests given by number; picked by payload kind when omitted. */
  readonly dialect?: BackendDialect;
}

// ---------------------------------------------------------------------------
// Payload codecs

interface Ctx {
  /** "vhost-user SET_MEM_TABLE request" */
  readonly what: string;
}

interface PayloadCodec {
  /** Accepted sizes in words, for errors. */
  readonly sizes: string;
  /** Layout that prints it, when one layout covers it all. */
  readonly layout?: Layout;
  accepts(size: number): boolean;
  decode(view: DataView, off: number, size: number, ctx: Ctx): Payload;
  encode(p: Payload, what: string): Uint8Array;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Layout field name → payload property name, per layout, computed once. */
const propNames = new WeakMap<Layout, readonly (readonly [string, string])[]>();
function props(l: Layout): readonly (readonly [string, string])[] {
  let p = propNames.get(l);
  if (!p) {
    p = l.fields.map((f) => [f.name, camel(f.name)] as const);
    propNames.set(l, p);
  }
  return p;
}

function fromLayout(
  l: Layout,
  view: DataView,
  off: number,
  what: string,
): Record<string, FieldValue> {
  const d = l.decode(view, off, Infinity, `${what}: `);
  const out: Record<string, FieldValue> = {};
  for (const [c, p] of props(l)) out[p] = d[c] as FieldValue;
  return out;
}

function toLayout(l: Layout, p: object): Uint8Array {
  const src = p as Record<string, FieldValue | undefined>;
  const values: Record<string, FieldValue | undefined> = {};
  for (const [c, n] of props(l)) values[c] = src[n];
  return l.toBytes(values);
}

function wrongKind(what: string, want: PayloadKind, p: Payload): EncodeError {
  return new EncodeError(`${what}: payload kind ${p.kind} where ${want} was expected`);
}

function fixed(
  kind: PayloadKind,
  l: Layout,
  derive?: (d: Record<string, FieldValue>) => Record<string, unknown>,
): PayloadCodec {
  const size = l.size();
  return {
    sizes: String(size),
    layout: l,
    accepts: (s) => s === size,
    decode(view, off, _size, ctx) {
      const d = fromLayout(l, view, off, ctx.what);
      return { kind, ...d, ...(derive ? derive(d) : {}) } as unknown as Payload;
    },
    encode(p, what) {
      if (p.kind !== kind) throw wrongKind(what, kind, p);
      return toLayout(l, p);
    },
  };
}

function vringBits(v: bigint): { index: number; noFd: boolean } {
  return {
    index: Number(v & BigInt(VHOST_USER_VRING_IDX_MASK)),
    noFd: (v & BigInt(VHOST_USER_VRING_NOFD_MASK)) !== 0n,
  };
}

function checkBigint(what: string, name: string, v: unknown): bigint {
  if (typeof v !== "bigint" || v < 0n || v >= 1n << 64n) {
    throw new EncodeError(`${what}: ${name} must be a u64 bigint, got ${String(v)}`);
  }
  return v;
}

function u64Bytes(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

const REGION = MEMORY_REGION_LAYOUT.size();
const REGION_XEN = MEMORY_REGION_XEN_LAYOUT.size();

function decodeRegion(view: DataView, off: number, xen: boolean, what: string): MemoryRegion {
  return fromLayout(
    xen ? MEMORY_REGION_XEN_LAYOUT : MEMORY_REGION_LAYOUT,
    view,
    off,
    what,
  ) as unknown as MemoryRegion;
}

function encodeRegion(r: MemoryRegion, xen: boolean): Uint8Array {
  return toLayout(xen ? MEMORY_REGION_XEN_LAYOUT : MEMORY_REGION_LAYOUT, r);
}

const memoryTable: PayloadCodec = {
  sizes: `8 + 32·n or 8 + 40·n (Xen), n ≤ ${VHOST_MEMORY_BASELINE_NREGIONS}`,
  accepts: (s) =>
    s >= 8 && s <= 8 + VHOST_MEMORY_BASELINE_NREGIONS * REGION_XEN &&
    ((s - 8) % REGION === 0 || (s - 8) % REGION_XEN === 0),
  decode(view, off, size, ctx) {
    const n = view.getUint32(off, true);
    const padding = view.getUint32(off + 4, true);
    if (n > VHOST_MEMORY_BASELINE_NREGIONS) {
      throw new DecodeError(
        `${ctx.what}: VhostUserMemory.nregions ${n} exceeds ${VHOST_MEMORY_BASELINE_NREGIONS}`,
        off,
      );
    }
    // The region size is not announced: it follows from nregions and the
    // payload size (40-byte regions only when XEN_MMAP was negotiated).
    let xen: boolean;
    if (n * REGION === size - 8) xen = false;
    else if (n > 0 && n * REGION_XEN === size - 8) xen = true;
    else {
      throw new DecodeError(
        `${ctx.what}: VhostUserMemory.nregions ${n} inconsistent with payload size ${size} ` +
          `(${n} regions take ${8 + n * REGION} or ${8 + n * REGION_XEN} bytes)`,
        off,
      );
    }
    const stride = xen ? REGION_XEN : REGION;
    const regions: MemoryRegion[] = [];
    for (let i = 0; i < n; i++) {
      regions.push(decodeRegion(view, off + 8 + i * stride, xen, `${ctx.what}: regions[${i}]`));
    }
    return { kind: "memory_table", regions, xen, padding };
  },
  encode(p, what) {
    if (p.kind !== "memory_table") throw wrongKind(what, "memory_table", p);
    const n = p.regions.length;
    if (n > VHOST_MEMORY_BASELINE_NREGIONS) {
      throw new EncodeError(`${what}: ${n} regions, at most ${VHOST_MEMORY_BASELINE_NREGIONS}`);
    }
    const stride = p.xen ? REGION_XEN : REGION;
    const out = new Uint8Array(8 + n * stride);
    out.set(MEMORY_TABLE_HEADER_LAYOUT.toBytes({ nregions: n, padding: p.padding ?? 0 }));
    p.regions.forEach((r, i) => out.set(encodeRegion(r, p.xen), 8 + i * stride));
    return out;
  },
};

const memReg: PayloadCodec = {
  sizes: `${8 + REGION} or ${8 + REGION_XEN} (Xen)`,
  accepts: (s) => s === 8 + REGION || s === 8 + REGION_XEN,
  decode(view, off, size, ctx) {
    const xen = size === 8 + REGION_XEN;
    return {
      kind: "mem_reg",
      padding: view.getBigUint64(off, true),
      region: decodeRegion(view, off + 8, xen, `${ctx.what}: region`),
      xen,
    };
  },
  encode(p, what) {
    if (p.kind !== "mem_reg") throw wrongKind(what, "mem_reg", p);
    const region = encodeRegion(p.region, p.xen);
    const out = new Uint8Array(8 + region.byteLength);
    out.set(MEM_REG_HEADER_LAYOUT.toBytes({ padding: p.padding ?? 0n }));
    out.set(region, 8);
    return out;
  },
};

const CONFIG_HDR = CONFIG_HEADER_LAYOUT.size();

const config: PayloadCodec = {
  sizes: `${CONFIG_HDR} + size (size ≤ ${VHOST_USER_MAX_CONFIG_SIZE})`,
  accepts: (s) => s >= CONFIG_HDR && s - CONFIG_HDR <= VHOST_USER_MAX_CONFIG_SIZE,
  decode(view, off, size, ctx) {
    const offset = view.getUint32(off, true);
    const len = view.getUint32(off + 4, true);
    const flags = view.getUint32(off + 8, true);
    if (len !== size - CONFIG_HDR) {
      throw new DecodeError(
        `${ctx.what}: VhostUserConfig.size ${len} disagrees with the ${
          size - CONFIG_HDR
        } bytes of config space that follow`,
        off + 4,
      );
    }
    const data = new Uint8Array(view.buffer, view.byteOffset + off + CONFIG_HDR, len).slice();
    return { kind: "config", offset, flags, data };
  },
  encode(p, what) {
    if (p.kind !== "config") throw wrongKind(what, "config", p);
    if (p.data.byteLength > VHOST_USER_MAX_CONFIG_SIZE) {
      throw new EncodeError(
        `${what}: ${p.data.byteLength} bytes of config space, at most ${VHOST_USER_MAX_CONFIG_SIZE}`,
      );
    }
    const out = new Uint8Array(CONFIG_HDR + p.data.byteLength);
    out.set(
      CONFIG_HEADER_LAYOUT.toBytes({ offset: p.offset, size: p.data.byteLength, flags: p.flags }),
    );
    out.set(p.data, CONFIG_HDR);
    return out;
  },
};

const cryptoSession: PayloadCodec = {
  sizes: "a multiple of 8, at least 8",
  accepts: (s) => s >= 8 && s % 8 === 0,
  decode(view, off, size) {
    return {
      kind: "crypto_session",
      body: new Uint8Array(view.buffer, view.byteOffset + off, size - 8).slice(),
      sessionId: view.getBigInt64(off + size - 8, true),
    };
  },
  encode(p, what) {
    if (p.kind !== "crypto_session") throw wrongKind(what, "crypto_session", p);
    if (p.body.byteLength % 8 !== 0) {
      throw new EncodeError(`${what}: crypto session body must be a multiple of 8 bytes`);
    }
    const id = p.sessionId;
    if (typeof id !== "bigint" || id < -(1n << 63n) || id >= 1n << 63n) {
      throw new EncodeError(`${what}: sessionId must be an i64 bigint, got ${String(id)}`);
    }
    const out = new Uint8Array(p.body.byteLength + 8);
    out.set(p.body);
    new DataView(out.buffer).setBigInt64(p.body.byteLength, id, true);
    return out;
  },
};

const SHMEM_CONFIG_SIZE = SHMEM_CONFIG_HEADER_LAYOUT.size() + 8 * VIRTIO_MAX_SHMEM_REGIONS;

const shmemConfig: PayloadCodec = {
  sizes: String(SHMEM_CONFIG_SIZE),
  accepts: (s) => s === SHMEM_CONFIG_SIZE,
  decode(view, off, _size, ctx) {
    const nregions = view.getUint32(off, true);
    if (nregions > VIRTIO_MAX_SHMEM_REGIONS) {
      throw new DecodeError(
        `${ctx.what}: VhostUserShMemConfig.nregions ${nregions} exceeds ${VIRTIO_MAX_SHMEM_REGIONS}`,
        off,
      );
    }
    const memorySizes: bigint[] = [];
    for (let i = 0; i < VIRTIO_MAX_SHMEM_REGIONS; i++) {
      memorySizes.push(view.getBigUint64(off + 8 + 8 * i, true));
    }
    return { kind: "shmem_config", nregions, padding: view.getUint32(off + 4, true), memorySizes };
  },
  encode(p, what) {
    if (p.kind !== "shmem_config") throw wrongKind(what, "shmem_config", p);
    if (p.memorySizes.length > VIRTIO_MAX_SHMEM_REGIONS) {
      throw new EncodeError(`${what}: more than ${VIRTIO_MAX_SHMEM_REGIONS} memory sizes`);
    }
    const out = new Uint8Array(SHMEM_CONFIG_SIZE);
    out.set(
      SHMEM_CONFIG_HEADER_LAYOUT.toBytes({ nregions: p.nregions, padding: p.padding ?? 0 }),
    );
    const view = new DataView(out.buffer);
    p.memorySizes.forEach((s, i) => {
      view.setBigUint64(8 + 8 * i, checkBigint(what, `memorySizes[${i}]`, s), true);
    });
    return out;
  },
};

const FS_ARRAYS = ["fdOffset", "cOffset", "len", "flags"] as const;
const FS_SIZE = FS_ARRAYS.length * 8 * VHOST_USER_FS_BACKEND_ENTRIES;

const fsBackend: PayloadCodec = {
  sizes: String(FS_SIZE),
  accepts: (s) => s === FS_SIZE,
  decode(view, off) {
    const arrays = FS_ARRAYS.map((_, a) => {
      const xs: bigint[] = [];
      for (let i = 0; i < VHOST_USER_FS_BACKEND_ENTRIES; i++) {
        xs.push(view.getBigUint64(off + 8 * (a * VHOST_USER_FS_BACKEND_ENTRIES + i), true));
      }
      return xs;
    });
    const [fdOffset = [], cOffset = [], len = [], flags = []] = arrays;
    return { kind: "fs_backend", fdOffset, cOffset, len, flags };
  },
  encode(p, what) {
    if (p.kind !== "fs_backend") throw wrongKind(what, "fs_backend", p);
    const out = new Uint8Array(FS_SIZE);
    const view = new DataView(out.buffer);
    FS_ARRAYS.forEach((name, a) => {
      const xs = p[name];
      if (xs.length > VHOST_USER_FS_BACKEND_ENTRIES) {
        throw new EncodeError(`${what}: ${name} has more than ${VHOST_USER_FS_BACKEND_ENTRIES}`);
      }
      xs.forEach((v, i) => {
        const at = 8 * (a * VHOST_USER_FS_BACKEND_ENTRIES + i);
        view.setBigUint64(at, checkBigint(what, `${name}[${i}]`, v), true);
      });
    });
    return out;
  },
};

const u64Codec: PayloadCodec = {
  sizes: "8",
  accepts: (s) => s === 8,
  decode: (view, off) => ({ kind: "u64", value: view.getBigUint64(off, true) }),
  encode(p, what) {
    if (p.kind !== "u64") throw wrongKind(what, "u64", p);
    return u64Bytes(checkBigint(what, "value", p.value));
  },
};

const CODECS: Readonly<Record<PayloadKind, PayloadCodec>> = {
  empty: {
    sizes: "0",
    accepts: (s) => s === 0,
    decode: () => ({ kind: "empty" }),
    encode(p, what) {
      if (p.kind !== "empty") throw wrongKind(what, "empty", p);
      return new Uint8Array(0);
    },
  },
  u64: u64Codec,
  "vring_index": {
    sizes: "8",
    accepts: (s) => s === 8,
    decode(view, off) {
      const value = view.getBigUint64(off, true);
      return { kind: "vring_index", value, ...vringBits(value) };
    },
    encode(p, what) {
      if (p.kind !== "vring_index") throw wrongKind(what, "vring_index", p);
      return u64Bytes(checkBigint(what, "value", p.value));
    },
  },
  "vring_state": fixed("vring_state", VRING_STATE_LAYOUT),
  "vring_addr": fixed("vring_addr", VRING_ADDR_LAYOUT),
  "memory_table": memoryTable,
  "mem_reg": memReg,
  log: fixed("log", LOG_LAYOUT),
  iotlb: fixed("iotlb", IOTLB_LAYOUT),
  config,
  "crypto_session": cryptoSession,
  "vring_area": fixed("vring_area", VRING_AREA_LAYOUT, (d) => vringBits(d.u64 as bigint)),
  inflight: fixed("inflight", INFLIGHT_LAYOUT),
  "shared_object": fixed("shared_object", SHARED_OBJECT_LAYOUT),
  "device_state": fixed("device_state", DEVICE_STATE_LAYOUT),
  "shmem_map": fixed("shmem_map", SHMEM_MAP_LAYOUT),
  "shmem_config": shmemConfig,
  "fs_backend": fsBackend,
  raw: {
    sizes: "any",
    accepts: () => true,
    decode: (view, off, size) => ({
      kind: "raw",
      bytes: new Uint8Array(view.buffer, view.byteOffset + off, size).slice(),
    }),
    encode(p, what) {
      if (p.kind !== "raw") throw wrongKind(what, "raw", p);
      return p.bytes;
    },
  },
};

/** The layout a payload kind prints with, when a single one covers it (printers, dissector). */
export function payloadLayout(kind: PayloadKind): Layout | undefined {
  return CODECS[kind].layout;
}

// ---------------------------------------------------------------------------
// fds

function fdBounds(rule: FdRule, p: Payload): { min: number; max: number; rule: string } {
  switch (rule.kind) {
    case "exact":
      return { min: rule.count, max: rule.count, rule: `exactly ${rule.count}` };
    case "range":
      return { min: rule.min, max: rule.max, rule: `${rule.min} to ${rule.max}` };
    case "per_region": {
      const n = p.kind === "memory_table" ? p.regions.length : 0;
      return { min: n, max: n, rule: `one per region (${n})` };
    }
    case "nofd_flag": {
      const v = p.kind === "vring_area"
        ? p.u64
        : p.kind === "u64" || p.kind === "vring_index"
        ? p.value
        : 0n;
      const n = (v & BigInt(VHOST_USER_VRING_NOFD_MASK)) !== 0n ? 0 : 1;
      return { min: n, max: n, rule: n ? "one (NOFD clear)" : "none (NOFD set)" };
    }
    case "if_mmap_size": {
      const n = p.kind === "inflight" && p.mmapSize !== 0n ? 1 : 0;
      return { min: n, max: n, rule: n ? "one (mmap_size > 0)" : "none (mmap_size 0)" };
    }
  }
}

// ---------------------------------------------------------------------------
// Lookup

const UNKNOWN_FORM: PayloadForm = {
  payload: "raw",
  fds: { kind: "range", min: 0, max: VHOST_USER_MAX_FDS },
};

function fits(forms: readonly PayloadForm[], size: number): PayloadForm | undefined {
  return forms.find((f) => CODECS[f.payload].accepts(size));
}

function lookupByNumber(
  channel: Channel,
  request: number,
  dialect: BackendDialect | "auto",
  isReply: boolean,
  size: number,
): MessageSpec | undefined {
  if (channel === "frontend") return VHOST_USER_FRONTEND_MESSAGES.get(request);
  const current = VHOST_USER_BACKEND_MESSAGES.get(request);
  if (dialect === "current") return current;
  const dax = VHOST_USER_FS_DAX_BACKEND_MESSAGES.get(request);
  if (dialect === "virtio-fs-dax") return dax ?? current;
  // auto: the DAX message is 256 bytes, nothing current at 6-9 is, so the
  // size tells them apart; replies (u64 either way) keep the current name.
  if (
    dax && !isReply && fits(dax.requestForms, size) &&
    !(current && fits(current.requestForms, size))
  ) {
    return dax;
  }
  return current;
}

function normalizeName(name: string): string {
  const n = name.toUpperCase();
  return n.startsWith("VHOST_USER_") ? n.slice("VHOST_USER_".length) : n;
}

/**
 * The table entry for a request number or name (current or legacy name,
 * with or without `VHOST_USER_`). Backend numbers 6-9 resolve per `dialect`
 * (current by default).
 */
export function lookupMessage(
  channel: Channel,
  request: number | string,
  dialect: BackendDialect = "current",
): MessageSpec | undefined {
  if (typeof request === "number") {
    if (channel === "frontend") return VHOST_USER_FRONTEND_MESSAGES.get(request);
    const current = VHOST_USER_BACKEND_MESSAGES.get(request);
    return dialect === "virtio-fs-dax"
      ? VHOST_USER_FS_DAX_BACKEND_MESSAGES.get(request) ?? current
      : current;
  }
  // Names are unique across both backend dialects, so a name needs no dialect.
  const tables = channel === "frontend"
    ? [VHOST_USER_FRONTEND_MESSAGES]
    : [VHOST_USER_BACKEND_MESSAGES, VHOST_USER_FS_DAX_BACKEND_MESSAGES];
  const n = normalizeName(request);
  for (const t of tables) {
    for (const s of t.values()) if (s.name === n || s.legacyName === n) return s;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Header

/**
 * Parses and validates the 12-byte header at `offset`: version 1, no
 * reserved flag bits, size ≤ {@link VHOST_USER_MAX_PAYLOAD}, and no
 * NEED_REPLY on a reply. Does not look at the payload.
 */
export function parseHeader(bytes: Uint8Array, offset = 0): VhostUserHeader {
  const avail = bytes.byteLength - offset;
  if (offset < 0 || avail < VHOST_USER_HEADER_SIZE) {
    throw new DecodeError(
      `vhost-user header: truncated, needs ${VHOST_USER_HEADER_SIZE} bytes, ${
        Math.max(0, avail)
      } available`,
      Math.max(0, offset),
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, VHOST_USER_HEADER_SIZE);
  const request = view.getUint32(0, true);
  const flags = view.getUint32(4, true);
  const size = view.getUint32(8, true);
  const what = `vhost-user header (request ${request})`;
  const version = flags & VHOST_USER_VERSION_MASK;
  if (version !== VHOST_USER_VERSION) {
    throw new DecodeError(`${what}: flags.version is ${version}, expected 1`, offset + 4);
  }
  if ((flags & ~VHOST_USER_FLAGS_KNOWN) !== 0) {
    throw new DecodeError(
      `${what}: reserved flag bits 0x${((flags & ~VHOST_USER_FLAGS_KNOWN) >>> 0).toString(16)} set`,
      offset + 4,
    );
  }
  const isReply = (flags & VHOST_USER_REPLY_MASK) !== 0;
  const needReply = (flags & VHOST_USER_NEED_REPLY_MASK) !== 0;
  if (isReply && needReply) {
    throw new DecodeError(`${what}: flags has NEED_REPLY on a reply`, offset + 4);
  }
  if (size > VHOST_USER_MAX_PAYLOAD) {
    throw new DecodeError(
      `${what}: size ${size} exceeds the maximum payload ${VHOST_USER_MAX_PAYLOAD}`,
      offset + 8,
    );
  }
  return { request, flags, size, isReply, needReply };
}

/**
 * Total length (header + payload) of the message starting at `offset`, or
 * undefined while fewer than 12 bytes are there. Throws DecodeError for a
 * header that can never be valid, so a framer can stop early.
 */
export function messageLength(bytes: Uint8Array, offset = 0): number | undefined {
  if (bytes.byteLength - offset < VHOST_USER_HEADER_SIZE) return undefined;
  return VHOST_USER_HEADER_SIZE + parseHeader(bytes, offset).size;
}

// ---------------------------------------------------------------------------
// Decode

/**
 * Decodes one whole message (`bytes` is exactly header + payload) that came
 * with `fdCount` file descriptors, on `options.channel`. Replies decode by
 * the reply forms of their request number, requests by the request forms.
 * Throws only {@link DecodeError}.
 */
export function decodeMessage(
  bytes: Uint8Array,
  fdCount: number,
  options: DecodeOptions,
): VhostUserMessage {
  const h = parseHeader(bytes);
  const channel = options.channel;
  if (!Number.isInteger(fdCount) || fdCount < 0) {
    throw new DecodeError(`vhost-user ${channel} message: fd count ${fdCount} is not a count`, 0);
  }
  const spec = lookupByNumber(channel, h.request, options.dialect ?? "auto", h.isReply, h.size);
  const name = spec?.name ?? `unknown message ${h.request}`;
  const what = `vhost-user ${channel} ${name} ${h.isReply ? "reply" : "request"}`;
  if (fdCount > VHOST_USER_MAX_FDS) {
    throw new DecodeError(`${what}: ${fdCount} fds, at most ${VHOST_USER_MAX_FDS}`, 0);
  }
  const got = bytes.byteLength - VHOST_USER_HEADER_SIZE;
  if (got < h.size) {
    throw new DecodeError(
      `${what}: payload truncated, header size ${h.size} but ${got} bytes follow`,
      VHOST_USER_HEADER_SIZE + got,
    );
  }
  if (got > h.size) {
    throw new DecodeError(
      `${what}: ${got - h.size} bytes after the ${h.size}-byte payload the header announces`,
      VHOST_USER_HEADER_SIZE + h.size,
    );
  }
  if (!spec && options.unknown === "error") {
    throw new DecodeError(`vhost-user ${channel}: unknown request number ${h.request}`, 0);
  }
  const forms = spec ? (h.isReply ? spec.replyForms : spec.requestForms) : [UNKNOWN_FORM];
  const form = fits(forms, h.size);
  if (!form) {
    throw new DecodeError(
      `${what}: payload size ${h.size} is wrong, expected ${
        forms.map((f) => `${CODECS[f.payload].sizes} (${f.payload})`).join(" or ")
      }`,
      8,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const payload = CODECS[form.payload].decode(view, VHOST_USER_HEADER_SIZE, h.size, { what });
  const b = fdBounds(form.fds, payload);
  const ok = fdCount >= b.min && fdCount <= b.max;
  if (!ok && options.fds !== "report") {
    throw new DecodeError(`${what}: came with ${fdCount} fds, expected ${b.rule}`, 0);
  }
  const msg: VhostUserMessage = {
    channel,
    request: h.request,
    name,
    known: spec !== undefined,
    flags: h.flags,
    isReply: h.isReply,
    needReply: h.needReply,
    size: h.size,
    payload,
    form,
    fds: { count: fdCount, ...b, ok },
  };
  if (!spec) return msg;
  return spec.legacyName ? { ...msg, legacyName: spec.legacyName, spec } : { ...msg, spec };
}

// ---------------------------------------------------------------------------
// Encode

function resolveForEncode(input: EncodeInput): { spec?: MessageSpec; label: string } {
  const { channel, request } = input;
  if (typeof request === "string") {
    const spec = lookupMessage(channel, request, input.dialect);
    if (!spec) throw new EncodeError(`vhost-user ${channel}: unknown message name ${request}`);
    return { spec, label: spec.name };
  }
  if (!Number.isInteger(request) || request < 0 || request > 0xffff_ffff) {
    throw new EncodeError(`vhost-user ${channel}: request ${request} is not a u32`);
  }
  if (input.dialect || channel === "frontend") {
    const spec = lookupMessage(channel, request, input.dialect);
    return spec ? { spec, label: spec.name } : { label: `unknown message ${request}` };
  }
  // Backend channel by number without a dialect: the payload kind decides
  // between a current message and a DAX one sharing the number.
  const kind = input.payload?.kind ?? "empty";
  const candidates = [
    VHOST_USER_BACKEND_MESSAGES.get(request),
    VHOST_USER_FS_DAX_BACKEND_MESSAGES.get(request),
  ].filter((s): s is MessageSpec => s !== undefined);
  const spec =
    candidates.find((s) =>
      (input.isReply ? s.replyForms : s.requestForms).some((f) => f.payload === kind)
    ) ?? candidates[0];
  return spec ? { spec, label: spec.name } : { label: `unknown message ${request}` };
}

/**
 * Encodes a message; the header's size is computed. The payload must be one
 * of the message's forms (request or reply side), or `raw` to put arbitrary
 * bytes on the wire. Throws {@link EncodeError}.
 */
export function encodeMessage(input: EncodeInput): Uint8Array {
  const { spec, label } = resolveForEncode(input);
  const isReply = input.isReply ?? false;
  const needReply = input.needReply ?? false;
  const what = `vhost-user ${input.channel} ${label} ${isReply ? "reply" : "request"}`;
  if (isReply && needReply) throw new EncodeError(`${what}: NEED_REPLY on a reply`);
  const payload: Payload = input.payload ?? { kind: "empty" };
  let body: Uint8Array;
  if (payload.kind === "raw") {
    body = payload.bytes;
  } else {
    if (!spec) throw new EncodeError(`${what}: only a raw payload can be sent for it`);
    const forms = isReply ? spec.replyForms : spec.requestForms;
    const form = forms.find((f) => f.payload === payload.kind);
    if (!form) {
      throw new EncodeError(
        `${what}: takes ${forms.map((f) => f.payload).join(" or ")}, not ${payload.kind}`,
      );
    }
    body = CODECS[form.payload].encode(payload, what);
  }
  if (body.byteLength > VHOST_USER_MAX_PAYLOAD) {
    throw new EncodeError(`${what}: payload of ${body.byteLength} bytes exceeds the maximum`);
  }
  const request = spec ? spec.request : input.request as number;
  const out = new Uint8Array(VHOST_USER_HEADER_SIZE + body.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, request, true);
  view.setUint32(
    4,
    VHOST_USER_VERSION | (isReply ? VHOST_USER_REPLY_MASK : 0) |
      (needReply ? VHOST_USER_NEED_REPLY_MASK : 0),
    true,
  );
  view.setUint32(8, body.byteLength, true);
  out.set(body, VHOST_USER_HEADER_SIZE);
  return out;
}

/**
 * The fds a message needs alongside its bytes, by its table form (for the
 * sending side of a framing layer). Throws {@link EncodeError} as
 * {@link encodeMessage} would.
 */
export function expectedFds(input: EncodeInput): { min: number; max: number; rule: string } {
  const payload: Payload = input.payload ?? { kind: "empty" };
  const { spec } = resolveForEncode(input);
  if (!spec || payload.kind === "raw") return fdBounds(UNKNOWN_FORM.fds, payload);
  const forms = input.isReply ? spec.replyForms : spec.requestForms;
  const form = forms.find((f) => f.payload === payload.kind);
  if (!form) throw new EncodeError(`vhost-user ${spec.name}: no ${payload.kind} form`);
  return fdBounds(form.fds, payload);
}

/** Builds the u64 of SET_VRING_KICK/CALL/ERR. */
export function vringIndexPayload(index: number, noFd = false): VringIndexPayload {
  if (!Number.isInteger(index) || index < 0 || index > VHOST_USER_VRING_IDX_MASK) {
    throw new EncodeError(`vring index ${index} does not fit in 8 bits`);
  }
  const value = BigInt(index) | (noFd ? BigInt(VHOST_USER_VRING_NOFD_MASK) : 0n);
  return { kind: "vring_index", value, index, noFd };
}

// ---------------------------------------------------------------------------
// virtio-fs config space

/** struct virtio_fs_config as read from a GET_CONFIG payload. */
export interface VirtioFsConfig {
  /** The tag up to its first NUL, as UTF-8. */
  readonly tag: string;
  /** All 36 tag bytes. */
  readonly tagBytes: Uint8Array;
  /** Number of request queues. */
  readonly numRequestQueues: number;
  /** Notification buffer size; absent when the config space is 40 bytes (no VIRTIO_FS_F_NOTIFICATION). */
  readonly notifyBufSize?: number;
}

const FS_CONFIG_SHORT = 40;
const FS_CONFIG_FULL = VIRTIO_FS_CONFIG_LAYOUT.size();

/** Decodes a virtio-fs config space (40 or 44 bytes from offset 0). Throws DecodeError. */
export function decodeVirtioFsConfig(data: Uint8Array): VirtioFsConfig {
  if (data.byteLength !== FS_CONFIG_SHORT && data.byteLength !== FS_CONFIG_FULL) {
    throw new DecodeError(
      `virtio_fs_config: ${data.byteLength} bytes, expected ${FS_CONFIG_SHORT} or ${FS_CONFIG_FULL}`,
      0,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const tagBytes = data.slice(0, 36);
  const end = tagBytes.indexOf(0);
  const tag = new TextDecoder().decode(end < 0 ? tagBytes : tagBytes.subarray(0, end));
  const base = { tag, tagBytes, numRequestQueues: view.getUint32(36, true) };
  return data.byteLength === FS_CONFIG_FULL
    ? { ...base, notifyBufSize: view.getUint32(40, true) }
    : base;
}

/** Encodes a virtio-fs config space; 44 bytes with notifyBufSize, else 40. Throws EncodeError. */
export function encodeVirtioFsConfig(
  cfg: { readonly tag: string; readonly numRequestQueues: number; readonly notifyBufSize?: number },
): Uint8Array {
  const tag = new TextEncoder().encode(cfg.tag);
  if (tag.byteLength > 36) {
    throw new EncodeError(`virtio_fs_config.tag: ${tag.byteLength} bytes > 36`);
  }
  const full = VIRTIO_FS_CONFIG_LAYOUT.toBytes({
    tag,
    num_request_queues: cfg.numRequestQueues,
    notify_buf_size: cfg.notifyBufSize ?? 0,
  });
  return cfg.notifyBufSize === undefined ? full.slice(0, FS_CONFIG_SHORT) : full;
}

// ---------------------------------------------------------------------------
// Printing

function formatRegion(r: MemoryRegion, xen: boolean): string {
  return formatFields(xen ? MEMORY_REGION_XEN_LAYOUT : MEMORY_REGION_LAYOUT, r);
}

function formatFields(l: Layout, p: object): string {
  const src = p as Record<string, FieldValue | undefined>;
  const parts: string[] = [];
  l.fields.forEach((f: FieldSpec, i) => {
    if (f.pad) return;
    const v = src[props(l)[i]?.[1] ?? f.name];
    if (v !== undefined) parts.push(`${f.name}=${formatField(f, v)}`);
  });
  return parts.join(" ");
}

/** One-line rendering of a payload, using the layouts' display hints. */
export function formatPayload(p: Payload, form?: PayloadForm): string {
  switch (p.kind) {
    case "empty":
      return "";
    case "u64":
    case "vring_index":
      return form?.display
        ? formatField({ name: "u64", type: "u64", display: form.display }, p.value)
        : String(p.value);
    case "memory_table":
      return `nregions=${p.regions.length}${p.xen ? " xen" : ""}` +
        p.regions.map((r, i) => ` [${i}] ${formatRegion(r, p.xen)}`).join("");
    case "mem_reg":
      return `${p.xen ? "xen " : ""}${formatRegion(p.region, p.xen)}`;
    case "config":
      return `offset=${p.offset} size=${p.data.byteLength} flags=${
        formatField(CONFIG_HEADER_LAYOUT.fields[2] as FieldSpec, p.flags)
      } data=${hexBytes(p.data)}`;
    case "crypto_session":
      return `session_id=${p.sessionId} (${p.body.byteLength} bytes of session data)`;
    case "shared_object":
      return `uuid=${formatUuid(p.uuid)}`;
    case "shmem_config":
      return `nregions=${p.nregions} sizes=[${
        p.memorySizes.slice(0, Math.max(p.nregions, 1)).map((s) => `0x${s.toString(16)}`).join(",")
      }]`;
    case "fs_backend": {
      const parts: string[] = [];
      for (let i = 0; i < VHOST_USER_FS_BACKEND_ENTRIES; i++) {
        if (p.len[i] === 0n || p.len[i] === undefined) continue;
        parts.push(
          `[${i}] fd_offset=0x${p.fdOffset[i]?.toString(16)} c_offset=0x${
            p.cOffset[i]?.toString(16)
          } len=0x${p.len[i]?.toString(16)} flags=${p.flags[i]}`,
        );
      }
      return parts.join(" ");
    }
    case "raw":
      return `raw=${hexBytes(p.bytes)}`;
    default: {
      const l = CODECS[p.kind].layout;
      return l ? formatFields(l, p) : "";
    }
  }
}

/** One-line rendering of a message: name, direction, flags, fds and payload. */
export function formatMessage(m: VhostUserMessage): string {
  const dir = m.isReply ? "reply" : m.needReply ? "request NEED_REPLY" : "request";
  const fds = m.fds.count ? ` fds=${m.fds.count}` : "";
  const body = formatPayload(m.payload, m.form);
  return `${m.name} ${dir}${fds}${body ? ` ${body}` : ""}`;
}
