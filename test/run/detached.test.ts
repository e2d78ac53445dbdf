// Detached containers under tsd-supervisor, with the real runc: logs, stop, restart policy,
// health, kill -9 of the supervisor, 20 at once (and their supervisors' memory), port publishing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { removeDir, tempStore, tsd } from '../support/tsd.js';
import { busyboxImage } from './busybox.js';
import type { StorePaths } from '../../src/store/layout.js';

let p: StorePaths;
const run = (args: string[]) => tsd('run', args, { root: p.root });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const detach = async (args: string[]): Promise<string> => {
  const r = await run(['-d', ...args]);
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout) as { type: string; id: string; state: string };
  assert.is(m.type, 'container');
  assert.is(m.state, 'running');
  return m.id;
};
const inspect = async (c: string) => {
  const r = await run(['inspect', c]);
  if (r.code !== 0) throw new Error(`inspect ${c}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { State: { Status: string; ExitCode: number | null; Error: string; Health?: { Status: string; FailingStreak: number } }; RestartCount: number };
};
const until = async <T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};
const supervisors = (id: string): number[] => readFileSync(`${p.containers}/${id}/supervisor.pid`, 'utf8').trim().split(/\s+/).map(Number);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test.before(async () => {
  p = await tempStore();
  await busyboxImage(p);
  await busyboxImage(p, 'docker.io/library/healthy:test', { Cmd: ['sleep', '30'], Env: ['PATH=/bin'], Healthcheck: { Test: ['CMD-SHELL', 'test -f /tmp/ready'], Interval: 150e6, Retries: 2, StartPeriod: 2e9 } });
});

test('-d prints the container JSON at once; logs keep stdout and stderr apart; logs -f follows to the end; wait gives the code', async () => {
  const started = Date.now();
  const id = await detach(['--name', 'talker', 'bb:test', 'sh', '-c', 'for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 3']);
  assert.ok(Date.now() - started < 3000);
  const f = await run(['logs', '-f', 'talker']);
  assert.is(f.stdout, 'out 1\nout 2\nout 3\n');
  assert.is(f.stderr, 'err 1\nerr 2\nerr 3\n');
  assert.is((await run(['wait', id.slice(0, 12)])).stdout, '3\n');
  assert.is((await run(['logs', '--tail', '1', 'talker'])).stdout, 'out 3\n');
  // -t: each line dated when it reached the log (the supervisor's inotify index), 0.2 s apart
  const dated = (await run(['logs', '-t', 'talker'])).stdout.trim().split('\n');
  assert.is(dated.length, 3);
  const times = dated.map((l) => {
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9})Z out \d$/.exec(l);
    assert.ok(m, l);
    return Date.parse(`${(m as RegExpExecArray)[1]!.slice(0, 23)}Z`);
  });
  assert.ok(times[1]! - times[0]! >= 150 && times[2]! - times[1]! >= 150, JSON.stringify(times));
  assert.ok(Math.abs(times[0]! - started) < 5000);
  const since = new Date(times[1]!).toISOString();
  assert.is((await run(['logs', '--since', since, 'talker'])).stdout, 'out 2\nout 3\n');
  assert.is((await run(['logs', '--since', '1h', 'talker'])).stdout, 'out 1\nout 2\nout 3\n');
  assert.is((await run(['logs', '--since', String(Math.ceil(Date.now() / 1000) + 60), 'talker'])).stdout, '');
  assert.match((await run(['ps', '-a'])).stdout, /Exited \(3\).*talker/);
  assert.not.match((await run(['ps'])).stdout, /talker/);
  const json = (await run(['ps', '-a', '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(json.map((m) => [m.name, m.state, m.exitCode]), [['talker', 'exited', 3]]);
  // start runs it again under a new supervisor; its output is appended
  assert.is((await run(['start', 'talker'])).code, 0);
  assert.is((await run(['wait', 'talker'])).stdout, '3\n');
  assert.is((await run(['logs', 'talker'])).stdout.split('\n').filter(Boolean).length, 6);
  const dup = await run(['-d', '--name', 'talker', 'bb:test', 'true']);
  assert.is(dup.code, 1);
  assert.match(dup.stderr, /name "talker" is already in use/);
  assert.is((await run(['rm', 'talker'])).code, 0);
  assert.is((await run(['inspect', 'talker'])).code, 2);
});

test('stop: the stop signal, then SIGKILL after the timeout; a process that handles SIGTERM exits at once', async () => {
  const stubborn = await detach(['bb:test', 'sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
  let t = Date.now();
  const stopped = await run(['stop', '-t', '1', stubborn]);
  assert.is(stopped.code, 0, stopped.stderr);
  const took = Date.now() - t;
  assert.ok(took >= 1000 && took < 5000, `took ${took} ms`);
  assert.is((await inspect(stubborn)).State.ExitCode, 137);
  const polite = await detach(['bb:test', 'sh', '-c', 'trap "exit 0" TERM; echo ready; while true; do sleep 0.1; done']);
  await until('the trap', async () => ((await run(['logs', polite])).stdout === 'ready\n' ? true : undefined));
  t = Date.now();
  assert.is((await run(['stop', polite])).code, 0);
  assert.ok(Date.now() - t < 2000);
  assert.is((await inspect(polite)).State.ExitCode, 0);
  const rmRunning = await detach(['bb:test', 'sleep', '30']);
  const refused = await run(['rm', rmRunning]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /cannot remove a running container/);
  assert.is((await run(['rm', '-f', rmRunning, stubborn, polite])).code, 0);
});

test('restart policy on-failure:3 runs it four times, then records the last exit code', async () => {
  const id = await detach(['--restart', 'on-failure:3', 'bb:test', 'sh', '-c', 'echo attempt; exit 4']);
  assert.is((await until('4 attempts', async () => ((await inspect(id)).State.Status === 'exited' ? true : undefined))), true);
  const info = await inspect(id);
  assert.is(info.State.ExitCode, 4);
  assert.is(info.RestartCount, 3);
  assert.is((await run(['logs', id])).stdout, 'attempt\nattempt\nattempt\nattempt\n');
  const fine = await detach(['--restart', 'on-failure:3', 'bb:test', 'true']);
  assert.is((await run(['wait', fine])).stdout, '0\n');
  assert.is((await inspect(fine)).RestartCount, 0);
  await run(['rm', '-f', id, fine]);
});

test('HEALTHCHECK: starting (failures in the start period do not count), unhealthy after the retries, healthy once the check passes; --health-cmd overrides', async () => {
  const id = await detach(['healthy:test']);
  assert.is((await inspect(id)).State.Health?.Status, 'starting');
  await until('unhealthy', async () => ((await inspect(id)).State.Health?.Status === 'unhealthy' ? true : undefined));
  assert.ok(((await inspect(id)).State.Health?.FailingStreak ?? 0) >= 2);
  assert.is((await run(['exec', id, 'touch', '/tmp/ready'])).code, 0);
  await until('healthy', async () => ((await inspect(id)).State.Health?.Status === 'healthy' ? true : undefined));
  assert.match((await run(['ps'])).stdout, /\(healthy\)/);
  const flag = await detach(['--health-cmd', 'exit 0', '--health-interval', '100ms', 'bb:test', 'sleep', '30']);
  await until('healthy by flag', async () => ((await inspect(flag)).State.Health?.Status === 'healthy' ? true : undefined));
  const none = await detach(['--no-healthcheck', 'healthy:test']);
  assert.is((await inspect(none)).State.Health, undefined);
  await run(['rm', '-f', id, flag, none]);
});

test('kill -9 of the supervisor: the container runs on, its log keeps growing, its exit code is still recorded', async () => {
  const id = await detach(['bb:test', 'sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done']);
  const [worker, watchdog] = supervisors(id) as [number, number];
  process.kill(worker, 'SIGKILL');
  await sleep(300);
  assert.ok(!alive(worker) && alive(watchdog));
  const before = (await run(['logs', id])).stdout.length;
  await sleep(400);
  assert.ok((await run(['logs', id])).stdout.length > before, 'the log keeps growing');
  assert.is((await inspect(id)).State.Status, 'running');
  assert.is((await run(['exec', id, 'true'])).code, 0);
  assert.is((await run(['kill', '-s', 'TERM', id])).code, 0); // PID 1 sh ignores TERM: nothing happens
  await sleep(200);
  assert.is((await inspect(id)).State.Status, 'running');
  assert.is((await run(['kill', id])).code, 0);
  assert.is((await run(['wait', id])).stdout, '137\n');
  // both supervisor processes killed: still running, reported as unsupervised; then honestly "unknown"
  const lone = await detach(['bb:test', 'sh', '-c', 'while true; do echo x; sleep 0.1; done']);
  for (const pid of supervisors(lone)) process.kill(pid, 'SIGKILL');
  await sleep(300);
  const s = await inspect(lone);
  assert.is(s.State.Status, 'running');
  assert.match(s.State.Error, /supervisor was killed/);
  const len = (await run(['logs', lone])).stdout.length;
  await sleep(300);
  assert.ok((await run(['logs', lone])).stdout.length > len);
  assert.is((await run(['kill', lone])).code, 0);
  const after = await until('exited', async () => { const x = await inspect(lone); return x.State.Status === 'exited' ? x : undefined; });
  assert.is(after.State.ExitCode, null);
  assert.match(after.State.Error, /exit code unknown/);
  assert.match((await run(['ps', '-a'])).stdout, /Exited \(unknown\)/);
  await run(['rm', '-f', id, lone]);
});

test('20 containers at once; their supervisors keep at most 5 MB each; rm -f leaves no mount nor cgroup', async () => {
  const ids = await Promise.all(Array.from({ length: 20 }, () => detach(['bb:test', 'sleep', '300'])));
  const running = (await run(['ps', '-q'])).stdout.trim().split('\n');
  assert.is(running.length, 20);
  let rss = 0;
  for (const id of ids) for (const pid of supervisors(id)) rss += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
  const perContainer = rss / 20;
  console.log(`supervisor RSS per container: ${(perContainer / 1024 / 1024).toFixed(2)} MB`);
  assert.ok(perContainer <= 5 * 1024 * 1024, `${perContainer} bytes`);
  assert.is((await run(['rm', '-f', ...ids])).code, 0);
  assert.is((await run(['ps', '-a', '-q'])).stdout, '');
  assert.not.ok(readFileSync('/proc/mounts', 'utf8').includes(p.root));
  const cg = execFileSync('sh', ['-c', 'ls /sys/fs/cgroup/memory/tsd/ 2>/dev/null || true']).toString();
  for (const id of ids) assert.not.ok(cg.includes(id));
});

test('-p publishes a port without iptables: busybox httpd read on 127.0.0.1', async () => {
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address() as { port: number };
      s.close(() => r(a.port));
    });
  });
  const id = await detach(['-p', `127.0.0.1:${port}:80`, 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  const body = await until('http', () =>
    new Promise<string | undefined>((r) => {
      get({ host: '127.0.0.1', port, path: '/index.html' }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => r(res.statusCode === 200 ? b : undefined));
      }).on('error', () => r(undefined));
    }),
  );
  assert.is(body, 'hello from busybox httpd\n');
  assert.match((await run(['ps'])).stdout, new RegExp(`127.0.0.1:${port}->80/tcp`));
  assert.match((await run(['top', id])).stdout, /httpd/);
  await run(['rm', '-f', id]);
  // without -d: the same proxy, the container attached to our stdout/stderr, its exit code ours
  const fg = run(['--rm', '-p', `127.0.0.1:${port}:8080`, 'bb:test', 'sh', '-c', 'httpd -p 8080 -h /www; echo serving; sleep 1.5; echo done >&2; exit 4']);
  const again = await until('http in the foreground', () =>
    new Promise<string | undefined>((r) => {
      get({ host: '127.0.0.1', port, path: '/index.html' }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => r(res.statusCode === 200 ? b : undefined));
      }).on('error', () => r(undefined));
    }),
  );
  assert.is(again, 'hello from busybox httpd\n');
  const ended = await fg;
  assert.equal([ended.code, ended.stdout, ended.stderr], [4, 'serving\n', 'done\n']);
  const bad = await run(['-d', '-p', '80', 'bb:test', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /-p 80: a host port is required/);
});

test('exec -e -w -u and its exit codes; restart; top; names and ID prefixes', async () => {
  const id = await detach(['--name', 'box', 'bb:test', 'sleep', '30']);
  assert.is((await run(['exec', '-e', 'X=1', '-w', '/tmp', '-u', '1000:1000', 'box', 'sh', '-c', 'echo $X $(pwd) $(id -u)'])).stdout, '1 /tmp 1000\n');
  assert.is((await run(['exec', id.slice(0, 6), 'sh', '-c', 'exit 3'])).code, 3);
  assert.is((await run(['exec', '-u', 'alice', 'box', 'sh', '-c', 'echo $(id -un) $(id -G) $HOME'])).stdout, 'alice 1000 10 50 /home/alice\n');
  assert.match((await run(['exec', '-u', 'mallory', 'box', 'true'])).stderr, /unable to find user mallory/);
  const nf = await run(['exec', 'box', 'nope']);
  assert.equal([nf.code, nf.stderr], [127, 'tsd-run: exec nope: executable file not found in $PATH\n']);
  assert.is((await run(['exec', 'box', '/etc'])).code, 126);
  const before = (await inspect('box')) as unknown as { State: { StartedAt: string; Pid: number } };
  assert.is((await run(['restart', '-t', '0', 'box'])).code, 0);
  const after = (await inspect('box')) as unknown as { State: { StartedAt: string; Pid: number; Status: string } };
  assert.is(after.State.Status, 'running');
  assert.ok(after.State.StartedAt > before.State.StartedAt && after.State.Pid !== before.State.Pid);
  assert.match((await run(['top', 'box'])).stdout, /sleep 30/);
  const gone = await run(['stop', 'no-such-container']);
  assert.equal([gone.code, gone.stderr], [2, 'tsd-run: container no-such-container: no such container\n']);
  await run(['rm', '-f', id]);
});

test.after(async () => {
  for (const id of (await run(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean)) await run(['rm', '-f', id]);
  removeDir(p.root);
});

test.run();
