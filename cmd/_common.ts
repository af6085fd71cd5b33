/**
 * Shared CLI plumbing: exit codes, colour, and turning thrown errors into one
 * clear line on stderr.
 */
import pc from "picocolors";

/** Process exit codes used by every vfstrace command (documented in the README). */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** The command ran but what it checked failed (a guest workload failed, a peer misbehaved). */
  Failure: 1,
  /** Bad command line: unknown option, missing argument, invalid value. */
  Usage: 2,
  /** Something the command needs is missing or unusable (a binary, a file, a permission). */
  Environment: 3,
  /** A time limit given to the command expired. */
  Timeout: 4,
  /** Interrupted by SIGINT. */
  Interrupted: 130,
} as const;

/** Error a command throws to end with a chosen exit code and message. */
export class CliError extends Error {
  /** Exit status the process ends with. */
  readonly exitCode: number;
  /** Creates an error ending the process with `exitCode`. */
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** Colours that honour NO_COLOR, FORCE_COLOR and whether stderr/stdout is a terminal. */
export const colors = pc.createColors(useColor());

function useColor(): boolean {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const noColor = env("NO_COLOR");
  if (noColor !== undefined && noColor !== "") return false;
  const force = env("FORCE_COLOR");
  if (force !== undefined && force !== "" && force !== "0") return true;
  return Deno.stdout.isTerminal();
}

/** Prints `error: message` (and the cause chain) on stderr. */
export function printError(err: unknown): void {
  const lines: string[] = [];
  let cur: unknown = err;
  let first = true;
  while (cur !== undefined && cur !== null) {
    const text = cur instanceof Error ? cur.message : String(cur);
    lines.push(first ? `${colors.red("error:")} ${text}` : `  caused by: ${text}`);
    first = false;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  console.error(lines.join("\n"));
}

/** Parses a positive number option, failing with a usage error naming the option. */
export function parsePositive(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) {
      throw new CliError(`${name}: expected a positive number, got '${value}'`, ExitCode.Usage);
    }
    return n;
  };
}

type Cleanup = () => void | Promise<void>;
const cleanups = new Set<Cleanup>();

/**
 * Registers work that must happen if the user interrupts the command
 * (remove temporary files, stop child processes). Returns the function that
 * unregisters it once the command has cleaned up by itself.
 */
export function onInterrupt(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/**
 * Runs the registered cleanups (each bounded to 5 s), newest first. Called
 * on the first SIGINT; a second SIGINT exits at once.
 */
export async function runInterruptCleanups(): Promise<void> {
  const pending = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of pending) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(fn),
        new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
      ]);
    } catch (err) {
      printError(err);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A whole-number option parser (`--max-in-flight`, `--slowest`, `--depth`…). */
export function wholeNumber(option: string, min: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new CliError(
        `${option}: expected a whole number ≥ ${min}, got '${value}'`,
        ExitCode.Usage,
      );
    }
    return n;
  };
}
