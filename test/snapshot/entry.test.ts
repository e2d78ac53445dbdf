import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { cleanPath, decodeEntry, type TarHeader } from '../../src/snapshot/entry.js';

const cleaned: [string, string[] | 'refused'][] = [
  ['a/b/c', ['a', 'b', 'c']],
  ['./a/b/', ['a', 'b']],
  ['/etc/passwd', ['etc', 'passwd']],
  ['//a//b', ['a', 'b']],
  ['a/./b/../c', ['a', 'c']],
  ['.', []],
  ['./', []],
  ['/', []],
  ['..', 'refused'],
  ['../etc/passwd', 'refused'],
  ['a/../../b', 'refused'],
  ['/../x', 'refused'],
  ['./a/../..', 'refused'],
  ['a/b/../../c/../../d', 'refused'],
];
for (const [name, want] of cleaned) {
  test(`cleanPath ${JSON.stringify(name)}`, () => {
    const r = cleanPath(name);
    if (want === 'refused') assert.ok(E.isLeft(r) && r.left.includes('climbs out'), JSON.stringify(r));
    else assert.equal(r, E.right(want));
  });
}

const h = (name: string, extra: Partial<TarHeader> = {}): TarHeader => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), ...extra });
const kindOf = (header: TarHeader) => {
  const r = decodeEntry(header);
  return E.isLeft(r) ? `error: ${r.left}` : `${r.right.entry.kind} ${'path' in r.right.entry ? r.right.entry.path.join('/') : ''}`;
};

const kinds: [TarHeader, string][] = [
  [h('a/.wh.b'), 'whiteout a/b'],
  [h('.wh.top'), 'whiteout top'],
  [h('a/b/.wh..wh..opq'), 'opaque a/b'],
  [h('.wh..wh..opq'), 'opaque '],
  [h('a/.wh..wh.plnk'), 'ignored '],
  [h('a/.wh..wh.aufs'), 'ignored '],
  [h('d/', { type: 'directory' }), 'dir d'],
  [h('./', { type: 'directory' }), 'dir '],
  [h('s', { type: 'symlink', linkname: '/etc' }), 'symlink s'],
  [h('l', { type: 'link', linkname: '/etc/passwd' }), 'hardlink l'],
  [h('c', { type: 'character-device', devmajor: 1, devminor: 3 }), 'device c'],
  [h('f', { type: 'fifo' }), 'fifo f'],
  [h('x', { type: 'contiguous-file' }), 'file x'],
];
for (const [header, want] of kinds) {
  test(`decode ${header.name} (${header.type})`, () => assert.is(kindOf(header), want));
}

const refused: [TarHeader, string][] = [
  [h('.wh...'), 'names no file'],
  [h('a/.wh..'), 'names no file'],
  [h('a/.wh.'), 'names no file'],
  [h('../.wh.x'), 'climbs out'],
  [h('x/../../.wh.keep'), 'climbs out'],
  [h('.', { type: 'file' }), 'replace the layer root'],
  [h('/', { type: 'symlink', linkname: 'x' }), 'replace the layer root'],
  [h('s', { type: 'symlink', linkname: '' }), 'empty target'],
  [h('l', { type: 'link', linkname: '../../etc/shadow' }), 'climbs out'],
  [h('l', { type: 'link', linkname: '.' }), 'layer root'],
  [h('g', { type: 'gnu-sparse' }), 'unsupported'],
];
for (const [header, why] of refused) {
  test(`refuse ${header.name} (${header.type} ${header.linkname ?? ''})`, () => {
    const got = kindOf(header);
    assert.ok(got.startsWith('error') && got.includes(why), got);
  });
}

test('PAX uid, gid, mtime and xattrs are read; overlay xattrs dropped', () => {
  const r = decodeEntry(h('f', { pax: { uid: '3000000', gid: '4000000', mtime: '1700000000.5', 'SCHILY.xattr.user.k': 'v', 'SCHILY.xattr.trusted.overlay.redirect': '/x', 'LIBARCHIVE.xattr.user.b64': Buffer.from('bin\x01').toString('base64') } }));
  assert.ok(E.isRight(r));
  if (E.isRight(r) && r.right.entry.kind === 'file') {
    const m = r.right.entry.meta;
    assert.is(m.uid, 3000000);
    assert.is(m.gid, 4000000);
    assert.is(m.mtime, 1700000000.5);
    assert.equal(m.xattrs.map((x) => [x.name, x.value.toString('latin1')]), [['user.k', 'v'], ['user.b64', 'bin\x01']]);
  }
});

test('a binary xattr value mangled by UTF-8 decoding is reported lost, not written', () => {
  const r = decodeEntry(h('f', { pax: { 'SCHILY.xattr.security.capability': '\x01\uFFFD\x00' } }));
  assert.ok(E.isRight(r) && r.right.lostXattrs.includes('security.capability'));
  if (E.isRight(r) && r.right.entry.kind === 'file') assert.is(r.right.entry.meta.xattrs.length, 0);
});

test('mode keeps setuid, setgid and sticky bits only', () => {
  const r = decodeEntry(h('f', { mode: 0o107755 }));
  assert.ok(E.isRight(r) && r.right.entry.kind === 'file' && r.right.entry.meta.mode === 0o7755);
});

test.run();
