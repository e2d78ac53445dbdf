// Rootfs: the real file-system capabilities of a RUN, from the snapshot module: each layer
// unpacked once into a snapshot keyed by its chain ID, overlays mounted with mount(8).
import * as E from 'fp-ts/lib/Either.js';
import type { Digest } from '../oci/digest.js';
import { chainIds } from '../snapshot/chain-id.js';
import { mountOverlay, unmount } from '../snapshot/overlay.js';
import { unpackLayer } from '../snapshot/snapshot.js';
import type { StorePaths } from '../store/layout.js';
import type { Rootfs } from './run-step.js';

export const snapshotRootfs = (p: StorePaths): Rootfs => ({
  lowerdirs: async (layers) => {
    const ids = chainIds(layers.map((l) => l.diffId as Digest));
    const dirs: string[] = [];
    for (const [i, l] of layers.entries()) {
      const s = await unpackLayer(p, l.descriptor, l.diffId, ids[i]!)();
      if (E.isLeft(s)) return s;
      dirs.push(s.right.dir);
    }
    return E.right(dirs);
  },
  mount: (lowerdirs, upper, work, target) =>
    mountOverlay({ lowerdirs, target, ...(upper !== undefined && work !== undefined ? { upperdir: upper, workdir: work } : {}) })(),
  unmount: async (target) => {
    await unmount(target)();
  },
});
