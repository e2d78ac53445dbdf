// The supervisor itself, with the real runc: kill -9 of it, SIGTERM to it, 20 containers at once
// (and the memory their supervisors keep), port publishing without iptables, exec/restart/top.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { alive, detach, inspect, p, run, setup, sleep, supervisors, teardown, until } from './detached-support.js';

test.before(setup);

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
  // SIGTERM to the supervisor stops the container with its stop signal, and its exit is recorded
  const polite = await detach(['bb:test', 'sh', '-c', 'trap "echo stopping; exit 0" TERM; echo ready; while true; do sleep 0.1; done']);
  await until('the trap', async () => ((await run(['logs', polite])).stdout === 'ready\n' ? true : undefined));
  process.kill(supervisors(polite)[0] as number, 'SIGTERM');
  assert.is((await run(['wait', polite])).stdout, '0\n');
  assert.is((await run(['logs', polite])).stdout, 'ready\nstopping\n');
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
  await run(['rm', '-f', id, lone, polite]);
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
  assert.not.ok(readFileSync('/proc/mounts', 'utf8').includes(p().root));
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
  const bad = await run(['-d', '-p', '99999:80', 'bb:test', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /-p 99999:80: invalid host port/);
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
  const before = (await inspect('box'));
  assert.is((await run(['restart', '-t', '0', 'box'])).code, 0);
  const after = (await inspect('box'));
  assert.is(after.State.Status, 'running');
  assert.ok(after.State.StartedAt > before.State.StartedAt && after.State.Pid !== before.State.Pid);
  assert.match((await run(['top', 'box'])).stdout, /sleep 30/);
  const gone = await run(['stop', 'no-such-container']);
  assert.equal([gone.code, gone.stderr], [2, 'tsd-run: container no-such-container: no such container\n']);
  await run(['rm', '-f', id]);
});

test.after(teardown);
test.run();
