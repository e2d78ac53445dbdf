// Overlay: a container's root filesystem as an overlayfs mount of snapshots plus its own upper
// dir. Planning the mount is pure (and printable); mounting runs mount(8). The kernel takes the
// mount data as one page, so when the lowerdirs do not fit (or a path holds the ',' or ':' that
// overlay's option syntax reserves), the plan names each lowerdir by a one-character-or-so
// symlink in a temp dir and runs mount from that dir with relative names, as containerd does.
// The kernel resolves the names once, at mount time, so the temp dir is removed right after.
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { execa } from 'execa';
import { ExitCode, failure, type Failure } from '../failure.js';

export interface OverlaySpec {
  /** snapshot dirs, LOWEST layer first (the order ensureSnapshots returns) */
  readonly lowerdirs: readonly string[];
  /** the container's writable layer; without it the mount is read-only */
  readonly upperdir?: string;
  /** an empty dir on the same file system as upperdir */
  readonly workdir?: string;
  readonly target: string;
}

export interface MountPlan {
  /** argv of mount(8) */
  readonly args: readonly string[];
  /** short names to create as symlinks in a temp dir, and run mount from there */
  readonly links: readonly { readonly name: string; readonly target: string }[];
}

/** The kernel copies at most one page of mount data, terminating NUL included. */
export const MOUNT_DATA_LIMIT = 4095;

const RESERVED = /[,:\\]/;

export const planOverlayMount = (spec: OverlaySpec, limit = MOUNT_DATA_LIMIT): E.Either<Failure, MountPlan> => {
  const bad = (why: string) => E.left(failure('InvalidMount', `mount overlay on ${spec.target}: ${why}`, ExitCode.tool));
  if (spec.lowerdirs.length === 0) return bad('no lowerdirs (use the empty snapshot for an image without layers)');
  if ((spec.upperdir === undefined) !== (spec.workdir === undefined)) return bad('upperdir and workdir go together');
  if (spec.upperdir === undefined && spec.lowerdirs.length === 1) {
    // overlay needs two lowers without an upper: the single layer is its own read-only view
    return E.right({ args: ['--bind', '-o', 'ro', spec.lowerdirs[0] as string, spec.target], links: [] });
  }
  const topFirst = [...spec.lowerdirs].reverse();
  const upper = spec.upperdir !== undefined && spec.workdir !== undefined ? [spec.upperdir, spec.workdir] : undefined;
  const data = (lowers: readonly string[], uw: readonly string[] | undefined) =>
    `lowerdir=${lowers.join(':')}` + (uw ? `,upperdir=${uw[0]},workdir=${uw[1]}` : '');
  const direct = data(topFirst, upper);
  const all = [...topFirst, ...(upper ?? [])];
  if (direct.length <= limit && !all.some((d) => RESERVED.test(d))) {
    return E.right({ args: ['-t', 'overlay', 'overlay', '-o', direct, spec.target], links: [] });
  }
  const links = topFirst.map((target, i) => ({ name: i.toString(36), target }));
  const uw = upper?.map((d, i) => (RESERVED.test(d) ? `${['u', 'w'][i]}` : d));
  const upperLinks = upper ? upper.flatMap((d, i) => (RESERVED.test(d) ? [{ name: ['u', 'w'][i] as string, target: d }] : [])) : [];
  const compact = data(links.map((l) => l.name), uw);
  if (compact.length > limit) return bad(`${spec.lowerdirs.length} lowerdirs do not fit in one page of mount data even by short names`);
  return E.right({ args: ['-t', 'overlay', 'overlay', '-o', compact, spec.target], links: [...links, ...upperLinks] });
};

const mountFailure = (what: string) => (e: unknown): Failure => {
  const err = e as { stderr?: string; message?: string };
  const text = (err.stderr || err.message || String(e)).trim().split('\n')[0];
  return failure('MountFailed', `${what}: ${text}`, ExitCode.tool);
};

/** Mounts the overlay (root only). */
export const mountOverlay = (spec: OverlaySpec): TE.TaskEither<Failure, void> => async () => {
  const plan = planOverlayMount(spec);
  if (E.isLeft(plan)) return plan;
  const { args, links } = plan.right;
  let cwd: string | undefined;
  try {
    if (links.length > 0) {
      cwd = await mkdtemp(join(tmpdir(), 'tsd-overlay-'));
      for (const l of links) await symlink(l.target, join(cwd, l.name));
    }
    await execa('mount', [...args], { ...(cwd ? { cwd } : {}) });
    return E.right(undefined);
  } catch (e) {
    return E.left(mountFailure(`mount overlay on ${spec.target}`)(e));
  } finally {
    if (cwd) await rm(cwd, { recursive: true, force: true }).catch(() => undefined);
  }
};

/** Unmounts `target`; `lazy` detaches it even while busy (umount -l). */
export const unmount = (target: string, options: { readonly lazy?: boolean } = {}): TE.TaskEither<Failure, void> =>
  TE.tryCatch(async () => {
    await execa('umount', [...(options.lazy ? ['-l'] : []), target]);
  }, mountFailure(`unmount ${target}`));
