/**
 * Helpers shared by the benchmarks that boot a real guest (bench:trace,
 * bench:serve): command-line numbers, waiting for a socket, medians and
 * percentiles, and the times a guest run's checks took.
 *
 * @module
 */
import type { GuestReport } from "../vm/mod.ts";

/** The CLI entry point, for benchmarks that run it as users do. */
export const CLI: string = new URL("../cmd/vfstrace.ts", import.meta.url).pathname;

/** `--name N` from the command line, or `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** Waits until a Unix socket exists at `path` (30 s at most: a loaded machine starts Deno slowly). */
export async function waitForSocket(path: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    try {
      if ((await Deno.stat(path)).isSocket) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no socket at ${path}`);
}

/** Median of `xs`. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The `q` quantile of `xs` (nearest rank). */
export function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/** Seconds each timed check of a guest run took, by check name. */
export type Times = Record<string, number>;

/** The timed checks of `report`; throws when the run failed. */
export function checkTimes(report: GuestReport, what: string): Times {
  if (!report.passed) throw new Error(`${what} run failed: ${JSON.stringify(report.checks)}`);
  const times: Times = {};
  for (const c of report.checks) if (c.seconds !== undefined) times[c.name] = c.seconds;
  return times;
}
