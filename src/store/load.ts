// Load: reads an image archive (docker-archive or OCI, plain or gzip) from a stream into the
// store. The archive is hostile until checked: every file entry is streamed into a temp file in
// ingest/ while it is hashed (nothing is written by its entry name), entry names that leave the
// archive are refused, and only when the whole archive has been read and every digest, size
// and diff ID matches what the archive's own documents claim are the blobs renamed to their
// final names and the images named. A failure at any point leaves no new blob and no new name.
import { createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import tar from 'tar-stream';
import { ExitCode, failure, fromError, isFailure, type Failure } from '../failure.js';
import { imageMessage, type ImageMessage } from '../message.js';
import { decodeImageConfig } from '../oci/config.js';
import { DigestingStream, isDigest, type Digest } from '../oci/digest.js';
import { decodeIndex, decodeManifestBytes, MAX_MANIFEST_SIZE, type Descriptor, type Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { hostPlatform, platformMatches } from '../oci/platform.js';
import { commitTemp, newTempPath, putBytes } from './blob.js';
import { DiffIdTap, plainTar } from './decompress.js';
import { cleanEntryName, decodeDockerManifest, linkTarget, normalizeName, ociEntryName } from './docker-archive.js';
import { fsyncPath } from './durable.js';
import { addUntagged, tagDescriptor } from './image.js';
import type { StorePaths } from './layout.js';

/** A file entry of the archive, held in a temp file until it is committed. */
interface Staged {
  readonly tmp: string;
  readonly digest: Digest;
  readonly size: number;
  /** digest of the uncompressed bytes where the entry is gzip */
  readonly diffId?: Digest;
  readonly gzip: boolean;
}

const DOCUMENTS = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);

class Staging {
  readonly files = new Map<string, Staged>();
  readonly links = new Map<string, string>();
  readonly documents = new Map<string, Buffer>();
  readonly temps: string[] = [];

  /** The staged file an entry name stands for, following links. */
  file(name: string): Staged | undefined {
    let n = name;
    for (let i = 0; i < 16; i++) {
      const f = this.files.get(n);
      if (f) return f;
      const next = this.links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    return undefined;
  }
}

const invalid = (why: string): Failure => failure('InvalidArchive', `archive: ${why}`);

const readAll = async (stream: Readable, max: number, name: string): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > max) throw invalid(`${name} is larger than ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
};

/** Reads every entry of the archive into `staging` (temp files and small documents). */
const stage = async (p: StorePaths, input: Readable, staging: Staging): Promise<void> => {
  await fs.mkdir(p.ingest, { recursive: true });
  const extract = tar.extract();
  // iterate before any await: entries emitted before the iterator listens would be lost
  const iterator = extract[Symbol.asyncIterator]();
  const feeding = pipeline(plainTar(input, 'archive'), extract);
  feeding.catch(() => undefined);
  let entries = 0;
  for await (const entry of { [Symbol.asyncIterator]: () => iterator }) {
    entries++;
    const h = entry.header;
    const cleaned = cleanEntryName(h.name);
    if (E.isLeft(cleaned)) throw cleaned.left;
    const name = cleaned.right;
    if (staging.files.has(name) || staging.links.has(name) || staging.documents.has(name)) throw invalid(`two entries named ${JSON.stringify(name)}`);
    if (h.type === 'directory') {
      entry.resume();
      continue;
    }
    if (h.type === 'symlink' || h.type === 'link') {
      const target = linkTarget(name, h.linkname ?? '', h.type);
      if (E.isLeft(target)) throw target.left;
      staging.links.set(name, target.right);
      entry.resume();
      continue;
    }
    if (h.type !== 'file' && h.type !== 'contiguous-file') throw invalid(`entry ${JSON.stringify(name)} is a ${h.type}, not a file`);
    if (DOCUMENTS.has(name)) {
      staging.documents.set(name, await readAll(entry as unknown as Readable, MAX_MANIFEST_SIZE, name));
      continue;
    }
    const tmp = newTempPath(p, 'load');
    staging.temps.push(tmp);
    const hasher = new DigestingStream();
    // an OCI archive names blobs by digest: a diff ID is only needed for docker-archive layers
    const tap = staging.documents.has('index.json') && staging.documents.has('oci-layout') ? undefined : new DiffIdTap();
    if (tap) await pipeline(entry as unknown as Readable, hasher, tap, createWriteStream(tmp, { flags: 'wx', highWaterMark: 16 * 1024 * 1024 }));
    else await pipeline(entry as unknown as Readable, hasher, createWriteStream(tmp, { flags: 'wx', highWaterMark: 16 * 1024 * 1024 }));
    const diffId = tap?.diffId();
    staging.files.set(name, { tmp, digest: hasher.digest(), size: hasher.size, gzip: tap?.kind === 'gzip', ...(diffId ? { diffId } : {}) });
  }
  await feeding;
  if (entries === 0) throw invalid('empty input, expected a tar (docker save or OCI archive)');
};

/** An image ready to be committed: blobs to move into place, then a descriptor to name. */
interface Verified {
  readonly blobs: Map<Digest, Staged>;
  readonly images: { readonly descriptor: Descriptor; readonly names: readonly string[]; readonly manifestBytes?: Buffer; readonly configDigest: Digest }[];
}

const readStaged = async (s: Staged, what: string): Promise<Buffer> => {
  if (s.size > MAX_MANIFEST_SIZE * 16) throw invalid(`${what} is larger than ${MAX_MANIFEST_SIZE * 16} bytes`);
  return fs.readFile(s.tmp);
};

const must = <A>(e: E.Either<Failure, A>, context: string): A => {
  if (E.isLeft(e)) throw invalid(`${context}: ${e.left.message}`);
  return e.right;
};

/** OCI: every blob entry must hash to its name; index.json's closure must be whole and sized right. */
const verifyOci = async (staging: Staging): Promise<Verified> => {
  const blobName = (digest: Digest): string => `blobs/${digest.replace(':', '/')}`;
  const blob = (d: Descriptor, from: string): Staged => {
    const s = staging.file(blobName(d.digest));
    if (s === undefined) throw invalid(`${from} names blob ${d.digest}, which is not in the archive`);
    if (s.digest !== d.digest) throw failure('DigestMismatch', `archive: entry blobs/${d.digest.replace(':', '/')}: digest mismatch: content hashes to ${s.digest}`);
    if (s.size !== d.size) throw failure('SizeMismatch', `archive: blob ${d.digest}: ${from} says ${d.size} bytes, the archive holds ${s.size}`);
    return s;
  };
  const index = must(decodeIndex(JSON.parse(staging.documents.get('index.json')!.toString('utf8'))), 'index.json');
  const blobs = new Map<Digest, Staged>();
  const images: Verified['images'][number][] = [];
  /** Verifies what `d` reaches; returns the descriptor to name and its config digest. */
  const follow = async (d: Descriptor, from: string, depth: number): Promise<{ entry: Descriptor; config: Digest | undefined }> => {
    const s = blob(d, from);
    blobs.set(d.digest, s);
    const m = must(decodeManifestBytes(await readStaged(s, `manifest ${d.digest}`), d.mediaType), `manifest ${d.digest}`);
    if (m.kind === 'index') {
      if (depth > 4) throw invalid(`indexes nested too deep at ${d.digest}`);
      const present = m.index.manifests.filter((c) => staging.file(blobName(c.digest)) !== undefined);
      if (present.length === 0) throw invalid(`index ${d.digest}: none of its manifests is in the archive`);
      if (present.length < m.index.manifests.length) {
        // Docker saves only the host's platform of a multi-platform image: name that manifest
        blobs.delete(d.digest);
        const host = hostPlatform();
        const pick = present.find((c) => c.platform !== undefined && platformMatches(host, c.platform)) ?? present[0]!;
        return follow(pick, `index ${d.digest}`, depth + 1);
      }
      let config: Digest | undefined;
      for (const child of m.index.manifests) config ??= (await follow(child, `index ${d.digest}`, depth + 1)).config;
      return { entry: d, config };
    }
    const cfg = blob(m.manifest.config, `manifest ${d.digest}`);
    blobs.set(m.manifest.config.digest, cfg);
    const config = must(decodeImageConfig(await readStaged(cfg, `config ${cfg.digest}`)), `config ${cfg.digest}`);
    if (config.rootfs.diff_ids.length !== m.manifest.layers.length) throw invalid(`manifest ${d.digest} has ${m.manifest.layers.length} layers, its config ${config.rootfs.diff_ids.length} diff_ids`);
    for (const l of m.manifest.layers) blobs.set(l.digest, blob(l, `manifest ${d.digest}`));
    return { entry: d, config: m.manifest.config.digest };
  };
  for (const d of index.manifests) {
    const { entry, config } = await follow(d, 'index.json', 0);
    const name = ociEntryName(d);
    images.push({ descriptor: { mediaType: entry.mediaType, digest: entry.digest, size: entry.size, ...(entry.platform ? { platform: entry.platform } : {}) }, names: name ? [name] : [], configDigest: config ?? entry.digest });
  }
  if (images.length === 0) throw invalid('index.json lists no image');
  return { blobs, images };
};

/** docker-archive: the config's diff_ids must be the (uncompressed) digests of the layer files. */
const verifyDocker = async (staging: Staging): Promise<Verified> => {
  const items = must(decodeDockerManifest(staging.documents.get('manifest.json')!), 'manifest.json');
  const blobs = new Map<Digest, Staged>();
  const images: Verified['images'][number][] = [];
  for (const [i, item] of items.entries()) {
    const entry = (path: string, what: string): Staged => {
      const name = must(cleanEntryName(path), `manifest.json[${i}].${what}`);
      const s = staging.file(name);
      if (s === undefined) throw invalid(`manifest.json[${i}] names ${JSON.stringify(path)}, which is not in the archive`);
      return s;
    };
    const cfg = entry(item.Config, 'Config');
    const config = must(decodeImageConfig(await readStaged(cfg, item.Config)), item.Config);
    const ids = config.rootfs.diff_ids;
    if (ids.length !== item.Layers.length) throw invalid(`manifest.json[${i}] lists ${item.Layers.length} layers, its config ${ids.length} diff_ids`);
    const layers: Descriptor[] = item.Layers.map((path, k) => {
      const s = entry(path, `Layers[${k}]`);
      const diffId = s.gzip ? s.diffId : s.digest;
      if (diffId === undefined) throw invalid(`layer ${path}: compressed in a way tsd cannot verify (only plain and gzip tars)`);
      if (diffId !== ids[k]) throw failure('DigestMismatch', `archive: layer ${path}: digest mismatch: the config's diff_id is ${ids[k]}, the layer hashes to ${diffId}`);
      blobs.set(s.digest, s);
      return { mediaType: s.gzip ? MediaType.ociLayerGzip : MediaType.ociLayer, digest: s.digest, size: s.size };
    });
    blobs.set(cfg.digest, cfg);
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size }, layers };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const names = item.RepoTags.map((t) => {
      const n = normalizeName(t);
      if (n === undefined) throw invalid(`manifest.json[${i}].RepoTags: ${JSON.stringify(t)} is not an image name`);
      return n;
    });
    images.push({ descriptor: { mediaType: MediaType.ociManifest, digest: 'sha256:0' as Digest, size: manifestBytes.length }, names, manifestBytes, configDigest: cfg.digest });
  }
  return { blobs, images };
};


/** Loads an archive; returns one image message per name (or per unnamed image). */
export const load = (p: StorePaths, input: Readable): TE.TaskEither<Failure, readonly ImageMessage[]> => async () => {
  const staging = new Staging();
  try {
    await stage(p, input, staging);
    let verified: Verified;
    if (staging.documents.has('index.json') && staging.documents.has('oci-layout')) verified = await verifyOci(staging);
    else if (staging.documents.has('manifest.json')) verified = await verifyDocker(staging);
    else throw invalid('neither manifest.json nor an OCI index.json: not a docker save or OCI archive');
    for (const [digest, s] of verified.blobs) {
      await fsyncPath(s.tmp);
      // one file may stand for a digest twice (links): commit it once, then keep a copy
      const done = await fs.stat(p.blob(digest)).then(() => true, () => false);
      if (done) continue;
      await commitTemp(p, s.tmp, digest);
    }
    const out: ImageMessage[] = [];
    for (const img of verified.images) {
      let descriptor = img.descriptor;
      if (img.manifestBytes !== undefined) {
        const m = await putBytes(p, img.manifestBytes, {}, 'manifest')();
        if (E.isLeft(m)) return m;
        descriptor = { ...descriptor, digest: m.right.digest, size: m.right.size };
      }
      if (!isDigest(descriptor.digest)) throw invalid('internal: manifest digest missing');
      const message = (ref?: string) => imageMessage({ ...(ref ? { ref } : {}), digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size, config: img.configDigest });
      if (img.names.length === 0) {
        const r = await addUntagged(p, descriptor)();
        if (E.isLeft(r)) return r;
        out.push(message());
      }
      for (const name of img.names) {
        const r = await tagDescriptor(p, descriptor, name)();
        if (E.isLeft(r)) return r;
        out.push(message(name));
      }
    }
    return E.right(out);
  } catch (e) {
    if (isFailure(e)) return E.left(e.exitCode === ExitCode.ok ? { ...e, exitCode: ExitCode.user } : e);
    if (e instanceof SyntaxError) return E.left(invalid(`a document is not valid JSON: ${e.message}`));
    // tar-stream's own errors (a bad header, a truncated entry) carry no errno code
    if (e instanceof Error && (e as NodeJS.ErrnoException).code === undefined) return E.left(invalid(`not a readable tar: ${e.message}`));
    return E.left(fromError('load')(e));
  } finally {
    await Promise.all(staging.temps.map((t) => fs.unlink(t).catch(() => undefined)));
  }
};
