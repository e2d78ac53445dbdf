// Collect: gc for snapshots (docs/snapshots.md, "Garbage collection"). A snapshot is kept when
//  - its chain ID is one of the chain IDs of an image config gc's walk reached (index.json,
//    roots/, containers/*/image, registered root sources, live leases: a pull or build in flight
//    leases the configs it relies on);
//  - a container stacks it (containers/<id>/snapshots, one chain ID per line);
//  - its layer blob is named by a live lease (a pull --unpack before its config is named);
//  - it was made in the last ten minutes (an unpack or build in flight whose image has no
//    config yet).
// The store's gc calls this while holding the gc lock, after it has collected blobs.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import type { StorePaths } from '../store/layout.js';
import { chainIds } from './chain-id.js';
import { listSnapshots, removeStaleTemps, setSnapshotAside, settleAside, snapshotHome } from './snapshot.js';

/**
 * A snapshot younger than this is kept whatever names it: an operation in flight may need it.
 * TSD_SNAPSHOT_GRACE_MS changes it (the concurrency suite sets 0, so only roots and leases keep).
 */
const graceMs = (): number => {
  const v = Number(process.env.TSD_SNAPSHOT_GRACE_MS);
  return process.env.TSD_SNAPSHOT_GRACE_MS !== undefined && Number.isFinite(v) && v >= 0 ? v : 10 * 60_000;
};

const diffIdsOf = async (path: string): Promise<readonly Digest[] | undefined> => {
  try {
    const fh = await fs.open(path, 'r');
    let bytes: Buffer;
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size > MAX_MANIFEST_SIZE || st.size < 2) return undefined;
      const first = Buffer.alloc(1);
      await fh.read(first, 0, 1, 0);
      if (first[0] !== 0x7b) return undefined; // not '{': not JSON, so not a config (layers stop here)
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
    const ids = (JSON.parse(bytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids;
    return Array.isArray(ids) && ids.every(isDigest) ? ids : undefined;
  } catch {
    return undefined;
  }
};

/** The chain IDs containers stack, from every containers/<id>/snapshots. */
const containerChainIds = async (p: StorePaths): Promise<Set<string>> => {
  const out = new Set<string>();
  const ids = await fs.readdir(p.containers).catch(() => [] as string[]);
  for (const id of ids) {
    const text = await fs.readFile(join(p.containers, id, 'snapshots'), 'utf8').catch(() => '');
    for (const w of text.split(/\s+/)) if (isDigest(w)) out.add(w);
  }
  return out;
};

export interface CollectOptions {
  readonly dryRun?: boolean;
  /** for tests: the time to judge a snapshot's age against */
  readonly now?: number;
}

/** What gc's walk reached from every root and lease (configs among them), and the live leases. */
export interface SnapshotRoots {
  readonly reached: ReadonlySet<string>;
  readonly leased: ReadonlySet<string>;
}

/** The chain IDs the roots keep, and the layer blobs live leases name. */
const keptBy = async (p: StorePaths, roots: () => Promise<E.Either<Failure, SnapshotRoots>>): Promise<E.Either<Failure, { keep: Set<string>; leased: ReadonlySet<string> }>> => {
  const fresh = await roots();
  if (E.isLeft(fresh)) return fresh;
  const { reached, leased } = fresh.right;
  const keep = await containerChainIds(p);
  for (const d of reached) {
    if (!isDigest(d)) continue;
    const ids = await diffIdsOf(p.blob(d));
    if (ids) for (const c of chainIds(ids)) keep.add(c);
  }
  return E.right({ keep, leased });
};

/**
 * Removes every snapshot nothing keeps. The snapshots are listed first and the roots read after
 * (`roots()`: a fresh walk): an operation that made or found a snapshot before the listing has
 * leased its layer, tagged its image or recorded its container by the time the roots are read.
 * An operation that finds one later (a tsd-run of an image no name keeps) is covered by the
 * second read: the unkept snapshots are set aside first, the roots read again, and what that read
 * keeps is put back (snapshot.ts, setSnapshotAside).
 * Returns the chain IDs removed (or that would be, with dryRun).
 */
export const collectSnapshots = async (
  p: StorePaths,
  roots: () => Promise<E.Either<Failure, SnapshotRoots>>,
  options: CollectOptions = {},
): Promise<E.Either<Failure, readonly Digest[]>> => {
  // first what killed processes left: a dead gc's snapshots set aside go back, to be decided here
  if (options.dryRun !== true) await removeStaleTemps(p);
  const listed = await listSnapshots(p)();
  if (E.isLeft(listed)) return listed;
  if (listed.right.length === 0) return E.right([]);
  const first = await keptBy(p, roots);
  if (E.isLeft(first)) return first;
  const kept = (k: { keep: Set<string>; leased: ReadonlySet<string> }, s: (typeof listed.right)[number]) => k.keep.has(s.chainId) || (s.layer !== undefined && k.leased.has(s.layer.digest));
  const now = options.now ?? Date.now();
  const candidates: (typeof listed.right)[number][] = [];
  for (const s of listed.right) {
    if (kept(first.right, s)) continue;
    const st = await fs.stat(snapshotHome(p, s.chainId)).catch(() => undefined);
    if (st === undefined) continue; // removed meanwhile
    if (now - st.mtimeMs < graceMs()) continue; // mtime: when its last entry (snapshot.json) was written
    candidates.push(s);
  }
  if (options.dryRun === true) return E.right(candidates.map((s) => s.chainId));
  const aside: { s: (typeof listed.right)[number]; path: string }[] = [];
  for (const s of candidates) {
    const r = await setSnapshotAside(p, s.chainId)();
    if (E.isLeft(r)) return r;
    if (r.right !== undefined) aside.push({ s, path: r.right });
  }
  const second = aside.length > 0 ? await keptBy(p, roots) : first;
  const removed: Digest[] = [];
  for (const { s, path } of aside) {
    // a failed second read keeps everything: removing on a guess is what this step exists to avoid
    const keep = E.isLeft(second) || kept(second.right, s);
    const r = await settleAside(p, path, s.chainId, keep)();
    if (E.isLeft(r)) return r;
    if (!keep) removed.push(s.chainId);
  }
  if (E.isLeft(second)) return second;
  return E.right(removed);
};
