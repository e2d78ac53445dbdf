// Table tests of the pure parts of the registry client and the pull/push plans.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { parseChallenges } from '../../src/registry/challenge.js';
import { credentialsIn, registryOfKey } from '../../src/registry/credentials.js';
import { isLoopback, pullEndpoints, pushEndpoint, decodeRegistriesConfig } from '../../src/registry/endpoint.js';
import { defaultRetryPolicy, isRetryableStatus, parseRetryAfter, retryDelay } from '../../src/registry/retry.js';
import { mergeScopes } from '../../src/registry/session.js';
import { choosePlatform, planBlobs } from '../../src/pull/plan.js';
import { chunksOf, planPush } from '../../src/push/plan.js';
import { plainPull } from '../../src/pull/plain-args.js';
import type { Digest } from '../../src/oci/digest.js';
import type { Index, Manifest } from '../../src/oci/manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

test('WWW-Authenticate challenges', () => {
  assert.equal(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  assert.equal(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.equal(parseChallenges('Bearer realm="a, b", error="insufficient_scope", Basic realm=x'), [
    { scheme: 'bearer', params: { realm: 'a, b', error: 'insufficient_scope' } },
    { scheme: 'basic', params: { realm: 'x' } },
  ]);
  assert.equal(parseChallenges('Negotiate'), []);
  assert.equal(parseChallenges(undefined), []);
  assert.equal(parseChallenges('Bearer realm="with \\"quote\\""')[0]?.params.realm, 'with "quote"');
});

test('auth file keys and entries', () => {
  assert.is(registryOfKey('https://index.docker.io/v1/'), 'docker.io');
  assert.is(registryOfKey('registry-1.docker.io'), 'docker.io');
  assert.is(registryOfKey('http://localhost:5000/v2/'), 'localhost:5000');
  assert.is(registryOfKey('GHCR.io'), 'ghcr.io');
  const file = { auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('u:p:with:colons').toString('base64') }, 'quay.io': { username: 'q', password: 'w' }, 'bad.io': { auth: '!!' } } };
  assert.equal(credentialsIn(file, 'docker.io'), { username: 'u', password: 'p:with:colons' });
  assert.equal(credentialsIn(file, 'quay.io'), { username: 'q', password: 'w' });
  assert.is(credentialsIn(file, 'bad.io'), undefined);
  assert.is(credentialsIn(file, 'ghcr.io'), undefined);
  assert.is(credentialsIn(null, 'ghcr.io'), undefined);
});

test('endpoints: Docker Hub, loopback over HTTP, insecure list, mirrors first', () => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.5.6.7', '[::1]:5000', 'x.localhost']) assert.ok(isLoopback(h), h);
  for (const h of ['example.com', '128.0.0.1', '10.0.0.1:5000', 'localhost.evil.com', '127.0.0.1.evil.com']) assert.not.ok(isLoopback(h), h);
  const none = { insecure: [], mirrors: {} };
  assert.is(pushEndpoint('docker.io', none).base.href, 'https://registry-1.docker.io/');
  assert.is(pushEndpoint('ghcr.io', none).base.href, 'https://ghcr.io/');
  assert.is(pushEndpoint('127.0.0.1:5000', none).base.href, 'http://127.0.0.1:5000/');
  assert.is(pushEndpoint('reg.lan:5000', { insecure: ['reg.lan:5000'], mirrors: {} }).base.href, 'http://reg.lan:5000/');
  const eps = pullEndpoints('docker.io', { insecure: ['mirror.lan'], mirrors: { 'docker.io': ['mirror.lan', 'm2.example'] } });
  assert.equal(eps.map((e) => [e.base.href, e.mirror]), [['http://mirror.lan/', true], ['https://m2.example/', true], ['https://registry-1.docker.io/', false]]);
  assert.ok(E.isLeft(decodeRegistriesConfig('{"insecure":"x"}', 'f')));
  assert.ok(E.isLeft(decodeRegistriesConfig('nope', 'f')));
  assert.equal(decodeRegistriesConfig('{"mirrors":{"docker.io":["a"]}}', 'f'), E.right({ insecure: [], mirrors: { 'docker.io': ['a'] } }));
});

test('retry policy', () => {
  const p = { attempts: 5, baseMs: 100, maxMs: 1000, maxRetryAfterMs: 5000 };
  assert.is(retryDelay(p, 1, undefined, 0), 50);
  assert.is(retryDelay(p, 3, undefined, 0.999), 400);
  assert.is(retryDelay(p, 10, undefined, 0.999), 1000);
  assert.is(retryDelay(p, 1, 2000, 0.5), 2000);
  assert.is(retryDelay(p, 1, 60_000, 0.5), 5000);
  assert.is(parseRetryAfter('3', 0), 3000);
  assert.is(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000);
  assert.is(parseRetryAfter('soon', 0), undefined);
  for (const s of [408, 429, 500, 502, 503, 504]) assert.ok(isRetryableStatus(s), String(s));
  for (const s of [400, 401, 403, 404, 416, 501]) assert.not.ok(isRetryableStatus(s), String(s));
  assert.is(defaultRetryPolicy({ TSD_RETRIES: '2' }).attempts, 2);
});

test('token scopes merge per repository', () => {
  assert.equal(mergeScopes(['repository:a:pull', 'repository:a:pull,push', 'repository:b:pull']), ['repository:a:pull,push', 'repository:b:pull']);
});

const layer = (c: string, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip') => ({ mediaType, digest: d(c), size: 1 });
const manifest = (layers: ReturnType<typeof layer>[]): Manifest => ({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('c'), size: 2 }, layers });

test('pull plan: platform choice, duplicate layers once, non-layer types refused', () => {
  const index: Index = {
    schemaVersion: 2,
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('2'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('3'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('4'), size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
    ],
  };
  assert.equal(E.map((x: { digest: string }) => x.digest)(choosePlatform(index, { os: 'linux', architecture: 'amd64' }, 'm')), E.right(d('1')));
  assert.equal(E.map((x: { digest: string }) => x.digest)(choosePlatform(index, { os: 'linux', architecture: 'arm64' }, 'm')), E.right(d('2')));
  assert.equal(E.map((x: { digest: string }) => x.digest)(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, 'm')), E.right(d('3')));
  const none = choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }, 'm');
  assert.ok(E.isLeft(none) && none.left.message === 'm: no image for platform linux/arm/v6; available: linux/amd64, linux/arm64/v8, linux/arm/v7 (choose one with --platform)');
  const nested: Index = { schemaVersion: 2, manifests: [...index.manifests.slice(0, 1), { mediaType: 'application/vnd.oci.image.index.v1+json', digest: d('9'), size: 1 }] };
  assert.equal(E.map((x: { digest: string }) => x.digest)(choosePlatform(nested, { os: 'linux', architecture: 'amd64' }, 'm')), E.right(d('1')));
  const inner = choosePlatform(nested, { os: 'linux', architecture: 'arm64' }, 'm');
  assert.ok(E.isLeft(inner), 'a nested index is not walked');
  assert.is(inner.left.message, `m: no image for platform linux/arm64 here, and an entry is itself an index (an index inside an index is not supported; pull the inner index by its digest: ${d('9')})`);
  assert.is(inner.left.exitCode, 1);
  const plan = planBlobs(manifest([layer('a'), layer('b'), layer('a'), layer('z', 'application/vnd.oci.image.layer.v1.tar+zstd'), layer('y', 'application/vnd.docker.image.rootfs.diff.tar.gzip')]), 'm');
  assert.equal(E.map((x: { layers: readonly { digest: string }[] }) => x.layers.map((l) => l.digest))(plan), E.right([d('a'), d('b'), d('z'), d('y')]));
  const helm = planBlobs(manifest([layer('h', 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')]), 'm');
  assert.ok(E.isLeft(helm) && /not a layer tar/.test(helm.left.message));
});

test('push plan: chunks and distinct blobs', () => {
  assert.equal(chunksOf(10, 4), [{ start: 0, length: 4 }, { start: 4, length: 4 }, { start: 8, length: 2 }]);
  assert.equal(chunksOf(8, 4), [{ start: 0, length: 4 }, { start: 4, length: 4 }]);
  assert.equal(chunksOf(0, 4), []);
  const m1 = manifest([layer('a'), layer('b')]);
  const m2 = manifest([layer('b'), layer('e')]);
  const top = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: d('9'), size: 1 };
  const plan = planPush(top, [{ descriptor: { mediaType: 'x', digest: d('1'), size: 1 }, manifest: m1 }, { descriptor: { mediaType: 'x', digest: d('2'), size: 1 }, manifest: m2 }]);
  assert.equal(plan.blobs.map((b) => b.digest), [d('c'), d('a'), d('b'), d('e')]);
});

test('tsd-pull fast path: only plain command lines skip the full parser', () => {
  assert.equal(plainPull(['a:1', 'b']), { refs: ['a:1', 'b'], quiet: false });
  assert.equal(plainPull(['-q', '--root', '/r', '--progress=json', 'a']), { refs: ['a'], quiet: true, root: '/r', progress: 'json' });
  assert.is(plainPull(['--platform', 'linux/arm64', 'a']), undefined);
  assert.is(plainPull(['--unpack', 'a']), undefined);
  assert.is(plainPull(['-q']), undefined);
  assert.is(plainPull(['--root']), undefined);
});

test.run();
