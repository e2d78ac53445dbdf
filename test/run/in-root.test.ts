// Paths inside a container's root resolved on the host: hostile symlinks never lead outside.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { lookupCommand, mkdirInRoot, readInRoot, resolveInRoot } from '../../src/run/in-root.js';
import { removeDir, tempDir } from '../support/tsd.js';

const outside = tempDir('tsd-outside-');
const root = tempDir('tsd-root-');
writeFileSync(join(outside, 'secret'), 'host secret\n');
mkdirSync(join(root, 'etc'));
mkdirSync(join(root, 'bin'));
writeFileSync(join(root, 'etc', 'real'), 'inside\n');
symlinkSync(join(outside, 'secret'), join(root, 'etc', 'passwd')); // absolute: means <root>/<outside>/secret
symlinkSync('../../../../../../..' + outside, join(root, 'etc', 'up')); // .. stops at the root
symlinkSync('/etc', join(root, 'etclink'));
symlinkSync('loop2', join(root, 'loop1'));
symlinkSync('loop1', join(root, 'loop2'));
writeFileSync(join(root, 'bin', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
writeFileSync(join(root, 'bin', 'data'), 'x', { mode: 0o644 });
symlinkSync(join(outside), join(root, 'escape'));

test('absolute and ../ symlinks resolve inside the root', async () => {
  assert.is(await resolveInRoot(root, '/etc/passwd'), join(root, outside, 'secret'));
  assert.is(await readInRoot(root, '/etc/passwd'), undefined);
  assert.is(await resolveInRoot(root, '/etc/up/secret'), join(root, outside, 'secret'));
  assert.is(await readInRoot(root, '/etclink/real'), 'inside\n');
  assert.is(await resolveInRoot(root, '/../../etc/real'), join(root, 'etc', 'real'));
  assert.is(await readInRoot(root, '/loop1'), undefined);
});

test('mkdir through a symlink stays inside the root', async () => {
  await mkdirInRoot(root, '/escape/made/here');
  assert.ok(existsSync(join(root, outside, 'made', 'here')));
  assert.not.ok(existsSync(join(outside, 'made')));
});

test('command lookup: PATH, relative, not executable, directory', async () => {
  assert.equal(await lookupCommand(root, 'tool', '/usr/bin:/bin', '/'), { _tag: 'Found', path: '/bin/tool' });
  assert.equal(await lookupCommand(root, 'nope', '/bin', '/'), { _tag: 'NotFound' });
  assert.equal(await lookupCommand(root, '/bin/data', '/bin', '/'), { _tag: 'NotExecutable', why: 'permission denied' });
  assert.equal(await lookupCommand(root, '/etc', '/bin', '/'), { _tag: 'NotExecutable', why: 'is a directory' });
  assert.equal(await lookupCommand(root, './tool', '/x', '/bin'), { _tag: 'Found', path: './tool' });
});

test.after(() => {
  removeDir(root);
  removeDir(outside);
});
test.run();
