// What a plain tsd-pull command line needs (cli.ts's fastPull), in one module that cli.ts imports
// on demand (start-up budget: bench/pull).
import * as TE from 'fp-ts/lib/TaskEither.js';
import type { Failure } from '../failure.js';
import { openExistingStore, openStore as createStore, type Store } from '../store/store.js';

/** openStore; a store whose layout is complete costs four stats, not six thread-pool round trips. */
export const openStore = (root?: string): TE.TaskEither<Failure, Store> => {
  const existing = openExistingStore(root);
  return existing !== undefined ? TE.right(existing) : createStore(root);
};
export { pull } from './pull.js';
export { progressReporter } from '../registry/progress.js';
export { decodeProgress } from '../registry/mode.js';
