// The parse result of a Dockerfile: plain read-only data, the contract between the front end
// (src/build/dockerfile/*) and the builder (src/build/*). `parseDockerfile(text, {file})` gives a
// Dockerfile whose words are exactly as written (no variable substitution yet, quotes kept where
// the reference keeps them); `planStages(df, opts)` resolves ARGs, FROM lines, stage bases and the
// stage graph; `expandStage(plan, index, baseEnv)` expands each instruction of one stage with the
// variables in scope at its step. Names and shapes here are stable: add fields, never rename.

/** 1-based, inclusive: the physical lines an instruction spans (continuations and heredocs included). */
export interface LineRange {
  readonly start: number;
  readonly end: number;
}

/** An instruction flag as written: `--link` has value undefined, `--from=x` has "x". */
export interface Flag {
  readonly name: string;
  readonly value?: string;
}

/** Exec (JSON array) form or shell form of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD. */
export type Command =
  | { readonly form: 'shell'; readonly text: string }
  | { readonly form: 'exec'; readonly args: readonly string[] };

/** A here-document: `<<EOF` (expand true), `<<"EOF"`/`<<'EOF'` (expand false), `<<-EOF` (chomp: leading tabs stripped). */
export interface Heredoc {
  readonly name: string;
  /** the body, each line ending in "\n"; leading tabs already removed when chomp */
  readonly content: string;
  /** false when the delimiter was quoted: no variable expansion in the body */
  readonly expand: boolean;
  readonly chomp: boolean;
}

/** `RUN --mount=type=…,…`: the common fields typed, every key kept in `options`. */
export interface Mount {
  readonly type: 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
  readonly target?: string;
  readonly source?: string;
  readonly from?: string;
  readonly readonly?: boolean;
  readonly id?: string;
  readonly sharing?: 'shared' | 'private' | 'locked';
  readonly mode?: string;
  readonly uid?: string;
  readonly gid?: string;
  readonly required?: boolean;
  readonly env?: string;
  readonly size?: string;
  /** every key=value of the flag as written (after expansion when expanded) */
  readonly options: Readonly<Record<string, string>>;
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export interface ArgDecl {
  readonly name: string;
  /** absent for `ARG NAME` (no default) */
  readonly default?: string;
}

interface Base<K extends string> {
  readonly keyword: K;
  readonly lines: LineRange;
  readonly flags: readonly Flag[];
  /** the instruction's text as written, continuations joined (heredoc bodies not included) */
  readonly original: string;
}

export interface From extends Base<'FROM'> {
  readonly image: string;
  readonly name?: string;
  readonly platform?: string;
}
export interface Run extends Base<'RUN'> {
  readonly command: Command;
  readonly heredocs: readonly Heredoc[];
  readonly mounts: readonly Mount[];
  readonly network?: 'default' | 'none' | 'host';
  readonly security?: 'sandbox' | 'insecure';
}
export interface Cmd extends Base<'CMD'> {
  readonly command: Command;
  readonly heredocs: readonly Heredoc[];
}
export interface Entrypoint extends Base<'ENTRYPOINT'> {
  readonly command: Command;
  readonly heredocs: readonly Heredoc[];
}
export interface Label extends Base<'LABEL'> {
  readonly pairs: readonly KeyValue[];
}
export interface Maintainer extends Base<'MAINTAINER'> {
  readonly name: string;
}
export interface Expose extends Base<'EXPOSE'> {
  readonly ports: readonly string[];
}
export interface Env extends Base<'ENV'> {
  readonly pairs: readonly KeyValue[];
}
interface CopyLike<K extends 'ADD' | 'COPY'> extends Base<K> {
  /** sources as written (a heredoc source appears as its `<<NAME` word and in heredocs) */
  readonly sources: readonly string[];
  readonly dest: string;
  readonly from?: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly parents: boolean;
  readonly exclude: readonly string[];
  readonly heredocs: readonly Heredoc[];
  /** true when written in JSON form */
  readonly json: boolean;
}
export interface Add extends CopyLike<'ADD'> {
  readonly checksum?: string;
  readonly keepGitDir?: boolean;
}
export type Copy = CopyLike<'COPY'>;
export interface Volume extends Base<'VOLUME'> {
  readonly paths: readonly string[];
}
export interface User extends Base<'USER'> {
  readonly user: string;
}
export interface Workdir extends Base<'WORKDIR'> {
  readonly path: string;
}
export interface Arg extends Base<'ARG'> {
  readonly args: readonly ArgDecl[];
}
export interface Onbuild extends Base<'ONBUILD'> {
  readonly instruction: Instruction;
}
export interface Stopsignal extends Base<'STOPSIGNAL'> {
  readonly signal: string;
}
export interface Healthcheck extends Base<'HEALTHCHECK'> {
  /** `HEALTHCHECK NONE` disables the base image's check */
  readonly test: { readonly kind: 'none' } | { readonly kind: 'cmd'; readonly command: Command };
  readonly interval?: string;
  readonly timeout?: string;
  readonly startPeriod?: string;
  readonly startInterval?: string;
  readonly retries?: number;
}
export interface Shell extends Base<'SHELL'> {
  readonly args: readonly string[];
}

export type Instruction =
  | From | Run | Cmd | Label | Maintainer | Expose | Env | Add | Copy | Entrypoint
  | Volume | User | Workdir | Arg | Onbuild | Stopsignal | Healthcheck | Shell;
export type Keyword = Instruction['keyword'];

/** A parser directive at the top of the file (`# syntax=`, `# escape=`, `# check=`). */
export interface Directive {
  readonly name: 'syntax' | 'escape' | 'check';
  readonly value: string;
  readonly line: number;
  /** escape is applied; syntax and check are recognised and reported as not applicable */
  readonly applied: boolean;
}

/** Something the parser accepted but a person should hear about (printed on stderr by the CLI). */
export interface Warning {
  readonly line: number;
  readonly message: string;
}

export interface Stage {
  readonly index: number;
  /** the `AS name`, lower-cased as BuildKit does */
  readonly name?: string;
  readonly from: From;
  /** the instructions after FROM, up to the next FROM */
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  readonly file: string;
  readonly directives: readonly Directive[];
  readonly escape: '\\' | '`';
  /** ARG instructions before the first FROM: the global scope usable in FROM lines */
  readonly globalArgs: readonly Arg[];
  readonly stages: readonly Stage[];
  readonly warnings: readonly Warning[];
}

/** A stage's base after planning: an image to pull, an earlier stage, or nothing. */
export type StageBase =
  | { readonly kind: 'image'; readonly ref: string }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'scratch' };

/** Where a `COPY --from` or `RUN --mount from=` reads: an earlier stage or an image. */
export type CopySource = { readonly kind: 'stage'; readonly index: number } | { readonly kind: 'image'; readonly ref: string };

export interface PlannedStage {
  readonly index: number;
  readonly name?: string;
  /** the FROM image after substitution of global ARGs */
  readonly baseName: string;
  readonly base: StageBase;
  /** `FROM --platform=` after substitution, else the target platform */
  readonly platform: string;
  /** the stages this one reads (base, COPY --from, RUN --mount from=), sorted */
  readonly dependsOn: readonly number[];
  readonly stage: Stage;
}

export interface StagePlan {
  readonly dockerfile: Dockerfile;
  readonly stages: readonly PlannedStage[];
  /** the stage built: --target, else the last */
  readonly target: number;
  /** the stages the target needs, dependencies first, target last */
  readonly needed: readonly number[];
  /** the values of the global ARGs (and predefined ARGs) after --build-arg, used for FROM lines */
  readonly globalScope: Readonly<Record<string, string>>;
  /** --build-arg values as given (a stage sees one only after declaring its ARG) */
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly targetPlatform: string;
  readonly buildPlatform: string;
  /** build args given but declared by no ARG in the needed stages (BuildKit warns) */
  readonly unusedBuildArgs: readonly string[];
}

/** One step of a stage after substitution, with the variables a RUN at this step sees. */
export interface ExpandedStep {
  readonly instruction: Instruction;
  /** ENV in effect (base image ENV, then ENV instructions): what the image config records */
  readonly env: Readonly<Record<string, string>>;
  /** ARGs in scope at this step with their values: exported to RUN, not persisted */
  readonly args: Readonly<Record<string, string>>;
}
