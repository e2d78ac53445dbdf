// RootFs: the one small interface through which extraction touches the disk. Every method takes
// a path as components below the root; each component is checked here (no "", ".", "..", "/" or
// NUL), so no call can name anything outside the root lexically. Symlinks are kept out by the
// caller's Tree (it hands over paths whose parents are real directories it made) and, as a second
// wall, by the calls themselves: files are opened O_CREAT|O_EXCL|O_NOFOLLOW, link(2) and
// lchown/lutimes never follow, and nothing is chmod-ed or utime-d but directories we made.
//
// Calls are synchronous on purpose: per-file cost dominates unpacking, and a synchronous call
// costs a system call where an asynchronous one also costs a trip through the thread pool.
import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EntryPath, Meta } from './entry.js';
import { applySpecial, type SpecialOp, type SpecialResult, type SpecialType } from './special-files.js';

export interface RootFs {
  readonly root: string;
  mkdir(path: EntryPath): void;
  /** creates a new regular file (never through a symlink, never over anything) and opens it */
  createFile(path: EntryPath, meta: Meta): number;
  write(fd: number, chunk: Uint8Array): void;
  /** owner, mode and mtime, then close; `fd` is closed even when this throws */
  finishFile(fd: number, meta: Meta): void;
  /** closes a file whose body never arrived (the extraction failed; the snapshot is thrown away) */
  abandonFile(fd: number): void;
  symlink(path: EntryPath, target: string, meta: Meta): void;
  /** a hard link to `existing` (never following it when it is a symlink) */
  link(existing: EntryPath, path: EntryPath): void;
  /** removes a file, or a directory and all it holds */
  remove(path: EntryPath, isDir: boolean): void;
  /** owner, mode and mtime of a directory we made */
  setDirMeta(path: EntryPath, meta: Meta): void;
  /** makes whiteouts, devices and fifos and sets xattrs, in one batch */
  special(ops: readonly SpecialRequest[]): Promise<SpecialResult>;
}

export type SpecialRequest =
  | { readonly op: 'mknod'; readonly path: EntryPath; readonly type: SpecialType; readonly major: number; readonly minor: number; readonly meta?: Meta }
  | { readonly op: 'xattr'; readonly path: EntryPath; readonly name: string; readonly value: Buffer };

export class UnsafePath extends Error {
  readonly code = 'EUNSAFEPATH';
}

const checkPart = (part: string): void => {
  if (part === '' || part === '.' || part === '..' || part.includes('/') || part.includes('\0')) {
    throw new UnsafePath(`refusing path component ${JSON.stringify(part)}`);
  }
};

let umaskCache: number | undefined;
/** The process umask, read from /proc (process.umask() without an argument is deprecated). */
const umask = (): number => {
  if (umaskCache === undefined) {
    const m = /^Umask:\s*([0-7]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    umaskCache = m?.[1] ? parseInt(m[1], 8) : 0o022;
  }
  return umaskCache;
};

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const CREATE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

export interface RootFsOptions {
  /** set owners from the layer (needs root); otherwise files belong to whoever unpacks */
  readonly chown: boolean;
}

/**
 * Removes a directory tree with a loop, not recursion: fs.rmSync recurses once per level and a
 * hostile layer's 2000-deep tree overflowed the stack ("Maximum call stack size exceeded").
 */
const removeDirSync = (root: string): void => {
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack[stack.length - 1] as string;
    let deeper = false;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        stack.push(join(dir, e.name));
        deeper = true;
      } else fs.unlinkSync(join(dir, e.name));
    }
    if (!deeper) {
      fs.rmdirSync(dir);
      stack.pop();
    }
  }
};

export const defaultRootFsOptions = (): RootFsOptions => ({ chown: typeof process.getuid === 'function' && process.getuid() === 0 });

export const createRootFs = (root: string, options: RootFsOptions = defaultRootFsOptions()): RootFs => {
  const abs = (path: EntryPath): string => {
    if (path.length === 0) return root;
    for (const part of path) checkPart(part);
    return `${root}/${path.join('/')}`;
  };
  // A new file belongs to us (root:root when we are root): chown only when the layer says otherwise.
  const selfUid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const selfGid = typeof process.getgid === 'function' ? process.getgid() : 0;
  const ownedOther = (m: Meta) => options.chown && (m.uid !== selfUid || m.gid !== selfGid);

  return {
    root,
    mkdir: (path) => fs.mkdirSync(abs(path), 0o755),
    createFile: (path, meta) => fs.openSync(abs(path), CREATE, meta.mode & 0o777),
    write: (fd, chunk) => {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
    },
    finishFile: (fd, meta) => {
      try {
        const chowned = ownedOther(meta);
        if (chowned) fs.fchownSync(fd, meta.uid, meta.gid);
        // chown clears setuid/setgid, and open's mode went through the umask: chmod after both
        if (chowned || (meta.mode & 0o7000) !== 0 || (meta.mode & umask()) !== 0) fs.fchmodSync(fd, meta.mode);
        fs.futimesSync(fd, meta.mtime, meta.mtime);
      } finally {
        fs.closeSync(fd);
      }
    },
    abandonFile: (fd) => {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed already */
      }
    },
    symlink: (path, target, meta) => {
      const p = abs(path);
      fs.symlinkSync(target, p);
      if (ownedOther(meta)) fs.lchownSync(p, meta.uid, meta.gid);
      fs.lutimesSync(p, meta.mtime, meta.mtime);
    },
    link: (existing, path) => fs.linkSync(abs(existing), abs(path)),
    remove: (path, isDir) => {
      if (path.length === 0) throw new UnsafePath('refusing to remove the root');
      if (isDir) removeDirSync(abs(path));
      else fs.unlinkSync(abs(path));
    },
    setDirMeta: (path, meta) => {
      const p = abs(path);
      if (ownedOther(meta)) fs.lchownSync(p, meta.uid, meta.gid);
      fs.chmodSync(p, meta.mode);
      fs.utimesSync(p, meta.mtime, meta.mtime);
    },
    special: (requests) =>
      applySpecial(
        requests.map((r): SpecialOp =>
          r.op === 'xattr'
            ? { op: 'xattr', path: abs(r.path), name: r.name, value: r.value }
            : { op: 'mknod', path: abs(r.path), type: r.type, major: r.major, minor: r.minor, ...(r.meta ? { meta: r.meta } : {}), chown: options.chown },
        ),
      ),
  };
};
