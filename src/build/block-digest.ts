// BlockDigest: the sha256 of a stream of blocks, computed on a worker thread. A big COPY's layer
// is hashed twice on the main thread otherwise (each file's bytes checked against its digest,
// then the whole tar for the diff ID), while the other core waits on gzip; the diff ID's hash
// moves off it. Blocks are handed over in order, after gzip has read them: a block that owns its
// whole ArrayBuffer (parallel-gzip.ts makes them with Buffer.concat) is transferred, not copied.
import { Worker } from 'node:worker_threads';
import type { Digest } from '../oci/digest.js';

// plain CommonJS, evaluated by the worker: no file to bundle or find
const WORKER = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (m) => {
  if (m === null) parentPort.postMessage(hash.digest('hex'));
  else hash.update(new Uint8Array(m));
});
`;

export class BlockDigest {
  private readonly worker = new Worker(WORKER, { eval: true });
  private readonly result: Promise<Digest>;
  size = 0;

  constructor() {
    this.result = new Promise<Digest>((resolve, reject) => {
      this.worker.once('message', (hex: string) => resolve(`sha256:${hex}` as Digest));
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`the digest thread ended (exit ${code})`)));
    });
    // a failed layer write may never ask for the digest: the thread alone keeps no process alive
    this.result.catch(() => undefined);
    this.worker.unref();
  }

  /** Appends `block` (which the caller gives up: it may be transferred). */
  update(block: Buffer): void {
    this.size += block.length;
    if (block.length === 0) return;
    const ab = block.buffer;
    if (ab instanceof ArrayBuffer && block.byteOffset === 0 && block.byteLength === ab.byteLength) this.worker.postMessage(ab, [ab]);
    else this.worker.postMessage(block.buffer.slice(block.byteOffset, block.byteOffset + block.byteLength));
  }

  /** The digest of every block given, in order; ends the thread. */
  async digest(): Promise<Digest> {
    this.worker.ref();
    this.worker.postMessage(null);
    try {
      return await this.result;
    } finally {
      void this.worker.terminate();
    }
  }

  /** Ends the thread without a digest (the layer failed). */
  abandon(): void {
    void this.worker.terminate();
  }
}
