// gc and a pull in flight: a pull downloads into ingest/sha256-HEX.partial under the blob's lock
// (src/pull/fetch.ts); the name holds no pid, so gc once took it for a temp of a dead process and
// deleted it mid-download, and the pull fetched the whole blob again (found by the concurrency
// suite: a blob delivered twice). gc keeps a partial whose blob lock has a live holder.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { removeDir, tempStore, tsd } from '../support/tsd.js';

const startOf = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};

test('gc keeps the partial of a live pull, removes the partial a dead one left', async () => {
  const p = await tempStore();
  const hex = 'ab'.repeat(32);
  const partial = join(p.ingest, `sha256-${hex}.partial`);
  mkdirSync(p.ingest, { recursive: true });
  writeFileSync(partial, 'half a layer');
  const puller = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 50));
  mkdirSync(p.locks, { recursive: true });
  writeFileSync(p.lock(`blob-${hex}`), JSON.stringify({ pid: puller.pid, start: startOf(puller.pid!), nonce: 'n' }));
  const gc = await tsd('store', ['gc'], { root: p.root });
  assert.is(gc.code, 0, gc.stderr);
  assert.ok(existsSync(partial), 'the live pull keeps its partial');
  const fsck = await tsd('store', ['fsck'], { root: p.root });
  assert.not.match(fsck.stderr, /temp files of dead processes/);
  puller.kill('SIGKILL');
  await new Promise((r) => puller.once('exit', r));
  const again = await tsd('store', ['gc'], { root: p.root });
  assert.is(again.code, 0, again.stderr);
  assert.not.ok(existsSync(partial), "a dead pull's partial is reclaimed");
  removeDir(p.root);
});

test.run();
