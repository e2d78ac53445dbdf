// GzipThread: a big layer's tar gzipped and hashed (its diff ID) off the main thread. The main
// thread only cuts the tar into 1 MiB blocks and hands each one over (transferred, not copied);
// a worker hashes the blocks in order and gzips each one as its own member on libuv's pool,
// several at once, as parallel-gzip.ts does, and sends the members back in order. Each gzip call
// costs its caller ~0.4 ms (a zlib stream and its output buffer): made on the main thread, 300 of
// them for a 300 MB layer were 130–220 ms of the thread the whole COPY waits on (measured).
// Output is the same as ParallelGzip's for the same level: deterministic for a given input.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Digest } from '../oci/digest.js';
import { BLOCK, looksIncompressible, SAMPLE } from './parallel-gzip.js';

// plain CommonJS, evaluated by the worker: no file to bundle or find. In: ArrayBuffers (blocks),
// then null. Out: each block's gzip member as an ArrayBuffer, in order, then the diff ID's hex.
// looksIncompressible is parallel-gzip.ts's own source, so both choose level 0 for the same blocks.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { deflateRawSync, gzip } = require('node:zlib');
const { level } = workerData;
const hash = createHash('sha256');
const done = new Map();
let sent = 0, queued = 0, ending = false;
const looksIncompressible = ${looksIncompressible.toString()};
const flush = () => {
  while (done.has(sent)) {
    const out = done.get(sent);
    done.delete(sent++);
    if (out instanceof Error) throw out;
    const ab = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    parentPort.postMessage(ab, [ab]);
  }
  if (ending && sent === queued) parentPort.postMessage(hash.digest('hex'));
};
parentPort.on('message', (m) => {
  if (m === null) {
    ending = true;
    return flush();
  }
  const block = Buffer.from(m);
  hash.update(block);
  const seq = queued++;
  const lvl = level > 0 && looksIncompressible(block, ${SAMPLE}, deflateRawSync) ? 0 : level;
  gzip(block, { level: lvl, chunkSize: Math.max(64 << 10, block.length + (block.length >> 6) + 1024) }, (err, out) => {
    done.set(seq, err ?? out);
    flush();
  });
});
`;

export class GzipThread extends Transform {
  private readonly worker: Worker;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private sent = false;
  private inFlight = 0;
  /** the write waiting for a block to come back (at most `width` blocks are out at once) */
  private held: TransformCallback | undefined;
  private ended: ((e?: Error | null) => void) | undefined;
  private readonly width: number;
  /** the diff ID: the sha256 of every byte written, known once the stream has ended */
  readonly diffId: Promise<Digest>;

  /** `width`: blocks out at once (a few more than cores, so the pool never waits on a round trip) */
  constructor(level: number, width = availableParallelism() + 2) {
    super();
    this.width = width;
    this.worker = new Worker(WORKER, { eval: true, workerData: { level } });
    // referenced only while blocks are out: a stream nobody reads keeps no process alive
    this.worker.unref();
    let resolveId!: (d: Digest) => void;
    let rejectId!: (e: Error) => void;
    this.diffId = new Promise<Digest>((res, rej) => ((resolveId = res), (rejectId = rej)));
    this.diffId.catch(() => undefined);
    this.worker.on('message', (m: ArrayBuffer | string) => {
      if (typeof m === 'string') {
        this.stop();
        resolveId(`sha256:${m}` as Digest);
        const end = this.ended;
        this.ended = undefined;
        end?.();
        return;
      }
      this.push(Buffer.from(m));
      if (--this.inFlight === 0 && !this.ended) this.worker.unref();
      const held = this.held;
      this.held = undefined;
      held?.();
    });
    const fail = (e: Error) => {
      rejectId(e);
      this.destroy(e);
    };
    this.worker.once('error', fail);
    this.worker.once('exit', (code) => fail(new Error(`the gzip thread ended (exit ${code})`)));
  }

  private stop(): void {
    this.worker.removeAllListeners('exit');
    void this.worker.terminate();
  }

  private send(): void {
    const block = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.sent = true;
    if (this.inFlight++ === 0) this.worker.ref();
    // a block of BLOCK bytes or more owns its ArrayBuffer (Buffer.concat above): moved, not copied
    const ab = block.byteOffset === 0 && block.byteLength === block.buffer.byteLength ? block.buffer : block.buffer.slice(block.byteOffset, block.byteOffset + block.byteLength);
    this.worker.postMessage(ab, [ab as ArrayBuffer]);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < BLOCK) return done();
    this.send();
    if (this.inFlight < this.width) return done();
    this.held = done;
  }

  override _flush(done: TransformCallback): void {
    // an empty tar still gets its (empty) gzip member
    if (this.pendingBytes > 0 || !this.sent) this.send();
    this.ended = done;
    this.worker.ref();
    this.worker.postMessage(null);
  }

  override _destroy(err: Error | null, done: (e: Error | null) => void): void {
    this.stop();
    done(err);
  }
}
