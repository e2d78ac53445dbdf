// Decompress: turns a layer blob's bytes into its tar stream. The compression is read from the
// blob's first bytes (gzip 1f 8b, zstd 28 b5 2f fd), as containerd does, since media types
// written by other tools sometimes say gzip for a plain tar; a media type that is not a layer at
// all is refused before any byte is read. gzip runs in zlib (off the main thread); zstd in the
// zstd binary, as Node 20 has no zstd.
import { open } from 'node:fs/promises';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import type { Compression } from '../oci/media-type.js';

const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

export const compressionOfMagic = (head: Buffer): Compression =>
  head.subarray(0, 2).equals(GZIP) ? 'gzip' : head.subarray(0, 4).equals(ZSTD) ? 'zstd' : 'none';

/** Peeks at the first bytes of a file (a blob: the verifying stream reads it again). */
export const sniffCompression = async (file: string): Promise<Compression> => {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return compressionOfMagic(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
};

/** A stream stage that decompresses; errors from it are a corrupt layer (see `isDecoderError`). */
export const decompressor = (c: Compression): Duplex => {
  switch (c) {
    case 'gzip':
      return createGunzip({ chunkSize: 1024 * 1024 });
    case 'zstd':
      // buffer: false — execa otherwise keeps a copy of all stdout (up to 100 MB, then a fatal error)
      return execa('zstd', ['-d', '-c', '-q'], { stderr: 'pipe', lines: false, buffer: { stdout: false } }).duplex();
    case 'none':
      return new PassThrough();
  }
};

/** True for the errors a decompressor raises on bad or truncated input. */
export const isDecoderError = (e: unknown): boolean => {
  if (typeof e !== 'object' || e === null) return false;
  const { code, name, exitCode } = e as { code?: unknown; name?: unknown; exitCode?: unknown };
  return (typeof code === 'string' && code.startsWith('Z_')) || (name === 'ExecaError' && typeof exitCode === 'number');
};

/**
 * A decompressing stage for bytes that arrive one chunk at a time (a download): it waits for the
 * first four bytes, picks the decoder by their magic (as `sniffCompression` does for a file), and
 * passes everything through it, back-pressure included. A decoder's error is this stage's error,
 * the same object, so `isDecoderError` still knows it.
 */
export class SniffingDecompressor extends Duplex {
  private inner: Duplex | undefined;
  private head: Buffer[] = [];
  private headLength = 0;
  private writeDone: ((e?: Error | null) => void) | undefined;

  constructor() {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
  }

  private start(): Duplex {
    const head = Buffer.concat(this.head);
    this.head = [];
    const inner = decompressor(compressionOfMagic(head));
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (e) => this.destroy(e));
    inner.on('drain', () => {
      const done = this.writeDone;
      this.writeDone = undefined;
      done?.();
    });
    this.inner = inner;
    if (head.length > 0) this.feed(head, () => undefined);
    return inner;
  }

  private feed(chunk: Buffer, done: (e?: Error | null) => void): void {
    const inner = this.inner as Duplex;
    if (inner.write(chunk)) done();
    else this.writeDone = done;
  }

  /**
   * Chunks that queued up while the decoder was busy go in as one: each write to zlib costs a
   * thread-pool round trip, and a download arrives in many small chunks.
   */
  override _writev(chunks: { chunk: Buffer }[], done: (e?: Error | null) => void): void {
    this.accept(chunks.length === 1 ? (chunks[0] as { chunk: Buffer }).chunk : Buffer.concat(chunks.map((c) => c.chunk)), done);
  }

  override _write(chunk: Buffer, _e: BufferEncoding, done: (e?: Error | null) => void): void {
    this.accept(chunk, done);
  }

  private accept(chunk: Buffer, done: (e?: Error | null) => void): void {
    if (this.inner) return this.feed(chunk, done);
    this.head.push(chunk);
    this.headLength += chunk.length;
    if (this.headLength < 4) return done();
    const inner = this.start();
    // the head (this chunk included) went in with start(); wait for the decoder if it is full
    if (inner.writableNeedDrain) this.writeDone = done;
    else done();
  }

  override _final(done: (e?: Error | null) => void): void {
    const inner = this.inner ?? this.start();
    inner.once('finish', () => done());
    inner.end();
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _destroy(e: Error | null, done: (e: Error | null) => void): void {
    this.inner?.destroy();
    done(e);
  }
}
