// Disk full (issue 7): the store on a 24 MB tmpfs this test mounts. Filled to the last byte,
// every tool (pull, load, import, build, run, save -o, tag) fails with one line on stderr that
// says "no space" and a non-zero exit; with a few MB left, the writes that need more (a pull
// of a bigger layer, a COPY, a container writing) fail the same way. After each failure fsck is
// clean, every blob hashes to its name, no lock file is left behind, nothing partial has a final
// name. With the filler removed, every operation succeeds.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OciLayout, skopeoCopy, startRegistry, type LayoutLayer, type Registry } from '../support/registry.js';
import { REPO, removeDir, tempDir, tsd, type Ran } from '../support/tsd.js';

let reg: Registry;
let work: string;
let mnt: string;
let root: string;
let rootfsTar: Buffer;
let otherArchive: string;
let ctxSmall: string;
let ctxBig: string;
const filler = () => join(mnt, 'filler');
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test.before(async () => {
  reg = await startRegistry();
  work = tempDir('tsd-disk-full-');
  rootfsTar = execFileSync('sh', [join(REPO, 'examples', 'busybox-rootfs.sh')], { maxBuffer: 64 << 20 });
  // the registry's image: busybox plus a 4 MB layer of random bytes
  const layout = new OciLayout(join(work, 'layout'));
  const gz = gzipSync(rootfsTar, { level: 1 });
  const base: LayoutLayer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layout.put(gz), diffId: sha256(rootfsTar) };
  const big = await layout.bigLayer(4_000_000);
  const configText = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: [base.diffId, big.diffId] } });
  layout.image([base, big], { tag: 'app', configText });
  await skopeoCopy(`oci:${layout.dir}:app`, `docker://${reg.host}/df/app:1`);
  // an archive to load: an image made in another store, outside the small file system
  const elsewhere = join(work, 'elsewhere');
  const withData = join(work, 'with-data');
  mkdirSync(join(withData, 'data'), { recursive: true });
  writeFileSync(join(withData, 'data', 'blob'), randomBytes(2_000_000));
  const tarred = execFileSync('tar', ['-C', withData, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  assert.is((await tsd('store', ['import', 'localhost/other:1'], { root: elsewhere, input: tarred })).code, 0);
  otherArchive = join(work, 'other.tar');
  assert.is((await tsd('store', ['save', '-o', otherArchive, 'localhost/other:1'], { root: elsewhere })).code, 0);
  // build contexts: a small one, and one whose 5 MB file does not fit in what is left
  ctxSmall = join(work, 'ctx-small');
  mkdirSync(ctxSmall);
  writeFileSync(join(ctxSmall, 'Dockerfile'), 'FROM localhost/bb:1\nCOPY note /note\nRUN cat /note > /copied\n');
  writeFileSync(join(ctxSmall, 'note'), 'built on a small disk\n');
  ctxBig = join(work, 'ctx-big');
  mkdirSync(ctxBig);
  writeFileSync(join(ctxBig, 'Dockerfile'), 'FROM localhost/bb:1\nCOPY big /big\n');
  writeFileSync(join(ctxBig, 'big'), randomBytes(5_000_000));
  // the small file system and the store on it, with a base image
  mnt = join(work, 'mnt');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
  root = join(mnt, 'store');
  const imported = await tsd('store', ['import', '-c', 'CMD ["sh"]', 'localhost/bb:1'], { root, input: rootfsTar });
  assert.is(imported.code, 0, imported.stderr);
});

test.after(async () => {
  try {
    execFileSync('umount', ['-l', mnt]);
  } catch {
    // not mounted
  }
  await reg.stop();
  removeDir(work);
});

/** Fills the file system to the last byte, leaving `leave` bytes free (rounded to pages). */
const fill = (leave = 0) => {
  const fd = openSync(filler(), 'a');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  for (let small = 4096; ; ) {
    // the last bytes: page by page
    try {
      const fd2 = openSync(filler(), 'a');
      try {
        writeSync(fd2, Buffer.alloc(small));
      } finally {
        closeSync(fd2);
      }
    } catch {
      break;
    }
  }
  if (leave > 0) truncateSync(filler(), statSync(filler()).size - leave);
};

const unfill = () => rmSync(filler(), { force: true });

const run = (tool: string, args: readonly string[], input?: Buffer): Promise<Ran> => tsd(tool, args, { root, ...(input ? { input } : {}), timeoutMs: 90_000 });

/** Every blob hashes to its name; index.json decodes; no lock file, no unpack or removal half done. */
const assertSound = async (what: string) => {
  const fsck = await run('store', ['fsck']);
  assert.is(fsck.code, 0, `${what}: fsck: ${fsck.stdout}${fsck.stderr}`);
  const dir = join(root, 'blobs', 'sha256');
  for (const name of readdirSync(dir)) assert.is(sha256(readFileSync(join(dir, name))), `sha256:${name}`, `${what}: blob ${name} is whole`);
  JSON.parse(readFileSync(join(root, 'index.json'), 'utf8'));
  const locks = existsSync(join(root, 'locks')) ? readdirSync(join(root, 'locks')) : [];
  assert.equal(locks, [], `${what}: no lock file left`);
  const snaps = existsSync(join(root, 'snapshots')) ? readdirSync(join(root, 'snapshots')) : [];
  assert.equal(snaps.filter((n) => n.startsWith('.')), [], `${what}: no half-made snapshot`);
  for (const s of snaps.filter((n) => /^[a-f0-9]{64}$/.test(n))) assert.ok(existsSync(join(root, 'snapshots', s, 'snapshot.json')), `${what}: snapshot ${s} is whole`);
  assert.not.ok(existsSync(join(mnt, 'out.tar')), `${what}: no archive under its final name`);
};

const assertNoSpace = (what: string, r: Ran, oneLine = true) => {
  assert.ok(r.code !== 0, `${what}: exit ${r.code}`);
  if (oneLine) {
    assert.is(r.stderr.trimEnd().split('\n').length, 1, `${what}: one line on stderr: ${JSON.stringify(r.stderr)}`);
    assert.not.match(r.stderr, /\n\s+at |internal error|Unhandled/, `${what}: no stack trace`);
  }
  assert.match(r.stderr, /no space/i, `${what}: says no space: ${JSON.stringify(r.stderr)}`);
};

const operations = (): [string, () => Promise<Ran>][] => [
  ['pull', () => run('pull', ['-q', `${reg.host}/df/app:1`])],
  ['load', () => run('store', ['load', '-i', otherArchive])],
  ['import', () => run('store', ['import', 'localhost/new:1'], rootfsTar)],
  ['build', () => run('build', ['-q', '--context', ctxSmall, '-t', 'localhost/built:1'])],
  ['run', () => run('run', ['--rm', 'localhost/bb:1', 'true'])],
  ['save -o', () => run('store', ['save', '-o', join(mnt, 'out.tar'), 'localhost/bb:1'])],
  ['tag', () => run('store', ['tag', 'localhost/bb:1', 'localhost/bb:2'])],
];

let failures = 0;

test('a full disk: every tool fails with one line that says no space; the store stays sound', async () => {
  fill();
  for (const [what, op] of operations()) {
    assertNoSpace(what, await op());
    failures++;
    await assertSound(what);
  }
  unfill();
});

test('a few MB left: a bigger pull, a big COPY and a container that writes fail cleanly', async () => {
  fill(3 << 20);
  const pulled = await run('pull', ['-q', `${reg.host}/df/app:1`]);
  if (process.env.TSD_VERBOSE) console.log(pulled);
  assertNoSpace('pull of a 4 MB layer', pulled);
  await assertSound('pull of a 4 MB layer');
  assertNoSpace('build COPY of 5 MB', await run('build', ['-q', '--context', ctxBig, '-t', 'localhost/big:1']));
  await assertSound('build COPY of 5 MB');
  // the container's own error: dd says it, the exit code is dd's
  const dd = await run('run', ['--rm', 'localhost/bb:1', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=10']);
  assertNoSpace('container writing 10 MB', dd, false);
  await assertSound('container writing 10 MB');
  failures += 3;
  assert.ok(existsSync(filler()));
  unfill();
});

test('a full disk: run -d, rm and gc also fail with one line; fsck still checks', async () => {
  fill();
  for (const [what, args] of [
    ['run -d', ['-d', 'localhost/bb:1', 'true']],
    ['rm', ['rm', 'localhost/bb:1']],
  ] as const) {
    assertNoSpace(what, await run(what === 'run -d' ? 'run' : 'store', args));
    failures++;
    await assertSound(what);
  }
  const gc = await run('store', ['gc']);
  if (gc.code !== 0) {
    assertNoSpace('gc', gc);
    failures++;
  }
  await assertSound('gc');
  unfill();
});

test('after the space is freed every operation succeeds', async () => {
  unfill();
  for (const [what, op] of operations()) {
    const r = await op();
    assert.is(r.code, 0, `${what}: ${r.stderr}`);
  }
  const built = await run('run', ['--rm', 'localhost/built:1', 'cat', '/copied']);
  assert.is(built.stdout, 'built on a small disk\n', built.stderr);
  const dd = await run('run', ['--rm', 'localhost/bb:1', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M', 'count=5']);
  assert.is(dd.code, 0, dd.stderr);
  const ls = await run('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const name of ['localhost/bb:1', 'localhost/bb:2', 'localhost/new:1', 'localhost/built:1', 'localhost/other:1', `${reg.host}/df/app:1`]) assert.ok(ls.stdout.split('\n').includes(name), `${name} in ${ls.stdout}`);
  assert.ok(statSync(join(mnt, 'out.tar')).size > 1_000_000);
  rmSync(join(mnt, 'out.tar'));
  await assertSound('after');
  // an image whose 4 MB layer does not unpack into the 1 MB left: run says so; nothing half-made
  fill(1 << 20);
  const unpack = await run('run', ['--rm', `${reg.host}/df/app:1`, 'true']);
  assertNoSpace('run that unpacks 4 MB', unpack);
  failures++;
  await assertSound('run that unpacks 4 MB');
  unfill();
  const again = await run('run', ['--rm', `${reg.host}/df/app:1`, 'true']);
  assert.is(again.code, 0, again.stderr);
  await assertSound('after all');
  console.log(`\ndisk-full: ${failures} operations refused with "no space", 0 half-written, then ${operations().length + 3} succeeded`);
});

test.run();
