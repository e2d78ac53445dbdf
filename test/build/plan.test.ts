// The pure parts of the builder, table-tested: each instruction's effect on the config, COPY
// planning (wildcards, directory contents, destination rules, owners, modes), --chown and USER
// resolution, RUN argv, durations, cache keys; and the upper-dir diff on a hand-made overlay.
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyConfig, parseDuration, resolveIn, type StageConfig } from '../../src/build/config-effect.js';
import { globToRegExp, planCopy } from '../../src/build/copy.js';
import { cleanPath, cleanSegments, readContextTar, type BuildContext } from '../../src/build/context.js';
import { cacheKey } from '../../src/build/cache.js';
import { diffUpper } from '../../src/build/diff.js';
import { parseDockerfile } from '../../src/build/dockerfile/parse.js';
import type { Instruction } from '../../src/build/dockerfile/ast.js';
import { runArgv } from '../../src/build/step-run.js';
import { resolveOwner, resolveUser, type Tree, type TreeNode } from '../../src/build/tree.js';
import { layerTar, removeDir, tempDir } from '../support/tsd.js';

const one = (line: string): Instruction => {
  const df = parseDockerfile(`FROM scratch\n${line}\n`);
  if (E.isLeft(df)) throw new Error(df.left.message);
  return df.right.stages[0]!.instructions[0]!;
};

const apply = (lines: readonly string[], start: StageConfig = { config: {}, cmdSet: false }): StageConfig =>
  lines.reduce((s, l) => {
    const r = applyConfig(s, one(l), 'Dockerfile');
    if (E.isLeft(r)) throw new Error(r.left.message);
    return r.right;
  }, start);

test('config effects: ENTRYPOINT resets an inherited CMD but not one set in this stage', () => {
  const inherited: StageConfig = { config: { Cmd: ['sh'] }, cmdSet: false };
  assert.is(apply(['ENTRYPOINT ["/e"]'], inherited).config.Cmd, null);
  assert.equal(apply(['CMD ["x"]', 'ENTRYPOINT ["/e"]'], inherited).config.Cmd, ['x']);
  assert.equal(apply(['CMD echo hi']).config.Cmd, ['/bin/sh', '-c', 'echo hi']);
  assert.equal(apply(['SHELL ["/bin/bash", "-c"]', 'ENTRYPOINT run it']).config.Entrypoint, ['/bin/bash', '-c', 'run it']);
});

test('config effects: ENV keeps order and replaces, LABEL merges, EXPOSE expands ranges, VOLUME, WORKDIR relative', () => {
  const c = apply(['ENV A=1 B=2', 'ENV A=3', 'LABEL x=1 y=2', 'LABEL x=9', 'EXPOSE 80 53/udp 1000-1002/tcp', 'VOLUME /a /b', 'WORKDIR /srv', 'WORKDIR app/../web', 'USER 1:2', 'STOPSIGNAL 9']).config;
  assert.equal(c.Env, ['A=3', 'B=2']);
  assert.equal(c.Labels, { x: '9', y: '2' });
  assert.equal(Object.keys(c.ExposedPorts ?? {}), ['80/tcp', '53/udp', '1000/tcp', '1001/tcp', '1002/tcp']);
  assert.equal(Object.keys(c.Volumes ?? {}), ['/a', '/b']);
  assert.is(c.WorkingDir, '/srv/web');
  assert.is(c.User, '1:2');
  assert.is(c.StopSignal, '9');
  const bad = applyConfig({ config: {}, cmdSet: false }, one('EXPOSE 70000'), 'Dockerfile');
  assert.ok(E.isLeft(bad) && /Dockerfile:2: EXPOSE: invalid port range/.test(bad.left.message));
});

test('config effects: HEALTHCHECK durations, ONBUILD text, MAINTAINER', () => {
  const s = apply(['HEALTHCHECK --interval=1m30s --timeout=500ms --retries=4 CMD ["check"]', 'ONBUILD COPY . /src', 'MAINTAINER me <me@x>']);
  assert.equal(s.config.Healthcheck, { Test: ['CMD', 'check'], Interval: 90e9, Timeout: 5e8, Retries: 4 });
  assert.equal(s.config.OnBuild, ['COPY . /src']);
  assert.is(s.author, 'me <me@x>');
  assert.is(parseDuration('2h'), 7200e9);
  assert.is(parseDuration('soon'), undefined);
});

test('paths: cleanPath refuses escapes, resolveIn follows WORKDIR', () => {
  assert.is(cleanPath('./a//b/./c/'), 'a/b/c');
  assert.is(cleanPath('a/../../etc'), undefined);
  assert.is(cleanPath('/abs/x'), 'abs/x');
  assert.is(resolveIn('/w', 'x/../y'), '/w/y');
  assert.is(resolveIn('/w', '/../../z'), '/z');
});

test('paths: the fast path of cleanPath for plain names agrees with the segment walk on every name of up to 6 of a . / b', () => {
  const names: string[] = [''];
  for (let i = 0; i < names.length; i++) if (names[i]!.length < 6) for (const c of 'a./b') names.push(names[i] + c);
  for (const n of [...names, 'd0/s0/f1.dat', 'a/...', '..a/b..', 'x/.y/']) assert.is(cleanPath(n), cleanSegments(n), JSON.stringify(n));
});

test('globs follow Go filepath.Match: * and ? stop at /, classes and negation', () => {
  const cases: [string, string, boolean][] = [
    ['*.txt', 'a.txt', true],
    ['*.txt', 'a.md', false],
    ['?.txt', 'ab.txt', false],
    ['[a-c].js', 'b.js', true],
    ['[^a-c].js', 'b.js', false],
    ['[!a-c].js', 'z.js', true],
    ['a.b', 'axb', false],
  ];
  for (const [pattern, name, want] of cases) assert.is(globToRegExp(pattern).test(name), want, `${pattern} ~ ${name}`);
});

const contextOf = async (files: Parameters<typeof layerTar>[0]): Promise<BuildContext> => {
  const r = await readContextTar(Readable.from([await layerTar(files)]), tempDir());
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

const tree = (entries: Record<string, Partial<TreeNode>>): Tree =>
  new Map([['', { type: 'directory', mode: 0o755, uid: 0, gid: 0 }], ...Object.entries(entries).map(([k, v]) => [k, { type: 'directory', mode: 0o755, uid: 0, gid: 0, ...v } as TreeNode] as const)]);

const planned = (ctx: BuildContext, t: Tree, sources: string[], dest: string, extra: object = {}) => {
  const r = planCopy(ctx, t, { sources, dest, workdir: '/work', ...extra });
  if (E.isLeft(r)) return r.left;
  return r.right.entries.map((e) => `${e.type[0]} ${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.linkname ? ` -> ${e.linkname}` : ''}`);
};

test('COPY planning: destination rules, directory contents, wildcards, relative to WORKDIR', async () => {
  const ctx = await contextOf([
    { name: 'a.txt', content: 'a' },
    { name: 'b.txt', content: 'b', mode: 0o600 },
    { name: 'dir/', type: 'directory', mode: 0o750 },
    { name: 'dir/x', content: 'x' },
    { name: 'dir/sub/y', content: 'y' },
    { name: 'ln', type: 'symlink', linkname: 'a.txt' },
  ]);
  const t = tree({ work: {}, existing: {} });
  assert.equal(planned(ctx, t, ['a.txt'], '/new'), ['f new 644 0:0']);
  assert.equal(planned(ctx, t, ['a.txt'], '/existing'), ['f existing/a.txt 644 0:0'], 'an existing directory receives the file');
  assert.equal(planned(ctx, t, ['a.txt'], 'rel/'), ['d work/rel 755 0:0', 'f work/rel/a.txt 644 0:0']);
  assert.equal(planned(ctx, t, ['*.txt'], '/m/'), ['d m 755 0:0', 'f m/a.txt 644 0:0', 'f m/b.txt 600 0:0']);
  assert.equal(planned(ctx, t, ['dir'], '/d'), ['d d 750 0:0', 'd d/sub 755 0:0', 'f d/sub/y 644 0:0', 'f d/x 644 0:0']);
  assert.equal(planned(ctx, t, ['ln'], '/l'), ['f l 644 0:0'], 'a top-level symlink source is followed');
  assert.equal(planned(ctx, t, ['a.txt', 'b.txt'], '/nodir'), 'when using COPY with more than one source file, the destination must be a directory and end with a /');
  assert.equal(planned(ctx, t, ['nope'], '/x'), '"/nope": not found');
  assert.equal(planned(ctx, t, ['*.none'], '/x'), 'no source files were specified (nothing matches "*.none")');
  assert.equal(planned(ctx, t, ['../a.txt'], '/x'), 'source "../a.txt" is outside the build context');
  assert.equal(planned(ctx, t, ['b.txt'], '/o', { owner: { uid: 5, gid: 6 }, chmod: 0o640 }), ['f o 640 5:6']);
  await ctx.dispose();
});

test('COPY planning: the fingerprint changes with content, not with mtime', async () => {
  const a = await contextOf([{ name: 'f', content: 'one' }]);
  const b = await contextOf([{ name: 'f', content: 'two' }]);
  const fp = (c: BuildContext) => E.map((p: { fingerprint: string }) => p.fingerprint)(planCopy(c, tree({}), { sources: ['f'], dest: '/f', workdir: '/' }));
  assert.not.equal(fp(a), fp(b));
  assert.ok(cacheKey(['x', 1]) !== cacheKey(['x', 2]));
});

test('--chown and USER resolve names in the image', () => {
  const t: Tree = new Map<string, TreeNode>([
    ['etc/passwd', { type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n') }],
    ['etc/group', { type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('root:x:0:\nstaff:x:50:\n') }],
  ]);
  assert.equal(resolveOwner(t, 'app'), E.right({ uid: 1000, gid: 1000 }));
  assert.equal(resolveOwner(t, 'app:staff'), E.right({ uid: 1000, gid: 50 }));
  assert.equal(resolveOwner(t, '7:8'), E.right({ uid: 7, gid: 8 }));
  assert.ok(E.isLeft(resolveOwner(t, 'ghost')));
  assert.ok(E.isLeft(resolveOwner(t, 'app:ghosts')));
  assert.equal(resolveUser(t, 'app'), E.right({ uid: 1000, gid: 1001, additionalGids: [], home: '/home/app' }));
  assert.equal(E.map((u: { uid: number; gid: number }) => [u.uid, u.gid])(resolveUser(t, '42')), E.right([42, 0]));
});

test('RUN argv: shell form through SHELL, exec form as is, heredoc scripts', () => {
  const run = (l: string) => one(l) as Extract<Instruction, { keyword: 'RUN' }>;
  assert.equal(runArgv(run('RUN echo $HOME'), ['/bin/sh', '-c']), ['/bin/sh', '-c', 'echo $HOME']);
  assert.equal(runArgv(run('RUN ["a", "b"]'), ['/bin/sh', '-c']), ['a', 'b']);
  const df = parseDockerfile('FROM scratch\nRUN <<EOF\necho hi\nEOF\nRUN cat <<X > /f\nbody\nX\n');
  assert.ok(E.isRight(df));
  if (E.isRight(df)) {
    const [a, b] = df.right.stages[0]!.instructions as Extract<Instruction, { keyword: 'RUN' }>[];
    assert.equal(runArgv(a!, ['/bin/sh', '-c']), ['/bin/sh', '-c', 'echo hi\n']);
    assert.equal(runArgv(b!, ['/bin/sh', '-c']), ['/bin/sh', '-c', 'cat <<X > /f\nbody\nX\n']);
  }
});

test('diff of an upper dir: whiteouts, opaque directories, hard links, runtime mount points left out', async () => {
  const root = tempDir();
  const [lower, upper, merged] = ['lower', 'upper', 'merged'].map((d) => join(root, d)) as [string, string, string];
  for (const d of [lower, upper, merged]) mkdirSync(d);
  // lower: /gone, /dir/{a,b}, /keep/k
  mkdirSync(join(lower, 'dir'));
  writeFileSync(join(lower, 'dir/a'), 'a');
  writeFileSync(join(lower, 'dir/b'), 'b');
  writeFileSync(join(lower, 'gone'), 'g');
  mkdirSync(join(lower, 'keep'));
  writeFileSync(join(lower, 'keep/k'), 'k');
  // upper: gone deleted, dir replaced (only /dir/new visible), keep/k2 added, hard links, mount points made by runc
  execFileSync('mknod', [join(upper, 'gone'), 'c', '0', '0']);
  mkdirSync(join(upper, 'dir'));
  writeFileSync(join(upper, 'dir/new'), 'n');
  mkdirSync(join(upper, 'keep'));
  writeFileSync(join(upper, 'keep/k2'), 'k2');
  writeFileSync(join(upper, 'h1'), 'h');
  linkSync(join(upper, 'h1'), join(upper, 'h2'));
  symlinkSync('h1', join(upper, 's'));
  mkdirSync(join(upper, 'proc'));
  mkdirSync(join(upper, 'etc'));
  writeFileSync(join(upper, 'etc/resolv.conf'), '');
  // merged: what the container saw at the end
  mkdirSync(join(merged, 'dir'));
  writeFileSync(join(merged, 'dir/new'), 'n');
  mkdirSync(join(merged, 'keep'));
  writeFileSync(join(merged, 'keep/k'), 'k');
  writeFileSync(join(merged, 'keep/k2'), 'k2');
  const entries = await diffUpper({ upper, merged, lower, mountPoints: ['/proc', '/etc/resolv.conf'] });
  assert.equal(
    entries.map((e) => `${e.type} ${e.path}${e.linkname ? ` -> ${e.linkname}` : ''}`),
    ['directory dir', 'file dir/.wh..wh..opq', 'file dir/new', 'file .wh.gone', 'file h1', 'link h2 -> h1', 'directory keep', 'file keep/k2', 'symlink s -> h1'],
  );
  removeDir(root);
});

test.run();
