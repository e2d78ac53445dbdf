// Diff: a RUN's changes, read from its overlay upper dir, as layer entries. Overlay records a
// deletion as a character device 0/0 (→ an OCI whiteout `.wh.NAME`) and a directory that replaced
// a lower one as an opaque directory (→ `DIR/.wh..wh..opq`). Opacity lives in a trusted xattr that
// Node cannot read, so it is decided by what it does: a directory is opaque when a name the lower
// layers showed is gone from the merged view without a whiteout for it. Hard links inside the
// upper dir stay hard links. Mount points the runtime had to create (and left empty) are not
// changes the RUN made, and are left out, as BuildKit does.
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import { opaque, whiteout, type LayerEntry } from './layer-pack.js';

export interface DiffInput {
  readonly upper: string;
  /** the merged view after the RUN (still mounted) */
  readonly merged: string;
  /** a view of the lower layers alone (what the RUN started from), or undefined for scratch */
  readonly lower?: string;
  /** container paths the runtime mounted over (absolute): skipped when they were created empty */
  readonly mountPoints: readonly string[];
}

const isWhiteout = (st: Stats): boolean => st.isCharacterDevice() && st.rdev === 0;

const readdir = (dir: string): Promise<string[]> => fs.readdir(dir).catch(() => [] as string[]);
const lstat = (path: string): Promise<Stats | undefined> => fs.lstat(path).catch(() => undefined);

const typeOf = (st: Stats): LayerEntry['type'] | undefined =>
  st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'character-device' : st.isBlockDevice() ? 'block-device' : st.isFIFO() ? 'fifo' : undefined;

/** The entries of the layer a RUN made, parents before children, names sorted. */
export const diffUpper = async (input: DiffInput): Promise<LayerEntry[]> => {
  const out: LayerEntry[] = [];
  const inodes = new Map<string, string>();
  const mountPoints = new Set(input.mountPoints.map((m) => m.replace(/^\/+/, '').replace(/\/+$/, '')));
  const mountParents = new Set<string>();
  for (const m of mountPoints) for (let p = m; p.includes('/'); ) mountParents.add((p = p.slice(0, p.lastIndexOf('/'))));
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(input.upper, rel))).sort();
    const whiteouts = new Set<string>();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = join(input.upper, path);
      const st = await lstat(full);
      if (!st) continue;
      if (isWhiteout(st)) {
        whiteouts.add(name);
        out.push(whiteout(path, Math.floor(st.mtimeMs / 1000)));
        continue;
      }
      const inLower = input.lower !== undefined ? await lstat(join(input.lower, path)) : undefined;
      if (!inLower && (mountPoints.has(path) || mountParents.has(path))) {
        // created by the runtime as a mount point: keep only what the RUN put inside it
        if (st.isDirectory()) {
          const before = out.length;
          const dirEntry: LayerEntry = { path, type: 'directory', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
          out.push(dirEntry);
          await walk(path);
          if (out.length === before + 1 && (mountPoints.has(path) || mountParents.has(path))) out.pop();
          continue;
        }
        if (st.isFile() && st.size === 0 && mountPoints.has(path)) continue;
      }
      const type = typeOf(st);
      if (!type) continue; // sockets have no tar form; Docker drops them too
      const mtime = Math.floor(st.mtimeMs / 1000);
      const base = { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime };
      if (type === 'file' && st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        const first = inodes.get(id);
        if (first !== undefined) {
          out.push({ ...base, type: 'link', linkname: first });
          continue;
        }
        inodes.set(id, path);
      }
      if (type === 'file') out.push({ ...base, type, size: st.size, open: () => createReadStream(full) });
      else if (type === 'symlink') out.push({ ...base, type, linkname: await fs.readlink(full) });
      else if (type === 'character-device' || type === 'block-device') {
        out.push({ ...base, type, devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) });
      } else out.push({ ...base, type });
      if (type === 'directory') {
        if (inLower?.isDirectory() && (await isOpaque(input, path, whiteouts))) out.push(opaque(path, mtime));
        await walk(path);
      }
    }
  };
  await walk('');
  return out;
};

/** A directory is opaque when a lower name vanished from the merged view without a whiteout. */
const isOpaque = async (input: DiffInput, path: string, _parentWhiteouts: Set<string>): Promise<boolean> => {
  if (input.lower === undefined) return false;
  const before = await readdir(join(input.lower, path));
  if (before.length === 0) return false;
  const now = new Set(await readdir(join(input.merged, path)));
  for (const name of before) {
    if (now.has(name)) continue;
    const up = await lstat(join(input.upper, path, name));
    if (up && isWhiteout(up)) continue;
    return true;
  }
  return false;
};
