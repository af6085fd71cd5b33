/**
 * Ring-related virtio feature bits, and the decision about packed rings.
 *
 * Decision: packed virtqueues (VIRTIO_F_RING_PACKED, bit 34) are refused,
 * explicitly. QEMU's vhost-user-fs device and Linux virtio-fs guests use
 * split rings unless packed=on is asked for. Refusing loudly (a typed error,
 * plus a mask the proxy can apply to the feature words it relays) is better
 * than misreading a packed ring as a split one: both formats use three
 * areas set up by the same SET_VRING_ADDR, holding different structures.
 * Adding packed support later means a second queue class next to
 * SplitQueue; the walker's checks (indirect rules, length limits, memory
 * translation) carry over.
 *
 * @module
 */
import { PackedRingUnsupportedError } from "./errors.ts";

/** Feature bit numbers (virtio 1.2 §6 "Reserved Feature Bits"). */
export const FeatureBit = {
  /** Indirect descriptor tables. */
  INDIRECT_DESC: 28,
  /** used_event / avail_event notification suppression. */
  EVENT_IDX: 29,
  /** Virtio 1.0+ device (little-endian rings). */
  VERSION_1: 32,
  /** Device accesses memory through a platform IOMMU. */
  ACCESS_PLATFORM: 33,
  /** Packed virtqueue layout (refused). */
  RING_PACKED: 34,
  /** Buffers are used in the order they were made available. */
  IN_ORDER: 35,
} as const;

/** VIRTIO_F_INDIRECT_DESC as a mask. */
export const VIRTIO_F_INDIRECT_DESC = 1n << 28n;
/** VIRTIO_F_EVENT_IDX (a.k.a. VIRTIO_RING_F_EVENT_IDX) as a mask. */
export const VIRTIO_F_EVENT_IDX = 1n << 29n;
/** VIRTIO_F_VERSION_1 as a mask. */
export const VIRTIO_F_VERSION_1 = 1n << 32n;
/** VIRTIO_F_RING_PACKED as a mask: the one ring feature this layer refuses. */
export const VIRTIO_F_RING_PACKED = 1n << 34n;

/**
 * Ring features this layer understands. A proxy that must keep packed rings
 * away from the guest ANDs the backend's offered features with
 * `~UNSUPPORTED_RING_FEATURES` (see {@link withoutPackedRing}).
 */
export const UNSUPPORTED_RING_FEATURES: bigint = VIRTIO_F_RING_PACKED;

/** What a negotiated feature word means for the rings. */
export interface RingFeatures {
  /** VIRTIO_F_EVENT_IDX: used_event / avail_event are in use. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC: indirect tables are allowed. */
  readonly indirect: boolean;
}

/**
 * Interprets negotiated features for the ring code. Throws
 * PackedRingUnsupportedError when VIRTIO_F_RING_PACKED is set.
 */
export function ringFeatures(features: bigint, context?: string): RingFeatures {
  if ((features & VIRTIO_F_RING_PACKED) !== 0n) {
    throw new PackedRingUnsupportedError(features, context);
  }
  return {
    eventIdx: (features & VIRTIO_F_EVENT_IDX) !== 0n,
    indirect: (features & VIRTIO_F_INDIRECT_DESC) !== 0n,
  };
}

/** `features` with VIRTIO_F_RING_PACKED cleared, for offering to a driver. */
export function withoutPackedRing(features: bigint): bigint {
  return features & ~UNSUPPORTED_RING_FEATURES;
}
