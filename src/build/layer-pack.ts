// LayerPack: a list of planned layer entries (header plus, for files, a way to open the bytes)
// packed as one tar stream and written as a layer blob in the same pass (store/layer-writer.ts).
// Used by COPY/ADD (bytes from the context) and RUN (bytes from the container's upper dir).
// With SOURCE_DATE_EPOCH, mtimes later than the epoch are clamped to it, as BuildKit does.
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { fromError, type Failure } from '../failure.js';
import { pipe } from 'fp-ts/lib/function.js';
import { DigestingStream } from '../oci/digest.js';
import { MediaType } from '../oci/media-type.js';
import { ingest } from '../store/blob.js';
import type { WrittenLayer } from '../store/layer-writer.js';
import { execa } from 'execa';
import type { Duplex } from 'node:stream';
import { GzipThread } from './gzip-thread.js';
import { ParallelGzip } from './parallel-gzip.js';
import type { StorePaths } from '../store/layout.js';

export interface LayerEntry {
  /** relative path inside the image, no leading slash */
  readonly path: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** seconds */
  readonly mtime: number;
  readonly size?: number;
  readonly linkname?: string;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly open?: () => Readable;
  /** the whole bytes at once, for small files (saves a stream per file) */
  readonly read?: () => Promise<Buffer>;
}

/** Files up to this size are read whole rather than streamed. */
const SMALL = 1 << 20;

/** A whiteout: the lower file `path` is deleted by this layer. */
export const whiteout = (path: string, mtime: number): LayerEntry => {
  const at = path.lastIndexOf('/');
  const name = at === -1 ? `.wh.${path}` : `${path.slice(0, at)}/.wh.${path.slice(at + 1)}`;
  return { path: name, type: 'file', mode: 0, uid: 0, gid: 0, mtime, size: 0 };
};

/** The marker that makes directory `path` opaque: nothing below it in lower layers shows. */
export const opaque = (path: string, mtime: number): LayerEntry => ({ path: `${path}/.wh..wh..opq`, type: 'file', mode: 0, uid: 0, gid: 0, mtime, size: 0 });

export const packEntries = (entries: readonly LayerEntry[], epoch?: number): Readable => {
  const pack = tar.pack();
  void (async () => {
    try {
      for (const e of entries) {
        const mtime = epoch !== undefined && e.mtime > epoch ? epoch : e.mtime;
        const name = e.type === 'directory' ? `${e.path}/` : e.path;
        const header: Partial<tar.Header> & { name: string } = {
          name,
          type: e.type,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          uname: '',
          gname: '',
          mtime: new Date(mtime * 1000),
          ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
          ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
          ...(e.type === 'file' ? { size: e.open ? (e.size ?? 0) : 0 } : {}),
        };
        if (e.type === 'file' && e.read && (e.size ?? 0) > 0 && (e.size ?? 0) <= SMALL) {
          const bytes = await e.read();
          if (bytes.length !== e.size) throw new Error(`${e.path}: changed while it was read`);
          await new Promise<void>((res, rej) => pack.entry(header, bytes, (err?: Error | null) => (err ? rej(err) : res())));
        } else if (e.type === 'file' && e.open && (e.size ?? 0) > 0) {
          const source = e.open();
          await new Promise<void>((res, rej) => {
            const sink = pack.entry(header, (err?: Error | null) => (err ? rej(err) : res()));
            pipeline(source, sink as unknown as NodeJS.WritableStream).catch(rej);
          });
        } else {
          // a file entry without a body would wait for one: give empty files an empty buffer
          await new Promise<void>((res, rej) =>
            e.type === 'file' ? pack.entry(header, Buffer.alloc(0), (err?: Error | null) => (err ? rej(err) : res())) : pack.entry(header, (err?: Error | null) => (err ? rej(err) : res())),
          );
        }
      }
      pack.finalize();
    } catch (e) {
      pack.destroy(e as Error);
    }
  })();
  return pack as unknown as Readable;
};

/**
 * Packs and writes a layer in one pass: the tar is hashed for its diff ID on the way into the
 * compressor; gzip runs on every core (parallel-gzip.ts).
 */
/** Layers past this size are gzipped at level 1: there compression is most of the build's time. */
export const FAST_GZIP_BYTES = 64 * 1024 * 1024;

/** gzip level 6 (Docker's) for ordinary layers, 1 for big ones; fixed by the content, so reproducible. */
export const gzipLevelFor = (entries: readonly LayerEntry[]): number =>
  entries.reduce((n, e) => n + (e.size ?? 0), 0) >= FAST_GZIP_BYTES ? 1 : 6;

/** How a build compresses its layers: gzip (default, every core), zstd (the zstd binary, every core), or none. */
export type BuildCompression = 'gzip' | 'zstd' | 'none';

// buffer: false: execa otherwise keeps a copy of all stdout (up to 100 MB, then a fatal error)
const zstd = (): Duplex => execa('zstd', ['-T0', '-3', '-c', '-q'], { stderr: 'ignore', lines: false, stripFinalNewline: false, buffer: false }).duplex();

/** Layers from this size are gzipped and hashed from a thread of their own (gzip-thread.ts). */
const GZIP_THREAD_BYTES = 16 * 1024 * 1024;

/**
 * The layer's stream as ingest gets it. ingest attaches its pipeline after an await, so an error
 * before that (a small file failing its digest check at once) was an unhandled 'error' event that
 * crashed tsd-build now and then; the pipeline still reports the stream's stored error.
 */
const heldForIngest = <S extends Readable>(s: S): S => s.on('error', () => undefined);

export const writeEntries = (p: StorePaths, entries: readonly LayerEntry[], compression: BuildCompression, epoch?: number): TE.TaskEither<Failure, WrittenLayer> => {
  const tarStream = packEntries(entries, epoch);
  const bytes = entries.reduce((n, e) => n + (e.size ?? 0), 0);
  const mediaType = compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
  if (compression === 'gzip' && bytes >= GZIP_THREAD_BYTES) {
    const body = tarStream.pipe(new GzipThread(gzipLevelFor(entries)));
    tarStream.on('error', (e) => body.destroy(e));
    return pipe(
      ingest(p, heldForIngest(body), {}, 'layer'),
      TE.chain(({ digest, size }) =>
        pipe(
          TE.tryCatch(() => body.diffId, fromError('hash layer')),
          TE.map((diffId) => ({ descriptor: { mediaType, digest, size }, diffId })),
        ),
      ),
    );
  }
  if (compression === 'none') {
    // the blob is the tar: its digest, which the store computes anyway, is the diff ID. (A Node
    // stream in between: ingest's pipeline does not see a tar-stream pack's error once destroyed.)
    const body = tarStream.pipe(new PassThrough());
    tarStream.on('error', (e) => body.destroy(e));
    return pipe(
      ingest(p, heldForIngest(body), {}, 'layer'),
      TE.map(({ digest, size }) => ({ descriptor: { mediaType, digest, size }, diffId: digest })),
    );
  }
  const diff = new DigestingStream();
  const body = tarStream.pipe(diff).pipe(compression === 'gzip' ? new ParallelGzip(gzipLevelFor(entries)) : zstd());
  // the tar's own error is the one to report: zstd, killed by it, fails with SIGPIPE first
  let packFailed: unknown;
  tarStream.on('error', (e) => {
    packFailed ??= e;
    body.destroy(e);
  });
  diff.on('error', (e) => body.destroy(e));
  return pipe(
    ingest(p, heldForIngest(body), {}, 'layer'),
    TE.mapLeft((f) => (packFailed === undefined ? f : fromError('write layer')(packFailed))),
    TE.map(({ digest, size }) => ({ descriptor: { mediaType, digest, size }, diffId: diff.digest() })),
  );
};
