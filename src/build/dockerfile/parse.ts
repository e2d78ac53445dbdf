// parseDockerfile: text → Dockerfile (stages of typed instructions), pure and total: any input
// gives a Dockerfile or a one-line error naming the file and line, never a throw.
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import type { Arg, Dockerfile, From, Instruction, Stage } from './ast.js';
import { dockerfileError } from './error.js';
import { heredocsOfLine, parseInstruction } from './instruction.js';
import { readLines } from './lines.js';

export interface ParseOptions {
  /** the name errors carry, e.g. "Dockerfile" or "build/Dockerfile.prod" */
  readonly file?: string;
}

export const parseDockerfile = (text: string, opts: ParseOptions = {}): E.Either<Failure, Dockerfile> => {
  const file = opts.file ?? 'Dockerfile';
  const read = readLines(text, file, heredocsOfLine);
  if (E.isLeft(read)) return read;
  const { lines, directives, escape, warnings } = read.right;
  if (lines.length === 0) return E.left(dockerfileError('DockerfileEmpty', file, 0, 'the Dockerfile cannot be empty'));

  const globalArgs: Arg[] = [];
  const stages: Stage[] = [];
  let current: { from: From; instructions: Instruction[] } | undefined;
  const names = new Map<string, number>();
  const close = () => {
    if (!current) return;
    const index = stages.length;
    stages.push({ index, ...(current.from.name !== undefined ? { name: current.from.name } : {}), from: current.from, instructions: current.instructions });
  };
  for (const l of lines) {
    const r = parseInstruction(l, file, escape);
    if (E.isLeft(r)) return r;
    const i = r.right;
    if (i.keyword === 'FROM') {
      close();
      if (i.name !== undefined) {
        if (names.has(i.name)) return E.left(dockerfileError('DuplicateStage', file, l.start, `duplicate stage name ${JSON.stringify(i.name)}`));
        names.set(i.name, stages.length);
      }
      current = { from: i, instructions: [] };
    } else if (current) current.instructions.push(i);
    else if (i.keyword === 'ARG') globalArgs.push(i);
    else return E.left(dockerfileError('NoBuildStage', file, l.start, `no build stage in current context: ${i.keyword} before the first FROM`));
  }
  close();
  if (stages.length === 0) return E.left(dockerfileError('NoBuildStage', file, lines[lines.length - 1]!.end, 'no build stage: the Dockerfile has no FROM instruction'));
  return E.right({ file, directives, escape, globalArgs, stages, warnings });
};
