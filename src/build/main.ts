// tsd-build: a context tar on stdin (or --context DIR) → an image in the store, tagged, and its
// JSON line on stdout; or `--output` for the image as an archive, a tar or a directory.
// The shell only: arguments are decoded by hand (args.ts) and the command (command.ts) loads
// what a cache miss needs on demand, so a cached rebuild is mostly Node's own start-up.
import * as E from 'fp-ts/lib/Either.js';
import { resolve } from 'node:path';
import { ExitCode } from '../failure.js';
import { processIo, runMain, write } from '../cli/io.js';
import { VERSION } from '../version.js';
import { decodeArgs, USAGE } from './args.js';
import { buildCommand } from './command.js';

const io = processIo();

// a build that stops waiting on nothing (a bug) must not look like success: exit 0, no image line
let settled = false;
process.once('beforeExit', () => {
  if (settled) return;
  process.stderr.write('tsd-build: internal error: the build stopped before it finished\n');
  process.exit(ExitCode.tool);
});
void runMain('tsd-build', async () => {
  const decoded = decodeArgs(process.argv.slice(2), io.env, (p) => resolve(p));
  if (E.isLeft(decoded)) return decoded;
  if (decoded.right._tag === 'help') {
    await write(io.stdout, USAGE);
    return E.right(0);
  }
  if (decoded.right._tag === 'version') {
    await write(io.stdout, `${VERSION}\n`);
    return E.right(0);
  }
  return buildCommand(decoded.right.args, io);
}).finally(() => {
  settled = true;
});
