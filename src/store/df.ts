// Df: the space the store uses, by kind (Docker's `system df`), and how much gc would reclaim.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { fromError, type Failure } from '../failure.js';
import { listBlobs, listTemps, pidAlive, reachFromRoots } from './gc.js';
import type { StorePaths } from './layout.js';

export interface SpaceRow {
  /** Images (count: blobs), Unpacked layers, Containers, Volumes, Build cache, Temp files */
  readonly type: string;
  readonly count: number;
  readonly size: number;
  /** bytes gc would free; undefined where the owning module decides */
  readonly reclaimable?: number;
}

/** Bytes and entries under a directory (files counted once per inode; symlinks not followed). */
const usage = async (dir: string): Promise<{ size: number; entries: number }> => {
  const seen = new Set<string>();
  let size = 0;
  const top = await fs.readdir(dir).catch(() => [] as string[]);
  const stack = top.map((n) => join(dir, n));
  while (stack.length > 0) {
    const path = stack.pop()!;
    const st = await fs.lstat(path).catch(() => undefined);
    if (st === undefined) continue;
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    size += st.blocks !== undefined ? Math.min(st.size, st.blocks * 512) || st.size : st.size;
    if (st.isDirectory()) for (const n of await fs.readdir(path).catch(() => [] as string[])) stack.push(join(path, n));
  }
  return { size, entries: top.length };
};

export const diskUsage = (p: StorePaths): TE.TaskEither<Failure, readonly SpaceRow[]> => async () => {
  try {
    const reach = await reachFromRoots(p);
    if (E.isLeft(reach)) return reach;
    const { blobs } = await listBlobs(p);
    const imagesSize = blobs.reduce((n, b) => n + b.size, 0);
    const unreached = blobs.filter((b) => !reach.right.reached.has(b.digest) && !reach.right.leased.has(b.digest));
    const temps = await listTemps(p);
    const stale = temps.filter((t) => !pidAlive(t.pid));
    const [snapshots, containers, volumes, cache] = await Promise.all([p.snapshots, p.containers, p.volumes, p.cache].map(usage));
    const rows: SpaceRow[] = [
      { type: 'Images', count: blobs.length, size: imagesSize, reclaimable: unreached.reduce((n, b) => n + b.size, 0) },
      { type: 'Unpacked layers', count: snapshots!.entries, size: snapshots!.size },
      { type: 'Containers', count: containers!.entries, size: containers!.size },
      { type: 'Local volumes', count: volumes!.entries, size: volumes!.size },
      { type: 'Build cache', count: cache!.entries, size: cache!.size },
      { type: 'Temp files', count: temps.length, size: temps.reduce((n, t) => n + t.size, 0), reclaimable: stale.reduce((n, t) => n + t.size, 0) },
    ];
    return E.right(rows);
  } catch (e) {
    return E.left(fromError(`df ${p.root}`)(e));
  }
};
