// The hostile corpus: ≥40 named images made by code (no binary fixtures), each an OCI image whose
// first layer is a small busybox root (so an image that is accepted can really run) and whose
// other layers or documents are hostile. Each case knows how to be an OCI archive (for
// `tsd-store load`), a set of registry documents and blobs (for `tsd-pull`), and, for layer
// cases, the hostile tar itself (for `ADD evil.tar /`). Targets are a sentinel dir outside the
// store, by absolute path and by climbing with `..`.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { busyboxTar } from '../store/busybox.js';
import { tarOf, type Spec } from '../snapshot/layers.js';

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const ZST = 'application/vnd.oci.image.layer.v1.tar+zstd';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';

export interface Blob {
  readonly bytes: Buffer;
  readonly digest: string;
}

/** A hostile image: its blobs, the top document (manifest or index) and the documents under it. */
export interface HostileImage {
  /** every blob the registry / archive holds, documents included, by digest */
  readonly blobs: readonly Blob[];
  /** the documents a registry serves as manifests: digest → bytes and media type */
  readonly documents: readonly { readonly digest: string; readonly bytes: Buffer; readonly mediaType: string }[];
  readonly top: { readonly digest: string; readonly size: number; readonly mediaType: string };
  /** for layer cases: the hostile layer tars, uncompressed (ADD evil.tar / unpacks the first) */
  readonly tars: readonly Buffer[];
}

export interface Case {
  readonly name: string;
  /** what the case attacks: the layer contents, the blob encoding, or the documents */
  readonly kind: 'layer' | 'blob' | 'document';
  /** true: every path must refuse it (non-zero, one clean line); false: refused or neutralised */
  readonly mustRefuse: boolean;
  /** a decompression bomb: the test also bounds the memory of the tools */
  readonly bomb?: boolean;
  readonly make: (sentinel: string) => Promise<HostileImage>;
}

interface LayerIn {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** the diff ID the config claims */
  readonly diffId: string;
  /** the size the manifest claims (default: the real one) */
  readonly size?: number;
  readonly tar?: Buffer;
}

let base: Promise<LayerIn> | undefined;
const busybox = (): Promise<LayerIn> =>
  (base ??= busyboxTar().then((t) => ({ bytes: gzipSync(t), mediaType: GZ, diffId: sha256(t), tar: t })));

const gzLayer = (t: Buffer): LayerIn => ({ bytes: gzipSync(t), mediaType: GZ, diffId: sha256(t), tar: t });

export const configOf = (diffIds: readonly string[], extra: object = {}): Buffer =>
  Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }));

const blob = (bytes: Buffer): Blob => ({ bytes, digest: sha256(bytes) });

/** An image over busybox + `layers`; `lie` rewrites the manifest or config before hashing. */
const imageOf = async (
  layers: readonly LayerIn[],
  opts: { configBytes?: Buffer; manifest?: (m: any) => any; manifestBytes?: Buffer; configMediaType?: string } = {},
): Promise<HostileImage> => {
  const all = [await busybox(), ...layers];
  const cfg = opts.configBytes ?? configOf(all.map((l) => l.diffId));
  let m: any = {
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: opts.configMediaType ?? CONFIG, digest: sha256(cfg), size: cfg.length },
    layers: all.map((l) => ({ mediaType: l.mediaType, digest: sha256(l.bytes), size: l.size ?? l.bytes.length })),
  };
  if (opts.manifest) m = opts.manifest(m);
  const mb = opts.manifestBytes ?? Buffer.from(JSON.stringify(m));
  return {
    blobs: [blob(cfg), ...all.map((l) => blob(l.bytes)), blob(mb)],
    documents: [{ digest: sha256(mb), bytes: mb, mediaType: MANIFEST }],
    top: { digest: sha256(mb), size: mb.length, mediaType: MANIFEST },
    tars: layers.flatMap((l) => (l.tar ? [l.tar] : [])),
  };
};

const layerCase = (name: string, mustRefuse: boolean, layers: (s: string) => readonly (readonly Spec[])[]): Case => ({
  name,
  kind: 'layer',
  mustRefuse,
  make: async (s) => imageOf(await Promise.all(layers(s).map(async (specs) => gzLayer(await tarOf(specs))))),
});

const up = (n: number) => '../'.repeat(n);
/** content no other case has: a snapshot is shared by every layer of its diff ID, so two cases
 * claiming one diff ID would test only the first */
const unique = (): string => randomBytes(16).toString('hex');

/** A tar with one file of `size` zero bytes, streamed through gzip (never whole in memory). */
const zeroFileTar = async (size: number): Promise<{ gz: Buffer; diffId: string }> => {
  const pack = tar.pack();
  const gz: Buffer[] = [];
  const hash = createHash('sha256');
  const gzip = (await import('node:zlib')).createGzip({ level: 9 });
  pack.on('data', (data: unknown) => {
    const c = data as Buffer;
    hash.update(c);
    if (!gzip.write(c)) pack.pause();
  });
  gzip.on('drain', () => pack.resume());
  gzip.on('data', (c: Buffer) => gz.push(c));
  const done = new Promise<void>((r) => gzip.on('end', () => r()));
  pack.on('end', () => gzip.end());
  const entry = pack.entry({ name: 'zeros.bin', size, mode: 0o644, mtime: new Date(0) });
  const chunk = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= chunk.length) {
    if (!entry.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise<void>((r) => entry.once('drain', () => r()));
  }
  (entry as unknown as { end: () => void }).end();
  pack.finalize();
  await done;
  return { gz: Buffer.concat(gz), diffId: `sha256:${hash.digest('hex')}` };
};

/** `zeros` zero bytes after a small valid tar (its end blocks, then padding), compressed by `tool`. */
const trailingZeros = (t: Buffer, zeros: number, tool: 'gzip' | 'zstd'): { bytes: Buffer; diffId: string } => {
  const script = tool === 'gzip' ? `cat; head -c ${zeros} /dev/zero` : `cat; head -c ${zeros} /dev/zero`;
  const plain = execFileSync('sh', ['-c', `(${script}) | ${tool === 'gzip' ? 'gzip -9' : 'zstd -q -19 --long=27'}`], { input: t, maxBuffer: 1 << 28 });
  const diff = execFileSync('sh', ['-c', `(${script}) | sha256sum`], { input: t }).toString().split(' ')[0];
  return { bytes: plain, diffId: `sha256:${diff}` };
};

const indexOf = (child: { digest: string; size: number; mediaType: string }): Buffer =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ ...child, platform: { architecture: 'amd64', os: 'linux' } }] }));

export const corpus = (): Case[] => [
  // ---- layer contents: paths ----------------------------------------------------------------
  layerCase('traversal ../', true, () => [[{ name: '../pwned', content: 'x' }]]),
  layerCase('traversal to the sentinel by ..', true, (s) => [[{ name: `${up(16)}${s.slice(1)}/keep`, content: 'overwritten' }]]),
  layerCase('traversal in the middle of a name', true, (s) => [[{ name: `a/b/${up(18)}${s.slice(1)}/keep`, content: 'overwritten' }]]),
  layerCase('absolute path to the sentinel', false, (s) => [[{ name: `${s}/keep`, content: 'overwritten' }]]),
  layerCase('absolute path to a new file in the sentinel', false, (s) => [[{ name: `${s}/new`, content: 'planted' }]]),
  layerCase('symlink to the sentinel, then a write through it (same layer)', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }, { name: 'l/keep', content: 'overwritten' }]]),
  layerCase('relative symlink climbing out, then a write (same layer)', false, (s) => [[{ name: 'l', type: 'symlink', linkname: `${up(20)}${s.slice(1)}` }, { name: 'l/keep', content: 'overwritten' }]]),
  layerCase('symlink to the sentinel, write through it in a later layer', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }], [{ name: 'l/keep', content: 'overwritten' }]]),
  layerCase('symlink to a sentinel file, overwritten in a later layer', false, (s) => [[{ name: 'k', type: 'symlink', linkname: `${s}/keep` }], [{ name: 'k', content: 'overwritten' }]]),
  layerCase('symlinked parent several levels deep', false, (s) => [[{ name: 'a/', type: 'directory' }, { name: 'a/b', type: 'symlink', linkname: s }, { name: 'a/b/sub/keep2', content: 'overwritten' }]]),
  layerCase('a dir replaced by a symlink in a later layer, then a file under it', false, (s) => [[{ name: 'd/', type: 'directory' }, { name: 'd/x', content: 'x' }], [{ name: 'd', type: 'symlink', linkname: s }, { name: 'd/keep', content: 'overwritten' }]]),
  layerCase('/bin replaced by a symlink to the sentinel in a later layer', false, (s) => [[{ name: 'bin', type: 'symlink', linkname: s }, { name: 'bin/sh', content: '#!/x\n', mode: 0o755 }]]),
  layerCase('symlink chain of 60 then a write (ELOOP)', false, (s) => [[...Array.from({ length: 60 }, (_, i): Spec => ({ name: `c${i}`, type: 'symlink', linkname: i === 59 ? s : `c${i + 1}` })), { name: 'c0/keep', content: 'overwritten' }]]),
  layerCase('symlink loop a → b → a, then a write', false, () => [[{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }, { name: 'a/x', content: 'x' }]]),
  layerCase('the layer root replaced by a symlink', true, (s) => [[{ name: './', type: 'symlink', linkname: s }]]),
  layerCase('a file under a file', true, () => [[{ name: 'f', content: 'x' }, { name: 'f/g', content: 'y' }]]),
  // ---- links ------------------------------------------------------------------------------------
  layerCase('hard link climbing out', true, (s) => [[{ name: 'hl', type: 'link', linkname: `${up(16)}${s.slice(1)}/keep` }]]),
  layerCase('hard link to an absolute path outside', true, (s) => [[{ name: 'hl', type: 'link', linkname: `${s}/keep` }]]),
  layerCase('hard link through a symlinked parent', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }, { name: 'hl', type: 'link', linkname: 'l/keep' }]]),
  layerCase('hard link to a symlink that points out, then written through', false, (s) => [[{ name: 'k', type: 'symlink', linkname: `${s}/keep` }, { name: 'hl', type: 'link', linkname: 'k' }], [{ name: 'hl', content: 'overwritten' }]]),
  layerCase('hard link in a later layer to a file of an earlier one via a symlinked dir', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }], [{ name: 'hl', type: 'link', linkname: 'l/sub/keep2' }]]),
  // ---- whiteouts --------------------------------------------------------------------------------
  layerCase('whiteout through a symlink (same layer)', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }, { name: 'l/.wh.keep', content: '' }]]),
  layerCase('whiteout through a symlink (later layer)', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }], [{ name: 'l/.wh.keep', content: '' }]]),
  layerCase('opaque whiteout through a symlink', false, (s) => [[{ name: 'l', type: 'symlink', linkname: s }], [{ name: 'l/.wh..wh..opq', content: '' }]]),
  layerCase('whiteout climbing out', true, () => [[{ name: '../.wh.keep', content: '' }]]),
  layerCase('whiteout of ..', true, () => [[{ name: 'a/.wh...', content: '' }]]),
  layerCase('whiteout by absolute path of the sentinel', false, (s) => [[{ name: `${s}/.wh.keep`, content: '' }]]),
  // ---- special files and modes ------------------------------------------------------------------
  layerCase('device nodes: the host disk and memory', false, () => [[{ name: 'dev/', type: 'directory' }, { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }, { name: 'dev/kmem', type: 'character-device', devmajor: 1, devminor: 2 }]]),
  layerCase('a fifo and a setuid root file', false, () => [[{ name: 'p', type: 'fifo' }, { name: 'suid', content: '#!/bin/sh\n', mode: 0o4755 }]]),
  layerCase('a name with a newline and control bytes', false, () => [[{ name: 'evil\nname\u001b[31m', content: 'x' }]]),
  // ---- size --------------------------------------------------------------------------------------
  layerCase('a 1 MiB PAX path', true, () => [[{ name: 'x', content: 'x', pax: { path: 'a'.repeat(1 << 20) } }]]),
  layerCase('a 1 MiB PAX linkpath', true, (s) => [[{ name: 'l', type: 'symlink', linkname: 'x', pax: { linkpath: `${s}/${'b'.repeat(1 << 20)}` } }]]),
  layerCase('a PAX path of 8000 bytes (over PATH_MAX)', false, () => [[{ name: 'x', content: 'x', pax: { path: `${'c'.repeat(200)}/`.repeat(40) + 'f' } }]]),
  layerCase('a 2000-deep tree', false, () => [[{ name: `${'d/'.repeat(2000)}leaf`, content: 'deep' }]]),
  layerCase('a 2000-deep tree replaced by a file in the same layer', false, () => [[{ name: `${'d/'.repeat(2000)}leaf`, content: 'deep' }, { name: 'd', content: 'now a file' }]]),
  layerCase('a 2000-deep tree whited out in a later layer', false, () => [[{ name: `${'d/'.repeat(2000)}leaf`, content: 'deep' }], [{ name: '.wh.d', content: '' }]]),
  layerCase('10,000 PAX xattr records', false, () => [[{ name: 'x', content: 'x', pax: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`SCHILY.xattr.user.k${i}`, 'v'])) }]]),
  // ---- blobs: encoding, bombs, truncation, labels -------------------------------------------------
  {
    name: 'gzip bomb: 256 MiB of zeros after a valid tar',
    kind: 'blob',
    mustRefuse: false,
    bomb: true,
    make: async () => {
      const t = await tarOf([{ name: 'small', content: 'x' }]);
      const { bytes, diffId } = trailingZeros(t, 256 << 20, 'gzip');
      return imageOf([{ bytes, mediaType: GZ, diffId }]);
    },
  },
  {
    name: 'zstd bomb: 512 MiB of zeros after a valid tar',
    kind: 'blob',
    mustRefuse: false,
    bomb: true,
    make: async () => {
      const t = await tarOf([{ name: 'small', content: 'x' }]);
      const { bytes, diffId } = trailingZeros(t, 512 << 20, 'zstd');
      return imageOf([{ bytes, mediaType: ZST, diffId }]);
    },
  },
  {
    name: 'gzip bomb: one file of 128 MiB of zeros',
    kind: 'blob',
    mustRefuse: false,
    bomb: true,
    make: async () => {
      const { gz, diffId } = await zeroFileTar(128 << 20);
      return imageOf([{ bytes: gz, mediaType: GZ, diffId }]);
    },
  },
  {
    name: 'a gzip layer cut in half (its digest is of the cut bytes)',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: randomBytes(200_000) }]);
      const gz = gzipSync(t);
      return imageOf([{ bytes: gz.subarray(0, gz.length >> 1), mediaType: GZ, diffId: sha256(t) }]);
    },
  },
  {
    name: 'a tar cut mid-entry, gzipped whole (diff ID of the cut tar)',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const t = (await tarOf([{ name: 'f', content: randomBytes(200_000) }])).subarray(0, 100_000);
      return imageOf([{ bytes: gzipSync(t), mediaType: GZ, diffId: sha256(t) }]);
    },
  },
  {
    name: 'gzip bytes labelled as a plain tar',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: unique() }]);
      const gz = gzipSync(t);
      return imageOf([{ bytes: gz, mediaType: TAR, diffId: sha256(gz) }]);
    },
  },
  {
    name: 'a plain tar labelled gzip',
    kind: 'blob',
    // read by its magic bytes, as containerd does (docs/snapshots.md): accepted
    mustRefuse: false,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: unique() }]);
      return imageOf([{ bytes: t, mediaType: GZ, diffId: sha256(t) }]);
    },
  },
  {
    name: 'zstd bytes labelled gzip',
    kind: 'blob',
    // read by its magic bytes: accepted
    mustRefuse: false,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: unique() }]);
      return imageOf([{ bytes: execFileSync('zstd', ['-q', '-c'], { input: t }), mediaType: GZ, diffId: sha256(t) }]);
    },
  },
  {
    name: 'gzip inside gzip',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: unique() }]);
      return imageOf([{ bytes: gzipSync(gzipSync(t)), mediaType: GZ, diffId: sha256(t) }]);
    },
  },
  {
    name: 'random bytes as a gzip layer',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const junk = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), randomBytes(65_536)]);
      return imageOf([{ bytes: junk, mediaType: GZ, diffId: sha256(junk) }]);
    },
  },
  {
    name: 'a config whose diff ID lies about the layer',
    kind: 'blob',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: unique() }]);
      return imageOf([{ bytes: gzipSync(t), mediaType: GZ, diffId: sha256('something else') }]);
    },
  },
  // ---- documents ------------------------------------------------------------------------------------
  {
    name: 'a manifest that understates a layer size',
    kind: 'document',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: randomBytes(50_000) }]);
      const l = gzLayer(t);
      return imageOf([{ ...l, size: l.bytes.length - 1000 }]);
    },
  },
  {
    name: 'a manifest that overstates a layer size',
    kind: 'document',
    mustRefuse: true,
    make: async () => {
      const t = await tarOf([{ name: 'f', content: randomBytes(50_000) }]);
      const l = gzLayer(t);
      return imageOf([{ ...l, size: l.bytes.length + 1000 }]);
    },
  },
  {
    name: 'a manifest naming a layer the image does not hold',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { manifest: (m) => ({ ...m, layers: [...m.layers, { mediaType: GZ, digest: sha256('absent'), size: 6 }] }) }),
  },
  {
    name: 'a config that is not JSON',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { configBytes: Buffer.from('{"architecture": "amd64", this is not json') }),
  },
  {
    name: 'a config with fewer diff IDs than layers',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([gzLayer(await tarOf([{ name: 'f', content: unique() }]))], { configBytes: configOf([]) }),
  },
  {
    name: 'a config of 20 MiB',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { configBytes: Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, pad: 'p'.repeat(20 << 20) })) }),
  },
  {
    name: 'a config whose fields have the wrong types',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { configBytes: Buffer.from(JSON.stringify({ architecture: 7, os: ['linux'], config: 'sh', rootfs: { type: 'layers', diff_ids: 'none' } })) }),
  },
  {
    name: 'a manifest that is not JSON',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { manifestBytes: Buffer.from('schemaVersion: 2\nlayers: [oops') }),
  },
  {
    name: 'a manifest whose layers are not a list',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { manifest: (m) => ({ ...m, layers: 'all of them' }) }),
  },
  {
    name: 'a manifest whose layer digest is not a digest',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { manifest: (m) => ({ ...m, layers: [{ mediaType: GZ, digest: 'sha256:../../../etc/passwd', size: 10 }] }) }),
  },
  {
    name: 'a manifest with 100,000 layers',
    kind: 'document',
    mustRefuse: true,
    make: async () => imageOf([], { manifest: (m) => ({ ...m, layers: Array.from({ length: 100_000 }, (_, i) => ({ mediaType: GZ, digest: sha256(String(i)), size: 1 })) }) }),
  },
  {
    name: 'an index nested 40 deep',
    kind: 'document',
    mustRefuse: true,
    make: async () => {
      const img = await imageOf([]);
      let top = img.top;
      const docs = [...img.documents];
      const blobs = [...img.blobs];
      for (let i = 0; i < 40; i++) {
        const b = indexOf(top);
        docs.push({ digest: sha256(b), bytes: b, mediaType: INDEX });
        blobs.push(blob(b));
        top = { digest: sha256(b), size: b.length, mediaType: INDEX };
      }
      return { ...img, blobs, documents: docs, top };
    },
  },
  {
    name: 'an index that names its own digest (a loop that cannot hash) and a manifest typed as an index',
    kind: 'document',
    mustRefuse: true,
    make: async () => {
      const img = await imageOf([]);
      // an index naming the digest it would have if it named the other: it names a document that is not there
      const probe = indexOf({ digest: sha256('self'), size: 10, mediaType: INDEX });
      const b = indexOf({ digest: sha256(probe), size: probe.length, mediaType: INDEX });
      return { ...img, blobs: [...img.blobs, blob(b)], documents: [...img.documents, { digest: sha256(b), bytes: b, mediaType: INDEX }], top: { digest: sha256(b), size: b.length, mediaType: INDEX } };
    },
  },
  {
    name: 'an index whose entry is a manifest labelled as an index (a type loop)',
    kind: 'document',
    // the document's own mediaType decides what it is (not the label): read as the manifest it is
    mustRefuse: false,
    make: async () => {
      const img = await imageOf([]);
      const b = indexOf({ ...img.top, mediaType: INDEX });
      return { ...img, blobs: [...img.blobs, blob(b)], documents: [...img.documents, { digest: sha256(b), bytes: b, mediaType: INDEX }], top: { digest: sha256(b), size: b.length, mediaType: INDEX } };
    },
  },
  {
    name: 'a config labelled as a layer media type',
    kind: 'document',
    mustRefuse: false,
    make: async () => imageOf([], { configMediaType: GZ }),
  },
];

/** The image as an OCI archive (tar) naming it `ref`; `liar` swaps a blob's bytes under its name. */
export const ociArchive = async (img: HostileImage, ref: string): Promise<Buffer> => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  const put = (name: string, body: Buffer) => new Promise<void>((res, rej) => pack.entry({ name, mode: 0o644, mtime: new Date(0) }, body, (e) => (e ? rej(e) : res())));
  await put('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  await put('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ ...img.top, annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref } }] })));
  const seen = new Set<string>();
  for (const b of img.blobs) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    await put(`blobs/sha256/${b.digest.slice(7)}`, b.bytes);
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
};
