// Worker: the tar encoder on a worker thread, for big trees. The main thread walks, reads and
// hashes the small files of each segment into a batch buffer and posts the segment (the buffer
// is transferred, not copied); the worker hands the entries to tar-stream and writes the bytes
// itself to the blocking stdout descriptor, from the thread pool, in segment order. Once a
// segment's bytes are written it gives the batch buffer back: the main thread has at most a few
// segments out, which is what bounds memory. Large files are read by the worker (two passes).
// The module starts serving only on a worker thread created with WORKER_DATA, so the file that
// holds it (a bundle chunk, or this source under tsx) is also what the worker loads.
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Encoder, OUT_SIZE, type Learned, type SegmentFailure, type SegmentJob } from './segment.js';
import { fdSink } from './writer.js';

/**
 * An encoder starts a segment only while fewer than this many of its output buffers are out
 * (being written); a segment fills at most about three more, so every buffer is reused and no
 * fresh memory (a page fault per 4 KiB) is touched once the first few exist.
 */
export const BUFFERS = 3;

export interface ToWorker {
  readonly job: SegmentJob;
  /** the batch buffer the job's `data` views are on, to give back */
  readonly batch?: ArrayBuffer;
}
export type FromWorker =
  | { readonly ready: true }
  | {
      readonly id: number;
      readonly batch?: ArrayBuffer;
      readonly failure?: SegmentFailure;
      readonly error?: { readonly code?: string; readonly message: string };
      /** the digests the segment's encoding computed, for the cache */
      readonly learned?: Learned;
    };

/** The file to start a worker from: the one this module was loaded from. */
export const WORKER_URL = import.meta.url;
export const workerData_ = (fd: number) => ({ tsdCtxEncoder: 1, fd });

/** The output buffers of one encoder, all reused: a segment starts only while few are out. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private out = 0;
  private wake: (() => void) | undefined;

  take(): Buffer {
    this.out++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(OUT_SIZE);
  }

  give(buf: Buffer): void {
    this.out--;
    this.free.push(buf);
    if (this.out < BUFFERS && this.wake) {
      const w = this.wake;
      this.wake = undefined;
      w();
    }
  }

  room(): Promise<void> | undefined {
    return this.out < BUFFERS ? undefined : new Promise((resolve) => (this.wake = resolve));
  }
}

const serve = (port: MessagePort, fd: number): void => {
  const pool = new BufferPool();
  const sink = fdSink(fd);
  let broken: Error | undefined;
  const batches = new Map<number, ArrayBuffer>();
  const encoder = new Encoder({
    take: () => pool.take(),
    room: () => pool.room(),
    emit: (id, buf, used, end, failure, learned) =>
      sink.write(buf.subarray(0, used), (err) => {
        pool.give(buf);
        if (err) broken ??= err;
        if (!end) return;
        const give = batches.get(id);
        batches.delete(id);
        const error = broken ? { code: (broken as NodeJS.ErrnoException).code, message: broken.message } : undefined;
        port.postMessage({ id, ...(give ? { batch: give } : {}), ...(failure ? { failure } : {}), ...(error ? { error } : {}), ...(learned ? { learned } : {}) } satisfies FromWorker, give ? [give] : []);
      }),
  });
  const jobs: ToWorker[] = [];
  let running = false;
  const run = async () => {
    running = true;
    while (jobs.length > 0) {
      const m = jobs.shift()!;
      if (m.batch) batches.set(m.job.id, m.batch);
      try {
        await encoder.encode(m.job);
      } catch (err) {
        port.postMessage({ id: m.job.id, error: { message: (err as Error).message } } satisfies FromWorker);
      }
    }
    running = false;
  };
  port.on('message', (m: ToWorker) => {
    jobs.push(m);
    if (!running) void run();
  });
  port.postMessage({ ready: true } satisfies FromWorker);
};

const data = workerData as { tsdCtxEncoder?: number; fd?: number } | undefined;
if (!isMainThread && parentPort && data?.tsdCtxEncoder === 1 && typeof data.fd === 'number') serve(parentPort, data.fd);
