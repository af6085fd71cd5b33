/**
 * The tracing proxy: sits on the vhost-user socket between the front-end
 * (QEMU) and a virtio-fs back-end, relays every message and fd so the guest
 * works unchanged, and records everything it sees.
 *
 * Control plane: each message is recorded as received, then relayed. A few
 * are rewritten so the data plane runs through the proxy (see
 * {@link MASKED_VIRTIO_FEATURES} and {@link MASKED_PROTOCOL_FEATURES} for
 * what is hidden from QEMU, and why):
 * - SET_MEM_TABLE: the proxy maps guest RAM and adds its shadow-ring region;
 * - SET_VRING_ADDR / KICK / CALL: the back-end gets shadow rings and eventfds
 *   owned by the proxy;
 * - SET_FEATURES: the back-end runs its (shadow) rings without EVENT_IDX;
 * - GET_VRING_BASE: the reply is translated to the guest ring's index;
 * - SET_BACKEND_REQ_FD: the back-end channel is relayed through a socketpair.
 *
 * Data plane (shadow virtqueues): guest kick → walk each new chain → record
 * the FUSE request → place the chain in the shadow ring (buffers still point
 * into guest memory) → kick the back-end. Back-end call → read shadow used
 * entries → record the reply → publish to the guest's used ring → notify the
 * guest as EVENT_IDX / NO_INTERRUPT say. The guest can never reuse a buffer
 * before the proxy has recorded the reply: it only learns of completion from
 * the proxy.
 *
 * @module
 */
import {
  close,
  closeAll,
  dup,
  Epoll,
  eventfd,
  eventfdRead,
  eventfdWrite,
  EventLoop,
  MemoryMapping,
  socketpair,
} from "../sys/mod.ts";
import { VhostUserChannel, type VhostUserFrame } from "../vhost/channel.ts";
import {
  AvailIndexError,
  ChainError,
  ChainWalker,
  DescFlags,
  type DescriptorChain,
  GuestMemory,
  mapWireRegion,
  type MemoryRegionInit,
  SplitQueue,
  VirtqError,
} from "../virtq/mod.ts";
import {
  decodeMessage,
  encodeMessage,
  type MemoryRegion as WireRegion,
  VHOST_MEMORY_BASELINE_NREGIONS,
  VHOST_USER_FRONTEND_REQUEST as REQ,
  VHOST_USER_PROTOCOL_F,
  VHOST_USER_PROTOCOL_FEATURES,
  type VhostUserMessage,
  VIRTIO_F,
  VIRTIO_FEATURES,
} from "../decode/vhost_user.ts";
import {
  type RelayDescriptor,
  SHADOW_MAX_CHAIN,
  ShadowRegion,
  ShadowRing,
  type ShadowUsed,
} from "./_shadow.ts";
import { NotifyKind, type TraceRecorder, VhostDirection } from "./recorder.ts";

/** A feature bit the proxy hides from the front-end, and why. */
export interface MaskedFeature {
  /** Bit number. */
  readonly bit: number;
  /** Name as in the spec. */
  readonly name: string;
  /** Why it cannot be relayed faithfully. */
  readonly reason: string;
}

/** Virtio feature bits the proxy clears in GET_FEATURES replies. */
export const MASKED_VIRTIO_FEATURES: readonly MaskedFeature[] = [
  {
    bit: VIRTIO_F.VIRTIO_F_RING_PACKED,
    name: "VIRTIO_F_RING_PACKED",
    reason: "shadow rings are split rings only",
  },
  {
    bit: VIRTIO_F.VHOST_F_LOG_ALL,
    name: "VHOST_F_LOG_ALL",
    reason: "dirty logging (migration) is not relayed",
  },
  {
    bit: VIRTIO_F.VIRTIO_F_ACCESS_PLATFORM,
    name: "VIRTIO_F_ACCESS_PLATFORM",
    reason: "IOTLB translation is not implemented",
  },
  {
    bit: VIRTIO_F.VIRTIO_F_IN_ORDER,
    name: "VIRTIO_F_IN_ORDER",
    reason: "batched in-order used entries would hide requests",
  },
  {
    bit: VIRTIO_F.VIRTIO_F_NOTIFICATION_DATA,
    name: "VIRTIO_F_NOTIFICATION_DATA",
    reason: "kicks are relayed as plain eventfd signals",
  },
  {
    bit: VIRTIO_F.VIRTIO_F_RING_RESET,
    name: "VIRTIO_F_RING_RESET",
    reason: "per-queue reset is not relayed",
  },
];

/** vhost-user protocol feature bits the proxy clears in GET_PROTOCOL_FEATURES replies. */
export const MASKED_PROTOCOL_FEATURES: readonly MaskedFeature[] = [
  {
    bit: VHOST_USER_PROTOCOL_F.LOG_SHMFD,
    name: "LOG_SHMFD",
    reason: "dirty logging (migration) is not relayed",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.PAGEFAULT,
    name: "PAGEFAULT",
    reason: "postcopy migration is not relayed",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.HOST_NOTIFIER,
    name: "HOST_NOTIFIER",
    reason: "guest kicks must reach the proxy, not a back-end doorbell page",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.INFLIGHT_SHMFD,
    name: "INFLIGHT_SHMFD",
    reason: "the inflight area would describe shadow rings, not the guest's",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.INBAND_NOTIFICATIONS,
    name: "INBAND_NOTIFICATIONS",
    reason: "notifications are relayed as eventfds only",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.CONFIGURE_MEM_SLOTS,
    name: "CONFIGURE_MEM_SLOTS",
    reason: "the shadow region is added to SET_MEM_TABLE",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.XEN_MMAP,
    name: "XEN_MMAP",
    reason: "Xen grant mappings are not supported",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.DEVICE_STATE,
    name: "DEVICE_STATE",
    reason: "migration state would include shadow rings",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.GET_VRING_BASE_INFLIGHT,
    name: "GET_VRING_BASE_INFLIGHT",
    reason: "GET_VRING_BASE is translated by the proxy",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.GPA_ADDRESSES,
    name: "GPA_ADDRESSES",
    reason: "shadow rings are given by user address",
  },
  {
    bit: VHOST_USER_PROTOCOL_F.GET_VRING_BASE_SKIP_DRAIN,
    name: "GET_VRING_BASE_SKIP_DRAIN",
    reason: "the proxy drains shadow rings on GET_VRING_BASE",
  },
];

const VIRTIO_MASK = MASKED_VIRTIO_FEATURES.reduce((m, f) => m | (1n << BigInt(f.bit)), 0n);
const PROTOCOL_MASK = MASKED_PROTOCOL_FEATURES.reduce((m, f) => m | (1n << BigInt(f.bit)), 0n);
const EVENT_IDX_BIT = 1n << BigInt(VIRTIO_F.VIRTIO_RING_F_EVENT_IDX);
const INDIRECT_BIT = 1n << BigInt(VIRTIO_F.VIRTIO_RING_F_INDIRECT_DESC);
const DEFAULT_QUEUES = 2;
const MAX_QUEUES = 64;

/** Options of {@link TraceProxy}. */
export interface TraceProxyOptions {
  /** Connected socket to the front-end (QEMU); owned by the proxy from now on. */
  frontendFd: number;
  /** Connected socket to the back-end; owned by the proxy from now on. */
  backendFd: number;
  /** Event loop driving both sockets and every eventfd. */
  loop: EventLoop;
  /** Where everything observed goes. */
  recorder: TraceRecorder;
  /** Diagnostics for people (problems, not traffic). */
  log?: (message: string) => void;
}

/** How a proxied session ended. */
export interface ProxyEnd {
  /** Which side closed first. */
  closedBy: "frontend" | "backend" | "proxy";
  /** What broke, when it was not a clean close. */
  error?: Error;
  /** Requests taken from guest rings and replies returned. */
  requests: number;
  /** Replies returned to the guest. */
  replies: number;
  /** Chains that could not be relayed. */
  malformed: number;
}

interface InFlight {
  seq: number;
  t0: bigint;
  writable: Uint8Array[];
  capacity: number;
}

interface QueueState {
  index: number;
  size: number;
  base: number;
  /** A SET_VRING_BASE arrived since the rings were last built or stopped. */
  baseFresh: boolean;
  guestKickFd: number;
  guestCallFd: number;
  backendKickFd: number;
  backendCallFd: number;
  ring?: { desc: bigint; avail: bigint; used: bigint; flags: number };
  guest?: SplitQueue;
  walker?: ChainWalker;
  shadow?: ShadowRing;
  inflight: (InFlight | undefined)[];
  /** Heads placed in the shadow ring and not yet returned (set before their records exist). */
  busy: Uint8Array;
  broken?: string;
}

// Epoch ns do not fit a double exactly (2^53 ns is 104 days): add the small,
// exact performance.now() part to a bigint base instead.
const EPOCH_BASE_NS = BigInt(Math.round(performance.timeOrigin * 1e3)) * 1000n;

/** Nanoseconds since the Unix epoch, with sub-microsecond resolution. */
export function nowNs(): bigint {
  return EPOCH_BASE_NS + BigInt(Math.round(performance.now() * 1e6));
}

/**
 * One proxied vhost-user session. Construct with two connected sockets;
 * {@link done} settles when either side goes away, after every resource is
 * released.
 */
export class TraceProxy {
  #loop: EventLoop;
  #rec: TraceRecorder;
  #log: (message: string) => void;
  #front: VhostUserChannel;
  #back: VhostUserChannel;
  #chanFront?: VhostUserChannel;
  #chanBack?: VhostUserChannel;
  #memory = new GuestMemory();
  #mappings: MemoryMapping[] = [];
  #shadow?: ShadowRegion;
  #queues = new Map<number, QueueState>();
  #maxQueues = DEFAULT_QUEUES;
  #guestFeatures = 0n;
  #closed = false;
  #resolve!: (end: ProxyEnd) => void;
  #counts = { requests: 0, replies: 0, malformed: 0 };
  #usedScratch: ShadowUsed[] = [];
  #relay: RelayDescriptor[] = [];
  #batch: { chain: DescriptorChain; descriptors: number }[] = [];
  #replySeqs: number[] = [];
  /** Settles once the session is over and everything is released. */
  readonly done: Promise<ProxyEnd>;

  /** Starts relaying between the two sockets. */
  constructor(options: TraceProxyOptions) {
    this.#loop = options.loop;
    this.#rec = options.recorder;
    this.#log = options.log ?? (() => {});
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    this.#front = new VhostUserChannel(options.frontendFd, this.#loop, {
      onMessage: (f) => this.#fromFrontend(f),
      onClose: (e) => this.#shutdown("frontend", e),
    }, { name: "front-end socket" });
    this.#back = new VhostUserChannel(options.backendFd, this.#loop, {
      onMessage: (f) => this.#fromBackend(f),
      onClose: (e) => this.#shutdown("backend", e),
    }, { name: "back-end socket" });
    this.#rec.note({
      type: "start",
      masked_virtio_features: MASKED_VIRTIO_FEATURES.map((f) => f.name),
      masked_protocol_features: MASKED_PROTOCOL_FEATURES.map((f) => f.name),
    });
  }

  /** Counters so far. */
  get counts(): { requests: number; replies: number; malformed: number } {
    return { ...this.#counts };
  }

  /** Ends the session (both sockets closed, resources released). */
  close(): void {
    this.#shutdown("proxy");
  }

  // ---------------------------------------------------------------- control plane

  #decode(frame: VhostUserFrame, channel: "frontend" | "backend"): VhostUserMessage | undefined {
    try {
      return decodeMessage(frame.bytes, frame.fds.length, { channel, fds: "report" });
    } catch (err) {
      this.#rec.note({
        type: "undecodable_message",
        channel,
        request: frame.request,
        error: String(err),
      });
      return undefined;
    }
  }

  #fromFrontend(frame: VhostUserFrame): void {
    this.#rec.vhostUser(VhostDirection.FrontToBack, frame.bytes, frame.fds.length);
    const msg = this.#decode(frame, "frontend");
    if (msg === undefined || msg.isReply) {
      this.#back.send(frame.bytes, frame.fds, true);
      return;
    }
    const p = msg.payload;
    switch (msg.request) {
      case REQ.SET_FEATURES:
        if (p.kind === "u64") {
          this.#guestFeatures = p.value;
          // The back-end serves shadow rings, which the proxy drives without EVENT_IDX.
          this.#forward(msg, frame, { kind: "u64", value: p.value & ~EVENT_IDX_BIT });
          return;
        }
        break;
      case REQ.SET_MEM_TABLE:
        if (p.kind === "memory_table") return this.#setMemTable(msg, frame, p.regions);
        break;
      case REQ.SET_VRING_NUM:
        if (p.kind === "vring_state") this.#queue(p.index).size = p.num;
        break;
      case REQ.SET_VRING_BASE:
        if (p.kind === "vring_state") this.#setBase(this.#queue(p.index), p.num);
        break;
      case REQ.SET_VRING_ADDR:
        if (p.kind === "vring_addr") return this.#setVringAddr(msg, frame, p);
        break;
      case REQ.SET_VRING_KICK:
        if (p.kind === "vring_index") return this.#setKick(msg, frame, p.index, p.noFd);
        break;
      case REQ.SET_VRING_CALL:
        if (p.kind === "vring_index") return this.#setCall(msg, frame, p.index, p.noFd);
        break;
      case REQ.SET_BACKEND_REQ_FD:
        if (frame.fds.length === 1) return this.#setBackendChannel(frame);
        break;
      case REQ.RESET_OWNER:
      case REQ.RESET_DEVICE:
        for (const q of this.#queues.values()) this.#stopQueue(q);
        break;
    }
    this.#back.send(frame.bytes, frame.fds, true);
  }

  /**
   * Relays `msg` with a new payload and `fds` (handed over and closed
   * locally), keeping its header flags. Fds of `frame` not in `fds` stay with
   * the caller.
   */
  #forward(
    msg: VhostUserMessage,
    frame: VhostUserFrame,
    payload: VhostUserMessage["payload"],
    fds: number[] = frame.fds,
  ): void {
    const bytes = encodeMessage({
      channel: msg.channel,
      request: msg.request,
      isReply: msg.isReply,
      needReply: msg.needReply,
      payload,
    });
    // Keep any flag bits encodeMessage does not model (version etc. are identical).
    new DataView(bytes.buffer).setUint32(4, frame.flags, true);
    this.#back.send(bytes, fds, true);
  }

  #queue(index: number): QueueState {
    let q = this.#queues.get(index);
    if (q === undefined) {
      q = {
        index,
        size: 0,
        base: 0,
        baseFresh: false,
        guestKickFd: -1,
        guestCallFd: -1,
        backendKickFd: -1,
        backendCallFd: -1,
        inflight: [],
        busy: new Uint8Array(0),
      };
      this.#queues.set(index, q);
    }
    return q;
  }

  #setMemTable(msg: VhostUserMessage, frame: VhostUserFrame, regions: readonly WireRegion[]): void {
    if (regions.length !== frame.fds.length) {
      this.#fail(new Error(`SET_MEM_TABLE: ${regions.length} regions but ${frame.fds.length} fds`));
      closeAll(frame.fds);
      return;
    }
    if (regions.length >= VHOST_MEMORY_BASELINE_NREGIONS) {
      this.#fail(
        new Error(
          `SET_MEM_TABLE with ${regions.length} regions: no slot left for the proxy's shadow rings`,
        ),
      );
      closeAll(frame.fds);
      return;
    }
    const mappings: MemoryMapping[] = [];
    const inits: MemoryRegionInit[] = [];
    try {
      regions.forEach((r, i) => {
        const m = mapWireRegion(r, frame.fds[i]!);
        mappings.push(m.mapping);
        inits.push(m.init);
      });
      this.#memory.setRegions(inits);
    } catch (err) {
      for (const m of mappings) m.unmap();
      closeAll(frame.fds);
      this.#fail(new Error("SET_MEM_TABLE: cannot map guest memory", { cause: err }));
      return;
    }
    const old = this.#mappings;
    this.#mappings = mappings;
    // Queues re-translate their rings lazily; refresh now so old views are dropped first.
    for (const q of this.#queues.values()) {
      try {
        q.guest?.refresh();
      } catch (err) {
        this.#breakQueue(q, `ring no longer in guest memory: ${String(err)}`);
      }
    }
    for (const m of old) m.unmap();

    this.#shadow ??= new ShadowRegion(this.#maxQueues);
    const shadow = this.#shadow;
    const before = shadow.guestPhysAddr;
    shadow.placeAfter(
      regions.map((r) => ({
        guestPhysAddr: r.guestPhysAddr,
        userAddr: r.userspaceAddr,
        size: r.memorySize,
      })),
    );
    if (before !== 0n && before !== shadow.guestPhysAddr) {
      this.#rec.note({
        type: "shadow_region_moved",
        from: `0x${before.toString(16)}`,
        to: `0x${shadow.guestPhysAddr.toString(16)}`,
      });
    }
    const withShadow: WireRegion[] = [...regions, {
      guestPhysAddr: shadow.guestPhysAddr,
      memorySize: BigInt(shadow.size),
      userspaceAddr: shadow.userAddr,
      mmapOffset: 0n,
    }];
    const payload = msg.payload.kind === "memory_table"
      ? { ...msg.payload, regions: withShadow }
      : msg.payload;
    this.#forward(msg, frame, payload, [...frame.fds, dup(shadow.fd)]);
  }

  /**
   * SET_VRING_BASE. QEMU sends it before SET_VRING_ADDR; cloud-hypervisor
   * after, when the rings are built already: then they move to the new base.
   */
  #setBase(q: QueueState, num: number): void {
    q.base = num;
    q.baseFresh = true;
    if (q.guest === undefined || q.shadow === undefined) return;
    try {
      q.shadow.rebase(num);
      q.guest.setBase(num);
      q.baseFresh = false;
    } catch (err) {
      this.#breakQueue(q, `SET_VRING_BASE ${num} on a running queue: ${String(err)}`);
    }
  }

  #setVringAddr(
    msg: VhostUserMessage,
    frame: VhostUserFrame,
    p: Extract<VhostUserMessage["payload"], { kind: "vring_addr" }>,
  ): void {
    const q = this.#queue(p.index);
    q.ring = { desc: p.descUserAddr, avail: p.availUserAddr, used: p.usedUserAddr, flags: p.flags };
    this.#stopQueue(q);
    delete q.broken;
    try {
      if (this.#shadow === undefined) throw new Error("SET_VRING_ADDR before SET_MEM_TABLE");
      if (q.size === 0) throw new Error("SET_VRING_ADDR before SET_VRING_NUM");
      q.guest = new SplitQueue(this.#memory, {
        size: q.size,
        desc: p.descUserAddr,
        avail: p.availUserAddr,
        used: p.usedUserAddr,
        space: "user",
        features: this.#guestFeatures,
        lastAvailIdx: q.base & 0xffff,
      });
      // No SET_VRING_BASE since the last stop (cloud-hypervisor sends it after
      // this message): a stale base would re-walk old chains, so start where a
      // quiescent ring stands, at the guest's used idx; a late base moves it.
      const base = q.baseFresh ? q.base & 0xffff : q.guest.nextUsedIdx;
      q.guest.setBase(base);
      q.walker = new ChainWalker(q.guest, {
        indirect: (this.#guestFeatures & INDIRECT_BIT) !== 0n,
        // Indirect tables may be longer than the ring (a 1 MiB request on a small
        // ring), as Linux writes them; the shadow table takes up to SHADOW_MAX_CHAIN.
        maxDescriptors: SHADOW_MAX_CHAIN,
      });
      q.shadow = new ShadowRing(this.#shadow, p.index, q.size, base);
      q.inflight = new Array(q.size);
      q.busy = new Uint8Array(q.size);
      q.baseFresh = false;
    } catch (err) {
      this.#breakQueue(
        q,
        `cannot set up queue: ${err instanceof Error ? err.message : String(err)}`,
      );
      this.#back.send(frame.bytes, frame.fds, true);
      return;
    }
    const a = q.shadow.addresses;
    this.#forward(msg, frame, {
      ...p,
      flags: 0, // no used-ring logging: LOG_ALL is masked
      descUserAddr: a.desc,
      availUserAddr: a.avail,
      usedUserAddr: a.used,
    });
  }

  #setKick(msg: VhostUserMessage, frame: VhostUserFrame, index: number, noFd: boolean): void {
    const q = this.#queue(index);
    if (q.guestKickFd >= 0) {
      this.#loop.remove(q.guestKickFd);
      close(q.guestKickFd);
      q.guestKickFd = -1;
    }
    if (noFd || frame.fds.length !== 1) {
      this.#rec.note({
        type: "kick_without_fd",
        queue: index,
        detail: "polling mode is not relayed",
      });
      this.#back.send(frame.bytes, frame.fds, true);
      return;
    }
    q.guestKickFd = frame.fds[0]!;
    if (q.backendKickFd < 0) q.backendKickFd = eventfd();
    this.#loop.add(q.guestKickFd, Epoll.IN, () => this.#onGuestKick(q));
    this.#forward(msg, frame, msg.payload, [dup(q.backendKickFd)]);
    // Buffers made available before the kick fd arrived still need serving.
    this.#serveAvail(q);
  }

  #setCall(msg: VhostUserMessage, frame: VhostUserFrame, index: number, noFd: boolean): void {
    const q = this.#queue(index);
    if (q.guestCallFd >= 0) close(q.guestCallFd);
    q.guestCallFd = noFd || frame.fds.length !== 1 ? -1 : frame.fds[0]!;
    if (q.backendCallFd < 0) {
      q.backendCallFd = eventfd();
      this.#loop.add(q.backendCallFd, Epoll.IN, () => this.#onBackendCall(q));
    }
    // The back-end always signals the proxy; whether the guest hears of it is the proxy's call.
    this.#forward(
      msg,
      frame,
      { kind: "vring_index", value: BigInt(index), index, noFd: false },
      [dup(q.backendCallFd)],
    );
  }

  #setBackendChannel(frame: VhostUserFrame): void {
    const [mine, theirs] = socketpair();
    const qemuSide = frame.fds[0]!;
    this.#chanFront = new VhostUserChannel(qemuSide, this.#loop, {
      onMessage: (f) => {
        this.#rec.vhostUser(VhostDirection.BackendChannelReply, f.bytes, f.fds.length);
        this.#chanBack?.send(f.bytes, f.fds, true);
      },
      onClose: () => this.#chanBack?.close(),
    }, { name: "back-end channel (front-end side)" });
    this.#chanBack = new VhostUserChannel(mine, this.#loop, {
      onMessage: (f) => {
        this.#rec.vhostUser(VhostDirection.BackendChannelRequest, f.bytes, f.fds.length);
        this.#chanFront?.send(f.bytes, f.fds, true);
      },
      onClose: () => this.#chanFront?.close(),
    }, { name: "back-end channel (back-end side)" });
    this.#back.send(frame.bytes, [theirs], true);
  }

  #fromBackend(frame: VhostUserFrame): void {
    this.#rec.vhostUser(VhostDirection.BackToFront, frame.bytes, frame.fds.length);
    const msg = this.#decode(frame, "frontend");
    if (msg === undefined || !msg.isReply) {
      this.#front.send(frame.bytes, frame.fds, true);
      return;
    }
    const p = msg.payload;
    switch (msg.request) {
      case REQ.GET_FEATURES:
        if (p.kind === "u64") {
          return this.#replyMasked(
            msg,
            frame,
            p.value,
            VIRTIO_MASK,
            "virtio",
            VIRTIO_FEATURES.format.bind(VIRTIO_FEATURES),
          );
        }
        break;
      case REQ.GET_PROTOCOL_FEATURES:
        if (p.kind === "u64") {
          return this.#replyMasked(
            msg,
            frame,
            p.value,
            PROTOCOL_MASK,
            "protocol",
            VHOST_USER_PROTOCOL_FEATURES.format.bind(VHOST_USER_PROTOCOL_FEATURES),
          );
        }
        break;
      case REQ.GET_QUEUE_NUM:
        if (p.kind === "u64" && this.#shadow === undefined) {
          this.#maxQueues = Math.max(1, Math.min(MAX_QUEUES, Number(p.value)));
        }
        break;
      case REQ.GET_VRING_BASE:
        if (p.kind === "vring_state") return this.#vringBaseReply(msg, frame, p.index, p.num);
        break;
    }
    this.#front.send(frame.bytes, frame.fds, true);
  }

  #toFrontend(
    msg: VhostUserMessage,
    frame: VhostUserFrame,
    payload: VhostUserMessage["payload"],
  ): void {
    const bytes = encodeMessage({
      channel: "frontend",
      request: msg.request,
      isReply: true,
      payload,
    });
    new DataView(bytes.buffer).setUint32(4, frame.flags, true);
    this.#front.send(bytes, frame.fds, true);
  }

  #replyMasked(
    msg: VhostUserMessage,
    frame: VhostUserFrame,
    value: bigint,
    mask: bigint,
    what: string,
    format: (v: bigint) => string,
  ): void {
    const masked = value & mask;
    if (masked !== 0n) {
      this.#rec.note({
        type: "features_masked",
        what,
        offered: format(value),
        masked: format(masked),
      });
    }
    this.#toFrontend(msg, frame, { kind: "u64", value: value & ~mask });
  }

  #vringBaseReply(
    msg: VhostUserMessage,
    frame: VhostUserFrame,
    index: number,
    backendBase: number,
  ): void {
    const q = this.#queue(index);
    let num = backendBase;
    if (q.shadow !== undefined && q.guest !== undefined) {
      // Completions the back-end published before stopping go to the guest first.
      this.#serveUsed(q);
      // Chains the back-end never took go back to the guest ring's count.
      const unconsumed = (q.shadow.availIdx - backendBase) & 0xffff;
      num = (q.guest.lastAvailIdx - unconsumed) & 0xffff;
      if (unconsumed !== 0) {
        this.#rec.note({ type: "vring_stopped_with_pending", queue: index, unconsumed });
      }
    }
    this.#stopQueue(q);
    q.baseFresh = false;
    this.#toFrontend(msg, frame, { kind: "vring_state", index, num });
  }

  // ---------------------------------------------------------------- data plane

  #onGuestKick(q: QueueState): void {
    const seen = nowNs();
    const n = eventfdRead(q.guestKickFd);
    this.#rec.notify(NotifyKind.GuestKick, q.index, n);
    this.#serveAvail(q, seen);
  }

  #onBackendCall(q: QueueState): void {
    const seen = nowNs();
    const n = eventfdRead(q.backendCallFd);
    this.#rec.notify(NotifyKind.BackendCall, q.index, n);
    this.#serveUsed(q, seen);
  }

  /** Moves every available guest chain to the shadow ring, then kicks the back-end. */
  #serveAvail(q: QueueState, seenNs: bigint = nowNs()): void {
    const guest = q.guest;
    const walker = q.walker;
    const shadow = q.shadow;
    if (
      guest === undefined || walker === undefined || shadow === undefined || q.broken !== undefined
    ) return;
    const batch = this.#batch;
    batch.length = 0;
    let returned = 0;
    try {
      guest.disableNotify();
      for (;;) {
        let chain;
        try {
          chain = walker.pop();
        } catch (err) {
          if (err instanceof ChainError) {
            this.#counts.malformed++;
            this.#rec.malformed(q.index, err.head, err.message);
            if (err.head >= 0 && err.head < q.size) {
              // Give the buffer back unused so the guest is not left waiting forever.
              guest.push(err.head, 0);
              returned++;
            }
            continue;
          }
          throw err;
        }
        if (chain === null) {
          if (guest.enableNotify()) continue;
          break;
        }
        if (q.busy[chain.head] === 1) {
          // A driver bug or a hostile guest: the back-end still owns this head.
          // Relaying it would overwrite the shadow descriptor under the back-end.
          this.#counts.malformed++;
          this.#rec.malformed(
            q.index,
            chain.head,
            `head ${chain.head} made available again while in flight`,
          );
          continue;
        }
        q.busy[chain.head] = 1;
        const relay = this.#relay;
        relay.length = 0;
        for (const d of chain.descriptors) {
          if ((d.flags & DescFlags.INDIRECT) !== 0) continue;
          relay.push({ addr: d.addr, len: d.len, writable: (d.flags & DescFlags.WRITE) !== 0 });
        }
        shadow.place(chain.head, relay);
        batch.push({ chain, descriptors: relay.length });
      }
    } catch (err) {
      this.#breakQueue(
        q,
        err instanceof VirtqError || err instanceof AvailIndexError ? err.message : String(err),
      );
    }
    if (batch.length > 0) {
      shadow.publish();
      // Taken before the kick: the woken back-end thread may preempt this one,
      // and that time is the back-end's, not the proxy's.
      const residenceNs = nowNs() - seenNs;
      if (shadow.needKick()) {
        eventfdWrite(q.backendKickFd);
        this.#rec.notify(NotifyKind.BackendKick, q.index, 1n);
      }
      // Recorded after the kick so the back-end starts sooner. The guest cannot
      // touch the request buffers until the proxy returns them.
      for (const { chain, descriptors } of batch) {
        const seq = this.#rec.request({
          queue: q.index,
          head: chain.head,
          descriptors,
          writableCapacity: chain.writableLength,
          body: chain.readable,
          length: chain.readableLength,
          residenceNs,
        });
        this.#counts.requests++;
        q.inflight[chain.head] = {
          seq,
          t0: seenNs,
          writable: chain.writable,
          capacity: chain.writableLength,
        };
      }
      batch.length = 0;
    }
    if (returned > 0) this.#notifyGuest(q);
  }

  /** Returns every completion the back-end published to the guest, then notifies it. */
  #serveUsed(q: QueueState, seenNs: bigint = nowNs()): void {
    const guest = q.guest;
    const shadow = q.shadow;
    if (guest === undefined || shadow === undefined) return;
    let n: number;
    try {
      n = shadow.takeUsed(this.#usedScratch);
    } catch (err) {
      this.#breakQueue(q, String(err));
      return;
    }
    const seqs = this.#replySeqs;
    seqs.length = 0;
    if (n === 0) return;
    // Held until the residence is stamped: the replies' records must still be in memory.
    this.#rec.beginBatch?.();
    try {
      for (let i = 0; i < n; i++) {
        const u = this.#usedScratch[i]!;
        const f = u.id < q.size ? q.inflight[u.id] : undefined;
        if (f === undefined) {
          this.#rec.note({
            type: "backend_used_unknown_head",
            queue: q.index,
            head: u.id,
            len: u.len,
          });
          continue;
        }
        q.inflight[u.id] = undefined;
        q.busy[u.id] = 0;
        const len = Math.min(u.len, f.capacity);
        if (len !== u.len) {
          this.#rec.note({
            type: "backend_used_len_over_capacity",
            queue: q.index,
            head: u.id,
            len: u.len,
            capacity: f.capacity,
          });
        }
        // Recorded before the guest can see the entry: after that it may reuse the buffers.
        seqs.push(this.#rec.reply({
          queue: q.index,
          head: u.id,
          body: f.writable,
          length: len,
          latencyNs: seenNs - f.t0,
          requestSeq: f.seq,
        }));
        this.#counts.replies++;
        try {
          guest.push(u.id, len);
        } catch (err) {
          this.#breakQueue(q, String(err));
          return;
        }
      }
      if (seqs.length > 0) {
        const notifiedAt = this.#notifyGuest(q);
        // Residence (call seen → guest notified) is only known now; the records are amended.
        this.#rec.replyResidence(seqs, notifiedAt - seenNs);
      }
    } finally {
      this.#rec.endBatch?.();
    }
  }

  /**
   * Publishes pushed used entries and signals the guest if it asked to be.
   * Returns when the guest was notified (taken just before the eventfd write,
   * which may hand the CPU to the woken thread).
   */
  #notifyGuest(q: QueueState): bigint {
    const guest = q.guest;
    let at = nowNs();
    if (guest === undefined) return at;
    try {
      guest.publish();
      if (guest.needNotify() && q.guestCallFd >= 0) {
        at = nowNs();
        eventfdWrite(q.guestCallFd);
        this.#rec.notify(NotifyKind.GuestCall, q.index, 1n);
      }
    } catch (err) {
      this.#breakQueue(q, String(err));
    }
    return at;
  }

  #stopQueue(q: QueueState): void {
    if (q.guestKickFd >= 0) {
      this.#loop.remove(q.guestKickFd);
      close(q.guestKickFd);
      q.guestKickFd = -1;
    }
    delete q.guest;
    delete q.walker;
    delete q.shadow;
    q.inflight = [];
    q.busy = new Uint8Array(0);
  }

  #breakQueue(q: QueueState, reason: string): void {
    if (q.broken !== undefined) return;
    q.broken = reason;
    this.#rec.note({ type: "queue_broken", queue: q.index, reason });
    this.#log(`queue ${q.index}: ${reason}`);
  }

  #fail(error: Error): void {
    this.#rec.note({ type: "proxy_error", error: error.message });
    this.#log(error.message);
    this.#shutdown("proxy", error);
  }

  #shutdown(by: ProxyEnd["closedBy"], error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    const detail = error === undefined ? {} : { error: error.message };
    this.#rec.note({ type: "stop", closed_by: by, ...this.#counts, ...detail });
    for (const ch of [this.#front, this.#back, this.#chanFront, this.#chanBack]) ch?.close();
    for (const q of this.#queues.values()) {
      this.#stopQueue(q);
      if (q.guestCallFd >= 0) close(q.guestCallFd);
      if (q.backendKickFd >= 0) close(q.backendKickFd);
      if (q.backendCallFd >= 0) {
        this.#loop.remove(q.backendCallFd);
        close(q.backendCallFd);
      }
    }
    this.#queues.clear();
    this.#memory.clear();
    for (const m of this.#mappings) m.unmap();
    this.#mappings = [];
    this.#shadow?.close();
    const end: ProxyEnd = { closedBy: by, ...this.#counts };
    if (error !== undefined) end.error = error;
    this.#resolve(end);
  }
}
