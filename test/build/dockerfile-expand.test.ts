// Substitution, ARG scoping and stage planning, each case from the Dockerfile reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { parseDockerfile } from '../../src/build/dockerfile/parse.js';
import { expandStage, planStages, type PlanOptions } from '../../src/build/dockerfile/stages.js';
import { printableDockerfile } from '../../src/build/dockerfile/print.js';
import type { ExpandedStep, StagePlan } from '../../src/build/dockerfile/ast.js';

const plan = (text: string, opts: PlanOptions = {}): StagePlan => {
  const df = parseDockerfile(text);
  if (E.isLeft(df)) throw new Error(df.left.message);
  const p = planStages(df.right, { platform: 'linux/amd64', buildPlatform: 'linux/amd64', ...opts });
  if (E.isLeft(p)) throw new Error(p.left.message);
  return p.right;
};
const steps = (text: string, opts: PlanOptions = {}, stage = -1, baseEnv: Record<string, string> = {}): ExpandedStep[] => {
  const p = plan(text, opts);
  const s = expandStage(p, stage < 0 ? p.stages.length + stage : stage, baseEnv);
  if (E.isLeft(s)) throw new Error(s.left.message);
  return s.right;
};
const field = (s: ExpandedStep, k: string): unknown => (s.instruction as unknown as Record<string, unknown>)[k];
const planError = (text: string, opts: PlanOptions = {}): string => {
  const df = parseDockerfile(text);
  if (E.isLeft(df)) return df.left.message;
  const p = planStages(df.right, { platform: 'linux/amd64', buildPlatform: 'linux/amd64', ...opts });
  if (E.isLeft(p)) return p.left.message;
  for (const s of p.right.stages) {
    const x = expandStage(p.right, s.index);
    if (E.isLeft(x)) return x.left.message;
  }
  return 'no error';
};

test('ENV: a variable changes only after its instruction (reference example)', () => {
  const s = steps('FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc');
  assert.equal(field(s[1]!, 'pairs'), [{ key: 'abc', value: 'bye' }, { key: 'def', value: 'hello' }]);
  assert.equal(field(s[2]!, 'pairs'), [{ key: 'ghi', value: 'bye' }]);
  assert.equal(s[2]!.env, { abc: 'bye', def: 'hello', ghi: 'bye' });
});

test('WORKDIR, ADD and an escaped \\$ (reference example)', () => {
  const s = steps('FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux');
  assert.is(field(s[1]!, 'path'), '/bar');
  assert.equal([field(s[2]!, 'sources'), field(s[2]!, 'dest')], [['.'], '/bar']);
  assert.equal(field(s[3]!, 'sources'), ['$FOO']);
});

test('${variable:-word} and ${variable:+word}', () => {
  const s = steps('FROM x\nENV SET=1 EMPTY=\nLABEL a=${UNSET:-dflt} b=${SET:-dflt} c=${SET:+alt} d=${UNSET:+alt} e=${EMPTY:-e} f=${EMPTY-e}');
  assert.equal(field(s[1]!, 'pairs'), [
    { key: 'a', value: 'dflt' }, { key: 'b', value: '1' }, { key: 'c', value: 'alt' }, { key: 'd', value: '' }, { key: 'e', value: 'e' }, { key: 'f', value: '' },
  ]);
});

test('RUN, CMD, ENTRYPOINT and ONBUILD are not substituted; RUN sees ENV and ARGs', () => {
  const s = steps('FROM x\nARG A=1\nENV B=2\nRUN echo $A $B\nCMD echo $B\nENTRYPOINT ["$B"]\nONBUILD WORKDIR $B');
  assert.equal(field(s[2]!, 'command'), { form: 'shell', text: 'echo $A $B' });
  assert.equal([s[2]!.args, s[2]!.env], [{ A: '1' }, { B: '2' }]);
  assert.equal(field(s[3]!, 'command'), { form: 'shell', text: 'echo $B' });
  assert.equal(field(s[4]!, 'command'), { form: 'exec', args: ['$B'] });
  assert.is((field(s[5]!, 'instruction') as { path: string }).path, '$B');
});

test('quotes and escapes in ENV values', () => {
  const s = steps('FROM x\nENV X=1\nENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog SQ=\'$X\' DQ="$X"');
  assert.equal(field(s[1]!, 'pairs'), [{ key: 'MY_NAME', value: 'John Doe' }, { key: 'MY_DOG', value: 'Rex The Dog' }, { key: 'SQ', value: '$X' }, { key: 'DQ', value: '1' }]);
});

test('ENV old form value is substituted as one word', () => {
  const s = steps('FROM x\nENV X=1\nENV Y a $X "b c"');
  assert.equal(field(s[1]!, 'pairs'), [{ key: 'Y', value: 'a 1 b c' }]);
});

test('ARG: a variable is empty before its ARG line (reference example)', () => {
  const s = steps('FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username', { buildArgs: { username: 'what_user' } });
  assert.is(field(s[0]!, 'user'), 'some_user');
  assert.is(field(s[2]!, 'user'), 'what_user');
});

test('ENV overrides ARG of the same name (reference example)', () => {
  const s = steps('FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nWORKDIR /$CONT_IMG_VER', { buildArgs: { CONT_IMG_VER: 'v2.0.1' } });
  assert.is(field(s[2]!, 'path'), '/v1.0.0');
});

test('ENV from an ARG with a default (reference example)', () => {
  const text = 'FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}';
  assert.equal(steps(text, { buildArgs: { CONT_IMG_VER: 'v2.0.1' } })[1]!.env, { CONT_IMG_VER: 'v2.0.1' });
  assert.equal(steps(text)[1]!.env, { CONT_IMG_VER: 'v1.0.0' });
});

test('global ARG in FROM, --build-arg overrides its default', () => {
  const text = 'ARG CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nFROM extras:${CODE_VERSION}';
  assert.equal(plan(text).stages.map((s) => s.base), [{ kind: 'image', ref: 'base:latest' }, { kind: 'image', ref: 'extras:latest' }]);
  assert.equal(plan(text, { buildArgs: { CODE_VERSION: '1.2' } }).stages.map((s) => s.baseName), ['base:1.2', 'extras:1.2']);
});

test('a stage sees a global ARG only after declaring it (reference example)', () => {
  const s = steps('ARG VERSION=latest\nFROM busybox:$VERSION\nWORKDIR /$VERSION\nARG VERSION\nWORKDIR /$VERSION');
  assert.is(field(s[0]!, 'path'), '/');
  assert.is(field(s[2]!, 'path'), '/latest');
  assert.equal(s[2]!.args, { VERSION: 'latest' });
});

test('a stage ARG default wins over the global value; --build-arg wins over both', () => {
  const text = 'ARG V=global\nFROM x\nARG V=local\nWORKDIR /$V';
  assert.is(field(steps(text)[1]!, 'path'), '/local');
  assert.is(field(steps(text, { buildArgs: { V: 'cli' } })[1]!, 'path'), '/cli');
});

test('ARG defaults are substituted with what is in scope', () => {
  const s = steps('FROM x\nARG A=1\nARG B=${A}2 C=$B\nWORKDIR /$B');
  assert.equal(s[1]!.args, { A: '1', B: '12', C: '' });
  assert.is(field(s[2]!, 'path'), '/12');
});

test('ARG without a value and without --build-arg stays unset', () => {
  const s = steps('FROM x\nARG NOPE\nWORKDIR /${NOPE-unset}');
  assert.equal(s[0]!.args, {});
  assert.is(field(s[1]!, 'path'), '/unset');
});

test('predefined proxy ARGs reach RUN without an ARG line', () => {
  const s = steps('FROM x\nRUN env', { buildArgs: { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' } });
  assert.equal(s[0]!.args, { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' });
  assert.equal(plan('FROM x', { buildArgs: { HTTP_PROXY: 'p' } }).unusedBuildArgs, []);
  const declared = steps('FROM x\nWORKDIR /$HTTP_PROXY\nARG HTTP_PROXY\nWORKDIR /$HTTP_PROXY', { buildArgs: { HTTP_PROXY: 'p' } });
  assert.equal([field(declared[0]!, 'path'), field(declared[2]!, 'path')], ['/', '/p']);
});

test('automatic platform ARGs: global in FROM, declared inside a stage', () => {
  const text = 'FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nARG TARGETOS TARGETARCH\nENV GOOS=$TARGETOS GOARCH=$TARGETARCH\nWORKDIR /$TARGETVARIANT';
  const p = plan(text, { platform: 'linux/arm64/v8', buildPlatform: 'linux/amd64' });
  assert.is(p.stages[0]!.platform, 'linux/amd64');
  const s = expandStage(p, 0);
  assert.ok(E.isRight(s));
  if (E.isRight(s)) {
    assert.equal(s.right[1]!.env, { GOOS: 'linux', GOARCH: 'arm64' });
    assert.is(field(s.right[2]!, 'path'), '/');
  }
  assert.is(plan('FROM alpine:$TARGETARCH', { platform: 'linux/arm64' }).stages[0]!.baseName, 'alpine:arm64');
});

test('the base image ENV takes part in substitution', () => {
  const s = steps('FROM x\nWORKDIR $HOME/app\nENV PATH=/opt/bin:$PATH', {}, 0, { HOME: '/root', PATH: '/usr/bin' });
  assert.is(field(s[0]!, 'path'), '/root/app');
  assert.equal(s[1]!.env, { HOME: '/root', PATH: '/opt/bin:/usr/bin' });
});

test('EXPOSE, VOLUME, USER, STOPSIGNAL, LABEL keys are substituted', () => {
  const s = steps('FROM x\nARG P=80 D=/data U=app S=TERM K=key\nEXPOSE $P/tcp 443\nVOLUME $D /x\nUSER $U\nSTOPSIGNAL SIG$S\nLABEL "$K"="v $U"');
  assert.equal(field(s[1]!, 'ports'), ['80/tcp', '443']);
  assert.equal(field(s[2]!, 'paths'), ["/data", "/x"]);
  assert.is(field(s[3]!, 'user'), 'app');
  assert.is(field(s[4]!, 'signal'), 'SIGTERM');
  assert.equal(field(s[5]!, 'pairs'), [{ key: 'key', value: 'v app' }]);
});

test('COPY flags are substituted; a heredoc body only when its delimiter is not quoted', () => {
  const s = steps('FROM x AS a\nFROM x\nARG N=world U=1000 S=a\nCOPY --from=$S --chown=$U:$U <<EOF /f\nhello $N\nEOF\nCOPY <<"EOF" /g\nhello $N\nEOF\nRUN <<EOF\necho $N\nEOF');
  assert.equal([field(s[1]!, 'from'), field(s[1]!, 'chown')], ['a', '1000:1000']);
  assert.equal((field(s[1]!, 'heredocs') as { content: string }[])[0]!.content, 'hello world\n');
  assert.equal((field(s[2]!, 'heredocs') as { content: string }[])[0]!.content, 'hello $N\n');
  assert.equal((field(s[3]!, 'heredocs') as { content: string }[])[0]!.content, 'echo $N\n');
});

test('RUN --mount values are substituted', () => {
  const s = steps('FROM x\nARG T=/cache\nRUN --mount=type=cache,target=$T,id=c-$T true');
  assert.equal(field(s[1]!, 'mounts'), [{ type: 'cache', target: '/cache', id: 'c-/cache', options: { type: 'cache', target: '/cache', id: 'c-/cache' } }]);
});

test('stage graph: FROM stage, COPY --from name, index and image; --target', () => {
  const text = [
    'FROM golang AS build',
    'FROM alpine AS test',
    'COPY --from=build /a /a',
    'FROM build AS dev',
    'FROM scratch',
    'COPY --from=0 /x /x',
    'COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf',
  ].join('\n');
  const p = plan(text);
  assert.equal(p.stages.map((s) => [s.name, s.base, s.dependsOn]), [
    ['build', { kind: 'image', ref: 'golang' }, []],
    ['test', { kind: 'image', ref: 'alpine' }, [0]],
    ['dev', { kind: 'stage', index: 0 }, [0]],
    [undefined, { kind: 'scratch' }, [0]],
  ]);
  assert.equal([p.target, p.needed], [3, [0, 3]]);
  assert.equal(plan(text, { target: 'test' }).needed, [0, 1]);
  assert.equal(plan(text, { target: 'DEV' }).needed, [0, 2]);
  assert.equal(plan(text, { target: 'build' }).needed, [0]);
});

test('RUN --mount from= is a dependency', () => {
  assert.equal(plan('FROM a AS deps\nFROM b AS other\nFROM c\nRUN --mount=from=deps,target=/d true').needed, [0, 2]);
});

test('FROM names only earlier stages: a later name is an image', () => {
  assert.equal(plan('FROM later\nFROM x AS later').stages[0]!.base, { kind: 'image', ref: 'later' });
});

test('unused build args are reported', () => {
  assert.equal(plan('ARG G\nFROM x\nARG USED', { buildArgs: { G: '1', USED: '2', TYPO: '3' } }).unusedBuildArgs, ['TYPO']);
});

const errors: [string, PlanOptions, string][] = [
  ['FROM a AS x\nFROM b', { target: 'nope' }, 'Dockerfile: target stage "nope" could not be found'],
  ['FROM a\nCOPY --from=0 /a /b', {}, 'Dockerfile:2: invalid from flag value 0: refers to current or later build stage'],
  ['FROM a AS me\nCOPY --from=me /a /b', {}, 'Dockerfile:2: circular dependency detected on stage: me'],
  ['FROM a\nWORKDIR ${X:?needs X}', {}, 'Dockerfile:2: WORKDIR: X: needs X'],
  ['FROM a\nENV A="unterminated', {}, 'Dockerfile:2: ENV: unexpected end of statement while looking for matching double-quote'],
  ['ARG B\nFROM $B', {}, 'Dockerfile:2: base name ($B) should not be blank'],
  ['FROM --platform=bogus a', {}, 'Dockerfile:1: FROM --platform: invalid platform "bogus": expected os/arch[/variant]'],
];
for (const [text, opts, message] of errors) test(`error: ${message}`, () => assert.is(planError(text, opts), message));

test('printableDockerfile: the documented JSON shape', () => {
  const df = parseDockerfile('ARG TAG=3.19\nFROM alpine:$TAG AS base\nRUN ["echo", "hi"]\nCMD echo $HOME\nFROM base\nCOPY --from=base /a /b');
  assert.ok(E.isRight(df));
  if (E.isLeft(df)) return;
  const out = printableDockerfile(df.right, { platform: 'linux/amd64', buildPlatform: 'linux/amd64', buildArgs: { TAG: '3.20' } });
  assert.ok(E.isRight(out));
  if (E.isLeft(out)) return;
  const j = JSON.parse(JSON.stringify(out.right));
  assert.equal([j.v, j.type, j.file, j.target, j.needed, j.platform, j.args.TAG], [1, 'dockerfile', 'Dockerfile', 1, [0, 1], 'linux/amd64', '3.20']);
  assert.equal(j.stages.map((s: { name?: string; from: string; base: unknown; lines: unknown }) => [s.name, s.from, s.base, s.lines]), [
    ['base', 'alpine:3.20', { kind: 'image', ref: 'alpine:3.20' }, { start: 2, end: 4 }],
    [undefined, 'base', { kind: 'stage', index: 0 }, { start: 5, end: 6 }],
  ]);
  assert.equal(j.stages[0].instructions.map((i: { keyword: string; lines: unknown }) => [i.keyword, i.lines]), [['FROM', { start: 2, end: 2 }], ['RUN', { start: 3, end: 3 }], ['CMD', { start: 4, end: 4 }]]);
  assert.equal(j.stages[0].instructions[1].command, { form: 'exec', args: ['echo', 'hi'] });
  assert.equal(j.stages[0].instructions[2].command, { form: 'shell', text: 'echo $HOME' });
  const raw = printableDockerfile(df.right, { expand: false, platform: 'linux/amd64', buildPlatform: 'linux/amd64' });
  assert.ok(E.isRight(raw) && raw.right.stages[0]!.from === 'alpine:$TAG');
});

test.run();
