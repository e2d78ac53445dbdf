// printableDockerfile: the parsed and expanded Dockerfile as one JSON value, the documented
// format of `tsd-build --print` (docs/dockerfile.md, "The --print JSON"). Version 1; fields are
// only ever added.
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import type { Directive, Dockerfile, Instruction, StageBase, Warning } from './ast.js';
import { expandStage, planStages, type PlanOptions } from './stages.js';

export interface PrintedStage {
  readonly index: number;
  readonly name?: string;
  /** the FROM image as written and after substitution of global ARGs */
  readonly from: string;
  readonly base: StageBase;
  readonly platform: string;
  readonly dependsOn: readonly number[];
  readonly needed: boolean;
  readonly lines: { readonly start: number; readonly end: number };
  readonly instructions: readonly Instruction[];
}

export interface PrintedDockerfile {
  readonly v: 1;
  readonly type: 'dockerfile';
  readonly file: string;
  readonly escape: string;
  readonly directives: readonly Directive[];
  readonly args: Readonly<Record<string, string>>;
  readonly target: number;
  readonly needed: readonly number[];
  readonly platform: string;
  readonly buildPlatform: string;
  readonly unusedBuildArgs: readonly string[];
  readonly stages: readonly PrintedStage[];
  readonly warnings: readonly Warning[];
}

export interface PrintOptions extends PlanOptions {
  /** false: print instructions as written (no substitution); default true */
  readonly expand?: boolean;
}

export const printableDockerfile = (df: Dockerfile, opts: PrintOptions = {}): E.Either<Failure, PrintedDockerfile> => {
  const plan = planStages(df, opts);
  if (E.isLeft(plan)) return plan;
  const p = plan.right;
  const stages: PrintedStage[] = [];
  for (const s of p.stages) {
    let instructions: readonly Instruction[] = s.stage.instructions;
    if (opts.expand !== false) {
      const steps = expandStage(p, s.index);
      if (E.isLeft(steps)) return steps;
      instructions = steps.right.map((x) => x.instruction);
    }
    const last = instructions[instructions.length - 1] ?? s.stage.from;
    stages.push({
      index: s.index,
      ...(s.name !== undefined ? { name: s.name } : {}),
      from: opts.expand === false ? s.stage.from.image : s.baseName,
      base: s.base,
      platform: s.platform,
      dependsOn: s.dependsOn,
      needed: p.needed.includes(s.index),
      lines: { start: s.stage.from.lines.start, end: last.lines.end },
      instructions: [opts.expand === false ? s.stage.from : { ...s.stage.from, image: s.baseName }, ...instructions],
    });
  }
  return E.right({
    v: 1,
    type: 'dockerfile',
    file: df.file,
    escape: df.escape,
    directives: df.directives,
    args: p.globalScope,
    target: p.target,
    needed: p.needed,
    platform: p.targetPlatform,
    buildPlatform: p.buildPlatform,
    unusedBuildArgs: p.unusedBuildArgs,
    stages,
    warnings: df.warnings,
  });
};
