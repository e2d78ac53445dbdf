// tsd-pull --unpack: each layer is unpacked while it downloads (the response is teed into the
// unpacker), and committed only when both the blob's digest and the tar's diff ID match. Against
// a real registry; the images are pushed raw, so a test can serve a corrupt or lying layer.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Digest } from '../../src/oci/digest.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { snapshotDir, unpackLayer } from '../../src/snapshot/snapshot.js';
import type { StorePaths } from '../../src/store/layout.js';
import { compress, makeSentinel, tarOf, type Spec } from '../snapshot/layers.js';
import { putRaw, sha256, startFaultProxy, startRegistry, type FaultProxy, type Registry } from '../support/registry.js';
import { removeDir, tempStore, tsd } from '../support/tsd.js';

let reg: Registry;
let proxy: FaultProxy;

test.before(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
});

test.after(async () => {
  await proxy.stop();
  await reg.stop();
});

interface Layer {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
  readonly diffId: string;
}

const MEDIA = { gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar' } as const;

const layer = async (specs: readonly Spec[], how: 'gzip' | 'zstd' | 'none', mangle?: (b: Buffer) => Buffer): Promise<Layer> => {
  const raw = await tarOf(specs);
  const bytes = (mangle ?? ((b) => b))(compress(raw, how));
  return { bytes, mediaType: MEDIA[how], digest: sha256(bytes), diffId: sha256(raw) };
};

/** Pushes an image of `layers` under REPO:TAG; `diffIds` overrides what the config says. */
const push = async (repo: string, layers: readonly Layer[], diffIds = layers.map((l) => l.diffId)): Promise<string> => {
  const config = Buffer.from(JSON.stringify({ architecture: process.arch === 'arm64' ? 'arm64' : 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.bytes.length })),
  });
  await putRaw(reg.host, repo, [...layers.map((l) => l.bytes), config], manifest, 'v1');
  return `${repo}:v1`;
};

const events = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { event: string; digest?: string; chainId?: string; streamed?: boolean });

/** Everything about a tree, one line per path: type, mode, owner, size, mtime, links, xattrs, content. */
const fingerprint = (dir: string): string =>
  execFileSync('python3', [
    '-c',
    String.raw`
import os, sys, hashlib
root = sys.argv[1]
def line(p):
    st = os.lstat(p)
    xs = sorted((k, os.getxattr(p, k, follow_symlinks=False).hex()) for k in os.listxattr(p, follow_symlinks=False))
    body = hashlib.sha256(open(p, 'rb').read()).hexdigest() if os.path.isfile(p) and not os.path.islink(p) else ''
    link = os.readlink(p) if os.path.islink(p) else ''
    # a dir no entry names (a parent made on the way) has the time it was made: not the layer's
    mtime = st.st_mtime_ns if st.st_mtime_ns < 1700000000 * 10**9 else 'made'
    print(os.path.relpath(p, root), oct(st.st_mode), st.st_uid, st.st_gid, st.st_size, mtime, st.st_nlink, st.st_rdev, xs, link, body)
line(root)
for d, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        line(os.path.join(d, n))
`,
    dir,
  ]).toString();

/** What a failed pull must not leave: no temp dirs, no partials, no snapshot named, no blob of `digests`. */
const assertNothingKept = (p: StorePaths, digests: readonly string[], chains: readonly string[]) => {
  for (const d of digests) assert.not.ok(existsSync(p.blob(d as Digest)), `blob ${d} kept`);
  for (const c of chains) assert.not.ok(existsSync(join(p.snapshots, c.slice(7))), `snapshot ${c} kept`);
  const snaps = existsSync(p.snapshots) ? readdirSync(p.snapshots) : [];
  assert.equal(snaps.filter((n) => n.startsWith('.unpack-')), [], 'no unpack temp dir left');
  const ingest = existsSync(p.ingest) ? readdirSync(p.ingest) : [];
  assert.equal(ingest.filter((n) => n.endsWith('.partial')), [], 'no partial left');
};

test('pull --unpack unpacks every layer while it downloads; the snapshots equal an unpack of the pulled blobs', async () => {
  const big = randomBytes(3 * 1024 * 1024); // many network chunks
  const l1 = await layer(
    [
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/hello', content: 'hello\n' },
      { name: 'bin/', type: 'directory', mode: 0o750, uid: 7, gid: 8 },
      { name: 'bin/tool', content: 'x'.repeat(70_000), mode: 0o4755 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/tool' },
      { name: 'home/user/owned', content: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
      { name: 'data/big.bin', content: big },
    ],
    'gzip',
  );
  const l2 = await layer(
    [
      { name: 'etc/.wh.hello', content: '' },
      { name: 'var/lib/.wh..wh..opq', content: '' },
      { name: 'var/lib/fresh', content: 'new\n' },
      { name: 'dev/null2', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    ],
    'zstd',
  );
  const l3 = await layer([{ name: 'etc/third', content: 'three\n', mtime: new Date(1_234_567_890_123) }], 'none');
  const layers = [l1, l2, l3];
  const ref = `${reg.host}/${await push('unpack/good', layers)}`;

  const streamed = await tempStore();
  const r = await tsd('pull', ['--unpack', '--progress=json', ref], { root: streamed.root });
  assert.is(r.code, 0, r.stderr);
  const ids = chainIds(layers.map((l) => l.diffId as Digest));
  const unpacked = events(r.stderr).filter((e) => e.event === 'unpacked');
  assert.equal(unpacked.map((e) => e.chainId).sort(), [...ids].sort());
  assert.ok(unpacked.every((e) => e.streamed === true), 'every layer unpacked while it downloaded');

  // the same image pulled plainly, then unpacked from the stored blobs
  const after = await tempStore();
  const plain = await tsd('pull', ['-q', ref], { root: after.root });
  assert.is(plain.code, 0, plain.stderr);
  for (const [i, l] of layers.entries()) {
    const u = await unpackLayer(after, { mediaType: l.mediaType, digest: l.digest as Digest, size: l.bytes.length }, l.diffId as Digest, ids[i] as Digest)();
    assert.ok(E.isRight(u), E.isLeft(u) ? u.left.message : '');
  }
  for (const id of ids) assert.fixture(fingerprint(snapshotDir(streamed, id)), fingerprint(snapshotDir(after, id)));
  // and what they hold is what the layers say
  assert.match(fingerprint(snapshotDir(streamed, ids[0] as Digest)), /bin\/tool 0o104755 /);
  assert.match(fingerprint(snapshotDir(streamed, ids[1] as Digest)), /var\/lib .*'trusted.overlay.opaque', '79'/);
  for (const l of layers) assert.ok(existsSync(streamed.blob(l.digest as Digest)), `blob ${l.digest}`);
  assertNothingKept(streamed, [], []);

  // a second pull finds everything: nothing fetched, nothing unpacked again
  const again = await tsd('pull', ['--unpack', '--progress=json', ref], { root: streamed.root });
  assert.is(again.code, 0, again.stderr);
  assert.equal(events(again.stderr).filter((e) => e.event === 'start'), []);
  removeDir(streamed.root);
  removeDir(after.root);
});

test('a corrupt layer (its digest right, its gzip broken) leaves no snapshot and no blob', async () => {
  const good = await layer([{ name: 'ok', content: 'fine\n' }], 'gzip');
  const bad = await layer([{ name: 'payload', content: randomBytes(200_000) }], 'gzip', (b) => {
    const c = Buffer.from(b);
    for (let i = 1000; i < 1400; i++) c[i] = 0xff; // the registry stores and serves these very bytes
    return c;
  });
  const ref = `${reg.host}/${await push('unpack/corrupt', [good, bad])}`;
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '-q', ref], { root: p.root });
  assert.is(r.code, 1, r.stderr);
  assert.is(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^tsd-pull: unpack layer ${bad.digest}: corrupt or truncated layer`));
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  const ids = chainIds([good.diffId, bad.diffId] as Digest[]);
  assertNothingKept(p, [bad.digest], [ids[1] as string]);
  const ls = await tsd('store', ['ls', '--json'], { root: p.root });
  assert.is(ls.stdout.trim(), '', 'no image named');
  removeDir(p.root);
});

test('a layer whose tar does not match the config diff ID is refused; nothing of it is kept', async () => {
  const l = await layer([{ name: 'a', content: 'a\n' }], 'gzip');
  const lie = sha256('something else');
  const ref = `${reg.host}/${await push('unpack/lie', [l], [lie])}`;
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '-q', ref], { root: p.root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^tsd-pull: unpack layer ${l.digest}: its tar hashes to ${l.diffId}, but the image config says ${lie}\\n$`));
  assertNothingKept(p, [l.digest], [lie]);
  // without --unpack the diff ID is not looked at: the same image pulls
  const plain = await tsd('pull', ['-q', ref], { root: p.root });
  assert.is(plain.code, 0, plain.stderr);
  removeDir(p.root);
});

test('a hostile layer is refused while it streams and touches nothing outside the store', async () => {
  const sentinel = makeSentinel();
  const before = sentinel.fingerprint();
  const l = await layer(
    [
      { name: 'evil', type: 'symlink', linkname: sentinel.dir },
      { name: 'evil/keep', content: 'owned\n' },
      { name: '../../../../../../tmp/escaped-by-pull', content: 'x' },
    ],
    'gzip',
  );
  const ref = `${reg.host}/${await push('unpack/hostile', [l])}`;
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '-q', ref], { root: p.root });
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /^tsd-pull: unpack layer sha256:[0-9a-f]{64}: entry .* climbs out of the layer root\n$/);
  assert.is(sentinel.fingerprint(), before);
  assert.not.ok(existsSync('/tmp/escaped-by-pull'));
  assertNothingKept(p, [l.digest], [l.diffId]);
  removeDir(p.root);
  removeDir(sentinel.dir);
});

test('a download cut short is resumed with a Range and the layer still ends up unpacked, the same as unstreamed', async () => {
  const l1 = await layer([{ name: 'big.bin', content: randomBytes(2_000_000) }], 'gzip');
  const l2 = await layer([{ name: 'small', content: 'small\n' }], 'gzip');
  const repo = await push('unpack/resume', [l1, l2]);
  proxy.rules.length = 0;
  proxy.seen.length = 0;
  proxy.rules.push({ match: `GET /v2/unpack/resume/blobs/${l1.digest}`, fault: { kind: 'truncate', after: 700_000 } });
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '--progress=json', `${proxy.host}/${repo}`], { root: p.root, env: { TSD_RETRY_BASE_MS: '10' } });
  assert.is(r.code, 0, r.stderr);
  assert.ok(proxy.seen.some((s) => s.includes(l1.digest) && /bytes=700000-/.test(s)), proxy.seen.join('\n'));
  const ids = chainIds([l1.diffId, l2.diffId] as Digest[]);
  const byChain = new Map(events(r.stderr).filter((e) => e.event === 'unpacked').map((e) => [e.chainId, e.streamed === true]));
  assert.is(byChain.get(ids[0]), false, 'the resumed layer is unpacked from its committed blob');
  assert.is(byChain.get(ids[1]), true, 'the other one while it downloaded');
  const after = await tempStore();
  const plain = await tsd('pull', ['-q', `${reg.host}/${repo}`], { root: after.root });
  assert.is(plain.code, 0, plain.stderr);
  const u2 = await unpackLayer(after, { mediaType: l1.mediaType, digest: l1.digest as Digest, size: l1.bytes.length }, l1.diffId as Digest, ids[0] as Digest)();
  assert.ok(E.isRight(u2));
  assert.fixture(fingerprint(snapshotDir(p, ids[0] as Digest)), fingerprint(snapshotDir(after, ids[0] as Digest)));
  assertNothingKept(p, [], []);
  removeDir(p.root);
  removeDir(after.root);
});

test('bytes flipped in transit: the digest fails, the streamed snapshot is dropped, the refetch unpacks it', async () => {
  const l = await layer([{ name: 'f.bin', content: randomBytes(500_000) }], 'gzip');
  const repo = await push('unpack/flip', [l]);
  proxy.rules.length = 0;
  proxy.rules.push({ match: `GET /v2/unpack/flip/blobs/${l.digest}`, fault: { kind: 'flip', at: 300_000 } });
  const p = await tempStore();
  const r = await tsd('pull', ['--unpack', '--progress=json', `${proxy.host}/${repo}`], { root: p.root, env: { TSD_RETRY_BASE_MS: '10' } });
  assert.is(r.code, 0, r.stderr);
  assert.ok(events(r.stderr).some((e) => e.event === 'retry'), r.stderr);
  const [id] = chainIds([l.diffId as Digest]);
  assert.ok(existsSync(join(snapshotDir(p, id as Digest), 'f.bin')));
  assert.ok(existsSync(p.blob(l.digest as Digest)));
  assertNothingKept(p, [], []);
  removeDir(p.root);
});

test('two pulls --unpack of the same image into one store at once: both succeed, each layer is fetched and unpacked once', async () => {
  const layers = [
    await layer([{ name: 'one.bin', content: randomBytes(1_500_000) }], 'gzip'),
    await layer([{ name: 'two.bin', content: randomBytes(1_500_000) }], 'gzip'),
  ];
  const ref = `${reg.host}/${await push('unpack/twice', layers)}`;
  const p = await tempStore();
  const [a, b] = await Promise.all([0, 1].map(() => tsd('pull', ['--unpack', '--progress=json', ref], { root: p.root })));
  assert.is(a?.code, 0, a?.stderr);
  assert.is(b?.code, 0, b?.stderr);
  const all = [...events(a?.stderr ?? ''), ...events(b?.stderr ?? '')];
  for (const l of layers) assert.is(all.filter((e) => e.event === 'done' && e.digest === l.digest).length, 1, `${l.digest} fetched once`);
  const ids = chainIds(layers.map((l) => l.diffId as Digest));
  for (const [i, id] of ids.entries()) {
    assert.ok(existsSync(join(snapshotDir(p, id), `${i === 0 ? 'one' : 'two'}.bin`)));
    assert.is(all.filter((e) => e.event === 'unpacked' && e.chainId === id).length, 2, 'each pull reports it unpacked');
  }
  assertNothingKept(p, [], []);
  removeDir(p.root);
});

test.run();
