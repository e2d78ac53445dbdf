// Failure: the one shape every module's errors share, so a binary's shell can render any of them
// as one line and pick the exit code. Each module keeps its own closed union of tags; this file
// only fixes the fields and the exit-code table (documented in README.md, "Exit codes").

/** Exit codes of every tsd binary. tsd-run adds the container's own code, 126 and 127. */
export const ExitCode = {
  ok: 0,
  /** bad usage or bad user input: a broken Dockerfile, a malformed reference, a hostile archive */
  user: 1,
  /** the named thing does not exist: image, blob, container */
  notFound: 2,
  /** tsd itself failed: I/O error, registry unreachable, runtime failure, disk full */
  tool: 125,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface Failure {
  /** a stable machine-readable tag such as 'DigestMismatch' */
  readonly _tag: string;
  /** one line for a person, naming the thing that failed */
  readonly message: string;
  readonly exitCode: ExitCode;
  /** true where trying the same operation again may succeed (network faults, busy locks) */
  readonly retryable?: boolean;
}

export const failure = (
  _tag: string,
  message: string,
  exitCode: ExitCode = ExitCode.user,
  retryable = false,
): Failure => ({ _tag, message, exitCode, retryable });

export const isFailure = (u: unknown): u is Failure =>
  typeof u === 'object' && u !== null && typeof (u as Failure)._tag === 'string' &&
  typeof (u as Failure).message === 'string' && typeof (u as Failure).exitCode === 'number';

const errnoCode = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null ? (e as NodeJS.ErrnoException).code : undefined;

/**
 * Turns an unknown thrown value from a file-system or process call into a Failure whose message
 * names what was being done ("write blob sha256:…: no space left on device").
 */
export const fromError =
  (context: string) =>
  (e: unknown): Failure => {
    if (isFailure(e)) return e;
    const code = errnoCode(e);
    switch (code) {
      case 'ENOSPC':
      case 'EDQUOT':
        return failure('NoSpace', `${context}: no space left on device`, ExitCode.tool);
      case 'ENOENT':
        return failure('NotFound', `${context}: no such file or directory`, ExitCode.notFound);
      case 'EACCES':
      case 'EPERM':
        return failure('PermissionDenied', `${context}: permission denied`, ExitCode.user);
      case 'EROFS':
        return failure('ReadOnly', `${context}: read-only file system`, ExitCode.tool);
      default: {
        const text = e instanceof Error ? e.message : String(e);
        return failure('IOError', `${context}: ${text.split('\n')[0]}`, ExitCode.tool, code === 'EAGAIN' || code === 'EBUSY');
      }
    }
  };
