// tsd-pull REF…: fetch images from a registry into the store; one image JSON line each.
// Start-up is budgeted (a warm re-pull at most 1.5 × `node -e 0`, bench/pull), and the argument
// parser alone costs a good part of it: so a plain command line (REFs with only --root, -q,
// --quiet, --progress) is answered here without it; any other goes to commands.ts, loaded on
// demand. Both paths print the same bytes and exit with the same codes.
import { printSync } from '../cli/print-sync.js';
import { plainPull, type PlainPull } from './plain-args.js';

// process.stderr is made (a stream, for a pipe a socket: ~1 ms of a start) only when something is
// to be said on it: a quiet pull that succeeds never touches it
let stderrUsed = false;
const stderr = (): NodeJS.WriteStream => {
  stderrUsed = true;
  return process.stderr;
};

// process.stdout, made when first needed (a pull that fails never makes it)
let stdoutReady = false;
const stdout = (): NodeJS.WriteStream => {
  if (!stdoutReady) {
    stdoutReady = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
    });
  }
  return process.stdout;
};

/** Exits once stdout and stderr, where made, have drained (pipes are asynchronous in Node). */
const exit = (code: number): void => {
  const streams = [...(stdoutReady ? [process.stdout] : []), ...(stderrUsed ? [process.stderr] : [])];
  let pending = streams.length;
  if (pending === 0) process.exit(code);
  for (const s of streams) {
    s.write('', () => {
      if (--pending === 0) process.exit(code);
    });
  }
};

const fail = (f: { message: string; exitCode: number }): void => {
  stderr().write(`tsd-pull: ${f.message.replace(/\s*\n\s*/g, ' ')}\n`);
  exit(f.exitCode);
};

const fastPull = async (args: PlainPull): Promise<void> => {
  const { openStoreSync, pull, progressReporter, decodeProgress } = await import('./fast-pull.js');
  const mode = decodeProgress(args.progress, args.quiet);
  if (mode._tag === 'Left') return fail(mode.left);
  const store = openStoreSync(args.root);
  if (store._tag === 'Left') return fail(store.left);
  const report = mode.right === 'quiet' ? () => undefined : progressReporter(mode.right, 'tsd-pull', stderr(), !!stderr().isTTY);
  for (const ref of args.refs) {
    const r = await pull(store.right, ref, { env: process.env, report })();
    if (r._tag === 'Left') return fail(r.left);
    stdout().write(`${JSON.stringify(r.right)}\n`);
  }
  exit(0);
};

const argv = process.argv.slice(2);
const plain = plainPull(argv);
// --version loads its chunk only when asked: a pull does not pay for two more modules to load
if (argv.length === 1 && argv[0] === '--version') void import('../version.js').then((v) => printSync('tsd-pull', `${v.VERSION}\n`));
else if (plain !== undefined) void fastPull(plain);
else void import('./commands.js').then((m) => m.main(argv));
