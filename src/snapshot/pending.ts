// PendingSnapshot: a layer unpacked into its snapshot while its blob is still arriving (tsd-pull
// --unpack tees each download into one), and named only after the caller has verified the blob.
// The bytes go into `input` as they come; the tar is decompressed (by its magic), hashed and
// unpacked into a private temp dir as for unpackLayer. `unpacked` says whether it all went well
// and the tar matches the config's diff ID; the caller then verifies the blob, commits it, and
// calls `commit` (seal, sync, rename), or `abort` to throw the temp dir away. The snapshot's lock
// is held from the start to commit or abort, so no other unpack of the chain ID runs meanwhile.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import type { StorePaths } from '../store/layout.js';
import { acquireLock, releaseLock, type Lock } from '../store/lock.js';
import { SniffingDecompressor } from './decompress.js';
import { extractLayer, type ExtractReport } from './extract.js';
import { createRootFs } from './rootfs-fs.js';
import { checkDiffId, exists, makeUnpackDir, sealSnapshot, snapshotDir, snapshotLock, unpackFailure, type Snapshot, type UnpackOptions } from './snapshot.js';

export interface PendingSnapshot {
  readonly chainId: Digest;
  /** the blob's bytes (compressed, as stored), in order; end() it after the last one */
  readonly input: Writable;
  /** once `input` has ended: the unpack's report (its tar matched the diff ID) or why it failed; never rejects */
  readonly unpacked: Promise<E.Either<Failure, ExtractReport>>;
  /** seals the snapshot (snapshot.json, syncfs unless sync: false) and gives it its final name; releases the lock */
  commit(): Promise<E.Either<Failure, Snapshot>>;
  /** throws the temp dir away and releases the lock; harmless after commit or a second time */
  abort(): Promise<void>;
}

/** Starts unpacking a layer from its bytes as they arrive (the type `PullOptions.unpackStream` takes). */
export type BeginUnpack = (p: StorePaths, layer: Descriptor, diffId: Digest, chainId: Digest) => Promise<PendingSnapshot | undefined>;

/**
 * Starts the snapshot of `chainId` from bytes yet to come. Undefined when there is nothing to do
 * now: the snapshot exists, another process is making it (its lock is held), or the temp dir
 * cannot be made; the caller then unpacks from the committed blob (unpackLayer), which waits for
 * the other process, finds the snapshot, or reports the error.
 */
export const beginUnpack = async (p: StorePaths, layer: Descriptor, diffId: Digest, chainId: Digest, options: UnpackOptions = {}): Promise<PendingSnapshot | undefined> => {
  const dir = snapshotDir(p, chainId);
  if (await exists(dir)) return undefined;
  let lock: Lock;
  try {
    lock = await acquireLock(snapshotLock(p, chainId), 0);
  } catch {
    return undefined;
  }
  let tmp: string;
  try {
    if (await exists(dir)) throw new Error('made meanwhile');
    tmp = await makeUnpackDir(p);
  } catch {
    await releaseLock(lock);
    return undefined;
  }
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  const unpacked: Promise<E.Either<Failure, ExtractReport>> = extractLayer(input, createRootFs(join(tmp, 'fs')), new SniffingDecompressor()).then(
    (report) => {
      try {
        checkDiffId(layer, diffId, report);
        return E.right(report);
      } catch (e) {
        return E.left(unpackFailure(layer)(e));
      }
    },
    (e) => E.left(unpackFailure(layer)(e)),
  );
  let over = false;
  const abort = async (): Promise<void> => {
    if (over) return;
    over = true;
    input.destroy();
    await unpacked;
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    await releaseLock(lock);
  };
  return {
    chainId,
    input,
    unpacked,
    abort,
    commit: async () => {
      const r = await unpacked;
      if (E.isLeft(r)) {
        await abort();
        return r;
      }
      try {
        await sealSnapshot(p, tmp, layer, diffId, chainId, r.right, options);
      } catch (e) {
        await abort();
        return E.left(unpackFailure(layer)(e));
      }
      over = true;
      await releaseLock(lock);
      return E.right({ chainId, dir, created: true, report: r.right });
    },
  };
};
