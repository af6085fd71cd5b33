/**
 * The guest side of one virtqueue, asynchronous: {@link DriverQueue.submit}
 * places a request chain in the ring and resolves when the device returns
 * it in the used ring. Many requests may be in flight; requests that do not
 * fit (descriptors or memory) wait in FIFO order. Submissions within one
 * microtask turn are published together and kick the device once, and only
 * when it asked for kicks (VIRTIO_F_EVENT_IDX avail_event, or
 * VRING_USED_F_NO_NOTIFY).
 *
 * @module
 */
import { close, Epoll, eventfd, eventfdRead, eventfdWrite, type EventLoop } from "../sys/mod.ts";
import {
  type BufferSpec,
  contiguousRingLayout,
  DESC_SIZE,
  SplitQueueDriver,
  validateQueueSize,
} from "../virtq/mod.ts";
import { GuestMemoryExhaustedError, QueueError } from "./errors.ts";
import type { FrontendMemory, GuestBuffer } from "./memory.ts";

/** Options of {@link DriverQueue}. */
export interface DriverQueueOptions {
  /** Virtqueue index (0 = hiprio for virtio-fs). */
  index: number;
  /** Queue size, a power of two. */
  size: number;
  /** Guest memory holding the rings and buffers. */
  memory: FrontendMemory;
  /** Loop that watches the call eventfd (must be running for completions to arrive). */
  loop: EventLoop;
  /** VIRTIO_F_EVENT_IDX negotiated (default false). */
  eventIdx?: boolean;
  /** Write every chain as an indirect table (VIRTIO_F_INDIRECT_DESC must be negotiated). */
  indirect?: boolean;
}

/** What the raw hook of {@link SubmitOptions.mutate} is told about the chain it may corrupt. */
export interface RawChainInfo {
  /** Device-readable buffers as written. */
  readonly readable: readonly BufferSpec[];
  /** Device-writable buffers as written. */
  readonly writable: readonly BufferSpec[];
  /** Guest-physical address of the indirect table, when the chain uses one. */
  readonly indirectTable?: number;
}

/** Options of {@link DriverQueue.submit}. */
export interface SubmitOptions {
  /** Split the writable capacity over this many descriptors (default 1). */
  writableSegments?: number;
  /** Override the queue's indirect setting for this chain. */
  indirect?: boolean;
  /**
   * Raw mode for tests: called after the chain is written and before it is
   * published, to rewrite it with the driver's raw writers (writeDescriptor,
   * writeTable). The driver's bookkeeping still knows the chain by its head,
   * so a device returning it (e.g. used with length 0) completes the request.
   */
  mutate?: (driver: SplitQueueDriver, head: number, chain: RawChainInfo) => void;
}

/** A completed request. */
export interface Completion {
  /** Head descriptor index the chain used. */
  readonly head: number;
  /** Length the device reported in the used element. */
  readonly len: number;
  /** Copy of the first min(len, capacity) bytes of the writable buffers. */
  readonly bytes: Uint8Array;
}

interface Job {
  readable: Uint8Array[];
  capacity: number;
  options: SubmitOptions;
  resolve: (c: Completion) => void;
  reject: (e: Error) => void;
  data?: GuestBuffer;
  table?: GuestBuffer;
  readableBytes: number;
}

/** Counters of a {@link DriverQueue}. */
export interface DriverQueueStats {
  /** Requests completed. */
  completed: number;
  /** Most requests in the ring at once. */
  peakInFlight: number;
  /** Kicks written to the kick eventfd. */
  kicks: number;
  /** Publishes after which the device did not want a kick. */
  suppressedKicks: number;
  /** Call eventfd wake-ups that carried a count. */
  notifications: number;
}

/**
 * One virtqueue driven from the guest side: rings allocated in
 * {@link FrontendMemory}, a kick eventfd we write and a call eventfd we
 * watch (both owned by the queue; the front-end sends them to the back-end).
 */
export class DriverQueue {
  /** Virtqueue index. */
  readonly index: number;
  /** Queue size. */
  readonly size: number;
  /** VIRTIO_F_EVENT_IDX in effect. */
  readonly eventIdx: boolean;
  /** Eventfd the device waits on (we write it). */
  readonly kickFd: number;
  /** Eventfd the device signals (we watch it). */
  readonly callFd: number;
  /** Guest-physical ring addresses. */
  readonly rings: { readonly desc: number; readonly avail: number; readonly used: number };
  #memory: FrontendMemory;
  #loop: EventLoop;
  #driver: SplitQueueDriver;
  #ringBuffer: GuestBuffer;
  #indirect: boolean;
  #inflight = new Map<number, Job>();
  #backlog: Job[] = [];
  #usedIdx = 0;
  #flushScheduled = false;
  #failure: Error | undefined;
  #closed = false;
  #stats: DriverQueueStats = {
    completed: 0,
    peakInFlight: 0,
    kicks: 0,
    suppressedKicks: 0,
    notifications: 0,
  };

  /** Allocates and zeroes the rings, creates the eventfds and starts watching the call fd. */
  constructor(options: DriverQueueOptions) {
    validateQueueSize(options.size);
    this.index = options.index;
    this.size = options.size;
    this.eventIdx = options.eventIdx ?? false;
    this.#indirect = options.indirect ?? false;
    this.#memory = options.memory;
    this.#loop = options.loop;
    const l = contiguousRingLayout(options.size, 4096);
    this.#ringBuffer = options.memory.alloc(l.total, 4096);
    const fds: number[] = [];
    try {
      const base = this.#ringBuffer.addr;
      this.rings = { desc: base + l.desc, avail: base + l.avail, used: base + l.used };
      this.#ringBuffer.bytes.fill(0);
      this.#driver = new SplitQueueDriver(options.memory.guest, {
        size: options.size,
        ...this.rings,
        eventIdx: this.eventIdx,
      });
      this.kickFd = eventfd();
      fds.push(this.kickFd);
      this.callFd = eventfd();
      fds.push(this.callFd);
      this.#loop.add(this.callFd, Epoll.IN, () => this.#onCall());
    } catch (err) {
      fds.forEach(close);
      options.memory.free(this.#ringBuffer);
      throw err;
    }
  }

  /** The ring's driver, for raw writes in tests (writeDescriptor, pushAvail, setAvailIdx…). */
  get driver(): SplitQueueDriver {
    return this.#driver;
  }

  /** User addresses of the rings, as SET_VRING_ADDR sends them. */
  get userAddresses(): { desc: bigint; avail: bigint; used: bigint } {
    const l = this.#driver.layout;
    return {
      desc: this.#memory.guestToUser(this.rings.desc, l.descBytes),
      avail: this.#memory.guestToUser(this.rings.avail, l.availBytes),
      used: this.#memory.guestToUser(this.rings.used, l.usedBytes),
    };
  }

  /** Requests in the ring, not yet returned. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Requests waiting for descriptors or memory. */
  get backlog(): number {
    return this.#backlog.length;
  }

  /** avail idx as last published (the guest-side ring index). */
  get availIdx(): number {
    return this.#driver.availIdx;
  }

  /** Counters so far. */
  get stats(): DriverQueueStats {
    return { ...this.#stats };
  }

  /** True once closed or failed. */
  get closed(): boolean {
    return this.#closed || this.#failure !== undefined;
  }

  /**
   * Submits a request: `readable` (one buffer or segments, each its own
   * descriptor) for the device to read, and `writableCapacity` bytes for it
   * to write. Resolves when the device returns the chain; rejects with
   * QueueError when the queue closes or fails first.
   */
  submit(
    readable: Uint8Array | readonly Uint8Array[],
    writableCapacity: number,
    options: SubmitOptions = {},
  ): Promise<Completion> {
    const segments = (readable instanceof Uint8Array ? [readable] : [...readable])
      .filter((s) => s.byteLength > 0);
    const readableBytes = segments.reduce((n, s) => n + s.byteLength, 0);
    const wsegs = options.writableSegments ?? 1;
    if (!Number.isSafeInteger(writableCapacity) || writableCapacity < 0) {
      return Promise.reject(new RangeError(`writable capacity ${writableCapacity}`));
    }
    if (!Number.isInteger(wsegs) || wsegs < 1) {
      return Promise.reject(new RangeError(`writableSegments ${wsegs}`));
    }
    const descriptors = segments.length + (writableCapacity > 0 ? wsegs : 0);
    if (descriptors === 0) {
      return Promise.reject(new RangeError("a request needs readable bytes or writable capacity"));
    }
    const indirect = options.indirect ?? this.#indirect;
    if (!indirect && descriptors > this.size) {
      return Promise.reject(
        new QueueError(this.index, `chain of ${descriptors} descriptors > queue size ${this.size}`),
      );
    }
    if (this.#failure !== undefined || this.#closed) {
      return Promise.reject(
        new QueueError(this.index, "closed", this.#failure ? { cause: this.#failure } : undefined),
      );
    }
    return new Promise<Completion>((resolve, reject) => {
      const job: Job = {
        readable: segments,
        capacity: writableCapacity,
        options,
        resolve,
        reject,
        readableBytes,
      };
      if (this.#backlog.length > 0 || !this.#place(job)) this.#backlog.push(job);
    });
  }

  /**
   * Collects used entries without waiting for a notification (the call
   * eventfd triggers the same). Returns how many requests completed.
   */
  poll(): number {
    const before = this.#stats.completed;
    this.#reap();
    return this.#stats.completed - before;
  }

  /**
   * Rejects every pending request with `error` (wrapped in a QueueError) and
   * stops taking new ones; buffers in the ring stay allocated, since a
   * device may still write them. The fds stay open until {@link close}.
   */
  fail(error: Error): void {
    if (this.#failure !== undefined || this.#closed) return;
    this.#failure = error;
    if (this.#loop.has(this.callFd)) this.#loop.remove(this.callFd);
    const jobs = [...this.#inflight.values(), ...this.#backlog];
    this.#inflight.clear();
    this.#backlog = [];
    for (const j of jobs) j.reject(new QueueError(this.index, error.message, { cause: error }));
  }

  /** Rejects what is pending, stops watching, closes both eventfds and frees the rings. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.fail(new QueueError(this.index, "closed"));
    this.#closed = true;
    close(this.kickFd);
    close(this.callFd);
    // Memory closed first (or shared with a closed front-end) makes free a no-op.
    this.#memory.free(this.#ringBuffer);
  }

  #place(job: Job): boolean {
    const driver = this.#driver;
    const indirect = job.options.indirect ?? this.#indirect;
    const wsegs = job.capacity > 0 ? job.options.writableSegments ?? 1 : 0;
    const total = job.readable.length + wsegs;
    if (driver.freeCount < (indirect ? 1 : total)) return false;
    const dataSize = job.readableBytes + job.capacity;
    let data: GuestBuffer | undefined;
    let table: GuestBuffer | undefined;
    try {
      data = this.#memory.alloc(Math.max(dataSize, 1), 64);
      if (indirect) table = this.#memory.alloc(DESC_SIZE * total, 16);
    } catch (err) {
      if (data !== undefined) this.#memory.free(data);
      // Out of memory with nothing in flight means it will never fit.
      if (err instanceof GuestMemoryExhaustedError && this.#inflight.size > 0) return false;
      job.reject(err instanceof Error ? err : new Error(String(err)));
      return true;
    }
    const readable: BufferSpec[] = [];
    let off = 0;
    for (const s of job.readable) {
      data.bytes.set(s, off);
      readable.push({ addr: data.addr + off, len: s.byteLength });
      off += s.byteLength;
    }
    const writable: BufferSpec[] = [];
    for (let i = 0; i < wsegs; i++) {
      // As even as possible; earlier segments take the remainder.
      const len = Math.floor(job.capacity / wsegs) + (i < job.capacity % wsegs ? 1 : 0);
      if (len > 0) writable.push({ addr: data.addr + off, len });
      off += len;
    }
    const head = driver.addChain(
      readable,
      writable,
      table === undefined ? {} : { indirectTable: table.addr },
    );
    job.data = data;
    if (table !== undefined) job.table = table;
    this.#inflight.set(head, job);
    const mutate = job.options.mutate;
    if (mutate !== undefined) {
      const info: RawChainInfo = table === undefined
        ? { readable, writable }
        : { readable, writable, indirectTable: table.addr };
      try {
        mutate(driver, head, info);
      } catch (err) {
        // The chain is in the ring already: it completes unseen, its buffers freed then.
        job.reject(err instanceof Error ? err : new Error(String(err)));
        job.resolve = () => {};
      }
    }
    if (this.#inflight.size > this.#stats.peakInFlight) {
      this.#stats.peakInFlight = this.#inflight.size;
    }
    this.#scheduleFlush();
    return true;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.closed || this.#driver.unpublished === 0) return;
    this.#driver.publish();
    if (this.#driver.needKick()) {
      eventfdWrite(this.kickFd);
      this.#stats.kicks++;
    } else {
      this.#stats.suppressedKicks++;
    }
  }

  #onCall(): void {
    if (eventfdRead(this.callFd) > 0n) this.#stats.notifications++;
    this.#reap();
  }

  #reap(): void {
    if (this.closed) return;
    const driver = this.#driver;
    for (;;) {
      let used;
      try {
        used = driver.collectUsed();
      } catch (err) {
        this.fail(
          new QueueError(this.index, `device broke the used ring: ${String(err)}`, { cause: err }),
        );
        return;
      }
      for (const u of used) this.#complete(u.id, u.len);
      this.#usedIdx = (this.#usedIdx + used.length) & 0xffff;
      // Ask for a call on the next used entry, then look again: the device may
      // have published in between and judged the old used_event.
      if (this.eventIdx) driver.setUsedEvent(this.#usedIdx);
      if (used.length === 0) break;
    }
    while (this.#backlog.length > 0 && this.#place(this.#backlog[0]!)) this.#backlog.shift();
  }

  #complete(head: number, len: number): void {
    const job = this.#inflight.get(head);
    if (job === undefined) return; // collectUsed already refused unknown heads
    this.#inflight.delete(head);
    const n = Math.min(len, job.capacity);
    const data = job.data!;
    const bytes = data.bytes.slice(job.readableBytes, job.readableBytes + n);
    this.#memory.free(data);
    if (job.table !== undefined) this.#memory.free(job.table);
    this.#stats.completed++;
    job.resolve({ head, len, bytes });
  }
}
