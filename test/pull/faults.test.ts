// tsd-pull through a fault-injecting proxy in front of a real registry: resets mid-blob, 500 and
// 429 with Retry-After, truncated bodies, flipped bytes, stalls and kill -9; and hostile documents
// (a manifest that lies about sizes, a config that is not JSON, a manifest over 4 MiB). Every
// fault ends in a correct pull or a clean one-line error, never in a bad blob stored.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { paths } from '../../src/store/layout.js';
import { OciLayout, putRaw, sha256, startFaultyRegistry, type FaultProxy, type FaultyRegistry, type LayoutLayer, type Registry } from '../support/registry.js';
import { REPO, removeDir, tempStore, tsd } from '../support/tsd.js';

let reg: Registry;
let proxy: FaultProxy;
let big: LayoutLayer;
let small: LayoutLayer;
let image: ReturnType<OciLayout['image']>;
const FAST = { TSD_RETRY_BASE_MS: '5' };

let net: FaultyRegistry;

test.before(async () => {
  net = await startFaultyRegistry('f/app', 3_000_000);
  ({ reg, proxy, big, small, image } = net);
});

test.after(() => net.stop());
test.before.each(() => net.reset());

const ref = () => net.ref;
const blobPath = (root: string, d: string) => paths(root).blob(d as never);

/** Every blob file in the store has the digest of its name, and nothing partial is left named. */
const assertStoreSound = (root: string) => {
  const dir = join(root, 'blobs', 'sha256');
  for (const name of readdirSync(dir)) assert.is(sha256(readFileSync(join(dir, name))), `sha256:${name}`, `blob ${name} is what its name says`);
};

const pullOk = async (extra: NodeJS.ProcessEnv = {}) => {
  const p = await tempStore();
  const r = await tsd('pull', ['--progress=plain', ref()], { root: p.root, env: { ...FAST, ...extra } });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, image.digest);
  assert.ok(existsSync(blobPath(p.root, big.digest)));
  assertStoreSound(p.root);
  return { root: p.root, r };
};

test('a reset mid-blob resumes with a Range request', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'reset', after: 1_000_000 } });
  const { root, r } = await pullOk();
  assert.ok(proxy.seen.some((s) => s.includes(big.digest) && /bytes=\d+-/.test(s)), proxy.seen.join('\n'));
  assert.match(r.stderr, /retry 1/);
  removeDir(root);
});

test('a truncated body (no Content-Length, ends early) resumes', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'truncate', after: 777_777 } });
  const { root } = await pullOk();
  assert.ok(proxy.seen.some((s) => s.includes(`${big.digest} bytes=777777-`)), proxy.seen.join('\n'));
  removeDir(root);
});

test('a manifest body cut short is fetched again', async () => {
  proxy.rules.push({ match: 'GET /v2/f/app/manifests/v1', fault: { kind: 'reset', after: 100 } });
  const { root, r } = await pullOk();
  assert.match(r.stderr, /manifest .*f\/app:v1: .*retry 1/);
  removeDir(root);
});

test('500 and 429 with Retry-After are retried', async () => {
  proxy.rules.push({ match: 'GET /v2/f/app/manifests/v1', fault: { kind: 'status', status: 500 } });
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'status', status: 429, retryAfter: '1' } });
  const started = Date.now();
  const { root, r } = await pullOk();
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was honoured');
  assert.match(r.stderr, /HTTP 500; retry 1/);
  assert.match(r.stderr, /HTTP 429; retry 1 in 1\.0 s/);
  removeDir(root);
});

test('a flipped byte is caught; the blob is fetched whole again', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'flip', at: 2_000_000 } });
  const { root, r } = await pullOk();
  assert.match(r.stderr, /digest mismatch/);
  removeDir(root);
});

test('bytes that keep coming wrong: a clean error naming registry, repository and blob; nothing stored', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'flip', at: 10 }, times: 100 });
  const p = await tempStore();
  const r = await tsd('pull', ['-q', ref()], { root: p.root, env: FAST });
  assert.is(r.code, 125);
  assert.is(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^tsd-pull: blob ${big.digest} of ${proxy.host}/f/app: digest mismatch: got sha256:[0-9a-f]{64}; refused, nothing stored\\n$`));
  assert.not.ok(existsSync(blobPath(p.root, big.digest)));
  assert.equal(readdirSync(paths(p.root).ingest).filter((f) => f.endsWith('.partial')), []);
  assert.is(JSON.parse(readFileSync(paths(p.root).index, 'utf8')).manifests.length, 0);
  assertStoreSound(p.root);
  removeDir(p.root);
});

test('a registry that keeps failing: the error names the blob and the attempts', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'status', status: 503 }, times: 100 });
  const p = await tempStore();
  const r = await tsd('pull', ['-q', ref()], { root: p.root, env: { ...FAST, TSD_RETRIES: '3' } });
  assert.is(r.code, 125);
  assert.match(r.stderr, new RegExp(`^tsd-pull: blob ${big.digest} of ${proxy.host}/f/app: HTTP 503 \\(UNAVAILABLE injected fault\\) \\(after 3 attempts\\)\\n$`));
  assert.is(proxy.seen.filter((s) => s.includes(`blobs/${big.digest}`)).length, 3);
  assert.not.ok(existsSync(blobPath(p.root, big.digest)));
  removeDir(p.root);
});

test('kill -9 mid-blob: the next pull continues the partial', async () => {
  proxy.rules.push({ match: `GET /v2/f/app/blobs/${big.digest}`, fault: { kind: 'stall', after: 1_500_000 } });
  const p = await tempStore();
  const child = spawn(join(REPO, 'bin', 'tsd-pull'), ['-q', ref()], { env: { ...process.env, TSD_ROOT: p.root }, stdio: 'ignore' });
  const partial = join(paths(p.root).ingest, `sha256-${big.digest.slice(7)}.partial`);
  for (let i = 0; i < 400 && !(existsSync(partial) && statSync(partial).size === 1_500_000); i++) await new Promise((r) => setTimeout(r, 25));
  assert.is(statSync(partial).size, 1_500_000);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  proxy.seen.length = 0;
  const r = await tsd('pull', ['--progress=plain', ref()], { root: p.root, env: FAST });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /resuming at 1\.50MB of 3\.00MB/);
  assert.ok(proxy.seen.some((s) => s.includes(`${big.digest} bytes=1500000-`)), proxy.seen.join('\n'));
  assertStoreSound(p.root);
  assert.ok(existsSync(blobPath(p.root, big.digest)));
  removeDir(p.root);
});

test('two pulls of one image at once into one store fetch each blob once', async () => {
  const p = await tempStore();
  const [a, b] = await Promise.all([tsd('pull', ['-q', ref()], { root: p.root }), tsd('pull', ['-q', ref()], { root: p.root })]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  assert.equal(JSON.parse(a.stdout), JSON.parse(b.stdout));
  for (const d of [big.digest, small.digest, image.config]) {
    assert.is(proxy.seen.filter((s) => s.startsWith(`GET /v2/f/app/blobs/${d}`)).length, 1, `${d}: ${proxy.seen.join(', ')}`);
  }
  assertStoreSound(p.root);
  assert.is(JSON.parse(readFileSync(paths(p.root).index, 'utf8')).manifests.length, 1);
  removeDir(p.root);
});

const configDescriptor = (bytes: Buffer) => ({ mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(bytes), size: bytes.length });

test('a manifest that lies about a layer size is refused; nothing kept', async () => {
  const layer = Buffer.alloc(5000, 1);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDescriptor(cfg), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: 4000 }] });
  await putRaw(reg.host, 'f/liar', [cfg, layer], manifest, 'v1');
  const p = await tempStore();
  const r = await tsd('pull', ['-q', `${reg.host}/f/liar:v1`], { root: p.root, env: FAST });
  assert.is(r.code, 125);
  assert.match(r.stderr, /^tsd-pull: blob sha256:[0-9a-f]+ of 127\.0\.0\.1:\d+\/f\/liar: the registry has 5000 bytes but the manifest declares 4000; refused\n$/);
  assert.not.ok(existsSync(blobPath(p.root, sha256(layer))));
  assert.is(JSON.parse(readFileSync(paths(p.root).index, 'utf8')).manifests.length, 0);
  removeDir(p.root);
});

test('a config that is not JSON is refused; no layer of it is kept, not even as a partial', async () => {
  const layer = Buffer.alloc(3000, 2);
  const cfg = Buffer.from('this is not json');
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDescriptor(cfg), layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }] });
  await putRaw(reg.host, 'f/badcfg', [cfg, layer], manifest, 'v1');
  const p = await tempStore();
  const r = await tsd('pull', ['-q', `${reg.host}/f/badcfg:v1`], { root: p.root });
  assert.is(r.code, 125);
  assert.match(r.stderr, /^tsd-pull: config sha256:[0-9a-f]+ of .*f\/badcfg: invalid image config: not valid JSON; refused\n$/);
  assert.not.ok(existsSync(blobPath(p.root, sha256(cfg))));
  assert.not.ok(existsSync(blobPath(p.root, sha256(layer))));
  assert.equal(readdirSync(paths(p.root).ingest).filter((f) => f.endsWith('.partial')), []);
  removeDir(p.root);
});

test('a manifest over 4 MiB is refused, whether the registry declares its length or not', async () => {
  // the distribution registry refuses to store one, so the proxy serves it
  const huge = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [], annotations: { pad: 'x'.repeat(4 * 1024 * 1024 + 10) } }));
  for (const chunked of [false, true]) {
    proxy.rules.push({ match: 'GET /v2/f/app/manifests/v1', fault: { kind: 'replace', body: huge, contentType: 'application/vnd.oci.image.manifest.v1+json', chunked } });
    const p = await tempStore();
    const r = await tsd('pull', ['-q', ref()], { root: p.root });
    assert.is(r.code, 125);
    assert.match(r.stderr, /^tsd-pull: manifest .*f\/app:v1: larger than 4194304 bytes; refused\n$/, r.stderr);
    assert.is(JSON.parse(readFileSync(paths(p.root).index, 'utf8')).manifests.length, 0);
    assert.equal(readdirSync(join(p.root, 'blobs', 'sha256')), []);
    removeDir(p.root);
  }
});

test.run();
