// Shell: the one place that touches process.exit, process.stdout, process.stderr. A binary's
// cli.ts declares a cmd-ts command whose handler returns Either<Failure, exit code>; the shell
// runs it, renders a Failure as one line on stderr ("tsd-store: image x: not in the store") and
// exits with its code. A thrown exception is a bug: one line, exit 125, the stack only with TSD_DEBUG=1.
import * as E from 'fp-ts/lib/Either.js';
import { runSafely, type Runner } from 'cmd-ts';
import { ExitCode, isFailure } from '../failure.js';
import { flushAndExit, renderFailure, type CommandResult } from './io.js';

export { processIo, write, renderFailure, runMain, type Io, type CommandResult } from './io.js';


/** A subcommands runner wraps its chosen command's result as { command, value }, to any depth. */
type Nested = Promise<CommandResult> | { readonly command: string; readonly value: Nested };
const unwrap = (r: Nested): Promise<CommandResult> => ('command' in r && 'value' in r ? unwrap(r.value) : r);

export const runShell = async (tool: string, cmd: Runner<any, Nested>, argv: string[]): Promise<void> => {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  try {
    const parsed = await runSafely(cmd, argv);
    if (parsed._tag === 'error') {
      const { exitCode, message, into } = parsed.error.config;
      (into === 'stdout' ? process.stdout : process.stderr).write(message.endsWith('\n') ? message : `${message}\n`);
      return flushAndExit(exitCode === 0 ? 0 : ExitCode.user);
    }
    const result = await unwrap(parsed.value);
    if (E.isLeft(result)) {
      process.stderr.write(renderFailure(tool, result.left));
      return flushAndExit(result.left.exitCode);
    }
    return flushAndExit(result.right);
  } catch (e) {
    if (isFailure(e)) {
      process.stderr.write(renderFailure(tool, e));
      return flushAndExit(e.exitCode);
    }
    const text = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${tool}: internal error: ${text.split('\n')[0]}\n`);
    if (process.env.TSD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return flushAndExit(ExitCode.tool);
  }
};
