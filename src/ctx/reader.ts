// Reader: reads and hashes batches of small files, on a worker thread by default so the main
// thread can encode and write the tar meanwhile (TSD_CTX_THREADS=0 keeps it on the main thread).
// A batch comes back as one buffer holding every file's bytes, with each file's sha256 or error.
// Files are opened with O_NOFOLLOW|O_NONBLOCK and checked with fstat: a path swapped for a
// symlink or a fifo since the walk is reported as changed, never followed or blocked on.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';

export interface FileJob {
  readonly abs: string;
  readonly size: number;
}

export type FileRead =
  | { readonly kind: 'ok'; readonly data: Buffer; /** "" when hashing is off */ readonly digest: string }
  | { readonly kind: 'changed' }
  | { readonly kind: 'error'; readonly error: NodeJS.ErrnoException };

export interface Reader {
  readonly read: (files: readonly FileJob[]) => Promise<FileRead[]>;
  /** Gives back a batch buffer (the `buffer` of a FileRead's data) once its bytes are written. */
  readonly release: (buffer: ArrayBufferLike) => void;
  readonly close: () => Promise<void>;
}

/** Batch buffers hold at least this much (a batch closes past 1 MiB, a small file is ≤ 1 MiB). */
export const BATCH_CAPACITY = (2 << 20) + 1;

type Outcome = { digest: string } | { changed: true } | { code?: string; message: string };

/**
 * Reads one batch into one buffer. Self-contained (its only inputs are its parameters) because
 * its source text is also what the worker evaluates.
 */
function readBatch(
  files: readonly FileJob[],
  hash: boolean,
  pool: ArrayBuffer[],
  capacity: number,
  fsm: typeof fs,
  cryptom: typeof crypto,
): { buffer: ArrayBuffer; out: Outcome[] } {
  const flags = fsm.constants.O_RDONLY | fsm.constants.O_NOFOLLOW | fsm.constants.O_NONBLOCK;
  let total = 1;
  for (const f of files) total += f.size;
  const reused = total <= capacity ? pool.pop() : undefined;
  const buf = new Uint8Array(reused ?? new ArrayBuffer(Math.max(total, capacity)));
  const out: Outcome[] = [];
  let off = 0;
  for (const f of files) {
    try {
      const fd = fsm.openSync(f.abs, flags);
      let n = 0;
      let regular = true;
      try {
        regular = fsm.fstatSync(fd).isFile();
        // read one byte past the size: a file that grew since the walk is caught here
        while (regular) {
          const r = fsm.readSync(fd, buf, off + n, f.size + 1 - n, null);
          n += r;
          if (r === 0 || n > f.size) break;
        }
      } finally {
        fsm.closeSync(fd);
      }
      if (!regular || n !== f.size) out.push({ changed: true });
      else out.push({ digest: hash ? cryptom.createHash('sha256').update(buf.subarray(off, off + f.size)).digest('hex') : '' });
    } catch (e) {
      out.push({ code: (e as NodeJS.ErrnoException).code, message: (e as Error).message });
    }
    off += f.size;
  }
  return { buffer: buf.buffer, out };
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const readBatch = ${readBatch.toString()};
const pool = [];
parentPort.on('message', (m) => {
  if (m.recycle) { pool.push(m.recycle); return; }
  const { buffer, out } = readBatch(m.files, m.hash, pool, ${BATCH_CAPACITY}, fs, crypto);
  parentPort.postMessage({ id: m.id, buffer, out }, [buffer]);
});
`;

const decode = (files: readonly FileJob[], buffer: ArrayBuffer, out: readonly Outcome[]): FileRead[] => {
  let off = 0;
  return out.map((o, i): FileRead => {
    const size = files[i]!.size;
    const at = off;
    off += size;
    if ('digest' in o) return { kind: 'ok', data: Buffer.from(buffer, at, size), digest: o.digest === '' ? '' : `sha256:${o.digest}` };
    if ('changed' in o) return { kind: 'changed' };
    return { kind: 'error', error: Object.assign(new Error(o.message), { code: o.code }) };
  });
};

const inlineReader = (hash: boolean): Reader => {
  const pool: ArrayBuffer[] = [];
  return {
    read: async (files) => {
      const { buffer, out } = readBatch(files, hash, pool, BATCH_CAPACITY, fs, crypto);
      return decode(files, buffer, out);
    },
    release: (buffer) => {
      if (buffer instanceof ArrayBuffer && buffer.byteLength >= BATCH_CAPACITY && pool.length < 8) pool.push(buffer);
    },
    close: async () => undefined,
  };
};

const workerReader = (hash: boolean): Reader => {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  let next = 0;
  const waiting = new Map<number, { files: readonly FileJob[]; resolve: (r: FileRead[]) => void; reject: (e: Error) => void }>();
  worker.on('message', (m: { id: number; buffer: ArrayBuffer; out: Outcome[] }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    w.resolve(decode(w.files, m.buffer, m.out));
  });
  worker.on('error', (e) => {
    for (const w of waiting.values()) w.reject(e);
    waiting.clear();
  });
  return {
    read: (files) =>
      files.length === 0
        ? Promise.resolve([])
        : new Promise((resolve, reject) => {
            const id = next++;
            waiting.set(id, { files, resolve, reject });
            worker.postMessage({ id, hash, files: files.map((f) => ({ abs: f.abs, size: f.size })) });
          }),
    release: (buffer) => {
      if (buffer instanceof ArrayBuffer && buffer.byteLength >= BATCH_CAPACITY) worker.postMessage({ recycle: buffer }, [buffer]);
    },
    close: async () => {
      await worker.terminate();
    },
  };
};

/** A worker-thread reader unless `threads` is false; `hash` false leaves digests empty. */
export const startReader = (threads: boolean, hash = true): Reader => (threads ? workerReader(hash) : inlineReader(hash));
