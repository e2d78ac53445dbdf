// Store: the handle every tool opens on the one shared on-disk store.
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import type { Failure } from '../failure.js';
import { initLayoutSync, layoutComplete } from './index-file.js';
import { defaultRoot, paths, type StorePaths } from './layout.js';

export type Store = StorePaths;

/**
 * Opens (creating where missing) the store at `root`, or the default root: four stats for a
 * complete layout, else initLayoutSync's few small creates (no thread-pool round trips).
 */
export const openStoreSync = (root?: string): E.Either<Failure, Store> => {
  const p = paths(root ?? defaultRoot());
  if (layoutComplete(p)) return E.right(p);
  const made = initLayoutSync(p);
  return E.isLeft(made) ? made : E.right(p);
};

/** openStoreSync for the TaskEither pipelines. */
export const openStore = (root?: string): TE.TaskEither<Failure, Store> => TE.fromEither(openStoreSync(root));
