// In-root: a path inside a container's root file system resolved on the host, following the
// root's own symlinks as the container would see them (an absolute link points at the root, `..`
// stops at the root), as securejoin does. Used to read the image's /etc/passwd, create the working
// directory and look up the command before start, never touching anything outside the root.
// The calls are synchronous: a lookup along PATH is ~25 lstat/stat calls, each a few
// microseconds as a system call but ~0.2 ms as a round trip through libuv's thread pool (bench/run).
import { chownSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';

const MAX_LINKS = 40;

const lstatQuiet = (p: string): Stats | undefined => {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
};

/** stat, or undefined when the path (or a link's target) does not exist or cannot be reached. */
const statQuiet = (p: string): Stats | undefined => {
  try {
    return statSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined; // ENOTDIR, ELOOP, EACCES: not there for our purpose
  }
};

/** The host path of `path` inside `root`; the last component need not exist. */
export const resolveInRoot = async (root: string, path: string): Promise<string> => {
  const todo = posix.normalize(`/${path}`).split('/').filter((c) => c !== '');
  const done: string[] = [];
  // the root normalized once, then plain concatenation: each component is a bare name (no '/',
  // '.' or '..'), so this is join(root, ...done, c) without normalizing the long root again on
  // every step (a PATH lookup makes dozens of these; join's normalize was ~2 ms of a run, bench/run)
  const base = join(root).replace(/\/+$/, '');
  const under = (names: readonly string[]): string => (names.length === 0 ? base || '/' : `${base}/${names.join('/')}`);
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift() as string;
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = under([...done, c]);
    const st = lstatQuiet(host);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw Object.assign(new Error(`too many levels of symbolic links in ${path}`), { code: 'ELOOP' });
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...target.split('/').filter((x) => x !== ''));
      continue;
    }
    done.push(c);
  }
  return under(done);
};

/** Reads a file of the root, or undefined when it does not exist. */
export const readInRoot = async (root: string, path: string): Promise<string | undefined> => {
  try {
    return readFileSync(await resolveInRoot(root, path), 'utf8');
  } catch {
    return undefined;
  }
};

/** mkdir -p inside the root, owned by uid:gid where created (as Docker creates WORKDIR). */
export const mkdirInRoot = async (root: string, path: string, uid = 0, gid = 0): Promise<void> => {
  const parts = posix.normalize(`/${path}`).split('/').filter((c) => c !== '');
  for (let i = 1; i <= parts.length; i++) {
    const host = await resolveInRoot(root, parts.slice(0, i).join('/'));
    if (statQuiet(host)) continue;
    // `host` has no symlink left in it; a link's missing target dirs are made inside the root
    mkdirSync(host, { mode: 0o755, recursive: true });
    chownSync(host, uid, gid);
  }
};

export type Lookup = { readonly _tag: 'Found'; readonly path: string } | { readonly _tag: 'NotFound' } | { readonly _tag: 'NotExecutable'; readonly why: string };

/** Finds the command as execve in the container would: with a '/', that path; else along PATH. */
export const lookupCommand = async (root: string, command: string, pathEnv: string, cwd: string): Promise<Lookup> => {
  const check = async (p: string): Promise<Lookup | undefined> => {
    const host = await resolveInRoot(root, p.startsWith('/') ? p : posix.join(cwd, p));
    const st = statQuiet(host);
    if (!st) return undefined;
    if (st.isDirectory()) return { _tag: 'NotExecutable', why: 'is a directory' };
    if ((st.mode & 0o111) === 0) return { _tag: 'NotExecutable', why: 'permission denied' };
    return { _tag: 'Found', path: p };
  };
  if (command.includes('/')) return (await check(command)) ?? { _tag: 'NotFound' };
  let firstBad: Lookup | undefined;
  for (const dir of pathEnv.split(':')) {
    const r = await check(posix.join(dir || '.', command));
    if (r?._tag === 'Found') return r;
    firstBad ??= r;
  }
  return firstBad ?? { _tag: 'NotFound' };
};
