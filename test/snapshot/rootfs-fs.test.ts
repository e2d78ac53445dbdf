// RootFs, the one interface extraction writes through: its own walls, tested in one place.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRootFs, UnsafePath } from '../../src/snapshot/rootfs-fs.js';
import type { Meta } from '../../src/snapshot/entry.js';
import { tempDir } from '../support/tsd.js';
import { makeSentinel } from './layers.js';

const meta: Meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000, xattrs: [] };
const sentinel = makeSentinel();
const before = sentinel.fingerprint();

const fresh = () => {
  const root = join(tempDir('tsd-rootfs-'), 'fs');
  mkdirSync(root);
  return { root, fs: createRootFs(root, { chown: true }) };
};

const bad = [[''], ['.'], ['..'], ['a', '..'], ['a/b'], ['..', 'etc'], ['x\0y']];
for (const path of bad) {
  test(`refuses the path ${JSON.stringify(path)} in every call`, async () => {
    const { fs } = fresh();
    assert.throws(() => fs.mkdir(path), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.createFile(path, meta), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.symlink(path, '/x', meta), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.link(['a'], path), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.link(path, ['a']), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.remove(path, true), (e: unknown) => e instanceof UnsafePath);
    assert.throws(() => fs.setDirMeta(path, meta), (e: unknown) => e instanceof UnsafePath);
    try {
      await fs.special([{ op: 'mknod', path, type: 'whiteout', major: 0, minor: 0 }]);
      assert.unreachable('special accepted a bad path');
    } catch (e) {
      assert.instance(e, UnsafePath);
    }
  });
}

test('refuses to remove the root', () => {
  const { fs, root } = fresh();
  assert.throws(() => fs.remove([], true), (e: unknown) => e instanceof UnsafePath);
  assert.ok(existsSync(root));
});

test('createFile never writes through a symlink at the last component, dangling or not', () => {
  const { fs, root } = fresh();
  symlinkSync(join(sentinel.dir, 'keep'), join(root, 'to-keep'));
  symlinkSync(join(sentinel.dir, 'new-file'), join(root, 'dangling'));
  assert.throws(() => fs.createFile(['to-keep'], meta), /EEXIST/);
  assert.throws(() => fs.createFile(['dangling'], meta), /EEXIST/);
  assert.not.ok(existsSync(join(sentinel.dir, 'new-file')));
  assert.is(sentinel.fingerprint(), before);
});

test('link makes a hard link to a symlink, not to what it points at', () => {
  const { fs, root } = fresh();
  symlinkSync(join(sentinel.dir, 'keep'), join(root, 's'));
  fs.link(['s'], ['hl']);
  assert.ok(lstatSync(join(root, 'hl')).isSymbolicLink());
  assert.is(readlinkSync(join(root, 'hl')), join(sentinel.dir, 'keep'));
  assert.is(lstatSync(join(sentinel.dir, 'keep')).nlink, 1);
  assert.is(sentinel.fingerprint(), before);
});

test('files get mode (through the umask and after chown), owner and mtime', () => {
  const { fs, root } = fresh();
  const fd = fs.createFile(['f'], { ...meta, mode: 0o6777, uid: 12, gid: 34 });
  fs.write(fd, Buffer.from('body'));
  fs.finishFile(fd, { ...meta, mode: 0o6777, uid: 12, gid: 34 });
  const st = lstatSync(join(root, 'f'));
  assert.equal([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs], [0o6777, 12, 34, 1_600_000_000_000]);
  assert.is(readFileSync(join(root, 'f'), 'utf8'), 'body');
});

test('symlinks get their owner and mtime without following', () => {
  const { fs, root } = fresh();
  fs.symlink(['s'], join(sentinel.dir, 'keep'), { ...meta, uid: 7, gid: 8 });
  const st = lstatSync(join(root, 's'));
  assert.equal([st.uid, st.gid, st.mtimeMs], [7, 8, 1_600_000_000_000]);
  assert.is(sentinel.fingerprint(), before);
});

test('remove of a dir holding a symlink out removes the link only', () => {
  const { fs, root } = fresh();
  fs.mkdir(['d']);
  symlinkSync(sentinel.dir, join(root, 'd', 'out'));
  writeFileSync(join(root, 'd', 'f'), 'x');
  fs.remove(['d'], true);
  assert.not.ok(existsSync(join(root, 'd')));
  assert.is(sentinel.fingerprint(), before);
});

test('special: whiteouts, fifos and xattrs, in one helper run', async () => {
  const { fs, root } = fresh();
  fs.mkdir(['d']);
  const r = await fs.special([
    { op: 'mknod', path: ['d', 'wh'], type: 'whiteout', major: 0, minor: 0 },
    { op: 'mknod', path: ['d', 'p'], type: 'fifo', major: 0, minor: 0, meta: { ...meta, mode: 0o600, uid: 5, gid: 6 } },
    { op: 'xattr', path: ['d'], name: 'trusted.overlay.opaque', value: Buffer.from('y') },
  ]);
  assert.equal(r.skipped, []);
  assert.ok(lstatSync(join(root, 'd', 'wh')).isCharacterDevice());
  const p = lstatSync(join(root, 'd', 'p'));
  assert.ok(p.isFIFO());
  assert.equal([p.mode & 0o777, p.uid, p.gid], [0o600, 5, 6]);
});

test('special: an errno from the helper surfaces with its code and path', async () => {
  const { fs } = fresh();
  try {
    await fs.special([{ op: 'mknod', path: ['missing-dir', 'wh'], type: 'whiteout', major: 0, minor: 0 }]);
    assert.unreachable('mknod in a missing dir succeeded');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ENOENT');
    assert.match((e as Error).message, /missing-dir\/wh/);
  }
});

test.run();
