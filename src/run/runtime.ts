// Runtime: the OCI runtime binary (runc, or crun as an option) driven as a child process. runOnce
// runs a prepared bundle in the foreground (`runc run`), stdio passed through or captured, and
// returns the container's exit code; a failure of the runtime itself is classified as Docker
// does: 127 command not found, 126 cannot invoke, 125 anything else.
import { spawn, type StdioOptions } from 'node:child_process';
import { promises as fs, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { RuntimeSpec } from './spec.js';

/** tsd-run's own exit codes beyond the shared table (docker run's). */
export const RunExit = { cannotInvoke: 126, notFound: 127 } as const;

export interface Runtime {
  /** the runtime binary: "runc" (default) or "crun", or a path */
  readonly binary: string;
  /** the runtime's state directory (`--root`); runc's default when undefined */
  readonly stateRoot?: string;
}

export const defaultRuntime: Runtime = { binary: 'runc' };

export const runtimeArgs = (rt: Runtime, args: readonly string[]): string[] => [...(rt.stateRoot !== undefined ? ['--root', rt.stateRoot] : []), ...args];

/** stdio of the container: the caller's own (inherit), captured into buffers, or given fds/streams. */
export type Stdio =
  | { readonly mode: 'inherit' }
  | { readonly mode: 'capture'; readonly input?: string | Buffer }
  | { readonly mode: 'fds'; readonly fds: readonly [number | 'ignore' | 'inherit', number | 'ignore' | 'inherit', number | 'ignore' | 'inherit'] };

export interface RunOnceInput {
  readonly runtime?: Runtime;
  readonly id: string;
  readonly bundle: string;
  readonly stdio?: Stdio;
  /** called with a function that forwards a signal to the container; returns an unsubscribe */
  readonly onSignal?: (forward: (signal: NodeJS.Signals) => void) => () => void;
  /** write the container's stdin from this stream (with stdio 'capture') */
  readonly stdinStream?: Readable;
  readonly stdoutStream?: Writable;
  readonly stderrStream?: Writable;
  /** the container's memory cgroup dir: read its OOM-kill count before the runtime deletes it */
  readonly memoryCgroup?: string;
  /** start the runtime in its own process group, so a terminal's ^C reaches only us (we forward) */
  readonly ownProcessGroup?: boolean;
}

export interface Exit {
  /** the container's code; 128+N when it was killed by signal N */
  readonly exitCode: number;
  readonly stdout?: Buffer;
  readonly stderr?: Buffer;
  /** the kernel's OOM killer killed a process of the container */
  readonly oomKilled?: boolean;
}

/** True when the cgroup counted an OOM kill (v1 memory.oom_control, v2 memory.events). */
export const oomKilledIn = async (dir: string): Promise<boolean> => {
  for (const file of ['memory.oom_control', 'memory.events']) {
    const text = await fs.readFile(join(dir, file), 'utf8').catch(() => '');
    const m = /^oom_kill (\d+)$/m.exec(text);
    if (m) return Number(m[1]) > 0;
  }
  return false;
};

/** Writes config.json into a bundle directory. */
export const writeSpec = (bundle: string, spec: RuntimeSpec): TE.TaskEither<Failure, void> =>
  TE.tryCatch(() => fs.writeFile(join(bundle, 'config.json'), JSON.stringify(spec)), fromError(`write ${join(bundle, 'config.json')}`));

/** Maps the runtime's own error message to Docker's exit codes. */
export const classifyRuntimeError = (message: string): Failure => {
  const line = message.replace(/\s+/g, ' ').trim();
  const exec = /exec: "([^"]*)": (.*)$/.exec(line) ?? /exec(?:ve)? ([^:]+): (.*)$/.exec(line);
  if (exec) {
    const [, what, why = ''] = exec;
    if (/not found|no such file/i.test(why)) return failure('CommandNotFound', `exec ${what}: ${why.replace(/: unknown$/, '')}`, RunExit.notFound as unknown as ExitCode);
    if (/permission denied|is a directory|exec format error|not executable/i.test(why)) return failure('CannotInvoke', `exec ${what}: ${why}`, RunExit.cannotInvoke as unknown as ExitCode);
  }
  if (/executable file not found|no such file or directory/i.test(line) && /exec/.test(line)) return failure('CommandNotFound', line, RunExit.notFound as unknown as ExitCode);
  if (/permission denied/i.test(line) && /exec/.test(line)) return failure('CannotInvoke', line, RunExit.cannotInvoke as unknown as ExitCode);
  return failure('RuntimeFailed', `runtime: ${line || 'failed'}`, ExitCode.tool);
};

/** The error lines of a runtime's JSON log (`--log-format json`), last one first. */
export const runtimeLogErrors = (log: string): string[] =>
  log
    .split('\n')
    .flatMap((l) => {
      try {
        const e = JSON.parse(l) as { level?: string; msg?: string };
        return e.level === 'error' || e.level === 'fatal' ? [e.msg ?? ''] : [];
      } catch {
        return [];
      }
    })
    .reverse();

const stdioOf = (s: Stdio): StdioOptions => (s.mode === 'inherit' ? 'inherit' : s.mode === 'capture' ? ['pipe', 'pipe', 'pipe'] : [...s.fds]);

/** Runs a bundle in the foreground until its process exits; the runtime deletes it afterwards. */
export const runOnce = (input: RunOnceInput): TE.TaskEither<Failure, Exit> => async () => {
  const rt = input.runtime ?? defaultRuntime;
  const log = join(input.bundle, 'runtime.log');
  const stdio = input.stdio ?? { mode: 'inherit' };
  const keep = input.memoryCgroup !== undefined;
  const args = runtimeArgs(rt, ['--log', log, '--log-format', 'json', 'run', ...(keep ? ['--keep'] : []), '--bundle', input.bundle, input.id]);
  const child = spawn(rt.binary, args, { stdio: stdioOf(stdio), detached: input.ownProcessGroup ?? false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  if (stdio.mode === 'capture') {
    child.stdout?.on('data', (d: Buffer) => (input.stdoutStream ? input.stdoutStream.write(d) : out.push(d)));
    child.stderr?.on('data', (d: Buffer) => (input.stderrStream ? input.stderrStream.write(d) : err.push(d)));
    child.stdin?.on('error', () => undefined);
    if (input.stdinStream) input.stdinStream.pipe(child.stdin!);
    else child.stdin?.end(stdio.input ?? '');
  }
  const unsubscribe = input.onSignal?.((sig) => child.kill(sig)) ?? (() => undefined);
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((done) => {
    child.on('error', (error) => done({ code: null, signal: null, error }));
    child.on('close', (code, signal) => done({ code, signal }));
  });
  unsubscribe();
  if (input.stdinStream) input.stdinStream.unpipe(child.stdin!);
  if (result.error) {
    const e = result.error as NodeJS.ErrnoException;
    return { _tag: 'Left', left: failure('RuntimeNotFound', e.code === 'ENOENT' ? `runtime ${rt.binary}: not installed` : `runtime ${rt.binary}: ${e.message}`, ExitCode.tool) };
  }
  // small and local: synchronous calls (no thread-pool round trips on a container's way out)
  let logText = '';
  try {
    logText = readFileSync(log, 'utf8');
  } catch {
    /* no log: nothing went wrong that the runtime wrote down */
  }
  rmSync(log, { force: true });
  const errors = runtimeLogErrors(logText);
  const oomKilled = keep ? await oomKilledIn(input.memoryCgroup as string) : false;
  if (keep || result.signal !== null || errors.length > 0) {
    // the runtime itself died or failed: make sure nothing is left behind
    await new Promise((done) => spawn(rt.binary, runtimeArgs(rt, ['delete', '--force', input.id]), { stdio: 'ignore' }).on('close', done).on('error', done));
  }
  if (errors.length > 0 && result.code !== 0) return { _tag: 'Left', left: classifyRuntimeError(errors[0] ?? '') };
  const exitCode = result.code ?? 128 + 9;
  return { _tag: 'Right', right: { exitCode, ...(keep ? { oomKilled } : {}), ...(stdio.mode === 'capture' ? { stdout: Buffer.concat(out), stderr: Buffer.concat(err) } : {}) } };
};
