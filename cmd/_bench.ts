/**
 * `vfstrace bench`: drives one or more virtio-fs back-ends with the built-in
 * client (no VM) and compares them side by side: rounds interleave across
 * the back-ends, medians and ratios against the first are printed. The
 * engine is client/bench.ts.
 *
 * @module
 */
import { Command, Option } from "@commander-js/extra-typings";
import {
  clientLoopOptions,
  type ClientPoll,
  compareBackends,
  type ComparisonResult,
  formatComparison,
  FuseClient,
  type Workload,
  WORKLOADS,
} from "../client/mod.ts";
import { CliError, ExitCode, parsePositive, wholeNumber } from "./_common.ts";

interface BenchOptions {
  socket: string[];
  label?: string[] | undefined;
  workload: string;
  depth: string;
  queues: number;
  duration: number;
  rounds: number;
  queueSize: number;
  poll: string;
  json?: true | undefined;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function list<T>(what: string, text: string, parse: (s: string) => T): T[] {
  const out = text.split(",").map((s) => s.trim()).filter((s) => s !== "").map(parse);
  if (out.length === 0) throw new CliError(`${what}: empty list`, ExitCode.Usage);
  return out;
}

/** Parameters of {@link runBench}. */
export interface RunBenchOptions {
  /** Back-end sockets; the first is the reference for ratios. */
  readonly sockets: readonly string[];
  /** Labels (default: the socket paths). */
  readonly labels?: readonly string[];
  /** Workloads to run, in order. */
  readonly workloads: readonly Workload[];
  /** Depths to run each workload at. */
  readonly depths: readonly number[];
  /** Request queues per client. */
  readonly queues: number;
  /** Seconds per round. */
  readonly durationS: number;
  /** Rounds per back-end. */
  readonly rounds: number;
  /** Queue size. */
  readonly queueSize?: number;
  /** How the client waits (default spin). */
  readonly poll?: ClientPoll;
  /** Progress and tables go here (default: stdout). */
  readonly print?: (line: string) => void;
}

/**
 * Connects one client per socket, runs every workload at every depth on all
 * of them (interleaved rounds), and returns the comparisons; prints each
 * table as it finishes unless `print` is a no-op.
 */
export async function runBench(o: RunBenchOptions): Promise<ComparisonResult[]> {
  const print = o.print ?? ((l: string) => console.log(l));
  const clients: { label: string; client: FuseClient }[] = [];
  const out: ComparisonResult[] = [];
  try {
    for (const [i, socket] of o.sockets.entries()) {
      let client: FuseClient;
      try {
        client = await FuseClient.connect(socket, {
          requestQueues: o.queues,
          queueSize: o.queueSize ?? 256,
          memorySize: 128 << 20,
          ...(o.poll === "park" ? { eventLoop: clientLoopOptions("park")! } : {}),
        });
      } catch (err) {
        throw new CliError(
          `cannot drive ${socket}: ${(err as Error).message}`,
          ExitCode.Environment,
          { cause: err },
        );
      }
      clients.push({ label: o.labels?.[i] ?? socket, client });
    }
    for (const workload of o.workloads) {
      for (const depth of o.depths) {
        const r = await compareBackends(clients, {
          workload,
          depth,
          rounds: o.rounds,
          durationMs: o.durationS * 1000,
        });
        out.push(r);
        print(formatComparison(r));
      }
    }
  } finally {
    for (const c of clients) await c.client.close().catch(() => {});
  }
  return out;
}

/** Builds the `bench` subcommand. */
export function benchCommand(): Command {
  return new Command("bench")
    .description(
      "Drive virtio-fs back-ends directly with the built-in client (no VM) and compare them " +
        "side by side: ops/s, MB/s, latency percentiles, ratios against the first --socket.",
    )
    .requiredOption(
      "--socket <path>",
      "a back-end's vhost-user socket (repeat to compare; the first is the reference)",
      collect,
    )
    .option("--label <name>", "a name for the back-end of the same position (repeat)", collect)
    .option(
      "--workload <list>",
      `comma-separated: ${WORKLOADS.join(", ")}`,
      WORKLOADS.join(","),
    )
    .option("--depth <list>", "requests in flight, comma-separated (e.g. 1,16)", "1")
    .option(
      "--queues <n>",
      "request queues to use (the back-end must offer them)",
      wholeNumber("--queues", 1),
      1,
    )
    .option("--duration <seconds>", "length of each round", parsePositive("--duration"), 2)
    .option(
      "--rounds <n>",
      "rounds per back-end (interleaved; medians reported)",
      wholeNumber("--rounds", 1),
      3,
    )
    .option("--queue-size <n>", "virtqueue size", wholeNumber("--queue-size", 2), 256)
    .addOption(
      new Option(
        "--poll <mode>",
        "how the client waits for replies: spin (busy-poll briefly after each completion) or park",
      ).choices(["spin", "park"]).default("spin"),
    )
    .option("--json", "one JSON document instead of the tables")
    .addHelpText(
      "after",
      `
Workloads (each in a private directory it creates under the share's root and
removes after):
  meta     CREATE, GETATTR, RELEASE, UNLINK (+ FORGET) of a fresh file per cycle
  seq      1 MiB WRITEs and READs (capped at max_write) walking a 32 MiB file
  rand     4 KiB READs and WRITEs at random offsets of a 16 MiB file (same
           sequence on every back-end)
  readdir  OPENDIR, READDIRPLUS to the end, RELEASEDIR on 256 entries

--poll: the client runs in one process with the back-ends it measures; spinning
gives the lowest latency when there are spare CPUs, parking leaves the CPUs to
the back-ends on a small or busy machine (a back-end that spins itself, as serve
and trace do, otherwise competes with the client for them).

ops/s counts FUSE requests answered; MB/s payload bytes (read + written, or
directory bytes). A back-end serves one client: start one per socket (virtiofsd
and serve exit when the client disconnects; serve --persist does not).

Example:
  vfstrace bench --socket /tmp/virtiofsd.sock --socket /tmp/serve.sock \\
      --workload meta,rand --depth 1,16`,
    )
    .action(async (opts: BenchOptions) => {
      const workloads = list("--workload", opts.workload, (s) => {
        if (!(WORKLOADS as readonly string[]).includes(s)) {
          throw new CliError(
            `--workload: unknown '${s}' (known: ${WORKLOADS.join(", ")})`,
            ExitCode.Usage,
          );
        }
        return s as Workload;
      });
      const depths = list("--depth", opts.depth, wholeNumber("--depth", 1));
      const json = opts.json === true;
      const results = await runBench({
        sockets: opts.socket,
        ...(opts.label === undefined ? {} : { labels: opts.label }),
        workloads,
        depths,
        queues: opts.queues,
        durationS: opts.duration,
        rounds: opts.rounds,
        queueSize: opts.queueSize,
        poll: opts.poll as ClientPoll,
        print: json ? () => {} : (l) => console.log(l),
      });
      if (json) console.log(JSON.stringify({ results }, null, 2));
    });
}
