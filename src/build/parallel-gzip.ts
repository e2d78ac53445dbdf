// ParallelGzip: gzip that uses every core. The stream is cut into blocks; each block becomes a
// complete gzip member compressed on libuv's thread pool (zlib.gzip), several at once, emitted in
// order. Concatenated members are one valid gzip file (RFC 1952 §2.2), which gunzip, Go's
// compress/gzip and containerd read as a whole. Output is deterministic for a given input.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);
const BLOCK = 1 << 20;

export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly queue: Promise<Buffer>[] = [];
  private readonly width: number;

  constructor(private readonly level = 6, width = Math.max(2, availableParallelism())) {
    super();
    this.width = width;
  }

  private startBlock(): void {
    const block = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.queue.push(gzipAsync(block, { level: this.level }));
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < BLOCK) return done();
    this.startBlock();
    if (this.queue.length < this.width) return done();
    this.queue.shift()!.then((out) => done(null, out), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingBytes > 0 || this.queue.length === 0) this.startBlock();
    void (async () => {
      try {
        for (const p of this.queue.splice(0)) this.push(await p);
        done();
      } catch (e) {
        done(e as Error);
      }
    })();
  }
}
