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
import { listSnapshots, removeSnapshot, removeStaleTemps, snapshotHome } from './snapshot.js';

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

/**
 * Removes every snapshot nothing keeps. The snapshots are listed first and the roots read after
 * (`roots()`: a fresh walk): an operation that made or found a snapshot before the listing has
 * leased its layer, tagged its image or recorded its container by the time the roots are read.
 * Returns the chain IDs removed (or that would be, with dryRun).
 */
export const collectSnapshots = async (
  p: StorePaths,
  roots: () => Promise<E.Either<Failure, SnapshotRoots>>,
  options: CollectOptions = {},
): Promise<E.Either<Failure, readonly Digest[]>> => {
  const listed = await listSnapshots(p)();
  if (E.isLeft(listed)) return listed;
  if (listed.right.length === 0) return E.right([]);
  const fresh = await roots();
  if (E.isLeft(fresh)) return fresh;
  const { reached, leased } = fresh.right;
  const keep = await containerChainIds(p);
  for (const d of reached) {
    if (!isDigest(d)) continue;
    const ids = await diffIdsOf(p.blob(d));
    if (ids) for (const c of chainIds(ids)) keep.add(c);
  }
  const now = options.now ?? Date.now();
  const removed: Digest[] = [];
  for (const s of listed.right) {
    if (keep.has(s.chainId) || (s.layer !== undefined && leased.has(s.layer.digest))) continue;
    const st = await fs.stat(snapshotHome(p, s.chainId)).catch(() => undefined);
    if (st === undefined) continue; // removed meanwhile
    if (now - st.mtimeMs < graceMs()) continue; // mtime: when its last entry (snapshot.json) was written
    if (options.dryRun !== true) {
      const r = await removeSnapshot(p, s.chainId)();
      if (E.isLeft(r)) return r;
      if (!r.right) continue;
    }
    removed.push(s.chainId);
  }
  if (options.dryRun !== true) await removeStaleTemps(p);
  return E.right(removed);
};
