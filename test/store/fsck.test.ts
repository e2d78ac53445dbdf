// fsck finds corrupt, missing, dangling and stray entries, repairs them, and raises no false
// alarm on a healthy store in use; a malformed index.json or blob gives a clear one-line error.
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, removeDir, tempStore, tsd } from '../support/tsd.js';
import { busyboxTar } from './busybox.js';

const parts = async (root: string, ref: string) => {
  const j = JSON.parse((await tsd('store', ['inspect', ref], { root })).stdout);
  return { manifest: j.digest as string, config: j.manifest.config.digest as string, layer: j.manifest.layers[0].digest as string };
};

test('a healthy store is clean (exit 0, nothing on stdout), also while writers run', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/a:1', [[{ name: 'a', content: 'a' }], [{ name: 'b', content: 'b' }]]);
  const tar = await busyboxTar();
  // fsck while 4 imports write into the same store
  const writers = Array.from({ length: 4 }, (_, i) => tsd('store', ['import', `localhost/busy${i}`], { root: p.root, input: tar }));
  const during = await Promise.all([tsd('store', ['fsck'], { root: p.root }), tsd('store', ['fsck'], { root: p.root })]);
  for (const r of await Promise.all(writers)) assert.is(r.code, 0, r.stderr);
  for (const r of during) {
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is(r.stdout, '');
  }
  const after = await tsd('store', ['fsck', '--json'], { root: p.root });
  assert.is(after.code, 0);
  const summary = JSON.parse(after.stdout);
  assert.equal({ type: summary.type, images: summary.images, problems: summary.problems }, { type: 'fsck-summary', images: 5, problems: 0 });
  removeDir(p.root);
});

test('a corrupt layer is reported, with the image that needs it; --repair removes both', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/ok:1', [[{ name: 'ok', content: 'fine' }]]);
  await makeImage(p, 'localhost/bad:1', [[{ name: 'bad', content: 'soon corrupt' }]]);
  const bad = await parts(p.root, 'localhost/bad:1');
  appendFileSync(p.blob(bad.layer as never), 'flipped');
  const r = await tsd('store', ['fsck'], { root: p.root });
  assert.is(r.code, 1);
  assert.match(r.stdout, `corrupt blob ${bad.layer}: its bytes hash to sha256:`);
  assert.match(r.stdout, `dangling image localhost/bad:1: blob ${bad.layer} is corrupt`);
  assert.is(r.stdout.trim().split('\n').length, 2, r.stdout);
  // reading the image refuses the bad bytes with one line
  const save = await tsd('store', ['save', 'localhost/bad:1'], { root: p.root });
  assert.is(save.code, 1);
  assert.match(save.stderr, new RegExp(`^tsd-store: blob ${bad.layer}: digest mismatch: expected ${bad.layer}, got sha256:[a-f0-9]{64}\\n$`));
  const repair = await tsd('store', ['fsck', '--repair'], { root: p.root });
  assert.is(repair.code, 0, repair.stderr);
  assert.match(repair.stdout, '(repaired)');
  const ls = await tsd('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}'], { root: p.root });
  assert.is(ls.stdout, 'localhost/ok:1\n');
  const clean = await tsd('store', ['fsck'], { root: p.root });
  assert.is(clean.code, 0, clean.stdout);
  removeDir(p.root);
});

test('a missing config is reported as missing and dangling; strays are found', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/m:1', [[{ name: 'm', content: 'm' }]]);
  const m = await parts(p.root, 'localhost/m:1');
  rmSync(p.blob(m.config as never));
  writeFileSync(join(p.blobs, 'sha256', 'not-a-digest'), 'x');
  const r = await tsd('store', ['fsck', '--json'], { root: p.root });
  assert.is(r.code, 1);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const kinds = lines.filter((l) => l.type === 'fsck').map((l) => l.problem).sort();
  assert.equal(kinds, ['dangling', 'missing', 'stray']);
  assert.ok(lines.some((l) => l.problem === 'missing' && l.digest === m.config && l.from === `manifest ${m.manifest}`));
  const inspect = await tsd('store', ['inspect', 'localhost/m:1'], { root: p.root });
  assert.is(inspect.code, 2);
  assert.is(inspect.stderr, `tsd-store: blob ${m.config}: not in the store\n`);
  removeDir(p.root);
});

test('a malformed index.json: one clear line from ls, fsck reports it, --repair moves it aside', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/i:1', [[{ name: 'i', content: 'i' }]]);
  writeFileSync(p.index, '{"schemaVersion":2,"manifests":[{"digest":"nope"}]}');
  const ls = await tsd('store', ['ls'], { root: p.root });
  assert.is(ls.code, 125);
  assert.match(ls.stderr, /^tsd-store: store index .*index\.json: invalid index manifests\[0\]: missing mediaType \(run tsd-store fsck\)\n$/);
  const fsck = await tsd('store', ['fsck'], { root: p.root });
  assert.is(fsck.code, 1);
  assert.match(fsck.stdout, /^broken index\.json: /);
  const repair = await tsd('store', ['fsck', '--repair'], { root: p.root });
  assert.is(repair.code, 0, repair.stderr);
  const ls2 = await tsd('store', ['ls', '--json'], { root: p.root });
  assert.is(ls2.code, 0, ls2.stderr);
  assert.is(ls2.stdout, '');
  removeDir(p.root);
});

test('a malformed manifest blob gives a clear error, not a crash', async () => {
  const p = await tempStore();
  const d = await makeImage(p, 'localhost/j:1', [[{ name: 'j', content: 'j' }]]);
  // a blob whose name matches its bytes but that is not a manifest: written under its own digest
  const junk = Buffer.from('this is not json');
  const { digestOf } = await import('../../src/oci/digest.js');
  const junkDigest = digestOf(junk);
  mkdirSync(join(p.blobs, 'sha256'), { recursive: true });
  writeFileSync(p.blob(junkDigest), junk);
  const index = JSON.parse((await import('node:fs')).readFileSync(p.index, 'utf8'));
  index.manifests.push({ mediaType: d.mediaType, digest: junkDigest, size: junk.length, annotations: { 'org.opencontainers.image.ref.name': 'localhost/junk:1' } });
  writeFileSync(p.index, JSON.stringify(index));
  const inspect = await tsd('store', ['inspect', 'localhost/junk:1'], { root: p.root });
  assert.is(inspect.code, 125);
  assert.is(inspect.stderr, `tsd-store: manifest ${junkDigest}: invalid manifest: not valid JSON\n`);
  const fsck = await tsd('store', ['fsck'], { root: p.root });
  assert.is(fsck.code, 1);
  assert.match(fsck.stdout, `dangling image localhost/junk:1: manifest ${junkDigest}: invalid manifest: not valid JSON`);
  const ls = await tsd('store', ['ls'], { root: p.root });
  assert.is(ls.code, 0, 'ls still lists the good image');
  assert.match(ls.stdout, 'localhost/j');
  removeDir(p.root);
});

test.run();
