// bin/tsd-*: how a binary starts. Each is sh for one line, then Node: the line moves
// NODE_EXTRA_CA_CERTS to TSD_EXTRA_CA_CERTS, so Node does not read that file at start-up (~40 ms
// here) and src/registry/tls.ts reads it for the first https request (test/build/build-steps).
import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VERSION } from '../src/version.js';
import { REPO, removeDir, tempDir } from './support/tsd.js';

const TOOLS = ['ctx', 'build', 'pull', 'push', 'run', 'store'];
const missing = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/tsd-test-ca.pem' };

test('every binary starts, prints its version, and does not read NODE_EXTRA_CA_CERTS when it opens no TLS connection', () => {
  for (const tool of TOOLS) {
    const r = spawnSync(join(REPO, 'bin', `tsd-${tool}`), ['--version'], { encoding: 'utf8', env: missing });
    assert.is(r.status, 0, `tsd-${tool}: ${r.stderr}`);
    assert.is(r.stdout, `${VERSION}\n`, `tsd-${tool}`);
    assert.is(r.stderr, '', `tsd-${tool}`);
  }
  // the control: Node started on the same file reads the variable at once, and warns of the missing file
  const direct = spawnSync(process.execPath, [join(REPO, 'bin', 'tsd-store'), '--version'], { encoding: 'utf8', env: missing });
  assert.is(direct.status, 0);
  assert.match(direct.stderr, /Ignoring extra certs from `\/nonexistent\/tsd-test-ca\.pem`/);
});

test('a binary reached through a symlink (as npm links bin/) finds its bundle', () => {
  const dir = tempDir();
  try {
    symlinkSync(join(REPO, 'bin', 'tsd-store'), join(dir, 'tsd-store'));
    const r = spawnSync('tsd-store', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, `${VERSION}\n`);
  } finally {
    removeDir(dir);
  }
});

test.run();
