// Io: the process's streams and exit, without cmd-ts, so a binary that parses its own argv
// (tsd-run) starts without loading the parser library. shell.ts re-exports all of it; only this
// file and shell.ts touch process.exit, process.stdout and process.stderr.
import type { Readable, Writable } from 'node:stream';
import { isatty } from 'node:tty';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, type Failure } from '../failure.js';

/** What a command may use of the process: injected, so library code never reaches for globals. */
export interface Io {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly isTTY: { readonly stdout: boolean; readonly stderr: boolean; readonly stdin: boolean };
}

export type CommandResult = E.Either<Failure, number>;

/** process.stdin is made on first use only: opening it costs start-up time a command may not need. */
export const processIo = (): Io => ({
  get stdin() {
    return process.stdin;
  },
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  isTTY: { stdout: !!process.stdout.isTTY, stderr: !!process.stderr.isTTY, stdin: isatty(0) },
});

/** Writes and waits until the data is handed to the OS (so exit does not cut it off). */
export const write = (out: Writable, text: string): Promise<void> =>
  new Promise((resolve) => {
    if (out.write(text)) resolve();
    else out.once('drain', resolve);
  });

export const flushAndExit = (code: number): void => {
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
