// Blobs: HEAD, GET (with a Range to resume) and uploads of blobs in one repository.
// Uploads follow the distribution spec: POST opens a session (or mounts the blob from another
// repository of the same registry), then one PUT with the whole body, or PATCHes of chunks and
// a closing PUT with the digest. The Location the registry returns is used as given.
import type { Readable } from 'node:stream';
import { ExitCode, failure } from '../failure.js';
import type { Digest } from '../oci/digest.js';
import type { HttpResponse } from './http.js';
import type { Session } from './session.js';

export const blobWhat = (s: Session, repository: string, digest: Digest): string => `blob ${digest} of ${s.registry}/${repository}`;

/** The blob's size when the repository has it, undefined when it does not. */
export const headBlob = async (s: Session, repository: string, digest: Digest): Promise<number | undefined> => {
  const res = await s.expect({ method: 'HEAD', path: `/v2/${repository}/blobs/${digest}` }, [200, 404], blobWhat(s, repository, digest));
  res.body.resume();
  return res.status === 200 ? Number(res.headers['content-length'] ?? NaN) : undefined;
};

/** GET of the blob from `offset`; answers 200 (whole blob) or 206 (the rest from offset). */
export const getBlob = (s: Session, repository: string, digest: Digest, offset: number): Promise<HttpResponse> =>
  s.expect(
    { method: 'GET', path: `/v2/${repository}/blobs/${digest}`, headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, bare: true },
    [200, 206],
    blobWhat(s, repository, digest),
  );

const locationOf = (s: Session, res: HttpResponse, what: string): URL => {
  const loc = res.headers.location;
  if (!loc) throw failure('RegistryError', `${what}: the registry sent no upload Location`, ExitCode.tool);
  return new URL(loc, s.url('/'));
};

const pathOf = (u: URL): string => `${u.pathname}${u.search}`;

const withQuery = (u: URL, key: string, value: string): string => {
  const next = new URL(u);
  next.searchParams.set(key, value);
  return pathOf(next);
};

/** Opens an upload; with `from`, asks to mount the blob from that repository: 'mounted' when it did. */
export const startUpload = async (s: Session, repository: string, digest: Digest, from?: string): Promise<'mounted' | URL> => {
  const what = `upload ${blobWhat(s, repository, digest)}`;
  const query = from !== undefined ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : '';
  const res = await s.expect({ method: 'POST', path: `/v2/${repository}/blobs/uploads/${query}`, headers: { 'content-length': '0' } }, [201, 202], what);
  res.body.resume();
  return res.status === 201 ? 'mounted' : locationOf(s, res, what);
};

/** Sends the whole blob in one PUT. */
export const putBlob = async (s: Session, repository: string, digest: Digest, location: URL, size: number, body: () => Readable): Promise<void> => {
  const what = `upload ${blobWhat(s, repository, digest)}`;
  const res = await s.expect(
    { method: 'PUT', path: withQuery(location, 'digest', digest), headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body },
    [201, 204],
    what,
  );
  res.body.resume();
};

/** Sends bytes [start, start+length) as one PATCH; returns where the next chunk goes. */
export const patchChunk = async (
  s: Session,
  repository: string,
  digest: Digest,
  location: URL,
  start: number,
  length: number,
  body: () => Readable,
): Promise<URL> => {
  const what = `upload ${blobWhat(s, repository, digest)} (bytes ${start}-${start + length - 1})`;
  const res = await s.expect(
    {
      method: 'PATCH',
      path: pathOf(location),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), 'content-range': `${start}-${start + length - 1}` },
      body,
    },
    [202, 204],
    what,
  );
  res.body.resume();
  return locationOf(s, res, what);
};

/** Closes a chunked upload with the digest. */
export const finishUpload = async (s: Session, repository: string, digest: Digest, location: URL): Promise<void> => {
  const what = `upload ${blobWhat(s, repository, digest)}`;
  const res = await s.expect({ method: 'PUT', path: withQuery(location, 'digest', digest), headers: { 'content-length': '0' } }, [201, 204], what);
  res.body.resume();
};
