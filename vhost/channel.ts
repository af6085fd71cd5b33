/**
 * vhost-user message framing over a nonblocking Unix stream socket.
 *
 * A message is a 12-byte header (request u32, flags u32, size u32) and `size`
 * bytes of payload; file descriptors ride as SCM_RIGHTS on its bytes. Each
 * recvmsg is bounded to the current message (header first, then exactly its
 * payload) so that fds can never be attributed to the wrong message: the
 * kernel may merge bytes of consecutive messages into one read otherwise.
 *
 * @module
 */
import {
  close,
  closeAll,
  Epoll,
  EventLoop,
  MAX_FDS_PER_MESSAGE,
  recvMsg,
  sendMsg,
  setNonblocking,
  ShortReadError,
} from "../sys/mod.ts";

/** Size of the vhost-user message header. */
export const VHOST_USER_HEADER_SIZE = 12;

/**
 * Largest payload accepted. The biggest message in the spec is well under
 * 4 KiB (a config space of at most 256 bytes, a memory table of 8 regions);
 * anything far beyond is a corrupt or hostile stream.
 */
export const VHOST_USER_MAX_PAYLOAD = 64 * 1024;

/** One whole message as it came off (or goes onto) the socket. */
export interface VhostUserFrame {
  /** Request (message type) number. */
  request: number;
  /** Header flags (version, REPLY, NEED_REPLY). */
  flags: number;
  /** Header + payload bytes exactly as received. */
  bytes: Uint8Array;
  /** The payload part of {@link bytes}. */
  payload: Uint8Array;
  /** Descriptors that came with the message; the receiver owns them. */
  fds: number[];
}

/** The stream broke the framing rules: oversized payload, too many fds. */
export class FramingError extends Error {
  /** Byte offset in the stream where the bad message starts. */
  readonly streamOffset: number;
  /** Creates the error for the message starting at `streamOffset` on `channel`. */
  constructor(channel: string, message: string, streamOffset: number) {
    super(`${channel}: ${message} (message at stream offset ${streamOffset})`);
    this.name = "FramingError";
    this.streamOffset = streamOffset;
  }
}

/** Callbacks of a {@link VhostUserChannel}. */
export interface ChannelHandlers {
  /** A whole message arrived. Throwing closes the channel with that error. */
  onMessage(frame: VhostUserFrame): void;
  /**
   * The channel closed: `error` undefined for a clean end of stream at a
   * message boundary, otherwise why it broke. Called once.
   */
  onClose(error?: Error): void;
}

interface Outgoing {
  bytes: Uint8Array;
  sent: number;
  fds: number[];
  closeFdsAfterSend: boolean;
}

/** Options of {@link VhostUserChannel}. */
export interface ChannelOptions {
  /** Name used in errors and logs, e.g. `"frontend"`. */
  name?: string;
  /** Largest payload accepted (default {@link VHOST_USER_MAX_PAYLOAD}). */
  maxPayload?: number;
}

/**
 * A framed, fd-carrying, nonblocking vhost-user connection driven by an
 * {@link EventLoop}. The channel owns its socket fd.
 */
export class VhostUserChannel {
  /** Name used in errors. */
  readonly name: string;
  #fd: number;
  #loop: EventLoop;
  #handlers: ChannelHandlers;
  #maxPayload: number;
  #header = new Uint8Array(VHOST_USER_HEADER_SIZE);
  #payload: Uint8Array | null = null;
  #got = 0;
  #fds: number[] = [];
  #streamOffset = 0;
  #messageStart = 0;
  #queue: Outgoing[] = [];
  #closed = false;
  #received = 0;
  #sent = 0;

  /** Takes ownership of connected socket `fd` and starts watching it on `loop`. */
  constructor(
    fd: number,
    loop: EventLoop,
    handlers: ChannelHandlers,
    options: ChannelOptions = {},
  ) {
    this.#fd = fd;
    this.#loop = loop;
    this.#handlers = handlers;
    this.name = options.name ?? `vhost-user fd ${fd}`;
    this.#maxPayload = options.maxPayload ?? VHOST_USER_MAX_PAYLOAD;
    setNonblocking(fd);
    loop.add(fd, Epoll.IN | Epoll.RDHUP, (events) => this.#onReady(events));
  }

  /** The socket fd (still owned by the channel). */
  get fd(): number {
    return this.#fd;
  }

  /** True once closed (by either side or an error). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Messages received and sent so far. */
  get counts(): { received: number; sent: number } {
    return { received: this.#received, sent: this.#sent };
  }

  /** Bytes queued but not yet accepted by the kernel. */
  get backlog(): number {
    return this.#queue.reduce((n, o) => n + o.bytes.byteLength - o.sent, 0);
  }

  /**
   * Sends one whole message (header + payload) with `fds`. Queued if the
   * socket is full; order is kept. With `closeFds`, the fds are closed after
   * the kernel took them (the relay hands on fds it received).
   */
  send(bytes: Uint8Array, fds: readonly number[] = [], closeFds = false): void {
    if (this.#closed) {
      if (closeFds) closeAll(fds);
      throw new FramingError(this.name, "send on a closed channel", this.#streamOffset);
    }
    if (fds.length > MAX_FDS_PER_MESSAGE) {
      if (closeFds) closeAll(fds);
      throw new FramingError(this.name, `${fds.length} fds in one message (max 8)`, this.#sent);
    }
    this.#queue.push({ bytes, sent: 0, fds: [...fds], closeFdsAfterSend: closeFds });
    this.#sent++;
    if (this.#queue.length === 1) this.#flush();
  }

  /** Closes the socket and releases fds of a partly received message. Idempotent. */
  close(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#loop.remove(this.#fd);
    close(this.#fd);
    closeAll(this.#fds);
    this.#fds = [];
    for (const o of this.#queue) if (o.closeFdsAfterSend) closeAll(o.fds);
    this.#queue = [];
    this.#handlers.onClose(error);
  }

  #onReady(events: number): void {
    if (this.#closed) return;
    try {
      if (events & Epoll.OUT) this.#flush();
      if (events & (Epoll.IN | Epoll.HUP | Epoll.RDHUP | Epoll.ERR)) this.#read();
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #read(): void {
    while (!this.#closed) {
      const target = this.#payload === null
        ? this.#header.subarray(this.#got)
        : this.#payload.subarray(this.#got);
      if (target.byteLength === 0) {
        // Zero-size payload: the message is complete as soon as the header is.
        this.#complete();
        continue;
      }
      const r = recvMsg(this.#fd, target, MAX_FDS_PER_MESSAGE - this.#fds.length);
      if (r === null) return;
      if (r.bytes === 0) {
        const inMessage = this.#got > 0 || this.#payload !== null;
        this.close(
          inMessage
            ? new ShortReadError(
              `${this.name}: peer closed inside the message at stream offset ${this.#messageStart}`,
              VHOST_USER_HEADER_SIZE + (this.#payload?.byteLength ?? 0),
              (this.#payload === null ? 0 : VHOST_USER_HEADER_SIZE) + this.#got,
            )
            : undefined,
        );
        return;
      }
      this.#fds.push(...r.fds);
      this.#got += r.bytes;
      this.#streamOffset += r.bytes;
      if (this.#payload === null && this.#got === VHOST_USER_HEADER_SIZE) {
        const size = new DataView(this.#header.buffer).getUint32(8, true);
        if (size > this.#maxPayload) {
          throw new FramingError(
            this.name,
            `payload size ${size} exceeds the ${this.#maxPayload}-byte limit`,
            this.#messageStart,
          );
        }
        this.#payload = new Uint8Array(size);
        this.#got = 0;
        if (size === 0) this.#complete();
      } else if (this.#payload !== null && this.#got === this.#payload.byteLength) {
        this.#complete();
      }
    }
  }

  #complete(): void {
    const payload = this.#payload ?? new Uint8Array(0);
    const bytes = new Uint8Array(VHOST_USER_HEADER_SIZE + payload.byteLength);
    bytes.set(this.#header);
    bytes.set(payload, VHOST_USER_HEADER_SIZE);
    const hv = new DataView(bytes.buffer);
    const frame: VhostUserFrame = {
      request: hv.getUint32(0, true),
      flags: hv.getUint32(4, true),
      bytes,
      payload: bytes.subarray(VHOST_USER_HEADER_SIZE),
      fds: this.#fds,
    };
    this.#fds = [];
    this.#payload = null;
    this.#got = 0;
    this.#messageStart = this.#streamOffset;
    this.#received++;
    this.#handlers.onMessage(frame);
  }

  #flush(): void {
    while (this.#queue.length > 0 && !this.#closed) {
      const head = this.#queue[0]!;
      const n = sendMsg(this.#fd, head.bytes.subarray(head.sent), head.sent === 0 ? head.fds : []);
      if (n === null) {
        this.#loop.modify(this.#fd, Epoll.IN | Epoll.RDHUP | Epoll.OUT);
        return;
      }
      if (head.sent === 0 && head.closeFdsAfterSend) closeAll(head.fds);
      head.sent += n;
      if (head.sent === head.bytes.byteLength) this.#queue.shift();
    }
    if (!this.#closed) this.#loop.modify(this.#fd, Epoll.IN | Epoll.RDHUP);
  }
}

/** Builds a message: header (request, flags, size) followed by `payload`. */
export function frameMessage(
  request: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const bytes = new Uint8Array(VHOST_USER_HEADER_SIZE + payload.byteLength);
  const hv = new DataView(bytes.buffer);
  hv.setUint32(0, request, true);
  hv.setUint32(4, flags, true);
  hv.setUint32(8, payload.byteLength, true);
  bytes.set(payload, VHOST_USER_HEADER_SIZE);
  return bytes;
}
