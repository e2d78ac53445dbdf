// tsd-pull against a real registry seeded by skopeo from OCI layouts this test makes.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Digest } from '../../src/oci/digest.js';
import { paths } from '../../src/store/layout.js';
import { OciLayout, sha256, skopeoCopy, skopeoDigest, startRegistry, type LayoutLayer, type Registry } from '../support/registry.js';
import { removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';

let reg: Registry;
let work: string;
let layout: OciLayout;
type Img = ReturnType<OciLayout['image']>;
let image: Img;
let layers: LayoutLayer[];
let arm: Img;
let amd: Img;
let indexDigest: string;

test.before(async () => {
  reg = await startRegistry();
  work = tempDir('tsd-pull-test-');
  layout = new OciLayout(join(work, 'layout'));
  const l1 = await layout.smallLayer({ 'etc/hello': 'hello\n', 'bin/tool': 'x'.repeat(5000) });
  const l2 = await layout.smallLayer({ 'etc/second': 'two\n' });
  layers = [l1, l2];
  image = layout.image(layers, { tag: 'v1' });
  amd = layout.image([l1], { architecture: 'amd64' });
  arm = layout.image([l2], { architecture: 'arm64', variant: 'v8' });
  const idx = layout.index([amd, arm].map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform })), 'multi');
  indexDigest = idx.digest;
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${reg.host}/test/app:v1`);
  await skopeoCopy(`oci:${layout.dir}:multi`, `docker://${reg.host}/test/multi:1`, ['--all']);
});

test.after(async () => {
  await reg.stop();
  removeDir(work);
});

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

test('pulls an image; every digest equals what skopeo sees', async () => {
  const p = await tempStore();
  const ref = `${reg.host}/test/app:v1`;
  const r = await tsd('pull', [ref], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.type, 'image');
  assert.is(msg.ref, ref);
  assert.is(msg.digest, skopeoDigest(`docker://${ref}`));
  assert.is(msg.digest, image.digest);
  assert.is(msg.config, image.config);
  assert.equal(msg.platform, { os: 'linux', architecture: 'amd64' });
  // skopeo's own copy of the same image names the same manifest, config and layers
  const out = join(work, 'skopeo-out');
  await skopeoCopy(`docker://${ref}`, `oci:${out}:x`);
  const theirs = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0];
  assert.is(msg.digest, theirs.digest);
  const manifest = JSON.parse(readFileSync(join(out, 'blobs/sha256', theirs.digest.slice(7)), 'utf8'));
  for (const d of [theirs.digest, manifest.config.digest, ...manifest.layers.map((l: { digest: string }) => l.digest)]) {
    assert.ok(existsSync(paths(p.root).blob(d)), `blob ${d} in the store`);
    assert.equal(readFileSync(paths(p.root).blob(d)), readFileSync(join(out, 'blobs/sha256', d.slice(7))));
  }
  // the store lists it by name
  const ls = await tsd('store', ['ls', '--json'], { root: p.root });
  assert.is(lines(ls.stdout)[0].ref, ref);
  // a second pull fetches no blob again
  const again = await tsd('pull', ['--progress=plain', ref], { root: p.root });
  assert.is(again.code, 0, again.stderr);
  assert.equal(lines(again.stdout)[0], msg);
  assert.not.match(again.stderr, /fetching/);
  assert.match(again.stderr, /already present/);
  removeDir(p.root);
});

test('a re-pull checks the store: a missing layer is fetched again, a lost name is written again, a changed config is refused', async () => {
  const p = await tempStore();
  const ref = `${reg.host}/test/app:v1`;
  const first = await tsd('pull', ['-q', ref], { root: p.root });
  assert.is(first.code, 0, first.stderr);
  const store = paths(p.root);
  const blob = (d: string) => store.blob(d as Digest);
  const layer = layers[1] as LayoutLayer;
  const bytes = readFileSync(blob(layer.digest));
  rmSync(blob(layer.digest));
  const again = await tsd('pull', ['--progress=json', ref], { root: p.root });
  assert.is(again.code, 0, again.stderr);
  assert.equal(lines(again.stdout), lines(first.stdout));
  const events = lines(again.stderr);
  assert.equal(events.filter((e) => e.event === 'done').map((e) => e.digest), [layer.digest]);
  assert.equal(events.filter((e) => e.event === 'skip').map((e) => e.digest).sort(), [image.config, (layers[0] as LayoutLayer).digest].sort());
  assert.equal(readFileSync(blob(layer.digest)), bytes);
  // every blob present but the name gone: it is written again
  writeFileSync(store.index, JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
  const renamed = await tsd('pull', ['-q', ref], { root: p.root });
  assert.is(renamed.code, 0, renamed.stderr);
  assert.is(lines((await tsd('store', ['ls', '--json'], { root: p.root })).stdout)[0].ref, ref);
  // a config whose bytes changed in the store is not trusted: one line, non-zero
  const config = blob(image.config);
  writeFileSync(config, readFileSync(config, 'utf8').replace('amd64', 'arm64'));
  const bad = await tsd('pull', ['-q', ref], { root: p.root });
  assert.is.not(bad.code, 0);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^tsd-pull: /);
  assert.match(bad.stderr, image.config.slice(7, 19));
  assert.is(bad.stdout, '');
  removeDir(p.root);
});

test('pull by digest; --progress=json prints progress events on stderr', async () => {
  const p = await tempStore();
  const ref = `${reg.host}/test/app@${image.digest}`;
  const r = await tsd('pull', ['--progress=json', ref], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.digest, image.digest);
  assert.is(msg.ref, ref);
  const events = lines(r.stderr);
  assert.ok(events.every((e) => e.type === 'progress' && e.tool === 'tsd-pull'));
  assert.equal(events.filter((e) => e.event === 'done').map((e) => e.digest).sort(), [image.config, ...layers.map((l) => l.digest)].sort());
  removeDir(p.root);
});

test('a multi-platform index: host platform by default, --platform picks another, a missing one names those available', async () => {
  const p = await tempStore();
  const ref = `${reg.host}/test/multi:1`;
  const r = await tsd('pull', ['-q', ref], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stderr, '');
  const [msg] = lines(r.stdout);
  assert.is(msg.digest, indexDigest);
  assert.is(msg.digest, skopeoDigest(`docker://${ref}`));
  assert.is(msg.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.is(msg.config, process.arch === 'arm64' ? arm.config : amd.config);
  const a = await tsd('pull', ['-q', '--platform', 'linux/arm64', ref], { root: p.root });
  assert.is(a.code, 0, a.stderr);
  assert.is(lines(a.stdout)[0].config, arm.config);
  assert.equal(lines(a.stdout)[0].platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const none = await tsd('pull', ['-q', '--platform', 'linux/s390x', ref], { root: p.root });
  assert.is(none.code, 2);
  assert.is(none.stdout, '');
  assert.match(none.stderr, /^tsd-pull: .*no image for platform linux\/s390x; available: linux\/amd64, linux\/arm64\/v8/);
  assert.is(none.stderr.trim().split('\n').length, 1);
  removeDir(p.root);
});

test('--unpack makes the snapshots of every layer while pulling', async () => {
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '--progress=plain', `${reg.host}/test/app:v1`], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  assert.is((r.stderr.match(/: unpacked/g) ?? []).length, 2, r.stderr);
  const [first, second] = layers.map((l) => l.diffId);
  const chain2 = sha256(`${first} ${second}`);
  assert.is(readFileSync(join(paths(p.root).snapshots, String(first).slice(7), 'fs', 'etc', 'hello'), 'utf8'), 'hello\n');
  assert.is(readFileSync(join(paths(p.root).snapshots, chain2.slice(7), 'fs', 'etc', 'second'), 'utf8'), 'two\n');
  removeDir(p.root);
});

test('gzip, zstd and uncompressed layers, OCI and Docker types, pull and unpack', async () => {
  const { execFileSync } = await import('node:child_process');
  const l = new OciLayout(join(work, 'layout-types'));
  const gz = await l.smallLayer({ 'gz.txt': 'gzip\n' });
  const rawTar = await l.bigLayer(1000);
  // the same kind of tar, compressed by the zstd binary
  const plain = readFileSync(join(l.dir, 'blobs/sha256', rawTar.digest.slice(7)));
  const zst = execFileSync('zstd', ['-q', '-c'], { input: plain });
  const z = { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', ...l.put(zst), diffId: rawTar.diffId };
  const docker = { ...gz, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' };
  const img = l.image([docker, rawTar, z], { tag: 'types' });
  await skopeoCopy(`oci:${l.dir}:types`, `docker://${reg.host}/test/types:1`);
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '-q', `${reg.host}/test/types:1`], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  assert.is(lines(r.stdout)[0].digest, img.digest);
  for (const d of [gz.digest, rawTar.digest, z.digest]) assert.ok(existsSync(paths(p.root).blob(d as never)), d);
  const [c1, c2, c3] = [gz.diffId, rawTar.diffId, z.diffId].reduce<string[]>((acc, id) => [...acc, acc.length ? sha256(`${acc[acc.length - 1]} ${id}`) : id], []);
  assert.is(readFileSync(join(paths(p.root).snapshots, String(c1).slice(7), 'fs', 'gz.txt'), 'utf8'), 'gzip\n');
  assert.is(readFileSync(join(paths(p.root).snapshots, String(c2).slice(7), 'fs', 'data.bin')).length, 1000);
  assert.is(readFileSync(join(paths(p.root).snapshots, String(c3).slice(7), 'fs', 'data.bin')).length, 1000);
  removeDir(p.root);
});

test('mirrors from the registries file come first; a dead mirror falls through to the next', async () => {
  const p = await tempStore();
  const config = join(work, 'registries.json');
  writeFileSync(config, JSON.stringify({ mirrors: { 'example.invalid': ['127.0.0.1:1', reg.host] } }));
  const r = await tsd('pull', ['-q', 'example.invalid/test/app:v1'], { root: p.root, env: { TSD_REGISTRIES_CONFIG: config, TSD_RETRIES: '1' } });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.ref, 'example.invalid/test/app:v1');
  assert.is(msg.digest, image.digest);
  writeFileSync(config, '{"mirrors": 3}');
  const bad = await tsd('pull', ['-q', 'example.invalid/test/app:v1'], { root: p.root, env: { TSD_REGISTRIES_CONFIG: config } });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /^tsd-pull: registries file .*registries\.json: "mirrors" must map a registry to a list of hosts\n$/);
  removeDir(p.root);
});

test('clear one-line errors: unknown tag, unknown repository, bad reference, no registry', async () => {
  const p = await tempStore();
  const missing = await tsd('pull', [`${reg.host}/test/app:nope`], { root: p.root });
  assert.is(missing.code, 2);
  assert.match(missing.stderr, new RegExp(`^tsd-pull: manifest ${reg.host}/test/app:nope: not found`));
  const repo = await tsd('pull', [`${reg.host}/no/such:1`], { root: p.root });
  assert.is(repo.code, 2);
  assert.match(repo.stderr, /no\/such:1: not found/);
  const bad = await tsd('pull', ['UPPER/Case:x'], { root: p.root });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /^tsd-pull: invalid reference/);
  const down = await tsd('pull', ['-q', '127.0.0.1:1/x:1'], { root: p.root, env: { TSD_RETRIES: '2', TSD_RETRY_BASE_MS: '10' } });
  assert.is(down.code, 125);
  assert.match(down.stderr, /^tsd-pull: manifest 127\.0\.0\.1:1\/x:1: .*ECONNREFUSED.*after 2 attempts/);
  for (const r of [missing, repo, bad, down]) {
    assert.is(r.stdout, '');
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.match(r.stderr, /\n\s+at /);
  }
  const index = JSON.parse(readFileSync(paths(p.root).index, 'utf8'));
  assert.is(index.manifests.length, 0);
  removeDir(p.root);
});

test.run();
