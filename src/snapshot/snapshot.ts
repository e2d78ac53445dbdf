// Snapshot: one layer unpacked into $ROOT/snapshots/<chain ID hex>/fs, in the form overlayfs
// takes as a lowerdir, shared by every container and build whose image has that stack of layers.
// A snapshot is made once: under a lock per chain ID, into a private temp dir beside the final
// one, with the blob's digest and the tar's diff ID checked while it streams, and renamed into
// place only when complete. A dir named by a chain ID is therefore always whole.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { execa } from 'execa';
import { ExitCode, failure, fromError, isFailure, type Failure } from '../failure.js';
import { hexOf, isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { layerCompression } from '../oci/media-type.js';
import { hasBlob, openBlob } from '../store/blob.js';
import type { ResolvedImage } from '../store/image.js';
import type { StorePaths } from '../store/layout.js';
import { currentProcess, isAlive, withLock } from '../store/lock.js';
import { chainIds } from './chain-id.js';
import { decompressor, isDecoderError, sniffCompression } from './decompress.js';
import { extractLayer, HostileEntry, type ExtractReport } from './extract.js';
import { createRootFs, UnsafePath } from './rootfs-fs.js';
import { fsyncPath } from '../store/durable.js';

export interface UnpackOptions {
  /** flush the snapshot to disk (syncfs) before it gets its final name; default true */
  readonly sync?: boolean;
  /** how long to wait for another process unpacking the same layer; default 30 minutes */
  readonly lockTimeoutMs?: number;
}

export interface Snapshot {
  readonly chainId: Digest;
  /** the directory to use as an overlay lowerdir */
  readonly dir: string;
  /** true when this call unpacked it, false when it was there already */
  readonly created: boolean;
  readonly report?: ExtractReport;
}

/** What snapshot.json beside fs/ records. */
export interface SnapshotInfo {
  readonly chainId: Digest;
  readonly dir: string;
  readonly diffId?: Digest;
  readonly layer?: Descriptor;
  readonly tarSize?: number;
  readonly entries?: number;
}

const UNPACK_PREFIX = '.unpack-';
const REMOVE_PREFIX = '.remove-';
/** gc's first step of a removal: `.aside-<pid>-<start>-<chain hex>`, put back when still needed */
const ASIDE_PREFIX = '.aside-';
const HEX64 = /^[a-f0-9]{64}$/;

export const snapshotHome = (p: StorePaths, chainId: Digest): string => join(p.snapshots, hexOf(chainId));
/** The lowerdir of the snapshot of `chainId` (it exists once ensureSnapshots or unpackLayer said so). */
export const snapshotDir = (p: StorePaths, chainId: Digest): string => join(snapshotHome(p, chainId), 'fs');
/** An empty lowerdir, for images without layers (overlay needs at least one). */
export const emptySnapshotDir = (p: StorePaths): string => join(p.snapshots, 'empty', 'fs');
export const snapshotLock = (p: StorePaths, chainId: Digest): string => p.lock(`snapshot-${hexOf(chainId)}`);

export const exists = (path: string): Promise<boolean> => fs.stat(path).then(() => true, () => false);


/** One line naming the layer for whatever went wrong while unpacking it. */
export const unpackFailure = (layer: Descriptor) => (e: unknown): Failure => {
  const what = `unpack layer ${layer.digest}`;
  if (isFailure(e)) return e;
  const full = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
  // a hostile name can be a megabyte long (a PAX path): the message keeps its ends
  const text = full.length > 400 ? `${full.slice(0, 240)}…(${full.length} characters)…${full.slice(-80)}` : full;
  if (e instanceof HostileEntry || e instanceof UnsafePath) return failure('HostileLayer', `${what}: ${text}`, ExitCode.user);
  if (isDecoderError(e) || /Unexpected end of data|Invalid tar header|Invalid header|Header exceeds max size/i.test(text)) {
    return failure('CorruptLayer', `${what}: corrupt or truncated layer (${(e as { shortMessage?: string }).shortMessage?.split('\n')[0] ?? text})`, ExitCode.user);
  }
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return failure('NoSpace', `${what}: no space left on device (the layer unpacks to more than the free disk)`, ExitCode.tool);
  }
  if (code === 'ENAMETOOLONG' || code === 'ENOTDIR' || code === 'EEXIST' || code === 'ELOOP' || code === 'EXATTR') {
    return failure('HostileLayer', `${what}: ${text}`, ExitCode.user);
  }
  return fromError(what)(e);
};

const syncing = new Map<string, { running: Promise<void>; queued?: Promise<void> }>();

/**
 * syncfs(2) of the file system holding `dir` (through `sync -f`: Node has no syncfs), shared by
 * concurrent callers: one that comes while a sync runs waits for the next one, which starts when
 * that ends and so covers everything written before it was asked for. Ten layers of a pull that
 * finish together cost two syncs, not ten (each also flushes whatever else is dirty on the disk).
 */
const syncFileSystem = (dir: string): Promise<void> => {
  const now = syncing.get(dir);
  if (now === undefined) {
    const running = execa('sync', ['-f', dir]).then(() => undefined);
    syncing.set(dir, { running });
    const clear = () => {
      const s = syncing.get(dir);
      if (s?.running === running && s.queued === undefined) syncing.delete(dir);
    };
    running.then(clear, clear);
    return running;
  }
  now.queued ??= now.running.catch(() => undefined).then(() => {
    syncing.delete(dir);
    return syncFileSystem(dir);
  });
  return now.queued;
};

/** A new private dir beside the snapshots with an empty fs/ in it, named after this process. */
export const makeUnpackDir = async (p: StorePaths): Promise<string> => {
  const { pid, start } = currentProcess();
  const tmp = join(p.snapshots, `${UNPACK_PREFIX}${pid}-${start}-${randomBytes(6).toString('hex')}`);
  await fs.mkdir(p.snapshots, { recursive: true });
  await fs.mkdir(tmp, { mode: 0o700 });
  try {
    await fs.mkdir(join(tmp, 'fs'), { mode: 0o755 });
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return tmp;
};

/**
 * Checks the unpacked tar against the config's diff ID, writes snapshot.json, flushes the dir
 * (syncfs, unless `sync: false`) and renames it to its final name. Throws a Failure on a mismatch.
 */
export const sealSnapshot = async (
  p: StorePaths,
  tmp: string,
  layer: Descriptor,
  diffId: Digest,
  chainId: Digest,
  report: ExtractReport,
  options: UnpackOptions,
): Promise<void> => {
  checkDiffId(layer, diffId, report);
  const info = { chainId, diffId, layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, tarSize: report.tarSize, entries: report.entries, skippedDevices: report.skippedDevices, lostXattrs: report.lostXattrs };
  await fs.writeFile(join(tmp, 'snapshot.json'), JSON.stringify(info) + '\n');
  if (options.sync !== false) await syncFileSystem(p.snapshots);
  await fs.rename(tmp, snapshotHome(p, chainId));
  await fsyncPath(p.snapshots);
};

/** Throws DiffIdMismatch unless the tar hashed to the diff ID the image config names. */
export const checkDiffId = (layer: Descriptor, diffId: Digest, report: ExtractReport): void => {
  if (report.diffId !== diffId) {
    throw failure('DiffIdMismatch', `unpack layer ${layer.digest}: its tar hashes to ${report.diffId}, but the image config says ${diffId}`, ExitCode.user);
  }
};

/**
 * Unpacks one layer into the snapshot of `chainId`, unless it is there already. Two processes
 * asking for the same snapshot at once do the work once: the second waits on the lock and finds it.
 */
export const unpackLayer = (p: StorePaths, layer: Descriptor, diffId: Digest, chainId: Digest, options: UnpackOptions = {}): TE.TaskEither<Failure, Snapshot> => {
  const dir = snapshotDir(p, chainId);
  const found: Snapshot = { chainId, dir, created: false };
  const work: TE.TaskEither<Failure, Snapshot> = async () => {
    if (await exists(dir)) return E.right(found);
    if (layerCompression(layer.mediaType) === undefined) {
      return E.left(failure('NotALayer', `layer ${layer.digest}: media type ${layer.mediaType} is not a layer tar`, ExitCode.tool));
    }
    if (!(await hasBlob(p, layer.digest))) {
      return E.left(failure('BlobNotFound', `layer ${layer.digest}: blob not in the store`, ExitCode.notFound));
    }
    let tmp: string | undefined;
    try {
      tmp = await makeUnpackDir(p);
      const compression = await sniffCompression(p.blob(layer.digest));
      const report = await extractLayer(openBlob(p, layer.digest), createRootFs(join(tmp, 'fs')), decompressor(compression));
      await sealSnapshot(p, tmp, layer, diffId, chainId, report, options);
      return E.right({ chainId, dir, created: true, report });
    } catch (e) {
      if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      return E.left(unpackFailure(layer)(e));
    }
  };
  return async () => ((await exists(dir)) ? E.right(found) : withLock(snapshotLock(p, chainId), options.lockTimeoutMs ?? 30 * 60_000)(work)());
};

/** Makes the empty lowerdir of layerless images. */
export const ensureEmptySnapshot = (p: StorePaths): TE.TaskEither<Failure, string> =>
  TE.tryCatch(async () => {
    const dir = emptySnapshotDir(p);
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  }, fromError('make the empty snapshot'));

/** Removes what killed processes left: temp dirs of unpacks and removals that never finished. */
export const removeStaleTemps = async (p: StorePaths): Promise<number> => {
  const names = await fs.readdir(p.snapshots).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    let stale = false;
    if (name.startsWith(UNPACK_PREFIX)) {
      const [pid, start] = name.slice(UNPACK_PREFIX.length).split('-');
      stale = !isAlive({ pid: Number(pid), start: start ?? '' });
    } else if (name.startsWith(REMOVE_PREFIX)) {
      const [pid, start] = name.slice(REMOVE_PREFIX.length).split('-');
      stale = !isAlive({ pid: Number(pid), start: start ?? '' });
    } else if (name.startsWith(ASIDE_PREFIX)) {
      // a gc killed between setting a snapshot aside and deciding: put it back (the next gc decides)
      const [pid, start, hex] = name.slice(ASIDE_PREFIX.length).split('-');
      if (!isAlive({ pid: Number(pid), start: start ?? '' }) && hex !== undefined && HEX64.test(hex)) {
        await settleAside(p, join(p.snapshots, name), `sha256:${hex}` as Digest, true)();
      }
      continue;
    }
    if (stale) {
      await fs.rm(join(p.snapshots, name), { recursive: true, force: true }).catch(() => undefined);
      removed++;
    }
  }
  return removed;
};

/**
 * Makes sure every layer of `image` is unpacked; returns their lowerdirs, lowest layer first
 * (an image without layers gets the empty snapshot). When all exist it costs one stat each.
 */
export const ensureSnapshots = (p: StorePaths, image: ResolvedImage, options: UnpackOptions = {}): TE.TaskEither<Failure, readonly string[]> => async () => {
  const diffIds = image.config.rootfs.diff_ids;
  const layers = image.manifest.layers;
  if (diffIds.length !== layers.length) {
    return E.left(failure('InvalidImage', `image ${image.ref ?? image.configDigest}: manifest has ${layers.length} layers but config has ${diffIds.length} diff IDs`, ExitCode.tool));
  }
  if (layers.length === 0) return E.map((d: string) => [d])(await ensureEmptySnapshot(p)());
  const ids = chainIds(diffIds);
  const dirs = ids.map((id) => snapshotDir(p, id));
  if ((await Promise.all(dirs.map(exists))).every(Boolean)) return E.right(dirs);
  await removeStaleTemps(p);
  for (const [i, layer] of layers.entries()) {
    const r = await unpackLayer(p, layer, diffIds[i] as Digest, ids[i] as Digest, options)();
    if (E.isLeft(r)) return r;
  }
  return E.right(dirs);
};

/** Every committed snapshot, for gc (see docs/snapshots.md for what keeps one alive). */
export const listSnapshots = (p: StorePaths): TE.TaskEither<Failure, readonly SnapshotInfo[]> =>
  TE.tryCatch(async () => {
    const names = await fs.readdir(p.snapshots).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    const out: SnapshotInfo[] = [];
    for (const name of names.filter((n) => HEX64.test(n)).sort()) {
      const chainId = `sha256:${name}` as Digest;
      const meta = await fs.readFile(join(p.snapshots, name, 'snapshot.json'), 'utf8').then((t) => JSON.parse(t) as Partial<SnapshotInfo>, () => ({}) as Partial<SnapshotInfo>);
      out.push({
        chainId,
        dir: snapshotDir(p, chainId),
        ...(isDigest(meta.diffId) ? { diffId: meta.diffId } : {}),
        ...(meta.layer ? { layer: meta.layer } : {}),
        ...(typeof meta.tarSize === 'number' ? { tarSize: meta.tarSize } : {}),
        ...(typeof meta.entries === 'number' ? { entries: meta.entries } : {}),
      });
    }
    return out;
  }, fromError(`list snapshots in ${p.snapshots}`));

/**
 * Removes one snapshot (gc calls this for unreachable ones): renamed aside under its lock first,
 * so no reader ever sees half of it. True when it existed.
 */
/**
 * gc's removal, in two steps so that a user who found the snapshot just before can keep it: set it
 * aside (renamed away under its lock; returns where, or undefined when it is gone), then, after gc
 * has read its roots again, `settleAside` puts it back or removes it. A tsd-run or build leases
 * the image's blobs before it checks its snapshots, so either the second read sees that lease or
 * the check saw the snapshot missing and unpacks it again.
 */
export const setSnapshotAside = (p: StorePaths, chainId: Digest): TE.TaskEither<Failure, string | undefined> =>
  withLock(snapshotLock(p, chainId))(
    TE.tryCatch(async () => {
      const home = snapshotHome(p, chainId);
      if (!(await exists(home))) return undefined;
      const { pid, start } = currentProcess();
      const aside = join(p.snapshots, `${ASIDE_PREFIX}${pid}-${start}-${hexOf(chainId)}`);
      await fs.rename(home, aside);
      return aside;
    }, fromError(`set snapshot ${chainId} aside`)),
  );

/** Puts a snapshot set aside back (`keep`; unless an unpack made it anew meanwhile) or removes it. */
export const settleAside = (p: StorePaths, aside: string, chainId: Digest, keep: boolean): TE.TaskEither<Failure, void> =>
  withLock(snapshotLock(p, chainId))(
    TE.tryCatch(async () => {
      const home = snapshotHome(p, chainId);
      if (keep && !(await exists(home))) await fs.rename(aside, home);
      else await fs.rm(aside, { recursive: true, force: true });
    }, fromError(`settle snapshot ${chainId}`)),
  );

export const removeSnapshot = (p: StorePaths, chainId: Digest): TE.TaskEither<Failure, boolean> =>
  withLock(snapshotLock(p, chainId))(
    TE.tryCatch(async () => {
      const home = snapshotHome(p, chainId);
      if (!(await exists(home))) return false;
      const { pid, start } = currentProcess();
      const aside = join(p.snapshots, `${REMOVE_PREFIX}${pid}-${start}-${randomBytes(6).toString('hex')}`);
      await fs.rename(home, aside);
      await fs.rm(aside, { recursive: true, force: true });
      return true;
    }, fromError(`remove snapshot ${chainId}`)),
  );
