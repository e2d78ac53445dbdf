// WORKDIR: sets the config's working directory and creates it (with its missing parents, owned
// by the current USER as BuildKit does, mode 0755) when the image does not have it, as one small layer.
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../failure.js';
import type { HistoryEntry } from '../oci/config.js';
import type { StepEnv } from './builder.js';
import { cacheKey } from './cache.js';
import { applyConfig, stepFailure } from './config-effect.js';
import { parentOf } from './context.js';
import type { Workdir } from './dockerfile/ast.js';
import type { LayerEntry } from './layer-pack.js';
import { stateId, withLayer, type BuildState } from './state.js';
import { resolveInTree, resolveUser, treeOf } from './tree.js';

export const workdirInstruction = async (env: StepEnv, state: BuildState, i: Workdir, label: string, entry: HistoryEntry): Promise<E.Either<Failure, BuildState>> => {
  const applied = applyConfig({ config: state.config, cmdSet: state.cmdSet }, i, env.req.file);
  if (E.isLeft(applied)) return applied;
  const next: BuildState = { ...state, config: applied.right.config };
  const dir = (applied.right.config.WorkingDir ?? '/').replace(/^\/+/, '');
  if (dir === '') return E.right(withLayer(next, undefined, entry));
  const n = env.progress.start(label);
  const epoch = env.req.epoch ?? Math.floor(Date.now() / 1000);
  // the key needs no tree: the state fixes what exists and who the USER is
  const key = cacheKey([stateId(state), 'WORKDIR', dir, state.config.User ?? '']);
  const layer = await env.fileStep(key, label, n, async () => {
    const tree = await treeOf(env.p, state.layers.map((l) => l.descriptor));
    if (E.isLeft(tree)) return tree;
    const missing: string[] = [];
    for (let p = dir; p !== ''; p = parentOf(p)) {
      const node = tree.right.get(resolveInTree(tree.right, p));
      if (node?.type === 'directory') break;
      missing.unshift(p);
    }
    // BuildKit makes the directories as the current USER
    const user = resolveUser(tree.right, state.config.User);
    if (E.isLeft(user)) return E.left(stepFailure(env.req.file, i, user.left));
    const { uid, gid } = user.right;
    const entries: LayerEntry[] = missing.map((path) => {
      const parent = resolveInTree(tree.right, parentOf(path));
      return { path: parent ? `${parent}/${path.slice(path.lastIndexOf('/') + 1)}` : path, type: 'directory', mode: 0o755, uid, gid, mtime: epoch };
    });
    return E.right({ entries });
  });
  if (E.isLeft(layer)) {
    env.progress.error(n, layer.left.message);
    return layer;
  }
  return E.right(withLayer(next, layer.right, entry));
};
