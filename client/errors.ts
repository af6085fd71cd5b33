/**
 * Typed errors of the built-in vhost-user front-end. Each names the message,
 * queue or allocation it is about, so a failure read in a log is enough to
 * act on.
 *
 * @module
 */

/** Base class of every error the front-end throws. */
export class FrontendError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrontendError";
  }
}

/** The connection to the back-end is gone (or was closed by us) while work was pending. */
export class FrontendClosedError extends FrontendError {
  /** What was waiting, e.g. `"GET_VRING_BASE reply"` or `"queue 1 request"`. */
  readonly waiting: string;
  /** Creates the error; `cause` is why the connection ended, when it broke. */
  constructor(what: string, waiting: string, cause?: Error) {
    super(
      `${what}: connection closed while waiting for ${waiting}${
        cause === undefined ? "" : `: ${cause.message}`
      }`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "FrontendClosedError";
    this.waiting = waiting;
  }
}

/** The back-end answered a NEED_REPLY message with a non-zero REPLY_ACK. */
export class ReplyAckError extends FrontendError {
  /** Request number. */
  readonly request: number;
  /** Message name, e.g. `"SET_MEM_TABLE"`. */
  readonly messageName: string;
  /** The u64 the back-end returned (0 would be success). */
  readonly code: bigint;
  /** Creates the error. */
  constructor(what: string, request: number, messageName: string, code: bigint) {
    super(`${what}: back-end rejected ${messageName} (REPLY_ACK ${code})`);
    this.name = "ReplyAckError";
    this.request = request;
    this.messageName = messageName;
    this.code = code;
  }
}

/** The back-end broke the request/reply protocol (unsolicited or mismatched reply, bad payload). */
export class ProtocolError extends FrontendError {
  /** Creates the error. */
  constructor(what: string, message: string, options?: ErrorOptions) {
    super(`${what}: ${message}`, options);
    this.name = "ProtocolError";
  }
}

/** The back-end does not offer a feature the front-end requires, or a step needs one not negotiated. */
export class FeatureNegotiationError extends FrontendError {
  /** The missing bits. */
  readonly missing: bigint;
  /** Creates the error. */
  constructor(what: string, message: string, missing: bigint) {
    super(`${what}: ${message}`);
    this.name = "FeatureNegotiationError";
    this.missing = missing;
  }
}

/** A driver queue cannot take or complete requests (closed, or the device misbehaved). */
export class QueueError extends FrontendError {
  /** Queue index. */
  readonly queue: number;
  /** Creates the error. */
  constructor(queue: number, message: string, options?: ErrorOptions) {
    super(`queue ${queue}: ${message}`, options);
    this.name = "QueueError";
    this.queue = queue;
  }
}

/** Guest memory has no free range of the requested size and alignment. */
export class GuestMemoryExhaustedError extends FrontendError {
  /** Bytes asked for. */
  readonly size: number;
  /** Alignment asked for. */
  readonly align: number;
  /** Creates the error. */
  constructor(size: number, align: number, free: number) {
    super(
      `guest memory: no free range of ${size} bytes aligned to ${align} (${free} bytes free in total)`,
    );
    this.name = "GuestMemoryExhaustedError";
    this.size = size;
    this.align = align;
  }
}
