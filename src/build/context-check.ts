// ContextCheck: the bytes a COPY reads from the context checked against their TSD.sha256 records
// on a thread of its own. The reads land in shared memory (SharedArrayBuffer windows, never
// written again once read), so the thread hashes the very bytes the layer gets, while the main
// thread goes on packing; `settled` answers once every file handed out so far is checked, and
// the layer is committed only after that (layer-pack.ts). On the main thread these hashes were
// ~170 ms of a 300 MB cold COPY, on the thread the COPY waits on.
import { Worker } from 'node:worker_threads';

// plain CommonJS, evaluated by the worker: no file to bundle or find. In: [window, starts, sizes,
// digests, first] (files of one window, numbered from `first`) or a number (a settle request).
// Out: [request, numbers of the files that did not match].
const WORKER = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
const bad = [];
parentPort.on('message', (m) => {
  if (typeof m === 'number') return parentPort.postMessage([m, bad]);
  const [window, starts, sizes, digests, first] = m;
  const bytes = Buffer.from(window);
  for (let i = 0; i < starts.length; i++) {
    if (hash('sha256', bytes.subarray(starts[i], starts[i] + sizes[i]), 'hex') !== digests[i]) bad.push(first + i);
  }
});
`;

/** Files gathered before they are sent (one message per window otherwise). */
const BATCH = 256;

export class ContextCheck<T> {
  private worker: Worker | undefined;
  private readonly files: T[] = [];
  private window: SharedArrayBuffer | undefined;
  private starts: number[] = [];
  private sizes: number[] = [];
  private digests: string[] = [];
  private first = 0;
  private requests = 0;
  private readonly answers = new Map<number, (bad: number[]) => void>();
  private failed: Error | undefined;

  /** Queues `file`, whose bytes are `bytes` (a view of a SharedArrayBuffer) and must have `sha256`. */
  add(file: T, bytes: Buffer, sha256: string): void {
    const window = bytes.buffer as SharedArrayBuffer;
    if (window !== this.window || this.starts.length >= BATCH) this.send();
    this.window = window;
    this.files.push(file);
    this.starts.push(bytes.byteOffset);
    this.sizes.push(bytes.length);
    this.digests.push(sha256.slice('sha256:'.length));
  }

  private send(): void {
    if (this.starts.length === 0) return;
    this.thread().postMessage([this.window, this.starts, this.sizes, this.digests, this.first]);
    this.first += this.starts.length;
    this.starts = [];
    this.sizes = [];
    this.digests = [];
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER, { eval: true });
    // referenced only while an answer is awaited: an idle thread keeps no process alive
    worker.unref();
    worker.on('message', ([n, bad]: [number, number[]]) => {
      this.answers.get(n)?.(bad);
      this.answers.delete(n);
      if (this.answers.size === 0) worker.unref();
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      for (const answer of this.answers.values()) answer([]);
      this.answers.clear();
    };
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`the context check thread ended (exit ${code})`)));
    return (this.worker = worker);
  }

  /** The files added so far whose bytes do not match, once all of them are checked. */
  async settled(): Promise<readonly T[]> {
    if (this.failed) throw this.failed;
    this.send();
    if (!this.worker) return [];
    const n = this.requests++;
    const bad = await new Promise<number[]>((resolve) => {
      this.answers.set(n, resolve);
      this.worker!.ref();
      this.worker!.postMessage(n);
    });
    if (this.failed) throw this.failed;
    return bad.map((i) => this.files[i]!);
  }

  /** Ends the thread. */
  close(): void {
    this.worker?.removeAllListeners('exit');
    void this.worker?.terminate();
  }
}
