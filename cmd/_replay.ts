/**
 * `vfstrace replay`: re-issues the FUSE requests of a capture against a
 * back-end with the built-in client, in order or with their original
 * overlap, remapping node ids, file handles and directory cookies from the
 * new replies; `--diff` compares each reply with the recorded one.
 *
 * @module
 */
import { Command } from "@commander-js/extra-typings";
import { CaptureReader, CaptureReadError } from "../capture/mod.ts";
import { FuseClient, type FuseResult } from "../client/mod.ts";
import {
  type Decoded,
  type FuseReply,
  type FuseRequest,
  InitFlags,
  Opcode,
  type StructInit,
} from "../decode/fuse.ts";
import { type FuseOperation, operationName, Pairer } from "../show/mod.ts";
import { errnoName } from "../sys/errno.ts";
import { CliError, colors, ExitCode } from "./_common.ts";

/**
 * Reply fields that legitimately differ between two runs on fresh copies of
 * a directory: node ids and inode numbers, generations, file handles, and
 * timestamps. Everything else is compared.
 */
export const IGNORED_FIELDS: ReadonlySet<string> = new Set([
  "nodeid",
  "ino",
  "generation",
  "fh",
  "atime",
  "mtime",
  "ctime",
  "atimensec",
  "mtimensec",
  "ctimensec",
]);

/** STATFS counters move with everything else on the host file system. */
const STATFS_COMPARED = new Set(["bsize", "namelen", "frsize"]);

/** Opcodes that create a node id in the reply (`fuse_entry_out`). */
const ENTRY_OPS = new Set<number>([
  Opcode.LOOKUP,
  Opcode.MKDIR,
  Opcode.MKNOD,
  Opcode.SYMLINK,
  Opcode.LINK,
  Opcode.CREATE,
  Opcode.TMPFILE,
]);
/** Opcodes whose reply carries a new file handle. */
const OPEN_OPS = new Set<number>([Opcode.OPEN, Opcode.OPENDIR, Opcode.CREATE, Opcode.TMPFILE]);
/** Not replayed: they refer to the recorded session itself. */
const SKIPPED_OPS = new Set<number>([Opcode.INTERRUPT, Opcode.NOTIFY_REPLY]);

/** One difference between a recorded reply and the replayed one. */
export interface ReplayDifference {
  /** Position of the operation in the capture (1-based, request order). */
  readonly index: number;
  /** Operation name. */
  readonly op: string;
  /** What the request was about (nodeid, name…), as recorded. */
  readonly what: string;
  /** What differs. */
  readonly field: string;
  /** Recorded value. */
  readonly recorded: string;
  /** Replayed value. */
  readonly replayed: string;
}

/** What a replay did. */
export interface ReplaySummary {
  /** FUSE operations in the capture. */
  operations: number;
  /** Requests sent. */
  replayed: number;
  /** Not sent (INTERRUPT, NOTIFY_REPLY, undecodable, unknown node ids). */
  skipped: number;
  /** Replies compared (--diff). */
  compared: number;
  /** Differences found. */
  differences: ReplayDifference[];
  /** Remarks that are not differences (INIT negotiation, truncated data not compared). */
  notes: string[];
  /** Replies that came back with an error. */
  errors: number;
  /** Wall time, ms. */
  elapsedMs: number;
}

/** Options of {@link replayCapture}. */
export interface ReplayOptions {
  /** The back-end's socket. */
  readonly socket: string;
  /** Issue requests with their recorded overlap instead of one at a time. */
  readonly concurrent?: boolean;
  /** Compare replies. */
  readonly diff?: boolean;
  /** Called for each difference as found. */
  readonly onDifference?: ((d: ReplayDifference) => void) | undefined;
}

/** Reads every FUSE operation of a capture, in request order. */
export async function readOperations(path: string): Promise<FuseOperation[]> {
  const ops: FuseOperation[] = [];
  const pairer = new Pairer({
    order: "request",
    onEvent: (e) => {
      if (e.type === "fuse") ops.push(e);
    },
  });
  let reader: CaptureReader;
  try {
    reader = await CaptureReader.open(path);
  } catch (err) {
    throw new CliError(`cannot open ${path}: ${(err as Error).message}`, ExitCode.Environment, {
      cause: err,
    });
  }
  try {
    for await (const rec of reader) pairer.push(rec);
  } catch (err) {
    if (!(err instanceof CaptureReadError)) throw err;
    throw new CliError(`${path}: ${err.message}`, ExitCode.Failure, { cause: err });
  } finally {
    reader.close();
  }
  pairer.finish();
  return ops;
}

function describe(req: FuseRequest): string {
  const parts = [`nodeid=${req.header.nodeid}`];
  for (const n of req.names) parts.push(JSON.stringify(n));
  const a = req.arg;
  if (a !== undefined) {
    if ("fh" in a && req.header.opcode !== Opcode.GETATTR) parts.push(`fh=${a.fh}`);
    if ("offset" in a) parts.push(`off=${a.offset}`);
    if ("size" in a && req.header.opcode !== Opcode.SETATTR) parts.push(`size=${a.size}`);
  }
  return parts.join(" ");
}

function show(v: unknown): string {
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`;
  if (typeof v === "number" && v > 0o7777 && v < 0o1000000) return `0${v.toString(8)}`;
  return String(v);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.byteLength);
  return out;
}

function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** Node ids, file handles and directory cookies: recorded → replayed. */
class Remap {
  readonly nodes = new Map<bigint, bigint>([[0n, 0n], [1n, 1n]]);
  readonly handles = new Map<string, bigint>();
  readonly cookies = new Map<string, bigint>();

  node(recorded: bigint): bigint | undefined {
    return this.nodes.get(recorded);
  }

  handle(recNode: bigint, recFh: bigint): bigint | undefined {
    return this.handles.get(`${recNode}:${recFh}`);
  }
}

/**
 * Builds the request to send from a recorded one: node ids, handles and
 * cookies replaced by the replay's. Returns a reason when it cannot be sent.
 */
function rebuild(
  req: FuseRequest,
  remap: Remap,
): { call: Parameters<FuseClient["send"]>[0]; padded: boolean } | string {
  const op = req.header.opcode;
  const node = remap.node(req.header.nodeid);
  if (node === undefined) return `nodeid ${req.header.nodeid} unknown in the replay`;
  const arg: Record<string, unknown> | undefined = req.arg === undefined
    ? undefined
    : { ...req.arg };
  if (arg !== undefined) {
    for (const f of ["newdir", "oldnodeid", "nodeid_out"]) {
      if (typeof arg[f] === "bigint") {
        const m = remap.node(arg[f] as bigint);
        if (m === undefined) return `${f} ${arg[f]} unknown in the replay`;
        arg[f] = m;
      }
    }
    const usesFh = op === Opcode.GETATTR
      ? ((Number(arg.getattr_flags ?? 0) & 1) !== 0)
      : op === Opcode.SETATTR
      ? ((Number(arg.valid ?? 0) & (1 << 3)) !== 0)
      : !OPEN_OPS.has(op);
    if (typeof arg.fh === "bigint" && usesFh) {
      const m = remap.handle(req.header.nodeid, arg.fh);
      if (m === undefined) {
        return `fh ${arg.fh} of nodeid ${req.header.nodeid} unknown in the replay`;
      }
      arg.fh = m;
    }
    if (typeof arg.fh_in === "bigint") {
      const m = remap.handle(req.header.nodeid, arg.fh_in);
      if (m !== undefined) arg.fh_in = m;
    }
    if (typeof arg.fh_out === "bigint" && typeof req.arg?.nodeid_out === "bigint") {
      const m = remap.handle(req.arg.nodeid_out, arg.fh_out);
      if (m !== undefined) arg.fh_out = m;
    }
    if ((op === Opcode.READDIR || op === Opcode.READDIRPLUS) && typeof arg.offset === "bigint") {
      const m = remap.cookies.get(`${req.header.nodeid}:${req.arg?.fh}:${arg.offset}`);
      if (m !== undefined) arg.offset = m;
    }
  }
  let data: Uint8Array | undefined = req.data.length === 0 ? undefined : concat(req.data);
  let padded = false;
  const want = op === Opcode.WRITE ? Number(req.arg?.size ?? 0) : undefined;
  if (want !== undefined && (data?.byteLength ?? 0) < want) {
    // The capture kept only the first bytes (snap length): the rest is sent as zeros.
    const full = new Uint8Array(want);
    if (data !== undefined) full.set(data);
    data = full;
    padded = true;
  }
  let items: StructInit[] | undefined;
  if (req.items.length > 0) {
    items = [];
    for (const it of req.items) {
      const copy: Record<string, unknown> = { ...it };
      if (typeof copy.nodeid === "bigint") {
        const m = remap.node(copy.nodeid);
        if (m === undefined) return `nodeid ${copy.nodeid} unknown in the replay`;
        copy.nodeid = m;
      }
      items.push(copy as StructInit);
    }
  }
  if (arg !== undefined && op === Opcode.WRITE) delete arg.size;
  return {
    call: {
      opcode: op,
      nodeid: node,
      ...(arg === undefined ? {} : { arg: arg as StructInit }),
      ...(req.names.length === 0 ? {} : { names: req.names }),
      ...(data === undefined ? {} : { data }),
      ...(items === undefined ? {} : { items }),
      ...(req.extensions.length === 0 ? {} : { extensions: req.extensions }),
      uid: req.header.uid,
      gid: req.header.gid,
      pid: req.header.pid,
    },
    padded,
  };
}

/** Learns node ids, handles and cookies from a recorded reply and its replayed twin. */
function learn(req: FuseRequest, rec: FuseReply, now: FuseReply, remap: Remap): void {
  const op = req.header.opcode;
  if (rec.header.error !== 0 || now.header.error !== 0) return;
  const ra = rec.arg;
  const na = now.arg;
  let fileNode = req.header.nodeid;
  if (ENTRY_OPS.has(op) && ra !== undefined && na !== undefined) {
    const r = ra.nodeid;
    const n = na.nodeid;
    if (typeof r === "bigint" && typeof n === "bigint" && r !== 0n) {
      remap.nodes.set(r, n);
      fileNode = r;
    }
  }
  if (OPEN_OPS.has(op) && ra !== undefined && na !== undefined) {
    if (typeof ra.fh === "bigint" && typeof na.fh === "bigint") {
      remap.handles.set(`${fileNode}:${ra.fh}`, na.fh);
    }
  }
  if (op === Opcode.READDIR || op === Opcode.READDIRPLUS) {
    // A cookie resumes after the entry that carries it: the k-th recorded cookie stands for
    // the k-th replayed one, whatever order the file system lists names in.
    const n = Math.min(rec.entries.length, now.entries.length);
    for (let k = 0; k < n; k++) {
      remap.cookies.set(
        `${req.header.nodeid}:${req.arg?.fh}:${rec.entries[k]!.off}`,
        now.entries[k]!.off,
      );
    }
    const byName = new Map(now.entries.map((e) => [e.name, e]));
    for (const e of rec.entries) {
      const m = byName.get(e.name);
      if (m === undefined) continue;
      const rn = e.entry?.nodeid;
      const nn = m.entry?.nodeid;
      if (typeof rn === "bigint" && typeof nn === "bigint" && rn !== 0n) remap.nodes.set(rn, nn);
    }
  }
}

function compareStruct(
  a: Decoded | undefined,
  b: Decoded | undefined,
  only: ReadonlySet<string> | undefined,
  out: (field: string, rec: string, now: string) => void,
  prefix = "",
): void {
  if (a === undefined || b === undefined) {
    if ((a === undefined) !== (b === undefined)) {
      out(
        `${prefix}reply body`,
        a === undefined ? "none" : "present",
        b === undefined ? "none" : "present",
      );
    }
    return;
  }
  for (const [k, v] of Object.entries(a)) {
    if (IGNORED_FIELDS.has(k) || (only !== undefined && !only.has(k))) continue;
    if (v instanceof Uint8Array) continue; // padding
    const w = b[k];
    if (w === undefined) continue; // the other minor has no such field
    if (v !== w) out(`${prefix}${k}`, show(v), show(w));
  }
}

/** Compares a recorded reply with the replayed one. */
function compareReply(
  req: FuseRequest,
  rec: FuseReply,
  now: FuseReply,
  out: (field: string, rec: string, now: string) => void,
  note: (text: string) => void,
): void {
  const op = req.header.opcode;
  const re = -rec.header.error;
  const ne = -now.header.error;
  if (re !== ne) {
    out("result", re === 0 ? "0" : `-${errnoName(re)}`, ne === 0 ? "0" : `-${errnoName(ne)}`);
    return;
  }
  if (re !== 0) return;
  if (op === Opcode.INIT) return; // compared once, as notes, by the caller
  if (op === Opcode.STATFS) return compareStruct(rec.arg, now.arg, STATFS_COMPARED, out);
  if (op === Opcode.READDIR || op === Opcode.READDIRPLUS) {
    const recNames = rec.entries.map((e) => e.name).sort();
    const nowNames = now.entries.map((e) => e.name).sort();
    if (rec.truncated !== undefined) {
      // The snap length cut the listing: the entries recorded must be there, alike.
      const missing = recNames.filter((n) => !nowNames.includes(n));
      if (missing.length > 0) {
        out("entries", recNames.join(","), `${nowNames.join(",")} (no ${missing.join(",")})`);
      }
      note(
        `${operationName(op)} ${
          describe(req)
        }: listing compared over the ${recNames.length} recorded entries`,
      );
    } else if (recNames.join("/") !== nowNames.join("/")) {
      out("entries", recNames.join(",") || "(none)", nowNames.join(",") || "(none)");
      return;
    }
    const byName = new Map(now.entries.map((e) => [e.name, e]));
    for (const e of rec.entries) {
      const m = byName.get(e.name);
      if (m === undefined) continue;
      if (e.type !== m.type) out(`${e.name}: type`, String(e.type), String(m.type));
      // nodeid 0: the daemon gives no entry (the kernel ignores its attributes), e.g. "." and "..".
      if (e.entry?.nodeid === 0n || m.entry?.nodeid === 0n) continue;
      compareStruct(e.entry, m.entry, undefined, out, `${e.name}: `);
    }
    return;
  }
  compareStruct(rec.arg, now.arg, undefined, out);
  if (rec.data.length > 0 || now.data.length > 0) {
    const want = rec.header.len - (now.header.len - now.data.reduce((n, d) => n + d.byteLength, 0));
    const nowData = concat(now.data);
    const recData = concat(rec.data);
    if (rec.truncated === undefined) {
      if (recData.byteLength !== nowData.byteLength) {
        out("data length", String(recData.byteLength), String(nowData.byteLength));
      } else if (fnv1a(recData) !== fnv1a(nowData)) {
        out("data digest", fnv1a(recData), fnv1a(nowData));
      }
    } else {
      // Only the recorded prefix can be compared; the length comes from the header.
      if (want !== nowData.byteLength) out("data length", String(want), String(nowData.byteLength));
      const n = Math.min(recData.byteLength, nowData.byteLength);
      if (fnv1a(recData.subarray(0, n)) !== fnv1a(nowData.subarray(0, n))) {
        out(
          `data digest (first ${n} bytes)`,
          fnv1a(recData.subarray(0, n)),
          fnv1a(nowData.subarray(0, n)),
        );
      }
      note(`${operationName(op)} ${describe(req)}: data compared over the ${n} recorded bytes`);
    }
  }
}

function initOf(ops: readonly FuseOperation[]): FuseOperation | undefined {
  return ops.find((o) => o.opcode === Opcode.INIT && o.request?.decoded !== undefined);
}

/**
 * Replays `ops` against `options.socket`: INIT first (with the recorded
 * INIT's minor and flags when the capture has one), then every request.
 */
export async function replayOperations(
  ops: readonly FuseOperation[],
  options: ReplayOptions,
): Promise<ReplaySummary> {
  const t0 = performance.now();
  const summary: ReplaySummary = {
    operations: ops.length,
    replayed: 0,
    skipped: 0,
    compared: 0,
    differences: [],
    notes: [],
    errors: 0,
    elapsedMs: 0,
  };
  const recInit = initOf(ops);
  const recInitArg = recInit?.request?.decoded?.arg;
  const initFlags = recInitArg === undefined
    ? undefined
    : (BigInt(Number(recInitArg.flags ?? 0) >>> 0) |
      (BigInt(Number(recInitArg.flags2 ?? 0) >>> 0) << 32n));
  let client: FuseClient;
  try {
    client = await FuseClient.connect(options.socket, {
      memorySize: 128 << 20,
      ...(recInitArg === undefined ? {} : {
        minor: Number(recInitArg.minor),
        initFlags: initFlags!,
        maxReadahead: Number(recInitArg.max_readahead ?? 131072),
      }),
    });
  } catch (err) {
    throw new CliError(
      `cannot replay on ${options.socket}: ${(err as Error).message}`,
      ExitCode.Failure,
      {
        cause: err,
      },
    );
  }
  const diff = options.diff === true;
  if (diff && recInit?.reply?.decoded?.arg !== undefined) {
    const r = recInit.reply.decoded.arg;
    const n = client.initReply ?? {};
    for (const f of ["major", "minor", "max_write", "flags", "flags2", "max_pages"]) {
      if (r[f] !== undefined && n[f] !== undefined && r[f] !== n[f]) {
        const fmt = (v: unknown) =>
          f.startsWith("flags")
            ? InitFlags.format(BigInt(Number(v) >>> 0) << (f === "flags2" ? 32n : 0n))
            : String(v);
        summary.notes.push(`INIT ${f}: recorded ${fmt(r[f])}, this back-end ${fmt(n[f])}`);
      }
    }
  }
  const remap = new Remap();
  const concurrent = options.concurrent === true;
  // --concurrent: each request waits for the operations whose reply was recorded before it.
  let done: { replyNs: bigint; promise: Promise<void> }[] = [];
  const inflight: Promise<void>[] = [];
  let index = 0;
  let paddedWrites = 0;
  try {
    for (const o of ops) {
      index++;
      const req = o.request?.decoded;
      if (o.opcode === Opcode.INIT) continue;
      if (req === undefined || SKIPPED_OPS.has(o.opcode)) {
        summary.skipped++;
        continue;
      }
      if (concurrent) {
        const at = o.timestampNs;
        const before = done.filter((d) => d.replyNs <= at);
        if (before.length > 0) {
          await Promise.all(before.map((d) => d.promise));
          done = done.filter((d) => d.replyNs > at);
        }
      }
      const built = rebuild(req, remap);
      const at = index;
      const name = operationName(o.opcode);
      if (typeof built === "string") {
        summary.skipped++;
        if (diff) {
          const d: ReplayDifference = {
            index: at,
            op: name,
            what: describe(req),
            field: "not sent",
            recorded: "sent",
            replayed: built,
          };
          summary.differences.push(d);
          options.onDifference?.(d);
        }
        continue;
      }
      if (built.padded) paddedWrites++;
      const run = async () => {
        let res: FuseResult;
        try {
          res = await client.send(built.call);
        } catch (err) {
          throw new CliError(
            `request ${at} (${name} ${describe(req)}): ${(err as Error).message}`,
            ExitCode.Failure,
            { cause: err },
          );
        }
        summary.replayed++;
        if (res.errno !== 0) summary.errors++;
        const rec = o.reply?.decoded;
        const now = res.reply;
        if (rec === undefined || now === undefined) return;
        learn(req, rec, now, remap);
        if (!diff) return;
        summary.compared++;
        compareReply(req, rec, now, (field, r, n) => {
          const d: ReplayDifference = {
            index: at,
            op: name,
            what: describe(req),
            field,
            recorded: r,
            replayed: n,
          };
          summary.differences.push(d);
          options.onDifference?.(d);
        }, (text) => summary.notes.push(text));
      };
      if (!concurrent) {
        await run();
        continue;
      }
      const p = run();
      inflight.push(p);
      const replyNs = o.reply?.record.timestampNs ?? o.timestampNs;
      done.push({ replyNs, promise: p.catch(() => {}) });
    }
    await Promise.all(inflight);
  } finally {
    await client.close().catch(() => {});
  }
  if (paddedWrites > 0) {
    summary.notes.push(
      `${paddedWrites} WRITE(s) had data cut by the capture's snap length: the missing bytes were sent as zeros`,
    );
  }
  summary.elapsedMs = performance.now() - t0;
  return summary;
}

/** Builds the `replay` subcommand. */
export function replayCommand(): Command<[string]> {
  return new Command("replay")
    .description(
      "Re-issue the FUSE requests of a capture against a back-end with the built-in client, " +
        "remapping node ids and file handles; --diff compares every reply with the recorded one.",
    )
    .argument("<capture>", "the capture (pcapng) to replay")
    .requiredOption("--socket <path>", "the back-end's vhost-user socket")
    .option(
      "--concurrent",
      "keep the recorded overlap (a request waits only for replies recorded before it)",
    )
    .option("--diff", "compare each reply with the recorded one; exit 1 when any differs")
    .option("--json", "the summary (and differences) as one JSON document")
    .addHelpText(
      "after",
      `
The replay's own INIT goes first, with the recorded INIT's minor and flags;
the recorded INIT is not re-sent (with --diff, differences in what the two
back-ends negotiated are printed as notes). INTERRUPT and NOTIFY_REPLY are not
replayed. Node ids, file handles and READDIR cookies are taken from the new
replies. Replay on a fresh copy of the directory the capture started from.

--diff compares: the result (0 or errno); every reply field except
${[...IGNORED_FIELDS].join(", ")}
(these differ between runs); directory listings by name; READ/READLINK/GETXATTR
data by length and FNV-1a digest (only over the recorded bytes when the capture's
snap length cut them); STATFS only bsize, namelen, frsize.

Exit status: 0 replayed (and no differences with --diff), 1 differences or a
failed request, 3 the capture or socket is unusable.`,
    )
    .action(
      async (
        capture: string,
        opts: { socket: string; concurrent?: true; diff?: true; json?: true },
      ) => {
        const ops = await readOperations(capture);
        const json = opts.json === true;
        const summary = await replayOperations(ops, {
          socket: opts.socket,
          concurrent: opts.concurrent === true,
          diff: opts.diff === true,
          onDifference: json ? undefined : (d) =>
            console.log(
              `${
                colors.yellow(`#${d.index}`)
              } ${d.op} ${d.what}: ${d.field}: recorded ${d.recorded}, replayed ${d.replayed}`,
            ),
        });
        if (json) {
          console.log(JSON.stringify(summary, null, 2));
        } else {
          for (const n of summary.notes) console.log(`note: ${n}`);
          const diffed = opts.diff === true
            ? `, ${summary.compared} replies compared, ${summary.differences.length} difference(s)`
            : "";
          console.log(
            `replayed ${summary.replayed} of ${summary.operations} operations (${summary.skipped} skipped, ` +
              `${summary.errors} error replies) in ${
                (summary.elapsedMs / 1000).toFixed(2)
              } s${diffed}`,
          );
        }
        if (opts.diff === true && summary.differences.length > 0) {
          throw new CliError(
            `${summary.differences.length} difference(s) from the capture`,
            ExitCode.Failure,
          );
        }
      },
    );
}
