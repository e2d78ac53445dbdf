// The peer: `podman build --network none` on the same context directory, its image copied by
// skopeo into an OCI layout so the same reader (support.ts imageTree) reads both results.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FileSpec } from '../support/tsd.js';
import type { ImageConfig } from '../../src/oci/config.js';
import { paths, type StorePaths } from '../../src/store/layout.js';
import { tempDir } from '../support/tsd.js';

export const hasPodman = (): boolean => spawnSync('podman', ['--version']).status === 0;

/** Copies an image of the tsd store into podman's storage (once per name). */
export const givePodman = (p: StorePaths, ref: string, name: string): void => {
  execFileSync('skopeo', ['copy', '-q', `oci:${p.root}:${ref}`, `containers-storage:${name}`], { stdio: 'pipe' });
};

/** Writes file specs into a directory (the build context both builders read). */
export const writeContext = (files: readonly FileSpec[]): string => {
  const dir = tempDir('tsd-ctx-');
  for (const f of files) {
    const path = join(dir, f.name);
    if (f.type === 'directory' || f.name.endsWith('/')) {
      mkdirSync(path, { recursive: true, mode: f.mode ?? 0o755 });
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    if (f.type === 'symlink') execFileSync('ln', ['-s', f.linkname ?? '', path]);
    else writeFileSync(path, f.content ?? '', { mode: f.mode ?? 0o644 });
    if (f.mode !== undefined && f.type !== 'symlink') execFileSync('chmod', [(f.mode & 0o7777).toString(8), path]);
  }
  return dir;
};

/** podman build of `dir`; the result as an OCI layout store and the ref to read it by. */
export const podmanBuild = (dir: string, args: readonly string[] = []): { p: StorePaths; ref: string; code: number; stderr: string; config?: ImageConfig } => {
  const tag = `localhost/tsd-peer-${Math.random().toString(36).slice(2, 10)}:latest`;
  // --no-cache: podman's cache lookup walks every image in its storage and fails ("getting top
  // layer info: layer not known") when another test file's `podman rmi` removes one meanwhile
  const built = spawnSync('podman', ['build', '--no-cache', '--network', 'none', '--format', 'docker', '-q', '-t', tag, ...args, dir], { encoding: 'utf8' });
  const out = tempDir('tsd-peer-');
  if (built.status !== 0) return { p: paths(out), ref: 'peer', code: built.status ?? 1, stderr: built.stderr };
  execFileSync('skopeo', ['copy', '-q', `containers-storage:${tag}`, `oci:${out}:peer`], { stdio: 'pipe' });
  // the config blob as podman wrote it (a copy to OCI drops Docker's Healthcheck, OnBuild, Shell)
  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--config', `containers-storage:${tag}`], { encoding: 'utf8' })) as ImageConfig;
  spawnSync('podman', ['rmi', '-f', tag], { stdio: 'ignore' });
  return { p: paths(out), ref: 'peer', code: 0, stderr: '', config };
};
