// tsd-run's synchronous image resolution (src/store/image-sync.ts, used only by tsd-run's start)
// answers exactly what resolveImage answers, or nothing (then tsd-run asks resolveImage).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { resolveImage } from '../../src/store/image.js';
import { resolveImageSync } from '../../src/store/image-sync.js';
import { openStoreSync } from '../../src/store/store.js';
import { holdImageSync, releaseLeases } from '../../src/store/lease.js';
import { hexOf } from '../../src/oci/digest.js';
import { tempDir, tempStore } from '../support/tsd.js';
import { busyboxImage, REF } from './busybox.js';

const p = await tempStore();
await busyboxImage(p);

test('a name, exact or normalized: the same image as resolveImage', async () => {
  for (const name of [REF, 'bb:test', 'library/bb:test', 'docker.io/bb:test']) {
    const slow = await resolveImage(p, name)();
    assert.ok(E.isRight(slow), name);
    assert.equal(resolveImageSync(p, name), E.isRight(slow) ? slow.right : undefined, name);
  }
});

test('what it does not handle plainly is left to resolveImage', async () => {
  const img = await resolveImage(p, REF)();
  if (E.isLeft(img)) throw new Error(img.left.message);
  for (const name of ['bb:other', 'nothere', hexOf(img.right.configDigest).slice(0, 12), img.right.entry.digest, `bb@${img.right.entry.digest}`]) {
    assert.is(resolveImageSync(p, name), undefined, name);
  }
  // a config blob set aside (as a gc does for a moment) or changed on disk: not answered here
  const blob = p.blob(img.right.configDigest);
  renameSync(blob, `${blob}.aside`);
  assert.is(resolveImageSync(p, REF), undefined);
  assert.is(holdImageSync(p, img.right), false);
  renameSync(`${blob}.aside`, blob);
  assert.is(holdImageSync(p, img.right), true);
  await releaseLeases(p);
  writeFileSync(p.index, '{not json');
  assert.is(resolveImageSync(p, REF), undefined);
});

test('openStoreSync: a complete store as it is; an empty dir gets the layout', () => {
  const index = readFileSync(p.index, 'utf8');
  const same = openStoreSync(p.root);
  assert.ok(E.isRight(same) && same.right.root === p.root && same.right.index === p.index);
  assert.is(readFileSync(p.index, 'utf8'), index);
  const empty = openStoreSync(tempDir('tsd-empty-'));
  assert.ok(E.isRight(empty));
  if (E.isRight(empty)) {
    assert.ok(existsSync(empty.right.ociLayout));
    assert.equal(JSON.parse(readFileSync(empty.right.index, 'utf8')).manifests, []);
  }
});

test.run();
