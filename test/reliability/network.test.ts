// Network faults beyond test/pull/faults.test.ts, through the fault proxy in front of a real
// registry: a server that accepts and never answers, a body that stops midway, a slow drip (fast
// enough: completes; slower than the idle timeout: a clean timeout error), and faults during a
// push (an upload cut mid-body, a stalled PATCH/PUT, a stalled manifest PUT). The idle timeout is
// set small with TSD_HTTP_TIMEOUT so no test waits a minute; every run must end correct or with
// a one-line error, and within a bound (no hang).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { httpTimeoutMs } from '../../src/registry/http.js';
import { OciLayout, sha256, skopeoDigest, startFaultyRegistry, type FaultProxy, type FaultyRegistry, type LayoutLayer, type Registry } from '../support/registry.js';
import { makeImage, removeDir, tempStore, tsd } from '../support/tsd.js';

let reg: Registry;
let proxy: FaultProxy;
let big: LayoutLayer;
let image: ReturnType<OciLayout['image']>;
const FAST = { TSD_RETRY_BASE_MS: '5', TSD_HTTP_TIMEOUT: '1s' };
/** every tool run must end within this: a hang is a failure, not a slow test */
const BOUND = 40_000;

let net: FaultyRegistry;

test.before(async () => {
  net = await startFaultyRegistry('n/app', 2_000_000);
  ({ reg, proxy, big, image } = net);
});

test.after(() => net.stop());
test.before.each(() => net.reset());

const ref = () => net.ref;
const oneLine = (stderr: string) => {
  assert.ok(/^tsd-(pull|push): [^\n]+\n$/.test(stderr), `one line: ${JSON.stringify(stderr)}`);
  assert.not.match(stderr, /\n\s+at /);
};
const storeSound = (root: string) => {
  const dir = join(root, 'blobs', 'sha256');
  for (const name of readdirSync(dir)) assert.is(sha256(readFileSync(join(dir, name))), `sha256:${name}`);
};

test('TSD_HTTP_TIMEOUT: seconds, units, 0 for off; TSD_HTTP_TIMEOUT_MS still read; default 60 s', () => {
  assert.is(httpTimeoutMs({}), 60_000);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: '5' }), 5000);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: '500ms' }), 500);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: '1.5s' }), 1500);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: '2m' }), 120_000);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: '0' }), 0);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT_MS: '250' }), 250);
  assert.is(httpTimeoutMs({ TSD_HTTP_TIMEOUT: 'soon' }), 60_000);
});

const pull = async (env: NodeJS.ProcessEnv) => {
  const p = await tempStore();
  const started = Date.now();
  const r = await tsd('pull', ['--progress=plain', ref()], { root: p.root, env: { ...FAST, ...env }, timeoutMs: BOUND });
  return { r, root: p.root, ms: Date.now() - started };
};

test('a server that accepts and never answers (manifest): times out, retried, the pull completes', async () => {
  proxy.rules.push({ match: 'GET /v2/n/app/manifests/v1', fault: { kind: 'hang' } });
  const { r, root, ms } = await pull({});
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, image.digest);
  assert.match(r.stderr, /no data for 1 s \(TSD_HTTP_TIMEOUT\).*retry 1/);
  assert.ok(ms < BOUND);
  storeSound(root);
  removeDir(root);
});

test('a blob body that stops midway: times out, resumes with a Range, correct', async () => {
  proxy.rules.push({ match: `GET /v2/n/app/blobs/${big.digest}`, fault: { kind: 'stall', after: 700_000 } });
  const { r, root } = await pull({});
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /no data for 1 s/);
  assert.ok(proxy.seen.some((s) => s.includes(`${big.digest} bytes=700000-`)), proxy.seen.join('\n'));
  storeSound(root);
  removeDir(root);
});

test('a server that always stalls: a clean one-line timeout error after the retries, nothing stored', async () => {
  proxy.rules.push({ match: `GET /v2/n/app/blobs/${big.digest}`, fault: { kind: 'stall', after: 1000 }, times: 100 });
  const p = await tempStore();
  const r = await tsd('pull', ['-q', ref()], { root: p.root, env: { ...FAST, TSD_RETRIES: '2' }, timeoutMs: BOUND });
  assert.is(r.code, 125, r.stderr);
  oneLine(r.stderr);
  assert.match(r.stderr, new RegExp(`blob ${big.digest} .*no data for 1 s.*after 2 attempts`));
  assert.not.ok(readdirSync(join(p.root, 'blobs', 'sha256')).includes(big.digest.slice(7)));
  removeDir(p.root);
});

test('a slow drip faster than the idle timeout completes', async () => {
  proxy.rules.push({ match: 'GET /v2/n/app/manifests/v1', fault: { kind: 'drip', bytes: 64, everyMs: 150 } });
  const { r, root, ms } = await pull({ TSD_HTTP_TIMEOUT: '1s' });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, image.digest);
  assert.not.match(r.stderr, /no data/);
  assert.ok(ms > 600, `the drip took time (${ms} ms)`);
  removeDir(root);
});

test('a drip slower than the idle timeout is a timeout: a clean error', async () => {
  proxy.rules.push({ match: 'GET /v2/n/app/manifests/v1', fault: { kind: 'drip', bytes: 8, everyMs: 1500 }, times: 100 });
  const p = await tempStore();
  const r = await tsd('pull', ['-q', ref()], { root: p.root, env: { ...FAST, TSD_HTTP_TIMEOUT: '500ms', TSD_RETRIES: '2' }, timeoutMs: BOUND });
  assert.is(r.code, 125, r.stderr);
  oneLine(r.stderr);
  assert.match(r.stderr, /manifest .*n\/app:v1: .*no data for 0\.5 s/, r.stderr);
  removeDir(p.root);
});

// ---- push ------------------------------------------------------------------------------------

const pushCase = async (name: string, rules: FaultProxy['rules'], expectOk: boolean, env: NodeJS.ProcessEnv = {}) => {
  const p = await tempStore();
  const made = await makeImage(p, `local/${name}:1`, [[{ name: 'big.bin', content: randomBytes(400_000) }]]);
  proxy.rules.push(...rules);
  const dest = `${proxy.host}/pushed/${name}:1`;
  const started = Date.now();
  const r = await tsd('push', [expectOk ? '--progress=plain' : '-q', '--chunk-size', '128KiB', `local/${name}:1`, dest], { root: p.root, env: { ...FAST, ...env }, timeoutMs: BOUND });
  const ms = Date.now() - started;
  removeDir(p.root);
  assert.ok(ms < BOUND, `${name}: ${ms} ms`);
  if (expectOk) {
    assert.is(r.code, 0, r.stderr);
    assert.is(JSON.parse(r.stdout).digest, made.digest);
    assert.is(skopeoDigest(`docker://${reg.host}/pushed/${name}:1`), made.digest, 'what the registry holds is what was pushed');
  } else {
    assert.is(r.code, 125, r.stderr);
    oneLine(r.stderr);
  }
  return r;
};

test('push: an upload cut mid-PATCH (connection reset) is retried; the registry ends with the right image', async () => {
  const r = await pushCase('reset', [{ match: 'PATCH /v2/pushed/reset/blobs/uploads/', fault: { kind: 'resetUpload', after: 50_000 } }], true);
  assert.match(r.stderr, /retry 1/);
});

test('push: a PATCH the server never answers times out and is retried', async () => {
  const r = await pushCase('hangpatch', [{ match: 'PATCH /v2/pushed/hangpatch/blobs/uploads/', fault: { kind: 'hang' } }], true);
  assert.match(r.stderr, /no data for 1 s/);
});

test('push: a stalled closing PUT and a stalled manifest PUT time out and are retried', async () => {
  const r = await pushCase(
    'hangput',
    [
      { match: 'PUT /v2/pushed/hangput/blobs/uploads/', fault: { kind: 'hang' } },
      { match: 'PUT /v2/pushed/hangput/manifests/1', fault: { kind: 'hang' } },
    ],
    true,
  );
  assert.ok((r.stderr.match(/no data for 1 s/g) ?? []).length >= 2, r.stderr);
});

test('push: an upload cut every time ends in a clean error', async () => {
  const r = await pushCase('always', [{ match: 'PATCH /v2/pushed/always/blobs/uploads/', fault: { kind: 'resetUpload', after: 10_000 }, times: 100 }], false, { TSD_RETRIES: '2' });
  assert.match(r.stderr, /upload blob sha256:[0-9a-f]{64} of .*pushed\/always/);
});

test('push: a registry that never answers the POST: a clean timeout error', async () => {
  const r = await pushCase('deadpost', [{ match: 'POST /v2/pushed/deadpost/blobs/uploads/', fault: { kind: 'hang' }, times: 100 }], false, { TSD_RETRIES: '2' });
  assert.match(r.stderr, /no data for 1 s/);
});

test.run();
