// What a plain tsd-pull command line needs (cli.ts's fastPull), in one module that cli.ts imports
// on demand (start-up budget: bench/pull).
import { digestOf } from '../oci/digest.js';
import { currentProcess } from '../store/lock.js';
import type { Store } from '../store/store.js';

/**
 * What checking a registry's answer needs first, done while the registry answers the manifest's
 * request (cli.ts schedules it then, ~2 ms on loopback, when the process would only wait): the
 * first SHA-256 (node:crypto's hashing, cold) and this process's start time (a lease's name).
 */
export const warmForAnswer = (_store: Store): void => {
  digestOf('');
  currentProcess();
};
// openStoreSync: a complete layout costs four stats; a new store, a few small synchronous creates
export { openStoreSync } from '../store/store.js';
export { pull } from './pull.js';
export { progressReporter } from '../registry/progress.js';
export { decodeProgress } from '../registry/mode.js';
