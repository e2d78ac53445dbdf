// Mode: the --progress value decoded (kept free of the argument parser so tsd-pull's fast path can use it).
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { ProgressMode } from './progress.js';

export const decodeProgress = (value: string | undefined, quiet: boolean): E.Either<Failure, ProgressMode> => {
  if (quiet) return E.right('quiet');
  const v = value ?? 'auto';
  return v === 'auto' || v === 'tty' || v === 'plain' || v === 'json' || v === 'quiet'
    ? E.right(v)
    : E.left(failure('InvalidOption', `--progress ${JSON.stringify(v)}: expected auto, tty, plain or json`));
};
