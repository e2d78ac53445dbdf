// Save: images of the store as one tar on a stream. Planned first (which blobs, which names,
// the documents that list them), then written: each blob is streamed from the store, verified
// as it is read, straight into the tar, through bounded buffers (at most 32 MB in flight): no
// blob is ever held whole in memory.
//
// Format 'docker' (the default) is what `docker save` writes since Docker 25: an OCI layout
// (oci-layout, index.json, blobs/) plus Docker's manifest.json naming the same blob files, so
// `docker load`, `podman load` and every OCI tool read it. Format 'oci' leaves manifest.json out.
// A multi-platform image is saved as the manifest of one platform (the host's by default).
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import tar from 'tar-stream';
import { fromError, type Failure } from '../failure.js';
import { algorithmOf, hexOf, type Digest } from '../oci/digest.js';
import type { Descriptor, Index, Platform } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { digestMismatch } from './blob.js';
import { archiveAnnotations, repoTag, type DockerArchiveItem } from './docker-archive.js';
import { resolveImage } from './image.js';
import { OCI_LAYOUT } from './index-file.js';
import type { StorePaths } from './layout.js';

export type ArchiveFormat = 'docker' | 'oci';

/** What a save writes, made without writing anything. */
export interface SavePlan {
  /** small documents, written first so a streaming reader knows what follows */
  readonly documents: readonly { readonly name: string; readonly bytes: Buffer }[];
  /** every blob once: manifests and configs first, then layers */
  readonly blobs: readonly Descriptor[];
}

export const blobEntryName = (d: Digest): string => `blobs/${algorithmOf(d)}/${hexOf(d)}`;

interface Chosen {
  readonly ref?: string;
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/** Plans the archive of `chosen` images (pure). */
export const planArchive = (chosen: readonly Chosen[], format: ArchiveFormat): SavePlan => {
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: chosen.map((c) => {
      const annotations = archiveAnnotations(c.ref);
      return { mediaType: c.manifest.mediaType, digest: c.manifest.digest, size: c.manifest.size, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) };
    }),
  };
  const items: DockerArchiveItem[] = [];
  for (const c of chosen) {
    const tag = repoTag(c.ref);
    const same = items.findIndex((i) => i.Config === blobEntryName(c.config.digest) && i.Layers.join() === c.layers.map((l) => blobEntryName(l.digest)).join());
    if (same >= 0) {
      const prev = items[same]!;
      items[same] = { ...prev, RepoTags: tag !== undefined && !prev.RepoTags.includes(tag) ? [...prev.RepoTags, tag] : prev.RepoTags };
    } else {
      items.push({ Config: blobEntryName(c.config.digest), RepoTags: tag !== undefined ? [tag] : [], Layers: c.layers.map((l) => blobEntryName(l.digest)) });
    }
  }
  const seen = new Set<string>();
  const blobs: Descriptor[] = [];
  const add = (d: Descriptor) => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    blobs.push(d);
  };
  for (const c of chosen) add(c.manifest);
  for (const c of chosen) add(c.config);
  for (const c of chosen) c.layers.forEach(add);
  const documents = [
    { name: 'oci-layout', bytes: Buffer.from(OCI_LAYOUT) },
    { name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) },
    ...(format === 'docker' ? [{ name: 'manifest.json', bytes: Buffer.from(JSON.stringify(items)) }] : []),
  ];
  return { documents, blobs };
};

/** Resolves each reference to one platform's manifest and plans their archive. */
export const planSave = (p: StorePaths, refs: readonly string[], format: ArchiveFormat, platform?: Platform): TE.TaskEither<Failure, SavePlan> => async () => {
  const chosen: Chosen[] = [];
  for (const input of refs) {
    const img = await resolveImage(p, input, platform)();
    if (E.isLeft(img)) return img;
    const r = img.right;
    chosen.push({ ...(r.ref !== undefined ? { ref: r.ref } : {}), manifest: r.manifestDescriptor, config: r.manifest.config, layers: r.manifest.layers });
  }
  return E.right(planArchive(chosen, format));
};

const MTIME = new Date(0);
/** Blobs are read in large chunks: fewer trips through the thread pool and the tar packer. */
const CHUNK = 4 * 1024 * 1024;

/** Passes a blob's bytes on and fails at their end if they do not hash to `digest`. */
const verifying = (digest: Digest): Transform => {
  const hash = createHash(algorithmOf(digest));
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const actual = `${algorithmOf(digest)}:${hash.digest('hex')}` as Digest;
      done(actual === digest ? null : (digestMismatch(`blob ${digest}`, digest, actual) as unknown as Error));
    },
  });
};

const putEntry = (pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], body?: Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    const done = (e?: Error | null) => (e ? reject(e) : resolve());
    if (body === undefined) pack.entry(header, done);
    else pack.entry(header, body, done);
  });

/** Writes a planned archive to `out`, streaming and verifying each blob. */
export const writeArchive = (p: StorePaths, plan: SavePlan, out: Writable): TE.TaskEither<Failure, void> => async () => {
  // a deep buffer lets the next blob read proceed while the previous chunk is still being written
  const pack = tar.pack({ highWaterMark: 32 * 1024 * 1024 });
  const piped = pipeline(pack, out);
  piped.catch(() => undefined);
  const entries = (async () => {
    for (const d of plan.documents) await putEntry(pack, { name: d.name, mode: 0o644, mtime: MTIME, size: d.bytes.length }, d.bytes);
    const dirs = new Set(plan.blobs.map((b) => `blobs/${algorithmOf(b.digest)}/`));
    await putEntry(pack, { name: 'blobs/', type: 'directory', mode: 0o755, mtime: MTIME });
    for (const dir of dirs) await putEntry(pack, { name: dir, type: 'directory', mode: 0o755, mtime: MTIME });
    for (const b of plan.blobs) {
      const size = (await fs.stat(p.blob(b.digest))).size;
      await new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ name: blobEntryName(b.digest), mode: 0o644, mtime: MTIME, size }, (e) => (e ? reject(e) : resolve()));
        pipeline(createReadStream(p.blob(b.digest), { highWaterMark: CHUNK }), verifying(b.digest), entry as unknown as Writable).catch((e) => {
          pack.destroy(e);
          reject(e);
        });
      });
    }
    pack.finalize();
  })();
  try {
    await entries;
    await piped;
    return E.right(undefined);
  } catch (e) {
    pack.destroy();
    return E.left(fromError('save')(e));
  }
};

export const save = (p: StorePaths, refs: readonly string[], out: Writable, format: ArchiveFormat = 'docker', platform?: Platform): TE.TaskEither<Failure, SavePlan> => async () => {
  const plan = await planSave(p, refs, format, platform)();
  if (E.isLeft(plan)) return plan;
  const written = await writeArchive(p, plan.right, out)();
  return E.isLeft(written) ? written : plan;
};
