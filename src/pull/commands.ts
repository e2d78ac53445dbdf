// tsd-pull's full command line, declared with cmd-ts (cli.ts answers plain command lines without it).
import { command, flag, option, optional, restPositionals, string } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import { rootOption } from '../cli/options.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { failure } from '../failure.js';
import { formatMessage } from '../message.js';
import { parsePlatform } from '../oci/platform.js';
import { concurrencyOption, decodeConcurrency, decodeProgress, insecureOption, progressOption, quietFlag } from '../registry/options.js';
import { progressReporter } from '../registry/progress.js';
import { openStore } from '../store/store.js';
import { VERSION } from '../version.js';
import { pull } from './pull.js';

const io = processIo();

const cmd = command({
  name: 'tsd-pull',
  version: VERSION,
  description: 'fetch images from a registry into the store and print one image JSON line each',
  args: {
    root: rootOption,
    platform: option({ type: optional(string), long: 'platform', description: 'os/arch[/variant] to pick from a multi-platform image (default: this host)' }),
    concurrency: concurrencyOption,
    insecure: insecureOption,
    progress: progressOption,
    quiet: quietFlag,
    unpack: flag({ long: 'unpack', description: 'unpack layers into snapshots so the image is ready to run' }),
    refs: restPositionals({ type: string, displayName: 'REF' }),
  },
  handler: async ({ root, platform, concurrency, insecure, progress, quiet, unpack, refs }): Promise<CommandResult> => {
    if (refs.length === 0) return E.left(failure('Usage', 'no image named: tsd-pull REF…'));
    const mode = decodeProgress(progress, quiet);
    if (E.isLeft(mode)) return mode;
    const n = decodeConcurrency(concurrency);
    if (E.isLeft(n)) return n;
    const chosen = platform === undefined ? undefined : parsePlatform(platform);
    if (chosen && E.isLeft(chosen)) return chosen;
    const store = await openStore(root)();
    if (E.isLeft(store)) return store;
    // loaded only when asked for, so a plain pull starts without the unpacker's code
    const unpacker = unpack ? (await import('../snapshot/snapshot.js')).unpackLayer : undefined;
    const streamer = unpack ? (await import('../snapshot/pending.js')).beginUnpack : undefined;
    const report = progressReporter(mode.right, 'tsd-pull', io.stderr, io.isTTY.stderr);
    for (const ref of refs) {
      const r = await pull(store.right, ref, {
        ...(chosen ? { platform: chosen.right } : {}),
        concurrency: n.right,
        insecure,
        env: io.env,
        report,
        ...(unpacker ? { unpack: unpacker } : {}),
        ...(streamer ? { unpackStream: streamer } : {}),
      })();
      if (E.isLeft(r)) return r;
      await write(io.stdout, formatMessage(r.right));
    }
    return E.right(0);
  },
});

export const main = (argv: string[]): Promise<void> => runShell('tsd-pull', cmd, argv);
