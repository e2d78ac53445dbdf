// Layout: where the one shared store lives and the paths inside it. The store root is an OCI
// image layout (oci-layout, index.json, blobs/) that skopeo and umoci read directly; tsd keeps
// its own state in the other folders named here.
import { join } from 'node:path';
import { algorithmOf, hexOf, type Digest } from '../oci/digest.js';

export interface StoreLayout {
  readonly root: string;
}

/**
 * --root, else TSD_ROOT, else /var/lib/tsd for root, else $XDG_DATA_HOME/tsd or ~/.local/share/tsd
 * (node:os is loaded only then: start-up, bench/store).
 */
export const defaultRoot = (env: NodeJS.ProcessEnv = process.env): string => {
  if (env.TSD_ROOT) return env.TSD_ROOT;
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/lib/tsd';
  return join(env.XDG_DATA_HOME || join(process.getBuiltinModule('node:os').homedir(), '.local', 'share'), 'tsd');
};

export const paths = (root: string) => ({
  root,
  ociLayout: join(root, 'oci-layout'),
  index: join(root, 'index.json'),
  blobs: join(root, 'blobs'),
  blob: (d: Digest) => join(root, 'blobs', algorithmOf(d), hexOf(d)),
  blobDir: (algorithm: string) => join(root, 'blobs', algorithm),
  /** temp files of blobs being written: same file system as blobs/, so rename is atomic */
  ingest: join(root, 'ingest'),
  locks: join(root, 'locks'),
  lock: (name: string) => join(root, 'locks', `${name}.lock`),
  /** one file per live process that has written blobs not yet reachable from a tag */
  leases: join(root, 'leases'),
  /** unpacked layers, by chain ID (the run issue) */
  snapshots: join(root, 'snapshots'),
  containers: join(root, 'containers'),
  volumes: join(root, 'volumes'),
  /** build cache entries and RUN --mount=type=cache dirs (the build issue) */
  cache: join(root, 'cache'),
});

export type StorePaths = ReturnType<typeof paths>;
