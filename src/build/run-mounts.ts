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

export const ociMounts = async (mounts: readonly Mount[], needs: MountNeeds): Promise<E.Either<string, OciMount[]>> => {
  const out: OciMount[] = [];
  for (const m of mounts) {
    const target = m.target !== undefined ? resolveIn(needs.workdir, m.target) : undefined;
    switch (m.type) {
      case 'cache': {
        if (!target) return E.left('a cache mount needs target=');
        const id = m.id ?? target;
        const dir = join(needs.p.cache, 'mounts', createHash('sha256').update(id).digest('hex'));
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
