// BuildCache: what a step that changes files produced, under $ROOT/cache/steps/KEY.json. The key
// is a sha256 over the parent state (its layer diff IDs and config), the expanded instruction, the
// content digests of the files it reads (never mtimes) and the args and mounts it sees; the value
// names the layer blob it wrote (or says it wrote none). An entry is written only after its blob
// is committed, by temp file and rename, so a killed build leaves either a whole entry or none;
// a hit whose blob is gone (gc) is a miss. The blobs entries name are what `cacheRoots` returns,
// for `tsd-store gc` (see docs/build.md, "The cache").
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import type { ImageConfig } from '../oci/config.js';
import { hasBlob } from '../store/blob.js';
import { leaseBlob } from '../store/lease.js';
import type { StorePaths } from '../store/layout.js';

export const CACHE_VERSION = 1;

export interface CachedLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
}

export interface CacheEntry {
  readonly v: typeof CACHE_VERSION;
  readonly key: string;
  /** what the step was, for a person reading the cache */
  readonly step: string;
  /** undefined when the step changed no file */
  readonly layer?: CachedLayer;
  readonly created: string;
}

export const stepsDir = (p: StorePaths): string => join(p.cache, 'steps');
const entryPath = (p: StorePaths, key: string): string => join(stepsDir(p), `${key}.json`);

/** The key of a step: a stable hash over its parts, in order. */
export const cacheKey = (parts: readonly unknown[]): string => {
  const h = createHash('sha256');
  h.update(`tsd-build-cache-v${CACHE_VERSION}\n`);
  for (const part of parts) h.update(`${JSON.stringify(part)}\n`);
  return h.digest('hex');
};

const decodeEntry = (text: string, key: string): CacheEntry | undefined => {
  try {
    const u = JSON.parse(text) as CacheEntry;
    if (u.v !== CACHE_VERSION || u.key !== key) return undefined;
    if (u.layer !== undefined && (!isDigest(u.layer.diffId) || !isDigest(u.layer.descriptor?.digest))) return undefined;
    return u;
  } catch {
    return undefined;
  }
};

/**
 * The entry under `key` whose layer is still in the store, leased for this process (so a
 * concurrent gc keeps it until the image is tagged); undefined on a miss.
 */
export const lookupStep = async (p: StorePaths, key: string): Promise<CacheEntry | undefined> => {
  const text = await fs.readFile(entryPath(p, key), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const entry = decodeEntry(text, key);
  if (!entry) return undefined;
  if (entry.layer) {
    leaseBlob(p, entry.layer.descriptor.digest);
    if (!(await hasBlob(p, entry.layer.descriptor.digest))) return undefined;
  }
  // touch: gc with a size limit drops the least recently used entries first
  const now = new Date();
  await fs.utimes(entryPath(p, key), now, now).catch(() => undefined);
  return entry;
};

/** Records a step's result (its blob already committed and leased). */
export const recordStep = async (p: StorePaths, key: string, step: string, layer: CachedLayer | undefined): Promise<void> => {
  const dir = stepsDir(p);
  await fs.mkdir(dir, { recursive: true });
  const entry: CacheEntry = { v: CACHE_VERSION, key, step, ...(layer ? { layer } : {}), created: new Date().toISOString() };
  const tmp = join(dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await fs.writeFile(tmp, JSON.stringify(entry));
  await fs.rename(tmp, entryPath(p, key));
};

export interface CacheRecord {
  readonly key: string;
  readonly path: string;
  readonly blob?: Digest;
  readonly size: number;
  /** last use, ms since the epoch */
  readonly usedMs: number;
}

/** Every cache entry with the blob it keeps alive and that blob's size (gc reads this). */
export const listCache = async (p: StorePaths): Promise<CacheRecord[]> => {
  const dir = stepsDir(p);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: CacheRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const path = join(dir, name);
    const key = name.slice(0, -5);
    const [text, st] = await Promise.all([fs.readFile(path, 'utf8').catch(() => undefined), fs.stat(path).catch(() => undefined)]);
    const entry = text === undefined ? undefined : decodeEntry(text, key);
    if (!entry || !st) continue;
    out.push({ key, path, ...(entry.layer ? { blob: entry.layer.descriptor.digest } : {}), size: entry.layer?.descriptor.size ?? 0, usedMs: st.mtimeMs });
  }
  return out;
};

/**
 * For `tsd-store gc`: the blobs the build cache keeps. With `maxBytes`, the least recently used
 * entries beyond that total are removed first (their blobs then become garbage); without it every
 * entry is kept. Entries whose blob is gone are removed. Temp files of dead builds are removed.
 */
export const cacheRoots = async (p: StorePaths, opts: { maxBytes?: number } = {}): Promise<Set<Digest>> => {
  const records = await listCache(p);
  records.sort((a, b) => b.usedMs - a.usedMs);
  const keep = new Set<Digest>();
  let total = 0;
  for (const r of records) {
    if (r.blob && !(await hasBlob(p, r.blob))) {
      await fs.unlink(r.path).catch(() => undefined);
      continue;
    }
    if (opts.maxBytes !== undefined && total + r.size > opts.maxBytes) {
      await fs.unlink(r.path).catch(() => undefined);
      continue;
    }
    total += r.size;
    if (r.blob) keep.add(r.blob);
  }
  return keep;
};

/**
 * After a gc: removes the entries whose layer blob is gone (they could only ever miss) and the
 * context spools kept for the next build (context.ts; a build claims one by renaming it first).
 */
export const dropDeadEntries = async (p: StorePaths): Promise<void> => {
  for (const r of await listCache(p)) if (r.blob && !(await hasBlob(p, r.blob))) await fs.unlink(r.path).catch(() => undefined);
  const tmp = join(p.cache, 'tmp');
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    if (name.startsWith('spool-free-')) await fs.unlink(join(tmp, name)).catch(() => undefined);
  }
};

/** Removes every cache entry (`tsd-store gc --all` style); cache mount dirs are kept. */
export const clearCache = async (p: StorePaths): Promise<void> => {
  await fs.rm(stepsDir(p), { recursive: true, force: true });
};

/**
 * The image a fully cached build made last time. Docker gives an unchanged rebuild the same image
 * ID; so does tsd: the key is the image config without its timestamps plus the layers, and a hit
 * reuses the manifest and config written then (their timestamps included), writing nothing.
 */
export interface CachedImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
}

const imagesDir = (p: StorePaths): string => join(p.cache, 'images');

export const imageKey = (config: ImageConfig, layers: readonly Descriptor[], epoch?: number): string => {
  const { created: _c, history, ...rest } = config;
  return cacheKey(['IMAGE', epoch ?? null, rest, (history ?? []).map(({ created: _h, ...h }) => h), layers.map((l) => l.digest)]);
};

export const lookupImage = async (p: StorePaths, key: string): Promise<CachedImage | undefined> => {
  const text = await fs.readFile(join(imagesDir(p), `${key}.json`), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const u = JSON.parse(text) as CachedImage & { v?: number; key?: string };
    if (u.v !== CACHE_VERSION || u.key !== key || !isDigest(u.manifest?.digest) || !isDigest(u.config?.digest)) return undefined;
    leaseBlob(p, u.manifest.digest);
    leaseBlob(p, u.config.digest);
    if (!(await hasBlob(p, u.manifest.digest)) || !(await hasBlob(p, u.config.digest))) return undefined;
    return { manifest: u.manifest, config: u.config };
  } catch {
    return undefined;
  }
};

export const recordImage = async (p: StorePaths, key: string, image: CachedImage): Promise<void> => {
  const dir = imagesDir(p);
  await fs.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await fs.writeFile(tmp, JSON.stringify({ v: CACHE_VERSION, key, ...image }));
  await fs.rename(tmp, join(dir, `${key}.json`));
};
