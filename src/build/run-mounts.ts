// RunMounts: `RUN --mount=…` turned into OCI mounts. type=cache is a directory kept in the store
// under cache/mounts (by id, default the target), created with the given uid/gid/mode; type=tmpfs
// is a fresh tmpfs; type=secret binds a file given with `--secret id=…,src=…` read-only (default
// /run/secrets/ID) and never lands in a layer (diff.ts leaves mount points out); type=bind binds a
// directory materialized from the context or a stage's files. What tsd cannot do is an error.
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import type { OciMount } from '../run/spec.js';
import type { StorePaths } from '../store/layout.js';
import { acquireLock, releaseLock, type Lock } from '../store/lock.js';
import type { BuildContext } from './context.js';
import { cleanPath } from './context.js';
import type { Mount } from './dockerfile/ast.js';
import { resolveIn } from './config-effect.js';

export interface MountNeeds {
  readonly p: StorePaths;
  readonly workdir: string;
  readonly secrets: ReadonlyMap<string, string>;
  /** the files a bind mount reads: the context, or a stage by `from` */
  readonly filesOf: (from: string | undefined) => Promise<E.Either<string, BuildContext>>;
  /** a scratch dir for materialized bind sources (removed after the step) */
  readonly scratch: string;
}

/** What a mount adds to the step's cache key (never a secret's bytes). */
export const mountKey = (m: Mount): unknown => ({ type: m.type, ...m.options });

const materialize = async (ctx: BuildContext, source: string, dir: string): Promise<E.Either<string, string>> => {
  const root = cleanPath(source);
  if (root === undefined) return E.left(`bind source ${JSON.stringify(source)} leaves the context`);
  const top = ctx.entries.get(root);
  if (!top) return E.left(`bind source "/${root}": not found`);
  const out = join(dir, createHash('sha256').update(`${root}${Math.random()}`).digest('hex').slice(0, 12));
  const place = async (path: string, target: string): Promise<void> => {
    const e = ctx.entries.get(path)!;
    if (e.type === 'directory') {
      await fs.mkdir(target, { recursive: true, mode: e.mode });
      for (const child of ctx.children.get(path) ?? []) await place(child, join(target, child.slice(path === '' ? 0 : path.length + 1)));
    } else if (e.type === 'symlink') await fs.symlink(e.linkname ?? '', target);
    else {
      await pipeline(ctx.open(e), createWriteStream(target, { mode: e.mode }));
      await fs.chmod(target, e.mode);
    }
  };
  await fs.mkdir(dir, { recursive: true });
  await place(root, out);
  return E.right(out);
};

/** Instances a cache id may have (sharing=private makes a new one while the others are in use). */
const MAX_INSTANCES = 32;

/**
 * The directory a cache mount uses, and the lock that keeps it while the RUN runs.
 * - shared (the default): instance 0, no lock: concurrent RUNs write the same directory.
 * - locked: instance 0, waiting for its lock (up to 30 minutes): one RUN at a time, across builds.
 * - private: the first instance whose lock is free (0, 1, 2, …; a new one starts empty), so a
 *   RUN never shares its cache with another private or locked RUN. Instances persist, so the
 *   next build finds them warm.
 */
export const cacheInstance = async (p: StorePaths, id: string, sharing: string): Promise<E.Either<string, { dir: string; lock?: Lock }>> => {
  const base = createHash('sha256').update(id).digest('hex');
  const dir = (k: number) => join(p.cache, 'mounts', k === 0 ? base : `${base}-${k}`);
  const lockPath = (k: number) => p.lock(`cache-mount-${base.slice(0, 32)}${k === 0 ? '' : `-${k}`}`);
  if (sharing === 'shared') return E.right({ dir: dir(0) });
  if (sharing === 'locked') return E.right({ dir: dir(0), lock: await acquireLock(lockPath(0), 30 * 60_000) });
  if (sharing !== 'private') return E.left(`cache mount sharing=${sharing}: expected shared, private or locked`);
  for (let k = 0; k < MAX_INSTANCES; k++) {
    try {
      return E.right({ dir: dir(k), lock: await acquireLock(lockPath(k), 0) });
    } catch (e) {
      if ((e as { _tag?: string })._tag !== 'LockTimeout') throw e;
    }
  }
  return E.left(`cache mount ${JSON.stringify(id)}: all ${MAX_INSTANCES} private instances are in use`);
};

/** The OCI mounts of a RUN's --mount flags, and the cache locks to release once it has run. */
export const ociMounts = async (mounts: readonly Mount[], needs: MountNeeds): Promise<E.Either<string, { mounts: OciMount[]; locks: Lock[] }>> => {
  const locks: Lock[] = [];
  const made = await mountsOf(mounts, needs, locks).catch(async (e: unknown) => {
    for (const l of locks) await releaseLock(l);
    throw e;
  });
  if (E.isLeft(made)) for (const l of locks) await releaseLock(l);
  return E.isLeft(made) ? made : E.right({ mounts: made.right, locks });
};

const mountsOf = async (mounts: readonly Mount[], needs: MountNeeds, locks: Lock[]): Promise<E.Either<string, OciMount[]>> => {
  const out: OciMount[] = [];
  for (const m of mounts) {
    const target = m.target !== undefined ? resolveIn(needs.workdir, m.target) : undefined;
    switch (m.type) {
      case 'cache': {
        if (!target) return E.left('a cache mount needs target=');
        const got = await cacheInstance(needs.p, m.id ?? target, m.sharing ?? 'shared');
        if (E.isLeft(got)) return got;
        const { dir, lock } = got.right;
        if (lock) locks.push(lock);
        const created = await fs.mkdir(dir, { recursive: true }).then((made) => made !== undefined);
        if (created) {
          await fs.chmod(dir, m.mode !== undefined ? parseInt(m.mode, 8) : 0o755);
          await fs.chown(dir, Number(m.uid ?? 0), Number(m.gid ?? 0));
        }
        out.push({ destination: target, type: 'bind', source: dir, options: ['rbind', 'rw'] });
        break;
      }
      case 'tmpfs': {
        if (!target) return E.left('a tmpfs mount needs target=');
        out.push({ destination: target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size !== undefined ? [`size=${m.size}`] : [])] });
        break;
      }
      case 'secret': {
        const id = m.id ?? (m.target ?? '').split('/').pop() ?? '';
        const src = needs.secrets.get(id);
        if (src === undefined) {
          if (m.required) return E.left(`secret ${id}: not given (use --secret id=${id},src=FILE)`);
          break;
        }
        if (m.env !== undefined) return E.left('secret env= is not supported by tsd yet');
        out.push({ destination: target ?? `/run/secrets/${id}`, type: 'bind', source: src, options: ['rbind', 'ro'] });
        break;
      }
      case 'bind': {
        const files = await needs.filesOf(m.from);
        if (E.isLeft(files)) return files;
        const dir = await materialize(files.right, m.source ?? '', needs.scratch);
        if (E.isLeft(dir)) return dir;
        const dest = target ?? '/';
        const rw = m.readonly === false;
        out.push({ destination: dest, type: 'bind', source: dir.right, options: ['rbind', rw ? 'rw' : 'ro'] });
        break;
      }
      default:
        return E.left(`--mount=type=${m.type} is not supported by tsd`);
    }
  }
  return E.right(out);
};
