/**
 * Typed errors of the virtqueue layer. Everything the guest controls (ring
 * indices, descriptor tables, buffer addresses) is reported through one of
 * these, never through a RangeError or TypeError, so the engines can tell a
 * misbehaving guest from a bug of their own with one `instanceof VirtqError`.
 *
 * Mistakes of the caller (an out-of-range argument it computed itself) stay
 * plain RangeErrors.
 *
 * @module
 */

/** Base class of every error this folder throws for guest-controlled input or state. */
export class VirtqError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "VirtqError";
  }
}

/** Which address space an access was made in. */
export type AddressSpace = "guest-physical" | "user";

/** Why an address range could not be translated. */
export type MemoryAccessReason =
  /** No region contains the first byte. */
  | "unmapped"
  /** The range starts in a region and runs past its end into unmapped space. */
  | "leaves-region"
  /** The range starts in a region and continues into an adjacent one (not contiguous for us). */
  | "straddles-regions"
  /** address + length exceeds 2^64. */
  | "wraps"
  /** Negative, fractional or beyond any sane size (> 2^52). */
  | "bad-length"
  /** Negative, fractional or ≥ 2^64. */
  | "bad-address"
  /** The region's bytes were unmapped (detached) while still registered. */
  | "detached";

const REASON_TEXT: Record<MemoryAccessReason, string> = {
  "unmapped": "not inside any memory region",
  "leaves-region": "runs past the end of its memory region",
  "straddles-regions": "straddles two memory regions",
  "wraps": "wraps around 2^64",
  "bad-length": "has an invalid length",
  "bad-address": "has an invalid address",
  "detached": "lies in a region whose mapping was released",
};

/** An address range that is not wholly inside one mapped region. */
export class MemoryAccessError extends VirtqError {
  /** Address space of {@link address}. */
  readonly space: AddressSpace;
  /** First byte of the range (clamped into [0, 2^64) for bad addresses). */
  readonly address: bigint;
  /** Length of the range in bytes. */
  readonly length: bigint;
  /** What is wrong with it. */
  readonly reason: MemoryAccessReason;

  /** Creates the error; `what` names the access, e.g. "descriptor 3 buffer". */
  constructor(
    space: AddressSpace,
    address: bigint,
    length: bigint,
    reason: MemoryAccessReason,
    what?: string,
  ) {
    const prefix = what === undefined ? "" : `${what}: `;
    super(
      `${prefix}${space} range 0x${address.toString(16)}+${length} ${REASON_TEXT[reason]}`,
    );
    this.name = "MemoryAccessError";
    this.space = space;
    this.address = address;
    this.length = length;
    this.reason = reason;
  }
}

/** A memory region that cannot be added or removed (overlap, bad size, not found). */
export class MemoryRegionError extends VirtqError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "MemoryRegionError";
  }
}

/** A queue configuration the spec forbids: size, ring alignment, ring placement. */
export class RingConfigError extends VirtqError {
  /** The offending parameter, e.g. `"size"`, `"desc"`, `"avail"`, `"used"`. */
  readonly field: string;
  /** Creates the error. */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RingConfigError";
    this.field = field;
  }
}

/**
 * The driver's avail idx moved further ahead of the device's last_avail_idx
 * than the queue has entries: the ring is corrupt (or the base was set wrong).
 */
export class AvailIndexError extends VirtqError {
  /** avail->idx as read from guest memory. */
  readonly availIdx: number;
  /** The device's last_avail_idx. */
  readonly lastAvailIdx: number;
  /** (availIdx - lastAvailIdx) mod 2^16. */
  readonly jump: number;
  /** Queue size. */
  readonly size: number;
  /** Creates the error. */
  constructor(availIdx: number, lastAvailIdx: number, size: number) {
    const jump = (availIdx - lastAvailIdx) & 0xffff;
    super(
      `avail idx jumped by ${jump} > size ${size} (avail idx ${availIdx}, last_avail_idx ${lastAvailIdx})`,
    );
    this.name = "AvailIndexError";
    this.availIdx = availIdx;
    this.lastAvailIdx = lastAvailIdx;
    this.jump = jump;
    this.size = size;
  }
}

/** What is wrong with a descriptor chain. */
export type ChainErrorKind =
  /** The head taken from the avail ring is ≥ the queue size. */
  | "head-out-of-range"
  /** A `next` is ≥ the queue size (direct) or the table's entry count (indirect). */
  | "next-out-of-range"
  /** A descriptor was reached twice. */
  | "loop"
  /** More buffer descriptors than the limit (queue size by default). */
  | "chain-too-long"
  /** A device-readable descriptor follows a device-writable one. */
  | "writable-before-readable"
  /** VIRTQ_DESC_F_INDIRECT inside an indirect table. */
  | "nested-indirect"
  /** VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT. */
  | "indirect-with-next"
  /** VIRTQ_DESC_F_INDIRECT although VIRTIO_F_INDIRECT_DESC was not negotiated. */
  | "indirect-not-negotiated"
  /** Indirect table length zero, not a multiple of 16, or over the entry limit. */
  | "bad-indirect-length"
  /** A buffer or indirect table is not wholly inside one region (cause: MemoryAccessError). */
  | "address-out-of-range"
  /** The lengths add up to more than the limit (2^32 - 1 by default). */
  | "length-overflow";

/** A malformed descriptor chain. Nothing of the chain is returned when this is thrown. */
export class ChainError extends VirtqError {
  /** What is wrong. */
  readonly kind: ChainErrorKind;
  /** Head index of the chain (as popped from the avail ring). */
  readonly head: number;
  /** Index of the offending descriptor in its table (-1 when not applicable). */
  readonly index: number;
  /** True when the offending descriptor is inside an indirect table. */
  readonly indirect: boolean;

  /** Creates the error; `detail` says what was found. */
  constructor(
    kind: ChainErrorKind,
    head: number,
    index: number,
    indirect: boolean,
    detail: string,
    options?: ErrorOptions,
  ) {
    const where = index < 0 ? "" : ` at ${indirect ? "indirect " : ""}descriptor ${index}`;
    super(`descriptor chain ${head}: ${kind}${where}: ${detail}`, options);
    this.name = "ChainError";
    this.kind = kind;
    this.head = head;
    this.index = index;
    this.indirect = indirect;
  }
}

/** The peer negotiated VIRTIO_F_RING_PACKED, which this layer refuses (see features.ts). */
export class PackedRingUnsupportedError extends VirtqError {
  /** The negotiated feature bits. */
  readonly features: bigint;
  /** Creates the error. */
  constructor(features: bigint, context?: string) {
    const where = context === undefined ? "" : `${context}: `;
    super(
      `${where}VIRTIO_F_RING_PACKED (bit 34) negotiated in features 0x${
        features.toString(16)
      }; only split virtqueues are supported`,
    );
    this.name = "PackedRingUnsupportedError";
    this.features = features;
  }
}

/** The test driver's own misuse of the ring: no free descriptors, unknown used id. */
export class DriverError extends VirtqError {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "DriverError";
  }
}
