// What a plain tsd-pull command line needs (cli.ts's fastPull), in one module that cli.ts imports
// on demand (start-up budget: bench/pull).
import * as TE from 'fp-ts/lib/TaskEither.js';
import type { Failure } from '../failure.js';
import { digestOf } from '../oci/digest.js';
import { currentProcess } from '../store/lock.js';
import { openExistingStore, openStore as createStore, type Store } from '../store/store.js';

/** openStore; a store whose layout is complete costs four stats, not six thread-pool round trips. */
export const openStore = (root?: string): TE.TaskEither<Failure, Store> => {
  const existing = openExistingStore(root);
  return existing !== undefined ? TE.right(existing) : createStore(root);
};
/**
 * What checking a registry's answer needs first, done while the registry answers the manifest's
 * request (cli.ts schedules it then, ~2 ms on loopback, when the process would only wait): the
 * first SHA-256 (node:crypto's hashing, cold) and this process's start time (a lease's name).
 */
export const warmForAnswer = (_store: Store): void => {
  digestOf('');
  currentProcess();
};
export { pull } from './pull.js';
export { progressReporter } from '../registry/progress.js';
export { decodeProgress } from '../registry/mode.js';
