// Pack: walk entries become a deterministic tar (tar-stream). Regular files carry a PAX record
// `TSD.sha256=sha256:<hex>` of their bytes so the builder never hashes them again; hard links
// become link entries to the first path sent; symlinks keep their target; sockets, fifos and
// devices are skipped with a warning. Times are clamped to --mtime. Small files are read and
// hashed by the reader in batches (segments of the walk, a few ahead of the writer); large ones
// are hashed in one pass and streamed in a second. The Flusher hands the bytes on in large
// writes and gives each batch buffer back once its bytes are out, so memory stays bounded by the
// batches in flight whatever the size of the tree.
import { createHash } from 'node:crypto';
import { constants, promises as fs, readlinkSync, type Stats } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { Flusher } from './flusher.js';
import { startReader, type FileJob, type FileRead } from './reader.js';
import type { WalkEntry } from './walk.js';

/** The PAX key of each regular file's digest (read by src/build/context.ts). */
export const DIGEST_PAX_KEY = 'TSD.sha256';
/** The PAX key marking the Dockerfile the user chose (`TSD.role=dockerfile`). */
export const ROLE_PAX_KEY = 'TSD.role';

/** Files up to this size are read whole; bigger ones are streamed twice. */
const SMALL = 1 << 20;
/** How much may be handed to tar-stream before waiting for it to drain. */
const WAIT_BYTES = 1 << 20;
/** A segment of the walk read by the worker in one batch, and how many run ahead. */
const SEGMENT_ENTRIES = 256;
const SEGMENT_BYTES = 1 << 20;
const SEGMENTS_AHEAD = 3;

export interface PackOptions {
  /** seconds since the epoch: later times are clamped to it */
  readonly mtime?: number;
  readonly warn: (message: string) => void;
  /** extra files not in the walk (a Dockerfile from outside the context or stdin) */
  readonly extra?: readonly { readonly path: string; readonly data: Buffer }[];
  /** the context path of the chosen Dockerfile, marked with TSD.role=dockerfile */
  readonly dockerfile?: string;
  /** read and hash files on a worker thread (default true) */
  readonly threads?: boolean;
  /** write the TSD.sha256 records (default true) */
  readonly digests?: boolean;
}

type Header = Partial<tar.Header> & { name: string };

const special = (s: Stats): string | undefined =>
  s.isSocket() ? 'socket' : s.isFIFO() ? 'fifo' : s.isBlockDevice() ? 'block device' : s.isCharacterDevice() ? 'character device' : undefined;

const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Opens a large file as the walk saw it (no symlink followed, no fifo blocked on), up to `size` bytes. */
const openRegular = async (abs: string, size?: number): Promise<Readable | 'changed'> => {
  const fh = await fs.open(abs, OPEN_FLAGS);
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    return 'changed';
  }
  return fh.createReadStream({ highWaterMark: 1 << 20, ...(size !== undefined ? { end: size - 1 } : {}) });
};

const hashFile = async (abs: string): Promise<{ digest: string; size: number } | 'changed'> => {
  const stream = await openRegular(abs);
  if (stream === 'changed') return stream;
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
};

const withPax = (pax: Record<string, string> | undefined) => (pax ? { pax } : {});

const changed = (path: string): Failure => failure('FileChanged', `read ${path}: the file changed while it was being sent`, ExitCode.tool);

/** Writes the tar of `entries` to `out`; resolves when the last byte is handed over. */
export const packContext = async (entries: Iterable<E.Either<Failure, WalkEntry>>, out: Writable, opts: PackOptions): Promise<E.Either<Failure, { files: number; bytes: number }>> => {
  const digests = opts.digests ?? true;
  const reader = startReader(opts.threads ?? true, digests);
  // a batch buffer goes back to the reader once the flusher is done with all its file bytes
  const outstanding = new Map<ArrayBufferLike, number>();
  const seen = (chunk: Buffer) => {
    const left = outstanding.get(chunk.buffer);
    if (left === undefined) return;
    if (left > chunk.length) outstanding.set(chunk.buffer, left - chunk.length);
    else {
      outstanding.delete(chunk.buffer);
      reader.release(chunk.buffer);
    }
  };
  const pack = tar.pack();
  const piped = pipeline(pack as unknown as NodeJS.ReadableStream, new Flusher(out, seen));
  piped.catch(() => undefined);
  const links = new Map<string, string>();
  const clamp = (s: Stats): Date => {
    const t = Math.floor(s.mtimeMs / 1000);
    return new Date((opts.mtime !== undefined && t > opts.mtime ? opts.mtime : t) * 1000);
  };
  const base = (e: WalkEntry) => ({ mode: e.stat.mode & 0o7777, uid: e.stat.uid, gid: e.stat.gid, uname: '', gname: '', mtime: clamp(e.stat) });
  let files = 0;
  let bytes = 0;

  // Back-pressure without a wait per entry: tar-stream takes entries in order, so waiting for
  // the latest one every WAIT_BYTES bounds what is buffered; an error is kept for the next wait.
  let unwaited = 0;
  let error: Error | undefined;
  const add = (header: Header, data?: Buffer | string, digest?: string): Promise<void> => {
    const taken = new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (data === undefined) pack.entry(header, cb);
      else if (typeof data !== 'string') pack.entry(header, data, cb);
      else sendLarge(data, header, digest).catch(reject);
      // a large file is sent in a second pass: exactly its size, hashed again on the way and
      // checked against the digest already written in its header
      async function sendLarge(abs: string, h: Header, want: string | undefined): Promise<void> {
        const stream = await openRegular(abs, h.size ?? 0);
        if (stream === 'changed') throw new Error('size mismatch');
        const hash = createHash('sha256');
        await pipeline(stream, async function* (source: AsyncIterable<Buffer>) {
          for await (const c of source) {
            if (want !== undefined) hash.update(c);
            yield c;
          }
        }, pack.entry(h, (err) => (err ? reject(err) : undefined)) as unknown as NodeJS.WritableStream);
        if (want !== undefined && `sha256:${hash.digest('hex')}` !== want) throw new Error('size mismatch: content changed');
        resolve();
      }
    });
    unwaited += 512 + (header.size ?? 0);
    if (typeof data === 'string' || unwaited >= WAIT_BYTES) {
      unwaited = 0;
      return taken.then(() => {
        if (error) throw error;
      });
    }
    taken.catch((e: Error) => (error ??= e));
    return Promise.resolve();
  };

  // Each walk entry becomes a step, planned in walk order (so hard links are decided in order);
  // small regular files are read and hashed by the reader in segments, a few segments ahead.
  type Step =
    | { readonly kind: 'header'; readonly e: WalkEntry; readonly header: Header }
    | { readonly kind: 'small'; readonly e: WalkEntry; readonly job: number }
    | { readonly kind: 'big'; readonly e: WalkEntry };
  interface Segment {
    readonly steps: Step[];
    readonly reads: Promise<FileRead[]>;
  }
  const plan = (e: WalkEntry, jobs: FileJob[]): Step | undefined => {
    const s = e.stat;
    if (s.isDirectory()) return { kind: 'header', e, header: { name: `${e.path}/`, type: 'directory', ...base(e) } };
    if (s.isSymbolicLink()) return { kind: 'header', e, header: { name: e.path, type: 'symlink', linkname: readlinkSync(e.abs), ...base(e) } };
    const odd = special(s);
    if (odd !== undefined) {
      opts.warn(`skipping ${odd} ${e.path}`);
      return undefined;
    }
    if (s.nlink > 1) {
      const key = `${s.dev}:${s.ino}`;
      const first = links.get(key);
      if (first !== undefined) return { kind: 'header', e, header: { name: e.path, type: 'link', linkname: first, ...base(e), size: 0 } };
      links.set(key, e.path);
    }
    if (s.size > SMALL) return { kind: 'big', e };
    jobs.push({ abs: e.abs, size: s.size });
    return { kind: 'small', e, job: jobs.length - 1 };
  };
  const paxOf = (e: WalkEntry, digest: string): Record<string, string> | undefined => {
    const pax: Record<string, string> = {};
    if (e.path === opts.dockerfile) pax[ROLE_PAX_KEY] = 'dockerfile';
    if (digest !== '') pax[DIGEST_PAX_KEY] = digest;
    return Object.keys(pax).length > 0 ? pax : undefined;
  };

  const writeStep = async (step: Step, reads: readonly FileRead[]): Promise<E.Either<Failure, void>> => {
    const e = step.e;
    try {
      if (step.kind === 'header') await add(step.header);
      else if (step.kind === 'small') {
        const r = reads[step.job]!;
        if (r.kind === 'changed') return E.left(changed(e.path));
        if (r.kind === 'error') return E.left(fromError(`read ${e.path}`)(r.error));
        await add({ name: e.path, type: 'file', size: r.data.length, ...base(e), ...withPax(paxOf(e, r.digest)) }, r.data);
      } else {
        const hashed = digests ? await hashFile(e.abs) : { digest: '', size: e.stat.size };
        if (hashed === 'changed' || hashed.size !== e.stat.size) return E.left(changed(e.path));
        const { digest, size } = hashed;
        await add({ name: e.path, type: 'file', size, ...base(e), ...withPax(paxOf(e, digest)) }, e.abs, digest === '' ? undefined : digest);
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : '';
      return E.left(/size mismatch/i.test(msg) ? changed(e.path) : fromError(`read ${e.path}`)(err));
    }
    if (step.kind !== 'header') {
      files++;
      bytes += e.stat.size;
    }
    return E.right(undefined);
  };
  const writeSegment = async (seg: Segment): Promise<E.Either<Failure, void>> => {
    const reads = await seg.reads;
    let batch: ArrayBufferLike | undefined;
    let pending = 0;
    for (const r of reads) {
      if (r.kind !== 'ok') continue;
      batch = r.data.buffer;
      pending += r.data.length;
    }
    if (batch !== undefined) {
      if (pending > 0) outstanding.set(batch, pending);
      else reader.release(batch);
    }
    for (const step of seg.steps) {
      const w = await writeStep(step, reads);
      if (E.isLeft(w)) return w;
    }
    return E.right(undefined);
  };

  const fail = async (f: Failure) => {
    await reader.close();
    pack.destroy();
    return E.left(f);
  };
  try {
    for (const x of opts.extra ?? []) {
      const pax: Record<string, string> = { ...(digests ? { [DIGEST_PAX_KEY]: sha256(x.data) } : {}), ...(x.path === opts.dockerfile ? { [ROLE_PAX_KEY]: 'dockerfile' } : {}) };
      await add({ name: x.path, type: 'file', size: x.data.length, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date((opts.mtime ?? 0) * 1000), pax }, x.data);
    }
    const queue: Segment[] = [];
    let steps: Step[] = [];
    let jobs: FileJob[] = [];
    let jobBytes = 0;
    const dispatch = () => {
      queue.push({ steps, reads: reader.read(jobs) });
      steps = [];
      jobs = [];
      jobBytes = 0;
    };
    for (const r of entries) {
      if (E.isLeft(r)) return await fail(r.left);
      const step = plan(r.right, jobs);
      if (step === undefined) continue;
      steps.push(step);
      if (step.kind === 'small') jobBytes += r.right.stat.size;
      if (steps.length >= SEGMENT_ENTRIES || jobBytes >= SEGMENT_BYTES) {
        dispatch();
        if (queue.length > SEGMENTS_AHEAD) {
          const w = await writeSegment(queue.shift()!);
          if (E.isLeft(w)) return await fail(w.left);
        }
      }
    }
    if (steps.length > 0) dispatch();
    while (queue.length > 0) {
      const w = await writeSegment(queue.shift()!);
      if (E.isLeft(w)) return await fail(w.left);
    }
  } catch (err) {
    return await fail(fromError('write the context tar')(err));
  }
  await reader.close();
  pack.finalize();
  try {
    await piped;
    if (error) throw error;
  } catch (err) {
    return E.left(fromError('write the context tar')(err));
  }
  return E.right({ files, bytes });
};
