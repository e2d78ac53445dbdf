// Volume fill: a volume that is empty when a container is created gets the image's content at the
// mount target, as Docker copies it (its "copy mode", off with `nocopy`). Loaded only when a
// volume needs filling (src/run/create.ts checks, cheaply, that the volume is empty and the image
// has a directory there), so a run without one never reads this file.
//
// The source is the image's directory at the target, resolved inside the container's root file
// system (the overlay of the image's snapshots, mounted and not yet started) with every component
// resolved in the root (src/run/in-root.ts), so it never leaves the root. GNU cp copies it with
// `-a` (modes, owners, symlinks as symlinks, hard links within the copy, mtimes, xattrs, fifos
// and devices; a symlink is never followed, inside or out of the root) into a fresh directory
// beside the volume's `_data`, on the same file system. Only a whole copy is moved in, one rename
// per top-level entry: a failed copy (a full disk) is removed and leaves the volume as it was,
// and a fill killed midway leaves a `.fill-PID-…` directory beside `_data`, removed by the next
// fill, with `_data` still empty (so filled again next time). `_data` itself is never replaced:
// a running container may have it mounted. Then the source directory's own mode, owner and times
// go onto `_data`, as Docker does (its own xattrs do not: Node has no call for them, and a second
// cp to copy them cost ~2 ms of every fill).
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { pidAlive, withLock } from '../store/lock.js';
import { runQuiet } from './quiet-command.js';

export interface Fill {
  /** the image's directory at the target, a host path inside the container's root */
  readonly source: string;
  /** the volume's directory ($ROOT/volumes/NAME/_data), empty when the fill was decided */
  readonly volumeDir: string;
  /** for messages: "volume NAME" or "anonymous volume", and the mount target */
  readonly volume: string;
  readonly target: string;
  /** a named volume's lock file: two runs filling one new volume do not both copy into it */
  readonly lock?: string;
}

const FILL_PREFIX = '.fill-';

/** cp's first error line, as the reason: "cp: error writing 'x': No space left on device" → "no space left on device". */
const reasonOf = (stderr: string): string => {
  const line = stderr.trim().split('\n')[0] ?? '';
  const why = line.slice(line.lastIndexOf(': ') + 2) || 'cp failed';
  return why.charAt(0).toLowerCase() + why.slice(1);
};

/** Fill directories left by a fill that was killed (its process is gone). */
const removeStale = (parent: string): void => {
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(FILL_PREFIX)) continue;
    const pid = Number(name.slice(FILL_PREFIX.length).split('-')[0]);
    if (pid !== process.pid && !pidAlive(pid)) rmSync(join(parent, name), { recursive: true, force: true });
  }
};

const fillNow = async (f: Fill): Promise<E.Either<Failure, void>> => {
  const what = `fill ${f.volume} from the image's ${f.target}`;
  const parent = dirname(f.volumeDir);
  const temp = join(parent, `${FILL_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  const copy = join(temp, 'd');
  try {
    removeStale(parent);
    // filled meanwhile (another run, under the lock, or through a running container)
    if (readdirSync(f.volumeDir).length > 0) return E.right(undefined);
    const src = lstatSync(f.source);
    if (!src.isDirectory()) return E.right(undefined);
    mkdirSync(temp, { mode: 0o700 });
    // -T: `copy` is the destination itself (it does not exist yet), never a directory to copy into
    const r = await runQuiet('cp', ['-a', '-T', '--', f.source, copy]);
    if (r.code !== 0) return E.left(failure(/no space|quota/i.test(r.stderr) ? 'NoSpace' : 'VolumeFill', `${what}: ${reasonOf(r.stderr)}`, ExitCode.tool));
    if (readdirSync(f.volumeDir).length > 0) return E.right(undefined);
    const moved: string[] = [];
    try {
      for (const name of readdirSync(copy)) {
        renameSync(join(copy, name), join(f.volumeDir, name));
        moved.push(name);
      }
    } catch (e) {
      for (const name of moved) renameSync(join(f.volumeDir, name), join(copy, name));
      throw e;
    }
    // the directory's own owner, mode and times, as Docker copies them (owner first: chown clears
    // setuid and setgid bits)
    chownSync(f.volumeDir, src.uid, src.gid);
    chmodSync(f.volumeDir, src.mode & 0o7777);
    utimesSync(f.volumeDir, src.atime, src.mtime);
    return E.right(undefined);
  } catch (e) {
    return E.left(fromError(what)(e));
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
};

/** Copies the image's directory into the empty volume; a volume found non-empty is left alone. */
export const fillVolume = (f: Fill): Promise<E.Either<Failure, void>> =>
  f.lock === undefined ? fillNow(f) : withLock(f.lock)(() => fillNow(f))();
