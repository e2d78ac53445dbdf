// Rootfs: the real file-system capabilities of a RUN, from the snapshot module: each layer
// unpacked once into a snapshot keyed by its chain ID, overlays mounted with mount(8). The
// snapshot code is loaded on first use: a build whose RUNs all hit the cache never loads it.
import * as E from 'fp-ts/lib/Either.js';
import type { Digest } from '../oci/digest.js';
import type { StorePaths } from '../store/layout.js';
import type { Rootfs } from './run-step.js';

export const snapshotRootfs = (p: StorePaths): Rootfs => ({
  lowerdirs: async (layers) => {
    const { chainIds, unpackLayer } = await import('./miss.js');
    const ids = chainIds(layers.map((l) => l.diffId as Digest));
    const dirs: string[] = [];
    for (const [i, l] of layers.entries()) {
      const s = await unpackLayer(p, l.descriptor, l.diffId, ids[i]!)();
      if (E.isLeft(s)) return s;
      dirs.push(s.right.dir);
    }
    return E.right(dirs);
  },
  mount: async (lowerdirs, upper, work, target) => {
    const { mountOverlay } = await import('./miss.js');
    return mountOverlay({ lowerdirs, target, ...(upper !== undefined && work !== undefined ? { upperdir: upper, workdir: work } : {}) })();
  },
  unmount: async (target) => {
    const { unmount } = await import('./miss.js');
    await unmount(target)();
  },
});
