// Manifests: GET and PUT of manifests and indexes. What comes back is verified before anything
// trusts it: at most 4 MiB, its digest equal to the one asked for (by digest) or to the
// Docker-Content-Digest the registry announced (by tag).
import { ExitCode, failure, isFailure } from '../failure.js';
import { algorithmOf, digestOf, isDigest, type Digest } from '../oci/digest.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { readBody } from './http.js';
import { retryDelay, sleep } from './retry.js';
import type { Session } from './session.js';

export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly digest: Digest;
  /** from the Content-Type, when the registry sent a useful one */
  readonly mediaType: string | undefined;
}

/** "tag" or "sha256:…" in the URL path: a tag or a digest, both already decoded. */
export const manifestPath = (repository: string, reference: string): string => `/v2/${repository}/manifests/${reference}`;

export const manifestWhat = (registry: string, repository: string, reference: string): string =>
  `manifest ${registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`;

/** The body of a manifest GET; a body cut short is fetched again, as request() does for a reset. */
const getBody = async (s: Session, repository: string, reference: string, what: string) => {
  for (let n = 1; ; n++) {
    const res = await s.expect({ method: 'GET', path: manifestPath(repository, reference), headers: { accept: MANIFEST_ACCEPT }, bare: true }, [200], what);
    try {
      return { res, bytes: await readBody(res, MAX_MANIFEST_SIZE, what) };
    } catch (e) {
      if (isFailure(e) && e._tag === 'TooLarge') throw failure('ManifestTooLarge', `${what}: larger than ${MAX_MANIFEST_SIZE} bytes; refused`, ExitCode.tool);
      if (!isFailure(e) || !e.retryable || n >= s.policy.attempts) throw e;
      const delayMs = retryDelay(s.policy, n, undefined, Math.random());
      s.retried({ what, attempt: n, delayMs, reason: e.message });
      await sleep(delayMs);
    }
  }
};

export const getManifest = async (s: Session, repository: string, reference: string): Promise<FetchedManifest> => {
  const what = manifestWhat(s.registry, repository, reference);
  const { res, bytes } = await getBody(s, repository, reference, what);
  const announced = res.headers['docker-content-digest'];
  const want: Digest | undefined = isDigest(reference) ? reference : isDigest(announced) ? announced : undefined;
  const digest = digestOf(bytes, want ? algorithmOf(want) : 'sha256');
  if (want !== undefined && digest !== want) {
    throw failure('DigestMismatch', `${what}: digest mismatch: expected ${want}, got ${digest}`, ExitCode.tool);
  }
  const type = (res.headers['content-type'] ?? '').split(';')[0]?.trim();
  const mediaType = type && type !== 'application/json' && type !== 'text/plain' && type !== 'application/octet-stream' ? type : undefined;
  return { bytes, digest: want === undefined || algorithmOf(want) === 'sha256' ? digest : digestOf(bytes), mediaType };
};

/** The digest a manifest has in the registry now, by HEAD, or undefined when the registry does not say. */
export const headManifest = async (s: Session, repository: string, reference: string): Promise<Digest | undefined> => {
  const what = manifestWhat(s.registry, repository, reference);
  const res = await s.expect({ method: 'HEAD', path: manifestPath(repository, reference), headers: { accept: MANIFEST_ACCEPT } }, [200], what);
  res.body.resume();
  const d = res.headers['docker-content-digest'];
  return isDigest(d) ? d : undefined;
};

export const putManifest = async (s: Session, repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest | undefined> => {
  const what = `push ${manifestWhat(s.registry, repository, reference)}`;
  const res = await s.expect(
    { method: 'PUT', path: manifestPath(repository, reference), headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: () => bytes },
    [200, 201, 202],
    what,
  );
  res.body.resume();
  const d = res.headers['docker-content-digest'];
  return isDigest(d) ? d : undefined;
};
