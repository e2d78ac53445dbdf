// A `tsd-run --name` killed (kill -9) while it created its container left a name reservation that
// nothing completed: the name stayed "in use" by a container no verb could see or remove, and its
// overlay stayed mounted. Now the reservation names its creator; a later create with a name undoes
// a dead creator's reservation. (Found by test/chaos.)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { currentProcess } from '../../src/store/lock.js';
import { removeDir, tempStore, tsd } from '../support/tsd.js';
import { busyboxImage, REF } from './busybox.js';
import type { StorePaths } from '../../src/store/layout.js';

let p: StorePaths;
test.before(async () => {
  p = await tempStore();
  await busyboxImage(p);
});
test.after(() => removeDir(p.root));

/** A container directory as a create leaves it between reserving the name and writing the record. */
const reservation = (id: string, name: string, holder: { pid: number; start: string }): string => {
  const dir = join(p.containers, id);
  mkdirSync(join(dir, 'bundle', 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'container.json'), JSON.stringify({ v: 1, id, name, reserving: true, ...holder }));
  return dir;
};

test('the reservation of a killed create frees its name: the next create with that name succeeds', async () => {
  const dead = spawnSync('true').pid as number;
  const dir = reservation('a'.repeat(64), 'killed', { pid: dead, start: '1' });
  const r = await tsd('run', ['-d', '--name', 'killed', REF, 'sh', '-c', 'echo again'], { root: p.root });
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).name, 'killed');
  assert.not.ok(existsSync(dir), 'the dead reservation is undone');
  assert.is((await tsd('run', ['wait', 'killed'], { root: p.root })).stdout, '0\n');
  assert.is((await tsd('run', ['rm', 'killed'], { root: p.root })).code, 0);
});

test('a live creator keeps its name', async () => {
  const dir = reservation('b'.repeat(64), 'busy', currentProcess());
  const r = await tsd('run', ['-d', '--name', 'busy', REF, 'true'], { root: p.root });
  assert.is(r.code, 1);
  assert.match(r.stderr, /the container name "busy" is already in use/);
  assert.ok(existsSync(dir));
  assert.ok(readFileSync(join(dir, 'container.json'), 'utf8').includes('"reserving":true'));
  removeDir(dir);
});

test.run();
