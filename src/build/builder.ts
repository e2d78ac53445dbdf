// Builder: the interpreter of a build plan. The front end (dockerfile/*) gives the stages the
// target needs and each step expanded; this folds every step over a BuildState, performing the
// few that change files (RUN, COPY, ADD, WORKDIR) through the cache (cache.ts). Stages are
// promises memoized by index, so independent stages build in parallel and each at most once.
// What only a cache miss needs (layer packing, the container, a pull) is imported when it is
// needed: a fully cached build loads none of it.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { ImageConfig } from '../oci/config.js';
import type { Descriptor } from '../oci/manifest.js';
import { resolveImage, type ResolvedImage } from '../store/image.js';
import { holdImage } from '../store/lease.js';
import { formatPlatform, hostPlatform } from '../oci/platform.js';
import type { StorePaths } from '../store/layout.js';
import { lookupStep, recordStep, type CachedLayer } from './cache.js';
import { applyConfig, createdBy, envRecord } from './config-effect.js';
import type { BuildContext } from './context.js';
import type { Instruction, StagePlan } from './dockerfile/ast.js';
import { parseDockerfile } from './dockerfile/parse.js';
import { copySource, expandStage, planStages } from './dockerfile/stages.js';
import type { BuildCompression, LayerEntry } from './layer-pack.js';
import type { Progress } from './progress.js';
import type { Rootfs } from './run-step.js';
import { imageConfigOf, startState, withLayer, type BuildState } from './state.js';
import { runInstruction } from './step-run.js';
import { copyInstruction } from './step-copy.js';
import { workdirInstruction } from './step-workdir.js';

export interface BuildRequest {
  /** the Dockerfile's text and the name its errors carry */
  readonly dockerfile: string;
  readonly file: string;
  readonly target?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly noCache: boolean;
  /** SOURCE_DATE_EPOCH: timestamps of the image and clamp for layer mtimes */
  readonly epoch?: number;
  readonly compression: BuildCompression;
  /** --secret id=…,src=… */
  readonly secrets: ReadonlyMap<string, string>;
  /** pull a base image missing from the store ('missing', Docker's default) or never */
  readonly pull?: 'missing' | 'never';
}

export interface BuildEnv {
  readonly p: StorePaths;
  readonly ctx: BuildContext;
  readonly rootfs: Rootfs;
  readonly progress: Progress;
  /** a scratch dir on the store's disk for spools and bind sources */
  readonly scratch: string;
}

/** What a step needs from the build around it. */
export interface StepEnv extends BuildEnv {
  readonly req: BuildRequest;
  readonly plan: StagePlan;
  readonly stageIndex: number;
  /** the result of another stage (for --from) */
  readonly stage: (index: number) => Promise<E.Either<Failure, BuildState>>;
  /** the files of a stage or image named by --from, as a context */
  readonly filesOf: (from: string | undefined) => Promise<E.Either<Failure, BuildContext>>;
  readonly where: (i: Instruction) => string;
  /** runs a file-changing step through the cache */
  readonly fileStep: (key: string, label: string, n: number, produce: () => Promise<E.Either<Failure, Produced>>) => Promise<E.Either<Failure, CachedLayer | undefined>>;
}

export interface Produced {
  readonly entries: readonly LayerEntry[];
  readonly cleanup?: () => Promise<void>;
}

export interface BuildResult {
  readonly config: ImageConfig;
  readonly layers: readonly Descriptor[];
}

const createdAt = (epoch?: number): string => new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString().replace(/\.000Z$/, 'Z');

/** ONBUILD triggers of a base image, parsed as instructions. */
const triggersOf = (config: ImageConfig | undefined, file: string, from: Instruction): E.Either<Failure, Instruction[]> => {
  const triggers = config?.config?.OnBuild ?? [];
  const out: Instruction[] = [];
  for (const t of triggers) {
    const parsed = parseDockerfile(`FROM scratch\n${t}\n`, { file });
    if (E.isLeft(parsed)) return parsed;
    const i = parsed.right.stages[0]?.instructions[0];
    if (!i) continue;
    if (i.keyword === 'FROM' || i.keyword === 'ONBUILD') return E.left(failure('InvalidOnbuild', `${file}: ONBUILD ${i.keyword} is not allowed`));
    // a trigger runs as part of the FROM line that pulled it in: errors name that line
    out.push({ ...i, lines: from.lines });
  }
  return E.right(out);
};

/** An image to build on, its blobs leased so a concurrent rm + gc cannot take them mid-build. */
const held = async (img: ResolvedImage, p: StorePaths): Promise<E.Either<Failure, ResolvedImage>> => {
  let whole: boolean;
  try {
    whole = await holdImage(p, img);
  } catch (e) {
    return E.left(fromError(`lease image ${img.ref ?? img.configDigest}`)(e)); // the lease file cannot grow: disk full
  }
  return whole ? E.right(img) : E.left(failure('ImageRemoved', `image ${img.ref ?? img.configDigest}: removed from the store (gc) as the build started`, ExitCode.notFound));
};

export const build = async (env: BuildEnv, req: BuildRequest): Promise<E.Either<Failure, BuildResult>> => {
  const parsed = parseDockerfile(req.dockerfile, { file: req.file });
  if (E.isLeft(parsed)) return parsed;
  const planned = planStages(parsed.right, { buildArgs: req.buildArgs, ...(req.target !== undefined ? { target: req.target } : {}) });
  if (E.isLeft(planned)) return planned;
  const plan = planned.right;
  const created = createdAt(req.epoch);
  const memo = new Map<number, Promise<E.Either<Failure, BuildState>>>();
  const files = new Map<string, Promise<E.Either<Failure, BuildContext>>>();

  const stage = (index: number): Promise<E.Either<Failure, BuildState>> => {
    let m = memo.get(index);
    if (!m) memo.set(index, (m = buildStage(index)));
    return m;
  };

  const fileStep: StepEnv['fileStep'] = async (key, label, n, produce) => {
    if (!req.noCache) {
      const hit = await lookupStep(env.p, key);
      if (hit) {
        env.progress.cached(n);
        return E.right(hit.layer);
      }
    }
    const made = await produce();
    if (E.isLeft(made)) return made;
    try {
      let layer: CachedLayer | undefined;
      if (made.right.entries.length > 0) {
        const { writeEntries } = await import('./miss.js');
        const written = await writeEntries(env.p, made.right.entries, req.compression, req.epoch)();
        if (E.isLeft(written)) return written;
        layer = { descriptor: written.right.descriptor, diffId: written.right.diffId };
      }
      await recordStep(env.p, key, label, layer);
      env.progress.done(n);
      return E.right(layer);
    } finally {
      await made.right.cleanup?.();
    }
  };

  const buildStage = async (index: number): Promise<E.Either<Failure, BuildState>> => {
    const ps = plan.stages[index];
    if (!ps) return E.left(failure('StageNotFound', `${req.file}: no stage ${index}`));
    const host = formatPlatform(hostPlatform());
    if (ps.platform !== host && ps.platform !== `${host}/v8`) {
      return E.left(failure('Unsupported', `${req.file}:${ps.stage.from.lines.start}: FROM: platform ${ps.platform}: tsd builds for the host platform (${host}) only`));
    }
    let start: BuildState;
    let baseConfig: ImageConfig | undefined;
    const fromLabel = `[stage-${index}] FROM ${ps.baseName}`;
    if (ps.base.kind === 'scratch') start = startState(undefined);
    else if (ps.base.kind === 'stage') {
      const s = await stage(ps.base.index);
      if (E.isLeft(s)) return s;
      const { OnBuild: _triggers, ...config } = s.right.config;
      start = { ...s.right, config, cmdSet: false };
      baseConfig = { architecture: s.right.architecture, os: s.right.os, config: s.right.config, rootfs: { type: 'layers', diff_ids: [] } };
    } else {
      const n = env.progress.start(fromLabel);
      let img = await resolveImage(env.p, ps.base.ref)();
      if (E.isLeft(img) && img.left._tag === 'ImageNotFound' && req.pull !== 'never') {
        // Docker pulls a base it does not have; the pull library writes it into the store
        const { pull } = await import('./miss.js');
        const pulled = await pull(env.p, ps.base.ref)();
        if (E.isLeft(pulled)) {
          const why = `image ${ps.base.ref}: not in the store, and pulling it failed: ${pulled.left.message}`;
          env.progress.error(n, why);
          return E.left(failure('ImageNotFound', `${req.file}:${ps.stage.from.lines.start}: FROM ${ps.baseName}: ${why}`, ExitCode.notFound));
        }
        img = await resolveImage(env.p, ps.base.ref)();
      }
      if (E.isRight(img)) img = await held(img.right, env.p);
      if (E.isLeft(img)) {
        const why = img.left._tag === 'ImageNotFound' ? `image ${ps.base.ref}: not in the store (--pull=never)` : img.left.message;
        env.progress.error(n, why);
        return E.left(failure(img.left._tag, `${req.file}:${ps.stage.from.lines.start}: FROM ${ps.baseName}: ${why}`, img.left.exitCode));
      }
      baseConfig = img.right.config;
      const diffIds = img.right.config.rootfs.diff_ids;
      const layers = img.right.manifest.layers;
      if (diffIds.length !== layers.length) return E.left(failure('InvalidImage', `${req.file}:${ps.stage.from.lines.start}: image ${ps.base.ref} has ${layers.length} layers but ${diffIds.length} diff IDs`, ExitCode.tool));
      start = startState({ layers: layers.map((descriptor, k) => ({ descriptor, diffId: diffIds[k]! })), config: img.right.config });
      env.progress.done(n);
    }
    const triggers = triggersOf(baseConfig, req.file, ps.stage.from);
    if (E.isLeft(triggers)) return triggers;
    const stagePlan: StagePlan =
      triggers.right.length === 0
        ? plan
        : { ...plan, stages: plan.stages.map((s) => (s.index === index ? { ...s, stage: { ...s.stage, instructions: [...triggers.right, ...s.stage.instructions] } } : s)) };
    const steps = expandStage(stagePlan, index, envRecord(start.config.Env));
    if (E.isLeft(steps)) return steps;
    const stepEnv: StepEnv = {
      ...env,
      req,
      plan,
      stageIndex: index,
      stage,
      filesOf: (from) => filesFor(index, from),
      where: (i) => `${req.file}:${i.lines.start}`,
      fileStep,
    };
    let state = start;
    const total = steps.right.length;
    let k = 0;
    for (const step of steps.right) {
      k++;
      const i = step.instruction;
      const label = `[${ps.name ?? `stage-${index}`} ${k}/${total}] ${i.original.trim().slice(0, 200)}`;
      const entry = { created, created_by: createdBy(i, state.config) };
      let next: E.Either<Failure, BuildState>;
      switch (i.keyword) {
        case 'ARG':
          // BuildKit records ARG in history (an empty layer) and nowhere else in the config
          next = E.right(withLayer(state, undefined, { created, created_by: `ARG ${i.args.map((a) => (a.default !== undefined ? `${a.name}=${a.default}` : a.name)).join(' ')}` }));
          break;
        case 'RUN':
          next = await runInstruction(stepEnv, state, i, step.args, label, entry);
          break;
        case 'COPY':
        case 'ADD':
          next = await copyInstruction(stepEnv, state, i, label, entry);
          break;
        case 'WORKDIR':
          next = await workdirInstruction(stepEnv, state, i, label, entry);
          break;
        default: {
          const applied = applyConfig({ config: state.config, cmdSet: state.cmdSet, ...(state.author !== undefined ? { author: state.author } : {}) }, i, req.file);
          if (E.isLeft(applied)) return applied;
          next = E.right(withLayer({ ...state, config: applied.right.config, cmdSet: applied.right.cmdSet, ...(applied.right.author !== undefined ? { author: applied.right.author } : {}) }, undefined, entry));
        }
      }
      if (E.isLeft(next)) return next;
      state = next.right;
    }
    return E.right(state);
  };

  /** The files `--from=X` names in stage `current`: the context, an earlier stage, or an image. */
  const filesFor = (current: number, from: string | undefined): Promise<E.Either<Failure, BuildContext>> => {
    if (from === undefined) return Promise.resolve(E.right(env.ctx));
    const src = copySource(plan.dockerfile, current, from);
    if (E.isLeft(src)) return Promise.resolve(E.left(failure('InvalidFrom', `${req.file}: --from=${from}: ${src.left}`)));
    const key = src.right.kind === 'stage' ? `stage:${src.right.index}` : `image:${src.right.ref}`;
    let f = files.get(key);
    if (!f) {
      const source = src.right;
      f = (async (): Promise<E.Either<Failure, BuildContext>> => {
        let layers: readonly Descriptor[];
        if (source.kind === 'stage') {
          const s = await stage(source.index);
          if (E.isLeft(s)) return s;
          layers = s.right.layers.map((l) => l.descriptor);
        } else {
          const found = await resolveImage(env.p, source.ref)();
          const img = E.isRight(found) ? await held(found.right, env.p) : found;
          if (E.isLeft(img)) return E.left(failure(img.left._tag, `--from=${from}: ${img.left.message}`, img.left.exitCode));
          layers = img.right.manifest.layers;
        }
        const { imageFiles } = await import('./miss.js');
        return imageFiles(env.p, layers, env.scratch);
      })();
      files.set(key, f);
    }
    return f;
  };

  // every needed stage starts now: the ones that do not wait on each other run in parallel
  const all = plan.needed.map((n) => stage(n));
  const results = await Promise.all(all);
  const bad = results.find(E.isLeft);
  if (bad) return bad;
  const target = await stage(plan.target);
  if (E.isLeft(target)) return target;
  const config = imageConfigOf(target.right, created);
  return E.right({ config, layers: target.right.layers.map((l) => l.descriptor) });
};
