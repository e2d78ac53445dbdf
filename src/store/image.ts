// Image: what a name or an ID in the store stands for. Names live in index.json as the
// org.opencontainers.image.ref.name annotation holding the full normalized reference
// ("docker.io/library/busybox:latest"); an entry without the annotation is an untagged image.
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { decodeImageConfig, type ImageConfig } from '../oci/config.js';
import { hexOf, isDigest, type Digest } from '../oci/digest.js';
import { decodeManifestBytes, MAX_MANIFEST_SIZE, REF_NAME, type Descriptor, type Index, type Manifest, type ManifestOrIndex, type Platform } from '../oci/manifest.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { readBlob, readBlobSync } from './blob.js';
import { readIndex, updateIndex } from './index-file.js';
import type { StorePaths } from './layout.js';

/** An image resolved down to one platform's manifest and config. */
export interface ResolvedImage {
  /** the name it was found by, normalized; undefined when found by ID or digest */
  readonly ref?: string;
  /** the index.json entry: a manifest, or an index of several platforms */
  readonly entry: Descriptor;
  readonly manifestDescriptor: Descriptor;
  readonly manifest: Manifest;
  readonly configDigest: Digest;
  readonly config: ImageConfig;
}

export const notFound = (what: string): Failure => failure('ImageNotFound', `image ${what}: not in the store`, ExitCode.notFound);

export const refNameOf = (d: Descriptor): string | undefined => d.annotations?.[REF_NAME];

/** A ref.name written by another tool may not be a Docker-style name: compare normalized where we can. */
const normalizedName = (name: string): string =>
  pipe(
    parseReference(name),
    E.match(() => name, formatReference),
  );

export const loadManifest = (p: StorePaths, d: Descriptor): TE.TaskEither<Failure, ManifestOrIndex> =>
  pipe(
    readBlob(p, d.digest, MAX_MANIFEST_SIZE),
    TE.chainEitherK((bytes) => decodeManifestBytes(bytes, d.mediaType)),
    TE.mapLeft((f) => (f._tag === 'InvalidManifest' ? failure('InvalidManifest', `manifest ${d.digest}: ${f.message}`, ExitCode.tool) : f)),
  );

/** readBlob's default bound, the largest config loadConfig reads */
const MAX_CONFIG_READ = 64 * 1024 * 1024;

export const loadConfig = (p: StorePaths, digest: Digest): TE.TaskEither<Failure, ImageConfig> =>
  pipe(
    readBlob(p, digest, MAX_CONFIG_READ),
    TE.chainEitherK(decodeImageConfig),
    TE.mapLeft((f) => (f._tag === 'InvalidConfig' ? failure('InvalidConfig', `config ${digest}: ${f.message}`, ExitCode.tool) : f)),
  );

/** Picks the manifest of `platform` from an index (nested indexes followed, to a bounded depth). */
const selectPlatform = (p: StorePaths, index: Index, platform: Platform, depth = 0): TE.TaskEither<Failure, Descriptor> => {
  const fit = index.manifests.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
  if (fit) return TE.right(fit);
  const nested = index.manifests.find((m) => m.platform === undefined && (m.mediaType.includes('index') || m.mediaType.includes('list')));
  if (nested && depth < 4) {
    return pipe(
      loadManifest(p, nested),
      TE.chain((m) => (m.kind === 'index' ? selectPlatform(p, m.index, platform, depth + 1) : TE.right(nested))),
    );
  }
  const untyped = index.manifests.filter((m) => m.platform === undefined);
  if (untyped.length === 1 && untyped[0]) return TE.right(untyped[0]);
  const have = index.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
  return TE.left(
    failure('NoMatchingPlatform', `no manifest for platform ${formatPlatform(platform)}; available: ${have.join(', ') || 'none'}`, ExitCode.notFound),
  );
};

/** Follows an index.json entry down to the manifest and config of one platform. */
export const resolveEntry = (p: StorePaths, entry: Descriptor, ref?: string, platform: Platform = hostPlatform()): TE.TaskEither<Failure, ResolvedImage> =>
  pipe(
    loadManifest(p, entry),
    TE.chain((m) =>
      m.kind === 'manifest'
        ? TE.right({ manifestDescriptor: entry, manifest: m.manifest })
        : pipe(
            selectPlatform(p, m.index, platform),
            TE.chain((d) =>
              pipe(
                loadManifest(p, d),
                TE.chain((mm) =>
                  mm.kind === 'manifest' ? TE.right({ manifestDescriptor: d, manifest: mm.manifest }) : TE.left(failure('InvalidManifest', `manifest ${d.digest}: an index where an image manifest was expected`, ExitCode.tool)),
                ),
              ),
            ),
          ),
    ),
    TE.chain(({ manifestDescriptor, manifest }) =>
      pipe(
        loadConfig(p, manifest.config.digest),
        TE.map((config) => ({ ...(ref !== undefined ? { ref } : {}), entry, manifestDescriptor, manifest, configDigest: manifest.config.digest, config })),
      ),
    ),
  );

/**
 * resolveEntry in synchronous reads (`tsd-store ls`: a read per blob, no thread-pool round trips),
 * for an entry whose manifest (or index, then the host's manifest in it) and config are plainly
 * there, verify and decode; undefined for anything else (a missing blob, one a gc holds aside, a
 * nested index, a fault), which resolveEntry then reads again and judges.
 */
export const resolveEntrySync = (p: StorePaths, entry: Descriptor, ref?: string): ResolvedImage | undefined => {
  const load = (d: Descriptor): ManifestOrIndex | undefined => {
    const bytes = readBlobSync(p, d.digest, MAX_MANIFEST_SIZE);
    const m = bytes === undefined ? undefined : decodeManifestBytes(bytes, d.mediaType);
    return m !== undefined && E.isRight(m) ? m.right : undefined;
  };
  const top = load(entry);
  if (top === undefined) return undefined;
  let manifestDescriptor = entry;
  let doc = top;
  if (top.kind === 'index') {
    // selectPlatform's first and last choices; a nested index is left to it
    const platform = hostPlatform();
    const untyped = top.index.manifests.filter((m) => m.platform === undefined);
    const fit = top.index.manifests.find((m) => m.platform !== undefined && platformMatches(platform, m.platform));
    const nested = untyped.some((m) => m.mediaType.includes('index') || m.mediaType.includes('list'));
    const chosen = fit ?? (!nested && untyped.length === 1 ? untyped[0] : undefined);
    const child = chosen === undefined ? undefined : load(chosen);
    if (chosen === undefined || child === undefined) return undefined;
    manifestDescriptor = chosen;
    doc = child;
  }
  if (doc.kind !== 'manifest') return undefined;
  const manifest = doc.manifest;
  const configBytes = readBlobSync(p, manifest.config.digest, MAX_CONFIG_READ);
  const config = configBytes === undefined ? undefined : decodeImageConfig(configBytes);
  if (config === undefined || E.isLeft(config)) return undefined;
  return { ...(ref !== undefined ? { ref } : {}), entry, manifestDescriptor, manifest, configDigest: manifest.config.digest, config: config.right };
};

const SHORT_ID = /^(?:sha256:)?([a-f0-9]{4,64})$/;

/**
 * Finds the index.json entry a user means, as Docker does: a name (normalized), then
 * name@digest or a full digest, then an unambiguous prefix of an image ID or manifest digest.
 */
export const findEntry = (p: StorePaths, input: string): TE.TaskEither<Failure, { entry: Descriptor; ref?: string }> =>
  pipe(
    readIndex(p),
    TE.chain((index) => async () => {
      const entries = index.manifests;
      const exact = entries.find((d) => refNameOf(d) === input);
      if (exact) return E.right({ entry: exact, ref: normalizedName(input) });
      const parsed = parseReference(input);
      if (E.isRight(parsed)) {
        const r = parsed.right;
        if (r.digest !== undefined) {
          const byDigest = entries.find((d) => d.digest === r.digest);
          if (byDigest) return E.right({ entry: byDigest });
        } else {
          const want = formatReference(r);
          const named = entries.find((d) => {
            const name = refNameOf(d);
            return name !== undefined && normalizedName(name) === want;
          });
          if (named) return E.right({ entry: named, ref: want });
        }
      }
      if (isDigest(input)) {
        const byDigest = entries.find((d) => d.digest === input);
        if (byDigest) return E.right({ entry: byDigest });
      }
      const short = SHORT_ID.exec(input);
      if (short?.[1]) {
        const prefix = short[1];
        const matches = new Map<string, Descriptor>();
        for (const d of entries) {
          if (hexOf(d.digest).startsWith(prefix)) matches.set(d.digest, d);
          else {
            const resolved = await resolveEntry(p, d)();
            if (E.isRight(resolved) && hexOf(resolved.right.configDigest).startsWith(prefix)) matches.set(d.digest, d);
          }
        }
        if (matches.size > 1) return E.left(failure('AmbiguousId', `image ID ${input}: matches ${matches.size} images; give more digits`));
        const only = [...matches.values()][0];
        if (only) return E.right({ entry: only });
      }
      return E.left(notFound(input));
    }),
  );

export const resolveImage = (p: StorePaths, input: string, platform?: Platform): TE.TaskEither<Failure, ResolvedImage> =>
  pipe(
    findEntry(p, input),
    TE.chain(({ entry, ref }) => resolveEntry(p, entry, ref, platform)),
  );

/** Names `target` with `ref` (a full normalized reference), replacing whatever had that name. */
export const tagDescriptor = (p: StorePaths, target: Descriptor, ref: string): TE.TaskEither<Failure, Descriptor> => {
  const { annotations, ...rest } = target;
  const others = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k !== REF_NAME));
  const named: Descriptor = { ...rest, annotations: { ...others, [REF_NAME]: ref } };
  return updateIndex(p, (manifests) =>
    E.right({
      manifests: [...manifests.filter((d) => refNameOf(d) !== ref && !(refNameOf(d) === undefined && d.digest === target.digest)), named],
      result: named,
    }),
  );
};

/** Records an image with no name (a build without -t), unless an entry already holds it. */
export const addUntagged = (p: StorePaths, target: Descriptor): TE.TaskEither<Failure, Descriptor> => {
  const { annotations: _dropped, ...bare } = target;
  return updateIndex(p, (manifests) =>
    manifests.some((d) => d.digest === target.digest)
      ? E.right({ manifests, result: bare })
      : E.right({ manifests: [...manifests, bare], result: bare }),
  );
};

/** Removes the entries a name or ID stands for; returns what was removed. */
export const removeEntries = (p: StorePaths, pick: (d: Descriptor) => boolean): TE.TaskEither<Failure, readonly Descriptor[]> =>
  updateIndex(p, (manifests) => E.right({ manifests: manifests.filter((d) => !pick(d)), result: manifests.filter(pick) }));
