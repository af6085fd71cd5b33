/**
 * The `vfstrace` command line: one program, one subcommand per job.
 *
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import denoJson from "../deno.json" with { type: "json" };
import { CliError, ExitCode, printError, runInterruptCleanups } from "./_common.ts";
import { benchCommand } from "./_bench.ts";
import { demoCommand } from "./_demo.ts";
import { guestCommand } from "./_guest.ts";
import { replayCommand } from "./_replay.ts";
import { reportCommand } from "./_report.ts";
import { serveCommand } from "./_serve.ts";
import { showCommand } from "./_show.ts";
import { statsCommand } from "./_stats.ts";
import { traceCommand } from "./_trace.ts";

/** Builds the `vfstrace` program with all of its subcommands. */
export function buildProgram(): Command {
  const program = new Command("vfstrace")
    .description("Trace, decode, analyse and serve virtio-fs (vhost-user + FUSE).")
    .version(denoJson.version, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help for a command")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) })
    .addHelpText(
      "after",
      `
Exit status:
  0    success
  1    the command ran and what it checked failed
  2    bad command line
  3    something needed is missing (binary, file, permission)
  4    a time limit expired
  130  interrupted (SIGINT), 143 terminated (SIGTERM); temporary files and
       child processes are cleaned up first`,
    );
  program.addCommand(traceCommand());
  program.addCommand(guestCommand());
  program.addCommand(showCommand());
  program.addCommand(statsCommand());
  program.addCommand(reportCommand());
  program.addCommand(serveCommand());
  program.addCommand(benchCommand());
  program.addCommand(replayCommand());
  program.addCommand(demoCommand());
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Runs the CLI with `args` and returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version surface as "errors" with exit code 0.
      if (err.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    if (err instanceof CliError) {
      printError(err);
      return err.exitCode;
    }
    printError(err);
    return ExitCode.Failure;
  }
}

if (import.meta.main) {
  let interrupted = false;
  for (const [signal, status] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(signal, () => {
      if (interrupted) Deno.exit(status);
      interrupted = true;
      runInterruptCleanups().finally(() => Deno.exit(status));
    });
  }
  Deno.exit(await main(Deno.args));
}
