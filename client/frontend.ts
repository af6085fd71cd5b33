/**
 * A vhost-user front-end (the part QEMU plays) as a library: it connects to
 * any vhost-user back-end, negotiates features, shares guest memory it
 * creates, sets up virtqueues and drives them as the guest would, so
 * vfstrace can exercise a virtio-fs back-end (or the tracing proxy) without
 * a VM.
 *
 * Control messages are strictly sequential, as on QEMU's socket: each
 * {@link VhostUserFrontend.request} waits for the previous one to finish.
 * Messages with a reply of their own (GET_*) resolve with it; others carry
 * NEED_REPLY once REPLY_ACK is negotiated and resolve with the ack, a
 * non-zero ack being a {@link ReplyAckError}; without REPLY_ACK they resolve
 * once sent.
 *
 * @module
 */
import { closeAll, connectUnix, EventLoop, socketpair } from "../sys/mod.ts";
import { VhostUserChannel, type VhostUserFrame } from "../vhost/channel.ts";
import {
  decodeMessage,
  decodeVirtioFsConfig,
  encodeMessage,
  type Payload,
  VHOST_USER_FRONTEND_MESSAGES,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_PROTOCOL_F,
  type VhostUserMessage,
  VIRTIO_F,
  type VirtioFsConfig,
  vringIndexPayload,
} from "../decode/vhost_user.ts";
import { DriverQueue } from "./driver_queue.ts";
import { FrontendMemory, type FrontendMemoryOptions } from "./memory.ts";
import {
  FeatureNegotiationError,
  FrontendClosedError,
  FrontendError,
  ProtocolError,
  ReplyAckError,
} from "./errors.ts";

const bit = (n: number): bigint => 1n << BigInt(n);

/** VIRTIO_F_VERSION_1 as a mask. */
export const FEATURE_VERSION_1: bigint = bit(VIRTIO_F.VIRTIO_F_VERSION_1);
/** VIRTIO_RING_F_INDIRECT_DESC as a mask. */
export const FEATURE_INDIRECT_DESC: bigint = bit(VIRTIO_F.VIRTIO_RING_F_INDIRECT_DESC);
/** VIRTIO_RING_F_EVENT_IDX as a mask. */
export const FEATURE_EVENT_IDX: bigint = bit(VIRTIO_F.VIRTIO_RING_F_EVENT_IDX);
/** VHOST_USER_F_PROTOCOL_FEATURES as a mask. */
export const FEATURE_PROTOCOL_FEATURES: bigint = bit(VIRTIO_F.VHOST_USER_F_PROTOCOL_FEATURES);

/** Protocol feature masks the front-end knows how to use. */
export const PROTOCOL_FEATURE = {
  /** GET_QUEUE_NUM. */
  MQ: bit(VHOST_USER_PROTOCOL_F.MQ),
  /** NEED_REPLY / REPLY_ACK. */
  REPLY_ACK: bit(VHOST_USER_PROTOCOL_F.REPLY_ACK),
  /** SET_BACKEND_REQ_FD and the backend channel. */
  BACKEND_REQ: bit(VHOST_USER_PROTOCOL_F.BACKEND_REQ),
  /** GET_CONFIG / SET_CONFIG. */
  CONFIG: bit(VHOST_USER_PROTOCOL_F.CONFIG),
  /** GET_MAX_MEM_SLOTS, ADD_MEM_REG, REM_MEM_REG. */
  CONFIGURE_MEM_SLOTS: bit(VHOST_USER_PROTOCOL_F.CONFIGURE_MEM_SLOTS),
} as const;

/** Virtio features asked for by default (PROTOCOL_FEATURES is added whenever offered). */
export const DEFAULT_FEATURES: bigint = FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC |
  FEATURE_EVENT_IDX;
/** Protocol features asked for by default. */
export const DEFAULT_PROTOCOL_FEATURES: bigint = PROTOCOL_FEATURE.MQ |
  PROTOCOL_FEATURE.REPLY_ACK | PROTOCOL_FEATURE.CONFIG;

/** Which way a message of the transcript went. */
export type FrontendDirection = "sent" | "received" | "backend-request" | "backend-reply";

/** A request that arrived on the backend channel (back-end → front-end). */
export interface BackendRequest {
  /** The decoded message. */
  readonly message: VhostUserMessage;
  /** fds that came with it; closed after the handler returns (dup to keep). */
  readonly fds: readonly number[];
}

/**
 * Handles a backend-channel request; the returned value (default 0) is the
 * u64 replied when the back-end asked for a reply. Throwing replies 1.
 */
export type BackendRequestHandler = (request: BackendRequest) => bigint | number | void;

/** Options of {@link VhostUserFrontend}. */
export interface FrontendOptions {
  /**
   * Event loop for the socket and the call eventfds; the caller runs it. By
   * default the front-end creates, runs and finally closes its own.
   */
  loop?: EventLoop;
  /** Name used in errors (default "vhost-user front-end"). */
  name?: string;
  /** Sees every message sent and received, decoded (a transcript for tests and tools). */
  onMessage?: (direction: FrontendDirection, message: VhostUserMessage) => void;
  /** Handles backend-channel requests (see {@link NegotiateOptions.backendChannel}). */
  onBackendRequest?: BackendRequestHandler;
  /**
   * Where SET_VRING_BASE goes in queue set-up: before SET_VRING_ADDR as QEMU
   * sends it (default), or after it as cloud-hypervisor does. The spec fixes
   * no order, so back-ends (and the proxy) must take both.
   */
  vringOrder?: VringOrder;
}

/** Order of SET_VRING_BASE relative to SET_VRING_ADDR, see {@link FrontendOptions.vringOrder}. */
export type VringOrder = "base-before-addr" | "base-after-addr";

/** Options of {@link VhostUserFrontend.request}. */
export interface RequestOptions {
  /** fds sent with the message. */
  fds?: readonly number[];
  /** Close `fds` once the kernel took them (default false: the caller keeps them). */
  closeFds?: boolean;
  /**
   * Force NEED_REPLY on (wait for an ack) or off (do not wait) for a message
   * without a reply of its own. Default: on exactly when REPLY_ACK is negotiated.
   */
  needReply?: boolean;
  /** Receives fds that came with the reply; without it they are closed. */
  onFds?: (fds: number[]) => void;
}

/** Options of {@link VhostUserFrontend.negotiate}. */
export interface NegotiateOptions {
  /** Virtio features wanted (default {@link DEFAULT_FEATURES}); the offered subset is acked. */
  features?: bigint;
  /** Features the back-end must offer (default VIRTIO_F_VERSION_1). */
  requireFeatures?: bigint;
  /** Protocol features wanted (default {@link DEFAULT_PROTOCOL_FEATURES}). */
  protocolFeatures?: bigint;
  /** Also ask for BACKEND_REQ and open the backend channel when offered. */
  backendChannel?: boolean;
  /** Also ask for CONFIGURE_MEM_SLOTS (memory then goes by ADD_MEM_REG). */
  memSlots?: boolean;
}

/** The outcome of {@link VhostUserFrontend.negotiate}. */
export interface Negotiated {
  /** GET_FEATURES as the back-end answered. */
  readonly offeredFeatures: bigint;
  /** What SET_FEATURES acked. */
  readonly features: bigint;
  /** GET_PROTOCOL_FEATURES as answered (0 when PROTOCOL_FEATURES was not offered). */
  readonly offeredProtocolFeatures: bigint;
  /** What SET_PROTOCOL_FEATURES acked. */
  readonly protocolFeatures: bigint;
  /** GET_QUEUE_NUM (with MQ). */
  readonly queueNum?: number;
  /** GET_MAX_MEM_SLOTS (with CONFIGURE_MEM_SLOTS). */
  readonly maxMemSlots?: number;
  /** The backend channel is open. */
  readonly backendChannel: boolean;
}

/** How guest memory is announced. */
export type MemoryMode = "table" | "slots";

/** Options of {@link VhostUserFrontend.setMemory}. */
export interface SetMemoryOptions {
  /** SET_MEM_TABLE, or one ADD_MEM_REG per region (default: slots when negotiated). */
  mode?: MemoryMode;
}

/** Options of {@link VhostUserFrontend.setupQueue}. */
export interface SetupQueueOptions {
  /** Queue size (default 128). */
  size?: number;
  /** Use an indirect table for every chain (needs INDIRECT_DESC). */
  indirect?: boolean;
}

/** Options of {@link VhostUserFrontend.start}. */
export interface StartOptions {
  /** Negotiation options. */
  negotiate?: NegotiateOptions;
  /** Memory to share (caller keeps ownership) or how to create it (front-end owns it). */
  memory?: FrontendMemory | FrontendMemoryOptions;
  /** How memory is announced. */
  memoryMode?: MemoryMode;
  /** Number of queues (default GET_QUEUE_NUM, else 2: hiprio + one request queue). */
  queues?: number;
  /** Queue size, for all queues or per queue (default 128). */
  queueSize?: number | readonly number[];
  /** Indirect tables for every chain. */
  indirect?: boolean;
}

/** Options of {@link VhostUserFrontend.close}. */
export interface CloseOptions {
  /** Stop each running queue with GET_VRING_BASE first (default true, if still connected). */
  stopQueues?: boolean;
}

type Expect = "reply" | "ack" | "none";

interface Waiting {
  request: number;
  name: string;
  expect: Expect;
  onFds: ((fds: number[]) => void) | undefined;
  resolve: (m: VhostUserMessage) => void;
  reject: (e: Error) => void;
}

interface QueueEntry {
  queue: DriverQueue;
  stopped: boolean;
  /** Ring index to restart from (the last GET_VRING_BASE answer). */
  base: number;
}

function u64(value: bigint): Payload {
  return { kind: "u64", value };
}

/**
 * A vhost-user front-end on one connection. Construct with a connected
 * socket (or {@link VhostUserFrontend.connect}), then {@link negotiate},
 * {@link setMemory}, {@link setupQueue} (or all three through
 * {@link start}); drive the queues; {@link close} releases every fd and
 * mapping it created.
 */
export class VhostUserFrontend {
  /** Name used in errors. */
  readonly name: string;
  /** Settles when the connection ends: undefined for a clean close, else why it broke. */
  readonly disconnected: Promise<Error | undefined>;
  #loop: EventLoop;
  #ownLoop: Promise<void> | undefined;
  #channel: VhostUserChannel;
  #onMessage: FrontendOptions["onMessage"];
  #onBackendRequest: BackendRequestHandler | undefined;
  #vringOrder: VringOrder;
  #tail: Promise<unknown> = Promise.resolve();
  #waiting: Waiting | undefined;
  #connected = true;
  #endError: Error | undefined;
  #resolveDisconnected!: (e: Error | undefined) => void;
  #negotiated: Negotiated | undefined;
  #featuresAcked = false;
  #protocol = 0n;
  #memory: FrontendMemory | undefined;
  #ownMemory = false;
  #queues = new Map<number, QueueEntry>();
  #backendChannel: VhostUserChannel | undefined;
  #closing: Promise<void> | undefined;

  /** Takes ownership of connected socket `fd`. */
  constructor(fd: number, options: FrontendOptions = {}) {
    this.name = options.name ?? "vhost-user front-end";
    this.#onMessage = options.onMessage;
    this.#onBackendRequest = options.onBackendRequest;
    this.#vringOrder = options.vringOrder ?? "base-before-addr";
    this.disconnected = new Promise((resolve) => (this.#resolveDisconnected = resolve));
    this.#loop = options.loop ?? new EventLoop();
    try {
      this.#channel = new VhostUserChannel(fd, this.#loop, {
        onMessage: (f) => this.#onFrame(f),
        onClose: (e) => this.#onChannelClose(e),
      }, { name: `${this.name} socket` });
    } catch (err) {
      closeAll([fd]);
      if (options.loop === undefined) void this.#loop.close();
      throw err;
    }
    if (options.loop === undefined) {
      // Our own loop: a failing callback ends the connection rather than hanging it.
      this.#ownLoop = this.#loop.run().catch((err) => {
        this.#channel.close(err instanceof Error ? err : new Error(String(err)));
      });
    }
  }

  /** Connects to the back-end listening at `path`. */
  static connect(path: string, options: FrontendOptions = {}): VhostUserFrontend {
    return new VhostUserFrontend(connectUnix(path), options);
  }

  /** The event loop in use. */
  get loop(): EventLoop {
    return this.#loop;
  }

  /** True until the connection ends. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The negotiation outcome, once {@link negotiate} finished. */
  get negotiated(): Negotiated | undefined {
    return this.#negotiated;
  }

  /** The shared guest memory, once {@link setMemory} finished. */
  get memory(): FrontendMemory | undefined {
    return this.#memory;
  }

  /** Queue `index`, if set up. */
  queue(index: number): DriverQueue | undefined {
    return this.#queues.get(index)?.queue;
  }

  /** Every queue set up, by index. */
  get queues(): ReadonlyMap<number, DriverQueue> {
    return new Map([...this.#queues].map(([i, e]) => [i, e.queue]));
  }

  /**
   * Sends one front-end request (by name, e.g. `"GET_FEATURES"`, or number)
   * after every earlier one finished, and resolves with the decoded reply or
   * ack (undefined when none is expected). Rejects with ReplyAckError,
   * ProtocolError, FrontendClosedError, or EncodeError for a bad payload.
   */
  request(
    request: number | string,
    payload: Payload = { kind: "empty" },
    options: RequestOptions = {},
  ): Promise<VhostUserMessage | undefined> {
    const run = this.#tail.then(() => this.#exchange(request, payload, options));
    this.#tail = run.catch(() => {});
    return run;
  }

  #exchange(
    request: number | string,
    payload: Payload,
    options: RequestOptions,
  ): Promise<VhostUserMessage | undefined> {
    const fds = options.fds ?? [];
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage({ channel: "frontend", request, payload });
    } catch (err) {
      if (options.closeFds) closeAll(fds);
      return Promise.reject(err);
    }
    const header = new DataView(bytes.buffer);
    const number = header.getUint32(0, true);
    const spec = VHOST_USER_FRONTEND_MESSAGES.get(number);
    const name = spec?.name ?? `request ${number}`;
    let expect: Expect;
    if (spec?.reply === "always") expect = "reply";
    else if (options.needReply ?? (this.#protocol & PROTOCOL_FEATURE.REPLY_ACK) !== 0n) {
      expect = "ack";
    } else expect = "none";
    if (!this.#connected) {
      if (options.closeFds) closeAll(fds);
      return Promise.reject(
        new FrontendClosedError(this.name, `${name} ${expect}`, this.#endError),
      );
    }
    if (expect === "ack") {
      header.setUint32(4, header.getUint32(4, true) | VHOST_USER_NEED_REPLY_MASK, true);
    }
    this.#transcript("sent", bytes, fds.length);
    if (expect === "none") {
      this.#channel.send(bytes, fds, options.closeFds ?? false);
      return Promise.resolve(undefined);
    }
    return new Promise<VhostUserMessage>((resolve, reject) => {
      this.#waiting = { request: number, name, expect, onFds: options.onFds, resolve, reject };
      try {
        this.#channel.send(bytes, fds, options.closeFds ?? false);
      } catch (err) {
        this.#waiting = undefined;
        reject(err);
      }
    });
  }

  #transcript(direction: FrontendDirection, bytes: Uint8Array, fdCount: number): void {
    const cb = this.#onMessage;
    if (cb === undefined) return;
    const channel = direction === "sent" || direction === "received" ? "frontend" : "backend";
    cb(direction, decodeMessage(bytes, fdCount, { channel, fds: "report" }));
  }

  #onFrame(frame: VhostUserFrame): void {
    let msg: VhostUserMessage;
    try {
      msg = decodeMessage(frame.bytes, frame.fds.length, { channel: "frontend", fds: "report" });
    } catch (err) {
      closeAll(frame.fds);
      // Thrown from onMessage: the channel closes with it, and the waiter gets it.
      throw new ProtocolError(this.name, "undecodable message from the back-end", { cause: err });
    }
    this.#onMessage?.("received", msg);
    const w = this.#waiting;
    if (!msg.isReply || w === undefined || msg.request !== w.request) {
      closeAll(frame.fds);
      const why = !msg.isReply
        ? `request ${msg.name} on the front-end socket (requests go on the backend channel)`
        : w === undefined
        ? `unsolicited ${msg.name} reply`
        : `${msg.name} reply while waiting for ${w.name}`;
      throw new ProtocolError(this.name, why);
    }
    this.#waiting = undefined;
    if (w.onFds !== undefined) w.onFds(frame.fds);
    else closeAll(frame.fds);
    if (w.expect === "ack") {
      if (msg.payload.kind !== "u64") {
        w.reject(new ProtocolError(this.name, `${w.name} ack has a ${msg.payload.kind} payload`));
      } else if (msg.payload.value !== 0n) {
        w.reject(new ReplyAckError(this.name, w.request, w.name, msg.payload.value));
      } else {
        w.resolve(msg);
      }
      return;
    }
    w.resolve(msg);
  }

  #onChannelClose(error: Error | undefined): void {
    this.#connected = false;
    this.#endError = error;
    const w = this.#waiting;
    this.#waiting = undefined;
    if (w !== undefined) {
      w.reject(
        error instanceof ProtocolError
          ? error
          : new FrontendClosedError(this.name, `${w.name} ${w.expect}`, error),
      );
    }
    const gone = new FrontendClosedError(this.name, "completions", error);
    for (const e of this.#queues.values()) e.queue.fail(gone);
    this.#resolveDisconnected(error);
  }

  // ------------------------------------------------------------------ setup steps

  /**
   * Feature negotiation, in QEMU's order: GET_FEATURES, GET/SET_PROTOCOL_FEATURES,
   * GET_QUEUE_NUM (MQ), GET_MAX_MEM_SLOTS (CONFIGURE_MEM_SLOTS), SET_OWNER,
   * SET_BACKEND_REQ_FD (when asked and offered), SET_FEATURES. Throws
   * FeatureNegotiationError when a required feature is not offered.
   */
  async negotiate(options: NegotiateOptions = {}): Promise<Negotiated> {
    const offered = this.#u64(await this.request("GET_FEATURES"), "GET_FEATURES");
    const required = options.requireFeatures ?? FEATURE_VERSION_1;
    if ((offered & required) !== required) {
      throw new FeatureNegotiationError(
        this.name,
        `back-end offers features 0x${offered.toString(16)}, lacking required 0x${
          (required & ~offered).toString(16)
        }`,
        required & ~offered,
      );
    }
    let features = offered & (options.features ?? DEFAULT_FEATURES);
    let offeredProtocol = 0n;
    let protocol = 0n;
    let queueNum: number | undefined;
    let maxMemSlots: number | undefined;
    if ((offered & FEATURE_PROTOCOL_FEATURES) !== 0n) {
      features |= FEATURE_PROTOCOL_FEATURES;
      offeredProtocol = this.#u64(
        await this.request("GET_PROTOCOL_FEATURES"),
        "GET_PROTOCOL_FEATURES",
      );
      let wanted = options.protocolFeatures ?? DEFAULT_PROTOCOL_FEATURES;
      if (options.backendChannel) wanted |= PROTOCOL_FEATURE.BACKEND_REQ;
      if (options.memSlots) wanted |= PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS;
      protocol = offeredProtocol & wanted;
      // REPLY_ACK only applies once the back-end has this message, so not to it.
      await this.request("SET_PROTOCOL_FEATURES", u64(protocol), { needReply: false });
      this.#protocol = protocol;
      if ((protocol & PROTOCOL_FEATURE.MQ) !== 0n) {
        queueNum = Number(this.#u64(await this.request("GET_QUEUE_NUM"), "GET_QUEUE_NUM"));
      }
      if ((protocol & PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS) !== 0n) {
        maxMemSlots = Number(
          this.#u64(await this.request("GET_MAX_MEM_SLOTS"), "GET_MAX_MEM_SLOTS"),
        );
      }
    }
    await this.request("SET_OWNER");
    let backendChannel = false;
    if (options.backendChannel && (protocol & PROTOCOL_FEATURE.BACKEND_REQ) !== 0n) {
      await this.#openBackendChannel();
      backendChannel = true;
    }
    await this.request("SET_FEATURES", u64(features));
    this.#featuresAcked = true;
    const out: Negotiated = {
      offeredFeatures: offered,
      features,
      offeredProtocolFeatures: offeredProtocol,
      protocolFeatures: protocol,
      backendChannel,
      ...(queueNum === undefined ? {} : { queueNum }),
      ...(maxMemSlots === undefined ? {} : { maxMemSlots }),
    };
    this.#negotiated = out;
    return out;
  }

  #u64(m: VhostUserMessage | undefined, what: string): bigint {
    if (m?.payload.kind !== "u64") {
      throw new ProtocolError(this.name, `${what} reply has no u64 payload`);
    }
    return m.payload.value;
  }

  async #openBackendChannel(): Promise<void> {
    const [mine, theirs] = socketpair();
    try {
      this.#backendChannel = new VhostUserChannel(mine, this.#loop, {
        onMessage: (f) => this.#onBackendFrame(f),
        onClose: () => {},
      }, { name: `${this.name} backend channel` });
    } catch (err) {
      closeAll([mine, theirs]);
      throw err;
    }
    await this.request("SET_BACKEND_REQ_FD", { kind: "empty" }, { fds: [theirs], closeFds: true });
  }

  #onBackendFrame(frame: VhostUserFrame): void {
    let msg: VhostUserMessage;
    try {
      msg = decodeMessage(frame.bytes, frame.fds.length, { channel: "backend", fds: "report" });
    } catch (err) {
      closeAll(frame.fds);
      throw new ProtocolError(`${this.name} backend channel`, "undecodable request", {
        cause: err,
      });
    }
    this.#onMessage?.("backend-request", msg);
    let result = 0n;
    try {
      const r = this.#onBackendRequest?.({ message: msg, fds: frame.fds });
      if (r !== undefined) result = BigInt(r);
    } catch {
      result = 1n;
    } finally {
      closeAll(frame.fds);
    }
    if (msg.needReply || msg.spec?.reply === "always") {
      const bytes = encodeMessage({
        channel: "backend",
        request: msg.request,
        isReply: true,
        payload: u64(result),
        ...(msg.spec?.dialect === undefined ? {} : { dialect: msg.spec.dialect }),
      });
      this.#transcript("backend-reply", bytes, 0);
      this.#backendChannel?.send(bytes);
    }
  }

  /**
   * Shares guest memory: an existing {@link FrontendMemory} (the caller keeps
   * ownership) or options to create one (owned and closed by the front-end).
   * SET_MEM_TABLE, or ADD_MEM_REG per region with CONFIGURE_MEM_SLOTS.
   */
  async setMemory(
    memory: FrontendMemory | FrontendMemoryOptions = {},
    options: SetMemoryOptions = {},
  ): Promise<FrontendMemory> {
    if (this.#memory !== undefined) {
      throw new FrontendError(`${this.name}: guest memory is already set`);
    }
    const slotsNegotiated = (this.#protocol & PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS) !== 0n;
    const mode = options.mode ?? (slotsNegotiated ? "slots" : "table");
    if (mode === "slots" && !slotsNegotiated) {
      throw new FeatureNegotiationError(
        this.name,
        "ADD_MEM_REG needs CONFIGURE_MEM_SLOTS, which was not negotiated",
        PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS,
      );
    }
    const own = !(memory instanceof FrontendMemory);
    const mem = memory instanceof FrontendMemory ? memory : FrontendMemory.create(memory);
    try {
      const wire = mem.wireRegions();
      if (mode === "slots") {
        const max = this.#negotiated?.maxMemSlots ?? 0;
        if (wire.length > max) {
          throw new FrontendError(
            `${this.name}: ${wire.length} regions, back-end has ${max} slots`,
          );
        }
        for (let i = 0; i < wire.length; i++) {
          await this.request(
            "ADD_MEM_REG",
            { kind: "mem_reg", region: wire[i]!, xen: false },
            { fds: [mem.regions[i]!.fd] },
          );
        }
      } else {
        await this.request(
          "SET_MEM_TABLE",
          { kind: "memory_table", regions: wire, xen: false },
          { fds: mem.regions.map((r) => r.fd) },
        );
      }
    } catch (err) {
      if (own) mem.close();
      throw err;
    }
    this.#memory = mem;
    this.#ownMemory = own;
    return mem;
  }

  /**
   * Sets up queue `index`: rings in guest memory, then SET_VRING_NUM,
   * SET_VRING_BASE (0), SET_VRING_ADDR, SET_VRING_KICK, SET_VRING_CALL and
   * SET_VRING_ENABLE (with PROTOCOL_FEATURES). Needs {@link negotiate} and
   * {@link setMemory} first.
   */
  async setupQueue(index: number, options: SetupQueueOptions = {}): Promise<DriverQueue> {
    const memory = this.#memory;
    const neg = this.#negotiated;
    if (memory === undefined || neg === undefined || !this.#featuresAcked) {
      throw new FrontendError(`${this.name}: queue ${index} set up before negotiate/setMemory`);
    }
    if (this.#queues.has(index)) {
      throw new FrontendError(`${this.name}: queue ${index} is already set up`);
    }
    if (neg.queueNum !== undefined && index >= neg.queueNum) {
      throw new FrontendError(`${this.name}: queue ${index}, back-end has ${neg.queueNum}`);
    }
    if (options.indirect && (neg.features & FEATURE_INDIRECT_DESC) === 0n) {
      throw new FeatureNegotiationError(
        this.name,
        "indirect chains need VIRTIO_RING_F_INDIRECT_DESC, which was not negotiated",
        FEATURE_INDIRECT_DESC,
      );
    }
    const size = options.size ?? 128;
    const queue = new DriverQueue({
      index,
      size,
      memory,
      loop: this.#loop,
      eventIdx: (neg.features & FEATURE_EVENT_IDX) !== 0n,
      indirect: options.indirect ?? false,
    });
    this.#queues.set(index, { queue, stopped: false, base: 0 });
    try {
      await this.#configureQueue(queue, 0);
    } catch (err) {
      this.#queues.delete(index);
      queue.close();
      throw err;
    }
    return queue;
  }

  /**
   * Starts queue `index` again after {@link getVringBase} stopped it, from
   * the index that call returned: the same rings and eventfds, as QEMU does
   * on vhost start after stop. Chains the back-end had not taken when it
   * stopped are in the avail ring still, and are served now; their
   * submissions complete as usual.
   */
  async restartQueue(index: number): Promise<void> {
    const e = this.#queues.get(index);
    if (e === undefined || !e.stopped) {
      throw new FrontendError(`${this.name}: queue ${index} is not stopped`);
    }
    await this.#configureQueue(e.queue, e.base);
    e.stopped = false;
  }

  async #configureQueue(queue: DriverQueue, base: number): Promise<void> {
    const index = queue.index;
    const a = queue.userAddresses;
    const setBase = () => this.request("SET_VRING_BASE", { kind: "vring_state", index, num: base });
    await this.request("SET_VRING_NUM", { kind: "vring_state", index, num: queue.size });
    if (this.#vringOrder === "base-before-addr") await setBase();
    await this.request("SET_VRING_ADDR", {
      kind: "vring_addr",
      index,
      flags: 0,
      descUserAddr: a.desc,
      usedUserAddr: a.used,
      availUserAddr: a.avail,
      logGuestAddr: 0n,
    });
    if (this.#vringOrder === "base-after-addr") await setBase();
    await this.request("SET_VRING_KICK", vringIndexPayload(index), { fds: [queue.kickFd] });
    await this.request("SET_VRING_CALL", vringIndexPayload(index), { fds: [queue.callFd] });
    if (((this.#negotiated?.features ?? 0n) & FEATURE_PROTOCOL_FEATURES) !== 0n) {
      await this.request("SET_VRING_ENABLE", { kind: "vring_state", index, num: 1 });
    }
  }

  /**
   * Negotiates, shares memory and sets up every queue; returns the queues by
   * index (0 = hiprio for virtio-fs).
   */
  async start(options: StartOptions = {}): Promise<DriverQueue[]> {
    const neg = await this.negotiate(options.negotiate ?? {});
    await this.setMemory(
      options.memory ?? {},
      options.memoryMode === undefined ? {} : { mode: options.memoryMode },
    );
    const count = options.queues ?? neg.queueNum ?? 2;
    const queues: DriverQueue[] = [];
    for (let i = 0; i < count; i++) {
      const s = options.queueSize;
      const size = typeof s === "number" ? s : s?.[i] ?? 128;
      queues.push(
        await this.setupQueue(i, {
          size,
          ...(options.indirect === undefined ? {} : { indirect: options.indirect }),
        }),
      );
    }
    return queues;
  }

  /**
   * GET_VRING_BASE: stops queue `index` in the back-end and returns its
   * ring index (the next avail entry it would have taken).
   */
  async getVringBase(index: number): Promise<number> {
    const reply = await this.request("GET_VRING_BASE", { kind: "vring_state", index, num: 0 });
    if (reply?.payload.kind !== "vring_state") {
      throw new ProtocolError(this.name, "GET_VRING_BASE reply has no vring_state payload");
    }
    const e = this.#queues.get(index);
    if (e !== undefined) {
      e.stopped = true;
      e.base = reply.payload.num;
    }
    return reply.payload.num;
  }

  /** GET_CONFIG of `size` bytes at `offset` (needs CONFIG). Returns the config bytes. */
  async getConfig(size = 40, offset = 0): Promise<Uint8Array> {
    if ((this.#protocol & PROTOCOL_FEATURE.CONFIG) === 0n) {
      throw new FeatureNegotiationError(
        this.name,
        "GET_CONFIG needs CONFIG, which was not negotiated",
        PROTOCOL_FEATURE.CONFIG,
      );
    }
    const reply = await this.request("GET_CONFIG", {
      kind: "config",
      offset,
      flags: 0,
      data: new Uint8Array(size),
    });
    if (reply?.payload.kind !== "config") {
      throw new ProtocolError(this.name, "GET_CONFIG failed in the back-end (empty reply)");
    }
    return reply.payload.data;
  }

  /** The virtio-fs config space (tag, number of request queues) via GET_CONFIG. */
  async getVirtioFsConfig(): Promise<VirtioFsConfig> {
    return decodeVirtioFsConfig(await this.getConfig(40));
  }

  /**
   * Ends the session: stops running queues (GET_VRING_BASE) if still
   * connected, closes the socket, the backend channel, every queue's
   * eventfds, memory the front-end created, and its own loop. Pending
   * requests reject with FrontendClosedError / QueueError. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#close(options);
    return this.#closing;
  }

  async #close(options: CloseOptions): Promise<void> {
    if ((options.stopQueues ?? true) && this.#connected) {
      for (const [index, e] of this.#queues) {
        if (e.stopped) continue;
        try {
          await this.getVringBase(index);
        } catch {
          // Best effort: the back-end may be gone or refuse; teardown goes on.
        }
      }
    }
    this.#channel.close();
    await this.#tail;
    for (const e of this.#queues.values()) e.queue.close();
    this.#queues.clear();
    this.#backendChannel?.close();
    if (this.#memory !== undefined && this.#ownMemory) this.#memory.close();
    if (this.#ownLoop !== undefined) {
      this.#loop.stop();
      await this.#ownLoop;
      await this.#loop.close();
    }
  }

  /** `await using` support: {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
