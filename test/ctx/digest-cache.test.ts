// The digest cache of tsd-ctx: what it keeps, when it may be trusted, and that the tar is the same
// with and without it (the real binary, a real store directory).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { DigestCache, KEEP, RACY_MS } from '../../src/ctx/digest-cache.js';
import { REPO, removeDir, tempDir } from '../support/tsd.js';

const hexOf = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Runs bin/tsd-ctx DIR with store `root`; the tar, or a thrown error with its stderr. */
const ctx = (dir: string, root: string, env: NodeJS.ProcessEnv = {}): Buffer => {
  const r = spawnSync(join(REPO, 'bin', 'tsd-ctx'), [dir], { env: { ...process.env, SOURCE_DATE_EPOCH: '', TSD_ROOT: root, ...env }, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`tsd-ctx exit ${r.status}: ${r.stderr}`);
  return r.stdout;
};

/** The TSD.sha256 record of each file in a tar, by name. */
const digests = async (tarBytes: Buffer): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  const ex = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const d = (h.pax as Record<string, string> | undefined)?.['TSD.sha256'];
      if (d !== undefined) out.set(h.name, d);
      stream.on('end', next);
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(tarBytes);
  await done;
  return out;
};

/** Waits until the files just written are older than the racy window, so the cache may learn them. */
const ageFiles = () => spawnSync('sleep', [String((RACY_MS + 100) / 1000)]);

test('a key learned and saved is found again; another ctime, or a ctime inside the racy window, is not', () => {
  const store = tempDir('tsd-ctx-cache-');
  try {
    const now = Date.now();
    const key = { dev: 2049, ino: 77, size: 5, mtimeMs: now - 60_000.25, ctimeMs: now - 60_000.125 };
    const hex = hexOf('hello');
    const first = DigestCache.open(store, '/some/context', now);
    first.learn('dir/a b\nc.txt', key, hex);
    first.learn('fresh.txt', { ...key, ino: 78, ctimeMs: now - RACY_MS + 1 }, hexOf('fresh'));
    first.save();
    const again = DigestCache.open(store, '/some/context', now + 1000);
    assert.is(again.lookup('dir/a b\nc.txt', key), hex);
    assert.is(again.lookup('dir/a b\nc.txt', { ...key, ctimeMs: key.ctimeMs + 0.001 }), undefined);
    assert.is(again.lookup('dir/a b\nc.txt', { ...key, size: 6 }), undefined);
    assert.is(again.lookup('fresh.txt', { ...key, ino: 78, ctimeMs: now - RACY_MS + 1 }), undefined, 'a ctime inside the racy window is never learned');
    assert.is(DigestCache.open(store, '/other/context', now).lookup('dir/a b\nc.txt', key), undefined, 'one cache per context directory');
  } finally {
    removeDir(store);
  }
});

test('a cache file cut short or not a cache is an empty cache; no store, no cache written', () => {
  const store = tempDir('tsd-ctx-cache-');
  try {
    const now = Date.now();
    const key = (ino: number) => ({ dev: 1, ino, size: 1, mtimeMs: 1000, ctimeMs: 1000 });
    const c = DigestCache.open(store, '/ctx', now);
    c.learn('a', key(1), hexOf('a'));
    c.learn('b', key(2), hexOf('b'));
    c.save();
    const [file] = readdirSync(join(store, 'ctx-digests'));
    const path = join(store, 'ctx-digests', file!);
    const bytes = readFileSync(path);
    assert.is(DigestCache.open(store, '/ctx', now).lookup('a', key(1)), hexOf('a'));
    writeFileSync(path, bytes.subarray(0, bytes.length - 1));
    assert.is(DigestCache.open(store, '/ctx', now).lookup('a', key(1)), undefined);
    writeFileSync(path, 'not a cache');
    assert.is(DigestCache.open(store, '/ctx', now).lookup('a', key(1)), undefined);
    const missing = join(store, 'no-such-store');
    const none = DigestCache.open(missing, '/ctx', now);
    none.learn('a', key(1), hexOf('a'));
    none.save();
    assert.not.ok(existsSync(missing), 'a store that does not exist is not created');
  } finally {
    removeDir(store);
  }
});

test('at most KEEP cache files are kept, the ones written last', () => {
  const store = tempDir('tsd-ctx-cache-');
  try {
    const now = Date.now();
    const key = { dev: 1, ino: 1, size: 1, mtimeMs: 1000, ctimeMs: 1000 };
    const seen = new Set<string>();
    for (let i = 0; i < KEEP + 5; i++) {
      const c = DigestCache.open(store, `/ctx/${i}`, now);
      c.learn('a', key, hexOf(String(i)));
      c.save();
      // mtimes one second apart, so "written last" does not depend on the clock's resolution
      const [newest] = readdirSync(join(store, 'ctx-digests')).filter((n) => !seen.has(n));
      seen.add(newest!);
      utimesSync(join(store, 'ctx-digests', newest!), new Date(now), new Date(now - (KEEP + 5 - i) * 1000));
    }
    assert.is(readdirSync(join(store, 'ctx-digests')).length, KEEP);
    assert.is(DigestCache.open(store, `/ctx/${KEEP + 4}`, now).lookup('a', key), hexOf(String(KEEP + 4)));
    assert.is(DigestCache.open(store, '/ctx/0', now).lookup('a', key), undefined, 'the oldest is gone');
  } finally {
    removeDir(store);
  }
});

test('tsd-ctx: the same bytes with the cache cold, warm and off; a file rewritten with its old size and mtime gets its new digest', async () => {
  const dir = tempDir('tsd-ctx-tree-');
  const store = tempDir('tsd-ctx-store-');
  try {
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    mkdirSync(join(dir, 'sub'));
    for (let i = 0; i < 700; i++) writeFileSync(join(dir, 'sub', `f${i}`), `file ${i}\n`.repeat(1 + (i % 50)));
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(9 << 20, 7));
    ageFiles();
    const off = ctx(dir, store, { TSD_CTX_DIGEST_CACHE: '0' });
    assert.not.ok(existsSync(join(store, 'ctx-digests')), 'TSD_CTX_DIGEST_CACHE=0 keeps nothing');
    const cold = ctx(dir, store);
    assert.is(readdirSync(join(store, 'ctx-digests')).length, 1);
    for (const threads of ['0', '1']) assert.ok(ctx(dir, store, { TSD_CTX_THREADS: threads }).equals(off), `warm, TSD_CTX_THREADS=${threads}`);
    assert.ok(cold.equals(off));

    // same size, same mtime, new bytes: only the ctime tells, and it does
    const victim = join(dir, 'sub', 'f3');
    const before = statSync(victim);
    const reference = join(store, 'reference');
    spawnSync('cp', ['-p', victim, reference]);
    const changed = readFileSync(victim, 'utf8').replace('file 3', 'FILE 3');
    writeFileSync(victim, changed);
    spawnSync('touch', ['-m', '-r', reference, victim]);
    assert.is(lstatSync(victim).mtimeMs, before.mtimeMs);
    assert.is(lstatSync(victim).size, before.size);
    for (const threads of ['0', '1']) {
      const d = await digests(ctx(dir, store, { TSD_CTX_THREADS: threads }));
      assert.is(d.get('sub/f3'), `sha256:${hexOf(changed)}`);
      assert.is(d.get('sub/f4'), `sha256:${hexOf('file 4\n'.repeat(5))}`);
      assert.is(d.get('big.bin'), `sha256:${hexOf(Buffer.alloc(9 << 20, 7))}`);
    }
  } finally {
    removeDir(dir);
    removeDir(store);
  }
});

test('tsd-ctx trusts a record only for the stat it was learned with (a poisoned record proves the hit)', async () => {
  const dir = tempDir('tsd-ctx-tree-');
  const store = tempDir('tsd-ctx-store-');
  try {
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(dir, 'a.txt'), 'a\n');
    writeFileSync(join(dir, 'b.txt'), 'b\n');
    const wrong = hexOf('not the bytes');
    const c = DigestCache.open(store, dir, Date.now() + 60_000);
    c.learn('a.txt', lstatSync(join(dir, 'a.txt')), wrong);
    const b = lstatSync(join(dir, 'b.txt'));
    c.learn('b.txt', { dev: b.dev, ino: b.ino, size: b.size, mtimeMs: b.mtimeMs, ctimeMs: b.ctimeMs - 1 }, wrong);
    c.save();
    const d = await digests(ctx(dir, store));
    assert.is(d.get('a.txt'), `sha256:${wrong}`, 'the record matching the stat is used: the file is not hashed');
    assert.is(d.get('b.txt'), `sha256:${hexOf('b\n')}`, 'a record for another ctime is not');
  } finally {
    removeDir(dir);
    removeDir(store);
  }
});

test.run();
