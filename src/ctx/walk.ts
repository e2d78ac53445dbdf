// Walk: the files of a context directory in a fixed order (each directory's names sorted, depth
// first), with .dockerignore applied. An excluded directory is entered only when a `!` pattern
// (or a path that must always be sent) may re-include something below it; its own entry is then
// sent only before the first child that is sent. Symlinks are never followed.
// The walk is synchronous on purpose: one lstat per name, no thread-pool round trip, which is
// what keeps tsd-ctx near tar's speed on trees of many small files.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { fromError, type Failure } from '../failure.js';
import { isExcluded, mayReinclude, type Pattern } from './ignore.js';

export interface WalkEntry {
  /** relative, slash-separated, no trailing slash */
  readonly path: string;
  readonly abs: string;
  readonly stat: Stats;
}

export interface WalkOptions {
  readonly patterns: readonly Pattern[];
  /** relative paths sent even when a pattern excludes them (the Dockerfile, .dockerignore) */
  readonly always: ReadonlySet<string>;
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Yields Right entries in order; a Left ends the walk (an unreadable directory). */
export function* walk(root: string, opts: WalkOptions): Generator<E.Either<Failure, WalkEntry>> {
  const pending: WalkEntry[] = [];
  const filtering = opts.patterns.length > 0;
  const below = (dir: string): boolean => [...opts.always].some((p) => p.startsWith(`${dir}/`));

  function* dir(rel: string, abs: string): Generator<E.Either<Failure, WalkEntry>, boolean> {
    let names: string[];
    try {
      names = readdirSync(abs).sort(byName);
    } catch (e) {
      yield E.left(fromError(`read directory ${rel || '.'}`)(e));
      return false;
    }
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = `${abs}/${name}`;
      let stat: Stats;
      try {
        stat = lstatSync(full);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while walking
        yield E.left(fromError(`stat ${path}`)(e));
        return false;
      }
      const excluded = filtering && !opts.always.has(path) && isExcluded(opts.patterns, path);
      const entry: WalkEntry = { path, abs: full, stat };
      if (stat.isDirectory()) {
        if (excluded && !mayReinclude(opts.patterns, path) && !below(path)) continue;
        if (excluded) pending.push(entry);
        else {
          for (const d of pending.splice(0)) yield E.right(d);
          yield E.right(entry);
        }
        const depth = pending.length;
        if (!(yield* dir(path, full))) return false;
        // nothing below was sent: forget this directory
        if (excluded) pending.length = Math.min(pending.length, depth - 1);
        continue;
      }
      if (excluded) continue;
      for (const d of pending.splice(0)) yield E.right(d);
      yield E.right(entry);
    }
    return true;
  }
  yield* dir('', root.replace(/\/+$/, '') || '/');
}
