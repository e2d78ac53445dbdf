// COPY and ADD: plan the entries (copy.ts) from the context or a --from source, key the step by
// the planned paths and their content digests, and write the layer straight from the source's
// bytes. ADD also fetches http(s) URLs (with --checksum) and unpacks local archives (add.ts).
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import type { HistoryEntry } from '../oci/config.js';
import type { StepEnv } from './builder.js';
import { cacheKey } from './cache.js';
import { stepFailure } from './config-effect.js';
import { planCopy, sourceFingerprint, type CopyPlan } from './copy.js';
import type { Add, Copy } from './dockerfile/ast.js';
import { stateId, withLayer, type BuildState } from './state.js';
import { resolveOwner, treeOf, type Owner } from './tree.js';

const parseChmod = (text: string): number | undefined => (/^[0-7]{3,4}$/.test(text) ? parseInt(text, 8) : undefined);

export const copyInstruction = async (env: StepEnv, state: BuildState, i: Copy | Add, label: string, entry: HistoryEntry): Promise<E.Either<Failure, BuildState>> => {
  const file = env.req.file;
  if (i.parents) return E.left(stepFailure(file, i, '--parents is not supported by tsd', 'Unsupported'));
  if (i.exclude.length > 0) return E.left(stepFailure(file, i, '--exclude is not supported by tsd', 'Unsupported'));
  if (i.keyword === 'ADD' && i.keepGitDir !== undefined) return E.left(stepFailure(file, i, '--keep-git-dir (git sources) is not supported by tsd', 'Unsupported'));
  const n = env.progress.start(label);
  const fail = (why: string): E.Either<Failure, BuildState> => {
    env.progress.error(n, why);
    return E.left(stepFailure(file, i, why));
  };
  let chmod: number | undefined;
  if (i.chmod !== undefined) {
    chmod = parseChmod(i.chmod);
    if (chmod === undefined) return fail(`--chmod=${i.chmod}: only octal modes are supported`);
  }
  const url = i.sources.find((s) => /^https?:\/\//.test(s));
  if (url && (i.keyword === 'COPY' || i.from !== undefined)) return fail(`source can't be a URL for ${i.keyword}${i.from !== undefined ? ' --from' : ''}: ${url}`);
  const inline = new Map(i.heredocs.map((h) => [h.name, h.content]));
  const workdir = state.config.WorkingDir ?? '/';
  const files = await env.filesOf(i.from);
  if (E.isLeft(files)) {
    env.progress.error(n, files.left.message);
    return E.left(stepFailure(file, i, files.left.message));
  }
  // the plan needs the image's tree; the key does not: a cached step never reads the tree
  const plan = async (): Promise<E.Either<Failure, { plan: CopyPlan; cleanup?: () => Promise<void> }>> => {
    const tree = await treeOf(env.p, state.layers.map((l) => l.descriptor));
    if (E.isLeft(tree)) return tree;
    let owner: Owner | undefined;
    if (i.chown !== undefined && i.chown !== '') {
      const o = resolveOwner(tree.right, i.chown);
      if (E.isLeft(o)) return E.left(stepFailure(file, i, o.left));
      owner = o.right;
    }
    const req = { sources: i.sources, dest: i.dest, workdir, ...(owner ? { owner } : {}), ...(chmod !== undefined ? { chmod } : {}), inline };
    if (i.keyword === 'ADD' && i.from === undefined) {
      const { addSources } = await import('./miss.js');
      const added = await addSources(env, tree.right, req, i.checksum);
      return E.isLeft(added) ? E.left(stepFailure(file, i, added.left)) : E.right(added.right);
    }
    const planned = planCopy(files.right, tree.right, req);
    return E.isLeft(planned) ? E.left(stepFailure(file, i, planned.left)) : E.right({ plan: planned.right });
  };
  const common = [stateId(state), i.keyword, i.from ?? '', i.dest, workdir, i.chown ?? '', chmod ?? '', i.link, [...inline]];
  let key: string;
  let made: { plan: CopyPlan; cleanup?: () => Promise<void> } | undefined;
  if (url === undefined) {
    const fp = sourceFingerprint(files.right, i.sources.filter((s) => !(s.startsWith('<<') && inline.has(s.replace(/^<<-?["']?/, '').replace(/["']$/, '')))));
    if (E.isLeft(fp)) return fail(fp.left);
    key = cacheKey([...common, fp.right]);
  } else {
    // a URL's bytes are known only once fetched (BuildKit fetches too)
    const planned = await plan();
    if (E.isLeft(planned)) {
      env.progress.error(n, planned.left.message);
      return planned;
    }
    made = planned.right;
    key = cacheKey([...common, made.plan.fingerprint]);
  }
  let cleanup = made?.cleanup;
  const layer = await env.fileStep(key, label, n, async () => {
    if (made) return E.right({ entries: made.plan.entries });
    const planned = await plan();
    if (E.isLeft(planned)) return planned;
    cleanup = planned.right.cleanup;
    return E.right({ entries: planned.right.plan.entries });
  });
  await cleanup?.();
  if (E.isLeft(layer)) {
    env.progress.error(n, layer.left.message);
    return layer;
  }
  return E.right(withLayer(state, layer.right, entry));
};
