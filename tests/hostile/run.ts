/**
 * Runs the hostile corpus against one back-end kind and judges every case:
 * the outcome, the errno (for our own back-end), the health of the
 * back-end after it, and what the capture recorded.
 *
 * @module
 */
import { CaptureReader, RecordFlag, RecordKind } from "../../capture/mod.ts";
import { decodeRequest, FuseSession } from "../../decode/fuse.ts";
import { errnoName } from "../../sys/errno.ts";
import { HostileSession, type Outcome, type TargetKind } from "./harness.ts";
import type { HostileCase, RunResult } from "./cases.ts";

/** The verdict on one case. */
export interface CaseResult {
  /** The case's name. */
  name: string;
  /** Its group. */
  group: string;
  /** What the guest saw. */
  outcome: Outcome;
  /** The back-end still served a normal request afterwards. */
  healthy: boolean;
  /** The back-end process (trace) exited during the case. */
  exited?: Deno.CommandStatus;
  /** What is wrong (empty: passed). */
  failures: string[];
  /** Notes for the report (e.g. what virtiofsd did). */
  notes: string[];
}

/** The results of a whole run. */
export interface HostileReport {
  /** Per case. */
  results: CaseResult[];
  /** Back-end processes started. */
  sessions: number;
  /** Sessions whose process died (trace: the C virtiofsd died behind it). */
  deaths: { after: string; status: string; stderr: string }[];
}

interface Pending {
  c: HostileCase;
  r: CaseResult;
  unique: bigint | undefined;
}

function describe(o: Outcome): string {
  if (o.kind !== "reply") return o.kind;
  // The guest moved the reply buffer (over its rings): the client cannot read the reply.
  if (Number.isNaN(o.error) || o.outLen !== o.usedLen) return "reply (unreadable)";
  return o.error === 0 ? "reply ok" : `reply ${errnoName(-o.error) ?? o.error}`;
}

/** Judges what the capture of a finished session says about its cases. */
async function checkCapture(s: HostileSession, pending: Pending[]): Promise<string[]> {
  const problems: string[] = [];
  let reader;
  try {
    reader = await CaptureReader.open(s.capture);
  } catch (err) {
    return [`capture unreadable: ${(err as Error).message}`];
  }
  const chainNotes: string[] = [];
  const brokenNotes: string[] = [];
  const malformedUniques = new Set<bigint>();
  const requests = new Map<bigint, Uint8Array>();
  let stop = false;
  for await (const r of reader) {
    if (r.kind === RecordKind.NOTE) {
      const note = JSON.parse(new TextDecoder().decode(r.body));
      if (note.type === "malformed_chain") chainNotes.push(String(note.reason));
      if (note.type === "queue_broken") brokenNotes.push(String(note.reason));
      if (note.type === "stop") stop = true;
    } else if (r.kind === RecordKind.FUSE_REQUEST && r.body.byteLength >= 16) {
      const u = new DataView(r.body.buffer, r.body.byteOffset).getBigUint64(8, true);
      requests.set(u, r.body);
      if ((r.flags & RecordFlag.MALFORMED) !== 0) malformedUniques.add(u);
    }
  }
  if (reader.truncatedAt !== undefined) {
    problems.push(`capture truncated at byte ${reader.truncatedAt}`);
  }
  if (!stop && s.kind === "trace") problems.push("capture has no stop note");
  if (Deno.env.get("HOSTILE_DEBUG")) console.log(chainNotes.join("\n"));
  // malformed_chain notes come in case order.
  let k = 0;
  for (const p of pending) {
    const want = p.c.expect.chainReason;
    if (want !== undefined) {
      const at = chainNotes.findIndex((n, i) =>
        i >= k && want.split("|").some((w) => n.includes(w))
      );
      if (at < 0) p.r.failures.push(`no malformed_chain note with '${want}' in the capture`);
      else k = at + 1;
    }
    if (p.c.expect.breaksQueue && brokenNotes.length === 0) {
      p.r.failures.push("no queue_broken note in the capture");
    }
    if (p.c.expect.requestMalformed && p.unique !== undefined && requests.has(p.unique)) {
      if (!malformedUniques.has(p.unique)) {
        p.r.failures.push("the request record is not flagged MALFORMED");
      }
    }
    // A truncated request must not decode as if it were whole.
    if (p.c.group === "truncated" && p.unique !== undefined) {
      const body = requests.get(p.unique);
      if (body === undefined) p.r.failures.push("the request is missing from the capture");
      else {
        try {
          decodeRequest(body, new FuseSession({ minor: 38 }));
          p.r.failures.push("the recorded request decodes without error");
        } catch { /* flagged by the decoder, as show will */ }
      }
    }
  }
  return problems;
}

/** Runs `cases` against `kind`, replacing the session whenever a case leaves it unusable. */
export async function runHostile(
  kind: TargetKind,
  cases: readonly HostileCase[],
  log: (line: string) => void = () => {},
): Promise<HostileReport> {
  const report: HostileReport = { results: [], sessions: 0, deaths: [] };
  const ordered = [...cases.filter((c) => c.preInit), ...cases.filter((c) => !c.preInit)];
  let s: HostileSession | undefined;
  let pending: Pending[] = [];
  let sessionPreInit = false;
  const finish = async (): Promise<void> => {
    if (s === undefined) return;
    const st = await s.close();
    if (s.kind === "serve" && st.code !== 0) {
      const last = pending.at(-1)?.r;
      last?.failures.push(`serve exited with ${st.code}${st.signal ? ` (${st.signal})` : ""}`);
    }
    const problems = await checkCapture(s, pending);
    // Names with '/' or '..' must not have made anything appear next to the shared directory.
    for await (const e of Deno.readDir(s.dir)) {
      if (!["share", "capture.pcapng", "vfs.sock"].includes(e.name)) {
        problems.push(`'${e.name}' appeared outside the shared directory`);
      }
    }
    if (problems.length > 0) pending.at(-1)?.r.failures.push(...problems);
    await Deno.remove(s.dir, { recursive: true }).catch(() => {});
    s = undefined;
    pending = [];
  };
  for (const c of ordered) {
    const preInit = c.preInit === true;
    if (s !== undefined && (preInit || sessionPreInit)) await finish();
    if (s === undefined) {
      s = await HostileSession.start(kind, { init: !preInit });
      sessionPreInit = preInit;
      report.sessions++;
    }
    const r: CaseResult = {
      name: c.name,
      group: c.group,
      outcome: { kind: "timeout" },
      healthy: false,
      failures: [],
      notes: [],
    };
    report.results.push(r);
    let run: RunResult;
    try {
      run = await c.run(s);
    } catch (err) {
      r.failures.push(`the case threw: ${(err as Error).stack ?? err}`);
      run = { outcome: { kind: "queue-failed", message: String(err) } };
    }
    r.outcome = run.outcome;
    if (run.memoryProblem !== undefined) r.failures.push(run.memoryProblem);
    pending.push({ c, r, unique: run.unique });
    // A connection that ended, or a request never answered, may mean the process died.
    const lost = r.outcome.kind === "queue-failed" || r.outcome.kind === "timeout";
    const exit = await s.waitExit(
      lost ? (kind === "trace" ? 8000 : 3000) : kind === "trace" ? 100 : 0,
    );
    if (exit !== undefined) {
      r.exited = exit;
      report.deaths.push({
        after: c.name,
        status: `${exit.code}${exit.signal ? ` ${exit.signal}` : ""}`,
        stderr: s.stderr.slice(-2000),
      });
      if (kind === "serve") r.failures.push(`serve died: ${exit.code} ${exit.signal}\n${s.stderr}`);
      else {
        // trace ends when the C virtiofsd dies: it must say so and exit 1.
        if (exit.code !== 1 || !/back-end/.test(s.stderr)) {
          r.failures.push(`trace exited ${exit.code} without a clear message:\n${s.stderr}`);
        }
        r.notes.push(`virtiofsd died: ${s.stderr.trim().split("\n").at(-1)}`);
      }
    } else {
      r.healthy = preInit || await s.healthy();
    }
    const e = c.expect;
    if (!r.exited) {
      if (!e.outcomes.includes(r.outcome.kind)) {
        const msg = `outcome ${describe(r.outcome)}, expected ${e.outcomes.join(" or ")}`;
        if (
          kind === "serve" || c.group === "descriptor chain" || c.group === "indirect table" ||
          c.group === "ring"
        ) {
          r.failures.push(msg);
        } else r.notes.push(`virtiofsd: ${msg}`);
      }
      // Where the reply went is not where the client reads it when the guest moved the buffer.
      if (r.outcome.kind === "reply" && !e.mayBreak) {
        const o = r.outcome;
        if (run.unique !== undefined && o.unique !== run.unique && o.error !== 0) {
          r.notes.push(`reply unique ${o.unique} ≠ ${run.unique}`);
        }
        if (o.outLen !== o.usedLen) {
          (kind === "serve" ? r.failures : r.notes).push(
            `out header len ${o.outLen} ≠ used len ${o.usedLen}`,
          );
        }
        if (kind === "serve" && e.serveErrno !== undefined && !e.serveErrno.includes(-o.error)) {
          r.failures.push(
            `errno ${describe(o)}, expected ${e.serveErrno.map((n) => errnoName(n)).join("/")}`,
          );
        }
        if (kind === "trace") r.notes.push(`virtiofsd: ${describe(o)}`);
      }
      if (!r.healthy && !preInit && e.mayBreak) r.notes.push("the request queue stopped");
      else if (!r.healthy && !preInit) {
        if (kind === "serve") r.failures.push("serve no longer answers GETATTR");
        else r.notes.push("no longer answers GETATTR");
      }
    }
    log(
      `${r.failures.length === 0 ? "ok  " : "FAIL"} ${c.name}: ${describe(r.outcome)}` +
        (r.exited ? " (back-end died)" : r.healthy ? "" : " (unhealthy)") +
        (r.failures.length > 0 ? `\n     ${r.failures.join("\n     ")}` : ""),
    );
    if (r.exited || !r.healthy || e.breaksQueue || e.restart || preInit) await finish();
  }
  await finish();
  return report;
}

/** One line per group: cases, passed, outcomes. */
export function summarize(kind: TargetKind, report: HostileReport): string {
  const groups = new Map<string, { n: number; failed: number; outcomes: Map<string, number> }>();
  for (const r of report.results) {
    const g = groups.get(r.group) ?? { n: 0, failed: 0, outcomes: new Map() };
    g.n++;
    if (r.failures.length > 0) g.failed++;
    const k = r.exited ? "back-end died" : describe(r.outcome);
    g.outcomes.set(k, (g.outcomes.get(k) ?? 0) + 1);
    groups.set(r.group, g);
  }
  const lines = [`${kind}: ${report.results.length} cases, ${report.sessions} sessions`];
  for (const [name, g] of groups) {
    const o = [...g.outcomes].map(([k, v]) => `${k} ×${v}`).join(", ");
    lines.push(`  ${name.padEnd(18)} ${String(g.n).padStart(4)} cases, ${g.failed} failed: ${o}`);
  }
  for (const d of report.deaths) {
    const why = d.stderr.trim().split("\n").at(-1)?.replace(/; the capture .*/, "") ?? "";
    lines.push(`  back-end died after '${d.after}': exit ${d.status}: ${why}`);
  }
  return lines.join("\n");
}
