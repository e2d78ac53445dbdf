// Fsck: re-hashes every blob and checks that every image in index.json is whole. A problem is
//  - corrupt:  a blob whose bytes no longer hash to its name;
//  - stray:    a file under blobs/ whose name is not a digest;
//  - missing:  a blob an image needs that is not in the store (or is corrupt);
//  - dangling: an index.json entry whose image is not whole (a manifest or a blob is missing,
//              corrupt or does not decode);
//  - index:    index.json itself does not decode.
// A healthy store in use raises no alarm: a blob is only ever seen under its final name once it
// is complete (blob.ts), temp files of live processes are ignored, and gc (which moves blobs
// aside) is kept out by the gc lock. Temp files of dead processes are reported, not problems.
// With repair: corrupt and stray files are deleted, dangling entries dropped from index.json,
// a broken index.json is moved to index.json.broken-TIME, dead temp files deleted.
import { createReadStream, promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { fromError, type Failure } from '../failure.js';
import { algorithmOf, DigestingStream, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { listBlobs, listTemps, pidAlive } from './gc.js';
import { readIndex, updateIndex } from './index-file.js';
import { refNameOf } from './image.js';
import type { StorePaths } from './layout.js';
import { withLock } from './lock.js';
import { walk } from './roots.js';

export type Problem =
  | { readonly kind: 'corrupt'; readonly digest: Digest; readonly actual: Digest }
  | { readonly kind: 'stray'; readonly path: string }
  | { readonly kind: 'missing'; readonly digest: Digest; readonly from: string }
  | { readonly kind: 'dangling'; readonly digest: Digest; readonly ref?: string; readonly reason: string }
  | { readonly kind: 'index'; readonly reason: string };

export interface FsckReport {
  readonly blobs: number;
  readonly images: number;
  readonly problems: readonly Problem[];
  /** temp files left by dead processes (gc removes them; not a problem) */
  readonly staleTemps: number;
  readonly repaired: boolean;
}

export const describeProblem = (q: Problem): string => {
  switch (q.kind) {
    case 'corrupt':
      return `corrupt blob ${q.digest}: its bytes hash to ${q.actual}`;
    case 'stray':
      return `stray file ${q.path}: not named by a digest`;
    case 'missing':
      return `missing blob ${q.digest}: named by ${q.from}`;
    case 'dangling':
      return `dangling image ${q.ref ?? q.digest}: ${q.reason}`;
    case 'index':
      return `broken index.json: ${q.reason}`;
  }
};

const hashFile = async (path: string, digest: Digest): Promise<Digest> => {
  const hasher = new DigestingStream(algorithmOf(digest));
  hasher.resume();
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hasher);
  return hasher.digest();
};

/** Runs `f` over `items`, `n` at a time. */
const eachLimited = async <A>(items: readonly A[], n: number, f: (a: A) => Promise<void>): Promise<void> => {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await f(items[next++]!);
  }));
};

const entryLabel = (d: Descriptor): string | undefined => refNameOf(d);

/**
 * Holds the gc lock for `task`. On a full disk no process can write a lock holder (gc neither),
 * so a check that repairs nothing runs without it rather than fail (docs/reliability.md).
 */
const underGcLock =
  (p: StorePaths, repair: boolean) =>
  <A>(task: TE.TaskEither<Failure, A>): TE.TaskEither<Failure, A> =>
  async () => {
    const r = await withLock(p.lock('gc'), 10 * 60_000)(task)();
    return E.isLeft(r) && r.left._tag === 'NoSpace' && !repair && r.left.message.startsWith('lock ') ? task() : r;
  };

export const fsck = (p: StorePaths, options: { repair?: boolean } = {}): TE.TaskEither<Failure, FsckReport> =>
  underGcLock(p, options.repair === true)(async () => {
    try {
      const problems: Problem[] = [];
      const index = await readIndex(p)();
      const entries = E.isRight(index) ? index.right.manifests : [];
      if (E.isLeft(index)) problems.push({ kind: 'index', reason: index.left.message });

      const { blobs, strays } = await listBlobs(p);
      for (const path of strays) problems.push({ kind: 'stray', path });
      const corrupt = new Set<Digest>();
      await eachLimited(blobs, 4, async (b) => {
        const actual = await hashFile(b.path, b.digest).catch(() => undefined);
        if (actual === undefined) return; // removed meanwhile
        if (actual !== b.digest) {
          corrupt.add(b.digest);
          problems.push({ kind: 'corrupt', digest: b.digest, actual });
        }
      });
      const present = new Set(blobs.map((b) => b.digest).filter((d) => !corrupt.has(d)));

      const dangling: Descriptor[] = [];
      const missingSeen = new Set<Digest>();
      for (const entry of entries) {
        const reach = await walk(p.blob, [{ digest: entry.digest, mediaType: entry.mediaType, from: 'index.json' }], async (d) => present.has(d));
        for (const [digest, from] of reach.missing) {
          if (corrupt.has(digest) || missingSeen.has(digest)) continue;
          missingSeen.add(digest);
          problems.push({ kind: 'missing', digest, from: from === 'index.json' ? 'index.json' : `manifest ${from}` });
        }
        const firstMissing = [...reach.missing.keys()][0];
        const firstInvalid = [...reach.invalid.entries()][0];
        if (firstMissing !== undefined || firstInvalid !== undefined) {
          dangling.push(entry);
          const ref = entryLabel(entry);
          const reason =
            firstMissing !== undefined
              ? `blob ${firstMissing} is ${corrupt.has(firstMissing) ? 'corrupt' : 'missing'}`
              : `manifest ${firstInvalid![0]}: ${firstInvalid![1]}`;
          problems.push({ kind: 'dangling', digest: entry.digest, ...(ref !== undefined ? { ref } : {}), reason });
        }
      }

      const stale = (await listTemps(p)).filter((t) => !pidAlive(t.pid));
      if (options.repair === true) {
        for (const d of corrupt) await fs.unlink(p.blob(d)).catch(() => undefined);
        for (const path of strays) await fs.rm(path, { recursive: true, force: true });
        if (E.isLeft(index)) {
          await fs.rename(p.index, `${p.index}.broken-${new Date().toISOString().replace(/[:.]/g, '-')}`).catch(() => undefined);
        } else if (dangling.length > 0) {
          const gone = new Set(dangling.map((d) => `${d.digest} ${refNameOf(d) ?? ''}`));
          const dropped = await updateIndex(p, (ms) => E.right({ manifests: ms.filter((d) => !gone.has(`${d.digest} ${refNameOf(d) ?? ''}`)), result: undefined }))();
          if (E.isLeft(dropped)) return dropped;
        }
        for (const t of stale) if (t.aside === undefined) await fs.unlink(t.path).catch(() => undefined);
      }
      return E.right({ blobs: blobs.length, images: entries.length, problems, staleTemps: stale.length, repaired: options.repair === true });
    } catch (e) {
      return E.left(fromError(`fsck ${p.root}`)(e));
    }
  });
