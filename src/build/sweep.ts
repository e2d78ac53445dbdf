// Sweep: cleans up after builds killed mid-RUN (kill -9): their containers are deleted, their
// overlays unmounted and their work dirs removed; scratch dirs (context spools, bind sources) of
// dead builds go too. Run dirs are named tsd-build-PID-…, scratch dirs PID-TIME; a live PID's are
// left. Every build calls this first, so it costs two readdirs when there is nothing to sweep.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { StorePaths } from '../store/layout.js';
import { pidAlive } from '../store/lock.js';
import type { Rootfs } from './run-step.js';

export const sweepStaleRuns = async (p: StorePaths, rootfs: Rootfs): Promise<number> => {
  const runs = join(p.cache, 'run');
  const names = await fs.readdir(runs).catch(() => [] as string[]);
  let swept = 0;
  for (const id of names) {
    const m = /^tsd-build-(\d+)-[a-f0-9]+$/.exec(id);
    if (!m || pidAlive(Number(m[1]))) continue;
    const { spawn } = await import('node:child_process');
    await new Promise((done) => spawn('runc', ['delete', '--force', id], { stdio: 'ignore' }).on('close', done).on('error', done));
    await rootfs.unmount(join(runs, id, 'merged')).catch(() => undefined);
    await rootfs.unmount(join(runs, id, 'lower')).catch(() => undefined);
    await fs.rm(join(runs, id), { recursive: true, force: true }).catch(() => undefined);
    swept++;
  }
  const tmp = join(p.cache, 'tmp');
  for (const name of await fs.readdir(tmp).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) await fs.rm(join(tmp, name), { recursive: true, force: true }).catch(() => undefined);
  }
  return swept;
};
