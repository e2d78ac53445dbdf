// tsd-build under stress: killed with SIGKILL in the middle of a RUN, then run again; eight
// builds at once into one store; gc between builds. The store must stay whole (tsd-store fsck),
// nothing may stay mounted, and every build must give what it gives alone.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, removeDir, tempStore, type FileSpec } from '../support/tsd.js';
import type { StorePaths } from '../../src/store/layout.js';
import { writeContext } from './peer.js';
import { BUSYBOX, imageTree, makeBusybox } from './support.js';

let p: StorePaths;
const dirs: string[] = [];
test.before(async () => {
  p = await tempStore();
  await makeBusybox(p);
});
test.after(() => {
  removeDir(p.root);
  for (const d of dirs) removeDir(d);
});

const context = (dockerfile: string, files: readonly FileSpec[] = []): string => {
  const dir = writeContext([...files, { name: 'Dockerfile', content: dockerfile }]);
  dirs.push(dir);
  return dir;
};

const run = (args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((done) => {
    const child = spawn(join(REPO, 'bin/tsd-build'), args, { env: { ...process.env, TSD_ROOT: p.root, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });

const mountsUnder = (root: string): string[] => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(root));

const fsck = (): { code: number; out: string } => {
  const r = spawnSync(join(REPO, 'bin/tsd-store'), ['fsck'], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  return { code: r.status ?? 1, out: r.stdout + r.stderr };
};

test('kill -9 in the middle of a RUN, then the same build again succeeds and the store is whole', async () => {
  const dir = context(`FROM ${BUSYBOX}\nCOPY data.txt /data.txt\nRUN echo started && sleep 3 && echo never > /never\nRUN echo after > /after\n`, [
    { name: 'data.txt', content: 'payload\n' },
  ]);
  const child = spawn(join(REPO, 'bin/tsd-build'), ['--progress=plain', '--context', dir, '-t', 'killed'], { env: { ...process.env, TSD_ROOT: p.root } });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the RUN never started: ${stderr}`)), 30_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/^#\d+ [\d.]+s started$/m.test(stderr)) {
        clearTimeout(timer);
        // the container runs: kill the builder with no chance to clean up
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await new Promise((r) => child.on('close', r));
  assert.ok(mountsUnder(p.root).length > 0, 'the killed build left its overlay mounted (what the rerun must clean up)');
  const again = await run(['--progress=plain', '--context', dir, '-t', 'killed']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /#2 CACHED/, 'the COPY finished before the kill and stays cached');
  const t = await imageTree(p, 'killed');
  assert.is(t.tree.get('never')?.content, 'never\n');
  assert.is(t.tree.get('after')?.content, 'after\n');
  assert.equal(mountsUnder(p.root), []);
  const containers = spawnSync('runc', ['list', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter((id) => id.startsWith(`tsd-build-${child.pid}-`));
  assert.equal(containers, []);
  const check = fsck();
  assert.is(check.code, 0, check.out);
});

test('--context: a tsd-ctx that exits before the build reads its output loses nothing (24 small builds, one core kept busy)', async () => {
  // Node throws away a child's stdout that nobody reads when the child exits; a small context's
  // tsd-ctx could finish while tsd-build was still loading (one run in 10-30 under load, before)
  const dir = context('FROM scratch\nCOPY a.txt /a.txt\n', [{ name: 'a.txt', content: 'a\n' }]);
  const busy = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 24; i++) {
      const r = await run(['-q', '--no-cache', '--context', dir]);
      assert.is(r.code, 0, `run ${i}: ${r.stderr}`);
    }
  } finally {
    busy.kill('SIGKILL');
  }
});

test('eight builds at once into one store, sharing a base and cached steps', async () => {
  const shared = `FROM ${BUSYBOX}\nRUN echo shared > /shared\n`;
  const dirsN = Array.from({ length: 8 }, (_, n) => context(`${shared}COPY n.txt /n.txt\nRUN cat /n.txt /shared > /both && sleep 0.2\nCMD ["cat", "/both"]\n`, [{ name: 'n.txt', content: `build ${n}\n` }]));
  const results = await Promise.all(dirsN.map((d, n) => run(['-q', '--context', d, '-t', `par:${n}`])));
  for (const r of results) assert.is(r.code, 0, r.stderr);
  const digests = new Set(results.map((r) => JSON.parse(r.stdout).digest));
  assert.is(digests.size, 8);
  for (let n = 0; n < 8; n++) {
    const t = await imageTree(p, `par:${n}`);
    assert.is(t.tree.get('both')?.content, `build ${n}\nshared\n`);
  }
  const check = fsck();
  assert.is(check.code, 0, check.out);
  assert.equal(mountsUnder(p.root), []);
});

test('RUN --mount=type=cache,sharing=locked: two builds at once take turns on the cache dir', async () => {
  const script = 'if [ -e /c/busy ]; then exit 5; fi; touch /c/busy; sleep 1; rm /c/busy; echo $N >> /c/log';
  const make = (n: number) => context(`FROM ${BUSYBOX}\nENV N=${n}\nRUN --mount=type=cache,id=shared-lock,target=/c,sharing=locked ${script}\n`);
  const [a, b] = await Promise.all([run(['-q', '--context', make(1)]), run(['-q', '--context', make(2)])]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
});

test('gc between builds: cached layers gc took are rebuilt, nothing breaks', async () => {
  const dir = context(`FROM ${BUSYBOX}\nRUN echo gc > /gc\n`);
  const first = await run(['-q', '--context', dir]);
  assert.is(first.code, 0, first.stderr);
  // the untagged image keeps its layers; forget it, then gc reclaims the cached layer too
  const prune = spawnSync(join(REPO, 'bin/tsd-store'), ['prune'], { encoding: 'utf8', env: { ...process.env, TSD_ROOT: p.root } });
  assert.is(prune.status, 0, prune.stderr);
  const again = await run(['--progress=plain', '--context', dir, '-t', 'after-gc']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stderr, /#2 DONE/, `a cache entry whose layer gc removed is a miss: ${again.stderr}`);
  assert.is((await imageTree(p, 'after-gc')).tree.get('gc')?.content, 'gc\n');
});

test.run();
