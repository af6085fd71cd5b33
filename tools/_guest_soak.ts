/**
 * Pure helpers of the guest soak (tools/soak_guest.ts): reading stress-ng's
 * and fio's results, and reconciling a capture's FUSE requests with its
 * replies.
 *
 * @module
 */

/** What one stress-ng run reported. */
export interface StressNgResult {
  /** Exit status of stress-ng. */
  status: number;
  /** Bogo ops per stressor, from the metrics table. */
  bogoOps: Map<string, number>;
  /** `fail:` lines (verify failures among them). */
  failures: string[];
  /** Whether it printed "successful run completed". */
  successful: boolean;
}

/** Parses stress-ng's log (with `--metrics-brief`) and its exit status. */
export function parseStressNg(log: string, status: number): StressNgResult {
  const bogoOps = new Map<string, number>();
  const failures: string[] = [];
  let successful = false;
  for (const line of log.split("\n")) {
    const m = /^stress-ng: (\w+):\s*\[\d+\]\s*(.*)$/.exec(line.trimEnd());
    if (m === null) continue;
    const [, level, text] = m as unknown as [string, string, string];
    if (level === "fail") failures.push(text);
    else if (level === "info" && /\bsuccessful run completed\b/.test(text)) {
      successful = !/\bunsuccessful\b/.test(text);
    } else if (level === "metrc") {
      const row = /^([a-z][\w-]*)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+/.exec(text);
      if (row !== null) bogoOps.set(row[1]!, (bogoOps.get(row[1]!) ?? 0) + Number(row[2]));
    }
  }
  return { status, bogoOps, failures, successful };
}

/** Whether a stress-ng run passed: exit 0, "successful", no `fail:` line. */
export function stressNgPassed(r: StressNgResult): boolean {
  return r.status === 0 && r.successful && r.failures.length === 0;
}

/** What one fio run (`--output-format=json`) reported. */
export interface FioResult {
  /** Jobs in the run. */
  jobs: number;
  /** Sum of the jobs' `error` fields (0: no error, verify failures included). */
  errors: number;
  /** Bytes read (verification reads included). */
  readBytes: number;
  /** Bytes written. */
  writeBytes: number;
}

/**
 * Parses fio's JSON output (text before the first `{`, such as verify
 * complaints fio prints to stdout, is skipped). Throws SyntaxError when
 * there is no JSON document.
 */
export function parseFioJson(text: string): FioResult {
  const start = text.indexOf("{");
  if (start < 0) throw new SyntaxError("fio output has no JSON document");
  const doc = JSON.parse(text.slice(start)) as {
    jobs?: { error?: number; read?: { io_bytes?: number }; write?: { io_bytes?: number } }[];
  };
  const jobs = doc.jobs ?? [];
  return {
    jobs: jobs.length,
    errors: jobs.reduce((n, j) => n + (j.error ?? 0), 0),
    readBytes: jobs.reduce((n, j) => n + (j.read?.io_bytes ?? 0), 0),
    writeBytes: jobs.reduce((n, j) => n + (j.write?.io_bytes ?? 0), 0),
  };
}

/** A FUSE record of a capture, as much as reconciliation needs. */
export interface FuseRecordLike {
  /** `"request"` or `"reply"`. */
  kind: "request" | "reply";
  /** Virtqueue index. */
  queue: number;
  /** Descriptor head of the chain. */
  head: number;
  /** The FUSE message (header first; may be cut after it; empty for a FORGET's chain). */
  body: Uint8Array;
}

/** FUSE opcodes that get no reply: FORGET, BATCH_FORGET. */
export const NO_REPLY_OPCODES: ReadonlySet<number> = new Set([2, 42]);

/** The outcome of {@linkcode FuseReconciler}. */
export interface Reconciliation {
  /** Request records. */
  requests: number;
  /** Of which need no FUSE reply (FORGET, BATCH_FORGET): their chain comes back empty. */
  noReply: number;
  /** Completion records (FUSE replies and the empty completions of FORGETs). */
  replies: number;
  /** Requests whose chain never came back. */
  unanswered: number;
  /** Completions of a chain (queue, head) that was not outstanding. */
  orphanReplies: number;
  /** Requests on a chain (queue, head) that was still outstanding. */
  duplicates: number;
  /** Replies whose unique is not their request's. */
  wrongUnique: number;
  /** Records too short for a FUSE header where one is due (a FORGET's completion is not). */
  short: number;
}

/**
 * Pairs every FUSE request with its completion by descriptor chain (queue,
 * head), in capture order, one record at a time (a capture can be large),
 * and checks that a reply carries its request's unique. A clean capture
 * has as many completions as requests and no unanswered, orphan,
 * duplicate, mismatched or short record.
 */
export class FuseReconciler {
  #r: Reconciliation = {
    requests: 0,
    noReply: 0,
    replies: 0,
    unanswered: 0,
    orphanReplies: 0,
    duplicates: 0,
    wrongUnique: 0,
    short: 0,
  };
  /** (queue, head) → the request's unique, or undefined for a FORGET. */
  #outstanding = new Map<string, bigint | undefined>();

  /** Counts and pairs one record. */
  add(rec: FuseRecordLike): void {
    const r = this.#r;
    const key = `${rec.queue}:${rec.head}`;
    // in header: len u32, opcode u32, unique u64; out header: len u32, error i32, unique u64.
    const dv = new DataView(rec.body.buffer, rec.body.byteOffset, rec.body.byteLength);
    const unique = rec.body.byteLength >= 16 ? dv.getBigUint64(8, true) : undefined;
    if (rec.kind === "request") {
      r.requests++;
      if (unique === undefined) {
        r.short++;
        return;
      }
      const forget = NO_REPLY_OPCODES.has(dv.getUint32(4, true));
      if (forget) r.noReply++;
      if (this.#outstanding.has(key)) r.duplicates++;
      this.#outstanding.set(key, forget ? undefined : unique);
      return;
    }
    r.replies++;
    if (!this.#outstanding.has(key)) {
      r.orphanReplies++;
      return;
    }
    const want = this.#outstanding.get(key);
    this.#outstanding.delete(key);
    if (want === undefined) return;
    if (unique === undefined) r.short++;
    else if (unique !== want) r.wrongUnique++;
  }

  /** The counts so far; requests still outstanding count as unanswered. */
  get result(): Reconciliation {
    return { ...this.#r, unanswered: this.#outstanding.size };
  }
}

/** {@linkcode FuseReconciler} over a whole sequence of records. */
export function reconcileFuse(records: Iterable<FuseRecordLike>): Reconciliation {
  const r = new FuseReconciler();
  for (const rec of records) r.add(rec);
  return r.result;
}

/** Whether a reconciliation is clean (see {@linkcode FuseReconciler}). */
export function reconciled(r: Reconciliation): boolean {
  return r.requests === r.replies && r.unanswered === 0 && r.orphanReplies === 0 &&
    r.duplicates === 0 && r.wrongUnique === 0 && r.short === 0;
}
