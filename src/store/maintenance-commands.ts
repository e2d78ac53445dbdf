// tsd-store's maintenance commands (gc, prune, fsck, df), declared with cmd-ts; commands.ts
// mounts them beside the others.
import { command, flag, option, optional, string } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { jsonFlag, rootOption } from '../cli/options.js';
import { processIo, write, type CommandResult } from '../cli/shell.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { humanSize, table } from './listing.js';
import type { StorePaths } from './layout.js';
import { openStore } from './store.js';

const io = processIo();
const ok = (code = 0): CommandResult => E.right(code);

const dryRunFlag = flag({ long: 'dry-run', short: 'n', description: 'print what would be removed, remove nothing' });

const printGc = async (r: { removed: readonly { digest: string; size: number }[]; tempsRemoved: number; reclaimed: number; snapshotsRemoved: readonly string[]; untagged?: number }, json: boolean, dryRun: boolean) => {
  if (json) {
    await write(io.stdout, `${JSON.stringify({ v: 1, type: 'gc', dryRun, removed: r.removed, tempsRemoved: r.tempsRemoved, reclaimed: r.reclaimed, snapshotsRemoved: r.snapshotsRemoved, ...(r.untagged !== undefined ? { untagged: r.untagged } : {}) })}\n`);
    return;
  }
  const verb = dryRun ? 'Would delete' : 'Deleted';
  for (const b of r.removed) await write(io.stdout, `${verb}: ${b.digest}\n`);
  for (const c of r.snapshotsRemoved) await write(io.stdout, `${verb} snapshot: ${c}\n`);
  if (r.tempsRemoved > 0) await write(io.stdout, `${verb}: ${r.tempsRemoved} temp file${r.tempsRemoved === 1 ? '' : 's'} of dead processes\n`);
  await write(io.stdout, `Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
};

/** "512MB", "2GB", "1.5GiB", "1000": bytes, or undefined when it is not a size. */
export const parseSize = (s: string): number | undefined => {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?$/i.exec(s.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase().replace(/b$/, '');
  const powers: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };
  const f = powers[unit];
  return f === undefined ? undefined : Math.floor(Number(m[1]) * f);
};

const keepCacheOption = option({
  type: optional(string),
  long: 'keep-cache',
  description: "keep the build cache's most recently used layers up to SIZE (e.g. 2GB); without it gc keeps no cache layer an image does not need",
});

/** With --keep-cache, the build cache's layers become roots (src/build/cache.ts, cacheRoots). */
const withCacheRoots = async (keepCache: string | undefined): Promise<E.Either<Failure, void>> => {
  if (keepCache === undefined) return E.right(undefined);
  const maxBytes = parseSize(keepCache);
  if (maxBytes === undefined) return E.left(failure('Usage', `--keep-cache ${JSON.stringify(keepCache)}: not a size (e.g. 500MB, 2GB)`));
  const [{ cacheRoots }, { registerRootSource }] = await Promise.all([import('../build/cache.js'), import('./roots.js')]);
  registerRootSource({ name: 'build-cache', digests: async (p) => [...(await cacheRoots(p, { maxBytes }))] });
  return E.right(undefined);
};

/** The build cache entries whose layers this gc reclaimed are misses now: remove them too. */
const dropDeadCacheEntries = (p: StorePaths, dryRun: boolean): TE.TaskEither<Failure, void> => async () => {
  if (!dryRun) await (await import('../build/cache.js')).dropDeadEntries(p);
  return E.right(undefined);
};

/** gc and prune: the same flags, cache roots, clean-up and report around a different collection. */
const collectCommand = (name: string, description: string, which: 'gc' | 'prune') =>
  command({
    name,
    description,
    args: { root: rootOption, json: jsonFlag, dryRun: dryRunFlag, keepCache: keepCacheOption },
    handler: async ({ root, json, dryRun, keepCache }) => {
      const collect = (await import('./gc.js'))[which];
      const cache = await withCacheRoots(keepCache);
      if (E.isLeft(cache)) return cache;
      return pipe(
        openStore(root),
        TE.chain((p) => pipe(collect(p, { dryRun }), TE.chainFirst(() => dropDeadCacheEntries(p, dryRun)))),
        TE.chain((r) => async () => {
          await printGc(r, json, dryRun);
          return ok();
        }),
      )();
    },
  });

export const gcCmd = collectCommand('gc', 'remove every blob that no image, container, root or live lease needs', 'gc');
export const pruneCmd = collectCommand('prune', 'forget every image without a name, then gc', 'prune');

export const fsckCmd = command({
  name: 'fsck',
  description: 're-hash every blob, check every image is whole; exits 1 when anything is wrong',
  args: { root: rootOption, json: jsonFlag, repair: flag({ long: 'repair', description: 'remove corrupt blobs and the images that need them' }) },
  handler: async ({ root, json, repair }) => {
    const { fsck, describeProblem } = await import('./fsck.js');
    return pipe(
      openStore(root),
      TE.chain((p) => fsck(p, { repair })),
      TE.chain((r) => async () => {
        const action = repair ? ' (repaired)' : '';
        for (const q of r.problems) {
          await write(io.stdout, json ? `${JSON.stringify({ v: 1, ...q, type: 'fsck', problem: q.kind, repaired: repair })}\n` : `${describeProblem(q)}${action}\n`);
        }
        const summary = `${r.blobs} blobs, ${r.images} images, ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}${r.problems.length > 0 && repair ? ' repaired' : ''}${r.staleTemps > 0 ? `, ${r.staleTemps} temp files of dead processes (${repair ? 'removed' : 'gc removes them'})` : ''}`;
        if (json) await write(io.stdout, `${JSON.stringify({ v: 1, type: 'fsck-summary', blobs: r.blobs, images: r.images, problems: r.problems.length, staleTemps: r.staleTemps, repaired: repair })}\n`);
        else await write(io.stderr, `${summary}\n`);
        return ok(r.problems.length > 0 && !repair ? ExitCode.user : 0);
      }),
    )();
  },
});

export const dfCmd = command({
  name: 'df',
  description: 'show the space the store uses and how much gc would reclaim',
  args: { root: rootOption, json: jsonFlag },
  handler: async ({ root, json }) => {
    const { diskUsage } = await import('./df.js');
    return pipe(
      openStore(root),
      TE.chain(diskUsage),
      TE.chain((rows) => async () => {
        if (json) for (const r of rows) await write(io.stdout, `${JSON.stringify({ v: 1, ...r, kind: r.type, type: 'df' })}\n`);
        else await write(io.stdout, table(['TYPE', 'COUNT', 'SIZE', 'RECLAIMABLE'], rows.map((r) => [r.type, String(r.count), humanSize(r.size), r.reclaimable === undefined ? '-' : humanSize(r.reclaimable)])));
        return ok();
      }),
    )();
  },
});
