// Rootfs: a container's root file system, mounted. The snapshots come from src/snapshot (unpacked
// once, shared); this file only stacks them. Start-up matters here (bench/run): when every
// snapshot of the image is already unpacked and the mount data is plain, it mounts with one
// mount(8) call and loads nothing else; otherwise it loads src/snapshot (unpacking, and its
// overlay planner for long or unusual paths) on demand.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { runQuiet } from './quiet-command.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { hexOf } from '../oci/digest.js';
import type { ResolvedImage } from '../store/image.js';
import type { StorePaths } from '../store/layout.js';
import { chainIds } from '../snapshot/chain-id.js';

export interface RootfsTarget {
  readonly upperdir: string;
  readonly workdir: string;
  readonly target: string;
}



/** The image's snapshot dirs, lowest first, unpacking what is missing. */
export const snapshotsOf = async (p: StorePaths, img: ResolvedImage): Promise<E.Either<Failure, readonly string[]>> => {
  const diffIds = img.config.rootfs.diff_ids;
  if (diffIds.length > 0 && diffIds.length === img.manifest.layers.length) {
    // src/snapshot/snapshot.ts keeps each snapshot at snapshots/<chain ID hex>/fs
    const dirs = chainIds(diffIds).map((id) => join(p.snapshots, hexOf(id), 'fs'));
    if (dirs.every((d) => existsSync(d))) return E.right(dirs);
  }
  const { ensureSnapshots } = await import('../snapshot/snapshot.js');
  return ensureSnapshots(p, img)();
};

/**
 * `volatile` (for containers removed when they exit) lets overlayfs skip syncing the upper file
 * system, above all at unmount, where the sync costs 10-180 ms on a busy disk (bench/run) for
 * writes that are about to be deleted. Kernels before 5.10 refuse it: then the mount is retried
 * without.
 */
export const mountRootfs = async (lowerdirs: readonly string[], t: RootfsTarget, options: { readonly volatile?: boolean } = {}): Promise<E.Either<Failure, void>> => {
  const data = `lowerdir=${[...lowerdirs].reverse().join(':')},upperdir=${t.upperdir},workdir=${t.workdir}`;
  if (options.volatile && data.length + 9 <= 4095 && (await runQuiet('mount', ['-t', 'overlay', 'overlay', '-o', `${data},volatile`, t.target])).code === 0) return E.right(undefined);
  const plain = [...lowerdirs, t.upperdir, t.workdir].every((d) => !/[,:\\]/.test(d));
  if (!plain || data.length > 4095) {
    const { mountOverlay } = await import('../snapshot/overlay.js');
    return mountOverlay({ lowerdirs, upperdir: t.upperdir, workdir: t.workdir, target: t.target })();
  }
  const r = await runQuiet('mount', ['-t', 'overlay', 'overlay', '-o', data, t.target]);
  return r.code === 0 ? E.right(undefined) : E.left(failure('MountFailed', `mount overlay on ${t.target}: ${r.stderr.trim().split('\n')[0] ?? ''}`, ExitCode.tool));
};

export const isMounted = async (target: string): Promise<boolean> => (await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '')).includes(` ${target} `);

/**
 * Unmounts; quiet when not mounted. A plain unmount first: a lazy one (-l) makes the kernel wait
 * for an RCU grace period, ~20 ms here, which a container's exit should not pay; lazy only when
 * something still holds the mount busy.
 */
export const unmountRootfs = async (target: string): Promise<void> => {
  if (!(await isMounted(target))) return;
  if ((await runQuiet('umount', [target])).code !== 0) await runQuiet('umount', ['-l', target]);
};

/** A root file system mounted by a helper process that unmounts it when told, or when we die. */
export interface HeldMount {
  /** unmounts; with `removeDir`, then removes that directory (the container's, for --rm) */
  readonly release: (removeDir?: string) => Promise<void>;
}

/** tsd-supervisor beside this module (dist/) or, from src/ (tests), in dist/. */
const helperBinary = (): string | undefined => [join(import.meta.dirname, 'tsd-supervisor'), join(import.meta.dirname, '..', '..', 'dist', 'tsd-supervisor')].find((f) => existsSync(f));

/**
 * Mounts through `tsd-supervisor rootfs` (mount(2) in a small C process: no mount(8) and umount(8)
 * to spawn, ~15 ms of a foreground run; see supervisor.c), which then holds the mount for a
 * foreground container: release() unmounts (and removes the container's dir, for --rm), and if
 * tsd-run dies first, the helper sees its stdin end and unmounts. undefined when there is no
 * helper binary (or an older one) or the mount data is not plain: the caller uses mountRootfs.
 */
export const mountHeld = async (lowerdirs: readonly string[], t: RootfsTarget, options: { readonly volatile?: boolean } = {}): Promise<E.Either<Failure, HeldMount> | undefined> => {
  const data = `lowerdir=${[...lowerdirs].reverse().join(':')},upperdir=${t.upperdir},workdir=${t.workdir}`;
  const bin = helperBinary();
  if (bin === undefined || data.length + 9 > 4095 || ![...lowerdirs, t.upperdir, t.workdir].every((d) => !/[,:\\\n]/.test(d))) return undefined;
  // its own process group: a terminal's ^C (for the container) does not reach it
  const child = spawn(bin, ['rootfs', t.target, data, options.volatile ? '1' : '0'], { stdio: ['pipe', 'pipe', 'ignore'], detached: true });
  child.stdin.on('error', () => undefined);
  const closed = new Promise<void>((r) => {
    child.on('close', () => r());
    child.on('error', () => r());
  });
  const first = await new Promise<string>((r) => {
    let text = '';
    child.stdout.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('\n')) r(text);
    });
    void closed.then(() => r(text));
  });
  if (first.startsWith('ok\n')) {
    return E.right({
      release: async (removeDir) => {
        child.stdin.end(removeDir !== undefined ? `r ${removeDir}\n` : 'u\n');
        await closed;
      },
    });
  }
  if (first.startsWith('fail ')) return E.left(failure('MountFailed', `mount overlay on ${t.target}: ${first.slice(5).trim()}`, ExitCode.tool));
  return undefined; // an older helper without `rootfs`: mount(8) instead
};
