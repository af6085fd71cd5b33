/**
 * The vhost-user virtio-fs device: the control plane (features, memory
 * table or slots, rings, eventfds, config space) on one front-end
 * connection, and the data plane serving every queue through a
 * {@link FileServer}.
 *
 * Queue 0 is hiprio (FORGET, INTERRUPT), 1…N the request queues; all are
 * served alike, as requests on any of them are independent. Notification
 * suppression goes both ways with EVENT_IDX: while draining a ring we ask for
 * no kicks (avail_event trails), and we signal the call eventfd only when the
 * driver's used_event says it wants one.
 *
 * @module
 */
import { close, closeAll, Epoll, eventfdRead, eventfdWrite, type EventLoop } from "../sys/mod.ts";
import { VhostUserChannel, type VhostUserFrame } from "../vhost/channel.ts";
import {
  AvailIndexError,
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
  VHOST_USER_PROTOCOL_F,
  type VhostUserMessage,
  VIRTIO_F,
  type VringAddrPayload,
} from "../decode/vhost_user.ts";
import { OUT_HEADER_SIZE } from "../decode/fuse.ts";
import type { TraceRecorder } from "../trace/recorder.ts";
import { VhostDirection } from "../trace/recorder.ts";
import { FileServer, type FileServerOptions, type Served } from "./fs.ts";

const bit = (n: number): bigint => 1n << BigInt(n);
const pbit = (name: keyof typeof VHOST_USER_PROTOCOL_F): bigint => bit(VHOST_USER_PROTOCOL_F[name]);

/** Virtio features offered: VERSION_1, INDIRECT_DESC, EVENT_IDX, PROTOCOL_FEATURES. */
export const DEVICE_FEATURES: bigint = bit(VIRTIO_F.VIRTIO_F_VERSION_1) |
  bit(VIRTIO_F.VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_F.VIRTIO_RING_F_EVENT_IDX) |
  bit(VIRTIO_F.VHOST_USER_F_PROTOCOL_FEATURES);
const INDIRECT = bit(VIRTIO_F.VIRTIO_RING_F_INDIRECT_DESC);
const PROTOCOL_FEATURES = bit(VIRTIO_F.VHOST_USER_F_PROTOCOL_FEATURES);

/** Protocol features offered (CONFIG only with a tag: the config space carries it). */
export function deviceProtocolFeatures(withConfig: boolean): bigint {
  return pbit("MQ") | pbit("REPLY_ACK") | pbit("CONFIGURE_MEM_SLOTS") | pbit("RESET_DEVICE") |
    (withConfig ? pbit("CONFIG") : 0n);
}

/** Memory slots announced with CONFIGURE_MEM_SLOTS (QEMU's vhost-user limit is 509; ours is ample). */
export const MAX_MEM_SLOTS = 32;

/** Options of {@link VirtioFsDevice}. */
export interface VirtioFsDeviceOptions extends FileServerOptions {
  /** Connected socket to the front-end (owned by the device from now on). */
  fd: number;
  /** Loop driving it (the caller runs it). */
  loop: EventLoop;
  /** Request queues besides hiprio (default 1). */
  requestQueues?: number;
  /** virtio-fs tag for the config space; without it CONFIG is not offered (QEMU passes its own). */
  tag?: string;
  /** Records vhost-user messages and FUSE requests/replies (`--capture`). */
  recorder?: TraceRecorder;
}

/** Counters of a {@link VirtioFsDevice}. */
export interface DeviceStats {
  /** FUSE requests served. */
  requests: number;
  /** Calls signalled. */
  calls: number;
  /** Kicks received. */
  kicks: number;
  /** Malformed chains returned empty. */
  malformed: number;
}

interface Queue {
  readonly index: number;
  size: number;
  base: number;
  kickFd: number;
  callFd: number;
  errFd: number;
  enabled: boolean | undefined;
  started: boolean;
  ring: SplitQueue | undefined;
  walker: ChainWalker | undefined;
  /** Bumped when the ring is stopped or rebuilt: completions of older chains are dropped. */
  generation: number;
  /** Why the queue stopped being served (a corrupt ring), until it is set up again. */
  broken?: string;
}

interface Mapped extends MappedRegion {
  region: WireRegion;
}

/** The vhost-user-fs back-end on one connection. */
export class VirtioFsDevice {
  /** Settles when the connection ends: undefined for a clean end, else the error. */
  readonly closed: Promise<Error | undefined>;
  /** Problems seen (malformed chains, unknown requests); logged too. */
  readonly problems: string[] = [];
  #opts: VirtioFsDeviceOptions;
  #loop: EventLoop;
  #channel: VhostUserChannel;
  #server: FileServer;
  #memory = new GuestMemory();
  #mapped: Mapped[] = [];
  #queues = new Map<number, Queue>();
  #features = 0n;
  #protocol = 0n;
  #released = false;
  #log: (m: string) => void;
  #recorder: TraceRecorder | undefined;
  #stats: DeviceStats = { requests: 0, calls: 0, kicks: 0, malformed: 0 };
  #resolveClosed!: (e: Error | undefined) => void;

  /** Starts serving `options.fd`; throws if the shared directory cannot be opened. */
  constructor(options: VirtioFsDeviceOptions) {
    this.#opts = options;
    this.#loop = options.loop;
    this.#log = options.log ?? (() => {});
    this.#recorder = options.recorder;
    this.#server = new FileServer(options);
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#channel = new VhostUserChannel(options.fd, options.loop, {
      onMessage: (f) => this.#onFrame(f),
      onClose: (e) => {
        this.#release();
        this.#resolveClosed(e);
      },
    }, { name: "vhost-user-fs device" });
  }

  /** The file server (its session shows the negotiated FUSE minor and flags). */
  get server(): FileServer {
    return this.#server;
  }

  /** Virtio features acked by SET_FEATURES. */
  get features(): bigint {
    return this.#features;
  }

  /** Protocol features acked. */
  get protocolFeatures(): bigint {
    return this.#protocol;
  }

  /** Counters. */
  get stats(): DeviceStats {
    return { ...this.#stats };
  }

  /** Queues: 1 hiprio + request queues. */
  get queueCount(): number {
    return 1 + (this.#opts.requestQueues ?? 1);
  }

  /** Whether queue `index` is serving (kick fd set, enabled, not stopped). */
  running(index: number): boolean {
    const q = this.#queues.get(index);
    return q !== undefined && q.started && q.ring !== undefined && this.#enabled(q);
  }

  /** Closes the connection and releases everything (the file server's root fd included). */
  close(): void {
    this.#channel.close();
    this.#release();
    this.#server.close();
  }

  // ------------------------------------------------------------ control plane

  #reply(msg: VhostUserMessage, payload: Payload): void {
    const bytes = encodeMessage({
      channel: "frontend",
      request: msg.request,
      isReply: true,
      payload,
    });
    this.#recorder?.vhostUser(VhostDirection.BackToFront, bytes, 0);
    this.#channel.send(bytes);
  }

  #queue(index: number): Queue {
    if (!Number.isInteger(index) || index < 0 || index >= this.queueCount) {
      throw new Error(`queue index ${index} out of range (${this.queueCount} queues)`);
    }
    let q = this.#queues.get(index);
    if (q === undefined) {
      q = {
        index,
        size: 0,
        base: 0,
        kickFd: -1,
        callFd: -1,
        errFd: -1,
        enabled: undefined,
        started: false,
        ring: undefined,
        walker: undefined,
        generation: 0,
      };
      this.#queues.set(index, q);
    }
    return q;
  }

  #onFrame(frame: VhostUserFrame): void {
    this.#recorder?.vhostUser(VhostDirection.FrontToBack, frame.bytes, frame.fds.length);
    let msg: VhostUserMessage;
    try {
      msg = decodeMessage(frame.bytes, frame.fds.length, { channel: "frontend" });
    } catch (err) {
      closeAll(frame.fds);
      this.#problem(`undecodable vhost-user message: ${(err as Error).message}`);
      this.#channel.close(err as Error);
      return;
    }
    let fds = frame.fds;
    let replied = false;
    let ack = 0n;
    try {
      const p = msg.payload;
      switch (msg.request) {
        case REQ.GET_FEATURES:
          this.#reply(msg, { kind: "u64", value: DEVICE_FEATURES });
          replied = true;
          break;
        case REQ.SET_FEATURES:
          if (p.kind === "u64") {
            if ((p.value & ~DEVICE_FEATURES) !== 0n) {
              this.#problem(`SET_FEATURES acks unoffered bits 0x${p.value.toString(16)}`);
            }
            this.#features = p.value & DEVICE_FEATURES;
          }
          break;
        case REQ.GET_PROTOCOL_FEATURES:
          this.#reply(msg, {
            kind: "u64",
            value: deviceProtocolFeatures(this.#opts.tag !== undefined),
          });
          replied = true;
          break;
        case REQ.SET_PROTOCOL_FEATURES:
          if (p.kind === "u64") {
            this.#protocol = p.value & deviceProtocolFeatures(this.#opts.tag !== undefined);
          }
          break;
        case REQ.GET_QUEUE_NUM:
          this.#reply(msg, { kind: "u64", value: BigInt(this.queueCount) });
          replied = true;
          break;
        case REQ.GET_MAX_MEM_SLOTS:
          this.#reply(msg, { kind: "u64", value: BigInt(MAX_MEM_SLOTS) });
          replied = true;
          break;
        case REQ.SET_OWNER:
          break;
        case REQ.RESET_OWNER:
        case REQ.RESET_DEVICE:
          this.#reset();
          break;
        case REQ.SET_MEM_TABLE:
          if (p.kind === "memory_table") {
            const taken = fds;
            fds = [];
            const fresh: Mapped[] = [];
            try {
              p.regions.forEach((r, i) => fresh.push(this.#map(r, taken[i]!)));
            } finally {
              closeAll(taken.slice(fresh.length));
            }
            const old = this.#mapped;
            this.#mapped = fresh;
            this.#memory.setRegions(fresh.map((m) => m.init));
            for (const q of this.#queues.values()) q.ring?.refresh();
            for (const m of old) m.mapping.unmap();
          }
          break;
        case REQ.ADD_MEM_REG:
          if (p.kind === "mem_reg") {
            if (this.#mapped.length >= MAX_MEM_SLOTS) throw new Error("no free memory slot");
            const fd = fds[0];
            fds = fds.slice(1);
            if (fd === undefined) throw new Error("ADD_MEM_REG without an fd");
            const m = this.#map(p.region, fd);
            this.#memory.addRegion(m.init);
            this.#mapped.push(m);
          }
          break;
        case REQ.REM_MEM_REG:
          if (p.kind === "mem_reg") {
            const r = p.region;
            const i = this.#mapped.findIndex((m) =>
              m.region.guestPhysAddr === r.guestPhysAddr && m.region.memorySize === r.memorySize
            );
            if (i < 0) {
              throw new Error(`REM_MEM_REG: no region at 0x${r.guestPhysAddr.toString(16)}`);
            }
            this.#memory.removeRegion({
              guestPhysAddr: r.guestPhysAddr,
              userAddr: r.userspaceAddr,
              size: r.memorySize,
            });
            this.#mapped.splice(i, 1)[0]!.mapping.unmap();
          }
          break;
        case REQ.SET_VRING_NUM:
          if (p.kind === "vring_state") this.#queue(p.index).size = p.num;
          break;
        case REQ.SET_VRING_BASE:
          if (p.kind === "vring_state") {
            const q = this.#queue(p.index);
            q.base = p.num;
            // Some front-ends send it after SET_VRING_ADDR: the ring exists already.
            q.ring?.setBase(p.num);
          }
          break;
        case REQ.SET_VRING_ADDR:
          if (p.kind === "vring_addr") this.#setAddr(p);
          break;
        case REQ.SET_VRING_KICK:
          if (p.kind === "vring_index") {
            const q = this.#queue(p.index);
            this.#dropKick(q);
            const fd = fds[0];
            fds = fds.slice(1);
            if (fd === undefined) {
              throw new Error(`queue ${p.index}: polling mode (no kick fd) is not supported`);
            }
            q.kickFd = fd;
            this.#loop.add(fd, Epoll.IN, () => {
              const n = eventfdRead(fd);
              if (n > 0n) this.#stats.kicks++;
              this.#serve(q);
            });
            q.started = true;
            this.#serve(q);
          }
          break;
        case REQ.SET_VRING_CALL:
          if (p.kind === "vring_index") {
            const q = this.#queue(p.index);
            if (q.callFd >= 0) close(q.callFd);
            q.callFd = fds[0] ?? -1;
            fds = fds.slice(1);
            // Completions published before this fd arrived were never signalled.
            if (q.callFd >= 0 && q.ring !== undefined) eventfdWrite(q.callFd);
          }
          break;
        case REQ.SET_VRING_ERR:
          if (p.kind === "vring_index") {
            const q = this.#queue(p.index);
            if (q.errFd >= 0) close(q.errFd);
            q.errFd = fds[0] ?? -1;
            fds = fds.slice(1);
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
            const num = this.#stop(q);
            this.#reply(msg, { kind: "vring_state", index: p.index, num });
            replied = true;
          }
          break;
        case REQ.GET_CONFIG:
          if (p.kind === "config") {
            const space = encodeVirtioFsConfig({
              tag: this.#opts.tag ?? "",
              numRequestQueues: this.queueCount - 1,
            });
            const data = new Uint8Array(p.data.byteLength);
            data.set(space.subarray(p.offset, p.offset + data.byteLength));
            this.#reply(msg, { kind: "config", offset: p.offset, flags: p.flags, data });
            replied = true;
          }
          break;
        case REQ.SET_CONFIG:
          // virtio-fs config space is read-only for the driver.
          ack = 1n;
          break;
        default:
          this.#problem(`unsupported request ${msg.name}`);
          ack = 1n;
      }
    } catch (err) {
      this.#problem(`${msg.name}: ${(err as Error).message}`);
      ack = 1n;
    } finally {
      closeAll(fds);
    }
    if (msg.needReply && !replied) this.#reply(msg, { kind: "u64", value: ack });
  }

  #problem(text: string): void {
    this.problems.push(text);
    this.#log(text);
  }

  #map(region: WireRegion, fd: number): Mapped {
    try {
      return { region, ...mapWireRegion(region, fd) };
    } finally {
      // The mapping keeps the memory alive; the fd is not needed any more.
      close(fd);
    }
  }

  #setAddr(p: VringAddrPayload): void {
    const q = this.#queue(p.index);
    q.generation++;
    delete q.broken;
    q.ring = new SplitQueue(this.#memory, {
      size: q.size,
      desc: p.descUserAddr,
      avail: p.availUserAddr,
      used: p.usedUserAddr,
      space: "user",
      features: this.#features,
      lastAvailIdx: q.base,
    });
    q.walker = new ChainWalker(q.ring, {
      indirect: (this.#features & INDIRECT) !== 0n,
      // Indirect tables may carry a 1 MiB request's 256+ pages on a small ring.
      maxDescriptors: Math.max(q.size, 1024),
      record: false,
    });
  }

  #dropKick(q: Queue): void {
    if (q.kickFd < 0) return;
    this.#loop.remove(q.kickFd);
    close(q.kickFd);
    q.kickFd = -1;
  }

  /** GET_VRING_BASE: the ring stops; returns the next avail index to process. */
  #stop(q: Queue): number {
    this.#dropKick(q);
    q.started = false;
    q.generation++;
    const num = q.ring?.lastAvailIdx ?? q.base;
    q.base = num;
    q.ring = undefined;
    q.walker = undefined;
    return num;
  }

  #enabled(q: Queue): boolean {
    // Without PROTOCOL_FEATURES a ring is enabled once started; with it, by SET_VRING_ENABLE.
    return q.enabled ?? (this.#features & PROTOCOL_FEATURES) === 0n;
  }

  // ------------------------------------------------------------ data plane

  #serve(q: Queue): void {
    const ring = q.ring;
    const walker = q.walker;
    if (ring === undefined || walker === undefined || !q.started || !this.#enabled(q)) return;
    if (this.#released || q.kickFd < 0 || q.broken !== undefined) return;
    let completed = 0;
    ring.disableNotify();
    for (;;) {
      let chain: DescriptorChain | null;
      try {
        chain = walker.pop();
      } catch (err) {
        if (err instanceof AvailIndexError) {
          // The ring itself is corrupt: the device needs a reset (virtio's DEVICE_NEEDS_RESET);
          // serving on would read garbage heads. Other queues and the connection go on.
          q.broken = err.message;
          this.#problem(`queue ${q.index}: ${err.message}; not served until it is set up again`);
          this.#recorder?.note({ type: "queue_broken", queue: q.index, reason: err.message });
          break;
        }
        if (!(err instanceof ChainError)) throw err;
        this.#stats.malformed++;
        this.#problem(`queue ${q.index}: ${err.message}`);
        this.#recorder?.malformed(q.index, err.head, err.message);
        if (err.head >= 0 && err.head < ring.size) {
          ring.push(err.head, 0);
          completed++;
        }
        continue;
      }
      if (chain === null) {
        // Kicks back on; a chain that raced in meanwhile is served now, not lost.
        if (ring.enableNotify()) continue;
        break;
      }
      const c = chain;
      const started = process.hrtime.bigint();
      const seq = this.#recorder?.request({
        queue: q.index,
        head: c.head,
        descriptors: c.readable.length + c.writable.length,
        writableCapacity: c.writableLength,
        body: c.readable,
        length: c.readableLength,
        residenceNs: 0n,
      }) ?? -1;
      const out = this.#server.handle(c.readable, c.writable);
      this.#stats.requests++;
      if (out instanceof Promise) {
        const generation = q.generation;
        out.then((served) => {
          // The ring was stopped or rebuilt since: that chain belongs to nobody now.
          if (q.generation !== generation || q.ring !== ring) return;
          this.#complete(q, c, served, started, seq);
          ring.publish();
          this.#notify(q, ring);
        }, (err) => this.#problem(`queue ${q.index}: ${(err as Error).message}`));
        continue;
      }
      this.#complete(q, c, out, started, seq);
      completed++;
    }
    if (completed === 0) return;
    ring.publish();
    this.#notify(q, ring);
  }

  #complete(q: Queue, c: DescriptorChain, served: Served, started: bigint, seq: number): void {
    // A reply buffer too small for even the out header gets nothing rather than half a header.
    if (served.len < OUT_HEADER_SIZE) served = { ...served, len: 0 };
    q.ring!.push(c.head, served.len);
    if (this.#recorder !== undefined && served.len > 0) {
      this.#recorder.reply({
        queue: q.index,
        head: c.head,
        body: c.writable,
        length: served.len,
        latencyNs: process.hrtime.bigint() - started,
        requestSeq: seq,
      });
    }
  }

  #notify(q: Queue, ring: SplitQueue): void {
    if (q.callFd >= 0 && ring.needNotify()) {
      eventfdWrite(q.callFd);
      this.#stats.calls++;
    }
  }

  #reset(): void {
    for (const q of this.#queues.values()) this.#releaseQueue(q);
    this.#queues.clear();
    this.#memory.clear();
    for (const m of this.#mapped) m.mapping.unmap();
    this.#mapped = [];
    this.#features = 0n;
    this.#protocol = 0n;
    this.#server.reset();
  }

  #releaseQueue(q: Queue): void {
    this.#dropKick(q);
    if (q.callFd >= 0) close(q.callFd);
    if (q.errFd >= 0) close(q.errFd);
    q.callFd = -1;
    q.errFd = -1;
    q.generation++;
    q.ring = undefined;
    q.walker = undefined;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const q of this.#queues.values()) this.#releaseQueue(q);
    this.#memory.clear();
    for (const m of this.#mapped) m.mapping.unmap();
    this.#mapped = [];
    this.#server.reset();
  }
}
