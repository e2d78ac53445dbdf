// Real kernel overlay mounts of snapshots: the merged tree is what the layers say.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { MOUNT_DATA_LIMIT, mountOverlay, planOverlayMount, unmount } from '../../src/snapshot/overlay.js';
import { snapshotDir, unpackLayer } from '../../src/snapshot/snapshot.js';
import type { StorePaths } from '../../src/store/layout.js';
import { tempDir, tempStore } from '../support/tsd.js';
import { layerOf, type Spec } from './layers.js';

let p: StorePaths;
test.before(async () => {
  p = await tempStore();
});

/** Unpacks layers as one image's stack; returns lowerdirs lowest first. */
const stack = async (layers: readonly (readonly Spec[])[]): Promise<string[]> => {
  const stored = [];
  for (const l of layers) stored.push(await layerOf(p, l));
  const ids = chainIds(stored.map((s) => s.diffId));
  for (const [i, s] of stored.entries()) {
    const r = await unpackLayer(p, s.descriptor, s.diffId, ids[i]!, { sync: false })();
    if (E.isLeft(r)) throw new Error(r.left.message);
  }
  return ids.map((id) => snapshotDir(p, id));
};

const container = () => {
  const d = tempDir('tsd-ctr-');
  for (const n of ['upper', 'work', 'rootfs']) mkdirSync(join(d, n));
  return { upperdir: join(d, 'upper'), workdir: join(d, 'work'), target: join(d, 'rootfs') };
};

test('two snapshots merge: whiteouts hide, opaque dirs replace, upper writes stay in the upper dir', async () => {
  const lowers = await stack([
    [
      { name: 'etc/passwd', content: 'root:x:0:0\n' },
      { name: 'etc/group', content: 'root:x:0:\n' },
      { name: 'bin/a', content: 'a' },
      { name: 'bin/b', content: 'b' },
      { name: 'dir/sub/f', content: 'f' },
      { name: 'gone/deep/file', content: 'x' },
    ],
    [
      { name: 'etc/.wh.passwd', content: '' },
      { name: 'bin/.wh..wh..opq', content: '' },
      { name: 'bin/c', content: 'c' },
      { name: '.wh.gone', content: '' },
      { name: 'new', content: 'new' },
      { name: 'dir/sub/f', content: 'f2' },
    ],
  ]);
  const c = container();
  const r = await mountOverlay({ lowerdirs: lowers, ...c })();
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  try {
    const root = c.target;
    assert.equal(readdirSync(join(root, 'etc')), ['group']);
    assert.equal(readdirSync(join(root, 'bin')), ['c']);
    assert.not.ok(existsSync(join(root, 'gone')));
    assert.is(readFileSync(join(root, 'new'), 'utf8'), 'new');
    assert.is(readFileSync(join(root, 'dir/sub/f'), 'utf8'), 'f2');
    writeFileSync(join(root, 'etc/group'), 'changed');
    assert.is(readFileSync(join(c.upperdir, 'etc/group'), 'utf8'), 'changed');
    assert.is(readFileSync(join(lowers[0]!, 'etc/group'), 'utf8'), 'root:x:0:\n', 'the shared snapshot is untouched');
  } finally {
    const u = await unmount(c.target)();
    assert.ok(E.isRight(u), E.isLeft(u) ? u.left.message : '');
  }
  assert.equal(readdirSync(c.target), [], 'unmounted');
});

test('many lowerdirs beyond one page of mount data mount through short names', async () => {
  const n = 60;
  const layers = Array.from({ length: n }, (_, i) => [
    { name: `f${i}`, content: String(i) },
    { name: 'top', content: `layer ${i}` },
  ]);
  const lowers = await stack(layers);
  assert.ok(lowers.join(':').length > MOUNT_DATA_LIMIT, 'the plain option would not fit');
  const c = container();
  const plan = planOverlayMount({ lowerdirs: lowers, ...c });
  assert.ok(E.isRight(plan) && plan.right.links.length === n);
  const r = await mountOverlay({ lowerdirs: lowers, ...c })();
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  try {
    assert.is(readdirSync(c.target).length, n + 1);
    assert.is(readFileSync(join(c.target, 'top'), 'utf8'), `layer ${n - 1}`, 'the highest layer wins');
    assert.is(readFileSync(join(c.target, 'f0'), 'utf8'), '0');
  } finally {
    await unmount(c.target)();
  }
});

test('read-only mounts: one snapshot is bound read-only, several are merged', async () => {
  const one = await stack([[{ name: 'only', content: 'o' }]]);
  const t1 = container().target;
  assert.ok(E.isRight(await mountOverlay({ lowerdirs: one, target: t1 })()));
  try {
    assert.is(readFileSync(join(t1, 'only'), 'utf8'), 'o');
    assert.throws(() => writeFileSync(join(t1, 'x'), 'x'), /EROFS|read-only/);
  } finally {
    await unmount(t1)();
  }
});

test('plans: top layer first, short names when too long or when a path holds "," or ":"', () => {
  const plain = planOverlayMount({ lowerdirs: ['/s/1', '/s/2'], upperdir: '/c/u', workdir: '/c/w', target: '/c/r' });
  assert.equal(plain, E.right({ args: ['-t', 'overlay', 'overlay', '-o', 'lowerdir=/s/2:/s/1,upperdir=/c/u,workdir=/c/w', '/c/r'], links: [] }));
  const odd = planOverlayMount({ lowerdirs: ['/s/a:b', '/s/2'], upperdir: '/c,u', workdir: '/c/w', target: '/c/r' });
  assert.ok(E.isRight(odd));
  if (E.isRight(odd)) {
    assert.is(odd.right.args[4], 'lowerdir=0:1,upperdir=u,workdir=/c/w');
    assert.equal(odd.right.links, [{ name: '0', target: '/s/2' }, { name: '1', target: '/s/a:b' }, { name: 'u', target: '/c,u' }]);
  }
  const bad = [
    planOverlayMount({ lowerdirs: [], target: '/t' }),
    planOverlayMount({ lowerdirs: ['/a'], upperdir: '/u', target: '/t' }),
    planOverlayMount({ lowerdirs: Array.from({ length: 2000 }, (_, i) => `/l/${i}`), upperdir: '/u', workdir: '/w', target: '/t' }),
  ];
  for (const b of bad) assert.ok(E.isLeft(b) && b.left._tag === 'InvalidMount', JSON.stringify(b));
});

test('mount failures are one clear line', async () => {
  const r = await mountOverlay({ lowerdirs: ['/nonexistent/a', '/nonexistent/b'], ...container() })();
  assert.ok(E.isLeft(r) && r.left._tag === 'MountFailed' && !r.left.message.includes('\n'), E.isLeft(r) ? r.left.message : '');
});

test.run();
