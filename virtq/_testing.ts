/**
 * Test fixtures for virtq: guest memory made of plain byte arrays, and a
 * queue with a driver, a device view and a walker over it.
 *
 * @module
 */
import { ChainWalker, type ChainWalkerOptions, SplitQueueDriver } from "./chain.ts";
import { GuestMemory } from "./memory.ts";
import { contiguousRingLayout, SplitQueue } from "./split.ts";

/** Region 0: rings, then data. Guest 0x10_0000, user 0x7f12_3400_0000. */
export const RAM0 = { gpa: 0x10_0000, user: 0x7f12_3400_0000, size: 4 << 20 };
/** Region 1: data only, above 4 GiB. Guest 0x1_0000_0000, user 0x7f99_0000_0000. */
export const RAM1 = { gpa: 0x1_0000_0000, user: 0x7f99_0000_0000, size: 2 << 20 };

/** Guest memory of RAM0 and RAM1 as plain arrays. */
export function plainMemory(): GuestMemory {
  return new GuestMemory([
    {
      guestPhysAddr: RAM0.gpa,
      userAddr: RAM0.user,
      size: RAM0.size,
      bytes: new Uint8Array(RAM0.size),
    },
    {
      guestPhysAddr: RAM1.gpa,
      userAddr: RAM1.user,
      size: RAM1.size,
      bytes: new Uint8Array(RAM1.size),
    },
  ]);
}

/** A driver, the device's queue (over user addresses) and a walker, sharing `memory`. */
export interface Rig {
  /** The memory map. */
  memory: GuestMemory;
  /** Driver side. */
  driver: SplitQueueDriver;
  /** Device side. */
  queue: SplitQueue;
  /** Walker of {@link queue}. */
  walker: ChainWalker;
  /** Guest-physical address of the first free data byte in RAM0. */
  data: number;
  /** Ring guest-physical addresses. */
  rings: { desc: number; avail: number; used: number };
}

/** Builds a rig with rings at the start of RAM0 (contiguous legacy layout). */
export function rig(
  size: number,
  options: { eventIdx?: boolean; walker?: ChainWalkerOptions; memory?: GuestMemory } = {},
): Rig {
  const memory = options.memory ?? plainMemory();
  const l = contiguousRingLayout(size);
  const rings = { desc: RAM0.gpa + l.desc, avail: RAM0.gpa + l.avail, used: RAM0.gpa + l.used };
  const eventIdx = options.eventIdx ?? false;
  const driver = new SplitQueueDriver(memory, { size, ...rings, eventIdx });
  const toUser = (gpa: number) => gpa - RAM0.gpa + RAM0.user;
  const queue = new SplitQueue(memory, {
    size,
    desc: toUser(rings.desc),
    avail: toUser(rings.avail),
    used: toUser(rings.used),
    space: "user",
    eventIdx,
  });
  const walker = new ChainWalker(queue, options.walker ?? {});
  return { memory, driver, queue, walker, data: RAM0.gpa + l.total, rings };
}

/** Deterministic PRNG (mulberry32) for reproducible randomized tests. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
