// save/load: what tsd saves, podman and skopeo read; what podman saves, tsd loads; hostile
// archives are refused with one line and leave no blob and no name behind.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { digestOf } from '../../src/oci/digest.js';
import { layerTar, removeDir, tempDir, tsd, type FileSpec } from '../support/tsd.js';
import { busyboxTar } from './busybox.js';

const TAG = `localhost/tsd-archive-test:${process.pid}`;
const work = tempDir('tsd-archive-');
const root = join(work, 'store');

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const blobs = (r: string): string[] => (existsSync(join(r, 'blobs/sha256')) ? readdirSync(join(r, 'blobs/sha256')).sort() : []);

test('setup: import busybox into the store', async () => {
  const r = await tsd('store', ['import', '-c', 'CMD ["sh"]', TAG], { root, input: await busyboxTar() });
  assert.is(r.code, 0, r.stderr);
});

test('save → podman load and skopeo read it (docker-archive); --format oci → skopeo oci-archive', async () => {
  const save = await tsd('store', ['save', '-o', join(work, 'img.tar'), TAG], { root });
  assert.is(save.code, 0, save.stderr);
  const inspect = JSON.parse(run('skopeo', ['inspect', `docker-archive:${join(work, 'img.tar')}`]));
  assert.equal(inspect.Layers.length, 1);
  assert.equal(inspect.Architecture, 'amd64');
  try {
    const loaded = run('podman', ['load', '-i', join(work, 'img.tar')]);
    assert.match(loaded, `Loaded image: ${TAG}`);
    const cmd = run('podman', ['image', 'inspect', '--format', '{{json .Config.Cmd}}', TAG]).trim();
    assert.is(cmd, '["sh"]');
    const ran = run('podman', ['run', '--rm', '--net=none', TAG, 'sh', '-c', 'echo hi from $(busybox | head -1 | cut -d" " -f1)']).trim();
    assert.is(ran, 'hi from BusyBox');
  } finally {
    try {
      run('podman', ['rmi', '-f', TAG]);
    } catch {}
  }
  const oci = await tsd('store', ['save', '--format', 'oci', '-o', join(work, 'oci.tar'), TAG], { root });
  assert.is(oci.code, 0, oci.stderr);
  const listing = run('tar', ['tf', join(work, 'oci.tar')]);
  assert.not.match(listing, 'manifest.json');
  const ociInspect = JSON.parse(run('skopeo', ['inspect', `oci-archive:${join(work, 'oci.tar')}`]));
  assert.is(ociInspect.Digest, JSON.parse((await tsd('store', ['inspect', TAG], { root })).stdout).digest);
});

test('save -o onto a fifo writes into it and leaves it a fifo (as -o /dev/null must leave a device)', async () => {
  const fifo = join(work, 'pipe');
  run('mkfifo', [fifo]);
  const reader = new Promise<Buffer>((resolve, reject) =>
    execFile('cat', [fifo], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 30_000 }, (e, out) => (e ? reject(e) : resolve(out))),
  );
  const save = await tsd('store', ['save', '-o', fifo, TAG], { root });
  assert.is(save.code, 0, save.stderr);
  const bytes = await reader;
  assert.ok(lstatSync(fifo).isFIFO(), 'the fifo was replaced');
  assert.equal(readdirSync(work).filter((n) => n.startsWith('pipe.')), [], 'a temp file was left beside the fifo');
  assert.equal(bytes, readFileSync(join(work, 'img.tar')), 'the fifo carried the same archive a file gets');
});

test('load reads back what save wrote (plain, gzip, OCI) into another store', async () => {
  const other = join(work, 'other');
  const tarBytes = readFileSync(join(work, 'img.tar'));
  for (const input of [tarBytes, gzipSync(tarBytes)]) {
    const r = await tsd('store', ['load'], { root: other, input });
    assert.is(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout);
    assert.is(m.type, 'image');
    assert.is(m.ref, TAG);
  }
  const fsck = await tsd('store', ['fsck'], { root: other });
  assert.is(fsck.code, 0, fsck.stdout);
  const ours = JSON.parse((await tsd('store', ['inspect', TAG], { root })).stdout);
  const theirs = JSON.parse((await tsd('store', ['inspect', TAG], { root: other })).stdout);
  assert.is(theirs.digest, ours.digest, 'same manifest digest after a round trip');
  removeDir(other);
});

test('load reads what podman save writes (docker-archive with uncompressed layers and symlinks)', async () => {
  const other = join(work, 'podman-in');
  try {
    run('podman', ['load', '-i', join(work, 'img.tar')]);
    run('podman', ['save', '-o', join(work, 'podman.tar'), TAG]);
  } finally {
    try {
      run('podman', ['rmi', '-f', TAG]);
    } catch {}
  }
  const r = await tsd('store', ['load', '-i', join(work, 'podman.tar')], { root: other });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).ref, TAG);
  const ours = JSON.parse((await tsd('store', ['inspect', TAG], { root })).stdout);
  const theirs = JSON.parse((await tsd('store', ['inspect', TAG], { root: other })).stdout);
  assert.is(theirs.id, ours.id, 'same config (image ID)');
  assert.is(theirs.config.rootfs.diff_ids[0], ours.config.rootfs.diff_ids[0]);
  removeDir(other);
});

// ---- hostile archives -------------------------------------------------------------------

const layer = await layerTar([{ name: 'hello', content: 'hello\n' }]);
const config = (diffIds: string[]) => JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } });

const dockerArchive = (files: FileSpec[]): Promise<Buffer> => layerTar(files);

const refused = async (name: string, archive: Buffer, message: RegExp, code = 1) => {
  const target = join(work, `hostile-${name}`);
  const r = await tsd('store', ['load'], { root: target, input: archive });
  assert.is(r.code, code, `${name}: ${r.stderr}`);
  assert.match(r.stderr, message, name);
  assert.is(r.stderr.split('\n').length, 2, `${name}: one line`);
  assert.is(r.stdout, '');
  assert.equal(blobs(target), [], `${name}: no blob kept`);
  assert.equal(readdirSync(join(target, 'ingest')), [], `${name}: no temp file left`);
  const ls = await tsd('store', ['ls', '--json'], { root: target });
  assert.is(ls.stdout, '', `${name}: nothing named`);
};

test('hostile: entry names and links that leave the archive', async () => {
  await refused('traversal', await dockerArchive([{ name: '../../escape', content: 'x' }]), /^tsd-store: archive: entry "\.\.\/\.\.\/escape": path escapes the archive\n$/);
  await refused('absolute', await dockerArchive([{ name: '/etc/passwd', content: 'x' }]), /absolute path/);
  await refused(
    'symlink',
    await dockerArchive([{ name: 'l/layer.tar', type: 'symlink', linkname: '../../../etc/shadow' }]),
    /^tsd-store: archive: entry "l\/layer\.tar": link target "\.\.\/\.\.\/\.\.\/etc\/shadow" escapes the archive\n$/,
  );
});

test('hostile: a lying manifest.json (layer does not match the diff_id) and missing files', async () => {
  const cfg = config([digestOf('some other layer')]);
  await refused(
    'lying',
    await dockerArchive([
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:1'], Layers: ['l.tar'] }]) },
      { name: 'c.json', content: cfg },
      { name: 'l.tar', content: layer },
    ]),
    new RegExp(`^tsd-store: archive: layer l\\.tar: digest mismatch: the config's diff_id is ${digestOf('some other layer')}, the layer hashes to ${digestOf(layer)}\\n$`),
  );
  await refused(
    'missing',
    await dockerArchive([
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: ['evil:1'], Layers: ['nowhere.tar'] }]) },
      { name: 'c.json', content: config([digestOf(layer)]) },
    ]),
    /^tsd-store: archive: manifest\.json\[0\] names "nowhere\.tar", which is not in the archive\n$/,
  );
  await refused('not-a-list', await dockerArchive([{ name: 'manifest.json', content: '{"Config":1}' }]), /manifest\.json is not a non-empty list/);
  await refused('bad-tag', await dockerArchive([
    { name: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', RepoTags: ['UPPER/Case:1'], Layers: ['l.tar'] }]) },
    { name: 'c.json', content: config([digestOf(layer)]) },
    { name: 'l.tar', content: layer },
  ]), /RepoTags: "UPPER\/Case:1" is not an image name/);
});

test('hostile: an OCI blob whose bytes do not match its name; a descriptor with a wrong size', async () => {
  const cfg = config([digestOf(layer)]);
  const manifest = (layerSize: number) =>
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layerSize }] });
  const oci = (m: string, layerBytes: Buffer) =>
    layerTar([
      { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(m), size: m.length, annotations: { 'io.containerd.image.name': 'docker.io/library/evil:1' } }] }) },
      { name: `blobs/sha256/${digestOf(m).slice(7)}`, content: m },
      { name: `blobs/sha256/${digestOf(cfg).slice(7)}`, content: cfg },
      { name: `blobs/sha256/${digestOf(layer).slice(7)}`, content: layerBytes },
    ]);
  const tampered = Buffer.from(layer);
  tampered[600] = tampered[600]! ^ 1;
  await refused('oci-digest', await oci(manifest(layer.length), tampered), new RegExp(`^tsd-store: archive: entry blobs/sha256/${digestOf(layer).slice(7)}: digest mismatch: content hashes to ${digestOf(tampered)}\\n$`));
  await refused('oci-size', await oci(manifest(5), layer), /^tsd-store: archive: blob sha256:[a-f0-9]+: manifest sha256:[a-f0-9]+ says 5 bytes, the archive holds \d+\n$/);
  // and the honest version of the same archive loads
  const ok = await tsd('store', ['load'], { root: join(work, 'honest'), input: await oci(manifest(layer.length), layer) });
  assert.is(ok.code, 0, ok.stderr);
  assert.is(JSON.parse(ok.stdout).ref, 'docker.io/library/evil:1');
});

test('an OCI archive whose index names platforms it does not hold (as Docker saves) loads the one it holds', async () => {
  const cfg = config([digestOf(layer)]);
  const m = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }] });
  const absent = digestOf('the arm64 manifest, not saved');
  const idx = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: absent, size: 500, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(m), size: m.length, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  });
  const archive = await layerTar([
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', content: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(idx), size: idx.length, annotations: { 'io.containerd.image.name': 'docker.io/library/multi:1', 'org.opencontainers.image.ref.name': '1' } }] }) },
    { name: `blobs/sha256/${digestOf(idx).slice(7)}`, content: idx },
    { name: `blobs/sha256/${digestOf(m).slice(7)}`, content: m },
    { name: `blobs/sha256/${digestOf(cfg).slice(7)}`, content: cfg },
    { name: `blobs/sha256/${digestOf(layer).slice(7)}`, content: layer },
  ]);
  const target = join(work, 'multi');
  const r = await tsd('store', ['load'], { root: target, input: archive });
  assert.is(r.code, 0, r.stderr);
  const msg = JSON.parse(r.stdout);
  assert.equal([msg.ref, msg.digest], ['docker.io/library/multi:1', digestOf(m)]);
  const fsck = await tsd('store', ['fsck'], { root: target });
  assert.is(fsck.code, 0, fsck.stdout);
  assert.not.ok(existsSync(join(target, 'blobs/sha256', digestOf(idx).slice(7))), 'the partial index is not kept');
});

test('hostile: not a tar, empty input, zstd', async () => {
  await refused('garbage', Buffer.from('hello, this is not a tar archive at all'.repeat(20)), /^tsd-store: archive: not a readable tar: /);
  await refused('empty', Buffer.alloc(0), /^tsd-store: archive: empty input, expected a tar/);
  await refused('zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]), /zstd-compressed input is not supported/);
});

test('cleanup', () => {
  removeDir(work);
});

test.run();
