// ParallelGzip: gzip that uses every core. The stream is cut into blocks; each block becomes a
// complete gzip member compressed on libuv's thread pool (zlib.gzip), several at once, emitted in
// order. Concatenated members are one valid gzip file (RFC 1952 §2.2), which gunzip, Go's
// compress/gzip and containerd read as a whole. Output is deterministic for a given input.
//
// A block that does not compress is stored: before a block is queued, four 8 KiB samples of it
// are deflated at level 1 on the main thread (~2% of the block's work); when they shrink by less
// than 5%, the block's member uses level 0 (deflate's stored blocks: CRC only, ~20x faster than
// level 1). Already-compressed files (archives, images, media) then cost a copy, not a futile
// deflate. The choice depends on the bytes alone, so the output stays reproducible.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { deflateRawSync, gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);
/** Each member's input (the last one's at most). */
export const BLOCK = 1 << 20;
/** The size of each of looksIncompressible's four samples. */
export const SAMPLE = 8 << 10;

/**
 * True when samples of `block` shrink by less than 5% at deflate level 1. Self-contained (what it
 * uses comes in as arguments): gzip-thread.ts runs its source on a worker, so both choose alike.
 */
export const looksIncompressible = (block: Buffer, sampleSize = SAMPLE, deflate = deflateRawSync): boolean => {
  if (block.length < 4 * sampleSize) return false;
  const step = Math.floor((block.length - sampleSize) / 3);
  const sample = Buffer.concat([0, 1, 2, 3].map((k) => block.subarray(k * step, k * step + sampleSize)));
  return deflate(sample, { level: 1 }).length > sample.length * 0.95;
};

export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly queue: Promise<Buffer>[] = [];
  private readonly width: number;

  constructor(
    private readonly level = 6,
    width = Math.max(2, availableParallelism()),
  ) {
    super();
    this.width = width;
  }

  private startBlock(): void {
    const block = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const level = this.level > 0 && looksIncompressible(block) ? 0 : this.level;
    // one output chunk per member: zlib's default 16 KiB chunks would be concatenated again
    this.queue.push(gzipAsync(block, { level, chunkSize: Math.max(64 << 10, block.length + (block.length >> 6) + 1024) }));
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
        while (this.queue.length > 0) this.push(await this.queue.shift()!);
        done();
      } catch (e) {
        done(e as Error);
      }
    })();
  }
}
