// Ingest is atomic and verified; kill -9 leaves nothing under a final name; 8 writers lose nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { ingest } from '../../src/store/blob.js';
import { digestOf } from '../../src/oci/digest.js';
import { REPO, removeDir, tempDir, tempStore, tsd } from '../support/tsd.js';
import { busyboxTar } from './busybox.js';

const blobNames = (root: string): string[] => (existsSync(join(root, 'blobs/sha256')) ? readdirSync(join(root, 'blobs/sha256')).sort() : []);
const ingestNames = (root: string): string[] => (existsSync(join(root, 'ingest')) ? readdirSync(join(root, 'ingest')) : []);

/** kill -9 of a writer mid-ingest: no new blob under a final name, the seeded tag intact, fsck clean; fsck's output */
const killedLosesNothing = async (child: ChildProcess, pack: { destroy(): void }, root: string, before: string[]) => {
  const exited = new Promise((r) => child.on('close', r));
  child.kill('SIGKILL');
  await exited;
  pack.destroy();
  assert.equal(blobNames(root), before, 'no new blob under a final name');
  const ls = await tsd('store', ['ls', '--format', '{{.Repository}}'], { root });
  assert.is(ls.stdout, 'localhost/seed\n');
  const fsck = await tsd('store', ['fsck'], { root });
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  return fsck;
};

test('ingest of a wrong digest is refused and leaves nothing behind', async () => {
  const p = await tempStore();
  const bytes = Buffer.from('hello, store');
  const wrong = digestOf('something else');
  const r = await ingest(p, Readable.from([bytes]), { digest: wrong })();
  assert.ok(E.isLeft(r));
  if (E.isLeft(r)) {
    assert.is(r.left._tag, 'DigestMismatch');
    assert.match(r.left.message, wrong);
    assert.match(r.left.message, digestOf(bytes));
  }
  const short = await ingest(p, Readable.from([bytes]), { digest: digestOf(bytes), size: 3 })();
  assert.ok(E.isLeft(short) && short.left._tag === 'SizeMismatch');
  assert.equal(blobNames(p.root), []);
  assert.equal(ingestNames(p.root), []);
  const right = await ingest(p, Readable.from([bytes]), { digest: digestOf(bytes), size: bytes.length })();
  assert.ok(E.isRight(right));
  assert.equal(blobNames(p.root), [digestOf(bytes).slice(7)]);
  removeDir(p.root);
});

test('kill -9 during ingest leaves no blob under its final name, fsck stays clean, gc removes the temp', async () => {
  const root = tempDir();
  const seeded = await tsd('store', ['import', 'localhost/seed'], { root, input: await busyboxTar() });
  assert.is(seeded.code, 0, seeded.stderr);
  const before = blobNames(root);
  const child = spawn(join(REPO, 'bin', 'tsd-store'), ['import', 'localhost/killed'], { env: { ...process.env, TSD_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  const pack = tar.pack();
  pack.pipe(child.stdin);
  const size = 64 * 1024 * 1024;
  const entry = pack.entry({ name: 'big', size }, () => undefined);
  // the child dies mid-stream on purpose: the broken pipe that follows is expected
  pack.on('error', () => undefined);
  entry.on('error', () => undefined);
  const chunk = Buffer.alloc(1 << 20, 7);
  let sent = 0;
  // send part of the file, until the temp file in ingest/ has grown
  for (let waited = 0; waited < 200; waited++) {
    if (sent < 16 * chunk.length) {
      entry.write(chunk);
      sent += chunk.length;
    }
    await new Promise((r) => setTimeout(r, 25));
    const temps = ingestNames(root).map((n) => statSync(join(root, 'ingest', n)).size);
    if (temps.some((s) => s > 0) && sent >= 8 * chunk.length) break;
  }
  assert.ok(ingestNames(root).length > 0, 'a temp file was being written');
  const fsck = await killedLosesNothing(child, pack, root, before);
  assert.is(fsck.stdout, '');
  assert.match(fsck.stderr, /0 problems, 1 temp files of dead processes/);
  const gc = await tsd('store', ['gc'], { root });
  assert.is(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /Deleted: 1 temp file of dead processes/);
  assert.equal(ingestNames(root), []);
  assert.equal(blobNames(root), before);
  removeDir(root);
});

test('kill -9 during load: no new blob, no name; fsck clean; gc removes the staged files', async () => {
  const root = tempDir();
  const seeded = await tsd('store', ['import', 'localhost/seed'], { root, input: await busyboxTar() });
  assert.is(seeded.code, 0, seeded.stderr);
  const before = blobNames(root);
  const child = spawn(join(REPO, 'bin', 'tsd-store'), ['load'], { env: { ...process.env, TSD_ROOT: root }, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => undefined);
  const pack = tar.pack();
  pack.on('error', () => undefined);
  pack.pipe(child.stdin);
  // a docker-archive whose small files arrive first and whose big layer never finishes
  await new Promise<void>((r) => pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: 'c.json', RepoTags: ['localhost/never:1'], Layers: ['l.tar'] }]), () => r()));
  await new Promise<void>((r) => pack.entry({ name: 'c.json' }, '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}', () => r()));
  const entry = pack.entry({ name: 'l.tar', size: 64 * 1024 * 1024 }, () => undefined);
  entry.on('error', () => undefined);
  for (let i = 0; i < 200 && !ingestNames(root).some((n) => statSync(join(root, 'ingest', n)).size > 1 << 20); i++) {
    entry.write(Buffer.alloc(1 << 20, 1));
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(ingestNames(root).length >= 2, 'config and layer were being staged');
  await killedLosesNothing(child, pack, root, before);
  const gc = await tsd('store', ['gc'], { root });
  assert.match(gc.stdout, /Deleted: \d+ temp files? of dead processes/);
  assert.equal(ingestNames(root), []);
  removeDir(root);
});

test('8 concurrent writers (import + tag each) lose no tag and no blob', async () => {
  const root = tempDir();
  const dir = tempDir('tsd-tars-');
  for (let i = 0; i < 8; i++) writeFileSync(join(dir, `${i}.tar`), await busyboxTar([{ name: `etc/writer`, content: `writer ${i}\n` }]));
  const bin = join(REPO, 'bin', 'tsd-store');
  const writers = Array.from({ length: 8 }, (_, i) =>
    new Promise<number>((done) => {
      const sh = spawn('sh', ['-c', `"${bin}" import localhost/w${i}:1 < "${dir}/${i}.tar" >/dev/null && "${bin}" tag localhost/w${i}:1 localhost/copy${i}:1 >/dev/null && "${bin}" tag localhost/w${i}:1 localhost/shared:${i} >/dev/null`], {
        env: { ...process.env, TSD_ROOT: root },
        stdio: 'inherit',
      });
      sh.on('close', (code) => done(code ?? 1));
    }),
  );
  assert.equal(await Promise.all(writers), Array(8).fill(0));
  const ls = await tsd('store', ['ls', '--json'], { root });
  assert.is(ls.code, 0, ls.stderr);
  const refs = ls.stdout.trim().split('\n').map((l) => JSON.parse(l).ref).sort();
  const want = Array.from({ length: 8 }, (_, i) => [`localhost/w${i}:1`, `localhost/copy${i}:1`, `localhost/shared:${i}`]).flat().sort();
  assert.equal(refs, want);
  // every image is whole: 8 distinct layers + configs + manifests (busybox layer differs by etc/writer)
  const fsck = await tsd('store', ['fsck'], { root });
  assert.is(fsck.code, 0, fsck.stdout + fsck.stderr);
  assert.match(fsck.stderr, /24 blobs, 24 images, 0 problems/);
  assert.equal(ingestNames(root), []);
  removeDir(root);
  removeDir(dir);
});

test.run();
