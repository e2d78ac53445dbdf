// The examples as users run them: the README demo pipeline on examples/hello, and the shop
// Makefile (make -j4 build test, push to a real registry that skopeo then reads, clean).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, removeDir, tempDir } from '../support/tsd.js';
import { startRegistry, type Registry } from '../support/registry.js';

const root = tempDir('tsd-examples-');
const env = { ...process.env, TSD_ROOT: root, PATH: `${join(REPO, 'bin')}:${process.env.PATH}` };
let registry: Registry | undefined;

test.after(async () => {
  await registry?.stop();
  removeDir(root);
});

const sh = (script: string, cwd = REPO): Promise<{ code: number; out: string }> =>
  new Promise((done) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { cwd, env });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => done({ code: code ?? 1, out }));
  });

test('the README demo: busybox base imported, tsd-ctx examples/hello | tsd-build | tsd-run --rm', async () => {
  const base = await sh(`sh examples/busybox-rootfs.sh | tsd-store import -c 'CMD ["sh"]' localhost/busybox:latest`);
  assert.is(base.code, 0, base.out);
  const demo = await sh('tsd-ctx examples/hello | tsd-build -q -t localhost/hello | tsd-run --rm');
  assert.is(demo.code, 0, demo.out);
  assert.is(demo.out, 'Hello from tsd! (built by tsd-build, running as nobody)\n');
});

test('examples/shop: make -j4 build test, push to a registry, clean', async () => {
  const work = tempDir('tsd-shop-');
  cpSync(join(REPO, 'examples'), work, { recursive: true });
  const dir = join(work, 'shop');
  const made = await sh('make -j4 test', dir);
  assert.is(made.code, 0, made.out);
  assert.match(made.out, /api: ok/);
  assert.match(made.out, /worker: ok/);
  // unchanged: make has nothing to build
  const again = await sh('make -j4 build', dir);
  assert.is(again.code, 0, again.out);
  assert.not.match(again.out, /tsd-build/);
  registry = await startRegistry();
  const pushed = await sh(`make -j4 push REGISTRY=${registry.host}`, dir);
  assert.is(pushed.code, 0, pushed.out);
  const inspected = spawnSync('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${registry.host}/shop/worker:dev`], { encoding: 'utf8' });
  assert.is(inspected.status, 0, inspected.stderr);
  assert.equal(JSON.parse(inspected.stdout).config.Entrypoint, ['/app/total']);
  const cleaned = await sh('make clean', dir);
  assert.is(cleaned.code, 0, cleaned.out);
  assert.not.ok(existsSync(join(dir, '.stamps')));
  const ls = await sh('tsd-store ls --format "{{.Repository}}"');
  assert.not.match(ls.out, /shop/);
  removeDir(work);
});

test.run();
