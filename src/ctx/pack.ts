// Pack: walk entries become a deterministic tar (tar-stream). Regular files carry a PAX record
// `TSD.sha256=sha256:<hex>` of their bytes so the builder never hashes them again; hard links
// become link entries to the first path sent; symlinks keep their target; sockets, fifos and
// devices are skipped with a warning. Times are clamped to --mtime.
//
// The main thread walks and plans (every header field but the digest is known from the lstat)
// and cuts the entries into segments (src/ctx/segment.ts). The first segment is encoded on the
// main thread; once the tree proves bigger than that, one worker thread (src/ctx/worker.ts) is
// started and the work is split in two: the main thread keeps walking and reads each segment's
// small files into a batch buffer it hands over, the worker hashes them, encodes the tar with
// tar-stream and writes it to the blocking stdout descriptor from the thread pool. Without a
// descriptor (a library caller's stream) or with threads off, the main thread does it all. The
// tar's bytes do not depend on who did what. Memory is bounded by the output buffers of each
// encoder and the few batch buffers out, whatever the size of the tree.
import { readlinkSync, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { DigestCache } from './digest-cache.js';
import { BIG, Changed, Encoder, readSmall, SEGMENT_BYTES, SEGMENT_ENTRIES, type EntrySpec, type Learned, type SegmentFailure, type SegmentJob } from './segment.js';
import type { WalkEntry } from './walk.js';
import { BufferPool, WORKER_URL, workerData_, type FromWorker, type ToWorker } from './worker.js';
import { fdSink, SegmentWriter, streamSink } from './writer.js';

export { DIGEST_PAX_KEY, ROLE_PAX_KEY } from './segment.js';

/** Segments the worker may have been given and not yet written. */
const AHEAD = 3;
/** Segments encoded on the main thread before the worker is started (a small tree never pays for it). */
const INLINE_SEGMENTS = 1;

export interface PackOptions {
  /** seconds since the epoch: later times are clamped to it */
  readonly mtime?: number;
  readonly warn: (message: string) => void;
  /** extra files not in the walk (a Dockerfile from outside the context or stdin) */
  readonly extra?: readonly { readonly path: string; readonly data: Buffer }[];
  /** the context path of the chosen Dockerfile, marked with TSD.role=dockerfile */
  readonly dockerfile?: string;
  /** false: encode everything on the main thread (default true; a worker needs `fd`) */
  readonly threads?: boolean;
  /** write the TSD.sha256 records (default true) */
  readonly digests?: boolean;
  /** digests of unchanged files from an earlier run, and where this run's are kept */
  readonly cache?: DigestCache;
  /**
   * a blocking descriptor open on what `out` writes to (stdout as a pipe made blocking, a file):
   * written from the thread pool instead of through `out`
   */
  readonly fd?: number;
}

const special = (s: Stats): string | undefined =>
  s.isSocket() ? 'socket' : s.isFIFO() ? 'fifo' : s.isBlockDevice() ? 'block device' : s.isCharacterDevice() ? 'character device' : undefined;

/** The reader of the tar went away (`tsd-ctx . | head`): the CLI ends quietly, as on EPIPE anywhere. */
const brokenPipe = (): Failure => failure('BrokenPipe', 'write the context tar: the reader went away', ExitCode.ok);

const changed = (path: string): Failure => failure('FileChanged', `read ${path}: the file changed while it was being sent`, ExitCode.tool);

const fromSegment = (f: SegmentFailure): Failure =>
  'changed' in f ? changed(f.path) : f.path === '' ? failure('ContextEncode', `write the context tar: ${f.message}`, ExitCode.tool) : fromError(`read ${f.path}`)(Object.assign(new Error(f.message), { code: f.code }));

/** The encoder on a worker thread, as the main thread sees it. */
interface Remote {
  readonly worker: Worker;
  ready: boolean;
  /** segments given and not yet written */
  busy: number;
}

/** Writes the tar of `entries` to `out`; resolves when the last byte is handed over. */
export const packContext = async (entries: Iterable<E.Either<Failure, WalkEntry>>, out: Writable, opts: PackOptions): Promise<E.Either<Failure, { files: number; bytes: number }>> => {
  const digests = opts.digests ?? true;
  const fd = opts.fd;
  const split = opts.threads !== false && fd !== undefined;

  // one waiter (this function) for any change: a write done, a segment finished, a worker ready
  let wake: (() => void) | undefined;
  const changedState = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let broken: Failure | undefined;
  const sink = fd !== undefined ? fdSink(fd) : streamSink(out, (e) => writer.fail(e));
  const writer = new SegmentWriter(sink, changedState);
  const failed = () => writer.error !== undefined || writer.stopped !== undefined || broken !== undefined;
  const until = async (ready: () => boolean): Promise<void> => {
    while (!ready() && !failed()) await new Promise<void>((resolve) => (wake = resolve));
  };

  // the entries of the segments out, until the digests their encoder computed come back
  const cache = digests ? opts.cache : undefined;
  const learning = new Map<number, readonly EntrySpec[]>();
  const learn = (id: number, learned: Learned | undefined): void => {
    const entries = learning.get(id);
    learning.delete(id);
    if (cache === undefined || entries === undefined || learned === undefined) return;
    learned.forEach((hex, i) => {
      const e = entries[i]!;
      if (hex !== '' && e.abs !== undefined) cache.learn(e.path, { dev: e.dev!, ino: e.ino!, size: e.size!, mtimeMs: e.mtimeMs!, ctimeMs: e.ctimeMs! }, hex);
    });
  };

  const pool = new BufferPool();
  const inline = new Encoder({
    take: () => pool.take(),
    room: () => pool.room(),
    emit: (id, buf, used, end, f, learned) => {
      writer.add(id, { bytes: buf.subarray(0, used), end, ...(f ? { failure: f } : {}), done: () => pool.give(buf) });
      if (end) learn(id, learned);
    },
  });
  let inlineSegments = 0;

  // the worker, started once the walk has filled a first segment (a small tree never pays for it)
  let remote: Remote | undefined;
  const freeBatches: ArrayBuffer[] = [];
  const startWorker = (descriptor: number): Remote => {
    const worker = new Worker(new URL(WORKER_URL), { workerData: workerData_(descriptor), stdout: false, stderr: false });
    const r: Remote = { worker, ready: false, busy: 0 };
    worker.on('message', (m: FromWorker) => {
      if ('ready' in m) r.ready = true;
      else {
        r.busy--;
        learn(m.id, m.learned);
        if (m.batch && freeBatches.length <= AHEAD) freeBatches.push(m.batch);
        if (m.failure) broken ??= fromSegment(m.failure);
        if (m.error) broken ??= m.error.code === 'EPIPE' ? brokenPipe() : fromError('write the context tar')(Object.assign(new Error(m.error.message), { code: m.error.code }));
      }
      changedState();
    });
    worker.on('error', (e) => {
      broken ??= fromError('encode the context tar')(e);
      changedState();
    });
    worker.on('exit', () => {
      if (r.busy > 0) broken ??= failure('ContextEncode', 'encode the context tar: the worker thread exited', ExitCode.tool);
      changedState();
    });
    return r;
  };

  /** Reads the small files of a job into one batch buffer the worker takes over (and hashes). */
  const prefetch = (job: SegmentJob): { job: SegmentJob; batch: ArrayBuffer; failure?: SegmentFailure } => {
    let total = 1;
    for (const e of job.entries) if (e.type === 'file' && e.abs !== undefined && e.size! <= BIG) total += e.size!;
    const at = freeBatches.findIndex((b) => b.byteLength >= total);
    const batch = at >= 0 ? freeBatches.splice(at, 1)[0]! : new ArrayBuffer(Math.max(total, 2 * SEGMENT_BYTES + 1));
    const into = Buffer.from(batch);
    const specs: EntrySpec[] = [];
    let off = 0;
    for (const e of job.entries) {
      if (e.type !== 'file' || e.abs === undefined || e.size! > BIG) {
        specs.push(e);
        continue;
      }
      try {
        const { data, known } = readSmall(e, into, off);
        off += data.length;
        specs.push({ ...e, data, known });
      } catch (err) {
        const f: SegmentFailure = err instanceof Changed ? { path: e.path, changed: true } : { path: e.path, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message };
        return { job: { ...job, entries: specs, last: false }, batch, failure: f };
      }
    }
    return { job: { ...job, entries: specs }, batch };
  };

  let next = 0;
  let handedOver = false;
  const dispatch = async (job: SegmentJob): Promise<void> => {
    if (split && remote === undefined && job.id >= INLINE_SEGMENTS) remote = startWorker(fd!);
    if (remote === undefined || !remote.ready) {
      // no worker yet: encode here meanwhile (and let its ready message in)
      inlineSegments++;
      await inline.encode(job);
      if (remote !== undefined) await new Promise<void>((resolve) => setImmediate(resolve));
      return;
    }
    const r = remote;
    if (!handedOver) {
      // the worker writes to the same descriptor: what this thread wrote must be out first
      await until(() => writer.segments === inlineSegments && writer.pending === 0);
      handedOver = true;
    }
    if (r.busy >= AHEAD) await until(() => r.busy < AHEAD);
    if (failed()) return;
    // the two threads share the reading: a worker with nothing queued reads the segment itself,
    // one with work queued gets it read here meanwhile
    if (r.busy === 0) {
      r.busy++;
      r.worker.postMessage({ job } satisfies ToWorker);
      return;
    }
    const prepared = prefetch(job);
    r.busy++;
    r.worker.postMessage({ job: prepared.job, batch: prepared.batch } satisfies ToWorker, [prepared.batch]);
    if (prepared.failure) {
      // the worker writes what came before the failing file; then the walk stops here
      await until(() => r.busy === 0);
      broken ??= fromSegment(prepared.failure);
    }
  };

  const links = new Map<string, string>();
  const clamp = (s: Stats): number => {
    const t = Math.floor(s.mtimeMs / 1000);
    return opts.mtime !== undefined && t > opts.mtime ? opts.mtime : t;
  };
  let files = 0;
  let bytes = 0;
  const plan = (e: WalkEntry): EntrySpec | undefined => {
    const s = e.stat;
    const base = { path: e.path, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, mtime: clamp(s) };
    if (s.isDirectory()) return { name: `${e.path}/`, type: 'directory', ...base };
    if (s.isSymbolicLink()) return { name: e.path, type: 'symlink', linkname: readlinkSync(e.abs), ...base };
    const odd = special(s);
    if (odd !== undefined) {
      opts.warn(`skipping ${odd} ${e.path}`);
      return undefined;
    }
    if (s.nlink > 1) {
      const key = `${s.dev}:${s.ino}`;
      const first = links.get(key);
      if (first !== undefined) return { name: e.path, type: 'link', linkname: first, ...base };
      links.set(key, e.path);
    }
    files++;
    bytes += s.size;
    const known = cache?.lookup(e.path, s);
    return {
      name: e.path,
      type: 'file',
      ...base,
      size: s.size,
      abs: e.abs,
      dev: s.dev,
      ino: s.ino,
      mtimeMs: s.mtimeMs,
      ctimeMs: s.ctimeMs,
      ...(known !== undefined ? { known } : {}),
      ...(e.path === opts.dockerfile ? { dockerfile: true } : {}),
    };
  };

  let segment: EntrySpec[] = [];
  let segmentBytes = 0;
  const flush = async (last: boolean): Promise<void> => {
    const job: SegmentJob = { id: next++, entries: segment, last, digests };
    if (cache !== undefined) learning.set(job.id, job.entries);
    segment = [];
    segmentBytes = 0;
    await dispatch(job);
  };
  const allWritten = () => writer.segments === inlineSegments && writer.pending === 0 && (remote === undefined || remote.busy === 0);
  const stop = async (f: Failure): Promise<E.Either<Failure, { files: number; bytes: number }>> => {
    // what came before the failing entry goes out whole (unless the sink itself failed)
    while (writer.pending > 0 && writer.error === undefined) await new Promise<void>((resolve) => (wake = resolve));
    if (remote) await remote.worker.terminate();
    return E.left(f);
  };

  try {
    for (const x of opts.extra ?? []) {
      segment.push({ name: x.path, path: x.path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: opts.mtime ?? 0, size: x.data.length, data: x.data, ...(x.path === opts.dockerfile ? { dockerfile: true } : {}) });
    }
    for (const r of entries) {
      if (E.isLeft(r)) {
        // a directory that cannot be read: send what came before it, then stop
        if (segment.length > 0) await flush(false);
        await until(allWritten);
        return await stop(r.left);
      }
      if (failed()) break;
      const spec = plan(r.right);
      if (spec === undefined) continue;
      const size = spec.type === 'file' ? spec.size! : 0;
      if (size > SEGMENT_BYTES && segment.length > 0) await flush(false);
      segment.push(spec);
      segmentBytes += size;
      if (segment.length >= SEGMENT_ENTRIES || segmentBytes >= SEGMENT_BYTES || size > BIG) await flush(false);
    }
    if (!failed()) await flush(true);
    await until(allWritten);
  } catch (err) {
    return await stop(fromError('write the context tar')(err));
  }
  if (writer.stopped !== undefined) return await stop(fromSegment(writer.stopped));
  if (broken !== undefined) return await stop(broken);
  if (writer.error !== undefined) {
    const e = writer.error as NodeJS.ErrnoException;
    return await stop(e.code === 'EPIPE' ? brokenPipe() : fromError('write the context tar')(e));
  }
  if (remote) await remote.worker.terminate();
  return E.right({ files, bytes });
};
