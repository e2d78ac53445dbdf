// ImageWriter: commits a config and its layers as an OCI image manifest in the store.
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import type { Failure } from '../failure.js';
import type { ImageConfig } from '../oci/config.js';
import type { Descriptor, Manifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { putBytes } from './blob.js';
import type { StorePaths } from './layout.js';

export interface WrittenImage {
  /** the manifest's descriptor: what index.json and the image JSON name */
  readonly descriptor: Descriptor;
  readonly manifest: Manifest;
  readonly configDescriptor: Descriptor;
}

/** Writes `config` and a manifest over `layers` (already in the store); nothing is tagged. */
export const writeImage = (
  p: StorePaths,
  config: ImageConfig,
  layers: readonly Descriptor[],
  annotations?: Readonly<Record<string, string>>,
): TE.TaskEither<Failure, WrittenImage> => {
  const configBytes = JSON.stringify(config);
  return pipe(
    putBytes(p, configBytes, {}, 'config'),
    TE.chain(({ digest, size }) => {
      const configDescriptor: Descriptor = { mediaType: MediaType.ociConfig, digest, size };
      const manifest: Manifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: configDescriptor,
        layers: [...layers],
        ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
      };
      return pipe(
        putBytes(p, JSON.stringify(manifest), {}, 'manifest'),
        TE.map((m) => ({ descriptor: { mediaType: MediaType.ociManifest, digest: m.digest, size: m.size }, manifest, configDescriptor })),
      );
    }),
  );
};
