// ImageFiles: the files of an image (a stage's result or a store image) as a BuildContext, for
// `COPY --from` and `RUN --mount=type=bind,from=`. Its layers are read in order with whiteouts
// applied; the bytes of regular files go to one spool file, as for a context tar.
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { decompressor } from '../snapshot/decompress.js';
import { layerCompression } from '../oci/media-type.js';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import * as E from 'fp-ts/lib/Either.js';
import { fromError, type Failure } from '../failure.js';
import type { Descriptor } from '../oci/manifest.js';
import { openBlob } from '../store/blob.js';
import type { StorePaths } from '../store/layout.js';
import { baseOf, cleanPath, parentOf, type BuildContext, type ContextEntry } from './context.js';

export const imageFiles = async (p: StorePaths, layers: readonly Descriptor[], dir: string): Promise<E.Either<Failure, BuildContext>> => {
  await fs.mkdir(dir, { recursive: true });
  const spoolPath = join(dir, `image-${process.pid}-${Math.random().toString(16).slice(2)}.spool`);
  const spool = createWriteStream(spoolPath);
  let offset = 0;
  const entries = new Map<string, ContextEntry>();
  const dropUnder = (path: string) => {
    for (const k of [...entries.keys()]) if (k.startsWith(`${path}/`)) entries.delete(k);
  };
  // a write that fails (disk full) stops the layer being read: the error reaches its pipeline
  let spoolFailed: Error | undefined;
  let reading: { destroy: (e: Error) => void } | undefined;
  spool.on('error', (e) => {
    spoolFailed ??= e;
    reading?.destroy(e);
  });
  try {
    for (const d of layers) {
      if (spoolFailed) throw spoolFailed;
      const extract = tar.extract();
      reading = extract;
      extract.on('entry', (h, stream, next) => {
        // a corrupt layer destroys the entry with the error; the pipeline below reports it (an
        // entry stream with no listener would take the process down with a stack trace)
        stream.on('error', () => undefined);
        const path = cleanPath(h.name);
        const skip = () => {
          stream.on('end', () => next());
          stream.resume();
        };
        if (path === undefined || path === '') return skip();
        const base = baseOf(path);
        if (base === '.wh..wh..opq') {
          dropUnder(parentOf(path));
          return skip();
        }
        if (base.startsWith('.wh.')) {
          const gone = parentOf(path) === '' ? base.slice(4) : `${parentOf(path)}/${base.slice(4)}`;
          entries.delete(gone);
          dropUnder(gone);
          return skip();
        }
        const meta = { path, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0 };
        if (h.type === 'directory') {
          entries.set(path, { ...meta, type: 'directory', size: 0 });
          return skip();
        }
        dropUnder(path);
        if (h.type === 'symlink') {
          entries.set(path, { ...meta, type: 'symlink', size: 0, linkname: h.linkname ?? '' });
          return skip();
        }
        if (h.type === 'link') {
          const target = entries.get(cleanPath(h.linkname ?? '') ?? '');
          if (target?.type === 'file') entries.set(path, { ...target, ...meta, type: 'file' });
          return skip();
        }
        if (h.type !== 'file' && h.type !== 'contiguous-file') return skip();
        const start = offset;
        void (async () => {
          try {
            for await (const data of stream as AsyncIterable<Buffer>) {
              offset += data.length;
              if (!spool.write(data)) await once(spool, 'drain');
            }
            entries.set(path, { ...meta, type: 'file', size: offset - start, offset: start, sha256: `layer:${d.digest}:${path}` });
            next();
          } catch (e) {
            next(e as Error);
          }
        })();
      });
      const blob = openBlob(p, d.digest);
      await pipeline(blob, decompressor(layerCompression(d.mediaType) ?? 'none'), extract);
    }
    await new Promise<void>((res, rej) => spool.end((e?: Error | null) => (e ? rej(e) : res())));
    if (spoolFailed) throw spoolFailed;
  } catch (e) {
    spool.destroy();
    await fs.unlink(spoolPath).catch(() => undefined);
    return E.left(fromError('read image files')(spoolFailed ?? e));
  }
  const children = new Map<string, string[]>();
  if (!entries.has('')) entries.set('', { path: '', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
  for (const path of [...entries.keys()]) {
    for (let q = path; q !== ''; q = parentOf(q)) {
      const parent = parentOf(q);
      if (!entries.has(parent)) entries.set(parent, { path: parent, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
    }
  }
  for (const path of entries.keys()) {
    if (path === '') continue;
    const list = children.get(parentOf(path)) ?? [];
    list.push(path);
    children.set(parentOf(path), list);
  }
  for (const l of children.values()) l.sort();
  return E.right({
    entries,
    children,
    open: (e) => (e.size === 0 ? createReadStream('/dev/null') : createReadStream(spoolPath, { start: e.offset ?? 0, end: (e.offset ?? 0) + e.size - 1 })),
    dispose: () => fs.unlink(spoolPath).catch(() => undefined),
  });
};
