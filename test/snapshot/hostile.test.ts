// Hostile layers: every one must leave a sentinel dir outside the store exactly as it was, and
// either be refused with a clear HostileLayer error (leaving no snapshot) or be neutralised
// (whatever it asked for lands inside the snapshot).
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { snapshotDir, unpackLayer } from '../../src/snapshot/snapshot.js';
import type { StorePaths } from '../../src/store/layout.js';
import { tempStore } from '../support/tsd.js';
import { layerOf, makeSentinel, xattrsOf, type Spec } from './layers.js';

const sentinel = makeSentinel();
const before = sentinel.fingerprint();
const S = sentinel.dir; // absolute: /tmp/tsd-sentinel-XXXX
const inside = S.slice(1); // where an absolute path lands inside a snapshot

let p: StorePaths;

test.before(async () => {
  p = await tempStore();
});

test('the sentinel fingerprint notices a change (so the checks below can fail)', () => {
  const other = makeSentinel();
  const first = other.fingerprint();
  writeFileSync(join(other.dir, 'sub', 'keep2'), 'changed');
  assert.is.not(other.fingerprint(), first);
});

const unpack = async (specs: readonly Spec[]) => {
  const layer = await layerOf(p, specs);
  const [chainId] = chainIds([layer.diffId]);
  const r = await unpackLayer(p, layer.descriptor, layer.diffId, chainId!, { sync: false })();
  return { r, dir: snapshotDir(p, chainId!) };
};

const refused = (name: string, specs: readonly Spec[], why: RegExp) =>
  test(`refused: ${name}`, async () => {
    const { r, dir } = await unpack(specs);
    assert.ok(E.isLeft(r), 'the layer should be refused');
    if (E.isLeft(r)) {
      assert.is(r.left._tag, 'HostileLayer', r.left.message);
      assert.ok(why.test(r.left.message), r.left.message);
      assert.ok(r.left.message.startsWith('unpack layer sha256:'), r.left.message);
      assert.not.match(r.left.message, /\n/);
    }
    assert.not.ok(existsSync(dir), 'no snapshot is left');
    assert.equal(readdirSync(p.snapshots).filter((n) => n.startsWith('.unpack-')), [], 'no temp dir is left');
    assert.is(sentinel.fingerprint(), before);
  });

const neutralised = (name: string, specs: readonly Spec[], check: (dir: string) => void) =>
  test(`neutralised: ${name}`, async () => {
    const { r, dir } = await unpack(specs);
    assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
    check(dir);
    assert.is(sentinel.fingerprint(), before);
  });

refused('../ traversal', [{ name: '../pwned', content: 'x' }], /climbs out/);
refused('traversal in the middle', [{ name: 'a/b/../../../pwned', content: 'x' }], /climbs out/);
refused('deep traversal to the sentinel', [{ name: `${'../'.repeat(12)}${inside}/keep`, content: 'overwritten' }], /climbs out/);
refused('hard link climbing out', [{ name: 'hl', type: 'link', linkname: `../../../../../../..${S}/keep` }], /climbs out/);
refused('hard link to an absolute path not in the layer', [{ name: 'hl', type: 'link', linkname: `${S}/keep` }], /not in this layer/);
refused('hard link through a symlinked parent', [
  { name: 's', type: 'symlink', linkname: S },
  { name: 'hl', type: 'link', linkname: 's/keep' },
], /not in this layer/);
refused('whiteout climbing out', [{ name: '../.wh.keep', content: '' }], /climbs out/);
refused('whiteout of ..', [{ name: 'a/.wh...', content: '' }], /names no file/);
refused('whiteout of .', [{ name: '.wh..', content: '' }], /names no file/);
refused('a file replacing the root', [{ name: './', type: 'symlink', linkname: S }], /layer root/);
refused('a symlink loop', [
  { name: 'a', type: 'symlink', linkname: 'b' },
  { name: 'b', type: 'symlink', linkname: 'a' },
  { name: 'a/x', content: 'x' },
], /too many levels/);
refused('a file under a file', [{ name: 'f', content: 'x' }, { name: 'f/g', content: 'y' }], /not a directory/);

neutralised('absolute path lands inside the root', [{ name: `${S}/keep`, content: 'overwritten' }], (dir) => {
  assert.is(readFileSync(join(dir, inside, 'keep'), 'utf8'), 'overwritten');
});

neutralised('symlink to an absolute dir, then a write through it (same layer)', [
  { name: 'evil', type: 'symlink', linkname: S },
  { name: 'evil/keep', content: 'overwritten' },
  { name: 'evil/sub/new', content: 'new' },
], (dir) => {
  assert.is(readlinkSync(join(dir, 'evil')), S, 'the symlink itself is kept');
  assert.is(readFileSync(join(dir, inside, 'keep'), 'utf8'), 'overwritten');
  assert.is(readFileSync(join(dir, inside, 'sub', 'new'), 'utf8'), 'new');
});

neutralised('relative symlink climbing out, then a write through it', [
  { name: 'up', type: 'symlink', linkname: '../../../../../../../../..' },
  { name: `up${S}/keep`, content: 'overwritten' },
], (dir) => assert.is(readFileSync(join(dir, inside, 'keep'), 'utf8'), 'overwritten'));

neutralised('symlinked parent dir several levels deep', [
  { name: 'a/b/c', type: 'symlink', linkname: '../../../../../..' + S },
  { name: 'a/b/c/sub/keep2', content: 'overwritten' },
], (dir) => assert.is(readFileSync(join(dir, inside, 'sub', 'keep2'), 'utf8'), 'overwritten'));

neutralised('a file replaced by a symlink, then written through', [
  { name: 'x', content: 'first' },
  { name: 'x', type: 'symlink', linkname: `${S}/keep` },
  { name: 'x', content: 'second' },
], (dir) => {
  assert.ok(lstatSync(join(dir, 'x')).isFile(), 'the entry replaced the symlink, not written through it');
  assert.is(readFileSync(join(dir, 'x'), 'utf8'), 'second');
});

neutralised('a dir replaced by a symlink to the sentinel, then a file under it', [
  { name: 'd/', type: 'directory' },
  { name: 'd/f', content: 'f' },
  { name: 'd', type: 'symlink', linkname: S },
  { name: 'd/keep', content: 'overwritten' },
], (dir) => {
  assert.ok(lstatSync(join(dir, 'd')).isSymbolicLink());
  assert.is(readFileSync(join(dir, inside, 'keep'), 'utf8'), 'overwritten');
});

neutralised('a hard link to a symlink that points out stays a symlink', [
  { name: 's', type: 'symlink', linkname: `${S}/keep` },
  { name: 'hl', type: 'link', linkname: 's' },
], (dir) => {
  assert.ok(lstatSync(join(dir, 'hl')).isSymbolicLink());
  assert.is(readlinkSync(join(dir, 'hl')), `${S}/keep`);
  assert.is(lstatSync(join(dir, 'hl')).ino, lstatSync(join(dir, 's')).ino);
});

neutralised('a whiteout through a symlink lands inside', [
  { name: 's', type: 'symlink', linkname: S },
  { name: 's/.wh.keep', content: '' },
], (dir) => {
  const st = lstatSync(join(dir, inside, 'keep'));
  assert.ok(st.isCharacterDevice() && st.rdev === 0, 'an overlay whiteout inside the snapshot');
});

neutralised('an opaque marker through a symlink lands inside', [
  { name: 's', type: 'symlink', linkname: rel0() },
  { name: 's/.wh..wh..opq', content: '' },
], (dir) => assert.equal(xattrsOf(join(dir, inside)), { 'trusted.overlay.opaque': 'y' }));

neutralised('a hard link to a file, through a symlinked parent inside the root', [
  { name: 'real/f', content: 'data' },
  { name: 'alias', type: 'symlink', linkname: '/real' },
  { name: 'hl', type: 'link', linkname: 'alias/f' },
], (dir) => assert.is(lstatSync(join(dir, 'hl')).ino, lstatSync(join(dir, 'real', 'f')).ino));

// regression: the ENOSPC of lsetxattr (an inode's xattr space full) was reported as a full disk
refused('10,000 xattrs on one file', [{ name: 'x', content: 'x', pax: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`SCHILY.xattr.user.k${i}`, 'v'])) }], /extended attributes do not fit/);

// regression: fs.rmSync recursed once per level and overflowed the stack on this tree
neutralised('a 2000-deep tree replaced by a file in the same layer', [
  { name: `${'d/'.repeat(2000)}leaf`, content: 'deep' },
  { name: 'd', content: 'now a file' },
], (dir) => assert.is(readFileSync(join(dir, 'd'), 'utf8'), 'now a file'));

test('a symlink-then-write in a later layer stays in that layer', async () => {
  const l1 = await layerOf(p, [{ name: 'evil', type: 'symlink', linkname: S }]);
  const l2 = await layerOf(p, [{ name: 'evil/keep', content: 'overwritten' }, { name: 'evil/.wh.sub', content: '' }]);
  const ids = chainIds([l1.diffId, l2.diffId]);
  const r1 = await unpackLayer(p, l1.descriptor, l1.diffId, ids[0]!, { sync: false })();
  const r2 = await unpackLayer(p, l2.descriptor, l2.diffId, ids[1]!, { sync: false })();
  assert.ok(E.isRight(r1) && E.isRight(r2));
  const upper = snapshotDir(p, ids[1]!);
  assert.ok(lstatSync(join(upper, 'evil')).isDirectory(), 'a plain dir in the upper snapshot');
  assert.is(readFileSync(join(upper, 'evil', 'keep'), 'utf8'), 'overwritten');
  assert.ok(lstatSync(join(upper, 'evil', 'sub')).isCharacterDevice());
  assert.is(sentinel.fingerprint(), before);
});

/** the sentinel as a relative symlink target from a snapshot root */
function rel0(): string {
  return relative('/x/y/z', '/') + S;
}

test.after(() => {
  assert.is(sentinel.fingerprint(), before);
});

test.run();
