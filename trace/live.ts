/**
 * Live output of `vfstrace trace`: one line per FUSE operation as it
 * completes, through the same pairing and formatter as `vfstrace show`, and
 * the per-opcode counts at the end.
 *
 * @module
 */
import { errnoName } from "../sys/errno.ts";
import {
  type FuseOperation,
  LineFormatter,
  NO_COLORS,
  Pairer,
  type Palette,
  type ShowRecord,
} from "../show/mod.ts";

/** Options of {@link LiveOutput}. */
export interface LiveOutputOptions {
  /** Where lines go (called with whole lines, newline included, batched). */
  write: (text: string) => void;
  /** Colours (default none). */
  colors?: Palette;
  /** Operations at least this slow are marked (ns; default 10 ms). */
  slowNs?: number;
  /** Print one line per operation (default true); counts are kept either way. */
  lines?: boolean;
}

interface OpCount {
  count: number;
  errors: Map<string, number>;
  totalNs: number;
}

/** Pairs live records, prints them, and counts operations by opcode. */
export class LiveOutput {
  #pairer: Pairer;
  #format: LineFormatter;
  #write: (text: string) => void;
  #lines: boolean;
  #pending: string[] = [];
  #pendingBytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #counts = new Map<string, OpCount>();

  /** Creates the output. */
  constructor(options: LiveOutputOptions) {
    this.#write = options.write;
    this.#lines = options.lines ?? true;
    this.#format = new LineFormatter({
      colors: options.colors ?? NO_COLORS,
      slowNs: options.slowNs ?? 10_000_000,
    });
    this.#pairer = new Pairer({
      onEvent: (e) => {
        if (e.type !== "fuse") return;
        this.#count(e);
        if (this.#lines) this.#emit(this.#format.format(e));
      },
    });
  }

  /** Feeds one record, as written to the capture. */
  push(record: ShowRecord): void {
    this.#pairer.push(record);
  }

  /** Flushes in-flight requests (shown as unanswered) and pending lines. */
  finish(): void {
    this.#pairer.finish();
    this.flush();
  }

  /** Writes out buffered lines. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0) return;
    const text = this.#pending.join("");
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#write(text);
  }

  /** Counts by opcode: `[name, count, total latency ns, errors by errno name]`, busiest first. */
  summary(): { name: string; count: number; totalNs: number; errors: Map<string, number> }[] {
    return [...this.#counts.entries()]
      .map(([name, c]) => ({ name, count: c.count, totalNs: c.totalNs, errors: c.errors }))
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
  }

  /** The summary as aligned text lines. */
  summaryText(): string {
    const rows = this.summary();
    if (rows.length === 0) return "no FUSE operations\n";
    const out = [`${"operation".padEnd(16)} ${"count".padStart(8)} ${"avg".padStart(10)}  errors`];
    for (const r of rows) {
      const avg = r.count === 0 ? 0 : r.totalNs / r.count;
      const errs = [...r.errors.entries()].map(([n, c]) => `${n}×${c}`).join(" ");
      out.push(
        `${r.name.padEnd(16)} ${String(r.count).padStart(8)} ${fmtNs(avg).padStart(10)}  ${errs}`,
      );
    }
    return out.join("\n") + "\n";
  }

  #count(op: FuseOperation): void {
    let c = this.#counts.get(op.name);
    if (c === undefined) {
      c = { count: 0, errors: new Map(), totalNs: 0 };
      this.#counts.set(op.name, c);
    }
    c.count++;
    c.totalNs += op.latencyNs ?? 0;
    if (op.errno !== undefined && op.errno !== 0) {
      const name = errnoName(op.errno);
      c.errors.set(name, (c.errors.get(name) ?? 0) + 1);
    }
  }

  #emit(line: string): void {
    this.#pending.push(line + "\n");
    this.#pendingBytes += line.length + 1;
    if (this.#pendingBytes >= 64 * 1024) this.flush();
    // Lines are batched, but a quiet moment never leaves them waiting long.
    else this.#timer ??= setTimeout(() => this.flush(), 50);
  }
}

function fmtNs(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)}s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)}ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)}µs`;
  return `${Math.round(ns)}ns`;
}
