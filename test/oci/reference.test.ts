import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { familiarReference, formatReference, parseReference } from '../../src/oci/reference.js';

const D = 'sha256:' + 'a'.repeat(64);
const good: [string, string, string][] = [
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
  ['localhost/hello', 'localhost/hello:latest', 'localhost/hello:latest'],
  ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
  [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`, `localhost:5000/x@${D}`],
  [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
  ['ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3'],
  ['127.0.0.1:5000/a/b_c__d-e.f', '127.0.0.1:5000/a/b_c__d-e.f:latest', '127.0.0.1:5000/a/b_c__d-e.f:latest'],
  ['Registry.Example/x', 'Registry.Example/x:latest', 'Registry.Example/x:latest'],
  ['[::1]:5000/x:t', '[::1]:5000/x:t', '[::1]:5000/x:t'],
  ['x:' + 'T'.repeat(128), 'docker.io/library/x:' + 'T'.repeat(128), 'x:' + 'T'.repeat(128)],
];

for (const [input, full, familiar] of good) {
  test(`parse ${input}`, () => {
    const r = parseReference(input);
    assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
    if (E.isRight(r)) {
      assert.is(formatReference(r.right), full);
      assert.is(familiarReference(r.right), familiar);
    }
  });
}

const bad = ['', 'UPPER', 'a/B', 'x:', 'x:-tag', 'x:' + 't'.repeat(129), 'x@sha256:abc', 'a'.repeat(64), '/x', 'x/', 'a//b', 'a..b', 'host:port/x', `${'a'.repeat(250)}/bbbbbbb`];
for (const input of bad) {
  test(`refuse ${JSON.stringify(input.slice(0, 30))}`, () => {
    const r = parseReference(input);
    assert.ok(E.isLeft(r));
    if (E.isLeft(r)) assert.is(r.left._tag, 'InvalidReference');
  });
}

test('fuzz: random and mutated references never throw and always normalize idempotently', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = 'abcXYZ019._-/:@[]sha256' + 'f'.repeat(10);
  const seeds = good.map(([input]) => input);
  for (let i = 0; i < 20000; i++) {
    let s: string;
    if (rand() < 0.5) {
      const len = Math.floor(rand() * 40);
      s = '';
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
    } else {
      const base = seeds[Math.floor(rand() * seeds.length)] ?? '';
      const at = Math.floor(rand() * (base.length + 1));
      s = base.slice(0, at) + alphabet[Math.floor(rand() * alphabet.length)] + base.slice(at + (rand() < 0.5 ? 1 : 0));
    }
    const r = parseReference(s);
    if (E.isRight(r)) {
      const again = parseReference(formatReference(r.right));
      assert.ok(E.isRight(again), `normalized form of ${s} does not parse`);
      if (E.isRight(again)) assert.is(formatReference(again.right), formatReference(r.right));
    } else {
      assert.is(r.left.message.includes('\n'), false);
    }
  }
});

test.run();
