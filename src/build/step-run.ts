// RUN: the argv (exec form, or the shell form through SHELL, with heredocs), the environment
// (ARGs in scope under the image's ENV), the user from the image's /etc/passwd, the mounts, then
// the container (run-step.ts) through the cache. The key holds the parent state, argv, the ARGs,
// the mounts and the network: a RUN reads no context file unless a bind mount says so, and then
// the bound files' digests are part of the key too.
import { join } from 'node:path';
import { promises as fs } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import type { HistoryEntry } from '../oci/config.js';
import type { StepEnv } from './builder.js';
import { cacheKey } from './cache.js';
import { shellOf, stepFailure } from './config-effect.js';
import type { BuildContext } from './context.js';
import { cleanPath } from './context.js';
import type { Run } from './dockerfile/ast.js';
import { mountKey, ociMounts } from './run-mounts.js';
import { stateId, withLayer, type BuildState } from './state.js';
import { resolveUser, treeOf } from './tree.js';
import { releaseLock } from '../store/lock.js';

/** The argv of a RUN; a heredoc-only RUN runs its body as the script. */
export const runArgv = (i: Run, shell: readonly string[]): readonly string[] => {
  if (i.command.form === 'exec') return i.command.args;
  const text = i.command.text;
  if (i.heredocs.length === 0) return [...shell, text];
  const only = i.heredocs.length === 1 && /^\s*<<-?["']?\w+["']?\s*$/.test(text) ? i.heredocs[0] : undefined;
  if (only) return [...shell, only.content];
  // the shell reads here-documents itself: give it the bodies after the command line
  return [...shell, `${text}\n${i.heredocs.map((h) => `${h.content}${h.name}`).join('\n')}\n`];
};

/** A digest of the files under `source` in a context (what a bind mount shows the RUN). */
const treeDigest = (ctx: BuildContext, source: string): string => {
  const root = cleanPath(source) ?? '';
  const parts: unknown[] = [];
  for (const [path, e] of ctx.entries) {
    if (root !== '' && path !== root && !path.startsWith(`${root}/`)) continue;
    parts.push([path, e.type, e.mode, e.sha256 ?? e.linkname ?? '']);
  }
  parts.sort((a, b) => String((a as string[])[0]).localeCompare(String((b as string[])[0])));
  return cacheKey(parts);
};

export const runInstruction = async (
  env: StepEnv,
  state: BuildState,
  i: Run,
  args: Readonly<Record<string, string>>,
  label: string,
  entry: HistoryEntry,
): Promise<E.Either<Failure, BuildState>> => {
  const file = env.req.file;
  if (i.security === 'insecure') return E.left(stepFailure(file, i, '--security=insecure is not supported by tsd', 'Unsupported'));
  const argv = runArgv(i, shellOf(state.config));
  const network = i.network === 'none' ? 'none' : 'host';
  const n = env.progress.start(label);
  const fail = (why: string): E.Either<Failure, BuildState> => {
    env.progress.error(n, why);
    return E.left(stepFailure(file, i, why));
  };
  const bindDigests: string[] = [];
  for (const m of i.mounts) {
    if (m.type !== 'bind') continue;
    const files = await env.filesOf(m.from);
    if (E.isLeft(files)) return fail(files.left.message);
    bindDigests.push(treeDigest(files.right, m.source ?? ''));
  }
  const key = cacheKey([stateId(state), 'RUN', argv, Object.entries(args).sort(), i.mounts.map(mountKey), network, bindDigests]);
  const layer = await env.fileStep(key, label, n, async () => {
    // a cached RUN never loads the container code
    const { mergeEnv, runStep } = await import('./miss.js');
    const runEnv = mergeEnv(Object.entries(args).map(([k, v]) => `${k}=${v}`), state.config.Env ?? []);
    const tree = await treeOf(env.p, state.layers.map((l) => l.descriptor));
    if (E.isLeft(tree)) return tree;
    const user = resolveUser(tree.right, state.config.User);
    if (E.isLeft(user)) return E.left(stepFailure(file, i, user.left));
    const scratch = join(env.scratch, `mounts-${process.pid}-${n}`);
    const mounts = await ociMounts(i.mounts, {
      p: env.p,
      workdir: state.config.WorkingDir ?? '/',
      secrets: env.req.secrets,
      filesOf: async (from) => E.mapLeft((f: Failure) => f.message)(await env.filesOf(from)),
      scratch,
    });
    if (E.isLeft(mounts)) return E.left(stepFailure(file, i, mounts.left));
    const out = env.progress.output(n);
    // the cache mounts' locks (sharing=locked or private) are held while the RUN runs
    const { locks } = mounts.right;
    const ran = await runStep(env.p, env.rootfs, {
      argv,
      config: state.config,
      env: runEnv,
      cwd: state.config.WorkingDir || '/',
      user: user.right,
      network,
      mounts: mounts.right.mounts,
      layers: state.layers,
      output: out,
      where: `${file}:${i.lines.start}`,
    });
    out.end();
    for (const l of locks) await releaseLock(l);
    if (E.isLeft(ran)) {
      await fs.rm(scratch, { recursive: true, force: true });
      return ran;
    }
    return E.right({
      entries: ran.right.entries,
      cleanup: async () => {
        await ran.right.cleanup();
        await fs.rm(scratch, { recursive: true, force: true });
      },
    });
  });
  if (E.isLeft(layer)) {
    env.progress.error(n, layer.left.message);
    return layer;
  }
  return E.right(withLayer(state, layer.right, entry));
};
