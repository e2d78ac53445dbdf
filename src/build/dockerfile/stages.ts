// Stages: ARG scoping, FROM resolution and the stage graph. `planStages` is pure: global ARGs
// (with --build-arg and the automatic platform ARGs) substitute into FROM lines, each stage's base
// becomes an image, an earlier stage or scratch, COPY --from and RUN --mount from= add edges, and
// --target picks the stage whose dependencies are built. `expandStage` walks one stage's steps
// with the variables each step sees (base ENV, ARGs declared in the stage, ENV over ARG).
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../../oci/platform.js';
import type { CopySource, Dockerfile, ExpandedStep, Instruction, PlannedStage, StageBase, StagePlan } from './ast.js';
import { dockerfileError } from './error.js';
import { expandInstruction } from './expand.js';

/** Build args every Dockerfile may use without declaring them (passed to RUN only). */
export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'] as const;

export interface PlanOptions {
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string;
  /** the target platform, "os/arch[/variant]" (default: the host's) */
  readonly platform?: string;
  /** the platform the build runs on (default: the host's) */
  readonly buildPlatform?: string;
}

/** TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD* four. */
export const platformArgs = (target: string, build: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [prefix, p] of [['TARGET', target], ['BUILD', build]] as const) {
    const parsed = parsePlatform(p);
    const pl = E.isRight(parsed) ? parsed.right : { os: '', architecture: '' };
    out[`${prefix}PLATFORM`] = p;
    out[`${prefix}OS`] = pl.os;
    out[`${prefix}ARCH`] = pl.architecture;
    out[`${prefix}VARIANT`] = pl.variant ?? '';
  }
  return out;
};

const toMap = (o: Readonly<Record<string, string>>): Map<string, string> => new Map(Object.entries(o));

/** The stages an instruction reads besides its base: COPY/ADD --from, RUN --mount from=. */
const readsFrom = (i: Instruction): string[] => {
  if (i.keyword === 'COPY' && i.from !== undefined) return [i.from];
  if (i.keyword === 'RUN') return i.mounts.flatMap((m) => (m.from !== undefined ? [m.from] : []));
  return [];
};

export const planStages = (df: Dockerfile, opts: PlanOptions = {}): E.Either<Failure, StagePlan> => {
  const host = formatPlatform(hostPlatform());
  const targetPlatform = opts.platform ?? host;
  const buildPlatform = opts.buildPlatform ?? host;
  for (const p of [targetPlatform, buildPlatform]) {
    const r = parsePlatform(p);
    if (E.isLeft(r)) return r;
  }
  const buildArgs = opts.buildArgs ?? {};
  const ctx = { file: df.file, escape: df.escape };

  // the global scope: automatic platform ARGs, then each global ARG in order
  const builtins = platformArgs(targetPlatform, buildPlatform);
  const globalVars = toMap(builtins);
  const declared = new Set<string>();
  for (const a of df.globalArgs) {
    const ex = expandInstruction(a, globalVars, ctx);
    if (E.isLeft(ex)) return ex;
    if (ex.right.keyword !== 'ARG') continue;
    for (const d of ex.right.args) {
      declared.add(d.name);
      const v = buildArgs[d.name] ?? d.default;
      if (v !== undefined) globalVars.set(d.name, v);
    }
  }
  const globalScope = Object.fromEntries(globalVars);

  const byName = new Map<string, number>();
  df.stages.forEach((s) => s.name !== undefined && byName.set(s.name, s.index));
  const planned: PlannedStage[] = [];
  for (const s of df.stages) {
    const from = expandInstruction(s.from, globalVars, ctx);
    if (E.isLeft(from)) return from;
    if (from.right.keyword !== 'FROM') continue;
    const baseName = from.right.image;
    if (baseName === '') return E.left(dockerfileError('DockerfileSyntax', df.file, s.from.lines.start, `base name (${s.from.image}) should not be blank`));
    const earlier = byName.get(baseName.toLowerCase());
    const base: StageBase =
      earlier !== undefined && earlier < s.index ? { kind: 'stage', index: earlier } : baseName.toLowerCase() === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: baseName };
    const platform = from.right.platform ?? targetPlatform;
    if (from.right.platform !== undefined) {
      const p = parsePlatform(platform);
      if (E.isLeft(p)) return E.left(dockerfileError('DockerfileSyntax', df.file, s.from.lines.start, `FROM --platform: ${p.left.message}`));
    }
    planned.push({ index: s.index, ...(s.name !== undefined ? { name: s.name } : {}), baseName, base, platform, dependsOn: [], stage: s });
  }

  // edges: expand each stage once (base ENV unknown here: taken as empty) to read --from values
  const withDeps: PlannedStage[] = [];
  for (const p of planned) {
    const deps = new Set<number>();
    if (p.base.kind === 'stage') deps.add(p.base.index);
    const steps = expandSteps(df, p, globalScope, buildArgs, {});
    if (E.isLeft(steps)) return steps;
    for (const step of steps.right) {
      for (const ref of readsFrom(step.instruction)) {
        const src = copySource(df, p.index, ref, byName);
        if (E.isLeft(src)) return E.left(dockerfileError('DockerfileSyntax', df.file, step.instruction.lines.start, src.left));
        if (src.right.kind === 'stage') deps.add(src.right.index);
      }
    }
    withDeps.push({ ...p, dependsOn: [...deps].sort((a, b) => a - b) });
  }

  let target = withDeps.length - 1;
  if (opts.target !== undefined) {
    const t = byName.get(opts.target.toLowerCase());
    if (t === undefined) return E.left(dockerfileError('TargetNotFound', df.file, 0, `target stage ${JSON.stringify(opts.target)} could not be found`));
    target = t;
  }
  // dependencies first (post-order), refusing cycles
  const needed: number[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number): string | undefined => {
    if (state.get(i) === 'done') return undefined;
    if (state.get(i) === 'visiting') return `circular dependency detected on stage: ${withDeps[i]!.name ?? i}`;
    state.set(i, 'visiting');
    for (const d of withDeps[i]!.dependsOn) {
      const e = visit(d);
      if (e) return e;
    }
    state.set(i, 'done');
    needed.push(i);
    return undefined;
  };
  const cycle = visit(target);
  if (cycle) return E.left(dockerfileError('DockerfileSyntax', df.file, withDeps[target]!.stage.from.lines.start, cycle));

  const used = new Set<string>([...declared, ...Object.keys(builtins), ...PROXY_ARGS]);
  for (const i of needed) for (const ins of withDeps[i]!.stage.instructions) if (ins.keyword === 'ARG') ins.args.forEach((a) => used.add(a.name));
  const unusedBuildArgs = Object.keys(buildArgs).filter((k) => !used.has(k)).sort();

  return E.right({ dockerfile: df, stages: withDeps, target, needed, globalScope, buildArgs, targetPlatform, buildPlatform, unusedBuildArgs });
};

/** What `--from=x` names in stage `current`: a stage by index or name, else an image. */
export const copySource = (df: Dockerfile, current: number, ref: string, byName?: ReadonlyMap<string, number>): E.Either<string, CopySource> => {
  if (/^\d+$/.test(ref)) {
    const n = Number(ref);
    if (n >= current) return E.left(`invalid from flag value ${ref}: refers to current or later build stage`);
    return E.right({ kind: 'stage', index: n });
  }
  const names = byName ?? new Map(df.stages.flatMap((s) => (s.name !== undefined ? [[s.name, s.index] as const] : [])));
  const i = names.get(ref.toLowerCase());
  if (i === undefined) return E.right({ kind: 'image', ref });
  if (i === current) return E.left(`circular dependency detected on stage: ${ref}`);
  return E.right({ kind: 'stage', index: i });
};

const expandSteps = (
  df: Dockerfile,
  p: PlannedStage,
  globalScope: Readonly<Record<string, string>>,
  buildArgs: Readonly<Record<string, string>>,
  baseEnv: Readonly<Record<string, string>>,
): E.Either<Failure, ExpandedStep[]> => {
  const ctx = { file: df.file, escape: df.escape };
  const env = new Map(Object.entries(baseEnv));
  const args = new Map<string, string>();
  for (const k of PROXY_ARGS) if (buildArgs[k] !== undefined) args.set(k, buildArgs[k]!);
  const declared = new Set<string>();
  const steps: ExpandedStep[] = [];
  for (const ins of p.stage.instructions) {
    // a proxy ARG given only with --build-arg reaches RUN but is not substituted elsewhere
    const visible = new Map([...args].filter(([k]) => declared.has(k)));
    const vars = new Map([...visible, ...env]);
    const ex = expandInstruction(ins, vars, ctx);
    if (E.isLeft(ex)) return ex;
    const i = ex.right;
    if (i.keyword === 'ARG') {
      for (const d of i.args) {
        declared.add(d.name);
        const v = buildArgs[d.name] ?? d.default ?? globalScope[d.name];
        if (v !== undefined) args.set(d.name, v);
      }
    } else if (i.keyword === 'ENV') for (const kv of i.pairs) env.set(kv.key, kv.value);
    steps.push({ instruction: i, env: Object.fromEntries(env), args: Object.fromEntries(args) });
  }
  return E.right(steps);
};

/**
 * The steps of stage `index` after substitution. `baseEnv` is the ENV of the base image (or of
 * the parent stage's last step): it takes part in substitution as the reference says.
 */
export const expandStage = (plan: StagePlan, index: number, baseEnv: Readonly<Record<string, string>> = {}): E.Either<Failure, ExpandedStep[]> => {
  const p = plan.stages[index];
  if (!p) return E.left(dockerfileError('TargetNotFound', plan.dockerfile.file, 0, `no stage ${index}`));
  return expandSteps(plan.dockerfile, p, plan.globalScope, plan.buildArgs, baseEnv);
};
