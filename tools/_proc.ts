/**
 * Process sampling shared by the soak tools: RSS and open fd counts read
 * from /proc, and the start/middle/end/slope summary of a sampled curve.
 *
 * @module
 */

/** The child pids of `pid` (all its threads'), or none once it is gone. */
export function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const c = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim();
      if (c !== "") out.push(...c.split(" ").map(Number));
    }
  } catch { /* gone */ }
  return out;
}

/** One process's memory and fd count at one moment (NaN when it is gone). */
export interface Mem {
  /** VmRSS. */
  rssKiB: number;
  /** RssAnon: the process's own memory (heap, stacks); a leak shows here. */
  anonKiB: number;
  /** RssShmem: pages of shared guest memory it touched (grows as the guest uses more RAM). */
  shmemKiB: number;
  /** Open file descriptors. */
  fds: number;
}

/** Samples `pid`'s memory and open fds. */
export function sample(pid: number): Mem {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const kib = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    let fds = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
    return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon"), shmemKiB: kib("RssShmem"), fds };
  } catch {
    return { rssKiB: NaN, anonKiB: NaN, shmemKiB: NaN, fds: NaN };
  }
}

/**
 * One line summing up a curve: first, middle and last values, min and max
 * (a garbage-collected heap saws up and down: they show whether it is
 * bounded), and the least-squares slope per minute over the second half
 * (after warm-up). Samples whose value is not finite are skipped.
 */
export function curve<S extends { t: number }>(
  label: string,
  samples: readonly S[],
  pick: (s: S) => number,
): string {
  const xs = samples.filter((s) => Number.isFinite(pick(s)));
  if (xs.length < 2) return `${label}: not enough samples`;
  const first = xs[0]!;
  const mid = xs[Math.floor(xs.length / 2)]!;
  const last = xs.at(-1)!;
  const slope = slopePerMinute(xs.slice(Math.floor(xs.length / 2)), pick);
  const vs = xs.map(pick);
  return `${label.padEnd(16)} start ${pick(first)}  mid ${pick(mid)}  end ${pick(last)}  ` +
    `min ${Math.min(...vs)}  max ${Math.max(...vs)}  slope (2nd half) ${slope.toFixed(1)}/min`;
}

/** Least-squares slope of `pick` against `t` (seconds), per minute; 0 for fewer than 2 times. */
export function slopePerMinute<S extends { t: number }>(
  xs: readonly S[],
  pick: (s: S) => number,
): number {
  if (xs.length === 0) return 0;
  const mt = xs.reduce((n, s) => n + s.t, 0) / xs.length;
  const mv = xs.reduce((n, s) => n + pick(s), 0) / xs.length;
  const num = xs.reduce((n, s) => n + (s.t - mt) * (pick(s) - mv), 0);
  const den = xs.reduce((n, s) => n + (s.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}
