// Decompress: turns a layer blob's bytes into its tar stream. The compression is read from the
// blob's first bytes (gzip 1f 8b, zstd 28 b5 2f fd), as containerd does, since media types
// written by other tools sometimes say gzip for a plain tar; a media type that is not a layer at
// all is refused before any byte is read. gzip runs in zlib (off the main thread); zstd in the
// zstd binary, as Node 20 has no zstd.
import { open } from 'node:fs/promises';
import { PassThrough, type Duplex } from 'node:stream';
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
      return createGunzip({ chunkSize: 256 * 1024 });
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
