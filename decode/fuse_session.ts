/**
 * Per-connection FUSE state the codec needs: the negotiated protocol minor and
 * INIT flags. Struct sizes depend on both (fuse_write_in before 7.9,
 * fuse_setxattr_in with or without FUSE_SETXATTR_EXT, …).
 *
 * @module
 */

import { InitFlags } from "./fuse_flags.ts";
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION } from "./fuse_table.ts";
import type { Decoded } from "./struct.ts";

/** Starting state for a {@link FuseSession} (e.g. a trace that begins after INIT). */
export interface FuseSessionOptions {
  /** Negotiated minor; default: the newest this codec knows. */
  readonly minor?: number;
  /** Negotiated INIT flags (both words); default: unknown until INIT is seen. */
  readonly flags?: bigint;
}

const SETXATTR_EXT = InitFlags.bit("SETXATTR_EXT") ?? 0n;
const INIT_EXT = InitFlags.bit("INIT_EXT") ?? 0n;

/** The combined 64-bit INIT flags of a decoded fuse_init_in/out (flags2 only counts with INIT_EXT). */
export function initFlagsOf(init: Decoded): bigint {
  const lo = BigInt(Number(init.flags ?? 0) >>> 0);
  const hi = BigInt(Number(init.flags2 ?? 0) >>> 0);
  return (lo & INIT_EXT) !== 0n ? lo | (hi << 32n) : lo;
}

/**
 * The state of one FUSE connection, as seen by a decoder or encoder. Decoding
 * or encoding an INIT request/reply with the same session updates it, so a
 * session fed a whole conversation tracks it by itself.
 */
export class FuseSession {
  #minor: number;
  #flags: bigint | undefined;
  #kernelMinor: number | undefined;
  #daemonMinor: number | undefined;
  #kernelFlags: bigint | undefined;
  #setxattrExt: boolean | undefined;

  /** A session at `options.minor` (default newest) with unknown flags unless given. */
  constructor(options: FuseSessionOptions = {}) {
    this.#minor = options.minor ?? FUSE_KERNEL_MINOR_VERSION;
    this.#flags = options.flags;
  }

  /** The minor used for struct sizes: negotiated, else the kernel's, else the default. */
  get minor(): number {
    return this.#minor;
  }

  /** Negotiated INIT flags (the daemon's reply), or undefined before INIT completes. */
  get flags(): bigint | undefined {
    return this.#flags;
  }

  /** The minor the kernel offered in INIT, if seen. */
  get kernelMinor(): number | undefined {
    return this.#kernelMinor;
  }

  /** The minor the daemon answered in INIT, if seen. */
  get daemonMinor(): number | undefined {
    return this.#daemonMinor;
  }

  /** The flags the kernel offered in INIT, if seen. */
  get kernelFlags(): bigint | undefined {
    return this.#kernelFlags;
  }

  /** Whether INIT flag `name` was negotiated; undefined while flags are unknown. */
  has(name: string): boolean | undefined {
    const bit = InitFlags.bit(name);
    if (bit === undefined) throw new Error(`FuseSession.has: unknown INIT flag ${name}`);
    return this.#flags === undefined ? undefined : (this.#flags & bit) !== 0n;
  }

  /**
   * Whether fuse_setxattr_in is the 16-byte form: from the flags when known,
   * else from what earlier SETXATTR traffic showed, else undefined.
   */
  get setxattrExt(): boolean | undefined {
    if (this.#flags !== undefined) return (this.#flags & SETXATTR_EXT) !== 0n;
    return this.#setxattrExt;
  }

  /** Records the fuse_setxattr_in form inferred from a message while flags are unknown. */
  learnSetxattrExt(ext: boolean): void {
    if (this.#flags === undefined) this.#setxattrExt = ext;
  }

  /** Takes in a decoded/encoded fuse_init_in. */
  observeInitRequest(init: Decoded): void {
    if (Number(init.major) !== FUSE_KERNEL_VERSION) return;
    this.#kernelMinor = Number(init.minor);
    this.#kernelFlags = initFlagsOf(init);
    this.#minor = this.#kernelMinor;
  }

  /** Takes in a decoded/encoded fuse_init_out: both sides now use the lower minor. */
  observeInitReply(init: Decoded): void {
    if (Number(init.major) !== FUSE_KERNEL_VERSION) return;
    this.#daemonMinor = Number(init.minor);
    this.#minor = Math.min(this.#daemonMinor, this.#kernelMinor ?? this.#daemonMinor);
    // The kernel acts on the flags the daemon returns.
    this.#flags = initFlagsOf(init);
    this.#setxattrExt = undefined;
  }

  /**
   * The minor that sizes fuse_init_out: the daemon sizes it by the lower of the
   * two minors (libfuse: by the kernel's, and it never answers above it).
   */
  initOutMinor(replyMinor: number): number {
    return Math.min(replyMinor, this.#kernelMinor ?? replyMinor);
  }
}
