// runOnce with the real runc on a busybox root file system: exit codes, captured stdio, and the
// default confinement as the process inside sees it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { runtimeSpec, type SpecInput } from '../../src/run/spec.js';
import { runOnce, writeSpec, type Exit } from '../../src/run/runtime.js';
import { removeDir, tempDir } from '../support/tsd.js';

const bundle = tempDir('tsd-bundle-');
const rootfs = join(bundle, 'rootfs');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
copyFileSync('/usr/bin/busybox', join(rootfs, 'bin', 'busybox'));
for (const c of ['sh', 'cat', 'id', 'grep', 'ls', 'hostname', 'unshare', 'mount', 'sleep']) symlinkSync('busybox', join(rootfs, 'bin', c));
writeFileSync(join(rootfs, 'bin', 'noexec'), '#!/bin/sh\necho no\n', { mode: 0o644 });
let n = 0;

const run = async (cmd: string[], more: Partial<SpecInput> = {}): Promise<E.Either<{ message: string; exitCode: number }, Exit>> => {
  const spec = runtimeSpec({ image: { Env: ['PATH=/bin'] }, cmd, rootfs, hostname: 'box', host: { nofile: 20000 }, ...more });
  if (E.isLeft(spec)) throw new Error(spec.left.message);
  await writeSpec(bundle, spec.right)();
  return runOnce({ id: `tsd-rt-test-${process.pid}-${n++}`, bundle, stdio: { mode: 'capture', input: 'from stdin\n' } })();
};
const exited = (r: Awaited<ReturnType<typeof run>>): Exit => {
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};

test('the container\'s exit code and captured stdout/stderr/stdin', async () => {
  const r = exited(await run(['sh', '-c', 'cat; echo out; echo err >&2; exit 7']));
  assert.is(r.exitCode, 7);
  assert.is(r.stdout?.toString(), 'from stdin\nout\n');
  assert.is(r.stderr?.toString(), 'err\n');
});

test('127 when the command is not found, 126 when it cannot be invoked', async () => {
  const nf = await run(['nope']);
  assert.ok(E.isLeft(nf) && nf.left.exitCode === 127, JSON.stringify(nf));
  assert.match(E.isLeft(nf) ? nf.left.message : '', /nope/);
  const ni = await run(['/bin/noexec']);
  assert.ok(E.isLeft(ni) && ni.left.exitCode === 126, JSON.stringify(ni));
});

test('Docker\'s capabilities, hostname, rlimit; seccomp refuses unshare and mount', async () => {
  const r = exited(await run(['sh', '-c', 'grep CapEff /proc/self/status; hostname; ulimit -n; unshare -n true || echo unshare-refused; mount -t tmpfs t /mnt 2>/dev/null || echo mount-refused']));
  assert.is(r.stdout?.toString(), 'CapEff:\t00000000a80425fb\nbox\n20000\nunshare-refused\nmount-refused\n');
});

test('--cap-drop ALL leaves no capabilities; user and groups apply', async () => {
  const r = exited(await run(['sh', '-c', 'grep CapEff /proc/self/status; id -u; id -G'], { capDrop: ['ALL'], user: { uid: 1000, gid: 1001, additionalGids: [5, 7] } }));
  assert.is(r.stdout?.toString(), 'CapEff:\t0000000000000000\n1000\n1001 5 7\n');
});

test.after(() => removeDir(bundle));
test.run();
