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
const BLOCK = 1 << 20;
const SAMPLE = 8 << 10;

/** True when samples of `block` shrink by less than 5% at deflate level 1. */
export const looksIncompressible = (block: Buffer): boolean => {
  if (block.length < 4 * SAMPLE) return false;
  const step = Math.floor((block.length - SAMPLE) / 3);
  const sample = Buffer.concat([0, 1, 2, 3].map((k) => block.subarray(k * step, k * step + SAMPLE)));
  return deflateRawSync(sample, { level: 1 }).length > sample.length * 0.95;
};

export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly queue: { block: Buffer; out: Promise<Buffer> }[] = [];
  private readonly width: number;

  /** `onBlock` gets each input block, in order, once gzip is done with it (and may keep it). */
  constructor(
    private readonly level = 6,
    width = Math.max(2, availableParallelism()),
    private readonly onBlock?: (block: Buffer) => void,
  ) {
    super();
    this.width = width;
  }

  private next(): Promise<Buffer> {
    const { block, out } = this.queue.shift()!;
    return this.onBlock ? out.then((o) => (this.onBlock!(block), o)) : out;
  }

  private startBlock(): void {
    const block = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const level = this.level > 0 && looksIncompressible(block) ? 0 : this.level;
    // one output chunk per member: zlib's default 16 KiB chunks would be concatenated again
    this.queue.push({ block, out: gzipAsync(block, { level, chunkSize: Math.max(64 << 10, block.length + (block.length >> 6) + 1024) }) });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < BLOCK) return done();
    this.startBlock();
    if (this.queue.length < this.width) return done();
    this.next().then((out) => done(null, out), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingBytes > 0 || this.queue.length === 0) this.startBlock();
    void (async () => {
      try {
        while (this.queue.length > 0) this.push(await this.next());
        done();
      } catch (e) {
        done(e as Error);
      }
    })();
  }
}
