// Build test support: a busybox base image made from the host's /usr/bin/busybox (no registry),
// context tars made from file specs, and readers of a built image's config and final file tree.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { decompressor } from '../../src/snapshot/decompress.js';
import { layerCompression } from '../../src/oci/media-type.js';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { layerTar, makeImage, type FileSpec } from '../support/tsd.js';
import type { StorePaths } from '../../src/store/layout.js';
import { resolveImage } from '../../src/store/image.js';
import { openBlob } from '../../src/store/blob.js';
import type { ImageConfig } from '../../src/oci/config.js';

export const BUSYBOX = 'localhost/busybox:latest';

const applets = (): string[] =>
  execFileSync('/usr/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox');

/** The files of the busybox base image: /bin/busybox, an applet symlink each, /etc/passwd and group, /tmp. */
export const busyboxFiles = (): FileSpec[] => [
  { name: 'bin/', type: 'directory', mode: 0o755 },
  { name: 'bin/busybox', content: readFileSync('/usr/bin/busybox'), mode: 0o755 },
  ...applets().map((a): FileSpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 })),
  { name: 'etc/', type: 'directory', mode: 0o755 },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' },
  { name: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nstaff:x:50:\n' },
  { name: 'root/', type: 'directory', mode: 0o700 },
  { name: 'tmp/', type: 'directory', mode: 0o1777 },
  { name: 'home/', type: 'directory', mode: 0o755 },
  { name: 'home/app/', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 },
];

export const makeBusybox = async (p: StorePaths, ref = BUSYBOX, config: ImageConfig['config'] = {}) =>
  makeImage(p, ref, [busyboxFiles()], { Cmd: ['sh'], ...config });

/** A context tar of files (paths relative to the context root). */
export const contextTar = (files: readonly FileSpec[]): Promise<Buffer> => layerTar(files);

export interface FileNode {
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkname?: string;
  readonly content?: string;
}

/** The final file tree of an image (whiteouts applied), contents of small files kept. */
export const imageTree = async (p: StorePaths, ref: string): Promise<{ config: ImageConfig; tree: Map<string, FileNode>; layers: number }> => {
  const img = await resolveImage(p, ref)();
  if (E.isLeft(img)) throw new Error(img.left.message);
  const tree = new Map<string, FileNode>();
  for (const l of img.right.manifest.layers) {
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
      const base = name.slice(name.lastIndexOf('/') + 1);
      const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (base === '.wh..wh..opq') {
          for (const k of [...tree.keys()]) if (k.startsWith(`${dir}/`)) tree.delete(k);
        } else if (base.startsWith('.wh.')) {
          const gone = dir ? `${dir}/${base.slice(4)}` : base.slice(4);
          for (const k of [...tree.keys()]) if (k === gone || k.startsWith(`${gone}/`)) tree.delete(k);
        } else {
          if (h.type !== 'directory') for (const k of [...tree.keys()]) if (k.startsWith(`${name}/`)) tree.delete(k);
          const content = h.type === 'file' && (h.size ?? 0) < 65536 ? Buffer.concat(chunks).toString('utf8') : undefined;
          tree.set(name, { type: h.type ?? 'file', mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, ...(h.linkname ? { linkname: h.linkname } : {}), ...(content !== undefined ? { content } : {}) });
        }
        next();
      });
    });
    const blob = openBlob(p, l.digest);
    await pipeline(blob.pipe(decompressor(layerCompression(l.mediaType) ?? 'none')), extract);
  }
  return { config: img.right.config, tree, layers: img.right.manifest.layers.length };
};

export const readable = (b: Buffer): Readable => Readable.from([b]);
