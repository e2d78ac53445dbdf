// Published ports beyond TCP over IPv4: UDP (a static UDP echo server in the container, answered
// through the published port, one session per client address) and IPv6 host addresses
// (`-p [::1]:PORT:80`, busybox httpd read over ::1); a port in use fails the start with one line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { removeDir, tempDir } from '../support/tsd.js';
import { busyboxImage } from './busybox.js';
import { detach, p, run, setup, teardown, until } from './detached-support.js';

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

/** Sends `text` from a fresh client socket; the reply, or undefined after 500 ms. */
const ask = (port: number, text: string): Promise<string | undefined> =>
  new Promise((r) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      r(undefined);
    }, 500);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      r(m.toString());
    });
    s.send(text, port, '127.0.0.1');
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
