// gc collects unpacked layers (snapshots) with the blobs: the snapshot of an image that is
// untagged and pruned goes; one a container stacks, one a tagged image needs, one a live lease
// names and one made in the last ten minutes stay (docs/snapshots.md, src/snapshot/collect.ts).
import { appendFileSync, mkdirSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { collectSnapshots } from '../../src/snapshot/collect.js';
import { ensureSnapshots, snapshotHome } from '../../src/snapshot/snapshot.js';
import { reachFromRoots } from '../../src/store/gc.js';
import { currentProcess } from '../../src/store/lock.js';
import { resolveImage } from '../../src/store/image.js';
import type { StorePaths } from '../../src/store/layout.js';
import type { Digest } from '../../src/oci/digest.js';
import { makeImage, removeDir, tempStore, tsd } from '../support/tsd.js';

const unpacked = async (p: StorePaths, ref: string, layers: { name: string; content: string }[][]) => {
  await makeImage(p, ref, layers);
  const img = await resolveImage(p, ref)();
  if (E.isLeft(img)) throw new Error(img.left.message);
  const r = await ensureSnapshots(p, img.right, { sync: false })();
  if (E.isLeft(r)) throw new Error(r.left.message);
  return { ids: chainIds(img.right.config.rootfs.diff_ids), configDigest: img.right.configDigest, manifest: img.right.entry.digest, layers: img.right.manifest.layers.map((l) => l.digest) };
};

/** Makes a snapshot look as if it was unpacked an hour ago (past gc's ten-minute grace). */
const age = (p: StorePaths, ids: readonly Digest[]) => {
  const then = new Date(Date.now() - 3600_000);
  for (const id of ids) utimesSync(snapshotHome(p, id), then, then);
};

const snapshots = (p: StorePaths) => readdirSync(p.snapshots).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((h) => `sha256:${h}`).sort();

const endMyLeases = (p: StorePaths): void => {
  for (const n of readdirSync(p.leases)) if (n.startsWith(`${process.pid}-`)) rmSync(join(p.leases, n));
};

test('prune removes the snapshots of an untagged image; keeps those a tag or a container needs', async () => {
  const p = await tempStore();
  const kept = await unpacked(p, 'localhost/kept:1', [[{ name: 'k', content: 'kept' }]]);
  const dropped = await unpacked(p, 'localhost/dropped:1', [[{ name: 'd', content: 'dropped' }], [{ name: 'd2', content: 'two' }]]);
  const used = await unpacked(p, 'localhost/used:1', [[{ name: 'u', content: 'used by a container' }]]);
  const young = await unpacked(p, 'localhost/young:1', [[{ name: 'y', content: 'young' }]]);
  endMyLeases(p);
  age(p, [...kept.ids, ...dropped.ids, ...used.ids]);
  // a container of `used` (as src/run/create.ts records it); then its image loses its name
  mkdirSync(join(p.containers, 'c1'), { recursive: true });
  writeFileSync(join(p.containers, 'c1', 'image'), `${used.manifest}\n${used.configDigest}\n`);
  writeFileSync(join(p.containers, 'c1', 'snapshots'), `${used.ids.join('\n')}\n`);
  for (const ref of ['localhost/dropped:1', 'localhost/used:1', 'localhost/young:1']) assert.is((await tsd('store', ['rm', ref], { root: p.root })).code, 0);
  const dry = await tsd('store', ['gc', '--dry-run', '--json'], { root: p.root });
  assert.is(dry.code, 0, dry.stderr);
  assert.equal([...JSON.parse(dry.stdout).snapshotsRemoved].sort(), [...dropped.ids].sort());
  assert.is(snapshots(p).length, 5, 'a dry run removes nothing');
  const r = await tsd('store', ['prune'], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  for (const id of dropped.ids) assert.match(r.stdout, `Deleted snapshot: ${id}`);
  assert.equal(snapshots(p), [...kept.ids, ...used.ids, ...young.ids].sort());
  // once the container is gone, its snapshot goes too; the young one stays until it is old
  rmSync(join(p.containers, 'c1'), { recursive: true });
  assert.is((await tsd('store', ['gc'], { root: p.root })).code, 0);
  assert.equal(snapshots(p), [...kept.ids, ...young.ids].sort());
  age(p, young.ids);
  assert.is((await tsd('store', ['gc'], { root: p.root })).code, 0);
  assert.equal(snapshots(p), [...kept.ids]);
  assert.is((await tsd('store', ['fsck'], { root: p.root })).code, 0);
  removeDir(p.root);
});

test('a live lease on an image config keeps its snapshots', async () => {
  const p = await tempStore();
  const img = await unpacked(p, 'localhost/leased:1', [[{ name: 'l', content: 'leased' }]]);
  age(p, img.ids);
  // this test process is alive and leased the image's blobs when it wrote them
  assert.is((await tsd('store', ['rm', 'localhost/leased:1'], { root: p.root })).code, 0);
  assert.is((await tsd('store', ['gc'], { root: p.root })).code, 0);
  assert.equal(snapshots(p), [...img.ids]);
  endMyLeases(p);
  assert.is((await tsd('store', ['gc'], { root: p.root })).code, 0);
  assert.equal(snapshots(p), []);
  removeDir(p.root);
});

test('roots are read after the snapshots are listed: a layer leased in between keeps its snapshot', async () => {
  // found by the concurrency suite: a build wrote and unpacked a COPY layer after gc had read the
  // leases, so gc listed the new snapshot but not the lease that kept it, and the RUN's mount failed
  const p = await tempStore();
  const img = await unpacked(p, 'localhost/late:1', [[{ name: 'late', content: 'leased late' }]]);
  assert.is((await tsd('store', ['rm', 'localhost/late:1'], { root: p.root })).code, 0);
  endMyLeases(p);
  age(p, img.ids);
  const kept = await collectSnapshots(p, async () => {
    // a writer leases the layer after the listing (written by hand: this process's in-memory
    // record says it leased the layer already, when makeImage wrote it)
    const { pid, start } = currentProcess();
    appendFileSync(join(p.leases, `${pid}-${start}`), img.layers.map((d) => `${d}\n`).join(''));
    return reachFromRoots(p);
  });
  assert.equal(kept, E.right([]));
  assert.equal(snapshots(p), [...img.ids]);
  endMyLeases(p);
  const gone = await collectSnapshots(p, () => reachFromRoots(p));
  assert.equal(gone, E.right([...img.ids]));
  removeDir(p.root);
});

test('a container that finds an unkept snapshot while gc decides keeps it: gc sets it aside, reads the roots again, puts it back', async () => {
  const p = await tempStore();
  const img = await unpacked(p, 'localhost/found:1', [[{ name: 'f', content: 'found late' }]]);
  assert.is((await tsd('store', ['rm', 'localhost/found:1'], { root: p.root })).code, 0);
  endMyLeases(p);
  age(p, img.ids);
  let reads = 0;
  const kept = await collectSnapshots(p, async () => {
    // the second read: meanwhile a tsd-run leased the image and recorded its container
    if (++reads === 2) {
      mkdirSync(join(p.containers, 'late'), { recursive: true });
      writeFileSync(join(p.containers, 'late', 'snapshots'), `${img.ids.join('\n')}\n`);
    }
    return reachFromRoots(p);
  });
  assert.is(reads, 2);
  assert.equal(kept, E.right([]));
  assert.equal(snapshots(p), [...img.ids]);
  assert.equal(readdirSync(p.snapshots).filter((n) => n.startsWith('.')), [], 'nothing left aside');
  rmSync(join(p.containers, 'late'), { recursive: true });
  assert.equal(await collectSnapshots(p, () => reachFromRoots(p)), E.right([...img.ids]));
  assert.equal(snapshots(p), []);
  removeDir(p.root);
});

test('a snapshot a killed gc left aside is put back by the next one, which then decides', async () => {
  const p = await tempStore();
  const img = await unpacked(p, 'localhost/aside:1', [[{ name: 'a', content: 'aside' }]]);
  endMyLeases(p);
  const id = img.ids[0] as Digest;
  // pid 2^22 + 1 is above Linux's pid_max: no such process is alive
  const aside = join(p.snapshots, `.aside-4194305-1-${id.slice('sha256:'.length)}`);
  renameSync(snapshotHome(p, id), aside);
  assert.equal(snapshots(p), []);
  assert.is((await tsd('store', ['gc'], { root: p.root })).code, 0);
  assert.equal(snapshots(p), [id], 'the tagged image keeps the snapshot put back');
  assert.equal(readdirSync(p.snapshots).filter((n) => n.startsWith('.aside-')), []);
  removeDir(p.root);
});

test.run();
