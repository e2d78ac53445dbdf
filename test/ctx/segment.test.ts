// readSmall, the read of every small context file: a path that no longer leads to the regular
// file the walk saw is reported as changed (never followed, never blocked on), and a cached digest
// is handed back only while the file keeps the stat it was learned for.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Changed, readSmall, type EntrySpec } from '../../src/ctx/segment.js';
import { removeDir, tempDir } from '../support/tsd.js';

/** The spec the walk would plan for `file`, read from `abs` (another path when the test swaps it). */
const specOf = (file: string, abs = file, known?: string): EntrySpec => {
  const s = lstatSync(file);
  return { name: 'f', path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: s.size, abs, dev: s.dev, ino: s.ino, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ...(known ? { known } : {}) };
};
const into = () => Buffer.alloc(64);

test('the file as the walk saw it is read whole; its cached digest comes back', () => {
  const dir = tempDir('tsd-ctx-read-');
  try {
    const f = join(dir, 'f');
    writeFileSync(f, 'hello\n');
    const r = readSmall(specOf(f, f, 'ab'.repeat(32)), into(), 3);
    assert.is(r.data.toString(), 'hello\n');
    assert.is(r.known, 'ab'.repeat(32));
    assert.is(readSmall(specOf(f), into(), 0).known, undefined);
  } finally {
    removeDir(dir);
  }
});

test('a file rewritten since the walk (same size) is read, but its cached digest is not used', () => {
  const dir = tempDir('tsd-ctx-read-');
  try {
    const f = join(dir, 'f');
    writeFileSync(f, 'hello\n');
    writeFileSync(f, 'HELLO\n');
    // as the walk saw it before the rewrite: an earlier ctime (the rewrite set it to now)
    const spec = { ...specOf(f, f, 'ab'.repeat(32)), ctimeMs: lstatSync(f).ctimeMs - 1 };
    const r = readSmall(spec, into(), 0);
    assert.is(r.data.toString(), 'HELLO\n');
    assert.is(r.known, undefined);
  } finally {
    removeDir(dir);
  }
});

test('a path now leading elsewhere is a changed file: another inode, a symlink, a fifo, a directory, a grown file', () => {
  const dir = tempDir('tsd-ctx-read-');
  try {
    const f = join(dir, 'f');
    writeFileSync(f, 'hello\n');
    const other = join(dir, 'other');
    writeFileSync(other, 'hello\n');
    const link = join(dir, 'link');
    symlinkSync(f, link);
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    for (const abs of [other, link, fifo, sub]) assert.throws(() => readSmall(specOf(f, abs), into(), 0), (e: unknown) => e instanceof Changed, abs);
    const spec = specOf(f);
    appendFileSync(f, 'more');
    assert.throws(() => readSmall(spec, into(), 0), (e: unknown) => e instanceof Changed, 'grown');
  } finally {
    removeDir(dir);
  }
});

test.run();
