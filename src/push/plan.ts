// Plan: what a push uploads, decided from documents already in the store, without I/O.
// Children before parents: every blob of a manifest, then the manifest (by digest), then an
// index over them, then the tag.
import type { Digest } from '../oci/digest.js';
import type { Descriptor, Manifest } from '../oci/manifest.js';

export interface ManifestUpload {
  readonly descriptor: Descriptor;
  readonly blobs: readonly Descriptor[];
}

export interface PushPlan {
  /** platform manifests with their blobs, in upload order */
  readonly manifests: readonly ManifestUpload[];
  /** the top document, pushed last under the tag: an index, or the one manifest */
  readonly top: Descriptor;
  /** every distinct blob, for progress and for parallel upload */
  readonly blobs: readonly Descriptor[];
}

export const blobsOf = (m: Manifest): Descriptor[] => [m.config, ...m.layers];

export const planPush = (top: Descriptor, manifests: readonly { descriptor: Descriptor; manifest: Manifest }[]): PushPlan => {
  const seen = new Set<Digest>();
  const blobs: Descriptor[] = [];
  for (const { manifest } of manifests) {
    for (const b of blobsOf(manifest)) {
      if (seen.has(b.digest)) continue;
      seen.add(b.digest);
      blobs.push(b);
    }
  }
  return { manifests: manifests.map(({ descriptor, manifest }) => ({ descriptor, blobs: blobsOf(manifest) })), top, blobs };
};

/** The byte ranges a chunked upload sends. Pure. */
export const chunksOf = (size: number, chunk: number): { start: number; length: number }[] => {
  const out: { start: number; length: number }[] = [];
  for (let start = 0; start < size; start += chunk) out.push({ start, length: Math.min(chunk, size - start) });
  return out;
};
