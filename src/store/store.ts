// Store: the handle every tool opens on the one shared on-disk store.
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import type { Failure } from '../failure.js';
import { initLayout, initLayoutSync, layoutComplete } from './index-file.js';
import { defaultRoot, paths, type StorePaths } from './layout.js';

export type Store = StorePaths;

/** Opens (creating where missing) the store at `root`, or the default root. */
export const openStore = (root?: string): TE.TaskEither<Failure, Store> => {
  const p = paths(root ?? defaultRoot());
  return pipe(
    initLayout(p),
    TE.map(() => p),
  );
};

/**
 * The store at `root` when its layout is complete already (four stats, synchronously), else
 * undefined (then openStore creates what is missing): for tools whose start-up is budgeted.
 */
export const openExistingStore = (root?: string): Store | undefined => {
  const p = paths(root ?? defaultRoot());
  return layoutComplete(p) ? p : undefined;
};

/**
 * openStore in synchronous calls: four stats for a complete layout, else initLayoutSync's few
 * small creates (no thread-pool round trips): for tools whose start-up is budgeted.
 */
export const openStoreSync = (root?: string): E.Either<Failure, Store> => {
  const p = paths(root ?? defaultRoot());
  if (layoutComplete(p)) return E.right(p);
  const made = initLayoutSync(p);
  return E.isLeft(made) ? made : E.right(p);
};
