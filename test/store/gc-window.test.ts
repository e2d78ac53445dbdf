// gc moves each blob it did not reach aside for a moment and puts back what a new tag or lease
// needs. A reader that finds a blob missing while a live gc holds it aside waits and looks
// again (blob.ts, asideSettled): found by the concurrency suite, where `tsd-build | tsd-run`
// failed with "blob …: not in the store" for a manifest a build had just written and tagged.
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { hasBlob, ingest, openBlob, readBlob } from '../../src/store/blob.js';
import type { Digest } from '../../src/oci/digest.js';
import { removeDir, tempStore, tsd } from '../support/tsd.js';

const startOf = (pid: number): string => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};

test('a blob a live gc holds aside is found once the gc puts it back', async () => {
  const p = await tempStore();
  const w = await ingest(p, Readable.from([Buffer.from('a manifest a build just wrote')]))();
  if (E.isLeft(w)) throw new Error(w.left.message);
  const digest: Digest = w.right.digest;
  // a "gc" in another live process: holds the gc lock and has the blob aside
  const gc = spawn('sleep', ['30'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 50));
  mkdirSync(p.locks, { recursive: true });
  writeFileSync(p.lock('gc'), JSON.stringify({ pid: gc.pid, start: startOf(gc.pid!), nonce: 'x' }));
  const aside = join(p.ingest, `${gc.pid}-0.aside-${digest.replace(':', '-')}`);
  renameSync(p.blob(digest), aside);
  const readers = Promise.all([
    readBlob(p, digest)(),
    hasBlob(p, digest),
    (async () => {
      const chunks: Buffer[] = [];
      for await (const c of openBlob(p, digest)) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString();
    })(),
  ]);
  await new Promise((r) => setTimeout(r, 300));
  renameSync(aside, p.blob(digest)); // the gc puts it back, then ends
  gc.kill('SIGKILL');
  await new Promise((r) => gc.once('exit', r));
  const [read, has, streamed] = await readers;
  assert.ok(E.isRight(read) && read.right.toString() === 'a manifest a build just wrote', E.isLeft(read) ? read.left.message : '');
  assert.is(has, true);
  assert.is(streamed, 'a manifest a build just wrote');
  removeDir(p.root);
});

test('a blob that is really missing is reported at once, even beside the aside file of a dead gc', async () => {
  const p = await tempStore();
  mkdirSync(p.ingest, { recursive: true });
  writeFileSync(join(p.ingest, `999999999-0.aside-sha256-${'0'.repeat(64)}`), 'left by a gc killed half-way');
  const started = Date.now();
  const r = await readBlob(p, `sha256:${'0'.repeat(64)}` as Digest)();
  assert.ok(E.isLeft(r) && r.left._tag === 'BlobNotFound');
  assert.is(await hasBlob(p, `sha256:${'0'.repeat(64)}` as Digest), false);
  assert.ok(Date.now() - started < 2000);
  const cli = await tsd('store', ['inspect', `sha256:${'0'.repeat(64)}`], { root: p.root });
  assert.is(cli.code, 2);
  removeDir(p.root);
});

test.run();
