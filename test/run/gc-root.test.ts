// A container keeps its image: `tsd-store rm` of its name and `tsd-store gc` (snapshot grace 0,
// so only roots keep anything) while it runs leave its blobs and snapshots, so it runs on, exec
// works, and it can be stopped and started again; once it is removed, gc takes them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { releaseLeases } from '../../src/store/lease.js';
import { tsd } from '../support/tsd.js';
import { busyboxImage } from './busybox.js';
import { detach, inspect, p, run, setup, teardown } from './detached-support.js';

test.before(setup);

const store = (args: string[]) => tsd('store', args, { root: p().root, env: { TSD_SNAPSHOT_GRACE_MS: '0' } });
const snapshots = () => readdirSync(p().snapshots).filter((n) => /^[a-f0-9]{64}$/.test(n));

test('gc while a container runs keeps its image usable; after rm, gc reclaims it', async () => {
  const manifest = await busyboxImage(p(), 'docker.io/library/doomed:1', { Cmd: ['sleep', '60'], Env: ['PATH=/bin'] }, [[{ name: 'marker', content: 'still here\n' }]]);
  const blob = join(p().blobs, 'sha256', manifest.digest.slice(7));
  await releaseLeases(p()); // this test process wrote the blobs: its own lease would keep them
  const id = await detach(['--name', 'keeper', 'doomed:1']);
  assert.ok(existsSync(blob));
  const before = snapshots();
  assert.ok(before.length >= 2, `the image's snapshots: ${before.join(' ')}`);
  assert.is((await store(['rm', 'doomed:1'])).code, 0);
  const gc = await store(['gc']);
  assert.is(gc.code, 0, gc.stderr);
  assert.equal(snapshots().sort(), before.sort(), 'no snapshot the container stacks was removed');
  const cat = await run(['exec', 'keeper', 'cat', '/marker']);
  assert.equal([cat.code, cat.stdout], [0, 'still here\n']);
  // stop and start again: the root file system is mounted anew from the kept snapshots, the
  // image found by its digest although no name points at it
  assert.is((await run(['stop', '-t', '0', 'keeper'])).code, 0);
  const started = await run(['start', 'keeper']);
  assert.is(started.code, 0, started.stderr);
  assert.is((await inspect(id)).State.Status, 'running');
  assert.is((await run(['exec', 'keeper', 'cat', '/marker'])).stdout, 'still here\n');
  const fsck = await store(['fsck']);
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  // the container gone, nothing keeps the image: gc reclaims its blobs and its own snapshot
  assert.is((await run(['rm', '-f', 'keeper'])).code, 0);
  assert.is((await store(['gc'])).code, 0);
  assert.not.ok(existsSync(blob), 'the manifest is gone');
  assert.ok(snapshots().length < before.length, `gc removed the image's own snapshot: ${snapshots().length} left of ${before.length}`);
});

test.after(teardown);
test.run();
