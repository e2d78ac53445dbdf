// Segment: a run of consecutive context entries turned into their tar bytes. The walk cuts the
// context into segments (a few hundred entries or about 1 MiB of small files, or one large
// file); an Encoder reads each file once into its scratch buffer, hashes those bytes (unless the
// digest cache, src/ctx/digest-cache.ts, knows them and the file did not change), hands
// tar-stream whole buffers (`pack.entry(header, buffer)`) and copies what tar-stream emits into
// large output buffers. Segments are independent (a tar is a plain sequence of entries), so the
// encoder on the main thread and the one on the worker thread (src/ctx/pack.ts decides) can take
// turns as long as their output reaches stdout in segment order: the bytes are the same however
// the work was shared. A segment's small files may come already read (`data`, by the main thread
// for the worker). Files larger than BIG are hashed in one pass and sent in a second one.
//
// This module is plain data in, bytes out: it knows no threads (nor the cache: a cached digest
// comes in the entry, a computed one goes back with the segment's end). Files are opened with
// O_NOFOLLOW|O_NONBLOCK and checked with fstat against the inode the walk saw, so a path
// swapped (for a symlink, a fifo, or through a renamed parent directory) is reported as changed,
// never followed or blocked on.
import * as crypto from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import tar from 'tar-stream';

/** The PAX key of each regular file's digest (read by src/build/context.ts). */
export const DIGEST_PAX_KEY = 'TSD.sha256';
/** The PAX key marking the Dockerfile the user chose (`TSD.role=dockerfile`). */
export const ROLE_PAX_KEY = 'TSD.role';

/** Files up to this size are read whole, once; bigger ones are streamed twice. */
export const BIG = 8 << 20;
/** A segment closes once its small files hold this many bytes, or at SEGMENT_ENTRIES entries. */
export const SEGMENT_BYTES = 1 << 20;
export const SEGMENT_ENTRIES = 512;
/** Output buffers: what one write to stdout carries. */
export const OUT_SIZE = 1 << 20;
/** A large file is sent in pieces of this size. */
const PIECE = 1 << 20;

/** One tar entry, as plain data (it crosses to worker threads by structured clone). */
export interface EntrySpec {
  /** the tar name: `dir/` for a directory */
  readonly name: string;
  /** the context path, for messages */
  readonly path: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'link';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** seconds since the epoch, already clamped */
  readonly mtime: number;
  readonly linkname?: string;
  /** a file: its size at walk time */
  readonly size?: number;
  /** a file on disk: where to read it, and the inode the walk saw */
  readonly abs?: string;
  readonly dev?: number;
  readonly ino?: number;
  /** a file on disk: its times as the walk saw them (a digest cache key, src/ctx/digest-cache.ts) */
  readonly mtimeMs?: number;
  readonly ctimeMs?: number;
  /**
   * a file on disk: its digest from the cache, for the stat the walk saw; used only if the file
   * still has that stat once its bytes are read, else the bytes are hashed
   */
  readonly known?: string;
  /** a file given as bytes: a Dockerfile from outside the context or stdin, or a small file the main thread already read */
  readonly data?: Uint8Array;
  /** the Dockerfile the user chose */
  readonly dockerfile?: boolean;
}

export interface SegmentJob {
  readonly id: number;
  readonly entries: readonly EntrySpec[];
  /** the last segment ends the archive (tar-stream's two zero blocks) */
  readonly last: boolean;
  readonly digests: boolean;
}

/** Why a segment stopped: the file at `path` changed while it was read, or an errno error. */
export type SegmentFailure =
  | { readonly path: string; readonly changed: true }
  | { readonly path: string; readonly code?: string; readonly message: string };

/** Where an encoder's bytes go. */
export interface Output {
  /** a free output buffer of OUT_SIZE bytes (never waits: `room` is the back-pressure) */
  readonly take: () => Buffer;
  /**
   * The first `used` bytes of `buf` are segment `id`'s next bytes; `end` closes the segment, with
   * why it stopped early if it did (the bytes before the failing entry still come first) and the
   * digests it computed (see Learned).
   */
  readonly emit: (id: number, buf: Buffer, used: number, end: boolean, failure?: SegmentFailure, learned?: Learned) => void;
  /** resolves once an output buffer is free again; undefined when one is free now */
  readonly room: () => Promise<void> | undefined;
}

/** The sha256 hex a segment computed for its i-th entry, '' where none was (a cache hit, not a file): what the cache can learn. */
export type Learned = readonly string[];

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

type OneShotHash = (algorithm: string, data: Uint8Array, encoding: 'hex') => string;
const oneShot = (crypto as unknown as { hash?: OneShotHash }).hash;
const sha256Hex = (data: Uint8Array): string => (oneShot ? oneShot('sha256', data, 'hex') : crypto.createHash('sha256').update(data).digest('hex'));

/** The two zero blocks tar-stream ends an archive with: one shared buffer, recognised by identity. */
let endOfTar: Promise<Buffer> | undefined;
const endOfArchive = (): Promise<Buffer> =>
  (endOfTar ??= new Promise((resolve) => {
    const probe = tar.pack();
    probe.once('data', (c: unknown) => resolve(c as Buffer));
    probe.finalize();
  }));

export class Changed extends Error {}

type Header = Partial<tar.Header> & { name: string };

/** Reads files and encodes segments; one per thread, reused for every segment it is given. */
export class Encoder {
  private scratch = Buffer.allocUnsafeSlow(SEGMENT_BYTES + 1);

  constructor(private readonly out: Output) {}

  private scratchOf(size: number): Buffer {
    if (this.scratch.length < size) this.scratch = Buffer.allocUnsafeSlow(size);
    return this.scratch;
  }

  /** Writes the segment's bytes to the output; resolves with why it stopped early, if it did. */
  async encode(job: SegmentJob): Promise<SegmentFailure | undefined> {
    const end = await endOfArchive();
    const wait = this.out.room();
    if (wait) await wait;
    const pack = tar.pack();
    let buf = this.out.take();
    let used = 0;
    pack.on('data', (chunk: unknown) => {
      const c = chunk as Buffer;
      if (c === end && !job.last) return;
      let at = 0;
      while (at < c.length) {
        const n = c.copy(buf, used, at);
        used += n;
        at += n;
        if (used === buf.length) {
          this.out.emit(job.id, buf, used, false);
          buf = this.out.take();
          used = 0;
        }
      }
    });
    const ended = new Promise<void>((resolve, reject) => {
      pack.once('end', resolve);
      pack.once('error', reject);
    });
    ended.catch(() => undefined);
    let failure: SegmentFailure | undefined;
    const learned: string[] = job.digests ? new Array<string>(job.entries.length).fill('') : [];
    let small = 0;
    // entries handed to tar-stream and not yet done; one shared callback, no promise per entry
    let open = 0;
    let entryError: Error | undefined;
    let idle: (() => void) | undefined;
    const entryDone = (err?: Error | null) => {
      open--;
      if (err) entryError ??= err;
      if (open === 0 && idle) {
        const wake = idle;
        idle = undefined;
        wake();
      }
    };
    const settled = async (): Promise<void> => {
      if (open > 0) await new Promise<void>((resolve) => (idle = resolve));
      if (entryError) throw entryError;
    };
    const add = (header: Header, data?: Uint8Array) => {
      open++;
      if (data === undefined) pack.entry(header, entryDone);
      else pack.entry(header, data as Buffer, entryDone);
    };
    // entry i's digest: the cache's when it still holds, else the sha256 of the bytes read (learned)
    const hashOf = (i: number, data: Uint8Array, known: string | undefined): string => {
      if (!job.digests) return '';
      if (known !== undefined) return known;
      return (learned[i] = sha256Hex(data));
    };
    for (let i = 0; i < job.entries.length; i++) {
      const e = job.entries[i]!;
      const base = { mode: e.mode, uid: e.uid, gid: e.gid, uname: '', gname: '', mtime: new Date(e.mtime * 1000) };
      try {
        if (e.type === 'directory') add({ name: e.name, type: 'directory', ...base });
        else if (e.type === 'symlink') add({ name: e.name, type: 'symlink', linkname: e.linkname!, ...base });
        else if (e.type === 'link') add({ name: e.name, type: 'link', linkname: e.linkname!, ...base, size: 0 });
        else if (e.data !== undefined) {
          const data = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
          const hex = hashOf(i, data, e.known);
          if (e.abs !== undefined) add({ name: e.name, type: 'file', size: data.length, ...base, ...paxOf(e, hex) }, data);
          else add({ name: e.name, type: 'file', size: data.length, ...base, pax: { ...(hex !== '' ? { [DIGEST_PAX_KEY]: `sha256:${hex}` } : {}), ...(e.dockerfile ? { [ROLE_PAX_KEY]: 'dockerfile' } : {}) } }, data);
        } else if (e.size! <= BIG) {
          const size = e.size!;
          const scratch = this.scratchOf(small + size + 1);
          const { data, known } = readSmall(e, scratch, small);
          small += size;
          add({ name: e.name, type: 'file', size, ...base, ...paxOf(e, hashOf(i, data, known)) }, data);
        } else {
          // the walk gives a large file a segment of its own, so the scratch is free here
          await settled();
          const hex = await this.sendLarge(pack, e, { name: e.name, type: 'file', size: e.size!, ...base }, job.digests);
          if (job.digests && hex !== e.known) learned[i] = hex;
        }
      } catch (err) {
        failure = err instanceof Changed ? { path: e.path, changed: true } : { path: e.path, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message };
        break;
      }
    }
    if (failure === undefined) {
      pack.finalize();
      try {
        await ended;
      } catch (err) {
        failure = { path: job.entries[job.entries.length - 1]?.path ?? '', message: (err as Error).message };
      }
    } else {
      await settled().catch(() => undefined);
      pack.destroy();
    }
    this.out.emit(job.id, buf, used, true, failure, learned);
    return failure;
  }

  /**
   * Hashes a large file in one pass (unless the cache knows its digest), then sends it in a second,
   * hashed again and compared; resolves with the digest ('' without digests).
   */
  private async sendLarge(pack: ReturnType<typeof tar.pack>, e: EntrySpec, header: Header, digests: boolean): Promise<string> {
    const size = e.size!;
    const piece = this.scratchOf(PIECE);
    let digest = (digests && e.known) || '';
    if (digests && digest === '') {
      const h = crypto.createHash('sha256');
      const n = readPieces(e, piece, size, (c) => h.update(c));
      if (n !== size) throw new Changed();
      digest = h.digest('hex');
    }
    const fd = openChecked(e);
    const again = crypto.createHash('sha256');
    try {
      let sink!: ReturnType<typeof pack.entry>;
      const written = new Promise<void>((resolve, reject) => {
        sink = pack.entry({ ...header, ...paxOf(e, digest) }, (err) => (err ? reject(err) : resolve()));
      });
      written.catch(() => undefined);
      let sent = 0;
      while (sent < size) {
        const wait = this.out.room();
        if (wait) await wait;
        // a fresh buffer per piece: tar-stream may still hold the previous one
        const chunk = Buffer.allocUnsafe(Math.min(PIECE, size - sent));
        let n = 0;
        while (n < chunk.length) {
          const r = readSync(fd, chunk, n, chunk.length - n, null);
          if (r === 0) break;
          n += r;
        }
        if (n !== chunk.length) {
          sink.destroy();
          throw new Changed();
        }
        if (digests) again.update(chunk);
        sent += n;
        if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once('drain', resolve));
      }
      if (readSync(fd, piece, 0, 1, null) !== 0) {
        sink.destroy();
        throw new Changed();
      }
      (sink as unknown as { end: () => void }).end();
      await written;
    } finally {
      closeSync(fd);
    }
    if (digests && again.digest('hex') !== digest) throw new Changed();
    return digest;
  }
}

const paxOf = (e: EntrySpec, hex: string): { pax?: Record<string, string> } => {
  if (!e.dockerfile && hex === '') return {};
  const pax: Record<string, string> = {};
  if (e.dockerfile) pax[ROLE_PAX_KEY] = 'dockerfile';
  if (hex !== '') pax[DIGEST_PAX_KEY] = `sha256:${hex}`;
  return { pax };
};

/** Opens a file without following a symlink: a path that became one is a changed file (ELOOP). */
const openFile = (e: EntrySpec): number => {
  try {
    return openSync(e.abs!, OPEN_FLAGS);
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'ELOOP' ? new Changed() : err;
  }
};

/** Opens a file as the walk saw it: the same inode, a regular file, no symlink followed. */
const openChecked = (e: EntrySpec): number => {
  const fd = openFile(e);
  try {
    const s = fstatSync(fd);
    if (!s.isFile() || s.ino !== e.ino || s.dev !== e.dev) throw new Changed();
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
};

/**
 * Reads a file of `e.size` bytes into `into` at `at` (which has a byte to spare after it),
 * checking it is the inode the walk saw and did not grow or shrink; throws Changed or an errno
 * error. `known` is the cached digest when the file, after the read, still has the stat the walk
 * saw (so the bytes read are the ones the cache hashed).
 *
 * The one fstat comes after the read, so a cache hit costs no second one: whatever the path led
 * to was read without blocking (O_NONBLOCK) and at most size + 1 bytes of it, and is then
 * reported as changed unless it is the regular file the walk saw.
 */
export const readSmall = (e: EntrySpec, into: Buffer, at: number): { data: Buffer; known?: string } => {
  const size = e.size!;
  const fd = openFile(e);
  let n = 0;
  let readError: unknown;
  let s: Stats;
  try {
    try {
      // ask for one byte more than the size: a file that grew since the walk is caught here, and
      // a short count from a regular file is its end
      for (;;) {
        const r = readSync(fd, into, at + n, size + 1 - n, null);
        n += r;
        if (r === 0 || n >= size) break;
      }
    } catch (err) {
      readError = err;
    }
    s = fstatSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!s.isFile() || s.ino !== e.ino || s.dev !== e.dev) throw new Changed();
  if (readError !== undefined) throw readError;
  if (n !== size) throw new Changed();
  const known = e.known !== undefined && s.ctimeMs === e.ctimeMs && s.mtimeMs === e.mtimeMs && s.size === size ? e.known : undefined;
  return { data: into.subarray(at, at + size), ...(known !== undefined ? { known } : {}) };
};

/** Reads a whole file in pieces, handing each to `each`; returns the number of bytes read. */
const readPieces = (e: EntrySpec, piece: Buffer, limit: number, each: (c: Buffer) => void): number => {
  const fd = openChecked(e);
  let total = 0;
  try {
    for (;;) {
      const r = readSync(fd, piece, 0, piece.length, null);
      if (r === 0) break;
      total += r;
      if (total > limit) break;
      each(piece.subarray(0, r));
    }
  } finally {
    closeSync(fd);
  }
  return total;
};
