// The securejoin rules, as a table: symlinks are expanded inside the root, never out of it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { Tree, newDir } from '../../src/snapshot/tree.js';

const build = (): Tree => {
  const t = new Tree();
  const dir = (path: string) => {
    E.getOrElseW(() => [])(t.ensureDirs(path.split('/')));
  };
  const link = (path: string, target: string) => t.set(path.split('/'), { kind: 'symlink', target, xattrs: [] });
  dir('usr/lib');
  dir('etc');
  link('lib', 'usr/lib');
  link('abs', '/etc');
  link('up', '../../../../..');
  link('etc/deep', '../../../usr');
  link('loop1', 'loop2');
  link('loop2', 'loop1');
  link('chain', 'lib');
  link('dotdot', 'usr/lib/../..');
  link('usr/lib/self', '.');
  t.set(['etc', 'file'], { kind: 'file', xattrs: [] });
  return t;
};

const cases: [string, string][] = [
  ['usr/lib/x', 'usr/lib/x'],
  ['lib/x', 'usr/lib/x'],
  ['chain/x', 'usr/lib/x'],
  ['abs/passwd', 'etc/passwd'],
  ['up/etc/shadow', 'etc/shadow'],
  ['up/up/up', ''],
  ['up/up/up/x', 'x'],
  ['etc/deep/lib', 'usr/lib'],
  ['dotdot/tmp', 'tmp'],
  ['usr/lib/self/self/x', 'usr/lib/x'],
  ['missing/../x', 'x'],
  ['a/b/c', 'a/b/c'],
];
for (const [input, want] of cases) {
  test(`resolve ${input}`, () => assert.equal(build().resolve(input.split('/')), E.right(want === '' ? [] : want.split('/'))));
}

test('resolveEntry never follows the last component', () => {
  assert.equal(build().resolveEntry(['abs']), E.right(['abs']));
  assert.equal(build().resolveEntry(['lib', 'abs']), E.right(['usr', 'lib', 'abs']));
});

test('a symlink loop is refused', () => {
  const r = build().resolve(['loop1', 'x']);
  assert.ok(E.isLeft(r) && r.left.includes('too many levels'));
});

test('ensureDirs creates what is missing and refuses to pass through a file', () => {
  const t = build();
  assert.equal(t.ensureDirs(['usr', 'share', 'doc']), E.right([['usr', 'share'], ['usr', 'share', 'doc']]));
  const r = t.ensureDirs(['etc', 'file', 'x']);
  assert.ok(E.isLeft(r) && r.left.includes('not a directory'));
});

test('walk lists parents before children', () => {
  const t = new Tree();
  t.set(['a'], newDir());
  t.set(['a', 'b'], { kind: 'file', xattrs: [] });
  assert.equal([...t.walk()].map(([p]) => p.join('/')), ['a', 'a/b']);
});

test.run();
