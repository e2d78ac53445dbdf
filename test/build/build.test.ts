// tsd-build end to end: the real binaries (tsd-ctx, tsd-build) with runc, checked on what a user
// sees: the image's config and file tree, stdout JSON, stderr errors naming the Dockerfile line,
// exit codes, and the cache's behaviour (what re-runs, what is written).
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { paths, type StorePaths } from '../../src/store/layout.js';
import { REPO, removeDir, tempDir, tempStore, type FileSpec } from '../support/tsd.js';
import { writeContext } from './peer.js';
import { startRegistry } from '../support/registry.js';
import { BUSYBOX, imageTree, makeBusybox } from './support.js';

let p: StorePaths;
const dirs: string[] = [];

test.before(async () => {
  p = await tempStore();
  await makeBusybox(p);
});
test.after(() => {
  removeDir(p.root);
  for (const d of dirs) removeDir(d);
});

interface Built {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly dir: string;
}

/** `tsd-ctx DIR | tsd-build ARGS` as a user types it. */
const build = (files: readonly FileSpec[], dockerfile: string, args: readonly string[] = [], opts: { dir?: string; env?: NodeJS.ProcessEnv; root?: string } = {}): Built => {
  const dir = opts.dir ?? writeContext([...files, { name: 'Dockerfile', content: dockerfile }]);
  if (!opts.dir) dirs.push(dir);
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} --progress=plain "$@"`, dir, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TSD_ROOT: opts.root ?? p.root, ...opts.env },
  });
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr, dir };
};

/** The same, without blocking this process (for tests that serve HTTP to the build). */
const buildAsync = (dockerfile: string, args: readonly string[], root = p.root): Promise<Built> =>
  new Promise((done) => {
    const dir = writeContext([{ name: 'Dockerfile', content: dockerfile }]);
    dirs.push(dir);
    const child = spawn('bash', ['-o', 'pipefail', '-c', `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} --progress=plain "$@"`, dir, ...args], {
      env: { ...process.env, TSD_ROOT: root },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr, dir }));
  });

const ok = (b: Built): { ref?: string; digest: string; config: string } => {
  assert.is(b.code, 0, b.stderr);
  const line = JSON.parse(b.stdout.trim().split('\n')[0]!);
  assert.is(line.type, 'image');
  return line;
};

const BASE = `FROM ${BUSYBOX}`;
const blobCount = (root: string): number => readdirSync(join(root, 'blobs', 'sha256')).length;
/** The step numbers whose output says CACHED, and those that ran a RUN. */
const cachedSteps = (stderr: string): string[] => stderr.split('\n').filter((l) => / CACHED$/.test(l)).map((l) => l.split(' ')[0]!);

test('a failing RUN: exit 1, one stderr line naming the Dockerfile line, the exit code and the output tail', () => {
  const b = build([], `${BASE}\nRUN true\nRUN echo first-line && echo "something broke" >&2 && exit 7\nRUN echo never\n`, ['-t', 'fails']);
  assert.is(b.code, 1);
  const last = b.stderr.trim().split('\n').pop()!;
  assert.match(last, /^tsd-build: Dockerfile:3: RUN .*did not complete successfully: exit code 7/);
  assert.match(last, /something broke/);
  assert.is(b.stdout, '');
  assert.not.match(b.stderr, /echo never/);
});

test('errors name the line: a missing COPY source, an unknown base, an unsupported mount', () => {
  const missing = build([], `${BASE}\nCOPY nothere.txt /x\n`);
  assert.is(missing.code, 1);
  assert.match(missing.stderr.trim().split('\n').pop()!, /^tsd-build: Dockerfile:2: COPY: "\/nothere.txt": not found$/);
  const base = build([], `FROM localhost/nope:1\nRUN true\n`, ['--pull=never']);
  assert.is(base.code, 2);
  assert.match(base.stderr, /Dockerfile:1: FROM localhost\/nope:1: .*not in the store/);
  const platform = build([], `FROM --platform=linux/s390x ${BUSYBOX}\n`);
  assert.is(platform.code, 1);
  assert.match(platform.stderr, /Dockerfile:1: FROM: platform linux\/s390x: tsd builds for the host platform/);
  const ssh = build([], `${BASE}\nRUN --mount=type=ssh true\n`);
  assert.is(ssh.code, 1);
  assert.match(ssh.stderr.trim().split('\n').pop()!, /Dockerfile:2: RUN: --mount=type=ssh is not supported/);
});

test('a base missing from the store is pulled from its registry', async () => {
  const registry = await startRegistry();
  try {
    const pushed = spawnSync(join(REPO, 'bin/tsd-push'), ['-q', BUSYBOX, `${registry.host}/base/busybox:1`], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
    assert.is(pushed.status, 0, pushed.stderr);
    const fresh = await tempStore();
    const r = ok(await buildAsync(`FROM ${registry.host}/base/busybox:1\nRUN echo pulled > /p\n`, ['-t', 'pulled-base'], fresh.root));
    const t = await imageTree(fresh, r.ref!);
    assert.is(t.tree.get('p')?.content, 'pulled\n');
    removeDir(fresh.root);
  } finally {
    await registry.stop();
  }
  const unreachable = await buildAsync('FROM 127.0.0.1:9/none:1\n', []);
  assert.is(unreachable.code, 2);
  assert.match(unreachable.stderr.trim().split('\n').pop()!, /^tsd-build: Dockerfile:1: FROM 127.0.0.1:9\/none:1: image .* not in the store, and pulling it failed: /);
});

test('config of every instruction: ENTRYPOINT resets CMD, history per step, empty layers marked', async () => {
  const r = ok(
    build([], `${BASE}\nMAINTAINER someone\nLABEL x=1\nEXPOSE 8000-8001\nENV A=1 B="two words"\nCMD ["base"]\nENTRYPOINT ["/bin/echo"]\nSTOPSIGNAL SIGTERM\nHEALTHCHECK NONE\nSHELL ["/bin/sh", "-xc"]\nVOLUME /v\nUSER app\nWORKDIR /home/app\nONBUILD RUN touch /tmp/triggered\n`, ['-t', 'cfg']),
  );
  const { config, layers } = await imageTree(p, r.ref!);
  const c = config.config!;
  assert.equal(c.Entrypoint, ['/bin/echo']);
  assert.equal(c.Cmd, ['base'], 'a CMD this stage set before ENTRYPOINT is kept');
  assert.equal(c.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1', 'B=two words']);
  assert.equal(c.ExposedPorts, { '8000/tcp': {}, '8001/tcp': {} });
  assert.equal(c.Healthcheck, { Test: ['NONE'] });
  assert.equal(c.Shell, ['/bin/sh', '-xc']);
  assert.equal(c.OnBuild, ['RUN touch /tmp/triggered']);
  assert.is(c.User, 'app');
  assert.is(c.WorkingDir, '/home/app');
  assert.is(config.author, 'someone');
  assert.is(layers, 1, 'WORKDIR of an existing dir adds no layer');
  const history = config.history!;
  assert.is(history.length, 1 + 13);
  assert.ok(history.slice(1).every((h) => h.empty_layer === true));
  // ONBUILD triggers run in the child and are not inherited
  const child = ok(build([], `FROM ${r.ref}\nRUN ls /tmp/triggered\n`, ['-t', 'child']));
  const t = await imageTree(p, child.ref!);
  assert.ok(t.tree.has('tmp/triggered'));
  assert.is(t.config.config?.OnBuild ?? null, null);
});

test('the cache: an unchanged rebuild runs no RUN and writes no blob; one changed file re-runs exactly its steps', async () => {
  const files: FileSpec[] = [
    { name: 'a.txt', content: 'a' },
    { name: 'b.txt', content: 'b' },
  ];
  const df = `${BASE}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.out\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b.out\n`;
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const first = build(files, df, ['-t', 'cached'], { env });
  const one = ok(first);
  const before = blobCount(p.root);
  const again = build([], df, ['-t', 'cached'], { dir: first.dir, env });
  assert.equal(ok(again).digest, one.digest);
  assert.equal(cachedSteps(again.stderr), ['#2', '#3', '#4', '#5']);
  assert.not.match(again.stderr, /#[2-9] DONE/);
  assert.is(blobCount(p.root), before, 'no blob written');
  writeFileSync(join(first.dir, 'b.txt'), 'B!');
  const changed = build([], df, ['-t', 'cached'], { dir: first.dir, env });
  ok(changed);
  assert.equal(cachedSteps(changed.stderr), ['#2', '#3']);
  assert.match(changed.stderr, /#4 DONE/);
  assert.match(changed.stderr, /#5 DONE/);
  const t = await imageTree(p, 'cached');
  assert.is(t.tree.get('b.out')?.content, 'B!');
  // the mtime of a file is not its content
  spawnSync('touch', ['-d', '2001-01-01', join(first.dir, 'a.txt')]);
  assert.equal(cachedSteps(build([], df, ['-t', 'cached'], { dir: first.dir, env }).stderr), ['#2', '#3', '#4', '#5']);
  const none = build([], df, ['-t', 'cached', '--no-cache'], { dir: first.dir, env });
  ok(none);
  assert.equal(cachedSteps(none.stderr), []);
});

test('SOURCE_DATE_EPOCH: two builds in two stores give the same digest; --context DIR is the same as stdin', async () => {
  const files: FileSpec[] = [{ name: 'f.txt', content: 'f' }];
  const df = `${BASE}\nCOPY f.txt /\nRUN echo made > /made && mkdir /d && touch /d/x\nCMD ["cat", "/made"]\n`;
  const other = await tempStore();
  await makeBusybox(other);
  const env = { SOURCE_DATE_EPOCH: '1600000000' };
  const a = build(files, df, ['-t', 'repro'], { env });
  const b = build([], df, ['-t', 'repro'], { dir: a.dir, env, root: other.root });
  assert.is(ok(a).digest, ok(b).digest);
  const direct = spawnSync(join(REPO, 'bin/tsd-build'), ['-q', '--context', a.dir, '--no-cache', '-t', 'repro2'], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: other.root, ...env } });
  assert.is(direct.status, 0, direct.stderr);
  assert.is(JSON.parse(direct.stdout).digest, ok(a).digest);
  const { config } = await imageTree(p, 'repro');
  assert.is(config.created, '2020-09-13T12:26:40Z');
  removeDir(other.root);
});

test('multi-stage: only needed stages run, --target, COPY --from an image', async () => {
  const df = `${BASE} AS one\nRUN echo one > /one\n\n${BASE} AS broken\nRUN exit 9\n\n${BASE} AS two\nCOPY --from=one /one /from-one\nRUN cat /from-one > /two\n\n${BASE}\nCOPY --from=two /two /final\nCOPY --from=${BUSYBOX} /etc/passwd /passwd-copy\n`;
  const r = ok(build([], df, ['-t', 'multi']));
  const t = await imageTree(p, r.ref!);
  assert.is(t.tree.get('final')?.content, 'one\n');
  assert.match(t.tree.get('passwd-copy')?.content ?? '', /^root:x:0:0/);
  const target = ok(build([], df, ['-t', 'multi-two', '--target', 'two']));
  const tt = await imageTree(p, target.ref!);
  assert.is(tt.tree.get('two')?.content, 'one\n');
  const broken = build([], df, ['--target', 'broken']);
  assert.is(broken.code, 1);
  assert.match(broken.stderr, /Dockerfile:5: RUN .*exit code 9/, broken.stderr);
});

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

test('--compression zstd and none write layers of those types, which build on again', async () => {
  for (const c of ['zstd', 'none'] as const) {
    const r = ok(build([], `${BASE}\nRUN echo ${c} > /c\n`, ['-t', `comp-${c}`, '--compression', c]));
    const child = ok(build([], `FROM ${r.ref}\nRUN cat /c > /again\n`, ['-t', `comp-${c}-child`]));
    const t = await imageTree(p, child.ref!);
    assert.is(t.tree.get('again')?.content, `${c}\n`);
    const inspect = spawnSync(join(REPO, 'bin/tsd-store'), ['inspect', r.ref!], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
    const layers = JSON.parse(inspect.stdout).manifest.layers;
    assert.is(layers[layers.length - 1].mediaType, c === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar');
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

test('--print prints the parsed Dockerfile as JSON and builds nothing', () => {
  const b = build([], `${BASE}\nARG V=1\nRUN echo $V\n`, ['--print']);
  assert.is(b.code, 0, b.stderr);
  const printed = JSON.parse(b.stdout);
  assert.ok(Array.isArray(printed.stages));
  assert.not.match(b.stderr, /#\d/);
});

void paths;
test.run();
