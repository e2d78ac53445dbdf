// Descriptor, Manifest and Index of the OCI image spec, with decoders that refuse anything that
// does not have the spec's shape: bytes from a registry or an archive are hostile until decoded.
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import { isDigest, type Digest } from './digest.js';
import { isIndexType, isManifestType, MediaType } from './media-type.js';

export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly urls?: readonly string[];
  readonly artifactType?: string;
}

export interface Manifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly subject?: Descriptor;
  readonly artifactType?: string;
}

export interface Index {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The annotation that names an image inside an OCI layout's index.json. */
export const REF_NAME = 'org.opencontainers.image.ref.name';
/** The largest manifest or index tsd accepts (as containerd and the distribution registry do). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

const bad = (what: string, why: string): Failure => failure('InvalidManifest', `invalid ${what}: ${why}`);
const isObject = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);
const isStringRecord = (u: unknown): u is Record<string, string> =>
  isObject(u) && Object.values(u).every((v) => typeof v === 'string');

export const decodeDescriptor = (u: unknown, what = 'descriptor'): E.Either<Failure, Descriptor> => {
  if (!isObject(u)) return E.left(bad(what, 'not an object'));
  const { mediaType, digest, size, annotations, platform, urls } = u;
  if (typeof mediaType !== 'string' || mediaType.length === 0) return E.left(bad(what, 'missing mediaType'));
  if (!isDigest(digest)) return E.left(bad(what, `bad digest ${JSON.stringify(digest)}`));
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return E.left(bad(what, `bad size ${JSON.stringify(size)}`));
  if (annotations !== undefined && !isStringRecord(annotations)) return E.left(bad(what, 'annotations must map strings to strings'));
  if (platform !== undefined && (!isObject(platform) || typeof platform.architecture !== 'string' || typeof platform.os !== 'string')) {
    return E.left(bad(what, 'platform needs architecture and os'));
  }
  if (urls !== undefined && (!Array.isArray(urls) || !urls.every((x) => typeof x === 'string'))) return E.left(bad(what, 'bad urls'));
  return E.right(u as unknown as Descriptor);
};

const parseJson = (bytes: Uint8Array | string, what: string): E.Either<Failure, unknown> =>
  E.tryCatch(
    () => JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as unknown,
    () => bad(what, 'not valid JSON'),
  );

const decodeList = (u: unknown, what: string): E.Either<Failure, readonly Descriptor[]> => {
  if (!Array.isArray(u)) return E.left(bad(what, 'not a list'));
  const out: Descriptor[] = [];
  for (const [i, d] of u.entries()) {
    const r = decodeDescriptor(d, `${what}[${i}]`);
    if (E.isLeft(r)) return r;
    out.push(r.right);
  }
  return E.right(out);
};

export const decodeManifest = (u: unknown): E.Either<Failure, Manifest> => {
  if (!isObject(u)) return E.left(bad('manifest', 'not an object'));
  if (u.schemaVersion !== 2) return E.left(bad('manifest', `schemaVersion ${JSON.stringify(u.schemaVersion)} is not 2`));
  if (u.mediaType !== undefined && !isManifestType(u.mediaType as string)) {
    return E.left(bad('manifest', `mediaType ${JSON.stringify(u.mediaType)} is not an image manifest`));
  }
  const config = decodeDescriptor(u.config, 'manifest config');
  if (E.isLeft(config)) return config;
  const layers = decodeList(u.layers, 'manifest layers');
  if (E.isLeft(layers)) return layers;
  return E.right(u as unknown as Manifest);
};

export const decodeIndex = (u: unknown): E.Either<Failure, Index> => {
  if (!isObject(u)) return E.left(bad('index', 'not an object'));
  if (u.schemaVersion !== 2) return E.left(bad('index', `schemaVersion ${JSON.stringify(u.schemaVersion)} is not 2`));
  if (u.mediaType !== undefined && !isIndexType(u.mediaType as string)) {
    return E.left(bad('index', `mediaType ${JSON.stringify(u.mediaType)} is not an index`));
  }
  const manifests = decodeList(u.manifests, 'index manifests');
  if (E.isLeft(manifests)) return manifests;
  return E.right(u as unknown as Index);
};

export type ManifestOrIndex = { readonly kind: 'manifest'; readonly manifest: Manifest } | { readonly kind: 'index'; readonly index: Index };

/**
 * Decodes manifest bytes whose media type comes from the descriptor or the Content-Type; when
 * neither says, the document's own mediaType or shape decides (as the OCI spec allows).
 */
export const decodeManifestBytes = (bytes: Uint8Array | string, mediaType?: string): E.Either<Failure, ManifestOrIndex> => {
  if (bytes.length > MAX_MANIFEST_SIZE) return E.left(bad('manifest', `larger than ${MAX_MANIFEST_SIZE} bytes`));
  const json = parseJson(bytes, 'manifest');
  if (E.isLeft(json)) return json;
  const u = json.right;
  const declared = isObject(u) && typeof u.mediaType === 'string' ? u.mediaType : undefined;
  const type = declared ?? mediaType;
  const asIndex = isIndexType(type) || (type === undefined && isObject(u) && Array.isArray(u.manifests));
  return asIndex
    ? E.map((index: Index) => ({ kind: 'index' as const, index }))(decodeIndex(u))
    : E.map((manifest: Manifest) => ({ kind: 'manifest' as const, manifest }))(decodeManifest(u));
};

/** The media type a manifest document declares, or the OCI one it implies by its shape. */
export const manifestMediaType = (m: ManifestOrIndex): string =>
  m.kind === 'index' ? (m.index.mediaType ?? MediaType.ociIndex) : (m.manifest.mediaType ?? MediaType.ociManifest);
