// Supervise: starting a detached container under tsd-supervisor (supervisor.c), and the plain
// data it is given. The binary is compiled from src/run/supervisor.c with the machine's cc on first
// use (and by `npm run build` when cc exists), into dist/tsd-supervisor.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, statSync, openSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as E from 'fp-ts/lib/Either.js';
import { runQuiet } from './quiet-command.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import type { StorePaths } from '../store/layout.js';
import { files, runtimeRoot, type ContainerRecord } from './container.js';
import { memoryEventsDir } from './create.js';
import { formatMapping } from './ports.js';
import { classifyRuntimeError, runtimeLogErrors } from './runtime.js';

/** The package's root directory (where package.json is), from wherever this module was bundled. */
export const packageRoot = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src', 'run'))) return dir;
    dir = dirname(dir);
  }
  return dirname(dirname(fileURLToPath(import.meta.url)));
};

export const supervisorSource = (): string => join(packageRoot(), 'src', 'run', 'supervisor.c');
export const supervisorBinary = (): string => join(packageRoot(), 'dist', 'tsd-supervisor');


/** The supervisor binary, compiled now if missing or older than its source. */
export const ensureSupervisor = async (): Promise<E.Either<Failure, string>> => {
  const bin = supervisorBinary();
  const src = supervisorSource();
  const fresh = existsSync(bin) && (!existsSync(src) || statSync(bin).mtimeMs >= statSync(src).mtimeMs);
  if (fresh) return E.right(bin);
  if (!existsSync(src)) return E.left(failure('NoSupervisor', `supervisor: ${bin} is missing and so is its source ${src}`, ExitCode.tool));
  await fs.mkdir(dirname(bin), { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const cc = process.env.CC ?? 'cc';
  const r = await runQuiet(cc, ['-O2', '-o', tmp, src]);
  if (r.code !== 0) return E.left(failure('NoSupervisor', `supervisor: compiling ${src} with ${cc} failed: ${r.stderr.trim().split('\n')[0] ?? ''}`, ExitCode.tool));
  await fs.rename(tmp, bin);
  return E.right(bin);
};

/** The runtime's state directory inside the store (defined in container.ts, which the foreground run loads). */
export { runtimeRoot };

/** Log rotation for the supervisor (see supervisor.c): none when the variables are absent. Pure. */
export const logEnv = (r: ContainerRecord): Record<string, string> =>
  r.logRotation ? { TSD_LOG_MAX_SIZE: String(r.logRotation.maxSize), TSD_LOG_MAX_FILE: String(r.logRotation.maxFile) } : { TSD_LOG_MAX_SIZE: '', TSD_LOG_MAX_FILE: '' };

/** The terminal size to start a pty with: the caller's terminal, else 24x80. */
const ttySize = (): string => (process.stdout.isTTY && process.stdout.rows > 0 ? `${process.stdout.rows} ${process.stdout.columns}` : '24 80');

/** -t: the supervisor keeps the pty master; -i without -t: the write end of the stdin pipe. Pure but for the size. */
export const stdioEnv = (r: ContainerRecord): Record<string, string> => ({
  TSD_TTY: r.tty ? '1' : '',
  TSD_STDIN: r.interactive === true && !r.tty ? '1' : '',
  TSD_TTY_SIZE: r.tty ? ttySize() : '',
});

/** The supervisor's argv (see the usage comment in supervisor.c). Pure. */
export const supervisorArgs = (p: StorePaths, r: ContainerRecord): string[] => {
  const h = r.health;
  return [
    files(p, r.id).dir,
    r.runtime,
    runtimeRoot(p),
    r.id,
    memoryEventsDir(r.id),
    r.restart.name,
    String(r.restart.name === 'on-failure' ? r.restart.max : 0),
    r.autoRemove ? '1' : '0',
    String(h?.intervalMs ?? 0),
    String(h?.timeoutMs ?? 0),
    String(h?.retries ?? 0),
    String(h?.startPeriodMs ?? 0),
    String(r.ports.length),
    ...r.ports.map(formatMapping),
    ...(h?.argv ?? []),
  ];
};

/**
 * Starts the supervisor, which starts the container, and waits only for its first report:
 * "ok PID" (returns the PID) or "fail" (the runtime's error, classified 125/126/127).
 */
export const startSupervised = async (p: StorePaths, r: ContainerRecord): Promise<E.Either<Failure, number>> => {
  const bin = await ensureSupervisor();
  if (E.isLeft(bin)) return bin;
  const f = files(p, r.id);
  await fs.rm(f.stopRequested, { force: true });
  const log = openSync(join(f.dir, 'supervisor.log'), 'a');
  const child = spawn(bin.right, supervisorArgs(p, r), { detached: true, stdio: ['ignore', log, log, 'pipe'], env: { ...process.env, TSD_STOP_SIGNAL: r.stopSignal, ...logEnv(r), ...stdioEnv(r) } });
  closeSync(log);
  const pipe = child.stdio[3] as NodeJS.ReadableStream;
  const report = await new Promise<string>((done) => {
    let text = '';
    pipe.on('data', (d: Buffer) => (text += d.toString()));
    pipe.on('end', () => done(text));
    pipe.on('error', () => done(text));
    child.on('error', (e) => done(`error ${e.message}`));
  });
  child.unref();
  const ok = /^ok (\d+)/.exec(report);
  if (ok) return E.right(Number(ok[1]));
  const said = /^fail (.+)/.exec(report)?.[1];
  if (said !== undefined) return E.left(failure('PublishFailed', said.trim(), ExitCode.tool));
  const errors = runtimeLogErrors(await fs.readFile(join(f.dir, 'runtime.log'), 'utf8').catch(() => ''));
  return E.left(classifyRuntimeError(errors[0] ?? (report.trim() || 'the supervisor exited before starting the container')));
};
