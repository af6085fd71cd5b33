/**
 * Filters for `vfstrace show`: which operations (and, by time, which
 * events) are printed. Criteria combine with AND; the values of one
 * criterion with OR (`ops: ["LOOKUP", "READ"]` is either).
 *
 * - ops: opcode names, any case, `FUSE_` prefix optional, or numbers (`99`,
 *   `0x1000`, `opcode 4096`) to select unknown opcodes;
 * - nodeids: the request's node id, or one the operation involves (the
 *   node a LOOKUP/CREATE returns, RENAME's new directory, LINK's old node,
 *   COPY_FILE_RANGE's output node, BATCH_FORGET's nodes);
 * - uniques (the resend bit ignored), queues (`hiprio` is 0);
 * - errorsOnly (status `error`), errnos (names or numbers: implies errors);
 * - slowerThanNs: latency at least this (unanswered operations never match);
 * - namePattern: a glob (`*`, `?`, `[a-z]`, `[!x]`) matched against every
 *   name argument (file names, symlink targets, xattr names);
 * - since / until: see {@link TimeBound}; they apply to control events too.
 *
 * @module
 */
import { Opcode, OpcodeNames } from "../decode/fuse.ts";
import { errnoName, errnoNumber } from "../sys/errno.ts";
import type { FuseOperation } from "./pairing.ts";

/** A filter argument that does not parse; `option` names what it was for. */
export class FilterSyntaxError extends Error {
  /** The option or criterion (`--slow`). */
  readonly option: string;
  /** The text given. */
  readonly value: string;
  /** Creates the error; `message` says what is expected. */
  constructor(option: string, value: string, message: string) {
    super(`${option}: '${value}' ${message}`);
    this.name = "FilterSyntaxError";
    this.option = option;
    this.value = value;
  }
}

/**
 * A time limit: `relative` — nanoseconds since the first record (`2.5`,
 * `+2.5s`, `500ms`); `epoch` — an absolute instant (`2026-11-25T15:00:21Z`,
 * millisecond precision); `time-of-day` — nanoseconds after midnight on the
 * capture's first day in the display time zone (`15:00:21.25`), the next day
 * when that is more than 12 hours before the capture starts.
 */
export type TimeBound =
  | { readonly kind: "relative"; readonly ns: number }
  | { readonly kind: "epoch"; readonly ns: bigint }
  | { readonly kind: "time-of-day"; readonly ns: number };

/** Criteria of an {@link EventFilter}; absent ones do not filter. */
export interface FilterOptions {
  /** Opcode names. */
  readonly ops?: readonly string[] | undefined;
  /** Node ids. */
  readonly nodeids?: readonly bigint[] | undefined;
  /** Request uniques. */
  readonly uniques?: readonly bigint[] | undefined;
  /** Virtqueue indexes. */
  readonly queues?: readonly number[] | undefined;
  /** Only operations whose reply is an error. */
  readonly errorsOnly?: boolean | undefined;
  /** Only these errnos (names like `ENOENT`, or numbers). */
  readonly errnos?: readonly string[] | undefined;
  /** Only operations at least this slow. */
  readonly slowerThanNs?: number | undefined;
  /** Glob over the name arguments. */
  readonly namePattern?: string | undefined;
  /** Nothing before. */
  readonly since?: TimeBound | undefined;
  /** Nothing after. */
  readonly until?: TimeBound | undefined;
  /** Time zone of `time-of-day` bounds (the machine's by default). */
  readonly timeZone?: "local" | "utc" | undefined;
}

const UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  min: 60e9,
  h: 3600e9,
};
const DURATION = /^(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)$/;
const RESEND = 1n << 63n;
const HALF_DAY_NS = 43_200_000_000_000;

/**
 * A duration in nanoseconds: `2ms`, `500us` (or `µs`), `1.5s`, `250ns`,
 * `2m`, `1h`. A bare number is seconds when `bareUnit` is `"s"`, else an
 * error (for `--slow`, where a bare 2 is ambiguous).
 */
export function parseDuration(text: string, option?: string, bareUnit?: "s"): number {
  const m = DURATION.exec(text.trim());
  const unit = m?.[2] ?? "";
  const scale = unit === "" ? (bareUnit === "s" ? 1e9 : undefined) : UNITS[unit];
  if (m === null || m[1] === undefined || scale === undefined) {
    throw new FilterSyntaxError(
      option ?? "duration",
      text,
      unit === "" && m !== null
        ? "needs a unit (2ms, 500us, 1.5s)"
        : "is not a duration (2ms, 500us, 1.5s)",
    );
  }
  return Math.round(Number(m[1]) * scale);
}

const TIME_OF_DAY = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;

/** Parses a `--since`/`--until` value (see {@link TimeBound}). */
export function parseTimeBound(text: string, option = "time"): TimeBound {
  const t = text.trim();
  const tod = TIME_OF_DAY.exec(t);
  if (tod !== null) {
    const h = Number(tod[1]);
    const min = Number(tod[2]);
    const s = Number(tod[3] ?? "0");
    if (h > 23 || min > 59 || s > 60) {
      throw new FilterSyntaxError(option, text, "is not a time of day (HH:MM[:SS[.frac]])");
    }
    const frac = Number((tod[4] ?? "").padEnd(9, "0"));
    return { kind: "time-of-day", ns: ((h * 60 + min) * 60 + s) * 1e9 + frac };
  }
  if (/^\d{4}-\d{2}-\d{2}[T ]/.test(t)) {
    const ms = Date.parse(t.replace(" ", "T"));
    if (!Number.isFinite(ms)) {
      throw new FilterSyntaxError(option, text, "is not a date and time (2026-11-25T15:00:21Z)");
    }
    return { kind: "epoch", ns: BigInt(ms) * 1_000_000n };
  }
  const rel = t.startsWith("+") ? t.slice(1) : t;
  try {
    return { kind: "relative", ns: parseDuration(rel, option, "s") };
  } catch {
    throw new FilterSyntaxError(
      option,
      text,
      "is not seconds since the start (2.5, 500ms), a time of day (15:00:21) or a date-time",
    );
  }
}

/** An opcode number as shown for unknown ones: `99`, `0x1000`, `opcode 99`. */
const OPCODE_NUMBER = /^(?:OPCODE\s*)?(0X[0-9A-F]+|\d+)$/;

/**
 * Opcodes of names like `lookup`, `FUSE_READ`, or numbers (`99`, `0x1000`,
 * `opcode 4096`: unknown opcodes are shown as `opcode N` and selected so);
 * throws FilterSyntaxError for other text.
 */
export function parseOpNames(names: readonly string[], option = "--op"): Set<number> {
  const out = new Set<number>();
  for (const raw of names) {
    const n = raw.trim().toUpperCase().replace(/^FUSE_/, "");
    if (n === "") continue;
    const num = OPCODE_NUMBER.exec(n)?.[1];
    const code = num !== undefined ? Number(num.toLowerCase()) : OpcodeNames.valueOf(n);
    if (code === undefined || !(code >= 0 && code <= 0xffffffff)) {
      throw new FilterSyntaxError(
        option,
        raw,
        num !== undefined
          ? "is not an opcode number (0 to 4294967295)"
          : `is not a FUSE operation or opcode number (known: ${Object.keys(Opcode).join(", ")})`,
      );
    }
    out.add(code);
  }
  return out;
}

/** Errno numbers of names (`ENOENT`, `enodata`) or numbers; throws FilterSyntaxError. */
export function parseErrnos(names: readonly string[], option = "--errno"): Set<number> {
  const out = new Set<number>();
  for (const raw of names) {
    const t = raw.trim();
    if (t === "") continue;
    const n = /^\d+$/.test(t) ? Number(t) : errnoNumber(t.replace(/^-/, ""));
    if (n === undefined || !(n > 0)) {
      throw new FilterSyntaxError(option, raw, "is not an errno name (ENOENT, EIO, …)");
    }
    out.add(n);
  }
  return out;
}

/** A queue: `hiprio`, `q1`, `1`. */
export function parseQueue(text: string, option = "--queue"): number {
  const t = text.trim().toLowerCase();
  if (t === "hiprio") return 0;
  const digits = t.startsWith("q") ? t.slice(1) : t;
  const n = Number(digits);
  if (!/^\d+$/.test(digits) || n > 0xffff) {
    throw new FilterSyntaxError(option, text, "is not a queue (a number, qN or hiprio)");
  }
  return n;
}

/** A u64 id: decimal or 0x hex. */
export function parseId(text: string, option: string): bigint {
  const t = text.trim();
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(t)) {
    throw new FilterSyntaxError(option, text, "is not a number (decimal or 0x hex)");
  }
  const v = BigInt(t);
  if (v >= 1n << 64n) throw new FilterSyntaxError(option, text, "does not fit 64 bits");
  return v;
}

/**
 * A matcher for a shell glob: `*` any run, `?` one character, `[abc]`,
 * `[a-z]`, `[!x]` classes, `\` escapes. Compiled once.
 */
export function globMatcher(pattern: string): (s: string) => boolean {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "\\" && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === "[") {
      const close = pattern.indexOf("]", i + 2);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      let body = pattern.slice(i + 1, close);
      if (body.startsWith("!")) body = "^" + body.slice(1);
      re += "[" + body.replace(/\\/g, "\\\\") + "]";
      i = close;
    } else re += escapeRe(c);
  }
  const rx = new RegExp(re + "$", "su");
  return (s) => rx.test(s);
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? "\\" + c : c;
}

/** Node ids an operation involves (see the module doc). */
export function relatedNodeids(op: FuseOperation): bigint[] {
  const out = [op.nodeid];
  const a = op.request?.decoded?.arg;
  if (a !== undefined) {
    for (const k of ["newdir", "oldnodeid", "nodeid_out"]) {
      const v = a[k];
      if (typeof v === "bigint") out.push(v);
    }
  }
  for (const it of op.request?.decoded?.items ?? []) {
    if (typeof it.nodeid === "bigint") out.push(it.nodeid);
  }
  const r = op.reply?.decoded?.arg;
  if (r !== undefined && typeof r.nodeid === "bigint") out.push(r.nodeid);
  return out;
}

/** Decides which operations and events are shown. */
export class EventFilter {
  #ops: Set<number> | undefined;
  #nodeids: Set<bigint> | undefined;
  #uniques: Set<bigint> | undefined;
  #queues: Set<number> | undefined;
  #errorsOnly: boolean;
  #errnos: Set<number> | undefined;
  #slow: number | undefined;
  #name: ((s: string) => boolean) | undefined;
  #since: TimeBound | undefined;
  #until: TimeBound | undefined;
  #utc: boolean;
  #sinceNs: bigint | undefined = undefined;
  #untilNs: bigint | undefined = undefined;
  #resolved = false;

  /** Validates and compiles `options`; throws FilterSyntaxError for bad names. */
  constructor(options: FilterOptions = {}) {
    this.#ops = options.ops === undefined ? undefined : parseOpNames(options.ops);
    this.#nodeids = options.nodeids === undefined ? undefined : new Set(options.nodeids);
    this.#uniques = options.uniques === undefined ? undefined : new Set(options.uniques);
    this.#queues = options.queues === undefined ? undefined : new Set(options.queues);
    this.#errorsOnly = options.errorsOnly ?? false;
    this.#errnos = options.errnos === undefined ? undefined : parseErrnos(options.errnos);
    this.#slow = options.slowerThanNs;
    this.#name = options.namePattern === undefined ? undefined : globMatcher(options.namePattern);
    this.#since = options.since;
    this.#until = options.until;
    this.#utc = options.timeZone === "utc";
    if (this.#since?.kind === "epoch") this.#sinceNs = this.#since.ns;
    if (this.#until?.kind === "epoch") this.#untilNs = this.#until.ns;
    this.#resolved = !this.#needsOrigin();
  }

  /** True when some criterion looks inside operations (not only at time). */
  get selectsOperations(): boolean {
    return this.#ops !== undefined || this.#nodeids !== undefined ||
      this.#uniques !== undefined || this.#queues !== undefined || this.#errorsOnly ||
      this.#errnos !== undefined || this.#slow !== undefined || this.#name !== undefined;
  }

  /** The errno names asked for, for messages. */
  get errnoNames(): string[] {
    return [...(this.#errnos ?? [])].map(errnoName);
  }

  #needsOrigin(): boolean {
    return (this.#since !== undefined && this.#since.kind !== "epoch") ||
      (this.#until !== undefined && this.#until.kind !== "epoch");
  }

  /**
   * Resolves relative and time-of-day bounds against the capture's first
   * record; call it with that record's time before matching.
   */
  setOrigin(originNs: bigint): void {
    if (this.#resolved) return;
    this.#resolved = true;
    if (this.#since !== undefined) this.#sinceNs = this.#resolve(this.#since, originNs);
    if (this.#until !== undefined) this.#untilNs = this.#resolve(this.#until, originNs);
  }

  #resolve(b: TimeBound, origin: bigint): bigint {
    if (b.kind === "epoch") return b.ns;
    if (b.kind === "relative") return origin + BigInt(b.ns);
    const ms = Number(origin / 1_000_000n);
    let midnight: number;
    if (this.#utc) midnight = Math.floor(ms / 86_400_000) * 86_400_000;
    else {
      const d = new Date(ms);
      d.setHours(0, 0, 0, 0);
      midnight = d.getTime();
    }
    let at = BigInt(midnight) * 1_000_000n + BigInt(b.ns);
    // A time of day long before the capture starts means the next day (past midnight).
    if (origin - at > BigInt(HALF_DAY_NS)) at += 86_400_000_000_000n;
    return at;
  }

  /** Whether `ts` is within since/until (always true before {@link setOrigin} when needed). */
  inTime(ts: bigint): boolean {
    if (this.#sinceNs !== undefined && ts < this.#sinceNs) return false;
    if (this.#untilNs !== undefined && ts > this.#untilNs) return false;
    return true;
  }

  /** Whether the operation passes every criterion. */
  matches(op: FuseOperation): boolean {
    if (this.#ops !== undefined && !this.#ops.has(op.opcode)) return false;
    if (this.#queues !== undefined && !this.#queues.has(op.queue)) return false;
    if (this.#errorsOnly && op.status !== "error") return false;
    if (this.#errnos !== undefined && (op.errno === undefined || !this.#errnos.has(op.errno))) {
      return false;
    }
    if (this.#slow !== undefined && (op.latencyNs === undefined || op.latencyNs < this.#slow)) {
      return false;
    }
    if (
      this.#uniques !== undefined && !this.#uniques.has(op.unique) &&
      !this.#uniques.has(op.unique & ~RESEND)
    ) return false;
    if (this.#nodeids !== undefined) {
      let hit = false;
      for (const n of relatedNodeids(op)) {
        if (this.#nodeids.has(n)) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    if (this.#name !== undefined) {
      const names = op.request?.decoded?.names ?? [];
      let hit = false;
      for (const n of names) {
        if (this.#name(n)) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    return this.inTime(op.timestampNs);
  }
}
