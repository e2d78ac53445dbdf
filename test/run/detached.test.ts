// Detached containers under tsd-supervisor, with the real runc: logs (-f, --tail, -t, --since),
// wait, start, stop with a timeout, the restart policy, health checks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { busyboxImage } from './busybox.js';
import { detach, inspect, p, run, setup, teardown, until } from './detached-support.js';

test.before(setup);

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
  assert.ok(Date.now() - t < 5000); // no 10 s timeout: SIGTERM ended it
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

test('--stop-signal (else the image\'s StopSignal), --stop-timeout as stop\'s default wait, --label merged over the image\'s labels', async () => {
  await busyboxImage(p(), 'docker.io/library/usr2:test', { Cmd: ['sh', '-c', 'trap "echo got-usr2; exit 12" USR2; echo ready; while true; do sleep 0.1; done'], Env: ['PATH=/bin'], StopSignal: 'SIGUSR2', Labels: { team: 'image', tier: 'base' } });
  const fromImage = await detach(['--label', 'team=ops', 'usr2:test']);
  await until('the trap', async () => ((await run(['logs', fromImage])).stdout === 'ready\n' ? true : undefined));
  assert.is((await run(['stop', fromImage])).code, 0);
  assert.is((await run(['logs', fromImage])).stdout, 'ready\ngot-usr2\n');
  const info = JSON.parse((await run(['inspect', fromImage])).stdout) as { State: { ExitCode: number }; Config: { labels: Record<string, string>; stopSignal: string } };
  assert.is(info.State.ExitCode, 12);
  assert.equal(info.Config.labels, { team: 'ops', tier: 'base' });
  assert.is(info.Config.stopSignal, 'SIGUSR2');
  const flagged = await detach(['--stop-signal', 'USR1', 'bb:test', 'sh', '-c', 'trap "echo got-usr1; exit 0" USR1; echo ready; while true; do sleep 0.1; done']);
  await until('the trap', async () => ((await run(['logs', flagged])).stdout === 'ready\n' ? true : undefined));
  assert.is((await run(['stop', flagged])).code, 0);
  assert.is((await run(['logs', flagged])).stdout, 'ready\ngot-usr1\n');
  // --stop-timeout 1: a stop without -t waits 1 s (not Docker's 10) before SIGKILL
  const stubborn = await detach(['--stop-timeout', '1', 'bb:test', 'sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done']);
  const t = Date.now();
  assert.is((await run(['stop', stubborn])).code, 0);
  const took = Date.now() - t;
  assert.ok(took >= 1000 && took < 8000, `took ${took} ms`);
  assert.is((await inspect(stubborn)).State.ExitCode, 137);
  await run(['rm', '-f', fromImage, flagged, stubborn]);
});

test.after(teardown);
test.run();
