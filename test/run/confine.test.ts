// tsd-run in the foreground with the real runc: limits (OOM, pids), --init, confinement,
// signals and stdin, as the user sees them (stdout, one stderr line, exit code).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { REPO, removeDir, tempDir, tsd } from '../support/tsd.js';
import { busyboxImage, REF } from './busybox.js';
import { tempStore } from '../support/tsd.js';
import type { StorePaths } from '../../src/store/layout.js';

let p: StorePaths;
let host: string;
const run = (args: string[], input?: string) => tsd('run', args, { root: p.root, ...(input !== undefined ? { input } : {}) });

test.before(async () => {
  p = await tempStore();
  host = tempDir('tsd-run-host-');
  await busyboxImage(p);
  await busyboxImage(p, 'docker.io/library/app:test', { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo default cmd'], Env: ['PATH=/bin', 'GREETING=image'], WorkingDir: '/srv/app', User: 'alice' });
});

test('a memory limit OOM-kills (137, inspect says OOMKilled); a pids limit stops a fork bomb', async () => {
  const oom = await run(['--name', 'oomer', '--memory', '16m', 'bb:test', 'sh', '-c', 'dd if=/dev/zero bs=64M count=1 | cat > /dev/null; x=$(yes | head -c 100000000); echo survived']);
  assert.is(oom.code, 137, oom.stderr);
  const info = JSON.parse((await run(['inspect', 'oomer'])).stdout) as { State: { OOMKilled: boolean; ExitCode: number } };
  assert.is(info.State.OOMKilled, true);
  assert.is(info.State.ExitCode, 137);
  assert.is((await run(['rm', 'oomer'])).code, 0);
  // a fork bomb in a child shell hits the limit (fork fails); the outer shell then counts, forking nothing
  const count = 'n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo procs $n';
  const bomb = await run(['--rm', '--pids-limit', '20', 'bb:test', 'sh', '-c', `sh -c "while true; do sleep 5 & done" 2>/dev/null; ${count}`]);
  const n = Number(/procs (\d+)/.exec(bomb.stdout)?.[1]);
  assert.ok(n > 10 && n <= 20, bomb.stdout + bomb.stderr);
  const free = await run(['--rm', 'bb:test', 'sh', '-c', `sh -c 'i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done'; ${count}`]);
  assert.is(free.stdout, 'procs 31\n');
});

test('--init: tini is PID 1 and reaps zombies; without it they stay', async () => {
  // PID 1 becomes `sleep`, which never waits: its two finished children stay zombies unless tini reaps
  const zombies = async (init: string[]) => {
    const c = await run(['-d', ...init, 'bb:test', 'sh', '-c', '(sleep 0.1 &); (sleep 0.1 &); exec sleep 30']);
    const id = JSON.parse(c.stdout).id as string;
    await new Promise((r) => setTimeout(r, 600));
    const ps = await run(['exec', id, 'ps', '-o', 'stat,comm']);
    const pid1 = await run(['exec', id, 'cat', '/proc/1/comm']);
    await run(['rm', '-f', id]);
    return { z: ps.stdout.split('\n').filter((l) => l.startsWith('Z')).length, pid1: pid1.stdout.trim() };
  };
  assert.equal(await zombies([]), { z: 2, pid1: 'sleep' });
  assert.equal(await zombies(['--init']), { z: 0, pid1: 'docker-init' });
  assert.is((await run(['--rm', '--init', 'bb:test', 'sh', '-c', 'exit 5'])).code, 5);
});

test('confinement: caps add/drop, no-new-privileges, seccomp default and unconfined, networks', async () => {
  assert.is((await run(['--rm', 'bb:test', 'grep', 'CapEff', '/proc/self/status'])).stdout, 'CapEff:\t00000000a80425fb\n');
  assert.is((await run(['--rm', '--cap-drop', 'ALL', '--cap-add', 'chown', 'bb:test', 'grep', 'CapEff', '/proc/self/status'])).stdout, 'CapEff:\t0000000000000001\n');
  assert.is((await run(['--rm', '--security-opt', 'no-new-privileges', 'bb:test', 'grep', 'NoNewPrivs', '/proc/self/status'])).stdout, 'NoNewPrivs:\t1\n');
  assert.is((await run(['--rm', 'bb:test', 'grep', 'Seccomp:', '/proc/self/status'])).stdout, 'Seccomp:\t2\n');
  assert.is((await run(['--rm', '--security-opt', 'seccomp=unconfined', 'bb:test', 'grep', 'Seccomp:', '/proc/self/status'])).stdout, 'Seccomp:\t0\n');
  const nets = 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | sort | tr "\\n" " "';
  assert.is((await run(['--rm', '--network', 'none', 'bb:test', 'sh', '-c', nets])).stdout, 'lo ');
  assert.is((await run(['--rm', 'bb:test', 'sh', '-c', nets])).stdout, 'lo ');
  const hostIfs = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter((l) => l.includes(':')).length;
  assert.is((await run(['--rm', '--network', 'host', 'bb:test', 'sh', '-c', nets])).stdout.trim().split(' ').length, hostIfs);
  // cgroup limits as the container sees them (cgroup v1 here: its own dirs are mounted read-only)
  const cg = await run(['--rm', '--cpus', '0.5', '--memory', '32m', '--pids-limit', '33', 'bb:test', 'sh', '-c', 'cd /sys/fs/cgroup; cat cpu/cpu.cfs_quota_us memory/memory.limit_in_bytes pids/pids.max; echo 1 > pids/pids.max 2>/dev/null || echo cgroup-ro']);
  assert.is(cg.stdout, `50000\n${32 << 20}\n33\ncgroup-ro\n`);
  const masked = await run(['--rm', 'bb:test', 'sh', '-c', 'cat /proc/kcore | wc -c; touch /proc/sys/x 2>/dev/null || echo ro']);
  assert.is(masked.stdout, '0\nro\n');
});

test('SIGTERM and SIGINT sent to tsd-run reach the container; -i passes stdin; --runtime names a missing runtime', async () => {
  const signalled = (sig: NodeJS.Signals) =>
    new Promise<{ code: number | null; out: string }>((done) => {
      const child = spawn(join(REPO, 'bin', 'tsd-run'), ['--rm', 'bb:test', 'sh', '-c', `trap 'echo got ${sig}; exit 7' ${sig.slice(3)}; echo ready; while true; do sleep 0.05; done`], { env: { ...process.env, TSD_ROOT: p.root }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out === 'ready\n') child.kill(sig);
      });
      child.on('close', (code) => done({ code, out }));
    });
  assert.equal(await signalled('SIGTERM'), { code: 7, out: `ready\ngot SIGTERM\n` });
  assert.equal(await signalled('SIGINT'), { code: 7, out: `ready\ngot SIGINT\n` });
  assert.is((await run(['--rm', '-i', 'bb:test', 'cat'], 'piped in\n')).stdout, 'piped in\n');
  assert.is((await run(['--rm', 'bb:test', 'cat'], 'not passed without -i\n')).stdout, '');
  const rt = await run(['--rm', '--runtime', 'no-such-runtime', 'bb:test', 'true']);
  assert.is(rt.code, 125);
  assert.is(rt.stderr, 'tsd-run: runtime no-such-runtime: not installed\n');
});

test.after(async () => {
  for (const id of (await run(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean)) await run(['rm', '-f', id]);
  removeDir(p.root);
  removeDir(host);
});

test.run();
void REF;
