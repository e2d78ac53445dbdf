// Shell: the one place that touches process.exit, process.stdout, process.stderr. A binary's
// cli.ts declares a cmd-ts command whose handler returns Either<Failure, exit code>; the shell
// runs it, renders a Failure as one line on stderr ("tsd-store: image x: not in the store") and
// exits with its code. A thrown exception is a bug: one line, exit 125, the stack only with TSD_DEBUG=1.
import type { Readable, Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { runSafely, type Runner } from 'cmd-ts';
import { ExitCode, isFailure, type Failure } from '../failure.js';

/** What a command may use of the process: injected, so library code never reaches for globals. */
export interface Io {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly isTTY: { readonly stdout: boolean; readonly stderr: boolean; readonly stdin: boolean };
}

export type CommandResult = E.Either<Failure, number>;

export const processIo = (): Io => ({
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  isTTY: { stdout: !!process.stdout.isTTY, stderr: !!process.stderr.isTTY, stdin: !!process.stdin.isTTY },
});

/** Writes and waits until the data is handed to the OS (so exit does not cut it off). */
export const write = (out: Writable, text: string): Promise<void> =>
  new Promise((resolve) => {
    if (out.write(text)) resolve();
    else out.once('drain', resolve);
  });

const flushAndExit = (code: number): void => {
  process.exitCode = code;
  // stdout/stderr pipes are asynchronous in Node: exit only once they have drained
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
};

export const renderFailure = (tool: string, f: Failure): string => `${tool}: ${f.message.replace(/\s*\n\s*/g, ' ')}\n`;

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

/**
 * For a binary whose grammar cmd-ts cannot express (tsd-run: options stop at the image, verbs
 * and images share the first word): the same one-line failure rendering and exit as runShell.
 */
export const runMain = async (tool: string, main: () => Promise<CommandResult>): Promise<void> => {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
  try {
    const result = await main();
    if (E.isLeft(result)) {
      process.stderr.write(renderFailure(tool, result.left));
      return flushAndExit(result.left.exitCode);
    }
    return flushAndExit(result.right);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${tool}: internal error: ${text.split('\n')[0]}\n`);
    if (process.env.TSD_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return flushAndExit(ExitCode.tool);
  }
};
