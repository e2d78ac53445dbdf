// Fetch: one blob from a registry into the store. The bytes go to a partial file named after the
// digest (ingest/ALG-HEX.partial), guarded by a per-blob lock so two pulls never write it at
// once; they are hashed as they are written. A fault resumes the partial with a Range request,
// in this process or in the next one (after kill -9: the lock's dead holder is broken, the
// partial re-hashed from disk, the download continued). Only verified bytes are renamed to
// their final name; a partial that turns out wrong is deleted and fetched once more from zero.
//
// With a snapshot to make (tsd-pull --unpack), an attempt that starts at byte 0 also feeds every
// byte to a PendingSnapshot (src/snapshot/pending.ts), which unpacks the layer while it downloads.
// The blob's digest and the tar's diff ID are both checked before either gets its final name; on
// any failure both are thrown away. A resumed attempt (Range) does not feed one: the pull then
// unpacks from the committed blob.
//
// A layer may be fetched while its image's config is still being checked (a `gate`): it is
// downloaded and verified, but renamed only once the config is good, and thrown away if not.
import type { Hash } from 'node:crypto';
import { constants as fsc, createReadStream, mkdirSync, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { pipeline } from 'node:stream/promises';
import { ExitCode, failure, fromError, isFailure, type Failure } from '../failure.js';
import { algorithmOf, hexOf, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { blobWhat, getBlob } from '../registry/blobs.js';
import { networkFailure } from '../registry/http.js';
import type { Report } from '../registry/progress.js';
import { retryDelay, sleep } from '../registry/retry.js';
import type { Session } from '../registry/session.js';
import { hasBlob, hasBlobSync } from '../store/blob.js';
import type { StorePaths } from '../store/layout.js';
import { leaseBlob } from '../store/lease.js';
import { acquireLock, releaseLock } from '../store/lock.js';
import type { PendingSnapshot } from '../snapshot/pending.js';

/** How long a pull waits for another process that fetches the same blob. */
const BLOB_LOCK_WAIT_MS = 6 * 60 * 60 * 1000;

/** Bytes written between two early flushes of a partial (see PartialWriter.flushEarly). */
const SYNC_STEP = 16 * 1024 * 1024;

/**
 * Gives a verified, fsynced partial its final name. The directory entry is not fsynced here: a
 * pull fsyncs each blob directory once, after its last blob and before it writes a name
 * (`syncBlobDirs`), so N blobs cost one directory fsync, not N. A crash before that loses only
 * unnamed blobs, which a later pull fetches again.
 */
const rename = async (p: StorePaths, partial: string, digest: Digest): Promise<void> => {
  leaseBlob(p, digest);
  // the directory is there but for a first blob of its algorithm (blobs/sha512): no mkdir round trip
  await fs.rename(partial, p.blob(digest)).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    await fs.mkdir(p.blobDir(algorithmOf(digest)), { recursive: true });
    await fs.rename(partial, p.blob(digest));
  });
};

export const partialPath = (p: StorePaths, d: Digest): string => join(p.ingest, `${algorithmOf(d)}-${hexOf(d)}.partial`);

/** Appends to the partial at `position`, hashing each chunk on its way. */
class PartialWriter extends Writable {
  constructor(
    private readonly fh: FileHandle,
    private readonly hash: Hash,
    public position: number,
    private readonly limit: number,
    private readonly onBytes: (position: number) => void,
    private readonly what: string,
    /** true once the blob is no longer wanted (see FetchOptions.gate): the next write fails */
    private readonly stopped: () => boolean,
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  /** a second reader of the same bytes (a pending snapshot's input), dropped when it fails */
  private mirror: Writable | undefined;
  mirrorTo(w: Writable): void {
    this.mirror = w;
    w.on('error', () => {
      if (this.mirror === w) this.mirror = undefined; // the snapshot reports why; the download goes on
    });
  }
  /** ends the mirror after the last byte (the snapshot then finishes its unpack) */
  endMirror(): void {
    this.mirror?.end();
    this.mirror = undefined;
  }

  /** waits until the mirror has room again (or is gone), so a slow unpack slows the download */
  private mirrorRoom(then: () => void): void {
    const m = this.mirror;
    if (m === undefined || !m.writableNeedDrain || m.destroyed) return then();
    const go = () => {
      m.off('drain', go);
      m.off('close', go);
      then();
    };
    m.on('drain', go);
    m.on('close', go);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (e?: Error | null) => void): void {
    const bufs = chunks.map((c) => c.chunk);
    const length = bufs.reduce((n, b) => n + b.length, 0);
    if (this.stopped()) {
      done(new Error('stopped: the blob is no longer wanted'));
      return;
    }
    if (this.position + length > this.limit) {
      done(failure('SizeMismatch', `${this.what}: the registry sent more than the ${this.limit} bytes the manifest declares`, ExitCode.tool) as unknown as Error);
      return;
    }
    // hashed before the write lands, so hashing overlaps the disk; should the write fail, the
    // attempt fails, and the next one hashes the partial again from what is on disk
    for (const b of bufs) this.hash.update(b);
    if (this.mirror !== undefined && !this.mirror.destroyed) for (const b of bufs) this.mirror.write(b);
    this.fh
      .writev(bufs, this.position)
      .then(({ bytesWritten }) => (bytesWritten === length ? undefined : this.writeRest(Buffer.concat(bufs).subarray(bytesWritten), this.position + bytesWritten)))
      .then(() => {
        this.position += length;
        this.onBytes(this.position);
        this.flushEarly();
        this.mirrorRoom(() => done());
      }, (e: Error) => {
        this.diskError ??= e;
        done(e);
      });
  }

  /** The write error, when the local disk (not the network) failed the attempt: full, read-only. */
  diskError: Error | undefined;

  /** After a short write (a file system nearly full), writes the rest: the kernel then says why (ENOSPC). */
  private async writeRest(rest: Buffer, position: number): Promise<void> {
    while (rest.length > 0) {
      const { bytesWritten } = await this.fh.write(rest, 0, rest.length, position);
      rest = rest.subarray(bytesWritten);
      position += bytesWritten;
    }
  }

  private synced = 0;
  private syncing: Promise<void> | undefined;
  /**
   * Starts flushing what is written so far every SYNC_STEP bytes, while the download goes on, so
   * the fsync before the commit has little left to write (the disk works while the network does).
   */
  private flushEarly(): void {
    if (this.syncing !== undefined || this.position - this.synced < SYNC_STEP) return;
    const upTo = this.position;
    this.syncing = this.fh.datasync().then(
      () => {
        this.synced = upTo;
        this.syncing = undefined;
      },
      () => {
        this.syncing = undefined; // the final fsync reports any error
      },
    );
  }

  /** Waits for an early flush in flight (before the final fsync, and before the file is closed). */
  async settled(): Promise<void> {
    await this.syncing;
  }
  override _write(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null) => void): void {
    this._writev([{ chunk }], done);
  }
}

/** Hashes the first `length` bytes of a partial left by an earlier attempt or process. */
const hashPrefix = async (path: string, algorithm: 'sha256' | 'sha512', length: number): Promise<Hash> => {
  const hash = process.getBuiltinModule('node:crypto').createHash(algorithm);
  if (length > 0) {
    await pipeline(createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20 }), new Writable({
      write(chunk: Buffer, _e, done) {
        hash.update(chunk);
        done();
      },
    }));
  }
  return hash;
};

/** 'unpacked': fetched, and its snapshot made from the same bytes while they arrived */
export type Fetched = 'present' | 'fetched' | 'unpacked';

/** Starts a snapshot fed by the download (undefined: none to make now, see beginUnpack). */
export type SnapshotSink = () => Promise<PendingSnapshot | undefined>;

/** Downloads and verifies one attempt's worth; true when the partial is complete. */
const attempt = async (
  s: Session,
  repository: string,
  d: Descriptor,
  path: string,
  report: Report,
  first: boolean,
  sink: SnapshotSink | undefined,
  stopped: () => boolean,
): Promise<{ hash: Hash; size: number; pending?: PendingSnapshot }> => {
  const what = blobWhat(s, repository, d.digest);
  const fh = await fs.open(path, fsc.O_RDWR | fsc.O_CREAT, 0o644);
  try {
    let offset = (await fh.stat()).size;
    if (offset > d.size) {
      await fh.truncate(0);
      offset = 0;
    }
    if (first) report({ event: 'start', digest: d.digest, total: d.size, offset });
    if (offset === d.size) return { hash: await hashPrefix(path, algorithmOf(d.digest), offset), size: offset };
    const res = await getBlob(s, repository, d.digest, offset);
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? '').trim());
    if (res.status === 206 && !range) {
      // a partial answer that does not say which part: start over, from byte 0 without a Range
      res.body.resume();
      await fh.truncate(0);
      throw failure('BadRange', `${what}: a 206 without a usable Content-Range`, ExitCode.tool, true);
    }
    const total = res.status === 206 ? (range?.[3] === '*' ? d.size : Number(range?.[3])) : Number(res.headers['content-length'] ?? d.size);
    if (total !== d.size) {
      res.body.resume();
      throw failure('SizeMismatch', `${what}: the registry has ${total} bytes but the manifest declares ${d.size}; refused`, ExitCode.tool);
    }
    if (res.status !== 206 || Number(range?.[1]) !== offset) {
      // the registry sent the whole blob: start over
      await fh.truncate(0);
      offset = 0;
    }
    const hash = await hashPrefix(path, algorithmOf(d.digest), offset);
    const writer = new PartialWriter(fh, hash, offset, d.size, (done) => report({ event: 'bytes', digest: d.digest, done, total: d.size }), what, stopped);
    // only an attempt from byte 0 can feed a snapshot (it must see every byte in order)
    const pending = offset === 0 && sink !== undefined ? await sink() : undefined;
    if (pending) writer.mirrorTo(pending.input);
    try {
      try {
        await pipeline(res.body, writer);
      } catch (e) {
        await writer.settled();
        if (isFailure(e)) throw e;
        // the disk failed, not the network: no retry can help ("write blob …: no space left on device")
        if (writer.diskError !== undefined) throw fromError(`write ${what}`)(writer.diskError);
        throw networkFailure(`${what}: body cut at byte ${writer.position}`, e);
      }
      await writer.settled();
      if (writer.position < d.size) throw failure('Truncated', `${what}: body ended at byte ${writer.position} of ${d.size}`, ExitCode.tool, true);
      writer.endMirror();
      await fh.sync();
    } catch (e) {
      await pending?.abort();
      throw e;
    }
    return { hash, size: writer.position, ...(pending ? { pending } : {}) };
  } finally {
    await fh.close();
  }
};

export interface FetchOptions {
  /** a last check of the verified bytes before they are committed (a config must decode); throws a Failure */
  readonly check?: (path: string) => Promise<void>;
  /** a snapshot to make from the bytes as they arrive (tsd-pull --unpack) */
  readonly sink?: SnapshotSink;
  /**
   * the blob is committed only once this resolves (a layer fetched while its image's config is
   * still being checked); when it rejects, the download stops, the partial is deleted, and its
   * reason is thrown
   */
  readonly gate?: Promise<unknown>;
}

/**
 * Makes `d` present in the store, fetching it from `repository` unless it is there already.
 * Nothing reaches the blob's final name unless its size and digest are right.
 */
export const fetchBlob = async (p: StorePaths, s: Session, repository: string, d: Descriptor, report: Report, how: FetchOptions = {}): Promise<Fetched> => {
  const { check, sink, gate } = how;
  // once the gate has failed, the download stops and nothing of the blob is kept
  let closed: { why: unknown } | undefined;
  gate?.catch((why: unknown) => {
    closed = { why };
  });
  leaseBlob(p, d.digest);
  // a first look in one stat; a blob that is not plainly there (missing, or held aside by a
  // running gc) is looked for again under its lock, where hasBlob waits for the gc
  if (hasBlobSync(p, d.digest)) {
    report({ event: 'skip', digest: d.digest, total: d.size, reason: 'present' });
    return 'present';
  }
  mkdirSync(p.ingest, { recursive: true });
  const lock = await acquireLock(p.lock(`blob-${hexOf(d.digest)}`), BLOB_LOCK_WAIT_MS);
  try {
    if (await hasBlob(p, d.digest)) {
      report({ event: 'skip', digest: d.digest, total: d.size, reason: 'present' });
      return 'present';
    }
    const path = partialPath(p, d.digest);
    const what = blobWhat(s, repository, d.digest);
    let mismatches = 0;
    for (let n = 1; ; n++) {
      let problem: Failure;
      let pending: PendingSnapshot | undefined;
      try {
        const got = await attempt(s, repository, d, path, report, n === 1, sink, () => closed !== undefined);
        const { hash, size } = got;
        pending = got.pending;
        const actual = `${algorithmOf(d.digest)}:${hash.digest('hex')}` as Digest;
        if (size === d.size && actual === d.digest) {
          if (pending) {
            // the bytes are the blob: an unpack that failed (corrupt, hostile, a lying diff ID) is final
            const unpacked = await pending.unpacked;
            if (E.isLeft(unpacked)) {
              await fs.unlink(path).catch(() => undefined);
              throw { ...unpacked.left, retryable: false };
            }
          }
          if (check) {
            try {
              await check(path);
            } catch (e) {
              await fs.unlink(path).catch(() => undefined);
              throw isFailure(e) ? { ...e, retryable: false } : e;
            }
          }
          await gate;
          await rename(p, path, d.digest);
          report({ event: 'done', digest: d.digest, total: d.size });
          if (!pending) return 'fetched';
          const made = await pending.commit();
          if (E.isLeft(made)) throw { ...made.left, retryable: false };
          return 'unpacked';
        }
        await fs.unlink(path).catch(() => undefined);
        problem = failure('DigestMismatch', `${what}: digest mismatch: got ${actual}; refused, nothing stored`, ExitCode.tool);
        if (++mismatches > 1) throw problem;
        // a resumed partial may hold bytes of a faulty earlier attempt: fetch it whole once more
      } catch (e) {
        if (closed) {
          await fs.unlink(path).catch(() => undefined);
          throw closed.why;
        }
        const f = isFailure(e) ? e : networkFailure(what, e);
        if (f._tag === 'SizeMismatch') await fs.unlink(path).catch(() => undefined);
        if (!f.retryable || n >= s.policy.attempts) {
          throw f.retryable ? failure(f._tag, `${f.message} (gave up after ${n} attempts)`, f.exitCode) : f;
        }
        problem = f;
      } finally {
        await pending?.abort();
      }
      const delayMs = retryDelay(s.policy, n, undefined, Math.random());
      s.retried({ what, attempt: n, delayMs, reason: problem.message });
      await sleep(delayMs);
    }
  } finally {
    await releaseLock(lock);
  }
};
