// tsd-push REF [DEST], or an image JSON line on stdin: upload an image from the store to a
// registry and print the pushed reference with its digest as an image JSON line.
import { command, option, optional, positional, string } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import { rootOption } from '../cli/options.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { failure } from '../failure.js';
import { firstImage, formatMessage } from '../message.js';
import { parsePlatform } from '../oci/platform.js';
import { concurrencyOption, decodeConcurrency, decodeProgress, insecureOption, progressOption, quietFlag } from '../registry/options.js';
import { progressReporter } from '../registry/progress.js';
import { openStore } from '../store/store.js';
import { VERSION } from '../version.js';
import { push } from './push.js';

const io = processIo();

const decodeChunk = (v: string | undefined): E.Either<ReturnType<typeof failure>, number | undefined> => {
  if (v === undefined) return E.right(undefined);
  const m = /^(\d+)([kKmMgG]?)(i?[bB])?$/.exec(v);
  if (!m) return E.left(failure('InvalidOption', `--chunk-size ${JSON.stringify(v)}: expected a size such as 8MiB`));
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Number(m[1]) * unit;
  return n >= 1024 ? E.right(n) : E.left(failure('InvalidOption', `--chunk-size ${JSON.stringify(v)}: at least 1KiB`));
};

const cmd = command({
  name: 'tsd-push',
  version: VERSION,
  description: 'upload an image from the store to a registry (REF [DEST], or an image JSON line on stdin)',
  args: {
    root: rootOption,
    platform: option({ type: optional(string), long: 'platform', description: 'os/arch[/variant] to push when only some platforms of an index are in the store' }),
    concurrency: concurrencyOption,
    chunkSize: option({ type: optional(string), long: 'chunk-size', description: 'upload blobs larger than this in PATCH chunks of this size (default 64MiB)' }),
    insecure: insecureOption,
    progress: progressOption,
    quiet: quietFlag,
    ref: positional({ type: optional(string), displayName: 'REF' }),
    dest: positional({ type: optional(string), displayName: 'DEST' }),
  },
  handler: async ({ root, platform, concurrency, chunkSize, insecure, progress, quiet, ref, dest }): Promise<CommandResult> => {
    const mode = decodeProgress(progress, quiet);
    if (E.isLeft(mode)) return mode;
    const n = decodeConcurrency(concurrency);
    if (E.isLeft(n)) return n;
    const chunk = decodeChunk(chunkSize);
    if (E.isLeft(chunk)) return chunk;
    const chosen = platform === undefined ? undefined : parsePlatform(platform);
    if (chosen && E.isLeft(chosen)) return chosen;
    // REF "-" or no REF: the image comes as a JSON line on stdin (tsd-build … | tsd-push - DEST)
    let source = ref;
    if (source === undefined || source === '-') {
      if (source === undefined && io.isTTY.stdin) return E.left(failure('Usage', 'no image named: tsd-push REF [DEST], or pipe an image JSON line in'));
      const msg = await firstImage(io.stdin);
      if (E.isLeft(msg)) return msg;
      source = msg.right.ref ?? msg.right.digest;
    }
    const store = await openStore(root)();
    if (E.isLeft(store)) return store;
    const r = await push(store.right, source, {
      ...(dest !== undefined ? { destination: dest } : {}),
      ...(chosen ? { platform: chosen.right } : {}),
      ...(chunk.right !== undefined ? { chunkSize: chunk.right } : {}),
      concurrency: n.right,
      insecure,
      env: io.env,
      report: progressReporter(mode.right, 'tsd-push', io.stderr, io.isTTY.stderr),
    })();
    if (E.isLeft(r)) return r;
    await write(io.stdout, formatMessage(r.right));
    return E.right(0);
  },
});

void runShell('tsd-push', cmd, process.argv.slice(2));
