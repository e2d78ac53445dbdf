// ImageSync: the common case of resolveImage (src/store/image.ts) in synchronous calls, for a
// process that has nothing to overlap its reads with (tsd-run's foreground start, bench/run):
// each async read is a thread-pool round trip, and resolving an image takes about ten of them.
// It only ever answers what resolveImage would answer; anything it does not handle plainly (no
// exact or normalized name match, a nested index, a short ID, a blob missing or set aside by a
// gc, a bad digest or document) gives undefined, and the caller asks resolveImage, which also
// words the errors.
import * as E from 'fp-ts/lib/Either.js';
import { decodeImageConfig } from '../oci/config.js';
import { decodeManifestBytes, MAX_MANIFEST_SIZE, type Descriptor, type ManifestOrIndex } from '../oci/manifest.js';
import { hostPlatform, platformMatches } from '../oci/platform.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { readBlobSync } from './blob.js';
import { refNameOf, type ResolvedImage } from './image.js';
import { readIndexSync } from './index-file.js';
import type { StorePaths } from './layout.js';

const manifestSync = (p: StorePaths, d: Descriptor): ManifestOrIndex | undefined => {
  const bytes = readBlobSync(p, d.digest, MAX_MANIFEST_SIZE);
  if (bytes === undefined) return undefined;
  const m = decodeManifestBytes(bytes, d.mediaType);
  return E.isRight(m) ? m.right : undefined;
};

const normalized = (name: string): string | undefined => {
  const r = parseReference(name);
  return E.isRight(r) && r.right.digest === undefined ? formatReference(r.right) : undefined;
};

/** The image `input` names (a name, exact or normalized), or undefined: ask resolveImage. */
export const resolveImageSync = (p: StorePaths, input: string): ResolvedImage | undefined => {
  const read = readIndexSync(p);
  if (E.isLeft(read)) return undefined;
  const index = read.right;
  // resolveImage's first two rules: the exact ref.name, then the normalized name
  let found: { entry: Descriptor; ref: string } | undefined;
  const want = normalized(input);
  const exact = index.manifests.find((d) => refNameOf(d) === input);
  if (exact) found = want === undefined ? undefined : { entry: exact, ref: want };
  else if (want !== undefined) {
    const named = index.manifests.find((d) => {
      const name = refNameOf(d);
      return name !== undefined && normalized(name) === want;
    });
    if (named) found = { entry: named, ref: want };
  }
  if (found === undefined) return undefined;
  const top = manifestSync(p, found.entry);
  if (top === undefined) return undefined;
  let manifestDescriptor = found.entry;
  let manifest;
  if (top.kind === 'manifest') manifest = top.manifest;
  else {
    const platform = hostPlatform();
    const fit = top.index.manifests.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
    if (fit === undefined) return undefined;
    const m = manifestSync(p, fit);
    if (m === undefined || m.kind !== 'manifest') return undefined;
    manifestDescriptor = fit;
    manifest = m.manifest;
  }
  const configBytes = readBlobSync(p, manifest.config.digest, 64 * 1024 * 1024);
  if (configBytes === undefined) return undefined;
  const config = decodeImageConfig(configBytes);
  if (E.isLeft(config)) return undefined;
  return { ref: found.ref, entry: found.entry, manifestDescriptor, manifest, configDigest: manifest.config.digest, config: config.right };
};
