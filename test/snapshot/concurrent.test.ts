// Two processes unpacking the same layer at the same moment end with one snapshot, unpacked once;
// an unpack killed with SIGKILL leaves nothing that stops the next one.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { snapshotDir } from '../../src/snapshot/snapshot.js';
import type { StorePaths } from '../../src/store/layout.js';
import { makeImage, tempStore } from '../support/tsd.js';
import { layerOf } from './layers.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'unpack-layer.ts');

interface Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<Record<string, unknown>>;
}

const worker = (args: readonly string[]): Worker => {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.on('data', (d) => {
    out += d;
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr!.on('data', (d) => (err += d));
  const result = new Promise<Record<string, unknown>>((resolve) =>
    child.on('close', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? '';
      resolve(last.startsWith('{') ? (JSON.parse(last) as Record<string, unknown>) : { exit: code, signal, stderr: err });
    }),
  );
  return { child, ready, result };
};

const manyFiles = (n: number, tag: string): { name: string; content: string }[] => Array.from({ length: n }, (_, i) => ({ name: `d${i % 50}/f${i}`, content: `${tag} ${i}\n`.repeat(20) }));

let p: StorePaths;
test.before(async () => {
  p = await tempStore();
});

test('two processes unpacking the same layer at once: one unpacks, the other waits and shares it', async () => {
  const layer = await layerOf(p, manyFiles(6000, 'same'));
  const [id] = chainIds([layer.diffId]);
  const args = [p.root, 'layer', JSON.stringify(layer.descriptor), layer.diffId, id!];
  const a = worker(args);
  const b = worker(args);
  await Promise.all([a.ready, b.ready]);
  a.child.stdin!.write('go\n');
  b.child.stdin!.write('go\n');
  const [ra, rb] = await Promise.all([a.result, b.result]);
  assert.ok(!ra.error && !rb.error && ra.startMs !== undefined, JSON.stringify([ra, rb]));
  assert.equal([ra.created, rb.created].sort(), [false, true], JSON.stringify([ra, rb]));
  assert.is(ra.dir, snapshotDir(p, id!));
  assert.is(rb.dir, ra.dir);
  const [first, second] = (ra.created ? [ra, rb] : [rb, ra]) as [Record<string, number>, Record<string, number>];
  assert.ok(second.startMs! < first.endMs!, 'the two calls overlapped in time, so the lock was what kept them apart');
  assert.equal(readdirSync(p.snapshots), [id!.slice('sha256:'.length)], 'one snapshot, no temp dirs');
  assert.is(readdirSync(snapshotDir(p, id!)).length, 50);
});

test('an unpack killed with SIGKILL leaves no snapshot; the next unpack cleans up and succeeds', async () => {
  await makeImage(p, 'docker.io/library/killed:1', [manyFiles(20000, 'killed')]);
  const w = worker([p.root, 'image', 'docker.io/library/killed:1']);
  await w.ready;
  w.child.stdin!.write('go\n');
  // wait until its temp dir exists, then kill it mid-unpack
  for (let i = 0; i < 400 && !readdirSync(p.snapshots).some((n) => n.startsWith('.unpack-')); i++) await new Promise((r) => setTimeout(r, 10));
  w.child.kill('SIGKILL');
  const killed = await w.result;
  assert.is(killed.signal, 'SIGKILL', 'it was killed before it finished');
  assert.ok(readdirSync(p.snapshots).some((n) => n.startsWith('.unpack-')), 'a temp dir was left by the dead process');
  assert.not.ok(readdirSync(p.snapshots).some((n) => /^[a-f0-9]{64}$/.test(n) && existsSync(join(p.snapshots, n, 'fs', 'd0', 'f0')) && !existsSync(join(p.snapshots, n, 'snapshot.json'))), 'no half snapshot under a final name');
  const again = worker([p.root, 'image', 'docker.io/library/killed:1']);
  await again.ready;
  again.child.stdin!.write('go\n');
  const r = await again.result;
  assert.ok(Array.isArray(r.dirs), JSON.stringify(r));
  assert.is(readdirSync((r.dirs as string[])[0]!).length, 50);
  assert.equal(readdirSync(p.snapshots).filter((n) => n.startsWith('.')), [], 'the dead process temp dir was removed');
});

test.run();
