// Credential helpers (credHelpers, credsStore in config.json) and OAuth2 token requests (POST with
// grant_type password or refresh_token, falling back to GET), against a real registry behind a
// token server and helper programs on PATH, as Docker's docker-credential-* are.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeHelperAnswer, helperIn, helperServerUrl } from '../../src/registry/credentials.js';
import { OciLayout, skopeoCopy, startRegistry, startTokenServer, type Registry, type TokenServer } from '../support/registry.js';
import { removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';

const USER = { alice: 's3cret' };
let work: string;
let bin: string;
let tokens: TokenServer;
let reg: Registry;

test('which helper a config names, what it is asked, what its answer means (pure)', () => {
  const cfg = { credsStore: 'desktop', credHelpers: { 'ghcr.io': 'gh', 'https://index.docker.io/v1/': 'hub' } };
  assert.is(helperIn(cfg, 'ghcr.io'), 'gh');
  assert.is(helperIn(cfg, 'docker.io'), 'hub');
  assert.is(helperIn(cfg, 'quay.io'), 'desktop');
  assert.is(helperIn({ auths: {} }, 'quay.io'), undefined);
  assert.is(helperIn({ credHelpers: { 'ghcr.io': '' } }, 'ghcr.io'), undefined);
  assert.is(helperServerUrl('docker.io'), 'https://index.docker.io/v1/');
  assert.is(helperServerUrl('127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(decodeHelperAnswer('{"ServerURL":"x","Username":"bob","Secret":"pw"}'), { username: 'bob', password: 'pw' });
  assert.equal(decodeHelperAnswer('{"Username":"<token>","Secret":"rt"}'), { username: '<token>', password: '', identityToken: 'rt' });
  assert.is(decodeHelperAnswer('{"Username":"bob"}'), undefined);
  assert.is(decodeHelperAnswer('not json'), undefined);
});

test.before(async () => {
  work = tempDir('tsd-creds-');
  bin = join(work, 'bin');
  mkdirSync(bin);
  tokens = await startTokenServer(USER, { oauth: true });
  reg = await startRegistry({ token: tokens });
  // helpers: they answer only for the server URL they are asked about (read from stdin)
  const helper = (name: string, answer: string) => {
    const path = join(bin, `docker-credential-${name}`);
    writeFileSync(path, `#!/bin/sh\n[ "$1" = get ] || exit 2\nread url\nif [ "$url" = "${reg.host}" ]; then printf '%s' '${answer}'; else echo "credentials not found in native keychain"; exit 1; fi\n`);
    chmodSync(path, 0o755);
  };
  helper('tsdpass', JSON.stringify({ ServerURL: reg.host, Username: 'alice', Secret: 's3cret' }));
  helper('tsdtoken', JSON.stringify({ ServerURL: reg.host, Username: '<token>', Secret: 'refresh-alice' }));
  helper('tsdwrong', JSON.stringify({ ServerURL: reg.host, Username: 'alice', Secret: 'nope' }));
  writeFileSync(join(bin, 'docker-credential-tsdnone'), '#!/bin/sh\necho "credentials not found in native keychain"\nexit 1\n');
  chmodSync(join(bin, 'docker-credential-tsdnone'), 0o755);
  writeFileSync(join(bin, 'docker-credential-tsdbroken'), '#!/bin/sh\necho "the keychain is locked" >&2\nexit 3\n');
  chmodSync(join(bin, 'docker-credential-tsdbroken'), 0o755);
  const layout = new OciLayout(join(work, 'layout'));
  layout.image([await layout.smallLayer({ a: 'a' })], { tag: 'v1' });
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${reg.host}/c/app:v1`, ['--dest-creds', 'alice:s3cret']);
});

test.after(async () => {
  await reg.stop();
  await tokens.stop();
  removeDir(work);
});

/** A DOCKER_CONFIG dir holding `config`, and the environment that uses it with the helpers on PATH. */
const envWith = (name: string, config: object): NodeJS.ProcessEnv => {
  const dir = join(work, `docker-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return { DOCKER_CONFIG: dir, HOME: join(work, 'home'), PATH: `${bin}:${process.env.PATH}` };
};

test('credHelpers: the helper named for the registry gives the password; the token comes by OAuth2 POST (grant_type=password)', async () => {
  const p = await tempStore();
  const env = envWith('pass', { credHelpers: { [reg.host]: 'tsdpass' }, credsStore: 'tsdbroken' });
  const pulled = await tsd('pull', ['-q', `${reg.host}/c/app:v1`], { root: p.root, env });
  assert.is(pulled.code, 0, pulled.stderr);
  tokens.requests.length = 0;
  const pushed = await tsd('push', ['-q', `${reg.host}/c/app:v1`, `${reg.host}/c/copy:v1`], { root: p.root, env });
  assert.is(pushed.code, 0, pushed.stderr);
  assert.is(JSON.parse(pushed.stdout).ref, `${reg.host}/c/copy:v1`);
  assert.is(tokens.requests.length, 1, JSON.stringify(tokens.requests));
  assert.equal({ ...tokens.requests[0], scopes: [...(tokens.requests[0]?.scopes ?? [])].sort() }, { scopes: ['repository:c/app:pull', 'repository:c/copy:pull,push'], user: 'alice', method: 'POST', grant: 'password' });
  removeDir(p.root);
});

test('credsStore with an identity token ("<token>"): the token comes by OAuth2 POST (grant_type=refresh_token)', async () => {
  const p = await tempStore();
  const env = envWith('token', { credsStore: 'tsdtoken' });
  tokens.requests.length = 0;
  const pulled = await tsd('pull', ['-q', `${reg.host}/c/app:v1`], { root: p.root, env });
  assert.is(pulled.code, 0, pulled.stderr);
  const pushed = await tsd('push', ['-q', `${reg.host}/c/app:v1`, `${reg.host}/c/token:v1`], { root: p.root, env });
  assert.is(pushed.code, 0, pushed.stderr);
  assert.ok(tokens.requests.length >= 2 && tokens.requests.every((r) => r.method === 'POST' && r.grant === 'refresh_token' && r.user === 'alice'), JSON.stringify(tokens.requests));
  removeDir(p.root);
});

test('a helper with nothing for the registry means anonymous; a missing, failing or refused one is one clear line', async () => {
  const p = await tempStore();
  // a helper with nothing for this server ("credentials not found"): anonymous, so a pull works and a push is refused
  const none = envWith('none', { credsStore: 'tsdnone' });
  const anon = await tsd('pull', ['-q', `${reg.host}/c/app:v1`], { root: p.root, env: none });
  assert.is(anon.code, 0, anon.stderr);
  const refused = await tsd('push', ['-q', `${reg.host}/c/app:v1`, `${reg.host}/c/anon:v1`], { root: p.root, env: none });
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^tsd-push: .*unauthorized/);
  const missing = await tsd('pull', ['-q', `${reg.host}/c/app:v1`], { root: p.root, env: envWith('missing', { credsStore: 'nosuchhelper' }) });
  assert.is(missing.code, 1);
  assert.is(missing.stderr, `tsd-pull: credential helper docker-credential-nosuchhelper for ${reg.host}: docker-credential-nosuchhelper is not on PATH\n`);
  const broken = await tsd('pull', ['-q', `${reg.host}/c/app:v1`], { root: p.root, env: envWith('broken', { credsStore: 'tsdbroken' }) });
  assert.is(broken.code, 1);
  assert.is(broken.stderr, `tsd-pull: credential helper docker-credential-tsdbroken for ${reg.host}: the keychain is locked\n`);
  const wrong = await tsd('push', ['-q', `${reg.host}/c/app:v1`, `${reg.host}/c/wrong:v1`], { root: p.root, env: envWith('wrong', { credsStore: 'tsdwrong' }) });
  assert.is(wrong.code, 1, wrong.stderr);
  assert.match(wrong.stderr, /^tsd-push: .*the token server 127\.0\.0\.1:\d+ refused the credentials\n$/);
  removeDir(p.root);
});

test.run();
