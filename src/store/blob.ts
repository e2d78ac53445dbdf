// Blob: content-addressed bytes under blobs/ALG/HEX. A blob is streamed into a temp file on the
// same file system while its digest and size are computed, fsynced, checked against what was
// expected, and only then renamed to its final name. Nothing partial or wrong ever has a final name.
import { createReadStream, createWriteStream, mkdirSync, promises as fs, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { algorithmOf, DigestingStream, digestOf, type Digest } from '../oci/digest.js';
import { fsyncPath } from './durable.js';
import { leaseBlob } from './lease.js';
import { pidAlive } from './lock.js';
import type { StorePaths } from './layout.js';

export interface Expected {
  readonly digest?: Digest;
  readonly size?: number;
}

export interface Written {
  readonly digest: Digest;
  readonly size: number;
}

export const digestMismatch = (what: string, expected: Digest, actual: Digest): Failure =>
  failure('DigestMismatch', `${what}: digest mismatch: expected ${expected}, got ${actual}`, ExitCode.user);

export const sizeMismatch = (what: string, expected: number, actual: number): Failure =>
  failure('SizeMismatch', `${what}: size mismatch: expected ${expected} bytes, got ${actual}`, ExitCode.user);

/** Stops a stream as soon as it passes `limit` bytes, so a lying size cannot fill the disk. */
class SizeLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number, private readonly what: string) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) done(sizeMismatch(this.what, this.limit, this.seen) as unknown as Error);
    else done(null, chunk);
  }
}

/** A fresh name under ingest/ (node:crypto is loaded here, on first use: `ls` never needs it). */
export const newTempPath = (p: StorePaths, suffix = 'tmp'): string =>
  join(p.ingest, `${process.pid}-${process.getBuiltinModule('node:crypto').randomBytes(8).toString('hex')}.${suffix}`);

/**
 * Moves a finished, verified temp file to its final name (or drops it where the blob exists
 * already: a put of something present succeeds). The digest is leased first, see lease.ts.
 */
export const commitTemp = async (p: StorePaths, tmp: string, digest: Digest): Promise<void> => {
  leaseBlob(p, digest);
  const final = p.blob(digest);
  await fs.mkdir(p.blobDir(algorithmOf(digest)), { recursive: true });
  await fs.rename(tmp, final);
  await fsyncPath(p.blobDir(algorithmOf(digest)));
};

/**
 * Streams `source` into the store. With `expected`, a digest or size that does not match
 * refuses the blob and leaves nothing behind.
 */
export const ingest = (p: StorePaths, source: Readable, expected: Expected = {}, what = 'blob'): TE.TaskEither<Failure, Written> => async () => {
  const label = expected.digest ? `${what} ${expected.digest}` : what;
  const hasher = new DigestingStream(expected.digest ? algorithmOf(expected.digest) : 'sha256');
  const tmp = newTempPath(p);
  try {
    await fs.mkdir(p.ingest, { recursive: true });
    const out = createWriteStream(tmp, { flags: 'wx' });
    if (expected.size !== undefined) await pipeline(source, new SizeLimit(expected.size, label), hasher, out);
    else await pipeline(source, hasher, out);
    const fh = await fs.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const actual = hasher.digest();
    if (expected.size !== undefined && hasher.size !== expected.size) throw sizeMismatch(label, expected.size, hasher.size);
    if (expected.digest !== undefined && actual !== expected.digest) throw digestMismatch(label, expected.digest, actual);
    await commitTemp(p, tmp, actual);
    return { _tag: 'Right', right: { digest: actual, size: hasher.size } };
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    return { _tag: 'Left', left: fromError(`write ${label}`)(e) };
  }
};

/** Puts small bytes (a manifest, a config) into the store. */
export const putBytes = (p: StorePaths, bytes: Uint8Array | string, expected: Expected = {}, what = 'blob'): TE.TaskEither<Failure, Written> =>
  ingest(p, Readable.from([Buffer.from(bytes)]), expected.digest ? expected : { digest: digestOf(bytes) }, what);

/** Small bytes on their way into the store in two steps (stageBytes). */
export interface Staged {
  /**
   * Gives the bytes their final name unless the blob is there already (leased first, see
   * lease.ts); true when it named them. The directory entry is not fsynced: the caller does that
   * once for all it named (a pull, before it writes a name), as fetch.ts's blobs.
   */
  commit(): Promise<boolean>;
  /** drops the temp file (the pull failed) */
  discard(): Promise<void>;
}

/**
 * Writes small bytes (a manifest) to a temp file and fsyncs it now, while other work goes on (a
 * pull's layers downloading); `commit` names them later. The bytes must hash to `digest`. A blob
 * present already is not written again: then `commit` only looks once more (and, should a gc
 * have taken it meanwhile, writes it as putBytes does).
 */
export const stageBytes = async (p: StorePaths, bytes: Buffer, digest: Digest, what: string): Promise<Staged> => {
  const label = `${what} ${digest}`;
  const actual = digestOf(bytes, algorithmOf(digest));
  if (actual !== digest) throw digestMismatch(label, digest, actual);
  const present = async (): Promise<boolean> => {
    leaseBlob(p, digest);
    return hasBlobSync(p, digest) || (await hasBlob(p, digest));
  };
  if (hasBlobSync(p, digest)) {
    return {
      commit: async () => {
        if (await present()) return false;
        const r = await putBytes(p, bytes, { digest, size: bytes.length }, what)();
        if (r._tag === 'Left') throw r.left;
        return true;
      },
      discard: async () => undefined,
    };
  }
  const tmp = newTempPath(p);
  try {
    const fh = await fs.open(tmp, 'wx').catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      await fs.mkdir(p.ingest, { recursive: true });
      return fs.open(tmp, 'wx');
    });
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await fs.unlink(tmp).catch(() => undefined);
    throw fromError(`write ${label}`)(e);
  }
  const discard = () => fs.unlink(tmp).then(() => undefined, () => undefined);
  return {
    commit: async () => {
      if (await present()) {
        await discard();
        return false;
      }
      try {
        try {
          renameSync(tmp, p.blob(digest));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          mkdirSync(p.blobDir(algorithmOf(digest)), { recursive: true }); // blobs/sha512, say
          renameSync(tmp, p.blob(digest));
        }
      } catch (e) {
        await discard();
        throw fromError(`write ${label}`)(e);
      }
      return true;
    },
    discard,
  };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * gc moves each blob it did not reach aside for a moment, to `ingest/PID-RANDOM.aside-ALG-HEX`,
 * and puts back what a new tag or lease needs (gc.ts), so a blob just written and tagged can be
 * missing from its name while a gc runs. A reader that finds a blob missing calls this: while a
 * live gc holds it aside it waits (at most `maxMs`); then the reader looks once more. A blob that
 * is simply absent costs one readdir of ingest/.
 */
export const asideSettled = async (p: StorePaths, digest: Digest, maxMs = 10 * 60_000): Promise<void> => {
  const suffix = `.aside-${digest.replace(':', '-')}`;
  const alive = (name: string): boolean => pidAlive(Number(name.split('-')[0]));
  const started = Date.now();
  while (Date.now() - started < maxMs) {
    const names = await fs.readdir(p.ingest).catch(() => [] as string[]);
    if (!names.some((n) => n.endsWith(suffix) && alive(n))) return;
    await sleep(20);
  }
};

/** Runs `look`; when it finds the blob missing (ENOENT), waits for a running gc and looks once more. */
const lookTwice = async <A>(p: StorePaths, digest: Digest, look: () => Promise<A>): Promise<A> => {
  try {
    return await look();
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code !== 'ENOENT') throw e;
    await asideSettled(p, digest);
    return look();
  }
};

export const hasBlob = async (p: StorePaths, digest: Digest): Promise<boolean> =>
  lookTwice(p, digest, () => fs.stat(p.blob(digest))).then((s) => s.isFile(), () => false);

/**
 * Whether the blob is in the store, answered synchronously (one stat, no thread-pool round trip:
 * a warm re-pull's start-up). False when it is not plainly there, gc-held-aside included: the
 * caller then asks `hasBlob`, which waits for a running gc.
 */
export const hasBlobSync = (p: StorePaths, digest: Digest): boolean => {
  try {
    return statSync(p.blob(digest)).isFile();
  } catch {
    return false;
  }
};

/**
 * A small blob read whole and verified, synchronously; undefined when it is missing, larger than
 * `max` or does not match its digest (the caller then takes `readBlob`, which waits for a running
 * gc and names the fault).
 */
export const readBlobSync = (p: StorePaths, digest: Digest, max: number): Buffer | undefined => {
  try {
    const bytes = readFileSync(p.blob(digest));
    return bytes.length <= max && digestOf(bytes, algorithmOf(digest)) === digest ? bytes : undefined;
  } catch {
    return undefined;
  }
};

export const blobSize = (p: StorePaths, digest: Digest): TE.TaskEither<Failure, number> =>
  TE.tryCatch(async () => (await lookTwice(p, digest, () => fs.stat(p.blob(digest)))).size, (e) => missingOr(digest, e));

const missingOr = (digest: Digest, e: unknown): Failure =>
  (e as NodeJS.ErrnoException)?.code === 'ENOENT'
    ? failure('BlobNotFound', `blob ${digest}: not in the store`, ExitCode.notFound)
    : fromError(`read blob ${digest}`)(e);

/** A stream of the blob that fails at its end if the bytes on disk no longer match the digest. */
export const openBlob = (p: StorePaths, digest: Digest): Readable => {
  const hasher = new DigestingStream(algorithmOf(digest));
  const verify = new Transform({
    transform(chunk, _e, done) {
      hasher.write(chunk);
      done(null, chunk);
    },
    flush(done) {
      hasher.end();
      const actual = hasher.digest();
      done(actual === digest ? null : (digestMismatch(`blob ${digest}`, digest, actual) as unknown as Error));
    },
  });
  hasher.resume();
  const open = (again: boolean): void => {
    // 1 MiB reads, not the default 64 KiB: an unpack feeds them to zlib, and each read and each
    // zlib write is a thread-pool round trip (-13% CPU unpacking a 139 MB layer, bench/unpack)
    const file = createReadStream(p.blob(digest), { highWaterMark: 1 << 20 });
    file.on('error', (e) => {
      // missing: maybe only for a moment, while a gc has it aside (see asideSettled); the open fails before any data
      if (again && (e as NodeJS.ErrnoException).code === 'ENOENT') void asideSettled(p, digest).then(() => open(false));
      else verify.destroy(missingOr(digest, e) as unknown as Error);
    });
    file.pipe(verify);
  };
  open(true);
  return verify;
};

/** Reads a small blob whole (manifests, configs), verified; refuses one larger than `max`. */
export const readBlob = (p: StorePaths, digest: Digest, max = 64 * 1024 * 1024): TE.TaskEither<Failure, Buffer> => async () => {
  try {
    const bytes = await lookTwice(p, digest, () => fs.readFile(p.blob(digest)));
    if (bytes.length > max) return { _tag: 'Left', left: failure('BlobTooLarge', `blob ${digest}: larger than ${max} bytes`) };
    const actual = digestOf(bytes, algorithmOf(digest));
    if (actual !== digest) return { _tag: 'Left', left: digestMismatch(`blob ${digest}`, digest, actual) };
    return { _tag: 'Right', right: bytes };
  } catch (e) {
    return { _tag: 'Left', left: missingOr(digest, e) };
  }
};
