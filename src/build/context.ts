// BuildContext: the files a build may read, by their cleaned path inside the context. A context
// tar (from tsd-ctx, on stdin) is read once: every regular file's bytes go into one spool file
// (each file a range of it) while its sha256 is taken from tsd-ctx's PAX record or computed on the
// way, so a COPY's cache key never reads a file again. Tar entries are hostile until cleaned:
// absolute names, `..` and duplicate names are refused or resolved here, once.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { failure, fromError, type Failure } from '../failure.js';
import * as E from 'fp-ts/lib/Either.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'link';

export interface ContextEntry {
  /** cleaned, relative, no leading or trailing slash ("" is the root) */
  readonly path: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly size: number;
  /** symlink or hard-link target as written in the archive */
  readonly linkname?: string;
  /** "sha256:…" of the file's bytes (regular files) */
  readonly sha256?: string;
  /** where the bytes live in the spool */
  readonly offset?: number;
}

export interface BuildContext {
  readonly entries: ReadonlyMap<string, ContextEntry>;
  /** children of each directory path, sorted */
  readonly children: ReadonlyMap<string, readonly string[]>;
  /** the bytes of a regular file */
  readonly open: (e: ContextEntry) => Readable;
  /** the bytes of a small regular file at once (one read of the spool, no stream) */
  readonly read?: (e: ContextEntry) => Promise<Buffer>;
  readonly dispose: () => Promise<void>;
  /** the file tsd-ctx marked as the chosen Dockerfile (PAX TSD.role=dockerfile) */
  readonly dockerfile?: string;
}

/** The PAX record tsd-ctx writes with each regular file's digest (docs/ctx.md). */
export const DIGEST_PAX_KEYS = ['TSD.sha256', 'tsd.sha256', 'TSD.digest', 'tsd.digest'];

/** Cleans an archive name to a relative path; undefined when it would leave the root. */
export const cleanPath = (name: string): string | undefined => {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
};

export const parentOf = (path: string): string => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
export const baseOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

const digestFromPax = (pax: unknown): string | undefined => {
  if (typeof pax !== 'object' || pax === null) return undefined;
  for (const k of DIGEST_PAX_KEYS) {
    const v = (pax as Record<string, unknown>)[k];
    if (typeof v === 'string') {
      const d = v.startsWith('sha256:') ? v : `sha256:${v}`;
      if (/^sha256:[a-f0-9]{64}$/.test(d)) return d;
    }
  }
  return undefined;
};

const badContext = (why: string): Failure => failure('InvalidContext', `build context: ${why}`);

const indexChildren = (entries: Map<string, ContextEntry>): Map<string, string[]> => {
  const children = new Map<string, string[]>();
  if (!entries.has('')) entries.set('', { path: '', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
  for (const path of [...entries.keys()]) {
    // parents missing from the archive are implied directories
    let p = path;
    while (p !== '') {
      const parent = parentOf(p);
      if (!entries.has(parent)) entries.set(parent, { path: parent, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
      p = parent;
    }
  }
  for (const path of entries.keys()) {
    if (path === '') continue;
    const parent = parentOf(path);
    let list = children.get(parent);
    if (!list) children.set(parent, (list = []));
    list.push(path);
  }
  for (const list of children.values()) list.sort();
  return children;
};

/** Reads a context tar stream into a spool file under `dir` (on the store's disk). */
export const readContextTar = async (input: Readable, dir: string): Promise<E.Either<Failure, BuildContext>> => {
  await fs.mkdir(dir, { recursive: true });
  const spoolPath = join(dir, `context-${process.pid}-${Date.now()}.spool`);
  const spool = createWriteStream(spoolPath);
  let offset = 0;
  const entries = new Map<string, ContextEntry>();
  const extract = tar.extract();
  // a write that fails (disk full) stops the read: the error reaches the pipeline below, not the process
  let spoolFailed: Error | undefined;
  spool.on('error', (e) => {
    spoolFailed ??= e;
    extract.destroy(e);
  });
  let bad: Failure | undefined;
  let dockerfile: string | undefined;
  extract.on('entry', (h, stream, next) => {
    stream.on('error', () => undefined); // the pipeline reports a cut or corrupt context
    const path = cleanPath(h.name);
    const pax = h.pax as Record<string, unknown> | null | undefined;
    if (path !== undefined && pax && pax['TSD.role'] === 'dockerfile') dockerfile = path;
    const type = h.type;
    const fail = (f: Failure) => {
      bad ??= f;
      stream.resume();
      stream.on('end', () => next());
    };
    if (path === undefined) return fail(badContext(`entry ${JSON.stringify(h.name)} leaves the context`));
    if (type !== 'file' && type !== 'directory' && type !== 'symlink' && type !== 'link' && type !== 'contiguous-file') {
      // devices and fifos have no place in a context: skipped as Docker's tar reader does, but
      // never silently for files a COPY names (they are simply absent)
      stream.resume();
      stream.on('end', () => next());
      return;
    }
    const base = {
      path,
      mode: (h.mode ?? 0o644) & 0o7777,
      uid: h.uid ?? 0,
      gid: h.gid ?? 0,
      mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
    };
    if (type === 'directory' || type === 'symlink' || type === 'link') {
      const linkname = type === 'link' ? cleanPath(h.linkname ?? '') : h.linkname ?? '';
      if (type === 'link') {
        // a hard link in a context is one more name for the same bytes
        const target = linkname === undefined ? undefined : entries.get(linkname);
        if (!target || target.type !== 'file') return fail(badContext(`hard link ${path} to a missing file`));
        entries.set(path, { ...target, ...base, type: 'file' });
      } else entries.set(path, { ...base, type, size: 0, ...(type === 'symlink' ? { linkname: linkname! } : {}) });
      stream.resume();
      stream.on('end', () => next());
      return;
    }
    const start = offset;
    const given = digestFromPax(h.pax);
    const hash = given ? undefined : createHash('sha256');
    void (async () => {
      try {
        for await (const data of stream as AsyncIterable<Buffer>) {
          offset += data.length;
          hash?.update(data);
          if (!spool.write(data)) await once(spool, 'drain');
        }
        entries.set(path, { ...base, type: 'file', size: offset - start, offset: start, sha256: given ?? `sha256:${hash!.digest('hex')}` });
        next();
      } catch (e) {
        next(e as Error);
      }
    })();
  });
  try {
    await pipeline(input, extract);
    await new Promise<void>((res, rej) => spool.end((e?: Error | null) => (e ? rej(e) : res())));
    if (spoolFailed) throw spoolFailed;
  } catch (e) {
    spool.destroy();
    await fs.unlink(spoolPath).catch(() => undefined);
    return E.left(fromError('read build context')(spoolFailed ?? e));
  }
  if (bad) {
    await fs.unlink(spoolPath).catch(() => undefined);
    return E.left(bad);
  }
  const children = indexChildren(entries);
  let handle: Promise<fs.FileHandle> | undefined;
  return E.right({
    entries,
    children,
    open: (e) => {
      if (e.size === 0) return createReadStream('/dev/null');
      return createReadStream(spoolPath, { start: e.offset ?? 0, end: (e.offset ?? 0) + e.size - 1 });
    },
    read: async (e) => {
      handle ??= fs.open(spoolPath, 'r');
      const fh = await handle;
      const buf = Buffer.allocUnsafe(e.size);
      let got = 0;
      while (got < e.size) {
        const { bytesRead } = await fh.read(buf, got, e.size - got, (e.offset ?? 0) + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    },
    dispose: async () => {
      if (handle) await (await handle).close().catch(() => undefined);
      await fs.unlink(spoolPath).catch(() => undefined);
    },
    ...(dockerfile !== undefined ? { dockerfile } : {}),
  });
};

/** A context with no files (a Dockerfile given alone). */
export const emptyContext = (): BuildContext => {
  const entries = new Map<string, ContextEntry>();
  return { entries, children: indexChildren(entries), open: () => createReadStream('/dev/null'), dispose: async () => undefined };
};

/** The bytes of a small context file (the Dockerfile), or undefined when absent. */
export const readSmall = async (ctx: BuildContext, path: string): Promise<Buffer | undefined> => {
  const e = ctx.entries.get(path);
  if (!e || e.type !== 'file') return undefined;
  const chunks: Buffer[] = [];
  for await (const c of ctx.open(e)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
