// tsd-build end to end, the steps: RUN mounts and network, heredocs, ADD's URL and archives,
// layer compression, --output, --progress, --print; real binaries with runc, checked on the
// image's file tree, stdout and stderr.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StorePaths } from '../../src/store/layout.js';
import { REPO, removeDir, tempDir, type FileSpec } from '../support/tsd.js';
import { writeContext } from './peer.js';
import { imageTree } from './support.js';
import { BASE, cachedSteps, harness, ok, type Harness } from './harness.js';

let h: Harness;
let p: StorePaths;
test.before(async () => {
  h = await harness();
  p = h.p;
});
test.after(() => {
  h.cleanup();
  for (const d of dirs) removeDir(d);
});
const build: Harness['build'] = (...a) => h.build(...a);
const buildAsync: Harness['buildAsync'] = (...a) => h.buildAsync(...a);
const dirs: string[] = [];

test('RUN mounts: cache persists and stays out of the image, secret readable and not in a layer, bind and tmpfs', async () => {
  const secret = join(tempDir(), 'token');
  writeFileSync(secret, 's3cr3t');
  const df = `${BASE}\nRUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /count\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen\nRUN --mount=type=bind,source=data,target=/mnt cat /mnt/in.txt > /bound\nRUN --mount=type=tmpfs,target=/scratch touch /scratch/t && ls /scratch > /tmpfs-list\n`;
  const files: FileSpec[] = [{ name: 'data/in.txt', content: 'from context' }];
  const first = build(files, df, ['-t', 'mounts', '--no-cache', '--secret', `id=tok,src=${secret}`]);
  ok(first);
  ok(build([], df, ['-t', 'mounts', '--no-cache', '--secret', `id=tok,src=${secret}`], { dir: first.dir }));
  const t = await imageTree(p, 'mounts');
  assert.is(t.tree.get('count')?.content?.trim(), '2');
  assert.not.ok(t.tree.has('cache/log'));
  assert.is(t.tree.get('seen')?.content, 's3cr3t');
  assert.not.ok(t.tree.has('run/secrets/tok'));
  assert.is(t.tree.get('bound')?.content, 'from context');
  assert.is(t.tree.get('tmpfs-list')?.content, 't\n');
  assert.not.ok(t.tree.has('scratch/t'));
  assert.not.ok(t.tree.has('mnt/in.txt'));
  // a changed bound file re-runs the RUN that binds it
  writeFileSync(join(first.dir, 'data/in.txt'), 'changed');
  const again = build([], df, ['-t', 'mounts', '--secret', `id=tok,src=${secret}`], { dir: first.dir });
  ok(again);
  assert.equal(cachedSteps(again.stderr), ['#2', '#3']);
  assert.is((await imageTree(p, 'mounts')).tree.get('bound')?.content, 'changed');
});

test('RUN --network=none sees only loopback; the default is the host network', async () => {
  const r = ok(build([], `${BASE}\nRUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /none\nRUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /host\n`, ['-t', 'net']));
  const t = await imageTree(p, r.ref!);
  assert.is(t.tree.get('none')?.content, 'lo\n');
  const host = (t.tree.get('host')?.content ?? '').trim().split('\n');
  const ours = readdirSync('/sys/class/net');
  assert.equal(host.sort(), ours.sort());
});

test('heredocs: COPY <<EOF writes a file, RUN <<EOF runs a script', async () => {
  const r = ok(build([], `${BASE}\nCOPY <<EOF /etc/motd\nhello \${USER:-x}\nEOF\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n`, ['-t', 'heredoc']));
  const t = await imageTree(p, r.ref!);
  assert.ok(t.tree.get('etc/motd')?.content?.startsWith('hello '));
  assert.is(t.tree.get('h1')?.content, 'one\ntwo\n');
});

test('ADD: an http URL checked by --checksum (mode 0600), a wrong checksum fails naming the line, xz and bz2 archives unpack', async () => {
  const body = 'downloaded bytes\n';
  const sum = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  const server: Server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const r = ok(await buildAsync(`${BASE}\nADD --checksum=${sum} http://127.0.0.1:${port}/files/get.txt /dl/\n`, ['-t', 'addurl']));
    const t = await imageTree(p, r.ref!);
    assert.equal(t.tree.get('dl/get.txt'), { type: 'file', mode: 0o600, uid: 0, gid: 0, content: body });
    const bad = await buildAsync(`${BASE}\n\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/x /x\n`, []);
    assert.is(bad.code, 1);
    assert.match(bad.stderr.trim().split('\n').pop()!, /^tsd-build: Dockerfile:3: ADD: checksum of .* does not match/);
  } finally {
    server.close();
  }
  const dir = writeContext([{ name: 'Dockerfile', content: `${BASE}\nADD a.tar.xz /x/\nADD b.tar.bz2 /b/\n` }]);
  dirs.push(dir);
  spawnSync('sh', ['-c', 'mkdir t && echo xz > t/xz.txt && tar -cJf a.tar.xz -C t xz.txt && echo bz > t/bz.txt && tar -cjf b.tar.bz2 -C t bz.txt && rm -r t'], { cwd: dir });
  const r = ok(build([], '', ['-t', 'addarch'], { dir }));
  const t = await imageTree(p, r.ref!);
  assert.is(t.tree.get('x/xz.txt')?.content, 'xz\n');
  assert.is(t.tree.get('b/bz.txt')?.content, 'bz\n');
});

test('ADD over https trusts the certificates named by NODE_EXTRA_CA_CERTS (read by the first https request, not at start-up), and only those', async () => {
  const dir = tempDir();
  dirs.push(dir);
  // a CA, and a certificate for 127.0.0.1 signed by it
  const made = spawnSync(
    'sh',
    [
      '-c',
      `set -e
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=tsd-test-ca
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1
      printf 'subjectAltName=IP:127.0.0.1\n' > ext
      openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext`,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  assert.is(made.status, 0, made.stderr);
  const body = 'over tls\n';
  const server = createHttpsServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) }, (_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/tls.txt`;
  const { NODE_EXTRA_CA_CERTS: _, TSD_EXTRA_CA_CERTS: __, ...plain } = process.env;
  try {
    const trusted = ok(await buildAsync(`${BASE}\nADD ${url} /dl/\n`, ['-t', 'addtls', '--no-cache'], undefined, { ...plain, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }));
    assert.is((await imageTree(p, trusted.ref!)).tree.get('dl/tls.txt')?.content, body);
    const untrusted = await buildAsync(`${BASE}\nADD ${url} /dl/\n`, ['--no-cache'], undefined, plain);
    assert.is(untrusted.code, 1);
    assert.match(untrusted.stderr.trim().split('\n').pop()!, /^tsd-build: Dockerfile:2: ADD: fetch https:\/\/127\.0\.0\.1:\d+\/tls\.txt: UNABLE_TO_VERIFY_LEAF_SIGNATURE /);
    // a file that holds no certificate is skipped with a warning, as Node skips it
    writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
    const junk = await buildAsync(`${BASE}\nADD ${url} /dl/\n`, ['--no-cache'], undefined, { ...plain, NODE_EXTRA_CA_CERTS: join(dir, 'junk.pem') });
    assert.is(junk.code, 1);
    assert.match(junk.stderr, new RegExp(`warning: NODE_EXTRA_CA_CERTS ${join(dir, 'junk.pem')}: .*; not trusted`));
  } finally {
    server.close();
  }
});

test('--compression zstd and none write layers of those types, which build on again', async () => {
  for (const c of ['zstd', 'none'] as const) {
    const r = ok(build([], `${BASE}\nRUN echo ${c} > /c\n`, ['-t', `comp-${c}`, '--compression', c]));
    const child = ok(build([], `FROM ${r.ref}\nRUN cat /c > /again\n`, ['-t', `comp-${c}-child`]));
    const t = await imageTree(p, child.ref!);
    assert.is(t.tree.get('again')?.content, `${c}\n`);
    const inspect = spawnSync(join(REPO, 'bin/tsd-store'), ['inspect', r.ref!], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
    const { manifest, config } = JSON.parse(inspect.stdout);
    const layers = manifest.layers;
    assert.is(layers[layers.length - 1].mediaType, c === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar');
    // a plain tar layer is its own diff: the same digest
    if (c === 'none') assert.is(config.rootfs.diff_ids[config.rootfs.diff_ids.length - 1], layers[layers.length - 1].digest);
  }
});

test('--output oci-archive:- writes an OCI archive skopeo reads, and tags nothing', () => {
  const dir = writeContext([{ name: 'Dockerfile', content: `${BASE}\nRUN echo archived > /a\n` }]);
  dirs.push(dir);
  const out = join(tempDir(), 'img.tar');
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} -q -t archived --output oci-archive:- > "$1"`, dir, out], {
    encoding: 'utf8',
    env: { ...process.env, TSD_ROOT: p.root },
  });
  assert.is(r.status, 0, r.stderr);
  const inspected = spawnSync('skopeo', ['inspect', '--config', `oci-archive:${out}`], { encoding: 'utf8' });
  assert.is(inspected.status, 0, inspected.stderr);
  assert.is(JSON.parse(inspected.stdout).rootfs.diff_ids.length, 2);
  const ls = spawnSync(join(REPO, 'bin/tsd-store'), ['ls', '--format', '{{.Repository}}'], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  assert.not.match(ls.stdout, /archived/);
});

test('--output type=tar,dest=- and type=local,dest=DIR write the merged file tree (whiteouts applied); docker-archive:FILE loads in podman', () => {
  const df =
    `${BASE}\nRUN mkdir -p /app/gone /app/op && echo one > /app/keep && echo x > /app/gone/f && echo old > /app/op/old\n` +
    `RUN rm -rf /app/gone /app/op && mkdir /app/op && echo new > /app/op/new && echo two > /app/keep && ln -s keep /app/link\n`;
  const dir = writeContext([{ name: 'Dockerfile', content: df }]);
  dirs.push(dir);
  const work = tempDir();
  dirs.push(work);
  const run = (args: string) =>
    spawnSync('bash', ['-o', 'pipefail', '-c', `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} -q ${args}`, dir], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root }, maxBuffer: 64 << 20 });
  const tarOut = run(`--output type=tar,dest=- > ${work}/fs.tar`);
  assert.is(tarOut.status, 0, tarOut.stderr);
  const listing = spawnSync('tar', ['-tvf', `${work}/fs.tar`], { encoding: 'utf8' }).stdout;
  assert.match(listing, /app\/keep/);
  assert.match(listing, /app\/link -> keep/);
  assert.match(listing, /bin\/busybox/);
  assert.not.match(listing, /gone/);
  // /app/op was replaced (an opaque directory in the second layer): only its new content shows
  assert.match(listing, /app\/op\/new/);
  assert.not.match(listing, /app\/op\/old/);
  assert.not.match(listing, /\.wh\./);
  const keep = spawnSync('tar', ['-xOf', `${work}/fs.tar`, 'app/keep'], { encoding: 'utf8' });
  assert.is(keep.stdout, 'two\n');
  const local = run(`--output type=local,dest=${work}/root`);
  assert.is(local.status, 0, local.stderr);
  assert.is(readFileSync(join(work, 'root/app/keep'), 'utf8'), 'two\n');
  assert.is(readlinkSync(join(work, 'root/app/link')), 'keep');
  assert.not.ok(existsSync(join(work, 'root/app/gone')));
  // a directory that is not empty is refused, naming it
  const again = run(`--output type=local,dest=${work}/root`);
  assert.is(again.status, 1);
  assert.match(again.stderr, /not empty/);
  const archive = run(`-t localhost/exported:1 --output docker-archive:${work}/img.tar`);
  assert.is(archive.status, 0, archive.stderr);
  const loaded = spawnSync('podman', ['load', '-q', '-i', `${work}/img.tar`], { encoding: 'utf8' });
  assert.is(loaded.status, 0, loaded.stderr);
  const shown = spawnSync('podman', ['run', '--rm', '--network', 'none', 'localhost/exported:1', 'cat', '/app/keep'], { encoding: 'utf8' });
  spawnSync('podman', ['rmi', '-f', 'localhost/exported:1'], { stdio: 'ignore' });
  assert.is(shown.stdout, 'two\n', shown.stderr);
  const bad = run('--output type=zip,dest=x');
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /^tsd-build: --output=type=zip,dest=x: expected/);
});

test('RUN --mount=type=cache,sharing=private: a RUN never shares its instance with another private RUN running at once; instances persist', async () => {
  // two builds meet in a shared cache dir (the rendezvous), each while holding its private one
  const df = (me: string, other: string) =>
    `${BASE}\nRUN --mount=type=cache,id=rv,target=/rv --mount=type=cache,id=priv,target=/c,sharing=private ` +
    `touch /c/${me} /rv/${me}; i=0; while [ ! -e /rv/${other} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; ls /c > /seen\n`;
  const [a, b] = await Promise.all([buildAsync(df('a', 'b'), ['-t', 'priv-a', '--no-cache']), buildAsync(df('b', 'a'), ['-t', 'priv-b', '--no-cache'])]);
  ok(a);
  ok(b);
  const seenA = (await imageTree(p, 'priv-a')).tree.get('seen')?.content ?? '';
  const seenB = (await imageTree(p, 'priv-b')).tree.get('seen')?.content ?? '';
  // each saw its own marker and not the other's (with sharing=shared both would see both)
  assert.ok(seenA.split('\n').includes('a') && !seenA.split('\n').includes('b'), seenA);
  assert.ok(seenB.split('\n').includes('b') && !seenB.split('\n').includes('a'), seenB);
  // alone, a private RUN takes the first instance again: warm, with what it left there
  const c = ok(build([], `${BASE}\nRUN --mount=type=cache,id=priv,target=/c,sharing=private ls /c > /seen\n`, ['-t', 'priv-c', '--no-cache']));
  const seenC = (await imageTree(p, c.ref!)).tree.get('seen')?.content ?? '';
  assert.ok(seenC === 'a\n' || seenC === 'b\n', seenC);
});

test('--progress=json: one progress event per line on stderr, stdout stays the image line', () => {
  const b = build([], `${BASE}\nRUN echo out-line\n`, ['--progress=json', '--no-cache']);
  // the last --progress wins with cmd-ts: the helper's plain is replaced
  ok(b);
  const events = b.stderr.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(events.every((e) => e.v === 1 && e.type === 'progress' && e.tool === 'tsd-build'));
  assert.ok(events.some((e) => e.event === 'log' && e.line === 'out-line'));
  assert.ok(events.some((e) => e.event === 'done' && typeof e.ms === 'number'));
});

test('on a terminal: a live view that redraws its step lines (script(1) gives the pty)', () => {
  const dir = writeContext([{ name: 'Dockerfile', content: `${BASE}\nRUN sleep 0.6 && echo live\n` }]);
  dirs.push(dir);
  const cmd = `${join(REPO, 'bin/tsd-build')} --no-cache --context ${dir} -t live-view`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  assert.is(r.status, 0, r.stdout);
  assert.match(r.stdout, /\x1b\[\d+A/, 'moves the cursor up to redraw');
  assert.match(r.stdout, / => \[stage-0 1\/1\] RUN sleep 0\.6 && echo live {2}DONE \d+\.\ds/);
  assert.not.match(r.stdout, /^#\d+ /m, 'no plain lines on a terminal');
});

test('--print prints the parsed Dockerfile as JSON and builds nothing', () => {
  const b = build([], `${BASE}\nARG V=1\nRUN echo $V\n`, ['--print']);
  assert.is(b.code, 0, b.stderr);
  const printed = JSON.parse(b.stdout);
  assert.ok(Array.isArray(printed.stages));
  assert.not.match(b.stderr, /#\d/);
});

test.run();

