// Helpers of the detached-container tests: one store per test file, tsd-run against it, polling.
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { removeDir, tempStore, tsd } from '../support/tsd.js';
import { busyboxImage } from './busybox.js';
import type { StorePaths } from '../../src/store/layout.js';

let store: StorePaths | undefined;
export const p = (): StorePaths => store as StorePaths;

export const setup = async (): Promise<void> => {
  store = await tempStore();
  await busyboxImage(store);
  await busyboxImage(store, 'docker.io/library/healthy:test', { Cmd: ['sleep', '30'], Env: ['PATH=/bin'], Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ready'], Interval: 150e6, Retries: 2, StartPeriod: 2e9 } });
};

export const run = (args: string[]) => tsd('run', args, { root: p().root });

/** Removes every container of the store (whatever a failed test left), then the store. */
export const teardown = async (): Promise<void> => {
  for (const id of (await run(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean)) await run(['rm', '-f', id]);
  removeDir(p().root);
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const detach = async (args: string[]): Promise<string> => {
  const r = await run(['-d', ...args]);
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout) as { type: string; id: string; state: string };
  assert.is(m.type, 'container');
  assert.is(m.state, 'running');
  return m.id;
};

export interface Inspected {
  readonly State: { Status: string; ExitCode: number | null; Error: string; StartedAt: string; Pid: number; Health?: { Status: string; FailingStreak: number } };
  readonly RestartCount: number;
}

export const inspect = async (c: string): Promise<Inspected> => {
  const r = await run(['inspect', c]);
  if (r.code !== 0) throw new Error(`inspect ${c}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Inspected;
};

export const until = async <T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};

/** The supervisor's two processes: worker, then watchdog. */
export const supervisors = (id: string): number[] => readFileSync(`${p().containers}/${id}/supervisor.pid`, 'utf8').trim().split(/\s+/).map(Number);

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !/\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
