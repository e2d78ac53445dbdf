// Lifecycle: what the verbs do to a container that exists: observe its state honestly, stop,
// kill, remove, wait. Every verb reads the store and the runtime; none keeps anything in memory.
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { StorePaths } from '../store/layout.js';
import { unmountRootfs } from './rootfs.js';
import { files, readState, writeState, type ContainerRecord, type ContainerState } from './container.js';
import { runtimeRoot } from './supervise.js';

export const runtimeCmd = (p: StorePaths, r: ContainerRecord, args: readonly string[], stdio: 'ignore' | 'inherit' | 'pipe' = 'pipe'): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((done) => {
    const child = spawn(r.runtime, ['--root', runtimeRoot(p), ...args], { stdio: stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : stdio });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', (e) => done({ code: 127, stdout, stderr: e.message }));
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });

const alive = (pid: number | undefined): boolean => {
  if (pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    // a zombie is dead for our purposes
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The supervisor processes (worker, watchdog) still alive. */
export const supervisorPids = async (p: StorePaths, id: string): Promise<number[]> => {
  const text = await fs.readFile(files(p, id).supervisor, 'utf8').catch(() => '');
  return text
    .trim()
    .split(/\s+/)
    .map(Number)
    .filter((pid) => {
      try {
        return pid > 0 && alive(pid) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'tsd-supervisor';
      } catch {
        return false; // it exited between the two reads
      }
    });
};

/**
 * The state as it is now. state.json is the record; when it says running but neither the
 * supervisor nor the container's process is alive (both were killed), the container is reported
 * exited with its exit code unknown, and that is recorded, not guessed.
 */
export const observe = async (p: StorePaths, r: ContainerRecord): Promise<ContainerState> => {
  const s = await readState(p, r.id);
  if (s.status !== 'running' && s.status !== 'restarting') return s;
  if (!r.detached) {
    // a foreground run: its tsd-run process records the end; alive while the runtime knows it
    const st = await runtimeCmd(p, r, ['state', r.id]);
    if (st.code === 0 && /"status":\s*"(running|created)"/.test(st.stdout)) return s;
  } else if ((await supervisorPids(p, r.id)).length > 0) return s;
  else if (alive(s.pid)) return { ...s, error: 'unsupervised: its supervisor was killed; its exit code will not be known' };
  await cleanup(p, r);
  const again = await readState(p, r.id);
  if (again.status === 'exited') return again;
  const lost: ContainerState = { ...s, status: 'exited', finishedAt: new Date().toISOString(), error: 'exit code unknown: the container ended while its supervisor was not running' };
  delete (lost as { pid?: number }).pid;
  delete (lost as { exitCode?: number }).exitCode;
  await writeState(p, r.id, lost);
  return lost;
};

/** Deletes the runtime's container and unmounts the root file system (idempotent). */
export const cleanup = async (p: StorePaths, r: ContainerRecord): Promise<void> => {
  await runtimeCmd(p, r, ['delete', '--force', r.id]);
  await unmountRootfs(files(p, r.id).rootfs);
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the container is no longer running; false on timeout. */
export const waitStopped = async (p: StorePaths, r: ContainerRecord, timeoutMs: number): Promise<boolean> => {
  const end = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 100)) {
    const s = await observe(p, r);
    if (s.status === 'exited' || s.status === 'created') return true;
    if (Date.now() >= end) return false;
    await sleep(delay);
  }
};

const signalName = (s: string): string => (/^\d+$/.test(s) ? s : s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`);

export const killContainer = async (p: StorePaths, r: ContainerRecord, signal: string): Promise<E.Either<Failure, void>> => {
  const s = await observe(p, r);
  if (s.status !== 'running') return E.left(failure('NotRunning', `container ${r.name}: is not running`, ExitCode.user));
  const k = await runtimeCmd(p, r, ['kill', r.id, signalName(signal)]);
  if (k.code !== 0) {
    if (/not running|does not exist/.test(k.stderr)) return E.right(undefined);
    return E.left(failure('KillFailed', `kill ${r.name}: ${k.stderr.trim().split('\n').at(-1) ?? 'failed'}`, /invalid signal|unknown signal/i.test(k.stderr) ? ExitCode.user : ExitCode.tool));
  }
  return E.right(undefined);
};

/** docker stop: the stop signal, then SIGKILL after `timeoutSec`; no restart after it. */
export const stopContainer = async (p: StorePaths, r: ContainerRecord, timeoutSec: number): Promise<E.Either<Failure, void>> => {
  await fs.writeFile(files(p, r.id).stopRequested, '');
  const s = await observe(p, r);
  if (s.status !== 'running' && s.status !== 'restarting') return E.right(undefined);
  if (s.status === 'running') await runtimeCmd(p, r, ['kill', r.id, signalName(r.stopSignal)]);
  if (await waitStopped(p, r, timeoutSec * 1000)) return E.right(undefined);
  await runtimeCmd(p, r, ['kill', r.id, 'SIGKILL']);
  if (await waitStopped(p, r, 10_000)) return E.right(undefined);
  return E.left(failure('StopFailed', `stop ${r.name}: still running 10 s after SIGKILL`, ExitCode.tool));
};

/** docker rm [-f]: a running container needs -f (then SIGKILL). */
/**
 * Removes a container: stopped first when `force`, else refused while it runs. Its anonymous
 * volumes go with it, unless `keepVolumes` (`rm` without -v): then they move to the store's
 * volumes, as Docker keeps them (same file system: one rename each).
 */
export const removeContainer = async (p: StorePaths, r: ContainerRecord, force: boolean, keepVolumes = false): Promise<E.Either<Failure, void>> => {
  const s = await observe(p, r);
  if (s.status === 'running' || s.status === 'restarting') {
    if (!force) return E.left(failure('ContainerRunning', `container ${r.name}: cannot remove a running container; stop it first or use rm -f`, ExitCode.user));
    await fs.writeFile(files(p, r.id).stopRequested, '');
    await runtimeCmd(p, r, ['kill', r.id, 'SIGKILL']);
    await waitStopped(p, r, 10_000);
  }
  // the supervisor may still be finishing (deleting, unmounting): let it, briefly
  for (let i = 0; i < 50 && (await supervisorPids(p, r.id)).length > 0; i++) await sleep(20);
  await cleanup(p, r);
  const f = files(p, r.id);
  if (keepVolumes) {
    const anonymous = await fs.readdir(f.volumes).catch(() => [] as string[]);
    try {
      if (anonymous.length > 0) await fs.mkdir(p.volumes, { recursive: true });
      for (const id of anonymous) await fs.rename(`${f.volumes}/${id}`, `${p.volumes}/${id}`);
    } catch (e) {
      return E.left(fromError(`container ${r.name}: keep its anonymous volumes in ${p.volumes}`)(e));
    }
  }
  await fs.rm(f.dir, { recursive: true, force: true });
  return E.right(undefined);
};

/** docker wait: blocks until the container exits, returns its exit code. */
export const waitExit = async (p: StorePaths, r: ContainerRecord): Promise<ContainerState> => {
  for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
    const s = await observe(p, r);
    if (s.status === 'exited' || s.status === 'created') return s;
    await sleep(delay);
  }
};
