// tsd-store's entry. Start-up is budgeted (at most 1.5 × `node -e 0`, bench/store), and the
// argument parser alone costs a third of that: so `--version` and a plain `ls` (no options but
// --root, --json, --format) are answered here without it; every other command line goes to
// commands.ts, loaded on demand. Both paths print the same bytes and exit codes (list-output.ts).
import { printSync } from '../cli/print-sync.js';
import { VERSION } from '../version.js';

/** The options of a plain `ls`, or undefined when the command line needs the full parser. */
export const plainList = (argv: readonly string[]): { root?: string; json: boolean; format?: string } | undefined => {
  if (argv[0] !== 'ls' && argv[0] !== 'images') return undefined;
  let root: string | undefined;
  let format: string | undefined;
  let json = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if ((a === '--root' || a === '--format') && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      if (a === '--root') root = argv[++i];
      else format = argv[++i];
    } else if (a.startsWith('--root=')) root = a.slice('--root='.length);
    else if (a.startsWith('--format=')) format = a.slice('--format='.length);
    else return undefined;
  }
  return { ...(root !== undefined ? { root } : {}), json, ...(format !== undefined ? { format } : {}) };
};

// A command whose work stops short (a stream never ended, a promise never settled) would let the
// event loop drain and exit 0 having done nothing: make that a loud tool failure instead.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('tsd-store: internal error: the command stopped before it finished\n');
  process.exitCode = 125;
});
const done = () => {
  settled = true;
};

const argv = process.argv.slice(2);
const list = plainList(argv);
if (argv.length === 1 && argv[0] === '--version') {
  printSync('tsd-store', `${VERSION}\n`);
  done();
} else if (list !== undefined) void import('./fast-list.js').then((m) => m.fastList(list)).then(done);
else void import('./commands.js').then((m) => m.main(argv)).then(done);
