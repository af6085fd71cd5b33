/**
 * What the end-to-end tests of `serve` share: where the CLI is, waiting for
 * a back-end's socket, and the shape of a guest's JSON report.
 *
 * @module
 */

/** The repository's root directory (with a trailing slash). */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** The `vfstrace` launcher (pinned Deno, the CLI's permissions). */
export const LAUNCHER = `${ROOT}vfstrace`;
/** The CLI's entry module. */
export const CLI = `${ROOT}cmd/vfstrace.ts`;

/** One check of a guest run (`vfstrace guest --json`). */
export interface Check {
  name: string;
  status: string;
  detail: string;
}

/** A guest run's report (`vfstrace guest --json`). */
export interface Report {
  passed: boolean;
  checks: Check[];
  hostChecks: Check[];
}

/** Resolves once `path` is a listening socket; throws after `ms`. */
export async function waitForSocket(path: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await Deno.stat(path)).isSocket) return;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`no socket at ${path} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
