// PrintSync: a short text (a --version line) written with synchronous writes to fd 1, not through
// process.stdout, whose stream machinery (node:stream) costs a start ~1 ms (bench/store).
import { writeSync } from 'node:fs';

/**
 * Writes `text` to fd 1. A pipe another process left non-blocking (EAGAIN) gets the rest through
 * process.stdout; a reader that went away (EPIPE) is no error; any other failure is one line on
 * stderr, naming `tool`, and exit code 125.
 */
export const printSync = (tool: string, text: string): void => {
  const bytes = Buffer.from(text);
  let done = 0;
  try {
    while (done < bytes.length) done += writeSync(1, bytes, done);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN') process.stdout.write(bytes.subarray(done));
    else if (code !== 'EPIPE') {
      process.stderr.write(`${tool}: write stdout: ${(e as Error).message}\n`);
      process.exitCode = 125;
    }
  }
};
