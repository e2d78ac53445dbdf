// Decompress: a tar given on stdin may be gzip-compressed (`docker load` and `docker import`
// accept both); the first bytes decide. zstd is recognised and refused with a clear message.
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { failure } from '../failure.js';
import { DigestingStream, type Digest } from '../oci/digest.js';

const GZIP = [0x1f, 0x8b];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const startsWith = (b: Buffer, magic: readonly number[]): boolean => magic.every((m, i) => b[i] === m);

export type Sniffed = 'gzip' | 'zstd' | 'none';
export const sniff = (head: Buffer): Sniffed => (startsWith(head, GZIP) ? 'gzip' : startsWith(head, ZSTD) ? 'zstd' : 'none');

/** `input` as a plain tar stream, gunzipped where it is gzip. */
export const plainTar = (input: Readable, what: string): Readable => {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  let decided = false;
  let target: NodeJS.WritableStream = out;
  const first = (chunk: Buffer) => {
    decided = true;
    const kind = sniff(chunk);
    if (kind === 'zstd') {
      out.destroy(failure('Unsupported', `${what}: zstd-compressed input is not supported; decompress it first (zstd -d)`) as unknown as Error);
      input.destroy();
      return false;
    }
    if (kind === 'gzip') {
      const gunzip = createGunzip();
      gunzip.on('error', (e) => out.destroy(failure('InvalidArchive', `${what}: bad gzip data: ${e.message}`) as unknown as Error));
      gunzip.pipe(out);
      target = gunzip;
    }
    return true;
  };
  input.on('data', (chunk: Buffer) => {
    if (!decided && !first(chunk)) return;
    if (!target.write(chunk)) {
      input.pause();
      (target as NodeJS.WritableStream & { once: (e: string, f: () => void) => void }).once('drain', () => input.resume());
    }
  });
  input.on('end', () => target.end());
  input.on('error', (e) => out.destroy(e));
  return out;
};

/**
 * A pass-through that also computes the digest of the uncompressed bytes when what flows is
 * gzip (a compressed layer's diff ID), in the same pass. `diffId()` is undefined for other data.
 */
export class DiffIdTap extends Transform {
  private hasher: DigestingStream | undefined;
  private gunzip: ReturnType<typeof createGunzip> | undefined;
  private failed = false;
  private decided = false;
  kind: Sniffed = 'none';
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    if (!this.decided) {
      this.decided = true;
      this.kind = sniff(chunk);
      if (this.kind === 'gzip') {
        this.hasher = new DigestingStream();
        this.hasher.resume();
        this.gunzip = createGunzip();
        this.gunzip.on('error', () => {
          this.failed = true;
          this.release();
        });
        this.gunzip.on('drain', () => this.release());
        this.gunzip.pipe(this.hasher);
      }
    }
    if (!this.gunzip || this.failed || this.gunzip.write(chunk)) return done(null, chunk);
    this.pending = () => done(null, chunk);
  }
  private pending: (() => void) | undefined;
  private release(): void {
    const go = this.pending;
    this.pending = undefined;
    go?.();
  }
  override _flush(done: TransformCallback): void {
    if (!this.gunzip || this.failed) return done();
    this.hasher!.on('finish', () => done());
    this.gunzip.on('error', () => done());
    this.gunzip.end();
  }
  diffId(): Digest | undefined {
    return this.hasher && !this.failed ? this.hasher.digest() : undefined;
  }
}
