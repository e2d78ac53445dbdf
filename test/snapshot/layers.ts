// Test support for snapshots: layer tars with any header (PAX records, devices, hostile names),
// layer blobs put straight into a store, a sentinel dir outside the store, and xattr reads.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { putBytes } from '../../src/store/blob.js';
import type { StorePaths } from '../../src/store/layout.js';
import { digestOf, type Digest } from '../../src/oci/digest.js';
import type { Descriptor } from '../../src/oci/manifest.js';
import { MediaType } from '../../src/oci/media-type.js';
import { tempDir } from '../support/tsd.js';

export interface Spec {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly content?: string | Buffer;
  readonly mode?: number;
  readonly linkname?: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: Date;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly pax?: Record<string, string>;
}

export const tarOf = async (specs: readonly Spec[]): Promise<Buffer> => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const s of specs) {
    const type = s.type ?? 'file';
    const header = {
      name: s.name,
      type,
      mode: s.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: s.uid ?? 0,
      gid: s.gid ?? 0,
      mtime: s.mtime ?? new Date(1_600_000_000_000),
      ...(s.linkname !== undefined ? { linkname: s.linkname } : {}),
      ...(s.devmajor !== undefined ? { devmajor: s.devmajor, devminor: s.devminor ?? 0 } : {}),
      ...(s.pax ? { pax: s.pax } : {}),
    };
    await new Promise<void>((res, rej) => {
      const cb = (e?: Error | null) => (e ? rej(e) : res());
      if (type === 'file') pack.entry(header, s.content ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
};

export interface StoredLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
}

export const compress = (bytes: Buffer, how: 'gzip' | 'zstd' | 'none'): Buffer =>
  how === 'gzip' ? gzipSync(bytes) : how === 'zstd' ? execFileSync('zstd', ['-q', '-c', '-3'], { input: bytes }) : bytes;

const mediaTypeOf = { gzip: MediaType.ociLayerGzip, zstd: MediaType.ociLayerZstd, none: MediaType.ociLayer } as const;

/** Puts the layer blob (compressed as asked) in the store; `blob` overrides the bytes stored. */
export const putLayer = async (p: StorePaths, tarBytes: Buffer, how: 'gzip' | 'zstd' | 'none' = 'gzip', blob?: Buffer): Promise<StoredLayer> => {
  const bytes = blob ?? compress(tarBytes, how);
  const r = await putBytes(p, bytes)();
  if (E.isLeft(r)) throw new Error(r.left.message);
  return { descriptor: { mediaType: mediaTypeOf[how], digest: r.right.digest, size: r.right.size }, diffId: digestOf(tarBytes) };
};

export const layerOf = async (p: StorePaths, specs: readonly Spec[], how: 'gzip' | 'zstd' | 'none' = 'gzip'): Promise<StoredLayer> =>
  putLayer(p, await tarOf(specs), how);

/** A directory outside the store with a file in it, and a fingerprint of everything about it. */
export const makeSentinel = (): { dir: string; fingerprint: () => string } => {
  const dir = tempDir('tsd-sentinel-');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'keep'), 'precious\n');
  writeFileSync(join(dir, 'sub', 'keep2'), 'precious too\n');
  // one python3 run walks the whole dir: names, types, modes, owners, sizes, mtimes, links, xattrs, contents
  const fingerprint = (): string => execFileSync('python3', ['-c', FINGERPRINT, dir]).toString();
  return { dir, fingerprint };
};

const FINGERPRINT = String.raw`
import os, sys
root = sys.argv[1]
def line(p):
    st = os.lstat(p)
    xs = sorted((k, os.getxattr(p, k, follow_symlinks=False).hex()) for k in os.listxattr(p, follow_symlinks=False))
    body = open(p, 'rb').read().hex() if os.path.isfile(p) and not os.path.islink(p) else ''
    print(p, oct(st.st_mode), st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_nlink, xs, body)
line(root)
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        line(os.path.join(d, n))
`;

/** A path's xattrs (not following a symlink), name to value, read by python3's os.getxattr. */
export const xattrsOf = (path: string): Record<string, string> =>
  JSON.parse(
    execFileSync('python3', [
      '-c',
      'import os,sys,json; p=sys.argv[1]; print(json.dumps({k: os.getxattr(p,k,follow_symlinks=False).decode("latin1") for k in os.listxattr(p,follow_symlinks=False)}))',
      path,
    ]).toString(),
  ) as Record<string, string>;

export const streamOf = (b: Buffer): Readable => Readable.from([b]);
