// Gc: removes every blob that no root reaches and no live lease names, and the temp files that
// dead processes left in ingest/. Safe while other tools run, by the protocol of lease.ts:
//   1. read the leases, then index.json and the other roots, and walk them (reading the leases
//      first means a writer that tags and exits in between is seen one way or the other);
//   2. move each unreached blob aside (into ingest/, so its final name is gone);
//   3. read the leases, index.json and the roots again and walk them, finding blobs where they
//      lie now (a new tag may name a manifest that was just moved aside);
//   4. put back what step 3 reaches or a lease names, delete the rest.
// A writer records its lease before it checks whether a blob exists: either gc sees the lease
// in step 3, or the writer sees the blob missing and writes it again. A gc killed between 2 and
// 4 leaves its aside files under its pid: the next gc puts them back before it starts.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { collectSnapshots } from '../snapshot/collect.js';
import { newTempPath } from './blob.js';
import { refNameOf, removeEntries } from './image.js';
import type { StorePaths } from './layout.js';
import { liveLeases } from './lease.js';
import { isAlive, pidAlive, withLock } from './lock.js';
import { extraRoots, indexRoots, walk, type Reach } from './roots.js';

export interface StoredBlob {
  readonly digest: Digest;
  readonly path: string;
  readonly size: number;
}

/** Every file under blobs/ALG/; names that are not a digest are returned apart. */
export const listBlobs = async (p: StorePaths): Promise<{ blobs: StoredBlob[]; strays: string[] }> => {
  const blobs: StoredBlob[] = [];
  const strays: string[] = [];
  const algorithms = await fs.readdir(p.blobs).catch(() => [] as string[]);
  for (const alg of algorithms) {
    const dir = join(p.blobs, alg);
    const names = await fs.readdir(dir).catch(() => undefined);
    if (names === undefined) {
      strays.push(dir);
      continue;
    }
    for (const name of names) {
      const path = join(dir, name);
      const digest = `${alg}:${name}`;
      const st = await fs.lstat(path).catch(() => undefined);
      if (st === undefined) continue; // removed meanwhile
      if (!isDigest(digest) || !st.isFile()) strays.push(path);
      else blobs.push({ digest, path, size: st.size });
    }
  }
  return { blobs, strays };
};

export { pidAlive };

export interface TempFile {
  readonly path: string;
  readonly pid: number;
  readonly size: number;
  /** for a blob gc moved aside: the digest it had */
  readonly aside?: Digest;
}

const ASIDE = /\.aside-(sha256|sha512)-([a-f0-9]+)$/;
/** A pull's partial download (src/pull/fetch.ts): named by the blob, owned by its blob lock's holder. */
const PARTIAL = /^(sha256|sha512)-([a-f0-9]+)\.partial$/;

/**
 * The pid that owns a partial: the live holder of `locks/blob-HEX.lock`, else 0 (a dead pull's
 * partial: reclaimable, and a later pull of the blob starts over). A lock file being written
 * counts as held by a live process (this one's pid stands for it).
 */
const partialOwner = async (p: StorePaths, hex: string): Promise<number> => {
  const text = await fs.readFile(p.lock(`blob-${hex}`), 'utf8').catch(() => undefined);
  if (text === undefined) return 0;
  try {
    const h = JSON.parse(text) as { pid?: unknown; start?: unknown };
    return typeof h.pid === 'number' && typeof h.start === 'string' && isAlive({ pid: h.pid, start: h.start }) ? h.pid : 0;
  } catch {
    return process.pid;
  }
};

/** Files in ingest/: temp blobs being written, index rewrites, blobs a gc moved aside. */
export const listTemps = async (p: StorePaths): Promise<TempFile[]> => {
  const names = await fs.readdir(p.ingest).catch(() => [] as string[]);
  const out: TempFile[] = [];
  for (const name of names) {
    const path = join(p.ingest, name);
    const st = await fs.lstat(path).catch(() => undefined);
    if (st === undefined) continue;
    const partial = PARTIAL.exec(name);
    // a partial's name holds no pid: whoever holds its blob lock owns it (gc once deleted live ones)
    const pid = partial ? await partialOwner(p, partial[2]!) : Number(name.split('-')[0]);
    const m = ASIDE.exec(name);
    const digest = m ? `${m[1]}:${m[2]}` : undefined;
    out.push({ path, pid, size: st.size, ...(digest !== undefined && isDigest(digest) ? { aside: digest } : {}) });
  }
  return out;
};

export interface GcReport {
  readonly removed: readonly { digest: Digest; size: number }[];
  readonly tempsRemoved: number;
  /** bytes freed by removed blobs and temp files */
  readonly reclaimed: number;
  /** chain IDs of the unpacked layers (snapshots) removed: see src/snapshot/collect.ts */
  readonly snapshotsRemoved: readonly Digest[];
}

export interface GcOptions {
  /** report what would be removed, change nothing */
  readonly dryRun?: boolean;
}

const exists = (path: string): Promise<boolean> => fs.stat(path).then((s) => s.isFile(), () => false);

/** The roots and their walk, with blobs found at `locate(d)`. */
export const reachFromRoots = async (
  p: StorePaths,
  locate: (d: Digest) => string = p.blob,
): Promise<E.Either<Failure, Reach & { leased: Set<string> }>> => {
  const leased = await liveLeases(p);
  const index = await indexRoots(p);
  if (E.isLeft(index)) return E.left(failure('CorruptIndex', `${index.left.message}; gc refuses to guess what is in use`, ExitCode.tool));
  const extra = await extraRoots(p);
  const roots = [
    ...index.right.map((d) => ({ digest: d.digest, mediaType: d.mediaType, from: 'index.json' as const })),
    ...[...extra].map((digest) => ({ digest, from: 'root' as const })),
    ...[...leased].filter(isDigest).map((digest) => ({ digest, from: 'root' as const })),
  ];
  const reach = await walk(locate, roots, (d) => exists(locate(d)));
  return E.right({ ...reach, leased });
};

/** Puts back the blobs a gc killed half-way left aside; drops the other temps of dead processes. */
const recoverDead = async (p: StorePaths, dryRun: boolean): Promise<{ count: number; bytes: number }> => {
  let count = 0;
  let bytes = 0;
  for (const t of await listTemps(p)) {
    if (pidAlive(t.pid)) continue;
    if (t.aside !== undefined) {
      if (!dryRun && !(await exists(p.blob(t.aside)))) {
        await fs.mkdir(join(p.blob(t.aside), '..'), { recursive: true });
        await fs.rename(t.path, p.blob(t.aside)).catch(() => undefined);
        continue;
      }
    }
    count++;
    bytes += t.size;
    if (!dryRun) await fs.unlink(t.path).catch(() => undefined);
  }
  return { count, bytes };
};

export const gc = (p: StorePaths, options: GcOptions = {}): TE.TaskEither<Failure, GcReport> =>
  withLock(p.lock('gc'), 10 * 60_000)(async () => {
    try {
      const dryRun = options.dryRun === true;
      const temps = await recoverDead(p, dryRun);
      const first = await reachFromRoots(p);
      if (E.isLeft(first)) return first;
      const { blobs } = await listBlobs(p);
      const unreached = blobs.filter((b) => !first.right.reached.has(b.digest));
      if (dryRun) {
        const removed = unreached.map((b) => ({ digest: b.digest, size: b.size }));
        const snapshots = await collectSnapshots(p, () => reachFromRoots(p), { dryRun });
        if (E.isLeft(snapshots)) return snapshots;
        return E.right({ removed, tempsRemoved: temps.count, reclaimed: temps.bytes + removed.reduce((n, b) => n + b.size, 0), snapshotsRemoved: snapshots.right });
      }
      await fs.mkdir(p.ingest, { recursive: true });
      const aside = new Map<Digest, StoredBlob & { aside: string }>();
      for (const b of unreached) {
        const to = newTempPath(p, `aside-${b.digest.replace(':', '-')}`);
        try {
          await fs.rename(b.path, to);
          aside.set(b.digest, { ...b, aside: to });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      const locate = (d: Digest): string => aside.get(d)?.aside ?? p.blob(d);
      const second = await reachFromRoots(p, locate);
      if (E.isLeft(second)) {
        // cannot tell what is needed now: put everything back
        for (const b of aside.values()) await putBack(b);
        return second;
      }
      const removed: { digest: Digest; size: number }[] = [];
      for (const b of aside.values()) {
        if (second.right.reached.has(b.digest) || second.right.leased.has(b.digest)) await putBack(b);
        else {
          await fs.unlink(b.aside).catch(() => undefined);
          removed.push({ digest: b.digest, size: b.size });
        }
      }
      // snapshots last, from the same roots read once more after they are listed (collect.ts)
      const snapshots = await collectSnapshots(p, () => reachFromRoots(p));
      if (E.isLeft(snapshots)) return snapshots;
      return E.right({ removed, tempsRemoved: temps.count, reclaimed: temps.bytes + removed.reduce((n, b) => n + b.size, 0), snapshotsRemoved: snapshots.right });
    } catch (e) {
      return E.left(fromError(`gc ${p.root}`)(e));
    }
  });

const putBack = async (b: StoredBlob & { aside: string }): Promise<void> => {
  // a writer may have written the blob again meanwhile: its copy is as good as ours
  if (await exists(b.path)) await fs.unlink(b.aside).catch(() => undefined);
  else await fs.rename(b.aside, b.path);
};

/** Docker's `image prune`: forget every image without a name, then gc. */
export const prune = (p: StorePaths, options: GcOptions = {}): TE.TaskEither<Failure, GcReport & { untagged: number }> => async () => {
  let untagged = 0;
  if (options.dryRun !== true) {
    const dropped = await removeEntries(p, (d) => refNameOf(d) === undefined)();
    if (E.isLeft(dropped)) return dropped;
    untagged = dropped.right.length;
  }
  const report = await gc(p, options)();
  return E.map((r: GcReport) => ({ ...r, untagged }))(report);
};
