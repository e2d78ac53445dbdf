// The store is a plain OCI image layout: skopeo writes into it and tsd lists what it wrote;
// skopeo and umoci read what tsd wrote, by tsd's full reference names.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { removeDir, tempDir, tsd } from '../support/tsd.js';
import { busyboxTar } from './busybox.js';

const work = tempDir('tsd-interop-');
const root = join(work, 'store');
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let digest = '';

test('setup: import busybox as docker.io/library/busybox:latest', async () => {
  const r = await tsd('store', ['import', '-c', 'CMD ["sh"]', '-c', 'WORKDIR /root', 'busybox'], { root, input: await busyboxTar() });
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.is(m.ref, 'docker.io/library/busybox:latest');
  digest = m.digest;
  const index = JSON.parse(readFileSync(join(root, 'index.json'), 'utf8'));
  assert.is(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'docker.io/library/busybox:latest');
});

test('skopeo inspect oci:$ROOT:<full reference> reads what tsd wrote', () => {
  const j = JSON.parse(run('skopeo', ['inspect', `oci:${root}:docker.io/library/busybox:latest`]));
  assert.is(j.Digest, digest);
  assert.is(j.Os, 'linux');
  const cfg = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${root}:docker.io/library/busybox:latest`]));
  assert.equal(cfg.config.Cmd, ['sh']);
  assert.is(cfg.config.WorkingDir, '/root');
});

test('umoci unpack --image $ROOT:<full reference> unpacks what tsd wrote', () => {
  const bundle = join(work, 'bundle');
  run('umoci', ['unpack', '--image', `${root}:docker.io/library/busybox:latest`, bundle]);
  assert.ok(existsSync(join(bundle, 'config.json')));
  assert.is(readlinkSync(join(bundle, 'rootfs', 'bin', 'sh')), 'busybox');
  const out = run(join(bundle, 'rootfs', 'bin', 'busybox'), ['echo', 'unpacked']).trim();
  assert.is(out, 'unpacked');
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  assert.is(spec.process.cwd, '/root');
});

test('skopeo copies into the store layout (oci: and docker-archive:), tsd-store ls lists it', async () => {
  run('skopeo', ['copy', `oci:${root}:docker.io/library/busybox:latest`, `oci:${root}:localhost/copied:v1`]);
  const save = await tsd('store', ['save', '-o', join(work, 'bb.tar'), 'busybox'], { root });
  assert.is(save.code, 0, save.stderr);
  run('skopeo', ['copy', `docker-archive:${join(work, 'bb.tar')}`, `oci:${root}:from-archive`]);
  const ls = await tsd('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}'], { root });
  assert.is(ls.code, 0, ls.stderr);
  assert.equal(ls.stdout.trim().split('\n').sort(), ['busybox:latest', 'from-archive:latest', 'localhost/copied:v1']);
  const byName = await tsd('store', ['inspect', 'localhost/copied:v1'], { root });
  assert.is(byName.code, 0, byName.stderr);
  assert.is(JSON.parse(byName.stdout).digest, digest, 'skopeo kept the manifest as is');
  const fromArchive = await tsd('store', ['inspect', 'from-archive'], { root });
  assert.is(fromArchive.code, 0, fromArchive.stderr);
  const fsck = await tsd('store', ['fsck'], { root });
  assert.is(fsck.code, 0, fsck.stdout);
  // gc after skopeo's writes keeps everything that is named
  const gc = await tsd('store', ['gc', '--json'], { root });
  assert.equal(JSON.parse(gc.stdout).removed, []);
});

test('cleanup', () => removeDir(work));

test.run();
