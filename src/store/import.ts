// Import: a root file system tar (plain or gzip) becomes a one-layer image, like `docker import`.
// The tar is read once: the same bytes are hashed (diff ID), compressed and hashed again (the
// layer digest) into a temp blob, and parsed on the side so that input that is not a tar, or an
// entry whose name leaves the root, is refused before anything is named.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import tar from 'tar-stream';
import { failure, type Failure } from '../failure.js';
import { imageMessage, type ImageMessage } from '../message.js';
import type { ContainerConfig, ImageConfig } from '../oci/config.js';
import type { Platform } from '../oci/manifest.js';
import { hostPlatform } from '../oci/platform.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { applyChanges } from './change.js';
import { plainTar } from './decompress.js';
import { writeImage } from './image-writer.js';
import { addUntagged, tagDescriptor } from './image.js';
import type { StorePaths } from './layout.js';
import { writeLayer } from './layer-writer.js';

export interface ImportOptions {
  /** the name to give the image; untagged without one */
  readonly ref?: string;
  /** Dockerfile instructions, e.g. 'CMD ["sh"]' */
  readonly changes?: readonly string[];
  /** the history comment */
  readonly message?: string;
  readonly platform?: Platform;
  /** the image's creation time (default now) */
  readonly created?: string;
}

const bad = (why: string): Failure => failure('InvalidArchive', `import: ${why}`);

/** Checks a layer entry name: relative to the root, never above it. */
const checkName = (name: string): Failure | undefined => {
  if (name.includes('\0')) return bad(`entry ${JSON.stringify(name)}: NUL in name`);
  let depth = 0;
  for (const part of name.replace(/^\/+/, '').split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) return bad(`entry ${JSON.stringify(name)}: path escapes the root`);
  }
  return undefined;
};

/** Passes bytes on while a tar parser checks them; fails the stream if they are not a good tar. */
class TarCheck extends Transform {
  private readonly parser = tar.extract();
  private problem: Error | undefined;
  entries = 0;
  constructor() {
    super();
    this.parser.on('entry', (header, stream, next) => {
      this.entries++;
      const f = checkName(header.name) ?? (header.type === 'link' && header.linkname ? checkName(header.linkname) : undefined);
      if (f) this.problem ??= f as unknown as Error;
      stream.on('end', next);
      stream.resume();
    });
    this.parser.on('error', (e: Error) => {
      this.problem ??= bad(`not a tar: ${e.message}`) as unknown as Error;
      this.release();
    });
    this.parser.on('drain', () => this.release());
  }
  private pending: (() => void) | undefined;
  private release(): void {
    const go = this.pending;
    this.pending = undefined;
    go?.();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    if (this.problem) return done(this.problem);
    if (this.parser.write(chunk)) return done(null, chunk);
    this.pending = () => done(this.problem ?? null, chunk);
  }
  override _flush(done: TransformCallback): void {
    if (this.problem) return done(this.problem);
    this.parser.once('finish', () => done(this.problem ?? (this.entries === 0 ? (bad('empty input: expected a root file system tar on stdin') as unknown as Error) : null)));
    this.parser.once('error', () => done(this.problem ?? null));
    this.parser.end(undefined);
  }
}

/** The config of an imported image (pure). */
export const importConfig = (diffId: ImageConfig['rootfs']['diff_ids'][number], container: ContainerConfig, platform: Platform, created: string, message?: string): ImageConfig => ({
  created,
  architecture: platform.architecture,
  os: platform.os,
  ...(platform.variant ? { variant: platform.variant } : {}),
  config: container,
  rootfs: { type: 'layers', diff_ids: [diffId] },
  history: [{ created, created_by: 'tsd-store import', ...(message ? { comment: message } : {}) }],
});

export const importRootfs = (p: StorePaths, input: Readable, options: ImportOptions = {}): TE.TaskEither<Failure, ImageMessage> => async () => {
  let ref: string | undefined;
  if (options.ref !== undefined) {
    const parsed = parseReference(options.ref);
    if (E.isLeft(parsed)) return parsed;
    ref = formatReference(parsed.right.digest ? { ...parsed.right, digest: undefined } : parsed.right);
  }
  const container = applyChanges({}, options.changes ?? []);
  if (E.isLeft(container)) return container;
  const source = plainTar(input, 'import');
  const check = new TarCheck();
  source.on('error', (e) => check.destroy(e));
  const layer = await writeLayer(p, source.pipe(check))();
  if (E.isLeft(layer)) return layer;
  const config = importConfig(layer.right.diffId, container.right, options.platform ?? hostPlatform(), options.created ?? new Date().toISOString(), options.message);
  const image = await writeImage(p, config, [layer.right.descriptor])();
  if (E.isLeft(image)) return image;
  const d = image.right.descriptor;
  const named = ref !== undefined ? await tagDescriptor(p, d, ref)() : await addUntagged(p, d)();
  if (E.isLeft(named)) return named;
  return E.right(imageMessage({ ...(ref !== undefined ? { ref } : {}), digest: d.digest, mediaType: d.mediaType, size: d.size, config: image.right.configDescriptor.digest, platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) } }));
};
