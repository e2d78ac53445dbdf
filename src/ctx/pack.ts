// Pack: walk entries become a deterministic tar (tar-stream). Regular files carry a PAX record
// `TSD.sha256=sha256:<hex>` of their bytes so the builder never hashes them again; hard links
// become link entries to the first path sent; symlinks keep their target; sockets, fifos and
// devices are skipped with a warning. Times are clamped to --mtime. Small files are read ahead
// in parallel (bounded), large ones are hashed in one pass and streamed in a second.
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { WalkEntry } from './walk.js';

/** The PAX key of each regular file's digest (read by src/build/context.ts). */
export const DIGEST_PAX_KEY = 'TSD.sha256';
/** The PAX key marking the Dockerfile the user chose (`TSD.role=dockerfile`). */
export const ROLE_PAX_KEY = 'TSD.role';

/** Files up to this size are read whole (and ahead); bigger ones are streamed twice. */
const SMALL = 1 << 20;
const READ_AHEAD = 32;

export interface PackOptions {
  /** seconds since the epoch: later times are clamped to it */
  readonly mtime?: number;
  readonly warn: (message: string) => void;
  /** extra files not in the walk (a Dockerfile from outside the context or stdin) */
  readonly extra?: readonly { readonly path: string; readonly data: Buffer }[];
  /** the context path of the chosen Dockerfile, marked with TSD.role=dockerfile */
  readonly dockerfile?: string;
}

type Prepared =
  | { readonly kind: 'skip' }
  | { readonly kind: 'header'; readonly header: Partial<tar.Header> & { name: string }; readonly data?: Buffer; readonly stream?: string };

const special = (s: Stats): string | undefined =>
  s.isSocket() ? 'socket' : s.isFIFO() ? 'fifo' : s.isBlockDevice() ? 'block device' : s.isCharacterDevice() ? 'character device' : undefined;

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

const hashFile = async (abs: string): Promise<{ digest: string; size: number }> => {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(abs)) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
};

/** Writes the tar of `entries` to `out`; resolves when the last byte is handed over. */
export const packContext = async (entries: AsyncIterable<E.Either<Failure, WalkEntry>>, out: Writable, opts: PackOptions): Promise<E.Either<Failure, { files: number; bytes: number }>> => {
  const pack = tar.pack();
  const piped = pipeline(pack as unknown as NodeJS.ReadableStream, out);
  piped.catch(() => undefined);
  const links = new Map<string, string>();
  const clamp = (s: Stats): Date => {
    const t = Math.floor(s.mtimeMs / 1000);
    return new Date((opts.mtime !== undefined && t > opts.mtime ? opts.mtime : t) * 1000);
  };
  const base = (e: WalkEntry) => ({ mode: e.stat.mode & 0o7777, uid: e.stat.uid, gid: e.stat.gid, uname: '', gname: '', mtime: clamp(e.stat) });
  let files = 0;
  let bytes = 0;

  const prepare = async (e: WalkEntry): Promise<E.Either<Failure, Prepared>> => {
    const s = e.stat;
    try {
      if (s.isDirectory()) return E.right({ kind: 'header', header: { name: `${e.path}/`, type: 'directory', ...base(e) } });
      if (s.isSymbolicLink()) return E.right({ kind: 'header', header: { name: e.path, type: 'symlink', linkname: await fs.readlink(e.abs), ...base(e) } });
      const odd = special(s);
      if (odd !== undefined) {
        opts.warn(`skipping ${odd} ${e.path}`);
        return E.right({ kind: 'skip' });
      }
      if (s.nlink > 1) {
        const key = `${s.dev}:${s.ino}`;
        const first = links.get(key);
        if (first !== undefined) return E.right({ kind: 'header', header: { name: e.path, type: 'link', linkname: first, ...base(e), size: 0 } });
        links.set(key, e.path);
      }
      const pax: Record<string, string> = {};
      if (e.path === opts.dockerfile) pax[ROLE_PAX_KEY] = 'dockerfile';
      if (s.size <= SMALL) {
        const data = await fs.readFile(e.abs);
        pax[DIGEST_PAX_KEY] = sha256(data);
        return E.right({ kind: 'header', header: { name: e.path, type: 'file', size: data.length, ...base(e), pax }, data });
      }
      const { digest, size } = await hashFile(e.abs);
      pax[DIGEST_PAX_KEY] = digest;
      return E.right({ kind: 'header', header: { name: e.path, type: 'file', size, ...base(e), pax }, stream: e.abs });
    } catch (err) {
      return E.left(fromError(`read ${e.path}`)(err));
    }
  };

  const write = async (p: Prepared, path: string): Promise<E.Either<Failure, void>> => {
    if (p.kind === 'skip') return E.right(undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null) => (err ? reject(err) : resolve());
        if (p.data === undefined && p.stream === undefined) {
          pack.entry(p.header, cb);
          return;
        }
        const sink = pack.entry(p.header, cb);
        if (p.data !== undefined) sink.end(p.data);
        else pipeline(createReadStream(p.stream!), sink as unknown as NodeJS.WritableStream).catch(reject);
      });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/size mismatch/i.test(msg)) return E.left(failure('FileChanged', `read ${path}: the file changed while it was being sent`, ExitCode.tool));
      return E.left(fromError(`read ${path}`)(err));
    }
    if (p.header.type === 'file') {
      files++;
      bytes += p.header.size ?? 0;
    }
    return E.right(undefined);
  };

  // read ahead: up to READ_AHEAD prepared entries in flight, written strictly in order
  const queue: { path: string; ready: Promise<E.Either<Failure, Prepared>> }[] = [];
  const drainOne = async (): Promise<E.Either<Failure, void>> => {
    const head = queue.shift()!;
    const p = await head.ready;
    return E.isLeft(p) ? p : write(p.right, head.path);
  };
  const fail = async (f: Failure) => {
    await Promise.allSettled(queue.map((q) => q.ready));
    pack.destroy();
    return E.left(f);
  };
  for (const x of opts.extra ?? []) {
    const pax: Record<string, string> = { [DIGEST_PAX_KEY]: sha256(x.data), ...(x.path === opts.dockerfile ? { [ROLE_PAX_KEY]: 'dockerfile' } : {}) };
    const mtime = new Date((opts.mtime ?? 0) * 1000);
    const w = await write({ kind: 'header', header: { name: x.path, type: 'file', size: x.data.length, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime, pax }, data: x.data }, x.path);
    if (E.isLeft(w)) return fail(w.left);
  }
  for await (const r of entries) {
    if (E.isLeft(r)) return fail(r.left);
    queue.push({ path: r.right.path, ready: prepare(r.right) });
    if (queue.length >= READ_AHEAD) {
      const w = await drainOne();
      if (E.isLeft(w)) return fail(w.left);
    }
  }
  while (queue.length > 0) {
    const w = await drainOne();
    if (E.isLeft(w)) return fail(w.left);
  }
  pack.finalize();
  try {
    await piped;
  } catch (err) {
    return E.left(fromError('write the context tar')(err));
  }
  return E.right({ files, bytes });
};
