// Lease: the blobs a live process has written or is about to rely on but that no tag reaches yet
// (a pull or build before it tags). gc keeps every blob a live lease names. A process's lease is
// one append-only file, leases/PID-START, that dies with the process: it removes the file when it
// exits, and gc ignores and removes the leases of processes that died without doing so.
//
// The order that makes gc safe: a writer records a digest in its lease *before* it checks
// whether the blob exists; gc moves a blob aside *before* it reads the leases a second time and
// puts back what a lease now names. Either gc sees the lease, or the writer sees the blob missing.
import { appendFileSync, mkdirSync, promises as fs, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { isForeignLayer } from '../oci/media-type.js';
import { hasBlob, hasBlobSync } from './blob.js';
import type { ResolvedImage } from './image.js';
import { currentProcess, isAlive } from './lock.js';
import type { StorePaths } from './layout.js';

const leased = new Map<string, Set<string>>();
let exitHooked = false;

/** A lease of a dead process keeps nothing: it goes when the process exits, not at the next gc. */
const endLeasesAtExit = (): void => {
  const { pid, start } = currentProcess();
  for (const dir of leased.keys()) {
    try {
      unlinkSync(join(dir, `${pid}-${start}`));
    } catch {}
  }
};

/** Records that this process needs `digest` (synchronously: it must land before the next step). */
export const leaseBlob = (p: StorePaths, digest: Digest): void => leaseBlobs(p, [digest]);

/** leaseBlob of several digests in one append (one open of the lease file, not one per digest). */
export const leaseBlobs = (p: StorePaths, digests: readonly Digest[]): void => {
  let mine = leased.get(p.leases);
  if (mine === undefined) {
    if (!exitHooked) process.once('exit', endLeasesAtExit);
    exitHooked = true;
    mine = new Set();
    leased.set(p.leases, mine);
  }
  const fresh = [...new Set(digests)].filter((d) => !mine.has(d));
  if (fresh.length === 0) return;
  const { pid, start } = currentProcess();
  const file = join(p.leases, `${pid}-${start}`);
  const text = fresh.map((d) => `${d}\n`).join('');
  try {
    appendFileSync(file, text);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(p.leases, { recursive: true });
    appendFileSync(file, text);
  }
  for (const d of fresh) mine.add(d);
};

/** Every digest named by the lease of a live process; leases of dead processes are removed. */
export const liveLeases = async (p: StorePaths): Promise<Set<string>> => {
  const out = new Set<string>();
  const names = await fs.readdir(p.leases).catch(() => [] as string[]);
  for (const name of names) {
    const [pid, start] = name.split('-');
    const file = join(p.leases, name);
    if (!isAlive({ pid: Number(pid), start: start ?? '' })) {
      await fs.unlink(file).catch(() => undefined);
      continue;
    }
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line) out.add(line);
  }
  return out;
};

/**
 * Leases every blob of an image this process is about to build on (a base, a COPY --from
 * source), then checks they are all still there: after this, a concurrent `rm` and gc of its
 * name cannot take them away. False when some were gone already (a gc won the race).
 */
export const holdImage = async (p: StorePaths, img: ResolvedImage): Promise<boolean> => {
  const digests = imageBlobs(img);
  leaseBlobs(p, digests);
  return (await Promise.all(digests.map((d) => hasBlob(p, d)))).every(Boolean);
};

/** The blobs holdImage leases: the entry, the manifest, the config and the (non-foreign) layers. */
const imageBlobs = (img: ResolvedImage): Digest[] => {
  const layers = img.manifest.layers.filter((l) => !isForeignLayer(l.mediaType)).map((l) => l.digest);
  return [...new Set([img.entry.digest, img.manifestDescriptor.digest, img.configDigest, ...layers])];
};

/**
 * holdImage in synchronous calls (tsd-run's foreground start, which has nothing to overlap them
 * with): true once all are leased and present; false when some blob is not a file in blobs/
 * right now, and then holdImage (which waits out a gc's aside) has the last word.
 */
export const holdImageSync = (p: StorePaths, img: ResolvedImage): boolean => {
  const digests = imageBlobs(img);
  leaseBlobs(p, digests);
  return digests.every((d) => hasBlobSync(p, d));
};

/**
 * Ends this process's lease: what it leased is now kept by a root of its own (a container's
 * containers/<id>/image) or no longer needed. Later leaseBlob calls start a new one.
 */
export const releaseLeases = async (p: StorePaths): Promise<void> => {
  leased.delete(p.leases);
  const { pid, start } = currentProcess();
  // one small unlink, cheaper synchronous than a thread-pool round trip (and a run's start then
  // never loads fs.promises: bench/run)
  try {
    unlinkSync(join(p.leases, `${pid}-${start}`));
  } catch {
    /* no lease file: nothing was leased */
  }
};
