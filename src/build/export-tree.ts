// ExportTree: an image's merged file system (what a container would see, before it runs), for
// `--output type=tar` (one tar on a stream) and `--output type=local,dest=DIR` (that tar
// extracted by the snapshot module's hardened extractor into DIR). Two passes over the layers,
// streaming: the first reads headers only and decides, with whiteouts and opaque directories
// applied, which layer's entry wins each path; the second copies the winning entries, bytes
// straight from the layer blob into the output tar. No whiteout reaches the output.
import { promises as fs } from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { fromError, failure, type Failure } from '../failure.js';
import type { Descriptor } from '../oci/manifest.js';
import { layerCompression } from '../oci/media-type.js';
import { decompressor } from '../snapshot/decompress.js';
import { extractLayer } from '../snapshot/extract.js';
import { createRootFs } from '../snapshot/rootfs-fs.js';
import { openBlob } from '../store/blob.js';
import type { StorePaths } from '../store/layout.js';
import { baseOf, cleanPath, parentOf } from './context.js';

/** path → [layer index, entry ordinal within that layer] of the entry that shows */
type Winners = Map<string, readonly [number, number]>;

const layerStream = (p: StorePaths, d: Descriptor): Readable => {
  const c = layerCompression(d.mediaType);
  if (c === undefined) throw new Error(`layer ${d.digest}: media type ${d.mediaType} is not supported`);
  const blob = openBlob(p, d.digest);
  const out = decompressor(c);
  blob.on('error', (e) => out.destroy(e));
  return blob.pipe(out);
};

/** Walks one layer's entries in order; `onEntry` decides what to do with each body. */
const walk = async (input: Readable, onEntry: (h: tar.Header, path: string | undefined, ordinal: number, body: Readable) => Promise<void>): Promise<void> => {
  const extract = tar.extract();
  let ordinal = 0;
  extract.on('entry', (h, stream, next) => {
    stream.on('error', () => undefined); // the pipeline reports a corrupt layer
    const k = ordinal++;
    onEntry(h, cleanPath(h.name), k, stream as unknown as Readable).then(() => next(), (e: Error) => next(e));
  });
  await pipeline(input, extract);
};

const drain = (s: Readable): Promise<void> =>
  new Promise((res) => {
    s.on('end', res);
    s.resume();
  });

const decide = async (p: StorePaths, layers: readonly Descriptor[]): Promise<Winners> => {
  const winners: Winners = new Map();
  for (const [li, d] of layers.entries()) {
    await walk(layerStream(p, d), async (h, path, ordinal, body) => {
      await drain(body);
      if (path === undefined || path === '') return;
      const base = baseOf(path);
      const parent = parentOf(path);
      if (base === '.wh..wh..opq') {
        // an opaque dir hides what lower layers had below it (this layer's own entries stay)
        const prefix = parent === '' ? '' : `${parent}/`;
        for (const [k, [l]] of winners) if (l < li && k.startsWith(prefix) && k !== parent) winners.delete(k);
        return;
      }
      if (base.startsWith('.wh.')) {
        const gone = parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`;
        winners.delete(gone);
        for (const k of [...winners.keys()]) if (k.startsWith(`${gone}/`)) winners.delete(k);
        return;
      }
      // a non-directory replaces a whole subtree
      if (h.type !== 'directory') for (const k of [...winners.keys()]) if (k.startsWith(`${path}/`)) winners.delete(k);
      winners.set(path, [li, ordinal]);
    });
  }
  return winners;
};

const writeTree = async (p: StorePaths, layers: readonly Descriptor[], winners: Winners, pack: tar.Pack): Promise<void> => {
  for (const [li, d] of layers.entries()) {
    await walk(layerStream(p, d), async (h, path, ordinal, body) => {
      const w = path === undefined ? undefined : winners.get(path);
      if (!w || w[0] !== li || w[1] !== ordinal) return drain(body);
      const header: tar.Header = { ...h, name: h.type === 'directory' ? `${path}/` : path! };
      if (h.type === 'link' && h.linkname) {
        // a hard link's target must be in the output; otherwise it cannot be made
        const target = cleanPath(h.linkname);
        if (target === undefined || !winners.has(target)) return drain(body);
        header.linkname = target;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        await drain(body);
        return new Promise<void>((res, rej) => pack.entry(header, (e?: Error | null) => (e ? rej(e) : res())));
      }
      await new Promise<void>((res, rej) => {
        const sink = pack.entry(header, (e?: Error | null) => (e ? rej(e) : res()));
        pipeline(body, sink as unknown as Writable).catch(rej);
      });
    });
  }
};

/** Writes the merged tree of `layers` as a tar to `to.out`, or extracts it into `to.dir`. */
export const exportTree = async (p: StorePaths, layers: readonly Descriptor[], to: { readonly out: Writable } | { readonly dir: string }): Promise<E.Either<Failure, void>> => {
  try {
    if ('dir' in to) {
      await fs.mkdir(to.dir, { recursive: true });
      if ((await fs.readdir(to.dir)).length > 0) return E.left(failure('Usage', `--output type=local,dest=${to.dir}: the directory is not empty`));
    }
    const winners = await decide(p, layers);
    const pack = tar.pack();
    const packed = (async () => {
      try {
        await writeTree(p, layers, winners, pack);
        pack.finalize();
      } catch (e) {
        pack.destroy(e as Error);
        throw e;
      }
    })();
    if ('out' in to) await Promise.all([pipeline(pack, to.out), packed]);
    else {
      await Promise.all([extractLayer(pack as unknown as Readable, createRootFs(to.dir), new PassThrough()), packed]);
    }
    return E.right(undefined);
  } catch (e) {
    return E.left(fromError(`write the image's files`)(e));
  }
};
