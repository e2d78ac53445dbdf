// IndexFile: the layout's index.json, the store's only table of names. Every change happens
// under the index lock, is written to a temp file, fsynced, and renamed over the old one.
import { closeSync, existsSync, fsync, fsyncSync, linkSync, mkdirSync, openSync, promises as fs, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { decodeIndex, type Descriptor, type Index } from '../oci/manifest.js';
import { MediaType } from '../oci/media-type.js';
import { newTempPath } from './blob.js';
import type { StorePaths } from './layout.js';
import { withLock } from './lock.js';

export const OCI_LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

const emptyIndex = (): Index => ({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] });

/**
 * Creates oci-layout and index.json where they are missing (idempotent, safe to race and to kill):
 * each is written whole and fsynced under ingest/, then linked to its name (link fails if the
 * name exists: the first wins, and no reader ever sees it empty or half written). Synchronous: a
 * few small calls, cheaper than as many thread-pool round trips (a pull into a new store has its
 * start-up budgeted).
 */
export const initLayoutSync = (p: StorePaths): E.Either<Failure, void> => {
  try {
    mkdirSync(p.blobs + '/sha256', { recursive: true });
    mkdirSync(p.ingest, { recursive: true });
    for (const [file, text] of [
      [p.ociLayout, OCI_LAYOUT],
      [p.index, JSON.stringify(emptyIndex())],
    ] as const) {
      if (existsSync(file)) continue;
      const tmp = newTempPath(p, 'layout');
      const fd = openSync(tmp, 'wx');
      try {
        writeFileSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
    }
    return E.right(undefined);
  } catch (e) {
    return E.left(fromError(`create store ${p.root}`)(e));
  }
};

/**
 * Whether the layout initLayoutSync makes is all there already (four stats, synchronously): then a
 * tool that starts often (a warm tsd-pull) creates nothing.
 */
export const layoutComplete = (p: StorePaths): boolean => {
  try {
    return statSync(p.blobs + '/sha256').isDirectory() && statSync(p.ingest).isDirectory() && statSync(p.ociLayout).isFile() && statSync(p.index).isFile();
  } catch {
    return false;
  }
};

const decodeIndexText = (p: StorePaths, text: string): E.Either<Failure, Index> => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return E.left(failure('CorruptIndex', `store index ${p.index}: not valid JSON (run tsd-store fsck)`, ExitCode.tool));
  }
  return E.mapLeft((f: Failure) => failure('CorruptIndex', `store index ${p.index}: ${f.message} (run tsd-store fsck)`, ExitCode.tool))(
    decodeIndex(json),
  );
};

export const readIndex = (p: StorePaths): TE.TaskEither<Failure, Index> => async () => {
  let text: string;
  try {
    text = await fs.readFile(p.index, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return E.right(emptyIndex());
    return E.left(fromError(`read ${p.index}`)(e));
  }
  return decodeIndexText(p, text);
};

/** readIndex, synchronously (a warm re-pull's start-up: one read, no thread-pool round trips). */
export const readIndexSync = (p: StorePaths): E.Either<Failure, Index> => {
  let text: string;
  try {
    text = readFileSync(p.index, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return E.right(emptyIndex());
    return E.left(fromError(`read ${p.index}`)(e));
  }
  return decodeIndexText(p, text);
};

/**
 * Writes the index to a temp file, fsyncs it and renames it over index.json. The small calls are
 * synchronous (cheaper than a thread-pool round trip each); the fsync, which waits for the disk,
 * is not, so the process's other work goes on meanwhile.
 */
const writeIndex = (p: StorePaths, index: Index): TE.TaskEither<Failure, void> =>
  TE.tryCatch(async () => {
    const tmp = newTempPath(p, 'index');
    let fd: number;
    try {
      fd = openSync(tmp, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(p.ingest, { recursive: true });
      fd = openSync(tmp, 'wx');
    }
    let open = true;
    try {
      const bytes = Buffer.from(JSON.stringify(index));
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
      await new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
      open = false;
      closeSync(fd);
      renameSync(tmp, p.index);
    } catch (e) {
      try {
        // never twice: the number may be another file's by now
        if (open) closeSync(fd);
      } catch {}
      try {
        unlinkSync(tmp);
      } catch {}
      throw e;
    }
  }, fromError(`write ${p.index}`));

/**
 * Applies `change` to the index under the store's index lock. `change` sees the current entries
 * and returns the new ones (or a Failure, which leaves the index as it was).
 */
export const updateIndex = <A>(
  p: StorePaths,
  change: (manifests: readonly Descriptor[]) => E.Either<Failure, { manifests: readonly Descriptor[]; result: A }>,
): TE.TaskEither<Failure, A> =>
  withLock(p.lock('index'))(async () => {
    const current = readIndexSync(p);
    if (E.isLeft(current)) return current;
    const next = change(current.right.manifests);
    if (E.isLeft(next)) return next;
    const written = await writeIndex(p, { ...current.right, manifests: next.right.manifests })();
    return E.isLeft(written) ? written : E.right(next.right.result);
  });
