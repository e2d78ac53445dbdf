// BuildContext: the files a build may read, by their cleaned path inside the context. A context
// tar (from tsd-ctx, on stdin) is read once: the raw tar is copied into a spool file as it arrives
// (a few large writes; a pipe cannot be read twice), each regular file is the range of it that
// tar-stream reports, and its sha256 is taken from tsd-ctx's PAX record (the bytes are then not
// looked at) or computed on the way, so a COPY's cache key never reads a file again. Tar entries are hostile until cleaned:
// absolute names, `..` and duplicate names are refused or resolved here, once.
import { createHash, hash as hashOnce, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
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
  /** the digest came from the tar's TSD.sha256 record, unchecked: the bytes are checked when read */
  readonly claimed?: true;
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

/** A name that is already clean, but for one trailing slash: no empty, `.` or `..` segment. */
const PLAIN_NAME = /^(?!\.{1,2}(?:\/|$))[^/]+(?:\/(?!\.{1,2}(?:\/|$))[^/]+)*\/?$/;

/** Cleans an archive name to a relative path; undefined when it would leave the root. */
export const cleanPath = (name: string): string | undefined =>
  // the common case (tsd-ctx's names: relative, single slashes, no dot segments) needs no split
  PLAIN_NAME.test(name) ? (name.endsWith('/') ? name.slice(0, -1) : name) : cleanSegments(name);

/** cleanPath by walking every segment (`.` and empty dropped, `..` applied). */
export const cleanSegments = (name: string): string | undefined => {
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

/**
 * A file whose digest tsd-ctx sent is trusted for cache keys (a hit reads no byte), and its bytes
 * are checked when a step reads them: a cache entry is only ever made from bytes that really have
 * the digests of its key, so a wrong record cannot poison the cache (docs/build.md, "The cache").
 */
const digestLie = (e: ContextEntry): Error & Failure =>
  Object.assign(new Error(`build context: ${e.path}: its bytes do not match the TSD.sha256 record sent with it (the file changed while tsd-ctx read it, or the record is wrong)`), {
    _tag: 'ContextDigestMismatch',
    exitCode: ExitCode.user,
  });

class Verifying extends Transform {
  private readonly hash = createHash('sha256');
  constructor(private readonly entry: ContextEntry) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    done(`sha256:${this.hash.digest('hex')}` === this.entry.sha256 ? null : digestLie(this.entry));
  }
}

/** Reads of files that follow each other in the spool fetch this much at once. */
const READ_WINDOW = 4 << 20;
/** ...when the next file starts at most this far after the last one read (tar headers lie between). */
const READ_GAP = 64 << 10;

/** How much of the spool is gathered before one write: few large writes instead of one per entry chunk. */
const SPOOL_BATCH = 4 << 20;

/** Spools left for the next build are named so (no PID first: the sweep of dead builds skips them). */
const FREE_SPOOL = 'spool-free-';
/** At most this many are kept, each at most FREE_SPOOL_MAX bytes; the others are removed. */
const FREE_SPOOLS = 2;
const FREE_SPOOL_MAX = 1 << 30;

/**
 * An append-only temp file: chunks are kept (not copied) until SPOOL_BATCH bytes are pending, then
 * written with one writev on libuv's pool while the next batch gathers. `append` returns a promise
 * only when the caller must wait (two batches in memory at most).
 */
class Spool {
  private parts: Buffer[] = [];
  private pending = 0;
  private writing: Promise<void> = Promise.resolve();
  private constructor(private readonly fh: fs.FileHandle) {}

  /** Bytes appended so far (the spool's length once closed). */
  written = 0;

  /**
   * Opens a new spool at `path`, or, given `free` (a directory of spools earlier builds left),
   * claims one of them by renaming it to `path` (atomic: two builds never get the same one) and
   * overwrites it from the start: writing over page-cache pages that exist costs a copy, where a
   * new file costs a fresh page and a block reservation per 4 KiB (measured on the 300 MB
   * context: ~0.3 s of sys time against 0.1–0.7 s; docs/build.md).
   */
  static async open(path: string, free?: string): Promise<Spool> {
    if (free !== undefined) {
      const names = await fs.readdir(free).catch(() => [] as string[]);
      for (const name of names) {
        if (!name.startsWith(FREE_SPOOL)) continue;
        const claimed = await fs.rename(join(free, name), path).then(
          () => true,
          () => false,
        );
        if (claimed) return new Spool(await fs.open(path, 'r+'));
      }
    }
    return new Spool(await fs.open(path, 'w'));
  }

  append(b: Buffer): Promise<void> | undefined {
    this.parts.push(b);
    this.pending += b.length;
    this.written += b.length;
    return this.pending >= SPOOL_BATCH ? this.flush() : undefined;
  }

  private flush(): Promise<void> {
    const parts = this.parts;
    this.parts = [];
    this.pending = 0;
    const before = this.writing;
    this.writing = before.then(async () => {
      let left = parts;
      while (left.length > 0) {
        let { bytesWritten } = await this.fh.writev(left);
        // a short write (rare on a regular file): go on from where it stopped
        const rest: Buffer[] = [];
        for (const b of left) {
          if (bytesWritten >= b.length) bytesWritten -= b.length;
          else {
            rest.push(bytesWritten > 0 ? b.subarray(bytesWritten) : b);
            bytesWritten = 0;
          }
        }
        left = rest;
      }
    });
    // handled here so a failed write is never an unhandled rejection; whoever waits next sees it
    this.writing.catch(() => undefined);
    return before;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
      await this.writing;
      // a reused spool may be longer than this context: its tail is dropped
      await this.fh.truncate(this.written);
    } finally {
      await this.fh.close();
    }
  }

  /** After a failure: wait for what is in flight, ignore its errors, close. */
  async abandon(): Promise<void> {
    await this.writing.catch(() => undefined);
    await this.fh.close().catch(() => undefined);
  }
}

/** A context tar that is a regular file (`tsd-build < ctx.tar`): read in place, never spooled. */
export interface ContextFile {
  /** a path that opens the file (e.g. /proc/self/fd/0) */
  readonly path: string;
  /** where the tar starts in it */
  readonly start: number;
}

/**
 * Reads a context tar stream into a spool file under `dir` (on the store's disk); or, when the
 * tar is a regular file (`file`), indexes it where it is: its files are ranges of it, every one
 * checked against its digest when read, since the file is not ours and may change.
 */
export const readContextTar = async (input: Readable, dir: string, file?: ContextFile, freeSpools?: string): Promise<E.Either<Failure, BuildContext>> => {
  await fs.mkdir(dir, { recursive: true });
  const spoolPath = file?.path ?? join(dir, `context-${process.pid}-${Date.now()}.spool`);
  const base = file?.start ?? 0;
  const removeSpool = () => (file ? Promise.resolve() : fs.unlink(spoolPath).catch(() => undefined));
  // after a build, its spool is left in `freeSpools` for the next one (see Spool.open), unless
  // enough are there already or it is too big to keep
  const releaseSpool = async (): Promise<void> => {
    if (file) return;
    if (freeSpools !== undefined && spool !== undefined && spool.written <= FREE_SPOOL_MAX) {
      const names = await fs.readdir(freeSpools).catch(() => [] as string[]);
      if (names.filter((n) => n.startsWith(FREE_SPOOL)).length < FREE_SPOOLS) {
        const kept = await fs.rename(spoolPath, join(freeSpools, `${FREE_SPOOL}${process.pid}-${Date.now()}`)).then(
          () => true,
          () => false,
        );
        if (kept) return;
      }
    }
    await removeSpool();
  };
  let spool: Spool | undefined;
  try {
    if (!file) spool = await Spool.open(spoolPath, freeSpools);
  } catch (e) {
    return E.left(fromError('read build context')(e));
  }
  const entries = new Map<string, ContextEntry>();
  const extract = tar.extract();
  // a spool write that fails (disk full) fails the tee below: the pipeline reports it
  let bad: Failure | undefined;
  let dockerfile: string | undefined;
  extract.on('entry', (h, stream, next) => {
    stream.on('error', () => undefined); // the pipeline reports a cut or corrupt context
    const path = cleanPath(h.name);
    const pax = h.pax as Record<string, unknown> | null | undefined;
    if (path !== undefined && pax && pax['TSD.role'] === 'dockerfile') dockerfile = path;
    const type = h.type;
    const skip = () => {
      stream.on('end', () => next());
      stream.resume();
    };
    const fail = (f: Failure) => {
      bad ??= f;
      skip();
    };
    if (path === undefined) return fail(badContext(`entry ${JSON.stringify(h.name)} leaves the context`));
    if (type !== 'file' && type !== 'directory' && type !== 'symlink' && type !== 'link' && type !== 'contiguous-file') {
      // devices and fifos have no place in a context: skipped as Docker's tar reader does, but
      // never silently for files a COPY names (they are simply absent)
      return skip();
    }
    const meta = {
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
        entries.set(path, { ...target, ...meta, type: 'file' });
      } else entries.set(path, { ...meta, type, size: 0, ...(type === 'symlink' ? { linkname: linkname! } : {}) });
      return skip();
    }
    // the body's bytes sit in the spool (a copy of the raw tar) at the offset tar-stream reports
    const start = (h as { byteOffset?: number }).byteOffset;
    if (typeof start !== 'number') return fail(badContext(`${path}: the tar reader gave no offset`));
    const given = digestFromPax(h.pax);
    let size = 0;
    if (given) {
      // tsd-ctx sent the digest: the bytes need not be looked at here (tar-stream gives the
      // entry exactly its header's size, else the archive fails as cut)
      size = h.size ?? 0;
      stream.resume();
    } else {
      // most files arrive in one chunk: hashed in one call, no Hash object (see read below)
      let first: Buffer | undefined;
      let hash: Hash | undefined;
      stream.on('data', (chunk: unknown) => {
        size += (chunk as Buffer).length;
        if (hash === undefined && first === undefined) first = chunk as Buffer;
        else {
          if (hash === undefined) {
            hash = createHash('sha256');
            hash.update(first!);
            first = undefined;
          }
          hash.update(chunk as Buffer);
        }
      });
      stream.on('end', () => (digest = `sha256:${hash ? hash.digest('hex') : hashOnce('sha256', first ?? Buffer.alloc(0), 'hex')}`));
    }
    let digest = given;
    stream.on('end', () => {
      entries.set(path, { ...meta, type: 'file', size, offset: base + start, sha256: digest!, ...(given || file ? { claimed: true as const } : {}) });
      next();
    });
  });
  // the raw tar goes to the spool as it arrives, in large writes, before tar-stream parses it
  const tee = new Transform({
    transform(chunk: Buffer, _e, done) {
      const wait = spool?.append(chunk);
      if (wait) wait.then(() => done(null, chunk), (e: Error) => done(e));
      else done(null, chunk);
    },
  });
  try {
    if (spool) await pipeline(input, tee, extract);
    else await pipeline(input, extract);
    await spool?.close();
  } catch (e) {
    await spool?.abandon();
    await removeSpool();
    return E.left(fromError('read build context')(e));
  }
  if (bad) {
    await removeSpool();
    return E.left(bad);
  }
  const children = indexChildren(entries);
  let handle: Promise<fs.FileHandle> | undefined;
  let window: { start: number; bytes: Buffer } | undefined;
  let lastEnd = 0;
  const readSpool = async (e: ContextEntry): Promise<Buffer> => {
    const off = e.offset ?? 0;
    if (e.size === 0) return Buffer.alloc(0);
    if (window && off >= window.start && off + e.size <= window.start + window.bytes.length) {
      lastEnd = off + e.size;
      return window.bytes.subarray(off - window.start, off - window.start + e.size);
    }
    handle ??= fs.open(spoolPath, 'r');
    const fh = await handle;
    // reading in order (COPY of a directory: its files lie one after another in the spool):
    // one read of READ_WINDOW serves the files that follow
    const sequential = off >= lastEnd && off - lastEnd <= READ_GAP;
    const len = sequential ? Math.max(READ_WINDOW, e.size) : e.size;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(buf, got, len - got, off + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (sequential) window = { start: off, bytes: buf.subarray(0, got) };
    lastEnd = off + e.size;
    return buf.subarray(0, Math.min(got, e.size));
  };
  return E.right({
    entries,
    children,
    open: (e) => {
      const bytes = e.size === 0 ? createReadStream('/dev/null') : createReadStream(spoolPath, { start: e.offset ?? 0, end: (e.offset ?? 0) + e.size - 1 });
      if (!e.claimed) return bytes;
      const check = new Verifying(e);
      bytes.on('error', (err) => check.destroy(err));
      // a reader that stops early (ADD's look at an archive's head) closes the file too
      check.on('close', () => bytes.destroy());
      return bytes.pipe(check);
    },
    read: async (e) => {
      const bytes = await readSpool(e);
      if (e.claimed) {
        // one-shot crypto.hash: 20,000 Hash objects (createHash) cost a cold 300 MB COPY ~1 s of GC
        const actual = `sha256:${hashOnce('sha256', bytes, 'hex')}`;
        if (actual !== e.sha256) throw digestLie(e);
      }
      return bytes;
    },
    dispose: async () => {
      if (handle) await (await handle).close().catch(() => undefined);
      await releaseSpool();
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
