// tsd-push against a real registry; skopeo and umoci, independent peers, read back what it pushed.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayout, skopeoCopy, skopeoDigest, skopeoRaw, startFaultProxy, startRegistry, type Registry } from '../support/registry.js';
import { makeImage, removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';

let reg: Registry;
let work: string;
let image: ReturnType<OciLayout['image']>;
let multi: { digest: string };

test.before(async () => {
  reg = await startRegistry();
  work = tempDir('tsd-push-test-');
  const layout = new OciLayout(join(work, 'layout'));
  const l1 = await layout.smallLayer({ 'etc/hello': 'hello\n' });
  const l2 = await layout.bigLayer(300_000, true);
  image = layout.image([l1, l2], { tag: 'v1' });
  const amd = layout.image([l1], { architecture: 'amd64' });
  const arm = layout.image([l2], { architecture: 'arm64', variant: 'v8' });
  multi = layout.index([amd, arm].map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform })), 'multi');
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${reg.host}/src/app:v1`);
  await skopeoCopy(`oci:${layout.dir}:multi`, `docker://${reg.host}/src/multi:1`, ['--all']);
});

test.after(async () => {
  await reg.stop();
  removeDir(work);
});

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));

test('push of a pulled image to a second repository mounts its blobs; skopeo copies it back with equal digests', async () => {
  const p = await tempStore();
  const pulled = await tsd('pull', ['-q', `${reg.host}/src/app:v1`], { root: p.root });
  assert.is(pulled.code, 0, pulled.stderr);
  const dest = `${reg.host}/copy/app:v2`;
  const r = await tsd('push', ['--progress=plain', `${reg.host}/src/app:v1`, dest], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.equal(msg, { v: 1, type: 'image', ref: dest, digest: image.digest, mediaType: image.mediaType, size: image.size, config: image.config, platform: { os: 'linux', architecture: 'amd64' } });
  assert.is((r.stderr.match(/: mounted/g) ?? []).length, 3, r.stderr);
  assert.is(skopeoDigest(`docker://${dest}`), image.digest);
  const out = join(work, 'back');
  await skopeoCopy(`docker://${dest}`, `oci:${out}:x`);
  assert.is(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0].digest, image.digest);
  // again: every blob is already there
  const again = await tsd('push', ['--progress=plain', `${reg.host}/src/app:v1`, dest], { root: p.root });
  assert.is(again.code, 0, again.stderr);
  assert.is((again.stderr.match(/already in the registry/g) ?? []).length, 3, again.stderr);
  removeDir(p.root);
});

test('an image made by tsd, pushed (image JSON on stdin, chunked), is pulled by skopeo and unpacked by umoci', async () => {
  const p = await tempStore();
  const ref = `${reg.host}/made/by:tsd`;
  const made = await makeImage(p, 'local/thing:1', [[{ name: 'etc/', type: 'directory' }, { name: 'etc/made-by', content: 'tsd\n' }], [{ name: 'big.bin', content: Buffer.alloc(200_000, 7) }]], { Cmd: ['/bin/true'] });
  const input = `${JSON.stringify({ v: 1, type: 'image', ref: 'docker.io/local/thing:1', digest: made.digest, mediaType: made.mediaType, size: made.size })}\n`;
  const r = await tsd('push', ['-q', '--chunk-size', '4KiB', '-', ref], { root: p.root, input });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.ref, ref);
  assert.is(msg.digest, made.digest);
  assert.is(skopeoDigest(`docker://${ref}`), made.digest);
  const out = join(work, 'umoci');
  await skopeoCopy(`docker://${ref}`, `oci:${out}:t`);
  execFileSync('umoci', ['unpack', '--image', `${out}:t`, join(out, 'bundle')], { stdio: 'pipe' });
  assert.is(readFileSync(join(out, 'bundle/rootfs/etc/made-by'), 'utf8'), 'tsd\n');
  assert.is(readFileSync(join(out, 'bundle/rootfs/big.bin')).length, 200_000);
  removeDir(p.root);
});

test('a multi-platform image of which one platform was pulled pushes as that platform', async () => {
  const p = await tempStore();
  const pulled = await tsd('pull', ['-q', '--platform', 'linux/arm64', `${reg.host}/src/multi:1`], { root: p.root });
  assert.is(pulled.code, 0, pulled.stderr);
  assert.is(lines(pulled.stdout)[0].digest, multi.digest);
  const dest = `${reg.host}/copy/arm:1`;
  const r = await tsd('push', ['-q', '--platform', 'linux/arm64', `${reg.host}/src/multi:1`, dest], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(msg.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.is(skopeoRaw(`docker://${dest}`).config.digest, msg.config);
  const wrong = await tsd('push', ['-q', '--platform', 'linux/amd64', `${reg.host}/src/multi:1`, dest], { root: p.root });
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /^tsd-push: image sha256:[0-9a-f]+: the store holds only some platforms/);
  removeDir(p.root);
});

test('faults during a push: 500, 429, 503 and 502 are retried at every step, a lost upload (416) starts over; chunks really are PATCHes', async () => {
  const p = await tempStore();
  const proxy = await startFaultProxy(reg.host);
  const made = await makeImage(p, 'local/faulty:1', [[{ name: 'big.bin', content: randomBytes(300_000) }]]);
  const big = JSON.parse((await tsd('store', ['inspect', 'local/faulty:1'], { root: p.root })).stdout).manifest.layers[0];
  proxy.rules.push({ match: 'HEAD /v2/faulty/app/blobs/', fault: { kind: 'status', status: 500 } });
  proxy.rules.push({ match: 'POST /v2/faulty/app/blobs/uploads/', fault: { kind: 'status', status: 429, retryAfter: '0' } });
  proxy.rules.push({ match: 'PATCH /v2/faulty/app/blobs/uploads/', fault: { kind: 'status', status: 503 } });
  // an upload that lost its offset starts over with a new POST
  proxy.rules.push({ match: 'PATCH /v2/faulty/app/blobs/uploads/', fault: { kind: 'status', status: 416 } });
  proxy.rules.push({ match: 'PUT /v2/faulty/app/manifests/1', fault: { kind: 'status', status: 502 } });
  const dest = `${proxy.host}/faulty/app:1`;
  try {
  const r = await tsd('push', ['--progress=plain', '--chunk-size', '64KiB', 'local/faulty:1', dest], { root: p.root, env: { TSD_RETRY_BASE_MS: '5' } });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, made.digest);
  for (const what of ['HTTP 500', 'HTTP 429', 'HTTP 503', 'HTTP 502']) assert.match(r.stderr, new RegExp(`${what}; retry 1`));
  assert.match(r.stderr, /HTTP 416 .*; retry 1/);
  assert.is(proxy.seen.filter((x) => x.startsWith('POST /v2/faulty/app/blobs/uploads/')).length, 4, proxy.seen.join('\n'));
  const patches = proxy.seen.filter((s) => s.startsWith('PATCH')).length;
  assert.ok(patches >= Math.ceil(big.size / 65536), `${patches} PATCHes for ${big.size} bytes`);
  assert.is(skopeoDigest(`docker://${reg.host}/faulty/app:1`), made.digest);
  } finally {
    await proxy.stop();
    removeDir(p.root);
  }
});

test('a multi-platform image with every platform in the store pushes as the whole index', async () => {
  const p = await tempStore();
  for (const platform of ['linux/amd64', 'linux/arm64']) {
    const r = await tsd('pull', ['-q', '--platform', platform, `${reg.host}/src/multi:1`], { root: p.root });
    assert.is(r.code, 0, r.stderr);
  }
  const dest = `${reg.host}/copy/multi:all`;
  const r = await tsd('push', ['-q', `${reg.host}/src/multi:1`, dest], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  const [msg] = lines(r.stdout);
  assert.is(msg.digest, multi.digest);
  assert.is(msg.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.is(skopeoDigest(`docker://${dest}`), multi.digest);
  const out = join(work, 'multi-back');
  await skopeoCopy(`docker://${dest}`, `oci:${out}:x`, ['--all']);
  assert.is(JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0].digest, multi.digest);
  removeDir(p.root);
});

test('clear one-line errors: unknown image, no destination, unreachable registry', async () => {
  const p = await tempStore();
  const missing = await tsd('push', ['-q', 'nothing:here', `${reg.host}/x:1`], { root: p.root });
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /^tsd-push: image nothing:here: not in the store\n$/);
  const down = await tsd('push', ['-q', 'nothing:here'], { root: p.root });
  assert.is(down.code, 2);
  const made = await makeImage(p, `127.0.0.1:1/x:1`, [[{ name: 'a', content: 'a' }]]);
  const unreachable = await tsd('push', ['-q', made.digest, '127.0.0.1:1/x:1'], { root: p.root, env: { TSD_RETRIES: '2', TSD_RETRY_BASE_MS: '10' } });
  assert.is(unreachable.code, 125);
  assert.match(unreachable.stderr, /^tsd-push: blob sha256:[0-9a-f]+ of 127\.0\.0\.1:1\/x: .*ECONNREFUSED/);
  assert.is(unreachable.stderr.trim().split('\n').length, 1);
  removeDir(p.root);
});

test.run();
