// gc keeps everything referenced (tags, untagged entries, containers' images, roots/, live
// leases) and removes the rest; prune drops untagged images first; df reports reclaimable space.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { ingest } from '../../src/store/blob.js';
import { digestOf } from '../../src/oci/digest.js';
import { REPO, layerTar, makeImage, removeDir, tempStore, tsd } from '../support/tsd.js';
import type { StorePaths } from '../../src/store/layout.js';

const blobs = (root: string): string[] => readdirSync(join(root, 'blobs/sha256')).map((h) => `sha256:${h}`).sort();

const put = async (p: StorePaths, text: string) => {
  const r = await ingest(p, Readable.from([Buffer.from(text)]))();
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right.digest;
};

/** This test process leased every blob it wrote: end those leases, as its exit would. */
const endMyLeases = (p: StorePaths): void => {
  for (const n of readdirSync(p.leases)) if (n.startsWith(`${process.pid}-`)) rmSync(join(p.leases, n));
};

/** The digests an image needs, as tsd-store inspect reports them. */
const closure = async (root: string, ref: string): Promise<string[]> => {
  const r = await tsd('store', ['inspect', ref], { root });
  const j = JSON.parse(r.stdout);
  return [j.digest, j.manifest.config.digest, ...j.manifest.layers.map((l: { digest: string }) => l.digest)];
};

test('gc keeps what tags reach, removes the rest, and reports it', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/keep:1', [[{ name: 'a', content: 'kept layer' }]]);
  await makeImage(p, 'localhost/drop:1', [[{ name: 'b', content: 'dropped layer' }]]);
  const garbage = await put(p, 'an orphan blob');
  endMyLeases(p);
  const keep = await closure(p.root, 'localhost/keep:1');
  const drop = await closure(p.root, 'localhost/drop:1');
  assert.is((await tsd('store', ['rm', 'localhost/drop:1'], { root: p.root })).code, 0);
  const dry = await tsd('store', ['gc', '--dry-run'], { root: p.root });
  assert.is(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, `Would delete: ${garbage}`);
  assert.is(blobs(p.root).length, 7, 'dry run removes nothing');
  const df = await tsd('store', ['df', '--json'], { root: p.root });
  const images = df.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((r) => r.kind === 'Images');
  assert.ok(images.reclaimable > 0 && images.count === 7);
  const gc = await tsd('store', ['gc', '--json'], { root: p.root });
  assert.is(gc.code, 0, gc.stderr);
  const report = JSON.parse(gc.stdout);
  assert.equal(report.removed.map((b: { digest: string }) => b.digest).sort(), [...drop, garbage].sort());
  assert.equal(blobs(p.root), keep.sort());
  const again = await tsd('store', ['gc'], { root: p.root });
  assert.is(again.stdout, 'Total reclaimed space: 0B\n');
  assert.is((await tsd('store', ['fsck'], { root: p.root })).code, 0);
  removeDir(p.root);
});

test('a live lease protects a blob no tag reaches; a dead one does not', async () => {
  const p = await tempStore();
  const leased = digestOf('leased by a live writer');
  // a real writer process: it leases (via the library) and writes the blob, then keeps running
  const script = `
    import { ingest } from '${REPO}/src/store/blob.ts';
    import { paths } from '${REPO}/src/store/layout.ts';
    import { Readable } from 'node:stream';
    const r = await ingest(paths(process.argv[1]), Readable.from([Buffer.from('leased by a live writer')]))();
    console.log(r._tag);
    setInterval(() => {}, 1000);`;
  const writer = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, p.root], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => writer.stdout.once('data', () => r()));
  assert.ok(existsSync(p.blob(leased)));
  const orphan = await put(p, 'not leased by anyone alive');
  // this test process leased `orphan` when it wrote it: give that lease to a dead process
  const mine = readdirSync(p.leases).find((n) => n.startsWith(`${process.pid}-`))!;
  renameSync(join(p.leases, mine), join(p.leases, `999999999-1`));
  const gc = await tsd('store', ['gc'], { root: p.root });
  assert.is(gc.code, 0, gc.stderr);
  assert.ok(existsSync(p.blob(leased)), 'the live lease kept the blob');
  assert.not.ok(existsSync(p.blob(orphan)), 'the dead lease did not');
  assert.not.ok(existsSync(join(p.leases, '999999999-1')), 'the dead lease was removed');
  writer.kill('SIGKILL');
  await new Promise((r) => writer.on('close', r));
  const after = await tsd('store', ['gc'], { root: p.root });
  assert.match(after.stdout, `Deleted: ${leased}`);
  removeDir(p.root);
});

test('a tool that leased blobs removes its lease when it exits', async () => {
  const p = await tempStore();
  const r = await tsd('store', ['import', 'localhost/leased:1'], { root: p.root, input: await layerTar([{ name: 'f', content: 'imported' }]) });
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(p.leases), []);
  removeDir(p.root);
});

test('containers/*/image and roots/* keep an image; prune drops untagged entries', async () => {
  const p = await tempStore();
  const viaContainer = await makeImage(p, 'localhost/c:1', [[{ name: 'c', content: 'container image' }]]);
  const viaRoot = await makeImage(p, 'localhost/r:1', [[{ name: 'r', content: 'pinned by a build' }]]);
  endMyLeases(p);
  const cClosure = await closure(p.root, 'localhost/c:1');
  const rClosure = await closure(p.root, 'localhost/r:1');
  mkdirSync(join(p.containers, 'abc123'), { recursive: true });
  writeFileSync(join(p.containers, 'abc123', 'image'), `${viaContainer.digest}\n`);
  mkdirSync(join(p.root, 'roots'), { recursive: true });
  writeFileSync(join(p.root, 'roots', 'build-42'), `${viaRoot.digest}\n`);
  // an untagged image: imported without a name
  const untagged = await tsd('store', ['import'], { root: p.root, input: await (await import('./busybox.js')).busyboxTar() });
  assert.is(untagged.code, 0, untagged.stderr);
  const u = JSON.parse(untagged.stdout);
  assert.is(u.ref, undefined);
  await tsd('store', ['rm', 'localhost/c:1', 'localhost/r:1'], { root: p.root });
  const gc = await tsd('store', ['gc', '--json'], { root: p.root });
  assert.equal(JSON.parse(gc.stdout).removed, []);
  for (const d of [...cClosure, ...rClosure, u.digest]) assert.ok(existsSync(p.blob(d)), `${d} kept`);
  const prune = await tsd('store', ['prune', '--json'], { root: p.root });
  assert.is(prune.code, 0, prune.stderr);
  const pr = JSON.parse(prune.stdout);
  assert.is(pr.untagged, 1);
  assert.is(pr.removed.length, 3, 'the untagged image manifest, config and layer');
  assert.not.ok(existsSync(p.blob(u.digest)));
  for (const d of [...cClosure, ...rClosure]) assert.ok(existsSync(p.blob(d as never)), `${d} still kept`);
  removeDir(p.root);
});

test('a gc killed after moving blobs aside loses nothing: the next gc puts them back', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/aside:1', [[{ name: 'x', content: 'moved aside' }]]);
  endMyLeases(p);
  const needed = await closure(p.root, 'localhost/aside:1');
  const layer = needed[2]!;
  // what a gc killed between "move aside" and "put back" leaves: the blob under a dead pid's aside name
  renameSync(p.blob(layer as never), join(p.ingest, `999999999-0000.aside-${layer.replace(':', '-')}`));
  const broken = await tsd('store', ['fsck'], { root: p.root });
  assert.is(broken.code, 1);
  const gc = await tsd('store', ['gc'], { root: p.root });
  assert.is(gc.code, 0, gc.stderr);
  assert.ok(existsSync(p.blob(layer as never)), 'put back');
  assert.is((await tsd('store', ['fsck'], { root: p.root })).code, 0);
  removeDir(p.root);
});

test('gc running over and over while 6 writers import and tag loses nothing', async () => {
  const p = await tempStore();
  const { busyboxTar } = await import('./busybox.js');
  const tars = await Promise.all(Array.from({ length: 6 }, (_, i) => busyboxTar([{ name: 'etc/n', content: `${i}\n` }])));
  let writing = true;
  const writers = (async () => {
    const results = await Promise.all(
      tars.map(async (input, i) => {
        const imp = await tsd('store', ['import', `localhost/g${i}`], { root: p.root, input });
        const tag = imp.code === 0 ? await tsd('store', ['tag', `localhost/g${i}`, `localhost/g${i}:again`], { root: p.root }) : imp;
        return [imp.code, tag.code, imp.stderr + tag.stderr];
      }),
    );
    writing = false;
    return results;
  })();
  let gcs = 0;
  while (writing) {
    const gc = await tsd('store', ['gc'], { root: p.root });
    assert.is(gc.code, 0, gc.stderr);
    gcs++;
  }
  for (const [imp, tag, err] of await writers) assert.equal([imp, tag], [0, 0], String(err));
  assert.ok(gcs >= 1);
  const fsck = await tsd('store', ['fsck'], { root: p.root });
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  assert.match(fsck.stderr, /18 blobs, 12 images, 0 problems/);
  const ls = await tsd('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}'], { root: p.root });
  assert.is(ls.stdout.trim().split('\n').length, 12);
  removeDir(p.root);
});

test('build cache layers: gc reclaims them by default, --keep-cache SIZE keeps them', async () => {
  const p = await tempStore();
  const { recordStep, cacheKey } = await import('../../src/build/cache.js');
  const { writeLayer } = await import('../../src/store/layer-writer.js');
  const { layerTar } = await import('../support/tsd.js');
  const layer = await writeLayer(p, Readable.from([await layerTar([{ name: 'cached', content: 'a cached step' }])]))();
  if (E.isLeft(layer)) throw new Error(layer.left.message);
  await recordStep(p, cacheKey(['step']), 'RUN make', layer.right);
  endMyLeases(p);
  const digest = layer.right.descriptor.digest;
  const bad = await tsd('store', ['gc', '--keep-cache', 'lots'], { root: p.root });
  assert.is(bad.code, 1);
  assert.is(bad.stderr, 'tsd-store: --keep-cache "lots": not a size (e.g. 500MB, 2GB)\n');
  const kept = await tsd('store', ['gc', '--keep-cache', '1GB', '--json'], { root: p.root });
  assert.is(kept.code, 0, kept.stderr);
  assert.equal(JSON.parse(kept.stdout).removed, []);
  assert.ok(existsSync(p.blob(digest)));
  const { listCache } = await import('../../src/build/cache.js');
  assert.is((await listCache(p)).length, 1, 'gc --keep-cache keeps the entry');
  mkdirSync(join(p.cache, 'tmp'), { recursive: true });
  writeFileSync(join(p.cache, 'tmp', 'spool-free-1-2'), 'a context spool kept for the next build');
  const plain = await tsd('store', ['gc', '--json'], { root: p.root });
  assert.equal(JSON.parse(plain.stdout).removed.map((b: { digest: string }) => b.digest), [digest]);
  assert.equal(await listCache(p), [], 'the entry of a reclaimed layer goes with it');
  assert.equal(readdirSync(join(p.cache, 'tmp')), [], 'kept context spools go too');
  removeDir(p.root);
});

test('gc refuses to guess with a malformed index.json, and removes nothing', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/x:1', [[{ name: 'x', content: 'x' }]]);
  endMyLeases(p);
  const before = blobs(p.root);
  writeFileSync(p.index, '{"schemaVersion": 2, "manifests": [');
  const gc = await tsd('store', ['gc'], { root: p.root });
  assert.is(gc.code, 125);
  assert.match(gc.stderr, /^tsd-store: store index .*index\.json: not valid JSON \(run tsd-store fsck\); gc refuses to guess what is in use\n$/);
  assert.equal(blobs(p.root), before);
  removeDir(p.root);
});

test.run();
