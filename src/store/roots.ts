// Roots: what the store must keep. gc, fsck and df all start from the same roots and follow
// manifests, indexes and configs down to every blob they reach.
//
// Roots come from index.json (every entry, named or not) and from root sources. Other modules
// (run, build, snapshots) add theirs in two ways, documented in docs/store.md:
//  - on disk, read by every process: any file `$ROOT/containers/*/image` or `$ROOT/roots/*`
//    whose lines hold digests (a manifest, index or config digest: gc follows it down);
//  - in process, for a tool that embeds the library and runs gc itself: registerRootSource().
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import { isDigest, type Digest } from '../oci/digest.js';
import { decodeManifestBytes, MAX_MANIFEST_SIZE, type Descriptor, type Index } from '../oci/manifest.js';
import { isForeignLayer, isIndexType, isManifestType } from '../oci/media-type.js';
import { readIndex } from './index-file.js';
import type { StorePaths } from './layout.js';

/** A named source of digests the store must keep. */
export interface RootSource {
  readonly name: string;
  readonly digests: (p: StorePaths) => Promise<readonly Digest[]>;
}

const registered: RootSource[] = [];

/** Adds an in-process root source (for tools that embed the library and call gc). */
export const registerRootSource = (source: RootSource): void => {
  registered.push(source);
};

const digestsInFile = async (file: string): Promise<Digest[]> => {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text
    .split(/\s+/)
    .filter((w): w is Digest => isDigest(w));
};

/** `$ROOT/containers/<id>/image`: the image a container was made from. */
const containerRoots: RootSource = {
  name: 'containers',
  digests: async (p) => {
    const ids = await fs.readdir(p.containers).catch(() => [] as string[]);
    return (await Promise.all(ids.map((id) => digestsInFile(join(p.containers, id, 'image'))))).flat();
  },
};

/** `$ROOT/roots/<anything>`: digests a module (a build in progress, a cache) pins on disk. */
const fileRoots: RootSource = {
  name: 'roots',
  digests: async (p) => {
    const dir = join(p.root, 'roots');
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    return (await Promise.all(names.map((n) => digestsInFile(join(dir, n))))).flat();
  },
};

export const rootSources = (): readonly RootSource[] => [containerRoots, fileRoots, ...registered];

/** Every root digest from index.json; a malformed index.json is a Failure (gc must not guess). */
export const indexRoots = async (p: StorePaths): Promise<E.Either<Failure, readonly Descriptor[]>> => E.map((i: Index) => i.manifests)(await readIndex(p)());

export const extraRoots = async (p: StorePaths): Promise<Set<Digest>> => {
  const out = new Set<Digest>();
  for (const s of rootSources()) for (const d of await s.digests(p).catch(() => [] as Digest[])) out.add(d);
  return out;
};

/** What a reachability walk found. */
export interface Reach {
  /** every digest reached (present or not) */
  readonly reached: Set<Digest>;
  /** digests reached but not found (or not readable) in the store, with who named them */
  readonly missing: Map<Digest, Digest | 'index.json' | 'root'>;
  /** manifests or indexes that are present but do not decode */
  readonly invalid: Map<Digest, string>;
}

/** Reads a blob for the walk: `locate` lets gc find blobs it has moved aside. */
export type Locate = (d: Digest) => string;

const readSmall = async (path: string): Promise<Buffer | undefined> => {
  try {
    const st = await fs.stat(path);
    if (!st.isFile() || st.size > MAX_MANIFEST_SIZE) return undefined;
    return await fs.readFile(path);
  } catch {
    return undefined;
  }
};

const looksLikeManifest = (mediaType: string | undefined): boolean =>
  mediaType === undefined || isManifestType(mediaType) || isIndexType(mediaType);

/**
 * Follows descriptors from the roots: an index to its manifests, a manifest to its config,
 * layers and subject. A root given as a bare digest (no media type) is opened and decoded if it
 * is a small JSON manifest; otherwise it is kept as is (a config or a layer).
 */
export const walk = async (
  locate: Locate,
  roots: readonly { digest: Digest; mediaType?: string; from: Digest | 'index.json' | 'root' }[],
  exists: (d: Digest) => Promise<boolean>,
): Promise<Reach> => {
  const reached = new Set<Digest>();
  const missing = new Map<Digest, Digest | 'index.json' | 'root'>();
  const invalid = new Map<Digest, string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const item = queue.pop()!;
    if (reached.has(item.digest)) continue;
    reached.add(item.digest);
    if (!(await exists(item.digest))) {
      // a foreign (non-distributable) layer is fetched from its URLs, not kept in the store
      if (!(item.mediaType !== undefined && isForeignLayer(item.mediaType))) missing.set(item.digest, item.from);
      continue;
    }
    if (!looksLikeManifest(item.mediaType)) continue;
    const bytes = await readSmall(locate(item.digest));
    if (bytes === undefined) continue;
    const decoded = decodeManifestBytes(bytes, item.mediaType);
    if (E.isLeft(decoded)) {
      // a bare root may be a config; a declared manifest that does not decode is broken
      if (item.mediaType !== undefined) invalid.set(item.digest, decoded.left.message);
      continue;
    }
    const m = decoded.right;
    const children: Descriptor[] =
      m.kind === 'index'
        ? [...m.index.manifests]
        : [m.manifest.config, ...m.manifest.layers, ...(m.manifest.subject ? [m.manifest.subject] : [])];
    for (const c of children) {
      queue.push({ digest: c.digest, mediaType: c.mediaType, from: item.digest });
    }
  }
  return { reached, missing, invalid };
};
