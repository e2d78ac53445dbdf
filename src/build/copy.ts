// Copy: the plan of a COPY (or a local ADD without extraction) as layer entries, made purely from
// the source's index (a context or a stage's files) and the destination image's tree. Docker's
// rules: sources are relative to the context root and may hold Go-style wildcards; a directory
// copies its contents; several sources or a destination ending in "/" (or an existing directory)
// make the destination a directory; files are owned by 0:0 unless --chown, keep their mode unless
// --chmod; missing parents of the destination are created.
import { Readable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import type { BuildContext, ContextEntry } from './context.js';
import { baseOf, cleanPath, parentOf } from './context.js';
import type { LayerEntry } from './layer-pack.js';
import { isDirectoryIn, resolveInTree, type Owner, type Tree } from './tree.js';

export interface CopyRequest {
  readonly sources: readonly string[];
  /** as written (its trailing slash matters) */
  readonly dest: string;
  /** the stage's WORKDIR */
  readonly workdir: string;
  readonly owner?: Owner;
  readonly chmod?: number;
  /** heredoc sources by name: COPY <<EOF /x */
  readonly inline?: ReadonlyMap<string, string>;
  /** ADD of an archive: entries keep the archive's owners (unless --chown) */
  readonly keepOwners?: boolean;
}

export interface CopyPlan {
  readonly entries: readonly LayerEntry[];
  /** what the cache key hashes: each output path with its source digest and metadata */
  readonly fingerprint: string;
}

const hasMagic = (s: string): boolean => /[*?[]/.test(s);

/** A Go filepath.Match pattern as a regular expression over one path component at a time. */
export const globToRegExp = (pattern: string): RegExp => {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
};

/** The context entries a source names: one path, or every match of a wildcard. */
export const matchSources = (ctx: BuildContext, source: string): E.Either<string, readonly ContextEntry[]> => {
  const clean = cleanPath(source);
  if (clean === undefined) return E.left(`source ${JSON.stringify(source)} is outside the build context`);
  if (!hasMagic(clean)) {
    const e = ctx.entries.get(clean);
    return e ? E.right([e]) : E.left(`"/${clean}": not found`);
  }
  const parts = clean.split('/');
  let current: string[] = [''];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of current) {
      if (!hasMagic(part)) {
        const p = dir === '' ? part : `${dir}/${part}`;
        if (ctx.entries.has(p)) next.push(p);
        continue;
      }
      const re = globToRegExp(part);
      for (const child of ctx.children.get(dir) ?? []) if (re.test(baseOf(child))) next.push(child);
    }
    current = next;
  }
  if (current.length === 0) return E.left(`no source files were specified (nothing matches ${JSON.stringify(source)})`);
  return E.right(current.map((p) => ctx.entries.get(p)!));
};

/** The entry a symlink leads to inside the context (links followed, at most 40). */
const followLinks = (ctx: BuildContext, e: ContextEntry): ContextEntry | undefined => {
  let cur: ContextEntry | undefined = e;
  for (let hops = 0; cur?.type === 'symlink' && hops < 40; hops++) {
    const target = cur.linkname ?? '';
    const path = cleanPath(target.startsWith('/') ? target : `${parentOf(cur.path)}/${target}`);
    cur = path === undefined ? undefined : ctx.entries.get(path);
  }
  return cur?.type === 'symlink' ? undefined : cur;
};

/**
 * What a COPY reads from its source, for the cache key: every matched entry and everything
 * below it (path, type, mode, content digest or link target), top-level symlinks followed.
 */
export const sourceFingerprint = (ctx: BuildContext, sources: readonly string[]): E.Either<string, string> => {
  const parts: unknown[] = [];
  const add = (e: ContextEntry) => parts.push([e.path, e.type, e.mode, e.uid, e.gid, e.sha256 ?? e.linkname ?? '']);
  const walkAll = (e: ContextEntry) => {
    add(e);
    for (const child of ctx.children.get(e.path) ?? []) walkAll(ctx.entries.get(child)!);
  };
  for (const s of sources) {
    const m = matchSources(ctx, s);
    if (E.isLeft(m)) return m;
    for (const e of m.right) {
      add(e);
      const target = followLinks(ctx, e);
      if (target === undefined) return E.left(`"/${e.path}": a symlink that leads out of the context or nowhere`);
      if (target.type === 'directory') walkAll(target);
      else add(target);
    }
  }
  return E.right(JSON.stringify(parts));
};

const join = (a: string, b: string): string => (a === '' ? b : b === '' ? a : `${a}/${b}`);

/** Plans the entries a COPY writes; an error string names what is wrong. */
export const planCopy = (ctx: BuildContext, tree: Tree, req: CopyRequest): E.Either<string, CopyPlan> => {
  const absDest = req.dest.startsWith('/') ? req.dest : `${req.workdir.replace(/\/$/, '')}/${req.dest}`;
  const destClean = cleanPath(absDest) ?? '';
  const matched: ContextEntry[] = [];
  const inline: { name: string; content: string }[] = [];
  for (const s of req.sources) {
    const name = s.startsWith('<<') ? s.replace(/^<<-?["']?/, '').replace(/["']$/, '') : undefined;
    if (name !== undefined && req.inline?.has(name)) {
      inline.push({ name, content: req.inline.get(name)! });
      continue;
    }
    const m = matchSources(ctx, s);
    if (E.isLeft(m)) return m;
    matched.push(...m.right);
  }
  const count = matched.length + inline.length;
  const destIsDir =
    req.dest.endsWith('/') || req.dest.endsWith('/.') || req.dest === '.' || destClean === '' || isDirectoryIn(tree, destClean) ||
    req.sources.length > 1 || req.sources.some(hasMagic) && count > 1;
  if (req.sources.length > 1 && !req.dest.endsWith('/')) {
    return E.left('when using COPY with more than one source file, the destination must be a directory and end with a /');
  }
  // where the destination really is once symlinks in the image are followed
  const destPath = resolveInTree(tree, destClean);
  const owner = req.owner ?? { uid: 0, gid: 0 };
  const out: LayerEntry[] = [];
  const seenDirs = new Set<string>();
  const ensureParents = (path: string) => {
    const chain: string[] = [];
    for (let p = parentOf(path); p !== ''; p = parentOf(p)) chain.unshift(p);
    for (const dir of chain) {
      if (seenDirs.has(dir)) continue;
      seenDirs.add(dir);
      if (tree.get(resolveInTree(tree, dir))?.type === 'directory') continue;
      out.push({ path: dir, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: 0 });
    }
  };
  const fingerprint: unknown[] = [];
  const emit = (e: ContextEntry, target: string, root = false) => {
    const mode = root ? e.mode : (req.chmod ?? e.mode);
    const who = req.keepOwners ? { uid: e.uid, gid: e.gid } : owner;
    if (e.type === 'directory') {
      if (target !== '' && !seenDirs.has(target)) {
        seenDirs.add(target);
        const existing = tree.get(target);
        if (existing?.type === 'directory' && (root || req.chmod === undefined) && req.owner === undefined) {
          // an existing directory keeps its metadata unless the COPY says otherwise
        } else out.push({ path: target, type: 'directory', mode, uid: who.uid, gid: who.gid, mtime: e.mtime });
      }
      fingerprint.push([target, 'd', mode]);
      return;
    }
    if (e.type === 'symlink') {
      out.push({ path: target, type: 'symlink', mode: 0o777, uid: who.uid, gid: who.gid, mtime: e.mtime, linkname: e.linkname ?? '' });
      fingerprint.push([target, 'l', e.linkname]);
      return;
    }
    const read = ctx.read;
    out.push({ path: target, type: 'file', mode, uid: who.uid, gid: who.gid, mtime: e.mtime, size: e.size, open: () => ctx.open(e), ...(read ? { read: () => read(e) } : {}) });
    fingerprint.push([target, 'f', mode, e.sha256]);
  };
  const walk = (dir: ContextEntry, target: string) => {
    for (const child of ctx.children.get(dir.path) ?? []) {
      const e = ctx.entries.get(child)!;
      const t = join(target, baseOf(child));
      emit(e, t);
      if (e.type === 'directory') walk(e, t);
    }
  };
  for (const given of matched) {
    // a source named at the top level is followed when it is a symlink, as BuildKit does
    const e = followLinks(ctx, given);
    if (e === undefined) return E.left(`"/${given.path}": a symlink that leads out of the context or nowhere`);
    const named = e === given ? e : { ...e, path: given.path };
    if (named.type === 'directory') {
      if (destPath !== '') {
        ensureParents(destPath);
        // the destination directory itself keeps the source's mode (--chmod applies to what is inside)
        emit(named, destPath, true);
      }
      walk(e, destPath);
    } else {
      const target = destIsDir ? join(destPath, baseOf(named.path)) : destPath;
      if (target === '') return E.left('cannot copy a file over the root directory');
      ensureParents(target);
      emit(named, target);
    }
  }
  for (const h of inline) {
    const target = destIsDir ? join(destPath, h.name) : destPath;
    ensureParents(target);
    const bytes = Buffer.from(h.content);
    const mode = req.chmod ?? 0o644;
    out.push({ path: target, type: 'file', mode, uid: owner.uid, gid: owner.gid, mtime: 0, size: bytes.length, open: () => bufferStream(bytes) });
    fingerprint.push([target, 'h', mode, h.content]);
  }
  return E.right({ entries: out, fingerprint: JSON.stringify({ owner, fingerprint, parents: out.filter((o) => o.type === 'directory').map((o) => o.path) }) });
};

const bufferStream = (b: Buffer): Readable => Readable.from([b]);
