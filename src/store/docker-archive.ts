// DockerArchive: the pure parts of the `docker save` format and of reading any image archive:
// the manifest.json codec, the names Docker's convention gives images in an OCI archive, and
// the cleaning of entry names (hostile until checked: no entry may name a path outside the
// archive). The format: a tar with manifest.json, a list of
//   { "Config": "<path of the config>", "RepoTags": ["busybox:latest"], "Layers": ["<path>", …] }
// whose layer files are tars (plain or compressed) in the order of the config's diff_ids.
import { posix } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { Descriptor } from '../oci/manifest.js';
import { familiarReference, formatReference, parseReference } from '../oci/reference.js';
import { REF_NAME } from '../oci/manifest.js';

export interface DockerArchiveItem {
  readonly Config: string;
  readonly RepoTags: readonly string[];
  readonly Layers: readonly string[];
}

/** containerd's (and Docker's since 25) annotation for the full name of an image in an archive. */
export const CONTAINERD_NAME = 'io.containerd.image.name';

const bad = (why: string): Failure => failure('InvalidArchive', `archive: ${why}`);

/** A manifest.json that is not a list of items with string paths is refused, whatever else it holds. */
export const decodeDockerManifest = (bytes: Uint8Array): E.Either<Failure, readonly DockerArchiveItem[]> => {
  let u: unknown;
  try {
    u = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return E.left(bad('manifest.json is not valid JSON'));
  }
  if (!Array.isArray(u) || u.length === 0) return E.left(bad('manifest.json is not a non-empty list'));
  const items: DockerArchiveItem[] = [];
  for (const [i, x] of u.entries()) {
    const o = x as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null) return E.left(bad(`manifest.json[${i}] is not an object`));
    const { Config, RepoTags, Layers } = o;
    if (typeof Config !== 'string') return E.left(bad(`manifest.json[${i}].Config is not a path`));
    if (!Array.isArray(Layers) || !Layers.every((l) => typeof l === 'string')) return E.left(bad(`manifest.json[${i}].Layers is not a list of paths`));
    if (RepoTags !== undefined && RepoTags !== null && (!Array.isArray(RepoTags) || !RepoTags.every((t) => typeof t === 'string'))) {
      return E.left(bad(`manifest.json[${i}].RepoTags is not a list of names`));
    }
    items.push({ Config, Layers: Layers as string[], RepoTags: (RepoTags as string[] | null | undefined) ?? [] });
  }
  return E.right(items);
};

/**
 * An archive entry name made canonical ("./a//b" → "a/b"); refused when absolute, when a ".."
 * would leave the archive, or when it holds a NUL byte.
 */
export const cleanEntryName = (name: string): E.Either<Failure, string> => {
  if (name.includes('\0')) return E.left(bad(`entry ${JSON.stringify(name)}: NUL in name`));
  if (name.startsWith('/')) return E.left(bad(`entry ${JSON.stringify(name)}: absolute path`));
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return E.left(bad(`entry ${JSON.stringify(name)}: path escapes the archive`));
      parts.pop();
    } else parts.push(part);
  }
  if (parts.length === 0) return E.right('.');
  return E.right(parts.join('/'));
};

/** Where a link entry points: a symlink's target is relative to its directory, a hard link's to the root. */
export const linkTarget = (entry: string, linkname: string, kind: 'symlink' | 'link'): E.Either<Failure, string> => {
  if (linkname.startsWith('/')) return E.left(bad(`entry ${JSON.stringify(entry)}: link to absolute path ${JSON.stringify(linkname)}`));
  const joined = kind === 'symlink' ? posix.join(posix.dirname(entry), linkname) : linkname;
  const cleaned = cleanEntryName(joined);
  return E.mapLeft(() => bad(`entry ${JSON.stringify(entry)}: link target ${JSON.stringify(linkname)} escapes the archive`))(cleaned);
};

/** The normalized reference an archive's name stands for, or undefined when it is not a name. */
export const normalizeName = (name: string): string | undefined => {
  const r = parseReference(name);
  return E.isRight(r) ? formatReference(r.right) : undefined;
};

/**
 * The names an OCI archive's index entry gives its image: containerd's full-name annotation,
 * else the ref.name (which may be a full reference, as tsd's store writes it). A bare tag such
 * as "latest" without a full name names nothing.
 */
export const ociEntryName = (d: Descriptor): string | undefined => {
  const full = d.annotations?.[CONTAINERD_NAME];
  if (full !== undefined) return normalizeName(full);
  const ref = d.annotations?.[REF_NAME];
  if (ref === undefined) return undefined;
  if (!ref.includes('/') && !ref.includes(':')) return undefined; // a tag, not a name
  return normalizeName(ref);
};

/** The annotations Docker gives an image in the index.json of an archive it saves. */
export const archiveAnnotations = (ref: string | undefined): Record<string, string> => {
  if (ref === undefined) return {};
  const r = parseReference(ref);
  if (E.isLeft(r)) return {};
  return { [CONTAINERD_NAME]: formatReference(r.right), ...(r.right.tag !== undefined ? { [REF_NAME]: r.right.tag } : {}) };
};

/** Docker's RepoTags entry: the familiar name with its tag ("busybox:latest"); none for a digest-only name. */
export const repoTag = (ref: string | undefined): string | undefined => {
  if (ref === undefined) return undefined;
  const r = parseReference(ref);
  if (E.isLeft(r) || r.right.tag === undefined) return undefined;
  return familiarReference({ domain: r.right.domain, path: r.right.path, tag: r.right.tag });
};
