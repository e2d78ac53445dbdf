// Published ports beyond TCP over IPv4: UDP (a static UDP echo server in the container, answered
// through the published port, one session per client address) and IPv6 host addresses
// (`-p [::1]:PORT:80`, busybox httpd read over ::1); a port in use fails the start with one line.
// A -p without an IP is published on 0.0.0.0 and [::] as Docker does (TCP and UDP, read over
// 127.0.0.1 and ::1), on 0.0.0.0 only where the host has no IPv6 (a network namespace with IPv6
// disabled), and an explicit 0.0.0.0 binds IPv4 only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { hostBindings, parseBindings } from '../../src/run/ports.js';
import { REPO, removeDir, tempDir } from '../support/tsd.js';
import { busyboxImage } from './busybox.js';
import { detach, p, run, setup, supervisors, teardown, until } from './detached-support.js';

const HERE = new URL('.', import.meta.url).pathname;
let build = '';

test.before(async () => {
  await setup();
  // busybox's nc has no -u: a 20-line static echo server (fixtures/udp-echo.c) built here
  build = tempDir('tsd-udp-echo-');
  execFileSync('cc', ['-static', '-O2', '-o', join(build, 'udp-echo'), join(HERE, 'fixtures', 'udp-echo.c')]);
  await busyboxImage(p(), 'docker.io/library/udp:test', { Cmd: ['udp-echo', '9000'], Env: ['PATH=/bin'] }, [[{ name: 'bin/udp-echo', content: readFileSync(join(build, 'udp-echo')), mode: 0o755 }]]);
});

const freePort = (type: 'tcp' | 'udp', host = '127.0.0.1'): Promise<number> =>
  new Promise((r) => {
    if (type === 'tcp') {
      const s = createServer().listen(0, host, () => {
        const a = s.address() as { port: number };
        s.close(() => r(a.port));
      });
    } else {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.bind(0, host, () => {
        const a = s.address();
        s.close(() => r(a.port));
      });
    }
  });

/** Does this host have IPv6 loopback (::1)? Where not, the IPv6 assertions are skipped. */
const HAS_V6 = Object.values(networkInterfaces()).some((as) => as?.some((a) => a.family === 'IPv6' && a.address === '::1'));

/** A port free on every address of both families (a dual-stack socket on [::]), or of one host's. */
const freeBoth = (type: 'tcp' | 'udp'): Promise<number> => freePort(type, HAS_V6 ? '::' : '0.0.0.0');

/** Sends `text` from a fresh client socket; the reply, or undefined after 500 ms. */
const ask = (port: number, text: string, host = '127.0.0.1'): Promise<string | undefined> =>
  new Promise((r) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => {
      s.close();
      r(undefined);
    }, 500);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      r(m.toString());
    });
    s.send(text, port, host);
  });

test('-p HOST:CONTAINER/udp: a UDP echo server in the container answers through the published port, each client its own reply', async () => {
  const port = await freePort('udp');
  const id = await detach(['-p', `127.0.0.1:${port}:9000/udp`, 'udp:test']);
  assert.is(await until('the first echo', () => ask(port, 'ping')), 'echo:ping');
  // two clients at once: each gets the answer to its own datagram (a session per client address)
  const [a, b] = await Promise.all([ask(port, 'from-a'), ask(port, 'from-b')]);
  assert.equal([a, b], ['echo:from-a', 'echo:from-b']);
  const big = 'x'.repeat(1400);
  assert.is(await ask(port, big), `echo:${big}`);
  assert.match((await run(['ps'])).stdout, new RegExp(`127.0.0.1:${port}->9000/udp`));
  assert.is((await run(['rm', '-f', id])).code, 0);
  // the container is gone: so is the port (nothing answers, and it can be bound again)
  assert.is(await ask(port, 'anyone?'), undefined);
  const again = await detach(['-p', `127.0.0.1:${port}:9000/udp`, 'udp:test']);
  assert.is(await until('the echo of a second container on the same port', () => ask(port, 'again')), 'echo:again');
  await run(['rm', '-f', again]);
});

const http = (host: string, port: number): Promise<string | undefined> =>
  new Promise((r) => {
    get({ host, port, path: '/index.html', family: host.includes(':') ? 6 : 4 }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => r(res.statusCode === 200 ? b : undefined));
    }).on('error', () => r(undefined));
  });

test('-p [::1]:HOST:CONTAINER: published on the IPv6 loopback only', async () => {
  const port = await freePort('tcp', '::1');
  const id = await detach(['-p', `[::1]:${port}:80`, 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.is(await until('http over ::1', () => http('::1', port)), 'hello from busybox httpd\n');
  assert.is(await http('127.0.0.1', port), undefined, 'not on IPv4');
  assert.match((await run(['ps'])).stdout, new RegExp(`\\[::1\\]:${port}->80/tcp`));
  await run(['rm', '-f', id]);
});

test('-p HOST:CONTAINER without an IP: published on 0.0.0.0 and [::] (TCP), shown as Docker shows them, both freed by rm', async () => {
  const port = await freeBoth('tcp');
  const id = await detach(['-p', `${port}:80`, 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.is(await until('http over 127.0.0.1', () => http('127.0.0.1', port)), 'hello from busybox httpd\n');
  if (HAS_V6) assert.is(await http('::1', port), 'hello from busybox httpd\n', 'over ::1 too');
  const both = HAS_V6 ? `0.0.0.0:${port}->80/tcp, [::]:${port}->80/tcp` : `0.0.0.0:${port}->80/tcp`;
  assert.ok((await run(['ps'])).stdout.includes(` ${both} `), (await run(['ps'])).stdout);
  const ins = JSON.parse((await run(['inspect', id])).stdout) as { Config: { ports: { hostIp: string; hostPort: number }[] } };
  assert.equal(ins.Config.ports.map((b) => `${b.hostIp} ${b.hostPort}`), HAS_V6 ? [`0.0.0.0 ${port}`, `:: ${port}`] : [`0.0.0.0 ${port}`]);
  assert.is((await run(['rm', '-f', id])).code, 0);
  assert.is(await http('127.0.0.1', port), undefined, 'closed on IPv4 after rm');
  if (HAS_V6) assert.is(await http('::1', port), undefined, 'closed on IPv6 after rm');
});

test('-p HOST:CONTAINER/udp without an IP: the echo answers over 127.0.0.1 and ::1', async () => {
  const port = await freeBoth('udp');
  const id = await detach(['-p', `${port}:9000/udp`, 'udp:test']);
  assert.is(await until('the echo over 127.0.0.1', () => ask(port, 'ping4')), 'echo:ping4');
  if (HAS_V6) assert.is(await until('the echo over ::1', () => ask(port, 'ping6', '::1')), 'echo:ping6');
  if (HAS_V6) assert.match((await run(['ps'])).stdout, new RegExp(`0\\.0\\.0\\.0:${port}->9000/udp, \\[::\\]:${port}->9000/udp`));
  assert.is((await run(['rm', '-f', id])).code, 0);
  if (HAS_V6) assert.is(await ask(port, 'anyone?', '::1'), undefined);
});

test('-p 0.0.0.0:HOST:CONTAINER: an explicit IP binds only that address', async () => {
  const port = await freeBoth('tcp');
  const id = await detach(['-p', `0.0.0.0:${port}:80`, 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.is(await until('http over 127.0.0.1', () => http('127.0.0.1', port)), 'hello from busybox httpd\n');
  if (HAS_V6) assert.is(await http('::1', port), undefined, 'not on IPv6');
  const ps = (await run(['ps'])).stdout;
  assert.match(ps, new RegExp(`0\\.0\\.0\\.0:${port}->80/tcp`));
  assert.not.match(ps, /\[::\]/);
  await run(['rm', '-f', id]);
});

test('a host without IPv6 (a network namespace with IPv6 disabled): -p without an IP publishes on 0.0.0.0 only, and starts', async () => {
  // pure part: the [::] twin is optional and goes where the host has no ::1
  const twins = parseBindings('8080:80/udp');
  assert.ok(twins._tag === 'Right');
  if (twins._tag === 'Right') {
    assert.equal(hostBindings(twins.right, () => true).map((b) => b.hostIp), ['0.0.0.0', '::']);
    assert.equal(hostBindings(twins.right, () => false), [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
  }
  const port = await freeBoth('tcp');
  const bin = join(REPO, 'bin', 'tsd-run');
  // everything that needs the namespace runs in it: the start, a request through the port, ps, rm
  const script = [
    'set -e',
    'ip link set lo up',
    'for k in all default lo; do sysctl -qw net.ipv6.conf.$k.disable_ipv6=1; done',
    'test ! -s /proc/net/if_inet6',
    `id=$(${bin} -d -p ${port}:80 bb:test httpd -f -p 80 -h /www 2>&1) || { echo "start failed: $id"; exit 1; }`,
    'i=0; until body=$(busybox wget -q -O - http://127.0.0.1:' + port + '/index.html 2>/dev/null); do i=$((i+1)); [ $i -lt 100 ] || { echo "no http"; break; }; sleep 0.1; done',
    'echo "body: $body"',
    `${bin} ps | grep -o '[^ ]*->80/tcp[^ ]*\\( [^ ]*->80/tcp\\)*' | sed 's/^/ports: /'`,
    `${bin} rm -f "$(echo "$id" | tail -n 1 | sed 's/.*"id":"\\([0-9a-f]*\\)".*/\\1/')" >/dev/null`,
  ].join('\n');
  const out = execFileSync('unshare', ['-n', 'sh', '-c', script], { env: { ...process.env, TSD_ROOT: p().root }, encoding: 'utf8' });
  assert.match(out, /^body: hello from busybox httpd$/m);
  assert.match(out, new RegExp(`^ports: 0\\.0\\.0\\.0:${port}->80/tcp$`, 'm'));
  assert.is((await run(['ps', '-q'])).stdout, '', 'removed');
});

type Published = { NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[]> } };

test('-p CONTAINER (no host port): the kernel chooses one, on 0.0.0.0 and [::] alike; inspect, ps and the -d line show it; http over it', async () => {
  const r = await run(['-d', '-p', '80', 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  assert.is(r.code, 0, r.stderr);
  const line = JSON.parse(r.stdout) as { id: string; ports: string[] };
  const ins = JSON.parse((await run(['inspect', line.id])).stdout) as Published;
  const bound = ins.NetworkSettings.Ports['80/tcp'] ?? [];
  assert.equal(bound.map((b) => b.HostIp), HAS_V6 ? ['0.0.0.0', '::'] : ['0.0.0.0']);
  const port = Number(bound[0]?.HostPort);
  assert.ok(port > 0 && port < 65536, `a real port, not ${bound[0]?.HostPort}`);
  if (HAS_V6) assert.is(bound[1]?.HostPort, String(port), 'the [::] twin on the same port');
  assert.is(await until('http over the chosen port', () => http('127.0.0.1', port)), 'hello from busybox httpd\n');
  if (HAS_V6) assert.is(await http('::1', port), 'hello from busybox httpd\n');
  const both = HAS_V6 ? `0.0.0.0:${port}->80/tcp, [::]:${port}->80/tcp` : `0.0.0.0:${port}->80/tcp`;
  assert.ok((await run(['ps'])).stdout.includes(` ${both} `), (await run(['ps'])).stdout);
  assert.equal(line.ports, both.split(', '));
  // docker port: every published port, or one private port's host addresses
  const listed = await run(['port', line.id]);
  assert.is(listed.stdout, (HAS_V6 ? [`80/tcp -> 0.0.0.0:${port}`, `80/tcp -> [::]:${port}`] : [`80/tcp -> 0.0.0.0:${port}`]).map((l) => `${l}\n`).join(''), listed.stderr);
  assert.is((await run(['port', line.id, '80'])).stdout, (HAS_V6 ? [`0.0.0.0:${port}`, `[::]:${port}`] : [`0.0.0.0:${port}`]).map((l) => `${l}\n`).join(''));
  const none = await run(['port', line.id, '81/udp']);
  assert.is(none.code, 1);
  assert.match(none.stderr, /^tsd-run: port: no public port '81\/udp' published for \S+\n$/);
  // a second one gets another port
  const id2 = await detach(['-p', '80', 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
  const other = Number((JSON.parse((await run(['inspect', id2])).stdout) as Published).NetworkSettings.Ports['80/tcp']?.[0]?.HostPort);
  assert.ok(other > 0 && other !== port);
  // kill -9 of the supervisor's worker: the watchdog binds the same port again, not a new one
  const [worker] = supervisors(line.id) as [number];
  process.kill(worker, 'SIGKILL');
  await until('the watchdog to take over', async () => (supervisors(line.id).length === 1 ? true : undefined));
  assert.is(await until('http over the same port after the takeover', () => http('127.0.0.1', port)), 'hello from busybox httpd\n');
  assert.is((JSON.parse((await run(['inspect', line.id])).stdout) as Published).NetworkSettings.Ports['80/tcp']?.[0]?.HostPort, String(port));
  await run(['rm', '-f', line.id, id2]);
  assert.is(await http('127.0.0.1', port), undefined, 'closed after rm');
});

test('-p IP::CONTAINER/udp and -p IP::CONTAINER: the chosen port on that address only; the UDP echo answers over it', async () => {
  const id = await detach(['-p', '127.0.0.1::9000/udp', 'udp:test']);
  const ins = JSON.parse((await run(['inspect', id])).stdout) as Published;
  const bound = ins.NetworkSettings.Ports['9000/udp'] ?? [];
  assert.is(bound.length, 1);
  assert.is(bound[0]?.HostIp, '127.0.0.1');
  const port = Number(bound[0]?.HostPort);
  assert.ok(port > 0);
  assert.is(await until('the echo over the chosen port', () => ask(port, 'any')), 'echo:any');
  assert.match((await run(['ps'])).stdout, new RegExp(`127\\.0\\.0\\.1:${port}->9000/udp`));
  await run(['rm', '-f', id]);
  if (HAS_V6) {
    const id6 = await detach(['-p', '[::1]::80', 'bb:test', 'httpd', '-f', '-p', '80', '-h', '/www']);
    const b6 = (JSON.parse((await run(['inspect', id6])).stdout) as Published).NetworkSettings.Ports['80/tcp'] ?? [];
    assert.equal(b6.map((b) => b.HostIp), ['::1']);
    assert.is(await until('http over ::1', () => http('::1', Number(b6[0]?.HostPort))), 'hello from busybox httpd\n');
    await run(['rm', '-f', id6]);
  }
});

test('more host addresses than the supervisor serves: one line naming -p, 125, before anything is created', async () => {
  const many = Array.from({ length: 17 }, (_, i) => ['-p', `${20000 + i}:80`]).flat();
  const r = await run(['-d', ...many, 'bb:test', 'true']);
  assert.is(r.code, 125);
  assert.is(r.stderr, 'tsd-run: -p: at most 32 host addresses can be published (a -p without an IP binds two: 0.0.0.0 and [::])\n');
  assert.is((await run(['ps', '-a', '-q'])).stdout, '');
});

test('a host port already in use: the start fails with one line, 125, and leaves no container', async () => {
  const port = await freePort('tcp');
  const holder = createServer().listen(port, '127.0.0.1');
  await new Promise((r) => holder.once('listening', r));
  try {
    const r = await run(['-d', '--name', 'clash', '-p', `127.0.0.1:${port}:80`, 'bb:test', 'sleep', '5']);
    assert.is(r.code, 125);
    assert.is(r.stderr, `tsd-run: publish 127.0.0.1:${port}/tcp: the port is already in use\n`);
    assert.is(r.stdout, '');
    assert.not.match((await run(['ps', '-a'])).stdout, /clash/);
  } finally {
    holder.close();
  }
});

test.after(async () => {
  await teardown();
  removeDir(build);
});
test.run();
