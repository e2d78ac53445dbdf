import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acquireLock, releaseLock } from '../../src/store/lock.js';
import { removeDir, tempDir } from '../support/tsd.js';

const dir = tempDir('tsd-lock-');
test.after(() => removeDir(dir));

test('a lock is exclusive and released', async () => {
  const path = join(dir, 'a.lock');
  const first = await acquireLock(path);
  let second = false;
  const waiting = acquireLock(path, 5_000).then((l) => {
    second = true;
    return l;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.is(second, false, 'second holder got the lock while the first held it');
  await releaseLock(first);
  const l2 = await waiting;
  assert.ok(second);
  await releaseLock(l2);
  assert.not.ok(existsSync(path));
});

test('a lock held by a process killed with SIGKILL is broken', async () => {
  const path = join(dir, 'b.lock');
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
    import { acquireLock } from ${JSON.stringify(join(import.meta.dirname, '../../src/store/lock.ts'))};
    await acquireLock(${JSON.stringify(path)});
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => holder.stdout.once('data', () => r()));
  assert.ok(existsSync(path));
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('close', r));
  const started = Date.now();
  const lock = await acquireLock(path, 5_000);
  assert.ok(Date.now() - started < 2_000, 'breaking a dead holder should be quick');
  assert.is(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
  await releaseLock(lock);
});

test('a lock naming a live process is not broken: waiting times out with a clear error', async () => {
  const path = join(dir, 'c.lock');
  const first = await acquireLock(path);
  try {
    await acquireLock(path, 300);
    assert.unreachable('acquired a held lock');
  } catch (e) {
    assert.is((e as { _tag: string })._tag, 'LockTimeout');
    assert.match((e as { message: string }).message, /c\.lock: still held/);
  } finally {
    await releaseLock(first);
  }
});

test('a lock file naming a reused pid (different start time) is stale', async () => {
  const path = join(dir, 'd.lock');
  writeFileSync(path, JSON.stringify({ pid: process.pid, start: '1', nonce: 'x' }));
  const lock = await acquireLock(path, 2_000);
  assert.is(JSON.parse(readFileSync(path, 'utf8')).nonce, lock.holder.nonce);
  await releaseLock(lock);
});

test('many concurrent acquirers in one process never overlap', async () => {
  const path = join(dir, 'e.lock');
  let inside = 0;
  let max = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      const l = await acquireLock(path, 20_000);
      inside++;
      max = Math.max(max, inside);
      await new Promise((r) => setTimeout(r, 2));
      inside--;
      await releaseLock(l);
    }),
  );
  assert.is(max, 1);
});

test.run();
