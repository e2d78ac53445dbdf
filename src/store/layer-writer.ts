// LayerWriter: turns an uncompressed layer tar stream into a layer blob, hashing the tar (its
// diff ID) and the compressed bytes (its digest) in the same single pass.
import { createGzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import type { Failure } from '../failure.js';
import { DigestingStream, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { ingest } from './blob.js';
import type { StorePaths } from './layout.js';

export interface WrittenLayer {
  readonly descriptor: Descriptor;
  /** sha256 of the uncompressed tar: what the config's rootfs.diff_ids lists */
  readonly diffId: Digest;
}

export type LayerCompression = 'gzip' | 'none';

export const writeLayer = (p: StorePaths, tar: Readable, compression: LayerCompression = 'gzip'): TE.TaskEither<Failure, WrittenLayer> => {
  const diff = new DigestingStream();
  const body = compression === 'gzip' ? tar.pipe(diff).pipe(createGzip({ level: 6 })) : tar.pipe(diff);
  tar.on('error', (e) => body.destroy(e));
  // ingest attaches its pipeline after an await; an early error must wait for it, not crash
  body.on('error', () => undefined);
  return pipe(
    ingest(p, body, {}, 'layer'),
    TE.map(({ digest, size }) => ({
      descriptor: { mediaType: compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer, digest, size },
      diffId: diff.digest(),
    })),
  );
};
