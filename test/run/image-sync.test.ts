// tsd-run's synchronous image resolution (src/store/image-sync.ts, used only by tsd-run's start)
// answers exactly what resolveImage answers, or nothing (then tsd-run asks resolveImage).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renameSync, writeFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { resolveImage } from '../../src/store/image.js';
import { resolveImageSync } from '../../src/store/image-sync.js';
import { openExistingStore } from '../../src/store/store.js';
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

test('openExistingStore: only a store whose layout exists', () => {
  assert.ok(openExistingStore(p.root));
  assert.is(openExistingStore(tempDir('tsd-empty-')), undefined);
});

test.run();
