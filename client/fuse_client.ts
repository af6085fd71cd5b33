/**
 * A FUSE session on the built-in front-end (what the guest's virtio-fs
 * driver does): FUSE_INIT first, then any request built with decode/'s
 * encoders, posted on a request queue (FORGET and INTERRUPT on hiprio),
 * with its reply decoded and checked against the request's unique. Many
 * requests may be in flight on each queue. Typed helpers cover the common
 * operations; {@link FuseClient.send} takes any request and
 * {@link FuseClient.sendRaw} any bytes.
 *
 * @module
 */
import { errnoName } from "../sys/errno.ts";
import {
  decodeReply,
  decodeRequest,
  encodeRequest,
  type FuseExtension,
  fuseOp,
  type FuseReply,
  FuseSession,
  InitFlags,
  Opcode,
  OUT_HEADER_SIZE,
  type StructInit,
} from "../decode/fuse.ts";
import type { Decoded } from "../decode/struct.ts";
import type { Completion, DriverQueue, SubmitOptions } from "./driver_queue.ts";
import { FrontendError, ProtocolError } from "./errors.ts";
import { type FrontendOptions, VhostUserFrontend } from "./frontend.ts";
import { EventLoop, type EventLoopOptions } from "../sys/mod.ts";

/** A FUSE reply carried an error (negative `fuse_out_header.error`). */
export class FuseErrnoError extends FrontendError {
  /** Positive errno. */
  readonly errno: number;
  /** Its name (`ENOENT`). */
  readonly errnoName: string;
  /** The request's opcode. */
  readonly opcode: number;
  /** The request's nodeid. */
  readonly nodeid: bigint;

  /** An error for `opcode` on `nodeid` answered with `errno`. */
  constructor(opcode: number, nodeid: bigint, errno: number, detail = "") {
    const name = errnoName(errno);
    super(
      `FUSE ${fuseOp(opcode)?.name ?? `opcode ${opcode}`} nodeid ${nodeid}${detail}: ${name}`,
    );
    this.name = "FuseErrnoError";
    this.errno = errno;
    this.errnoName = name;
    this.opcode = opcode;
    this.nodeid = nodeid;
  }
}

/** One FUSE request for {@link FuseClient.send}; `unique` and lengths are filled in. */
export interface FuseCall {
  /** Opcode. */
  readonly opcode: number;
  /** Target inode (default 0). */
  readonly nodeid?: bigint;
  /** The opcode's struct. */
  readonly arg?: StructInit;
  /** Strings in the order of the opcode's names. */
  readonly names?: readonly string[];
  /** Payload. */
  readonly data?: Uint8Array | readonly Uint8Array[];
  /** Counted elements (BATCH_FORGET…). */
  readonly items?: readonly StructInit[];
  /** Request extensions. */
  readonly extensions?: readonly FuseExtension[];
  /** Caller credentials (default: the client's). */
  readonly uid?: number;
  /** Caller gid. */
  readonly gid?: number;
  /** Caller pid. */
  readonly pid?: number;
}

/** Options of {@link FuseClient.send}. */
export interface SendOptions {
  /** Queue index (default: hiprio for FORGET/BATCH_FORGET/INTERRUPT, else round-robin). */
  readonly queue?: number;
  /** Writable bytes offered for the reply (default: from the opcode and its size argument). */
  readonly replyCapacity?: number;
  /** Use this unique instead of the next one (tests). */
  readonly unique?: bigint;
  /** Passed to {@link DriverQueue.submit} (raw chain rewriting, segments). */
  readonly submit?: SubmitOptions;
}

/** A finished request. */
export interface FuseResult {
  /** The unique it was sent with. */
  readonly unique: bigint;
  /** Opcode sent. */
  readonly opcode: number;
  /** The decoded reply; undefined for opcodes without one (FORGET…). */
  readonly reply: FuseReply | undefined;
  /** 0, or the positive errno of an error reply. */
  readonly errno: number;
  /** The raw completion (used length and bytes). */
  readonly completion: Completion;
  /** Submit to completion, in ms. */
  readonly latencyMs: number;
}

/** Options of {@link FuseClient.connect} and {@link FuseClient.init}. */
export interface FuseClientOptions {
  /** Request queues to set up (default 1; virtio-fs queues 1…N). */
  readonly requestQueues?: number;
  /** Queue size (default 256). */
  readonly queueSize?: number;
  /** Guest memory in bytes (default 64 MiB). */
  readonly memorySize?: number;
  /** Indirect descriptor tables for every chain. */
  readonly indirect?: boolean;
  /** Skip FUSE_INIT (raw tests send their own). */
  readonly skipInit?: boolean;
  /** INIT minor offered (default 38). */
  readonly minor?: number;
  /** INIT flags offered (default {@link DEFAULT_INIT_FLAGS}). */
  readonly initFlags?: bigint;
  /** INIT max_readahead (default 128 KiB). */
  readonly maxReadahead?: number;
  /** Default uid/gid/pid in request headers (default 0, 0, 1). */
  readonly uid?: number;
  /** Default gid. */
  readonly gid?: number;
  /** Default pid. */
  readonly pid?: number;
  /** Options for the underlying front-end. */
  readonly frontend?: FrontendOptions;
  /**
   * {@link connect}: run the front-end on an event loop made with these
   * options (e.g. `{ wait: "blocking" }` in a process that does nothing but
   * drive the back-end), closed with the client. Default: the front-end's own.
   */
  readonly eventLoop?: EventLoopOptions;
}

const flag = (name: string): bigint => {
  const b = InitFlags.bit(name);
  if (b === undefined) throw new Error(`fuse client: unknown INIT flag ${name}`);
  return b;
};

/** The INIT flags the client offers by default (a subset of what a Linux 6.x guest offers). */
export const DEFAULT_INIT_FLAGS: bigint = [
  "ASYNC_READ",
  "POSIX_LOCKS",
  "ATOMIC_O_TRUNC",
  "EXPORT_SUPPORT",
  "BIG_WRITES",
  "DONT_MASK",
  "DO_READDIRPLUS",
  "READDIRPLUS_AUTO",
  "ASYNC_DIO",
  "PARALLEL_DIROPS",
  "MAX_PAGES",
].reduce((a, n) => a | flag(n), 0n);

const HIPRIO_OPS = new Set<number>([Opcode.FORGET, Opcode.BATCH_FORGET, Opcode.INTERRUPT]);
const NO_REPLY_OPS = new Set<number>([
  Opcode.FORGET,
  Opcode.BATCH_FORGET,
  Opcode.INTERRUPT,
  Opcode.NOTIFY_REPLY,
]);
/** Big enough for every fixed-size reply struct (fuse_statx_out is the largest, 256 + 16). */
const DEFAULT_REPLY = 512;
const EXACT_OPS = new Set<number>([Opcode.READ, Opcode.READDIR, Opcode.READDIRPLUS]);
const XATTR_OPS = new Set<number>([Opcode.GETXATTR, Opcode.LISTXATTR]);

function num(v: unknown): number {
  return typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : 0;
}

function big(v: unknown): bigint {
  return typeof v === "bigint" ? v : typeof v === "number" ? BigInt(v) : 0n;
}

/** Attributes and entry of a LOOKUP/MKDIR/CREATE… reply. */
export interface FuseEntry {
  /** nodeid to use for the new inode. */
  readonly nodeid: bigint;
  /** The whole decoded `fuse_entry_out` (attributes flattened). */
  readonly out: Decoded;
}

/** A CREATE reply: the entry and the open file handle. */
export interface FuseCreated extends FuseEntry {
  /** File handle. */
  readonly fh: bigint;
}

/**
 * A FUSE connection over a {@link VhostUserFrontend}. Build one with
 * {@link FuseClient.connect} (connect, set up queues, INIT) or around a
 * started front-end, then {@link init}.
 */
export class FuseClient {
  /** The vhost-user front-end underneath. */
  readonly frontend: VhostUserFrontend;
  /** The FUSE state (minor, flags) learnt from INIT. */
  readonly session: FuseSession;
  #next = 1n;
  #rr = 0;
  #requestQueues: number[];
  #uid: number;
  #gid: number;
  #pid: number;
  #initReply: Decoded | undefined;
  #ownLoop: { loop: EventLoop; running: Promise<void> } | undefined;

  /** A client on `frontend`, whose queues are already set up (see {@link VhostUserFrontend.start}). */
  constructor(frontend: VhostUserFrontend, options: FuseClientOptions = {}) {
    this.frontend = frontend;
    this.session = new FuseSession({ minor: options.minor ?? 38 });
    this.#requestQueues = [...frontend.queues.keys()].filter((i) => i > 0).sort((a, b) => a - b);
    this.#uid = options.uid ?? 0;
    this.#gid = options.gid ?? 0;
    this.#pid = options.pid ?? 1;
  }

  /**
   * Connects to the back-end at `path`, negotiates, shares memory, sets up
   * hiprio and the request queues, and sends FUSE_INIT (unless skipped).
   */
  static async connect(path: string, options: FuseClientOptions = {}): Promise<FuseClient> {
    let own: { loop: EventLoop; running: Promise<void> } | undefined;
    if (options.eventLoop !== undefined) {
      const loop = new EventLoop(options.eventLoop);
      own = { loop, running: loop.run() };
    }
    let fe: VhostUserFrontend;
    try {
      fe = VhostUserFrontend.connect(path, {
        ...options.frontend,
        ...(own === undefined ? {} : { loop: own.loop }),
      });
    } catch (err) {
      if (own !== undefined) await FuseClient.#endLoop(own);
      throw err;
    }
    try {
      await fe.start({
        queues: 1 + (options.requestQueues ?? 1),
        queueSize: options.queueSize ?? 256,
        memory: { size: options.memorySize ?? 64 << 20 },
        ...(options.indirect === undefined ? {} : { indirect: options.indirect }),
      });
      const client = new FuseClient(fe, options);
      client.#ownLoop = own;
      if (options.skipInit !== true) await client.init(options);
      return client;
    } catch (err) {
      await fe.close().catch(() => {});
      if (own !== undefined) await FuseClient.#endLoop(own);
      throw err;
    }
  }

  static async #endLoop(own: { loop: EventLoop; running: Promise<void> }): Promise<void> {
    own.loop.stop();
    await own.running.catch(() => {});
    await own.loop.close();
  }

  /** The request queue indices (1…N). */
  get requestQueues(): readonly number[] {
    return this.#requestQueues;
  }

  /** The decoded `fuse_init_out`, once {@link init} succeeded. */
  get initReply(): Decoded | undefined {
    return this.#initReply;
  }

  /** max_write the daemon answered (default 4 KiB before INIT). */
  get maxWrite(): number {
    return num(this.#initReply?.max_write) || 4096;
  }

  /** Sends FUSE_INIT; throws FuseErrnoError on an error reply. Returns `fuse_init_out`. */
  async init(options: FuseClientOptions = {}): Promise<Decoded> {
    const flags = options.initFlags ?? DEFAULT_INIT_FLAGS;
    const r = await this.call({
      opcode: Opcode.INIT,
      arg: {
        major: 7,
        minor: options.minor ?? 38,
        max_readahead: options.maxReadahead ?? 131072,
        flags: Number(flags & 0xffffffffn),
        flags2: Number(flags >> 32n),
      },
    });
    this.#initReply = r;
    return r;
  }

  /** Takes the next unique (for raw requests sent with {@link sendRaw}). */
  nextUnique(): bigint {
    return this.#next++;
  }

  #queueFor(call: FuseCall, options: SendOptions): DriverQueue {
    let index = options.queue;
    if (index === undefined) {
      if (HIPRIO_OPS.has(call.opcode)) index = 0;
      else {
        const qs = this.#requestQueues;
        if (qs.length === 0) throw new FrontendError("fuse client: no request queue set up");
        index = qs[this.#rr++ % qs.length]!;
      }
    }
    const q = this.frontend.queue(index);
    if (q === undefined) throw new FrontendError(`fuse client: queue ${index} is not set up`);
    return q;
  }

  #capacity(call: FuseCall): number {
    if (NO_REPLY_OPS.has(call.opcode)) return 0;
    const op = fuseOp(call.opcode);
    const limit = op?.reply.limit;
    const size = limit === undefined ? 0 : num(call.arg?.[limit]);
    // Exactly `size` for data, as the guest kernel offers its pages: some daemons (the C
    // virtiofsd of QEMU 7.2) fill every writable byte offered, past the READ's size.
    if (EXACT_OPS.has(call.opcode)) return OUT_HEADER_SIZE + size;
    return OUT_HEADER_SIZE + Math.max(size, DEFAULT_REPLY);
  }

  /**
   * Sends one request and waits for its reply, decoded. Error replies
   * resolve too (see {@link FuseResult.errno}); a reply that does not
   * decode or carries another unique rejects with ProtocolError.
   */
  async send(call: FuseCall, options: SendOptions = {}): Promise<FuseResult> {
    const unique = options.unique ?? this.#next++;
    // One readable descriptor, as the guest driver sends header and arguments.
    const segments = encodeRequest({
      header: {
        opcode: call.opcode,
        unique,
        nodeid: call.nodeid ?? 0n,
        uid: call.uid ?? this.#uid,
        gid: call.gid ?? this.#gid,
        pid: call.pid ?? this.#pid,
      },
      arg: call.arg,
      names: call.names,
      data: call.data,
      items: call.items,
      extensions: call.extensions,
    }, this.session);
    const q = this.#queueFor(call, options);
    const capacity = options.replyCapacity ?? this.#capacity(call);
    const t0 = performance.now();
    const completion = await q.submit(segments, capacity, options.submit ?? {});
    const latencyMs = performance.now() - t0;
    if (capacity === 0 || NO_REPLY_OPS.has(call.opcode)) {
      return { unique, opcode: call.opcode, reply: undefined, errno: 0, completion, latencyMs };
    }
    const name = fuseOp(call.opcode)?.name ?? `opcode ${call.opcode}`;
    if (completion.len < OUT_HEADER_SIZE) {
      throw new ProtocolError(
        "fuse client",
        `${name} unique ${unique}: reply of ${completion.len} bytes (< ${OUT_HEADER_SIZE})`,
      );
    }
    let reply: FuseReply;
    try {
      // GETXATTR/LISTXATTR replies are shaped by the request's size argument.
      const req = XATTR_OPS.has(call.opcode) ? decodeRequest(segments, this.session) : call.opcode;
      reply = decodeReply(completion.bytes, req, this.session);
    } catch (err) {
      throw new ProtocolError(
        "fuse client",
        `${name} unique ${unique}: reply does not decode: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (reply.header.unique !== unique) {
      throw new ProtocolError(
        "fuse client",
        `${name} unique ${unique}: reply carries unique ${reply.header.unique}`,
      );
    }
    const errno = reply.header.error < 0 ? -reply.header.error : 0;
    return { unique, opcode: call.opcode, reply, errno, completion, latencyMs };
  }

  /**
   * Raw mode: posts `bytes` (one buffer or segments, sent as is, no unique
   * or length fixed up) with `replyCapacity` writable bytes on `queue`.
   */
  sendRaw(
    bytes: Uint8Array | readonly Uint8Array[],
    replyCapacity: number,
    queue = this.#requestQueues[0] ?? 1,
    options: SubmitOptions = {},
  ): Promise<Completion> {
    const q = this.frontend.queue(queue);
    if (q === undefined) {
      return Promise.reject(new FrontendError(`fuse client: queue ${queue} is not set up`));
    }
    return q.submit(bytes, replyCapacity, options);
  }

  /** Sends `call`, throws FuseErrnoError on an error reply, returns the reply's struct. */
  async call(call: FuseCall, options: SendOptions = {}): Promise<Decoded> {
    const r = await this.send(call, options);
    if (r.errno !== 0) throw new FuseErrnoError(call.opcode, call.nodeid ?? 0n, r.errno);
    return r.reply?.arg ?? {};
  }

  /** Sends `call` and returns its reply's data (READ, READLINK). */
  async #data(call: FuseCall): Promise<Uint8Array> {
    const r = await this.send(call);
    if (r.errno !== 0) throw new FuseErrnoError(call.opcode, call.nodeid ?? 0n, r.errno);
    const parts = r.reply?.data ?? [];
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), o += p.byteLength);
    return out;
  }

  #entry(out: Decoded): FuseEntry {
    return { nodeid: big(out.nodeid), out };
  }

  /** LOOKUP `name` in `parent`. */
  async lookup(parent: bigint, name: string): Promise<FuseEntry> {
    return this.#entry(await this.call({ opcode: Opcode.LOOKUP, nodeid: parent, names: [name] }));
  }

  /** FORGET `nlookup` lookups of `nodeid` (hiprio, no reply). */
  async forget(nodeid: bigint, nlookup = 1n): Promise<void> {
    await this.send({ opcode: Opcode.FORGET, nodeid, arg: { nlookup } });
  }

  /** GETATTR; returns `fuse_attr_out` (attributes flattened). */
  getattr(nodeid: bigint, fh?: bigint): Promise<Decoded> {
    return this.call({
      opcode: Opcode.GETATTR,
      nodeid,
      arg: fh === undefined ? { getattr_flags: 0, fh: 0n } : { getattr_flags: 1, fh },
    });
  }

  /** SETATTR with the given `fuse_setattr_in` fields (`valid` says which). */
  setattr(nodeid: bigint, arg: StructInit): Promise<Decoded> {
    return this.call({ opcode: Opcode.SETATTR, nodeid, arg });
  }

  /** MKDIR `name` in `parent`. */
  async mkdir(parent: bigint, name: string, mode = 0o755): Promise<FuseEntry> {
    return this.#entry(
      await this.call({
        opcode: Opcode.MKDIR,
        nodeid: parent,
        arg: { mode, umask: 0 },
        names: [name],
      }),
    );
  }

  /** CREATE `name` in `parent`, opened with `flags` (default O_RDWR). */
  async create(parent: bigint, name: string, mode = 0o644, flags = 2): Promise<FuseCreated> {
    const out = await this.call({
      opcode: Opcode.CREATE,
      nodeid: parent,
      arg: { flags, mode: 0o100000 | mode, umask: 0, open_flags: 0 },
      names: [name],
    });
    return { nodeid: big(out.nodeid), fh: big(out.fh), out };
  }

  /** OPEN with `flags` (default O_RDWR); returns the file handle. */
  async open(nodeid: bigint, flags = 2): Promise<bigint> {
    return big((await this.call({ opcode: Opcode.OPEN, nodeid, arg: { flags } })).fh);
  }

  /** OPENDIR; returns the directory handle. */
  async opendir(nodeid: bigint): Promise<bigint> {
    return big((await this.call({ opcode: Opcode.OPENDIR, nodeid, arg: { flags: 0 } })).fh);
  }

  /** READ `size` bytes at `offset`. */
  read(nodeid: bigint, fh: bigint, offset: bigint | number, size: number): Promise<Uint8Array> {
    return this.#data({
      opcode: Opcode.READ,
      nodeid,
      arg: { fh, offset: BigInt(offset), size, flags: 2 },
    });
  }

  /** WRITE `data` at `offset`; returns the count written. */
  async write(
    nodeid: bigint,
    fh: bigint,
    offset: bigint | number,
    data: Uint8Array,
  ): Promise<number> {
    const out = await this.call({
      opcode: Opcode.WRITE,
      nodeid,
      arg: { fh, offset: BigInt(offset), flags: 2 },
      data,
    });
    return num(out.size);
  }

  /** READDIRPLUS from cookie `offset`, at most `size` bytes; returns the decoded reply. */
  async readdirplus(
    nodeid: bigint,
    fh: bigint,
    offset: bigint | number = 0n,
    size = 4096,
  ): Promise<FuseReply> {
    return await this.#listing(Opcode.READDIRPLUS, nodeid, fh, offset, size);
  }

  /** READDIR from cookie `offset`, at most `size` bytes; returns the decoded reply. */
  async readdir(
    nodeid: bigint,
    fh: bigint,
    offset: bigint | number = 0n,
    size = 4096,
  ): Promise<FuseReply> {
    return await this.#listing(Opcode.READDIR, nodeid, fh, offset, size);
  }

  async #listing(
    opcode: number,
    nodeid: bigint,
    fh: bigint,
    offset: bigint | number,
    size: number,
  ): Promise<FuseReply> {
    const r = await this.send({ opcode, nodeid, arg: { fh, offset: BigInt(offset), size } });
    if (r.errno !== 0) throw new FuseErrnoError(opcode, nodeid, r.errno);
    return r.reply!;
  }

  /** RELEASE a file handle. */
  async release(nodeid: bigint, fh: bigint, flags = 2): Promise<void> {
    await this.call({ opcode: Opcode.RELEASE, nodeid, arg: { fh, flags } });
  }

  /** RELEASEDIR a directory handle. */
  async releasedir(nodeid: bigint, fh: bigint): Promise<void> {
    await this.call({ opcode: Opcode.RELEASEDIR, nodeid, arg: { fh } });
  }

  /** FLUSH a file handle. */
  async flush(nodeid: bigint, fh: bigint): Promise<void> {
    await this.call({ opcode: Opcode.FLUSH, nodeid, arg: { fh } });
  }

  /** FSYNC a file handle. */
  async fsync(nodeid: bigint, fh: bigint, datasync = false): Promise<void> {
    await this.call({ opcode: Opcode.FSYNC, nodeid, arg: { fh, fsync_flags: datasync ? 1 : 0 } });
  }

  /** UNLINK `name` in `parent`. */
  async unlink(parent: bigint, name: string): Promise<void> {
    await this.call({ opcode: Opcode.UNLINK, nodeid: parent, names: [name] });
  }

  /** RMDIR `name` in `parent`. */
  async rmdir(parent: bigint, name: string): Promise<void> {
    await this.call({ opcode: Opcode.RMDIR, nodeid: parent, names: [name] });
  }

  /** RENAME `parent/name` to `newParent/newName`. */
  async rename(parent: bigint, name: string, newParent: bigint, newName: string): Promise<void> {
    await this.call({
      opcode: Opcode.RENAME,
      nodeid: parent,
      arg: { newdir: newParent },
      names: [name, newName],
    });
  }

  /** SYMLINK `name` in `parent` pointing to `target`. */
  async symlink(parent: bigint, name: string, target: string): Promise<FuseEntry> {
    return this.#entry(
      await this.call({ opcode: Opcode.SYMLINK, nodeid: parent, names: [name, target] }),
    );
  }

  /** LINK `nodeid` as `parent/name`. */
  async link(nodeid: bigint, parent: bigint, name: string): Promise<FuseEntry> {
    return this.#entry(
      await this.call({
        opcode: Opcode.LINK,
        nodeid: parent,
        arg: { oldnodeid: nodeid },
        names: [name],
      }),
    );
  }

  /** READLINK; returns the target. */
  async readlink(nodeid: bigint): Promise<string> {
    return new TextDecoder().decode(await this.#data({ opcode: Opcode.READLINK, nodeid }));
  }

  /** STATFS. */
  statfs(nodeid = 1n): Promise<Decoded> {
    return this.call({ opcode: Opcode.STATFS, nodeid });
  }

  /** Closes the front-end (stops the queues, frees memory, closes the socket) and its own loop. */
  async close(): Promise<void> {
    await this.frontend.close();
    const own = this.#ownLoop;
    this.#ownLoop = undefined;
    if (own !== undefined) await FuseClient.#endLoop(own);
  }

  /** `await using` support: {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
