// DockerfileError: every problem the front end finds, as BuildKit words it, with file and line.
import { ExitCode, failure, type Failure } from '../../failure.js';

export type DockerfileTag =
  | 'DockerfileEmpty'
  | 'DockerfileSyntax'
  | 'UnknownInstruction'
  | 'UnterminatedHeredoc'
  | 'NoBuildStage'
  | 'InvalidDirective'
  | 'InvalidFlag'
  | 'InvalidStageName'
  | 'DuplicateStage'
  | 'TargetNotFound'
  | 'SubstitutionError';

/** `Dockerfile:7: unknown instruction: COPPY` (line omitted when 0). */
export const dockerfileError = (tag: DockerfileTag, file: string, line: number, message: string): Failure =>
  failure(tag, line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`, ExitCode.user);
