// tsd-build end to end: the real binaries (tsd-ctx, tsd-build) with runc, checked on what a user
// sees: the image's config and file tree, stdout JSON, stderr errors naming the Dockerfile line,
// exit codes, and the cache's behaviour (what re-runs, what is written).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StorePaths } from '../../src/store/layout.js';
import { REPO, removeDir, tempStore, type FileSpec } from '../support/tsd.js';
import { startRegistry } from '../support/registry.js';
import { BUSYBOX, imageTree, makeBusybox } from './support.js';
import { BASE, blobCount, cachedSteps, harness, ok, type Harness } from './harness.js';

let h: Harness;
let p: StorePaths;
test.before(async () => {
  h = await harness();
  p = h.p;
});
test.after(() => h.cleanup());
const build: Harness['build'] = (...a) => h.build(...a);
const buildAsync: Harness['buildAsync'] = (...a) => h.buildAsync(...a);

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

test('independent stages build at the same time (each waits to see the other one running)', async () => {
  // each stage leaves a mark in a shared cache dir and waits up to 10 s for the other's: built
  // one after the other, the first would give up
  const wait = (me: string, other: string) => `RUN --mount=type=cache,id=meet,target=/m touch /m/${me} && i=0; while [ ! -e /m/${other} ]; do i=$((i+1)); [ $i -gt 100 ] && exit 4; sleep 0.1; done`;
  const df = `${BASE} AS a\n${wait('a', 'b')}\nRUN echo a > /a\n\n${BASE} AS b\n${wait('b', 'a')}\nRUN echo b > /b\n\n${BASE}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n`;
  const r = ok(build([], df, ['-t', 'parallel-stages', '--no-cache']));
  const t = await imageTree(p, r.ref!);
  assert.is(t.tree.get('a')?.content, 'a\n');
  assert.is(t.tree.get('b')?.content, 'b\n');
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

test.run();

