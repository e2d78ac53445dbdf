// Tree: the file metadata of an image's root file system, read from its layer tars (headers
// only, whiteouts applied), so COPY can ask whether a destination is a directory, WORKDIR
// whether it must create its path, and --chown / USER resolve names in /etc/passwd and
// /etc/group without unpacking anything. Small files under /etc that name users keep their bytes.
import { layerCompression } from '../oci/media-type.js';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { fromError, type Failure } from '../failure.js';
import type { Descriptor } from '../oci/manifest.js';
import { openBlob } from '../store/blob.js';
import type { StorePaths } from '../store/layout.js';
import { cleanPath, parentOf, baseOf } from './context.js';
import * as E from 'fp-ts/lib/Either.js';

export interface TreeNode {
  readonly type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkname?: string;
  readonly content?: Buffer;
}

/** path (cleaned, relative) → node */
export type Tree = ReadonlyMap<string, TreeNode>;

const KEEP_CONTENT = new Set(['etc/passwd', 'etc/group']);

// the decompressor (and the zstd process runner behind it) is loaded only when a tree is read
const decompress = async (d: Descriptor): Promise<((s: Readable) => Readable) | undefined> => {
  const c = layerCompression(d.mediaType);
  if (c === undefined) return undefined;
  const { decompressor } = await import('./miss.js');
  return (s) => {
    const out = decompressor(c);
    s.on('error', (e) => out.destroy(e)); // a missing or corrupt blob fails the read, not the process
    return s.pipe(out);
  };
};

/** Applies one layer tar to `tree` (mutating the map being built). */
export const applyLayerTar = async (tree: Map<string, TreeNode>, input: Readable): Promise<void> => {
  const extract = tar.extract();
  extract.on('entry', (h, stream, next) => {
    // a corrupt layer destroys the entry with the error; the pipeline below reports it (an
    // entry stream with no listener would take the process down with a stack trace)
    stream.on('error', () => undefined);
    const path = cleanPath(h.name);
    const finish = () => next();
    if (path === undefined || path === '') {
      stream.resume();
      stream.on('end', finish);
      return;
    }
    const base = baseOf(path);
    const parent = parentOf(path);
    if (base === '.wh..wh..opq') {
      const prefix = parent === '' ? '' : `${parent}/`;
      for (const k of [...tree.keys()]) if (k.startsWith(prefix) && k !== parent) tree.delete(k);
    } else if (base.startsWith('.wh.')) {
      const gone = parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`;
      tree.delete(gone);
      for (const k of [...tree.keys()]) if (k.startsWith(`${gone}/`)) tree.delete(k);
    } else {
      const type = h.type === 'file' || h.type === 'contiguous-file' ? 'file' : h.type === 'directory' ? 'directory' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'link' : 'other';
      if (type !== 'directory') for (const k of [...tree.keys()]) if (k.startsWith(`${path}/`)) tree.delete(k);
      const node = { type, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}) } as const;
      if (type === 'file' && KEEP_CONTENT.has(path)) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => {
          chunks.push(c as Buffer);
        });
        stream.on('end', () => {
          tree.set(path, { ...node, content: Buffer.concat(chunks) });
          finish();
        });
        return;
      }
      if (type === 'link' && h.linkname) {
        const target = tree.get(cleanPath(h.linkname) ?? '');
        if (target?.content) tree.set(path, { ...node, content: target.content });
        else tree.set(path, node);
      } else tree.set(path, node);
    }
    stream.resume();
    stream.on('end', finish);
  });
  await pipeline(input, extract);
};

const cache = new Map<string, Map<string, TreeNode>>();

/** The tree of an image made of `layers` (bottom first); trees of prefixes are remembered. */
export const treeOf = async (p: StorePaths, layers: readonly Descriptor[]): Promise<E.Either<Failure, Tree>> => {
  let tree = new Map<string, TreeNode>([['', { type: 'directory', mode: 0o755, uid: 0, gid: 0 }]]);
  let key = '';
  try {
    for (const d of layers) {
      key += d.digest;
      const known = cache.get(key);
      if (known) {
        tree = known;
        continue;
      }
      tree = new Map(tree);
      const unzip = await decompress(d);
      if (!unzip) return E.left(fromError(`read layer ${d.digest}`)(new Error(`layer media type ${d.mediaType} is not supported`)));
      await applyLayerTar(tree, unzip(openBlob(p, d.digest)));
      cache.set(key, tree);
    }
    return E.right(tree);
  } catch (e) {
    return E.left(fromError('read image layers')(e));
  }
};

/** Follows symlinks in `path` (absolute or relative) inside the tree; the resolved relative path. */
export const resolveInTree = (tree: Tree, path: string, followLast = true, depth = 0): string => {
  const parts = (cleanPath(path) ?? '').split('/').filter(Boolean);
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    const next = cur === '' ? parts[i]! : `${cur}/${parts[i]}`;
    const node = tree.get(next);
    const last = i === parts.length - 1;
    if (node?.type === 'symlink' && node.linkname !== undefined && (!last || followLast) && depth < 40) {
      const target = node.linkname.startsWith('/') ? node.linkname : `${cur}/${node.linkname}`;
      const rest = parts.slice(i + 1).join('/');
      return resolveInTree(tree, rest ? `${target}/${rest}` : target, followLast, depth + 1);
    }
    cur = next;
  }
  return cur;
};

export const isDirectoryIn = (tree: Tree, path: string): boolean => tree.get(resolveInTree(tree, path))?.type === 'directory';

const lookup = (content: Buffer | undefined, name: string, field: 'name' | 'id'): string[] | undefined => {
  if (!content) return undefined;
  for (const line of content.toString('utf8').split('\n')) {
    const cols = line.split(':');
    if (cols.length < 3) continue;
    if (field === 'name' ? cols[0] === name : cols[2] === name) return cols;
  }
  return undefined;
};

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Resolves "user[:group]" (names or ids) in the image's /etc/passwd and /etc/group as Docker
 * documents for --chown: a numeric id needs no entry; a user alone gives the group the same
 * numeric id; a name that is not there is an error.
 */
export const resolveOwner = (tree: Tree, spec: string): E.Either<string, Owner> => {
  const [user = '', group] = spec.split(':');
  const passwd = tree.get(resolveInTree(tree, 'etc/passwd'))?.content;
  const groups = tree.get(resolveInTree(tree, 'etc/group'))?.content;
  let uid: number;
  let gidFromUser: number | undefined;
  if (/^\d+$/.test(user)) {
    uid = Number(user);
    const row = lookup(passwd, user, 'id');
    gidFromUser = row?.[3] !== undefined ? Number(row[3]) : undefined;
  } else {
    const row = lookup(passwd, user, 'name');
    if (!row) return E.left(`unable to find user ${user}: no matching entries in passwd file`);
    uid = Number(row[2]);
    gidFromUser = Number(row[3]);
  }
  // "Providing a username without groupname or a UID without GID will use the same numeric UID as the GID."
  void gidFromUser;
  if (group === undefined || group === '') return E.right({ uid, gid: uid });
  if (/^\d+$/.test(group)) return E.right({ uid, gid: Number(group) });
  const row = lookup(groups, group, 'name');
  if (!row) return E.left(`unable to find group ${group}: no matching entries in group file`);
  return E.right({ uid, gid: Number(row[2]) });
};

export interface RunUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
  readonly home?: string;
}

/** USER as a RUN sees it: a name or id, the group from /etc/passwd unless given. */
export const resolveUser = (tree: Tree, spec: string | undefined): E.Either<string, RunUser> => {
  if (spec === undefined || spec === '') return E.right({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
  const [user = '', group] = spec.split(':');
  const passwd = tree.get(resolveInTree(tree, 'etc/passwd'))?.content;
  const groups = tree.get(resolveInTree(tree, 'etc/group'))?.content;
  const row = lookup(passwd, user, /^\d+$/.test(user) ? 'id' : 'name');
  if (!row && !/^\d+$/.test(user)) return E.left(`unable to find user ${user}: no matching entries in passwd file`);
  const uid = row ? Number(row[2]) : Number(user);
  let gid = row?.[3] !== undefined ? Number(row[3]) : 0;
  if (group !== undefined && group !== '') {
    if (/^\d+$/.test(group)) gid = Number(group);
    else {
      const g = lookup(groups, group, 'name');
      if (!g) return E.left(`unable to find group ${group}: no matching entries in group file`);
      gid = Number(g[2]);
    }
  }
  const home = row?.[5] || '/';
  return E.right({ uid, gid, additionalGids: [], home });
};
