// Fuzz: thousands of random and mutated Dockerfiles and .dockerignore files. The front end must
// answer each with a value (a Dockerfile or a one-line Failure), never a throw, never a hang.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { parseDockerfile } from '../../src/build/dockerfile/parse.js';
import { expandStage, planStages } from '../../src/build/dockerfile/stages.js';
import { printableDockerfile } from '../../src/build/dockerfile/print.js';
import { compileIgnore, isExcluded, mayReinclude, readIgnoreFile, translate } from '../../src/ctx/ignore.js';
import { matchPath } from '../../src/ctx/path-glob.js';

/** mulberry32: a seeded generator so a failure can be replayed. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const SEED = Number(process.env.TSD_FUZZ_SEED ?? 20261129);
const N = Number(process.env.TSD_FUZZ_N ?? 3000);

const KEYWORDS = ['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'from', 'Run', 'COPPY', '#', '# escape=`', '# syntax=x'];
const PIECES = ['--from=a', '--mount=type=cache,target=/x', '--mount=', '--chown=$U', '--link', '--platform=$TARGETPLATFORM', '--interval=1s', '--retries=x', '--', 'AS', 'as', 'x', '$A', '${A}', '${A:-b}', '${A:+', '${', '$', '"', "'", '\\', '`', '[', ']', '["a", "b"]', "['a']", '[1]', '<<EOF', '<<-EOF', '<<"EOF"', 'EOF', '=', 'a=b', 'a="b c"', '\t', ' ', '\n', '\\\n', '\r\n', 'NONE', 'CMD', '{', '}', '%', '#', '/', '*', 'ä', '\u0000', '\uFEFF'];

const randomDockerfile = (r: () => number): string => {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const lines: string[] = [];
  const n = 1 + Math.floor(r() * 12);
  for (let i = 0; i < n; i++) {
    let line = r() < 0.9 ? pick(KEYWORDS) : '';
    const words = Math.floor(r() * 6);
    for (let w = 0; w < words; w++) line += (r() < 0.7 ? ' ' : '') + pick(PIECES);
    lines.push(line);
  }
  return lines.join(r() < 0.9 ? '\n' : '\r\n');
};

const CORPUS = [
  'ARG V=1\nFROM alpine:$V AS base\nRUN --mount=type=cache,target=/c echo hi\nENV A=1 B="x y"\nCOPY --from=base <<EOF /f\nhello $A\nEOF\n',
  '# escape=`\nFROM x\nRUN a `\n  b\nHEALTHCHECK --interval=5s CMD ["true"]\nONBUILD RUN <<-EOF\n\techo\n\tEOF\n',
  'FROM a AS one\nFROM one\nCOPY --from=0 a b\nLABEL "k"="v" x=${Y:-z}\nSHELL ["sh", "-c"]\nEXPOSE 80/tcp\nVOLUME ["/d"]\nUSER u:g\nWORKDIR /w\nSTOPSIGNAL SIGTERM\n',
];
const mutate = (r: () => number, s: string): string => {
  const chars = Array.from(s);
  const edits = 1 + Math.floor(r() * 6);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(r() * (chars.length + 1));
    const op = r();
    if (op < 0.4) chars.splice(at, 1);
    else if (op < 0.8) chars.splice(at, 0, PIECES[Math.floor(r() * PIECES.length)]!);
    else if (chars.length > 1) {
      const b = Math.floor(r() * chars.length);
      [chars[at % chars.length], chars[b]] = [chars[b]!, chars[at % chars.length]!];
    }
  }
  return chars.join('');
};

/** Everything the front end offers, on one input; returns whether it parsed. */
const exercise = (text: string): boolean => {
  const df = parseDockerfile(text);
  if (E.isLeft(df)) {
    assert.type(df.left.message, 'string');
    assert.not.match(df.left.message, '\n');
    return false;
  }
  const plan = planStages(df.right, { platform: 'linux/amd64', buildPlatform: 'linux/amd64', buildArgs: { A: 'x' } });
  if (E.isRight(plan)) for (const s of plan.right.stages) expandStage(plan.right, s.index, { HOME: '/root' });
  printableDockerfile(df.right, { platform: 'linux/amd64', buildPlatform: 'linux/amd64' });
  return true;
};

const timed = (label: string, inputs: () => Generator<string>) => {
  test(label, () => {
    let parsed = 0;
    let total = 0;
    let slowest = 0;
    for (const text of inputs()) {
      const t0 = performance.now();
      try {
        if (exercise(text)) parsed++;
      } catch (e) {
        assert.unreachable(`threw on ${JSON.stringify(text)}: ${e instanceof Error ? e.message : String(e)}`);
      }
      slowest = Math.max(slowest, performance.now() - t0);
      total++;
    }
    assert.is(total, N);
    assert.ok(slowest < 10_000, `one input took ${slowest.toFixed(0)} ms`);
    // the generator must reach both outcomes, or it is not testing much
    assert.ok(parsed > 0 && parsed < total, `${parsed} of ${total} parsed`);
  });
};

timed('random Dockerfiles', function* () {
  const r = rng(SEED);
  for (let i = 0; i < N; i++) yield randomDockerfile(r);
});

timed('mutated Dockerfiles', function* () {
  const r = rng(SEED + 1);
  for (let i = 0; i < N; i++) yield mutate(r, CORPUS[i % CORPUS.length]!);
});

test('random .dockerignore files and paths', () => {
  const r = rng(SEED + 2);
  const bits = ['*', '**', '?', '[a-c]', '[^x]', '[', ']', '!', '/', './', '../', 'a', 'b', '.', '\\', '\\*', ' ', '#', 'ä', '{', '(', '$', '+', '|', '^'];
  const pick = () => bits[Math.floor(r() * bits.length)]!;
  let refused = 0;
  for (let i = 0; i < N; i++) {
    const lines = Array.from({ length: 1 + Math.floor(r() * 4) }, () => Array.from({ length: 1 + Math.floor(r() * 8) }, pick).join(''));
    const path = Array.from({ length: 1 + Math.floor(r() * 6) }, () => ['a', 'b', 'ab', '.x', 'ä', 'a b', '[', '*'][Math.floor(r() * 8)]!).join('/');
    const t0 = performance.now();
    try {
      const c = compileIgnore(readIgnoreFile(lines.join('\n')));
      if (!c.ok) refused++;
      else {
        isExcluded(c.patterns, path);
        mayReinclude(c.patterns, path);
      }
    } catch (e) {
      assert.unreachable(`threw on ${JSON.stringify(lines)} / ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    assert.ok(performance.now() - t0 < 10_000, `slow on ${JSON.stringify(lines)}`);
  }
  assert.ok(refused > 0 && refused < N, `${refused} refused`);
});

test('the .dockerignore automaton agrees with the regular expression moby would build', () => {
  const r = rng(SEED + 3);
  const bits = ['*', '**', '**/', '?', '[a-c]', '[^b]', '[]a]', '\\*', 'a', 'b', 'ab', '/', '.', '-', 'ä'];
  let compared = 0;
  for (let i = 0; i < N; i++) {
    const pattern = Array.from({ length: 1 + Math.floor(r() * 6) }, () => bits[Math.floor(r() * bits.length)]!).join('');
    const t = translate(pattern);
    if (!t || t.type !== 'regexp') continue;
    for (let k = 0; k < 5; k++) {
      const path = Array.from({ length: Math.floor(r() * 8) }, () => ['a', 'b', 'c', '/', '.', 'ä', '*', '-'][Math.floor(r() * 8)]!).join('');
      assert.is(matchPath(t.tokens, path), t.regexp.test(path), `${JSON.stringify(pattern)} on ${JSON.stringify(path)}`);
      const parents = path.split('/').slice(0, -1).map((_, i, xs) => xs.slice(0, i + 1).join('/'));
      const viaRegexp = t.regexp.test(path) || parents.some((d) => t.regexp.test(d));
      assert.is(matchPath(t.tokens, path, true), viaRegexp, `${JSON.stringify(pattern)} on ${JSON.stringify(path)} or a parent`);
      compared++;
    }
  }
  assert.ok(compared > N, `${compared} comparisons`);
});

test('a hostile .dockerignore pattern on a long name stays fast', () => {
  const c = compileIgnore(['*a*a*a*a*a*a*a*a*b', '**/**/**/**/**/x']);
  assert.ok(c.ok);
  const t0 = performance.now();
  if (c.ok) assert.is(isExcluded(c.patterns, `${'a/'.repeat(100)}${'a'.repeat(250)}`), false);
  assert.ok(performance.now() - t0 < 10_000, `took ${performance.now() - t0} ms`);
});

test.run();
