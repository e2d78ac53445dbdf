// Plan: what a pull must fetch, decided from decoded documents without I/O.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor, Index, Manifest, Platform } from '../oci/manifest.js';
import { isForeignLayer, isIndexType, layerCompression } from '../oci/media-type.js';
import { formatPlatform, platformMatches } from '../oci/platform.js';

/** The manifest of `platform` in an index, or an error naming the platforms it has. */
export const choosePlatform = (index: Index, platform: Platform, what: string): E.Either<Failure, Descriptor> => {
  const images = index.manifests.filter((m) => !isIndexType(m.mediaType));
  const fit = images.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
  if (fit) return E.right(fit);
  const have = images.flatMap((m) => (m.platform && m.platform.os !== 'unknown' ? [formatPlatform(m.platform)] : []));
  const nested = index.manifests.length - images.length;
  if (nested > 0) {
    // an index whose entries are indexes: no registry tool agrees on how to walk one, so say so
    return E.left(
      failure(
        'NestedIndex',
        `${what}: no image for platform ${formatPlatform(platform)} here, and ${nested === 1 ? 'an entry is itself an index' : `${nested} entries are themselves indexes`} (an index inside an index is not supported; pull the inner index by its digest: ${index.manifests.filter((m) => isIndexType(m.mediaType)).map((m) => m.digest).join(', ')})`,
        ExitCode.user,
      ),
    );
  }
  return E.left(
    failure('NoMatchingPlatform', `${what}: no image for platform ${formatPlatform(platform)}; available: ${have.join(', ') || 'none'} (choose one with --platform)`, ExitCode.notFound),
  );
};

/** An OCI or Docker layer type whose compression tsd knows (gzip, zstd or none). */
export const isLayerType = (t: string): boolean =>
  (t.startsWith('application/vnd.oci.image.layer.') || t.startsWith('application/vnd.docker.image.rootfs.')) && layerCompression(t) !== undefined;

export interface BlobPlan {
  readonly config: Descriptor;
  /** each layer digest once, in manifest order */
  readonly layers: readonly Descriptor[];
}

/** The blobs of a manifest; a layer of a type that is no tar is refused by name. */
export const planBlobs = (m: Manifest, what: string): E.Either<Failure, BlobPlan> => {
  const seen = new Set<Digest>();
  const layers: Descriptor[] = [];
  for (const l of m.layers) {
    if (!isLayerType(l.mediaType)) {
      return E.left(failure('UnsupportedLayer', `${what}: layer ${l.digest} has media type ${l.mediaType}, which is not a layer tar (an artifact, not an image?)`, ExitCode.user));
    }
    if (seen.has(l.digest)) continue;
    seen.add(l.digest);
    layers.push(l);
  }
  return E.right({ config: m.config, layers });
};

/** Says what a failed foreign (non-distributable) layer is, since registries often do not serve them. */
export const foreignLayerNote = (l: Descriptor): string =>
  isForeignLayer(l.mediaType) ? ` (a non-distributable layer${l.urls?.length ? ` that lives at ${l.urls.join(', ')}` : ''}; tsd does not fetch from foreign URLs)` : '';
