/**
 * Test support for the vhost-user codec, not public API: one valid payload
 * per form of every table entry, shaped exactly as the decoder returns them
 * (so `deepEqual` works), with the fd count each needs. Used by the unit
 * and randomized tests.
 *
 * @module
 */
import {
  type BackendDialect,
  type Channel,
  expectedFds,
  type MemoryRegion,
  type MessageSpec,
  type Payload,
  type PayloadForm,
  type PayloadKind,
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
  VIRTIO_MAX_SHMEM_REGIONS,
} from "./vhost_user.ts";

/** A region with distinct values in every field. */
export function sampleRegion(i: number, xen = false): MemoryRegion {
  const base: MemoryRegion = {
    guestPhysAddr: BigInt(i) * 0x1_0000_0000n,
    memorySize: 0x4000_0000n + BigInt(i),
    userspaceAddr: 0x7f00_0000_0000n + BigInt(i) * 0x1_0000_0000n,
    mmapOffset: BigInt(i) * 0x1000n,
  };
  return xen ? { ...base, xenMmapFlags: 0x101, domid: 7 + i } : base;
}

/** Sample payloads of `kind`; several when the kind has variants worth covering. */
export function samplePayloads(kind: PayloadKind): Payload[] {
  switch (kind) {
    case "empty":
      return [{ kind }];
    case "u64":
      return [{ kind, value: 0x1_7500_0000n }];
    case "vring_index":
      return [
        { kind, value: 3n, index: 3, noFd: false },
        { kind, value: 0x102n, index: 2, noFd: true },
      ];
    case "vring_state":
      return [{ kind, index: 1, num: 256 }];
    case "vring_addr":
      return [{
        kind,
        index: 1,
        flags: 1,
        descUserAddr: 0x7f00_0000_1000n,
        usedUserAddr: 0x7f00_0000_3000n,
        availUserAddr: 0x7f00_0000_2000n,
        logGuestAddr: 0x3000n,
      }];
    case "memory_table":
      return [
        { kind, regions: [sampleRegion(0), sampleRegion(1)], xen: false, padding: 0 },
        { kind, regions: [sampleRegion(2, true)], xen: true, padding: 0 },
      ];
    case "mem_reg":
      return [
        { kind, region: sampleRegion(3), xen: false, padding: 0n },
        { kind, region: sampleRegion(4, true), xen: true, padding: 0n },
      ];
    case "log":
      return [{ kind, mmapSize: 0x2000n, mmapOffset: 0n }];
    case "iotlb":
      return [{
        kind,
        iova: 0x1000n,
        size: 0x2000n,
        uaddr: 0x7f00_0000_0000n,
        perm: 3,
        type: 2,
        padding: new Uint8Array(6),
      }];
    case "config":
      return [{ kind, offset: 0, flags: 0, data: new Uint8Array(44).fill(0x61, 0, 4) }];
    case "crypto_session":
      return [{ kind, body: new Uint8Array(24).fill(5), sessionId: 42n }];
    case "vring_area":
      return [
        { kind, u64: 1n, index: 1, noFd: false, size: 0x1000n, offset: 0x3000n },
        { kind, u64: 0x101n, index: 1, noFd: true, size: 0n, offset: 0n },
      ];
    case "inflight":
      return [
        {
          kind,
          mmapSize: 0x4000n,
          mmapOffset: 0n,
          numQueues: 2,
          queueSize: 128,
          padding: new Uint8Array(4),
        },
        {
          kind,
          mmapSize: 0n,
          mmapOffset: 0n,
          numQueues: 2,
          queueSize: 128,
          padding: new Uint8Array(4),
        },
      ];
    case "shared_object":
      return [{ kind, uuid: Uint8Array.from({ length: 16 }, (_, i) => i * 17) }];
    case "device_state":
      return [{ kind, direction: 1, phase: 0 }];
    case "shmem_map":
      return [{
        kind,
        shmid: 0,
        fdOffset: 0x1000n,
        shmOffset: 0x20_0000n,
        len: 0x20_0000n,
        flags: 1n,
        padding: new Uint8Array(7),
      }];
    case "shmem_config": {
      const memorySizes = Array.from({ length: VIRTIO_MAX_SHMEM_REGIONS }, () => 0n);
      memorySizes[0] = 0x4000_0000n;
      return [{ kind, nregions: 1, padding: 0, memorySizes }];
    }
    case "fs_backend": {
      const z = () => Array.from({ length: 8 }, () => 0n);
      const fdOffset = z();
      const cOffset = z();
      const len = z();
      const flags = z();
      fdOffset[0] = 0x20_0000n;
      cOffset[0] = 0x40_0000n;
      len[0] = 0x20_0000n;
      flags[0] = 3n;
      return [{ kind, fdOffset, cOffset, len, flags }];
    }
    case "raw":
      return [{ kind, bytes: new Uint8Array([1, 2, 3]) }];
  }
}

/** One valid message to encode and decode back. */
export interface Sample {
  /** Socket. */
  readonly channel: Channel;
  /** Its table entry. */
  readonly spec: MessageSpec;
  /** Request or reply side. */
  readonly isReply: boolean;
  /** The form it exercises. */
  readonly form: PayloadForm;
  /** The payload, as the decoder returns it. */
  readonly payload: Payload;
  /** fds it must come with. */
  readonly fdCount: number;
  /** Dialect to decode with so the same entry comes back. */
  readonly dialect: BackendDialect;
}

/** All tables, for coverage checks. */
export const ALL_TABLES: readonly ReadonlyMap<number, MessageSpec>[] = [
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_BACKEND_MESSAGES,
  VHOST_USER_FS_DAX_BACKEND_MESSAGES,
];

/**
 * Every form of every entry with every sample payload of its kind. The
 * samples avoid sizes an earlier form of the same entry claims (an empty
 * postcopy memory table would read back as REPLY_ACK).
 */
export function allSamples(): Sample[] {
  const out: Sample[] = [];
  for (const table of ALL_TABLES) {
    for (const spec of table.values()) {
      for (const isReply of [false, true]) {
        const forms = isReply ? spec.replyForms : spec.requestForms;
        for (const form of forms) {
          for (const payload of samplePayloads(form.payload)) {
            const input = { channel: spec.channel, request: spec.name, isReply, payload };
            const { min } = expectedFds(input);
            out.push({
              channel: spec.channel,
              spec,
              isReply,
              form,
              payload,
              fdCount: min,
              dialect: spec.dialect ?? "current",
            });
          }
        }
      }
    }
  }
  return out;
}
