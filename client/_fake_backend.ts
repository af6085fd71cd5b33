/**
 * A minimal in-process vhost-user back-end for tests of the front-end and
 * of the tracing proxy: it answers the control plane from a configurable
 * feature set, maps the memory it is given, and serves its rings with
 * virtq's device side (SplitQueue + ChainWalker), answering each chain with
 * a FUSE-shaped reply. It records everything it received, so tests can
 * assert on what really reached a back-end.
 *
 * @module
 */
import { close, closeAll, Epoll, eventfdRead, eventfdWrite, type EventLoop } from "../sys/mod.ts";
import { VhostUserChannel, type VhostUserFrame } from "../vhost/channel.ts";
import {
  ChainError,
  ChainWalker,
  type DescriptorChain,
  GuestMemory,
  type MappedRegion,
  mapWireRegion,
  SplitQueue,
} from "../virtq/mod.ts";
import {
  decodeMessage,
  encodeMessage,
  encodeVirtioFsConfig,
  type MemoryRegion as WireRegion,
  type Payload,
  VHOST_USER_FRONTEND_REQUEST as REQ,
  type VhostUserMessage,
  type VringAddrPayload,
} from "../decode/vhost_user.ts";
import {
  FEATURE_EVENT_IDX,
  FEATURE_INDIRECT_DESC,
  FEATURE_PROTOCOL_FEATURES,
  FEATURE_VERSION_1,
  PROTOCOL_FEATURE,
} from "./frontend.ts";

/** Size of the FUSE-shaped request header (struct fuse_in_header). */
export const IN_HEADER = 40;
/** Size of the FUSE-shaped reply header (struct fuse_out_header). */
export const OUT_HEADER = 16;

/** A FUSE-shaped request: in-header (len, opcode, unique, nodeid…) then `payload`. */
export function fuseishRequest(unique: bigint, opcode: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(IN_HEADER + payload.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, out.byteLength, true);
  dv.setUint32(4, opcode, true);
  dv.setBigUint64(8, unique, true);
  dv.setBigUint64(16, 1n, true);
  out.set(payload, IN_HEADER);
  return out;
}

/**
 * The fake's default answer: out-header (len, error 0, the request's
 * unique) followed by the request's payload echoed back. A request shorter
 * than an in-header gets error -22 (EINVAL) and unique 0.
 */
export function fuseishReply(request: Uint8Array): Uint8Array {
  if (request.byteLength < IN_HEADER) {
    const out = new Uint8Array(OUT_HEADER);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, OUT_HEADER, true);
    dv.setInt32(4, -22, true);
    return out;
  }
  const rq = new DataView(request.buffer, request.byteOffset, request.byteLength);
  const payload = request.subarray(IN_HEADER);
  const out = new Uint8Array(OUT_HEADER + payload.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, out.byteLength, true);
  dv.setInt32(4, 0, true);
  dv.setBigUint64(8, rq.getBigUint64(8, true), true);
  out.set(payload, OUT_HEADER);
  return out;
}

/** Reads the out-header of a reply: length, error and unique. */
export function parseFuseishReply(
  reply: Uint8Array,
): { len: number; error: number; unique: bigint; payload: Uint8Array } {
  const dv = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  return {
    len: dv.getUint32(0, true),
    error: dv.getInt32(4, true),
    unique: dv.getBigUint64(8, true),
    payload: reply.subarray(OUT_HEADER),
  };
}

/** Options of {@link FakeBackend}. */
export interface FakeBackendOptions {
  /** Connected socket (owned by the fake from now on). */
  fd: number;
  /** Loop driving it (the caller runs it). */
  loop: EventLoop;
  /** GET_FEATURES answer (default VERSION_1 | INDIRECT_DESC | EVENT_IDX | PROTOCOL_FEATURES). */
  features?: bigint;
  /** GET_PROTOCOL_FEATURES answer (default MQ | REPLY_ACK | CONFIG | CONFIGURE_MEM_SLOTS). */
  protocolFeatures?: bigint;
  /** GET_QUEUE_NUM answer (default 2). */
  queueNum?: number;
  /** GET_MAX_MEM_SLOTS answer (default 8). */
  maxMemSlots?: number;
  /** Config space for GET_CONFIG (default a virtio-fs config, tag "fake-fs", 1 request queue). */
  config?: Uint8Array;
  /** Non-zero REPLY_ACK values to answer for messages by name (e.g. `{ SET_VRING_NUM: 22n }`). */
  ackFailures?: Readonly<Record<string, bigint>>;
  /** Builds the reply bytes for a request (default {@link fuseishReply}). */
  serve?: (request: Uint8Array, queue: number) => Uint8Array;
  /** Return each batch of chains in reverse order (out-of-order completion). */
  reorder?: boolean;
  /**
   * How SET_VRING_BASE treats the used index: `"ring"` (default) keeps the
   * one read from used->idx at SET_VRING_ADDR, as libvhost-user (the C
   * virtiofsd) does; `"base"` sets it to the base too, as rust-vmm's
   * vhost-user-backend (the Rust virtiofsd) does.
   */
  usedIdxOnBase?: "ring" | "base";
}

/** State of one queue in the fake. */
export interface FakeQueue {
  /** Queue index. */
  readonly index: number;
  /** SET_VRING_NUM. */
  size: number;
  /** SET_VRING_BASE. */
  base: number;
  /** SET_VRING_ADDR as received. */
  addr?: VringAddrPayload;
  /** The kick eventfd received (-1 none). */
  kickFd: number;
  /** The call eventfd received (-1 none). */
  callFd: number;
  /** SET_VRING_ENABLE; undefined until sent. */
  enabled?: boolean;
  /** Stopped by GET_VRING_BASE. */
  stopped: boolean;
  /** The device side of the ring. */
  queue?: SplitQueue;
  /** Its walker. */
  walker?: ChainWalker;
  /** Chains answered. */
  served: number;
  /** Largest batch of chains answered at once. */
  peakBatch: number;
  /** Chains that came as an indirect table. */
  indirectChains: number;
}

const DEFAULT_FEATURES = FEATURE_VERSION_1 | FEATURE_INDIRECT_DESC | FEATURE_EVENT_IDX |
  FEATURE_PROTOCOL_FEATURES;
const DEFAULT_PROTOCOL = PROTOCOL_FEATURE.MQ | PROTOCOL_FEATURE.REPLY_ACK |
  PROTOCOL_FEATURE.CONFIG | PROTOCOL_FEATURE.CONFIGURE_MEM_SLOTS;

interface Mapped extends MappedRegion {
  region: WireRegion;
}

/** The in-process test back-end. */
export class FakeBackend {
  /** Every request received on the main socket, decoded, in order. */
  readonly messages: VhostUserMessage[] = [];
  /** Problems seen (malformed chains, unsupported requests); a clean run leaves it empty. */
  readonly problems: string[] = [];
  /** Settles when the main socket closes: undefined for a clean end, else the error. */
  readonly closed: Promise<Error | undefined>;
  #opts: FakeBackendOptions;
  #loop: EventLoop;
  #channel: VhostUserChannel;
  #backendChannel: VhostUserChannel | undefined;
  #backendWaiters: ((m: VhostUserMessage) => void)[] = [];
  #memory = new GuestMemory();
  #mapped: Mapped[] = [];
  #queues = new Map<number, FakeQueue>();
  #features = 0n;
  #protocol = 0n;
  #released = false;
  #paused = false;
  #resolveClosed!: (e: Error | undefined) => void;

  /** Starts serving `options.fd`. */
  constructor(options: FakeBackendOptions) {
    this.#opts = options;
    this.#loop = options.loop;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#channel = new VhostUserChannel(options.fd, options.loop, {
      onMessage: (f) => this.#onFrame(f),
      onClose: (e) => {
        this.#release();
        this.#resolveClosed(e);
      },
    }, { name: "fake back-end" });
  }

  /** Features acked by SET_FEATURES. */
  get features(): bigint {
    return this.#features;
  }

  /** Protocol features acked by SET_PROTOCOL_FEATURES. */
  get protocolFeatures(): bigint {
    return this.#protocol;
  }

  /** Regions currently mapped, as received. */
  get regions(): readonly WireRegion[] {
    return this.#mapped.map((m) => m.region);
  }

  /** The fake's own memory map (its mappings of what it was sent). */
  get memory(): GuestMemory {
    return this.#memory;
  }

  /** Queue `index`, once any message named it. */
  queue(index: number): FakeQueue | undefined {
    return this.#queues.get(index);
  }

  /**
   * While paused, kicks are consumed but no chain is taken: requests stay in
   * flight and the ring's notification state stays as it was.
   */
  get paused(): boolean {
    return this.#paused;
  }

  /** Pauses serving (see {@link paused}). */
  pause(): void {
    this.#paused = true;
  }

  /** Resumes serving and serves what became available meanwhile. */
  resume(): void {
    this.#paused = false;
    for (const q of this.#queues.values()) this.#serve(q);
  }

  /** Received requests named `name`. */
  received(name: string): VhostUserMessage[] {
    return this.messages.filter((m) => m.name === name);
  }

  /**
   * Sends a request on the backend channel (after SET_BACKEND_REQ_FD) and,
   * with `needReply`, resolves with the front-end's u64 answer.
   */
  backendRequest(
    request: string,
    payload: Payload = { kind: "empty" },
    needReply = true,
  ): Promise<bigint | undefined> {
    const ch = this.#backendChannel;
    if (ch === undefined) return Promise.reject(new Error("fake: no backend channel"));
    const bytes = encodeMessage({ channel: "backend", request, payload, needReply });
    ch.send(bytes);
    if (!needReply) return Promise.resolve(undefined);
    return new Promise((resolve) =>
      this.#backendWaiters.push((m) => resolve(m.payload.kind === "u64" ? m.payload.value : -1n))
    );
  }

  /** Closes the socket (the peer sees the back-end go away) and releases everything. */
  close(): void {
    this.#channel.close();
    this.#release();
  }

  // ------------------------------------------------------------ control plane

  #reply(msg: VhostUserMessage, payload: Payload): void {
    this.#channel.send(
      encodeMessage({ channel: "frontend", request: msg.request, isReply: true, payload }),
    );
  }

  #queue(index: number): FakeQueue {
    let q = this.#queues.get(index);
    if (q === undefined) {
      q = {
        index,
        size: 0,
        base: 0,
        kickFd: -1,
        callFd: -1,
        stopped: false,
        served: 0,
        peakBatch: 0,
        indirectChains: 0,
      };
      this.#queues.set(index, q);
    }
    return q;
  }

  #onFrame(frame: VhostUserFrame): void {
    const msg = decodeMessage(frame.bytes, frame.fds.length, { channel: "frontend" });
    this.messages.push(msg);
    const p = msg.payload;
    let fds = frame.fds;
    let replied = false;
    switch (msg.request) {
      case REQ.GET_FEATURES:
        this.#reply(msg, { kind: "u64", value: this.#opts.features ?? DEFAULT_FEATURES });
        replied = true;
        break;
      case REQ.SET_FEATURES:
        if (p.kind === "u64") this.#features = p.value;
        break;
      case REQ.GET_PROTOCOL_FEATURES:
        this.#reply(msg, { kind: "u64", value: this.#opts.protocolFeatures ?? DEFAULT_PROTOCOL });
        replied = true;
        break;
      case REQ.SET_PROTOCOL_FEATURES:
        if (p.kind === "u64") this.#protocol = p.value;
        break;
      case REQ.GET_QUEUE_NUM:
        this.#reply(msg, { kind: "u64", value: BigInt(this.#opts.queueNum ?? 2) });
        replied = true;
        break;
      case REQ.GET_MAX_MEM_SLOTS:
        this.#reply(msg, { kind: "u64", value: BigInt(this.#opts.maxMemSlots ?? 8) });
        replied = true;
        break;
      case REQ.SET_MEM_TABLE:
        if (p.kind === "memory_table") {
          const fresh = p.regions.map((r, i) => this.#map(r, fds[i]!));
          fds = [];
          const inits = fresh.map((m) => m.init);
          const old = this.#mapped;
          this.#mapped = fresh;
          this.#memory.setRegions(inits);
          for (const q of this.#queues.values()) q.queue?.refresh();
          for (const m of old) m.mapping.unmap();
        }
        break;
      case REQ.ADD_MEM_REG:
        if (p.kind === "mem_reg") {
          const m = this.#map(p.region, fds[0]!);
          fds = [];
          this.#memory.addRegion(m.init);
          this.#mapped.push(m);
        }
        break;
      case REQ.REM_MEM_REG:
        if (p.kind === "mem_reg") {
          const r = p.region;
          this.#memory.removeRegion({
            guestPhysAddr: r.guestPhysAddr,
            userAddr: r.userspaceAddr,
            size: r.memorySize,
          });
          const i = this.#mapped.findIndex((m) => m.region.guestPhysAddr === r.guestPhysAddr);
          if (i >= 0) this.#mapped.splice(i, 1)[0]!.mapping.unmap();
        }
        break;
      case REQ.SET_VRING_NUM:
        if (p.kind === "vring_state") this.#queue(p.index).size = p.num;
        break;
      case REQ.SET_VRING_BASE:
        if (p.kind === "vring_state") {
          const q = this.#queue(p.index);
          q.base = p.num;
          // Sent after SET_VRING_ADDR by some front-ends: the ring exists already.
          q.queue?.setBase(p.num);
          if (this.#opts.usedIdxOnBase === "base") q.queue?.setUsedIdx(p.num);
        }
        break;
      case REQ.SET_VRING_ADDR:
        if (p.kind === "vring_addr") this.#setAddr(p);
        break;
      case REQ.SET_VRING_KICK:
        if (p.kind === "vring_index") {
          const q = this.#queue(p.index);
          this.#dropKick(q);
          if (fds.length === 1) {
            q.kickFd = fds[0]!;
            fds = [];
            this.#loop.add(q.kickFd, Epoll.IN, () => {
              eventfdRead(q.kickFd);
              this.#serve(q);
            });
            q.stopped = false;
            this.#serve(q);
          } else {
            this.problems.push(`queue ${p.index}: kick without fd (polling) unsupported`);
          }
        }
        break;
      case REQ.SET_VRING_CALL:
        if (p.kind === "vring_index") {
          const q = this.#queue(p.index);
          if (q.callFd >= 0) close(q.callFd);
          q.callFd = fds.length === 1 ? fds[0]! : -1;
          fds = [];
          // Completions published before this fd came were never signalled (a
          // kick can overtake this message): signal once, as libvhost-user does.
          if (q.callFd >= 0) eventfdWrite(q.callFd);
        }
        break;
      case REQ.SET_VRING_ENABLE:
        if (p.kind === "vring_state") {
          const q = this.#queue(p.index);
          q.enabled = p.num === 1;
          this.#serve(q);
        }
        break;
      case REQ.GET_VRING_BASE:
        if (p.kind === "vring_state") {
          const q = this.#queue(p.index);
          // The ring stops: no more kicks are served until it is set up again.
          this.#dropKick(q);
          q.stopped = true;
          const num = q.queue?.lastAvailIdx ?? q.base;
          this.#reply(msg, { kind: "vring_state", index: p.index, num });
          replied = true;
        }
        break;
      case REQ.GET_CONFIG:
        if (p.kind === "config") {
          const space = this.#opts.config ??
            encodeVirtioFsConfig({ tag: "fake-fs", numRequestQueues: 1 });
          const data = new Uint8Array(p.data.byteLength);
          data.set(space.subarray(p.offset, p.offset + data.byteLength));
          this.#reply(msg, { kind: "config", offset: p.offset, flags: p.flags, data });
          replied = true;
        }
        break;
      case REQ.SET_BACKEND_REQ_FD:
        if (fds.length === 1) {
          this.#backendChannel?.close();
          this.#backendChannel = new VhostUserChannel(fds[0]!, this.#loop, {
            onMessage: (f) => {
              closeAll(f.fds);
              const m = decodeMessage(f.bytes, 0, { channel: "backend" });
              this.#backendWaiters.shift()?.(m);
            },
            onClose: () => {},
          }, { name: "fake back-end channel" });
          fds = [];
        }
        break;
      case REQ.SET_OWNER:
        break;
      default:
        this.problems.push(`unhandled ${msg.name}`);
    }
    closeAll(fds);
    if (msg.needReply && !replied) {
      this.#reply(msg, { kind: "u64", value: this.#opts.ackFailures?.[msg.name] ?? 0n });
    }
  }

  #map(region: WireRegion, fd: number): Mapped {
    try {
      return { region, ...mapWireRegion(region, fd) };
    } finally {
      // The mapping keeps the memory; the fd is no longer needed.
      close(fd);
    }
  }

  #setAddr(p: VringAddrPayload): void {
    const q = this.#queue(p.index);
    q.addr = p;
    q.queue = new SplitQueue(this.#memory, {
      size: q.size,
      desc: p.descUserAddr,
      avail: p.availUserAddr,
      used: p.usedUserAddr,
      space: "user",
      features: this.#features,
      lastAvailIdx: q.base,
    });
    if (this.#opts.usedIdxOnBase === "base") q.queue.setUsedIdx(q.base);
    q.walker = new ChainWalker(q.queue, {
      indirect: (this.#features & FEATURE_INDIRECT_DESC) !== 0n,
      // As real back-ends: an indirect table may be longer than the ring (Linux's 1 MiB requests).
      maxDescriptors: Math.max(q.size, 1024),
    });
  }

  #dropKick(q: FakeQueue): void {
    if (q.kickFd < 0) return;
    this.#loop.remove(q.kickFd);
    close(q.kickFd);
    q.kickFd = -1;
  }

  // ------------------------------------------------------------ data plane

  #serve(q: FakeQueue): void {
    const ring = q.queue;
    const walker = q.walker;
    const enabled = q.enabled ?? (this.#features & FEATURE_PROTOCOL_FEATURES) === 0n;
    if (
      ring === undefined || walker === undefined || !enabled || q.stopped || q.kickFd < 0 ||
      this.#paused || this.#released
    ) {
      return;
    }
    const done: { head: number; len: number }[] = [];
    ring.disableNotify();
    for (;;) {
      let chain: DescriptorChain | null;
      try {
        chain = walker.pop();
      } catch (err) {
        if (!(err instanceof ChainError)) throw err;
        this.problems.push(`queue ${q.index}: ${err.message}`);
        if (err.head >= 0 && err.head < ring.size) done.push({ head: err.head, len: 0 });
        continue;
      }
      if (chain === null) {
        if (ring.enableNotify()) continue;
        break;
      }
      if (chain.indirect) q.indirectChains++;
      const request = concat(chain.readable);
      const reply = (this.#opts.serve ?? fuseishReply)(request, q.index);
      done.push({ head: chain.head, len: scatter(reply, chain.writable) });
    }
    if (done.length === 0) return;
    if (this.#opts.reorder) done.reverse();
    for (const d of done) ring.push(d.head, d.len);
    q.served += done.length;
    q.peakBatch = Math.max(q.peakBatch, done.length);
    ring.publish();
    if (ring.needNotify() && q.callFd >= 0) eventfdWrite(q.callFd);
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const q of this.#queues.values()) {
      this.#dropKick(q);
      if (q.callFd >= 0) close(q.callFd);
      q.callFd = -1;
      delete q.queue;
      delete q.walker;
    }
    this.#backendChannel?.close();
    this.#memory.clear();
    for (const m of this.#mapped) m.mapping.unmap();
    this.#mapped = [];
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Writes `data` across `buffers` in order; returns the bytes written. */
function scatter(data: Uint8Array, buffers: readonly Uint8Array[]): number {
  let off = 0;
  for (const b of buffers) {
    if (off >= data.byteLength) break;
    const n = Math.min(b.byteLength, data.byteLength - off);
    b.set(data.subarray(off, off + n));
    off += n;
  }
  return off;
}
