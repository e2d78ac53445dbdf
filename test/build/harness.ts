// The end-to-end harness of the tsd-build tests: a store with the busybox base, and a build run
// the way a user types it (`tsd-ctx DIR | tsd-build ARGS`), blocking or not.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { StorePaths } from '../../src/store/layout.js';
import { REPO, removeDir, tempStore, type FileSpec } from '../support/tsd.js';
import { writeContext } from './peer.js';
import { BUSYBOX, makeBusybox } from './support.js';

export const BASE = `FROM ${BUSYBOX}`;

export interface Built {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly dir: string;
}

export interface Harness {
  readonly p: StorePaths;
  /** blocking: for builds that need nothing from this process */
  readonly build: (files: readonly FileSpec[], dockerfile: string, args?: readonly string[], opts?: { dir?: string; env?: NodeJS.ProcessEnv; root?: string }) => Built;
  /** not blocking: for builds that talk to a server in this process */
  readonly buildAsync: (dockerfile: string, args: readonly string[], root?: string, env?: NodeJS.ProcessEnv) => Promise<Built>;
  readonly cleanup: () => void;
}

const command = `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} "$@"`;
const withProgress = (args: readonly string[]): string[] => (args.some((a) => a.startsWith('--progress')) ? [...args] : ['--progress=plain', ...args]);

export const harness = async (): Promise<Harness> => {
  const p = await tempStore();
  await makeBusybox(p);
  const dirs: string[] = [];
  return {
    p,
    build: (files, dockerfile, args = [], opts = {}) => {
      const dir = opts.dir ?? writeContext([...files, { name: 'Dockerfile', content: dockerfile }]);
      if (!opts.dir) dirs.push(dir);
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', command, dir, ...withProgress(args)], {
        encoding: 'utf8',
        env: { ...process.env, TSD_ROOT: opts.root ?? p.root, ...opts.env },
      });
      return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, dir };
    },
    buildAsync: (dockerfile, args, root = p.root, env = process.env) =>
      new Promise((done) => {
        const dir = writeContext([{ name: 'Dockerfile', content: dockerfile }]);
        dirs.push(dir);
        const child = spawn('bash', ['-o', 'pipefail', '-c', command, dir, ...withProgress(args)], { env: { ...env, TSD_ROOT: root } });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => done({ code: code ?? 1, stdout, stderr, dir }));
      }),
    cleanup: () => {
      removeDir(p.root);
      for (const d of dirs) removeDir(d);
    },
  };
};

/** The image line of a successful build. */
export const ok = (b: Built): { ref?: string; digest: string; config: string } => {
  assert.is(b.code, 0, b.stderr);
  const line = JSON.parse(b.stdout.trim().split('\n')[0]!);
  assert.is(line.type, 'image');
  return line;
};

export const blobCount = (root: string): number => readdirSync(join(root, 'blobs', 'sha256')).length;
/** The step numbers whose progress says CACHED. */
export const cachedSteps = (stderr: string): string[] => stderr.split('\n').filter((l) => / CACHED$/.test(l)).map((l) => l.split(' ')[0]!);
export const lastLine = (stderr: string): string => stderr.trim().split('\n').pop() ?? '';
