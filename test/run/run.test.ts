// tsd-run in the foreground with the real runc: what a user sees (stdout, one stderr line, exit code).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir, tsd } from '../support/tsd.js';
import { busyboxImage, REF } from './busybox.js';
import { tempStore } from '../support/tsd.js';
import type { StorePaths } from '../../src/store/layout.js';

let p: StorePaths;
let host: string;
const run = (args: string[], input?: string) => tsd('run', args, { root: p.root, ...(input !== undefined ? { input } : {}) });
const oneLine = (s: string) => s.trim().split('\n').length === 1 && !/\n\s+at /.test(s);

test.before(async () => {
  p = await tempStore();
  host = tempDir('tsd-run-host-');
  await busyboxImage(p);
  await busyboxImage(p, 'docker.io/library/app:test', { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo default cmd'], Env: ['PATH=/bin', 'GREETING=image'], WorkingDir: '/srv/app', User: 'alice' });
});

test('exit codes: 0, the container\'s own, 125 for tsd, 126 cannot invoke, 127 not found', async () => {
  const ok = await run(['--rm', 'bb:test', 'sh', '-c', 'echo out; echo err >&2']);
  assert.is(ok.code, 0);
  assert.is(ok.stdout, 'out\n');
  assert.is(ok.stderr, 'err\n');
  assert.is((await run(['--rm', 'bb:test', 'false'])).code, 1);
  assert.is((await run(['--rm', 'bb:test', 'sh', '-c', 'exit 42'])).code, 42);
  const missing = await run(['--rm', 'no/such:image', 'true']);
  assert.is(missing.code, 125);
  assert.ok(oneLine(missing.stderr) && /image no\/such:image: not in the store/.test(missing.stderr), missing.stderr);
  const badFlag = await run(['--rm', '--memory', 'lots', 'bb:test', 'true']);
  assert.is(badFlag.code, 125);
  assert.match(badFlag.stderr, /--memory/);
  const notFound = await run(['--rm', 'bb:test', 'nope']);
  assert.is(notFound.code, 127);
  assert.ok(oneLine(notFound.stderr), notFound.stderr);
  assert.match(notFound.stderr, /nope: executable file not found/);
  const cannot = await run(['--rm', 'bb:test', '/etc/passwd']);
  assert.is(cannot.code, 126);
  assert.match(cannot.stderr, /\/etc\/passwd: permission denied/);
  assert.is((await run(['--rm', 'bb:test', '/www'])).code, 126);
  // --rm left nothing behind
  assert.is((await run(['ps', '-a', '-q'])).stdout, '');
});

test('ENTRYPOINT/CMD, Env, WorkingDir and User from the image; -e, --env-file, -w, -u, --entrypoint override', async () => {
  const d = await run(['--rm', 'app:test']);
  assert.is(d.stdout, 'default cmd\n');
  const e = await run(['--rm', 'app:test', 'echo $GREETING $(pwd) $(id -un) $HOSTNAME']);
  assert.match(e.stdout, /^image \/srv\/app alice [0-9a-f]{12}\n$/);
  writeFileSync(join(host, 'env'), '# comment\nFROM_FILE=yes\nGREETING=file\n');
  const o = await run(['--rm', '-e', 'GREETING=flag', '--env-file', join(host, 'env'), '-w', '/tmp/new/dir', '-u', 'bob', '--hostname', 'box', 'app:test', 'echo $GREETING $FROM_FILE $(pwd) $(id -un) $(hostname) $HOME']);
  assert.is(o.stdout, 'flag yes /tmp/new/dir bob box /home/bob\n');
  const ep = await run(['--rm', '--entrypoint', 'echo', 'app:test', 'a', 'b']);
  assert.is(ep.stdout, 'a b\n');
  const pass = await run(['--rm', '-e', 'FROM_HOST', 'bb:test', 'sh', '-c', 'echo ${FROM_HOST:-unset}'], undefined);
  assert.is(pass.stdout, 'unset\n');
});

test('-u user[:group] with supplementary groups from /etc/group; numeric IDs; unknown names fail', async () => {
  assert.is((await run(['--rm', '-u', 'alice', 'bb:test', 'id'])).stdout, 'uid=1000(alice) gid=1000(alice) groups=10(wheel),50(staff)\n');
  assert.is((await run(['--rm', '-u', 'alice:staff', 'bb:test', 'id'])).stdout, 'uid=1000(alice) gid=50(staff)\n');
  assert.is((await run(['--rm', '-u', '4242:4343', 'bb:test', 'sh', '-c', 'id -u; id -g'])).stdout, '4242\n4343\n');
  assert.is((await run(['--rm', '-u', 'bob', '--group-add', 'wheel', 'bb:test', 'id', '-G'])).stdout, '1001 10 50\n');
  const unknown = await run(['--rm', '-u', 'mallory', 'bb:test', 'id']);
  assert.is(unknown.code, 125);
  assert.match(unknown.stderr, /unable to find user mallory/);
});

test('bind mounts (rw and ro), named volumes kept in the store, tmpfs, --read-only', async () => {
  mkdirSync(join(host, 'data'));
  writeFileSync(join(host, 'data', 'in.txt'), 'from host\n');
  const b = await run(['--rm', '-v', `${join(host, 'data')}:/data`, 'bb:test', 'sh', '-c', 'cat /data/in.txt; echo from container > /data/out.txt']);
  assert.is(b.stdout, 'from host\n');
  assert.is(readFileSync(join(host, 'data', 'out.txt'), 'utf8'), 'from container\n');
  const ro = await run(['--rm', '--mount', `type=bind,source=${join(host, 'data')},target=/data,readonly`, 'bb:test', 'sh', '-c', 'touch /data/x 2>&1; echo $?']);
  assert.match(ro.stdout, /Read-only file system\n1\n/);
  assert.is((await run(['--rm', '-v', 'vol1:/v', 'bb:test', 'sh', '-c', 'echo kept > /v/f'])).code, 0);
  assert.is((await run(['--rm', '-v', 'vol1:/v:ro', 'bb:test', 'cat', '/v/f'])).stdout, 'kept\n');
  assert.ok(existsSync(join(p.volumes, 'vol1', '_data', 'f')));
  const t = await run(['--rm', '--tmpfs', '/scratch:size=1m', 'bb:test', 'sh', '-c', 'grep " /scratch " /proc/mounts | cut -d" " -f3']);
  assert.is(t.stdout, 'tmpfs\n');
  const rofs = await run(['--rm', '--read-only', '--tmpfs', '/tmp', 'bb:test', 'sh', '-c', 'touch /etc/x 2>/dev/null || echo root-ro; touch /tmp/x && echo tmp-rw']);
  assert.is(rofs.stdout, 'root-ro\ntmp-rw\n');
  const bad = await run(['--rm', '--mount', 'type=bind,source=/no/such/dir,target=/x', 'bb:test', 'true']);
  assert.is(bad.code, 125);
  assert.match(bad.stderr, /bind source path does not exist: \/no\/such\/dir/);
  const fileOnDir = await run(['--rm', '-v', `${join(host, 'env')}:/bin`, 'bb:test', 'true']);
  assert.equal([fileOnDir.code, fileOnDir.stderr], [125, `tsd-run: mount ${join(host, 'env')} on /bin: cannot mount a file on a directory\n`]);
  // the root file system's writes stay in the container, not in the shared snapshot
  await run(['--rm', 'bb:test', 'sh', '-c', 'echo dirty > /etc/passwd']);
  assert.match((await run(['--rm', 'bb:test', 'head', '-1', '/etc/passwd'])).stdout, /^root:/);
});

test('the image JSON line on stdin (tsd-build | tsd-run); --print shows config.json and runs nothing', async () => {
  const line = (await tsd('store', ['ls', '--json'], { root: p.root })).stdout.split('\n').find((l) => l.includes('bb:test')) as string;
  const r = await run(['--rm', '--entrypoint', 'echo'], `${line}\n`);
  assert.is(r.code, 0, r.stderr);
  const r2 = await run(['--rm', '-e', 'X=1'], `${line}\n`);
  assert.is(r2.code, 0);
  // no argument at all: the image's own command (sh, reading nothing: stdin is not passed)
  const bare = await run([], `${line}\n`);
  assert.equal([bare.code, bare.stderr], [0, '']);
  assert.match((await run(['ps', '-a'])).stdout, /Exited \(0\)/);
  await run(['rm', (await run(['ps', '-a', '-q'])).stdout.trim()]);
  const bad = await run(['--rm'], 'not json\n');
  assert.is(bad.code, 125);
  assert.ok(oneLine(bad.stderr));
  const printed = await run(['--print', '--memory', '32m', 'bb:test', 'true']);
  const spec = JSON.parse(printed.stdout) as { process: { args: string[] }; linux: { resources: { memory: { limit: number } } } };
  assert.equal(spec.process.args, ['true']);
  assert.is(spec.linux.resources.memory.limit, 32 << 20);
  assert.is((await run(['ps', '-a', '-q'])).stdout, '');
});

test.after(async () => {
  for (const id of (await run(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean)) await run(['rm', '-f', id]);
  removeDir(p.root);
  removeDir(host);
});

test.run();
void REF;
