/**
 * Running host commands with their failure turned into a HostCommandError.
 * Internal to vm/.
 *
 * @module
 */
import { HostCommandError } from "./errors.ts";

/** Options of {@linkcode runCommand}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Bytes written to the command's stdin (stdin is /dev/null otherwise). */
  stdin?: Uint8Array;
}

/** What a successful command printed. */
export interface RunOutput {
  /** Raw stdout. */
  stdout: Uint8Array;
  /** Stdout decoded as UTF-8. */
  text: string;
  /** Stderr decoded as UTF-8. */
  stderr: string;
}

/** Runs `argv` to completion; throws HostCommandError unless it exits 0. */
export async function runCommand(
  argv: readonly string[],
  opts: RunOptions = {},
): Promise<RunOutput> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new TypeError("runCommand: empty argv");
  const options: Deno.CommandOptions = {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  };
  if (opts.cwd !== undefined) options.cwd = opts.cwd;
  if (opts.env !== undefined) options.env = opts.env;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, options).spawn();
  } catch (err) {
    throw new HostCommandError(argv, null, err instanceof Error ? err.message : String(err), {
      cause: err,
    });
  }
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    // A command that exits early closes its stdin; its exit status says why.
    await writer.write(opts.stdin).catch(() => {});
    await writer.close().catch(() => {});
  }
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new HostCommandError(argv, out.code, stderr);
  return { stdout: out.stdout, text: new TextDecoder().decode(out.stdout), stderr };
}
