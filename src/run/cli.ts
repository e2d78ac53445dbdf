// tsd-run: `tsd-run [OPTIONS] IMAGE [CMD…]` runs a container; `tsd-run VERB …` manages them
// (ps, logs, stop, kill, rm, wait, inspect, exec, start, restart, top, attach, port). The first
// word decides: a verb name is a verb, so an image named like one is run with `tsd-run run IMAGE`.
// Only this shell runs up front; the run path and the verbs are imported on demand, so a
// container's start runs no code it does not use (bench/run): the run path's module carries
// runMain and processIo too.
import type { CommandResult, Io } from '../cli/io.js';

const loadRunCommand = (): Promise<typeof import('./run-command.js')> => import('./run-command.js');

const VERB_NAMES = ['ps', 'logs', 'stop', 'kill', 'rm', 'wait', 'inspect', 'exec', 'start', 'restart', 'top', 'attach', 'port'];

/** True when argv runs a container (not a verb, not help nor --version; no argument: an image JSON line on stdin). */
const isRun = (first: string | undefined): boolean => first !== '--help' && first !== 'help' && first !== '--version' && (first === undefined || !VERB_NAMES.includes(first));

export const main = async (argv: readonly string[], io: Io): Promise<CommandResult> => {
  const [first, ...rest] = argv;
  // no argument at all and a pipe on stdin: `tsd-build . | tsd-run` runs the image it names
  if (first === undefined && !io.isTTY.stdin) return (await loadRunCommand()).runCommand([], io);
  if (first === undefined || first === '--help' || first === 'help') {
    const [{ usage }, { verbHelp }, { write }, { ExitCode }, E] = await Promise.all([
      import('./run-command.js'),
      import('./verbs.js'),
      import('../cli/io.js'),
      import('../failure.js'),
      import('fp-ts/lib/Either.js'),
    ]);
    await write(first === undefined ? io.stderr : io.stdout, `${usage}\n\n${verbHelp()}`);
    return E.right(first === undefined ? ExitCode.user : 0);
  }
  if (first === '--version') {
    const [{ VERSION }, { write }, E] = await Promise.all([import('../version.js'), import('../cli/io.js'), import('fp-ts/lib/Either.js')]);
    await write(io.stdout, `${VERSION}\n`);
    return E.right(0);
  }
  if (VERB_NAMES.includes(first)) {
    const { VERBS } = await import('./verbs.js');
    return (VERBS[first] as (a: readonly string[], io: Io) => Promise<CommandResult>)(rest, io);
  }
  const { runCommand } = await loadRunCommand();
  return runCommand(first === 'run' ? rest : argv, io);
};

const argv = process.argv.slice(2);
void (isRun(argv[0]) ? loadRunCommand() : import('../cli/io.js')).then((shell) => shell.runMain('tsd-run', () => main(argv, shell.processIo())));
