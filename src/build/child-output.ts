// ChildOutput: a child process's stdout as a stream that keeps its bytes until they are read.
// Node resumes, and so throws away, a child's stdout that has no reader when the child exits: a
// reader that comes after an await (readContextTar opens its spool first) finds a short child's
// output gone, and a tar that is cut or empty looks like a context or an archive without files.
import { PassThrough, type Readable } from 'node:stream';

/** Reads `stdout` from now on into a buffer of up to 1 MiB (then the child waits); closing the result closes it. */
export const keptOutput = (stdout: Readable): Readable => {
  const kept = new PassThrough({ highWaterMark: 1 << 20 });
  stdout.on('error', (e) => kept.destroy(e));
  // a reader that stops early (a head read) closes the pipe too: the child gets EPIPE, not a stall
  kept.on('close', () => stdout.destroy());
  stdout.pipe(kept);
  return kept;
};
