// The context's TSD.sha256 records: trusted for cache keys (a hit reads no byte of the file),
// checked against the bytes whenever a step reads them. A wrong record gives at most the cached
// result of the bytes it names; it can never make the cache remember other bytes under that name.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import tar from 'tar-stream';
import type { StorePaths } from '../../src/store/layout.js';
import { REPO, removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';
import { imageTree } from './support.js';

let p: StorePaths;
test.before(async () => {
  p = await tempStore();
});
test.after(() => removeDir(p.root));

const sha = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;

/** A context tar as tsd-ctx writes it, with `claimed` as the app.txt's TSD.sha256 record. */
const contextTar = async (content: string, claimed: string): Promise<Buffer> => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((res) => pack.on('end', () => res()));
  const df = 'FROM scratch\nCOPY app.txt /app.txt\n';
  pack.entry({ name: 'Dockerfile', mode: 0o644, mtime: new Date(0), pax: { 'TSD.role': 'dockerfile', 'TSD.sha256': sha(df) } }, df);
  pack.entry({ name: 'app.txt', mode: 0o644, mtime: new Date(0), pax: { 'TSD.sha256': claimed } }, content);
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
};

const build = async (tag: string, content: string, claimed: string) => tsd('build', ['-q', '-t', tag], { root: p.root, input: await contextTar(content, claimed), env: { SOURCE_DATE_EPOCH: '0' } });
const appOf = async (tag: string): Promise<string | undefined> => (await imageTree(p, tag)).tree.get('app.txt')?.content?.toString();

test('a record that does not match the bytes fails the COPY that reads them, naming the file; nothing is cached under it', async () => {
  const lie = await build('lie', 'real bytes\n', sha('other bytes\n'));
  assert.is(lie.code, 1, lie.stderr);
  assert.is(lie.stdout, '');
  assert.match(lie.stderr, /^tsd-build: .*app\.txt: its bytes do not match the TSD\.sha256 record/m);
  assert.is(lie.stderr.trim().split('\n').length, 1, lie.stderr);
  // the honest build of the bytes the record named gets those bytes, not the liar's
  const honest = await build('honest', 'other bytes\n', sha('other bytes\n'));
  assert.is(honest.code, 0, honest.stderr);
  assert.is(await appOf('honest'), 'other bytes\n');
});

test('the wrong record is what fails the COPY, whatever the layer compression (zstd was killed by it and reported SIGPIPE)', async () => {
  for (const c of ['gzip', 'zstd', 'none']) {
    const r = await tsd('build', ['-q', '--no-cache', '-t', `lie-${c}`, '--compression', c], { root: p.root, input: await contextTar('real bytes\n', sha('other bytes\n')) });
    assert.is(r.code, 1, `${c}: ${r.stderr}`);
    assert.match(r.stderr, /^tsd-build: .*app\.txt: its bytes do not match the TSD\.sha256 record/m);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('many files, one record wrong: the COPY fails naming it and keeps no layer, piped or read in place', async () => {
  // 1,200 files of 5 KB: several 4 MiB read windows; file 700 lies
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((res) => pack.on('end', () => res()));
  const df = 'FROM scratch\nCOPY many /many\n';
  pack.entry({ name: 'Dockerfile', mode: 0o644, mtime: new Date(0), pax: { 'TSD.role': 'dockerfile', 'TSD.sha256': sha(df) } }, df);
  for (let i = 0; i < 1200; i++) {
    const body = `${i}\n`.padEnd(5000, '.');
    pack.entry({ name: `many/f${i}`, mode: 0o644, mtime: new Date(0), pax: { 'TSD.sha256': sha(i === 700 ? 'not this' : body) } }, body);
  }
  pack.finalize();
  await done;
  const input = Buffer.concat(chunks);
  const blobs = () => readdirSync(join(p.root, 'blobs', 'sha256')).length;
  const before = blobs();
  const piped = await tsd('build', ['-q', '--no-cache', '-t', 'many'], { root: p.root, input });
  assert.is(piped.code, 1, piped.stderr);
  assert.match(piped.stderr, /^tsd-build: .*many\/f700: its bytes do not match the TSD\.sha256 record/m);
  const dir = tempDir();
  const file = join(dir, 'many.tar');
  writeFileSync(file, input);
  const inPlace = spawnSync('sh', ['-c', '"$0" -q --no-cache -t many < "$1"', join(REPO, 'bin/tsd-build'), file], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  assert.is(inPlace.status, 1, inPlace.stderr);
  assert.match(inPlace.stderr, /^tsd-build: .*many\/f700: its bytes do not match the TSD\.sha256 record/m);
  removeDir(dir);
  assert.is(blobs(), before, 'no layer blob kept');
});

test('a hit trusts the record: a wrong one gets the cached result of the bytes it names (its sender fools only itself)', async () => {
  const first = await build('first', 'v1\n', sha('v1\n'));
  assert.is(first.code, 0, first.stderr);
  const again = await build('again', 'not v1\n', sha('v1\n'));
  assert.is(again.code, 0, again.stderr);
  assert.is(JSON.parse(again.stdout).digest, JSON.parse(first.stdout).digest);
  assert.is(await appOf('again'), 'v1\n');
});

test('a context that is a regular file on stdin is read in place, from where its offset stands', async () => {
  const dir = tempDir();
  const file = join(dir, 'ctx.tar');
  // 1 KiB of junk first, consumed by dd: tsd-build starts at the fd's offset
  writeFileSync(file, Buffer.concat([Buffer.alloc(1024, 0x41), await contextTar('in place\n', sha('in place\n'))]));
  const r = spawnSync('sh', ['-c', `(dd bs=1024 count=1 of=/dev/null 2>/dev/null; "$0" -q -t inplace) < "$1"`, join(REPO, 'bin/tsd-build'), file], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  removeDir(dir);
  assert.is(r.status, 0, r.stderr);
  assert.is(await appOf('inplace'), 'in place\n');
  // the spools of the earlier (piped) builds are kept for reuse; nothing of this build's is left
  assert.equal(readdirSync(join(p.cache, 'tmp')).filter((n) => !n.startsWith('spool-free-')), [], 'no spool or scratch left behind');
});

test('a piped context reuses the spool an earlier build left: a smaller context after a bigger one gets its own bytes, and at most two spools are kept', async () => {
  const big = 'x'.repeat(3 << 20);
  const first = await build('spool-big', big, sha(big));
  assert.is(first.code, 0, first.stderr);
  const small = await contextTar('small\n', sha('small\n'));
  const second = await tsd('build', ['-q', '-t', 'spool-small'], { root: p.root, input: small, env: { SOURCE_DATE_EPOCH: '0' } });
  assert.is(second.code, 0, second.stderr);
  assert.is(await appOf('spool-small'), 'small\n');
  // three at once: each gets a spool of its own (claimed by rename), and two are kept afterwards
  const three = await Promise.all(['a', 'b', 'c'].map((k) => build(`spool-${k}`, `${k}\n`.repeat(1000), sha(`${k}\n`.repeat(1000)))));
  for (const r of three) assert.is(r.code, 0, r.stderr);
  for (const k of ['a', 'b', 'c']) assert.is(await appOf(`spool-${k}`), `${k}\n`.repeat(1000));
  const kept = readdirSync(join(p.cache, 'tmp')).filter((n) => n.startsWith('spool-free-'));
  assert.ok(kept.length >= 1 && kept.length <= 2, kept.join(' '));
  for (const n of kept) assert.ok(statSync(join(p.cache, 'tmp', n)).size < (1 << 20), 'a reused spool is cut to its context');
});

test.run();
