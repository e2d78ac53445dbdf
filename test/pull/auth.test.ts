// Authentication against real registries: htpasswd basic auth (credentials from REGISTRY_AUTH_FILE
// and ~/.docker/config.json), and token auth with a token server that signs JWTs the registry
// verifies (anonymous pull, push with credentials, one token reused for every blob). Redirects to
// blob storage elsewhere carry no Authorization header.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort, OciLayout, skopeoCopy, skopeoDigest, startFaultProxy, startRegistry, startTokenServer, type Registry, type TokenServer } from '../support/registry.js';
import { removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';

let basic: Registry;
let tokens: TokenServer;
let bearer: Registry;
let work: string;
let image: ReturnType<OciLayout['image']>;
const USER = { alice: 's3cret' };

const authFile = (dir: string, host: string, user: string, password: string): string => {
  const path = join(dir, `auth-${user}-${password}.json`);
  writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return path;
};

test.before(async () => {
  work = tempDir('tsd-auth-');
  basic = await startRegistry({ users: USER });
  tokens = await startTokenServer(USER);
  bearer = await startRegistry({ token: tokens });
  const layout = new OciLayout(join(work, 'layout'));
  const layers = [await layout.smallLayer({ a: 'a' }), await layout.smallLayer({ b: 'b' }), await layout.smallLayer({ c: 'c' })];
  image = layout.image(layers, { tag: 'v1' });
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${basic.host}/a/app:v1`, ['--dest-creds', 'alice:s3cret']);
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${bearer.host}/a/app:v1`, ['--dest-creds', 'alice:s3cret']);
});

test.after(async () => {
  await bearer.stop();
  await tokens.stop();
  await basic.stop();
  removeDir(work);
});

test('basic auth: no credentials is a clear error; REGISTRY_AUTH_FILE and ~/.docker/config.json work; a wrong password is refused', async () => {
  const p = await tempStore();
  const ref = `${basic.host}/a/app:v1`;
  const home = join(work, 'home-empty');
  mkdirSync(home, { recursive: true });
  const none = await tsd('pull', ['-q', ref], { root: p.root, env: { HOME: home } });
  assert.is(none.code, 1);
  assert.match(none.stderr, new RegExp(`^tsd-pull: manifest ${basic.host}/a/app:v1: unauthorized: no credentials for ${basic.host}`));
  const wrong = await tsd('pull', ['-q', ref], { root: p.root, env: { HOME: home, REGISTRY_AUTH_FILE: authFile(work, basic.host, 'alice', 'nope') } });
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /unauthorized/);
  const viaFile = await tsd('pull', ['-q', ref], { root: p.root, env: { HOME: home, REGISTRY_AUTH_FILE: authFile(work, basic.host, 'alice', 's3cret') } });
  assert.is(viaFile.code, 0, viaFile.stderr);
  assert.is(JSON.parse(viaFile.stdout).digest, image.digest);
  const dockerHome = join(work, 'home-docker');
  mkdirSync(join(dockerHome, '.docker'), { recursive: true });
  writeFileSync(join(dockerHome, '.docker', 'config.json'), JSON.stringify({ auths: { [`http://${basic.host}/v2/`]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
  const p2 = await tempStore();
  const viaDocker = await tsd('pull', ['-q', ref], { root: p2.root, env: { HOME: dockerHome } });
  assert.is(viaDocker.code, 0, viaDocker.stderr);
  // and a push with the same credentials
  const pushed = await tsd('push', ['-q', ref, `${basic.host}/a/copy:1`], { root: p2.root, env: { HOME: dockerHome } });
  assert.is(pushed.code, 0, pushed.stderr);
  assert.is(skopeoDigest(`docker://${basic.host}/a/copy:1`, { REGISTRY_AUTH_FILE: authFile(work, basic.host, 'alice', 's3cret') }), image.digest);
  removeDir(p.root);
  removeDir(p2.root);
});

test('bearer tokens: anonymous pull with one token for all blobs; push needs credentials', async () => {
  const p = await tempStore();
  const ref = `${bearer.host}/a/app:v1`;
  const home = join(work, 'home-empty');
  tokens.requests.length = 0;
  const r = await tsd('pull', ['-q', ref], { root: p.root, env: { HOME: home } });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, image.digest);
  assert.is(tokens.requests.length, 1, JSON.stringify(tokens.requests));
  assert.equal(tokens.requests[0], { scopes: ['repository:a/app:pull'], user: undefined, method: 'GET' });
  const denied = await tsd('push', ['-q', ref, `${bearer.host}/a/pushed:1`], { root: p.root, env: { HOME: home } });
  assert.is(denied.code, 1);
  assert.match(denied.stderr, /^tsd-push: .*unauthorized/);
  tokens.requests.length = 0;
  const ok = await tsd('push', ['--progress=plain', ref, `${bearer.host}/a/pushed:1`], { root: p.root, env: { HOME: home, REGISTRY_AUTH_FILE: authFile(work, bearer.host, 'alice', 's3cret') } });
  assert.is(ok.code, 0, ok.stderr);
  assert.is((ok.stderr.match(/: mounted/g) ?? []).length, 4, ok.stderr);
  assert.is(tokens.requests.length, 1);
  assert.equal(tokens.requests[0]?.user, 'alice');
  assert.equal(tokens.requests[0]?.scopes.sort(), ['repository:a/app:pull', 'repository:a/pushed:pull,push']);
  removeDir(p.root);
});

test('a redirect to blob storage elsewhere carries no Authorization', async () => {
  // "storage": another origin that serves blobs by fetching them from the registry itself
  const seenAuth: (string | undefined)[] = [];
  const storage = http.createServer((req, res) => {
    seenAuth.push(req.headers.authorization);
    http.get(`http://${basic.host}${req.url}`, { headers: { authorization: `Basic ${Buffer.from('alice:s3cret').toString('base64')}` } }, (up) => {
      res.writeHead(up.statusCode ?? 502, { 'content-length': up.headers['content-length'] ?? '' });
      up.pipe(res);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => storage.listen(port, '127.0.0.2', r));
  const proxy = await startFaultProxy(basic.host);
  proxy.rules.push({ match: '/blobs/sha256:', fault: { kind: 'redirect', to: `http://127.0.0.2:${port}` }, times: 100 });
  const p = await tempStore();
  const r = await tsd('pull', ['-q', `${proxy.host}/a/app:v1`], { root: p.root, env: { REGISTRY_AUTH_FILE: authFile(work, proxy.host, 'alice', 's3cret') } });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).digest, image.digest);
  assert.is(seenAuth.length, 4);
  assert.equal(seenAuth, [undefined, undefined, undefined, undefined]);
  await proxy.stop();
  storage.closeAllConnections();
  await new Promise((r) => storage.close(r));
  removeDir(p.root);
});

test.run();
