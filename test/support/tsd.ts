// Test support: spawn the real binaries against a temp store, and make small images.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { paths, type StorePaths } from '../../src/store/layout.js';
import { openStore } from '../../src/store/store.js';
import { writeLayer } from '../../src/store/layer-writer.js';
import { writeImage } from '../../src/store/image-writer.js';
import { tagDescriptor } from '../../src/store/image.js';
import type { ImageConfig } from '../../src/oci/config.js';
import type { Descriptor } from '../../src/oci/manifest.js';

export const REPO = resolve(import.meta.dirname, '..', '..');

export interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs bin/tsd-TOOL with args; `input` goes to stdin. */
export const tsd = (tool: string, args: readonly string[], opts: { root?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> =>
  new Promise((done, fail) => {
    const child = spawn(join(REPO, 'bin', `tsd-${tool}`), args, {
      env: { ...process.env, ...(opts.root ? { TSD_ROOT: opts.root } : {}), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });

export const tempDir = (prefix = 'tsd-test-'): string => mkdtempSync(join(tmpdir(), prefix));
export const removeDir = (dir: string): void => rmSync(dir, { recursive: true, force: true });

export const tempStore = async (): Promise<StorePaths> => {
  const root = tempDir('tsd-store-');
  const r = await openStore(root)();
  if (E.isLeft(r)) throw new Error(r.left.message);
  return paths(root);
};

export interface FileSpec {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link';
  readonly content?: string | Buffer;
  readonly mode?: number;
  readonly linkname?: string;
  readonly uid?: number;
  readonly gid?: number;
}

/** A layer tar made from file specs, in memory (tests only: their layers are tiny). */
export const layerTar = async (files: readonly FileSpec[]): Promise<Buffer> => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const f of files) {
    const type = f.type ?? 'file';
    const header = { name: f.name, type, mode: f.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: f.uid ?? 0, gid: f.gid ?? 0, mtime: new Date(0), ...(f.linkname ? { linkname: f.linkname } : {}) };
    await new Promise<void>((res, rej) => (type === 'file' ? pack.entry(header, f.content ?? '', (e) => (e ? rej(e) : res())) : pack.entry(header, (e) => (e ? rej(e) : res()))));
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
};

/** Writes an image of the given layers into the store and names it `ref` (a full reference). */
export const makeImage = async (p: StorePaths, ref: string, layers: readonly (readonly FileSpec[])[], config: ImageConfig['config'] = {}): Promise<Descriptor> => {
  const written = [];
  for (const files of layers) {
    const r = await writeLayer(p, Readable.from([await layerTar(files)]))();
    if (E.isLeft(r)) throw new Error(r.left.message);
    written.push(r.right);
  }
  const cfg: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: written.map((l) => l.diffId) },
    history: written.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'test' })),
  };
  const img = await writeImage(p, cfg, written.map((l) => l.descriptor))();
  if (E.isLeft(img)) throw new Error(img.left.message);
  const tagged = await tagDescriptor(p, img.right.descriptor, ref)();
  if (E.isLeft(tagged)) throw new Error(tagged.left.message);
  return tagged.right;
};
