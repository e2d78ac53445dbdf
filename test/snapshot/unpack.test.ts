// Unpacking real layers: what a layer holds survives, bad layers fail cleanly and leave nothing.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { emptySnapshotDir, ensureSnapshots, listSnapshots, removeSnapshot, removeStaleTemps, snapshotDir, unpackLayer } from '../../src/snapshot/snapshot.js';
import { resolveImage } from '../../src/store/image.js';
import type { StorePaths } from '../../src/store/layout.js';
import { openStore } from '../../src/store/store.js';
import { paths } from '../../src/store/layout.js';
import { makeImage, tempDir, tempStore } from '../support/tsd.js';
import { layerOf, putLayer, tarOf, xattrsOf, type Spec, type StoredLayer } from './layers.js';

let p: StorePaths;
test.before(async () => {
  p = await tempStore();
});

const unpack = async (layer: StoredLayer) => {
  const [chainId] = chainIds([layer.diffId]);
  const r = await unpackLayer(p, layer.descriptor, layer.diffId, chainId!, { sync: false })();
  return { r, dir: snapshotDir(p, chainId!), chainId: chainId! };
};

const noLeftovers = () => assert.equal(readdirSync(p.snapshots).filter((n) => n.startsWith('.')), [], 'no temp dirs');

const longName = `${'d'.repeat(120)}/${'e'.repeat(150)}/${'f'.repeat(200)}.txt`;
const rich: Spec[] = [
  { name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(1_500_000_000_000) },
  { name: 'bin/su', content: 'setuid', mode: 0o4755, uid: 0, gid: 0 },
  { name: 'bin/wall', content: 'setgid', mode: 0o2755, uid: 0, gid: 5 },
  { name: 'tmp/', type: 'directory', mode: 0o1777 },
  { name: 'home/app/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000, mtime: new Date(1_400_000_000_000) },
  { name: 'home/app/secret', content: 'x', mode: 0o600, uid: 1000, gid: 1000, mtime: new Date(1_300_000_000_000) },
  { name: 'home/app/link', type: 'symlink', linkname: '../../bin/su', uid: 1000, gid: 1000 },
  { name: 'bin/su-again', type: 'link', linkname: 'bin/su' },
  { name: longName, content: 'long', pax: { 'SCHILY.xattr.user.comment': 'hello' } },
  { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
  { name: 'run/fifo', type: 'fifo', mode: 0o640 },
  { name: 'big', content: Buffer.alloc(3 * 1024 * 1024 + 17, 'z') },
  { name: 'ro/', type: 'directory', mode: 0o555 },
  { name: 'ro/inside', content: 'i' },
];

for (const how of ['gzip', 'zstd', 'none'] as const) {
  test(`modes, owners, setuid/setgid, sticky, mtimes, links, long names, devices, fifos, xattrs survive (${how})`, async () => {
    const layer = await layerOf(p, rich, how);
    const { r, dir } = await unpack(layer);
    assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
    const st = (n: string) => lstatSync(join(dir, n));
    assert.is(st('bin/su').mode & 0o7777, 0o4755);
    assert.is(st('bin/wall').mode & 0o7777, 0o2755);
    assert.is(st('bin/wall').gid, 5);
    assert.is(st('tmp').mode & 0o7777, 0o1777);
    assert.is(st('home/app').mode & 0o7777, 0o700);
    assert.equal([st('home/app').uid, st('home/app').gid], [1000, 1000]);
    assert.equal([st('home/app/secret').uid, st('home/app/secret').mode & 0o777], [1000, 0o600]);
    assert.is(st('home/app/secret').mtimeMs, 1_300_000_000_000);
    assert.is(st('home/app').mtimeMs, 1_400_000_000_000, 'dir mtime set after its children');
    assert.is(st('bin').mtimeMs, 1_500_000_000_000);
    assert.is(readlinkSync(join(dir, 'home/app/link')), '../../bin/su');
    assert.is(st('home/app/link').uid, 1000);
    assert.is(st('bin/su-again').ino, st('bin/su').ino);
    assert.is(st('bin/su').nlink, 2);
    assert.is(readFileSync(join(dir, longName), 'utf8'), 'long');
    assert.equal(xattrsOf(join(dir, longName)), { 'user.comment': 'hello' });
    assert.ok(st('dev/null').isCharacterDevice());
    assert.is(st('dev/null').rdev, (1 << 8) | 3);
    assert.is(st('dev/null').mode & 0o777, 0o666);
    assert.ok(st('dev/sda').isBlockDevice());
    assert.is(st('dev/sda').gid, 6);
    assert.ok(st('run/fifo').isFIFO());
    assert.is(st('run/fifo').mode & 0o777, 0o640);
    assert.is(st('big').size, 3 * 1024 * 1024 + 17);
    assert.is(st('ro').mode & 0o777, 0o555);
    assert.is(readFileSync(join(dir, 'ro/inside'), 'utf8'), 'i');
    noLeftovers();
  });
}

test('whiteouts become overlay whiteouts; opaque markers become the opaque xattr; same-layer files win', async () => {
  const { r, dir } = await unpack(
    await layerOf(p, [
      { name: 'etc/.wh.passwd', content: '' },
      { name: '.wh.gone', content: '' },
      { name: 'var/cache/.wh..wh..opq', content: '' },
      { name: 'var/cache/kept', content: 'k' },
      { name: 'x/.wh.y', content: '' },
      { name: 'x/y', content: 'this layer has y' },
      { name: 'z/w', content: 'w' },
      { name: 'z/.wh.w', content: '' },
      { name: 'a/.wh..wh.plnk', content: '' },
      { name: '.wh.redo', content: '' },
      { name: 'redo/inner', content: 'in' },
    ]),
  );
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  for (const w of ['etc/passwd', 'gone']) {
    const st = lstatSync(join(dir, w));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, `${w} is a 0/0 whiteout`);
  }
  assert.equal(xattrsOf(join(dir, 'var/cache')), { 'trusted.overlay.opaque': 'y' });
  assert.is(readFileSync(join(dir, 'var/cache/kept'), 'utf8'), 'k');
  assert.is(readFileSync(join(dir, 'x/y'), 'utf8'), 'this layer has y');
  assert.is(readFileSync(join(dir, 'z/w'), 'utf8'), 'w');
  assert.not.ok(existsSync(join(dir, 'a')), 'AUFS metadata is not unpacked');
  assert.is(readFileSync(join(dir, 'redo/inner'), 'utf8'), 'in', 'a dir of the same layer wins over its whiteout');
  assert.equal(xattrsOf(join(dir, 'etc')), {}, 'a whiteout does not make its dir opaque');
});

test('a layer may not smuggle overlay xattrs', async () => {
  const { r, dir } = await unpack(await layerOf(p, [{ name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }]));
  assert.ok(E.isRight(r));
  assert.equal(xattrsOf(join(dir, 'd')), {});
});

test('a truncated gzip layer fails and leaves no snapshot', async () => {
  const tarBytes = await tarOf([{ name: 'a', content: Buffer.alloc(200_000, 'a') }, { name: 'b', content: 'b' }]);
  const gz = gzipSync(tarBytes);
  const layer = await putLayer(p, tarBytes, 'gzip', gz.subarray(0, Math.floor(gz.length / 2)));
  const { r, dir } = await unpack(layer);
  assert.ok(E.isLeft(r));
  if (E.isLeft(r)) {
    assert.is(r.left._tag, 'CorruptLayer', r.left.message);
    assert.match(r.left.message, /^unpack layer sha256:[a-f0-9]{64}: corrupt or truncated layer/);
  }
  assert.not.ok(existsSync(dir));
  noLeftovers();
});

test('a truncated zstd layer and a truncated plain tar fail cleanly', async () => {
  const tarBytes = await tarOf([{ name: 'a', content: Buffer.alloc(100_000, 'a') }]);
  for (const [how, bytes] of [['zstd', execFileSync('zstd', ['-q', '-c'], { input: tarBytes })], ['none', tarBytes]] as const) {
    const layer = await putLayer(p, tarBytes, how, bytes.subarray(0, Math.floor(bytes.length / 3)));
    const { r, dir } = await unpack(layer);
    assert.ok(E.isLeft(r) && r.left._tag === 'CorruptLayer', E.isLeft(r) ? r.left.message : 'succeeded');
    assert.not.ok(existsSync(dir));
  }
  noLeftovers();
});

test('bytes that are not a tar at all fail as a corrupt layer', async () => {
  const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 251));
  const layer = await putLayer(p, garbage, 'none', garbage);
  const { r, dir } = await unpack(layer);
  assert.ok(E.isLeft(r) && r.left._tag === 'CorruptLayer', E.isLeft(r) ? r.left.message : 'succeeded');
  assert.not.ok(existsSync(dir));
  noLeftovers();
});

test('a blob whose bytes changed on disk fails with DigestMismatch', async () => {
  const layer = await layerOf(p, [{ name: 'a', content: 'original' }], 'none');
  const file = p.blob(layer.descriptor.digest);
  execFileSync('chmod', ['u+w', file]);
  const bytes = readFileSync(file);
  bytes[600] = 'X'.charCodeAt(0); // inside the file body: still a valid tar
  execFileSync('dd', ['of=' + file, 'conv=notrunc', 'status=none'], { input: bytes });
  const { r, dir } = await unpack(layer);
  assert.ok(E.isLeft(r) && r.left._tag === 'DigestMismatch', E.isLeft(r) ? r.left.message : 'succeeded');
  assert.not.ok(existsSync(dir));
  noLeftovers();
});

test('a layer whose tar does not match the config diff ID fails with DiffIdMismatch', async () => {
  const real = await layerOf(p, [{ name: 'a', content: 'a' }]);
  const other = await layerOf(p, [{ name: 'b', content: 'b' }]);
  const [chainId] = chainIds([other.diffId]);
  const r = await unpackLayer(p, real.descriptor, other.diffId, chainId!, { sync: false })();
  assert.ok(E.isLeft(r) && r.left._tag === 'DiffIdMismatch' && r.left.message.includes(other.diffId), E.isLeft(r) ? r.left.message : '');
  assert.not.ok(existsSync(snapshotDir(p, chainId!)));
  noLeftovers();
});

test('a missing blob and a non-layer media type are clear errors', async () => {
  const layer = await layerOf(p, [{ name: 'a', content: 'a' }]);
  const missing = { ...layer.descriptor, digest: `sha256:${'0'.repeat(64)}` as typeof layer.descriptor.digest };
  const [id] = chainIds([layer.diffId]);
  const r1 = await unpackLayer(p, missing, layer.diffId, id!, { sync: false })();
  assert.ok(E.isLeft(r1) && r1.left._tag === 'BlobNotFound' && r1.left.exitCode === 2);
  const r2 = await unpackLayer(p, { ...layer.descriptor, mediaType: 'application/vnd.oci.image.config.v1+json' }, layer.diffId, id!, { sync: false })();
  assert.ok(E.isLeft(r2) && r2.left._tag === 'NotALayer');
});

test('a decompression bomb is bounded by free disk and reported as NoSpace', async () => {
  const mnt = tempDir('tsd-small-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  try {
    const small = paths(join(mnt, 'store'));
    mkdirSync(small.root);
    const opened = await openStore(small.root)();
    assert.ok(E.isRight(opened));
    const tarBytes = await tarOf([{ name: 'zeros', content: Buffer.alloc(64 * 1024 * 1024) }]);
    const layer = await putLayer(small, tarBytes, 'gzip');
    assert.ok(layer.descriptor.size < 200_000, 'the blob is small');
    const [id] = chainIds([layer.diffId]);
    const r = await unpackLayer(small, layer.descriptor, layer.diffId, id!, { sync: false })();
    assert.ok(E.isLeft(r) && r.left._tag === 'NoSpace' && r.left.exitCode === 125, E.isLeft(r) ? r.left.message : 'succeeded');
    if (E.isLeft(r)) assert.match(r.left.message, /no space left on device/);
    assert.equal(readdirSync(small.snapshots), [], 'nothing left behind');
    assert.ok(existsSync(small.blob(layer.descriptor.digest)), 'the blob is still stored');
  } finally {
    execFileSync('umount', [mnt]);
  }
});

test('ensureSnapshots unpacks an image once, lowest layer first; then only looks', async () => {
  await makeImage(p, 'docker.io/library/two:1', [
    [{ name: 'a', content: 'a' }],
    [{ name: 'b', content: 'b' }],
  ]);
  const img = await resolveImage(p, 'docker.io/library/two:1')();
  assert.ok(E.isRight(img));
  if (E.isLeft(img)) return;
  const first = await ensureSnapshots(p, img.right, { sync: true })();
  assert.ok(E.isRight(first), E.isLeft(first) ? first.left.message : '');
  if (E.isLeft(first)) return;
  const ids = chainIds(img.right.config.rootfs.diff_ids);
  assert.equal(first.right, ids.map((id) => snapshotDir(p, id)));
  assert.ok(existsSync(join(first.right[0]!, 'a')) && existsSync(join(first.right[1]!, 'b')));
  const inode = statSync(first.right[1]!).ino;
  const again = await ensureSnapshots(p, img.right)();
  assert.equal(again, first);
  assert.is(statSync(first.right[1]!).ino, inode, 'not unpacked again');
  const listed = await listSnapshots(p)();
  assert.ok(E.isRight(listed) && ids.every((id) => listed.right.some((s) => s.chainId === id && s.entries === 1)));
});

test('an image without layers gets the empty lowerdir', async () => {
  await makeImage(p, 'docker.io/library/empty:1', []);
  const img = await resolveImage(p, 'docker.io/library/empty:1')();
  assert.ok(E.isRight(img));
  if (E.isLeft(img)) return;
  const r = await ensureSnapshots(p, img.right)();
  assert.equal(r, E.right([emptySnapshotDir(p)]));
  assert.equal(readdirSync(emptySnapshotDir(p)), []);
});

test('removeSnapshot removes one; stale temp dirs of dead processes are cleaned', async () => {
  const { r, chainId, dir } = await unpack(await layerOf(p, [{ name: 'gone-soon', content: 'x' }]));
  assert.ok(E.isRight(r));
  assert.equal(await removeSnapshot(p, chainId)(), E.right(true));
  assert.not.ok(existsSync(dir));
  assert.equal(await removeSnapshot(p, chainId)(), E.right(false));
  mkdirSync(join(p.snapshots, '.unpack-999999-1-abc', 'fs'), { recursive: true });
  assert.ok((await removeStaleTemps(p)) >= 1);
  noLeftovers();
});

test.run();
