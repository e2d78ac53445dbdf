// Media types of the OCI image spec and their Docker schema 2 equivalents.
export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export const isIndexType = (t: string | undefined): boolean =>
  t === MediaType.ociIndex || t === MediaType.dockerManifestList;
export const isManifestType = (t: string | undefined): boolean =>
  t === MediaType.ociManifest || t === MediaType.dockerManifest;

export type Compression = 'gzip' | 'zstd' | 'none';

/** How a layer's bytes are compressed, or undefined for a type that is not a layer tar. */
export const layerCompression = (t: string): Compression | undefined => {
  if (t.endsWith('+gzip') || t.endsWith('.tar.gzip')) return 'gzip';
  if (t.endsWith('+zstd')) return 'zstd';
  if (t === MediaType.ociLayer || t === MediaType.ociLayerNondistributable || t === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  return undefined;
};

export const isForeignLayer = (t: string): boolean => t.includes('nondistributable') || t.includes('foreign');
