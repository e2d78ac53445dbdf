// Volumes filled from the image, as Docker fills them: an empty volume (named, anonymous, or an
// image's VOLUME) gets the image's content at its target when a container is created; nocopy,
// binds and non-empty volumes are left alone; symlinks are copied, never followed; a copy that
// fails leaves the volume empty. As root, with the real runc.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, tempDir, tempStore, tsd, type FileSpec } from '../support/tsd.js';
import { busyboxImage, busyboxLayer } from './busybox.js';
import type { StorePaths } from '../../src/store/layout.js';
import { writeLayer } from '../../src/store/layer-writer.js';
import { writeImage } from '../../src/store/image-writer.js';
import { tagDescriptor } from '../../src/store/image.js';
import { layerTar } from '../support/tsd.js';
import * as E from 'fp-ts/lib/Either.js';
import { imageVolumes, parseMountFlag, parseVolumeFlag } from '../../src/run/mounts.js';

let p: StorePaths;
let host: string;
const run = (args: string[]) => tsd('run', args, { root: p.root });
const oneLine = (s: string) => s.trim().split('\n').length === 1 && !/\n\s+at /.test(s);
const ENV = { Cmd: ['sh'], Env: ['PATH=/bin'] };

const DATA: FileSpec[] = [
  { name: 'data/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
  { name: 'data/file', content: 'from the image\n', mode: 0o640, uid: 1000, gid: 1000 },
  { name: 'data/hard', type: 'link', linkname: 'data/file' },
  { name: 'data/sub/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
  { name: 'data/sub/deep', content: 'deep\n', uid: 1000, gid: 1000 },
  { name: 'data/shadow', type: 'symlink', linkname: '/etc/shadow' },
  { name: 'data/up', type: 'symlink', linkname: '../../..' },
  // a mount target that is a symlink climbing out of the root: it resolves to the image's /etc
  { name: 'escape', type: 'symlink', linkname: '../../../../../../etc' },
  { name: 'big/', type: 'directory' },
  { name: 'big/blob', content: Buffer.alloc(1024 * 1024, 7) },
];

const vol = (name: string) => join(p.volumes, name, '_data');
const modeOwner = (f: string) => {
  const s = lstatSync(f);
  return `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
};

/** busybox plus a layer with /notes/note carrying the xattr user.note=kept (a PAX record). */
const xattrImage = async (ref: string) => {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  pack.entry({ name: 'notes/', type: 'directory', mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: 'notes/note', mode: 0o644, mtime: new Date(0), pax: { 'SCHILY.xattr.user.note': 'kept' } }, 'note\n');
  pack.finalize();
  await ended;
  const layers = [];
  for (const t of [await layerTar(busyboxLayer()), Buffer.concat(chunks)]) {
    const l = await writeLayer(p, Readable.from([t]))();
    if (E.isLeft(l)) throw new Error(l.left.message);
    layers.push(l.right);
  }
  const img = await writeImage(p, { architecture: 'amd64', os: 'linux', config: ENV, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }, layers.map((l) => l.descriptor))();
  if (E.isLeft(img)) throw new Error(img.left.message);
  const tagged = await tagDescriptor(p, img.right.descriptor, ref)();
  if (E.isLeft(tagged)) throw new Error(tagged.left.message);
};

test.before(async () => {
  p = await tempStore();
  host = tempDir('tsd-prefill-host-');
  await busyboxImage(p, 'docker.io/library/data:test', ENV, [DATA]);
  await busyboxImage(p, 'docker.io/library/datavol:test', { ...ENV, Volumes: { '/data': {} } }, [DATA]);
  await xattrImage('docker.io/library/xattr:test');
});

test.after(() => {
  removeDir(p.root);
  removeDir(host);
});

test('nocopy and volume-nocopy decode (Docker\'s names); an image\'s VOLUME yields to a -v on its path', () => {
  const ok = (e: ReturnType<typeof parseVolumeFlag>) => (E.isRight(e) ? e.right : e.left.message);
  assert.equal(ok(parseVolumeFlag('cache:/c:nocopy')), { kind: 'volume', name: 'cache', target: '/c', readonly: false, noCopy: true });
  assert.equal(ok(parseVolumeFlag('cache:/c:ro,nocopy')), { kind: 'volume', name: 'cache', target: '/c', readonly: true, noCopy: true });
  assert.equal(ok(parseVolumeFlag('/anon:nocopy')), { kind: 'volume', target: '/anon', readonly: false, noCopy: true });
  assert.equal(ok(parseVolumeFlag('/anon:ro')), { kind: 'volume', target: '/anon', readonly: true });
  assert.equal(ok(parseVolumeFlag('/h:/c')), { kind: 'bind', source: '/h', target: '/c', readonly: false, createSource: true });
  assert.match(ok(parseVolumeFlag('/h:/c:nocopy')) as string, /nocopy applies to volumes, not to the bind mount of \/h/);
  assert.equal(ok(parseMountFlag('type=volume,src=vv,dst=/v,volume-nocopy')), { kind: 'volume', name: 'vv', target: '/v', readonly: false, noCopy: true });
  assert.equal(ok(parseMountFlag('type=volume,src=vv,dst=/v,volume-nocopy=false')), { kind: 'volume', name: 'vv', target: '/v', readonly: false });
  assert.match(ok(parseMountFlag('type=volume,src=vv,dst=/v,volume-nocopy=maybe')) as string, /invalid volume-nocopy "maybe"/);
  assert.match(ok(parseMountFlag('type=bind,src=/h,dst=/v,volume-nocopy')) as string, /volume-nocopy applies to type=volume, not type=bind/);
  const user = [{ kind: 'volume', name: 'mine', target: '/data', readonly: false }] as const;
  assert.equal(imageVolumes({ '/data/': {}, '/logs': {}, '/': {}, 'rel': {}, '/logs/.': {} }, user), [{ kind: 'volume', target: '/logs', readonly: false }]);
});

test('a new named volume gets the image content (modes, owners, hard links, mtimes) and keeps it for the next container', async () => {
  const r = await run(['--rm', '-v', 'v1:/data', 'data:test', 'sh', '-c', 'cat /data/file /data/sub/deep; stat -c "%a %u:%g" /data /data/sub /data/file; grep -c " /data " /proc/mounts']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'from the image\ndeep\n750 1000:1000\n750 1000:1000\n640 1000:1000\n1\n');
  // on the host: the volume root took the image directory's mode and owner
  assert.is(modeOwner(vol('v1')), '750 1000:1000');
  assert.is(modeOwner(join(vol('v1'), 'sub')), '750 1000:1000');
  assert.is(statSync(join(vol('v1'), 'file')).ino, statSync(join(vol('v1'), 'hard')).ino);
  assert.is(statSync(join(vol('v1'), 'file')).mtimeMs, 0);
  // the volume is the container's: a second container sees it (and its own writes)
  const second = await run(['--rm', '-v', 'v1:/data', 'data:test', 'sh', '-c', 'cat /data/file; echo changed > /data/file; rm -r /data/sub']);
  assert.is(second.stdout, 'from the image\n');
  // a volume with content is never copied into again: the change and the removal stay
  const third = await run(['--rm', '-v', 'v1:/data', 'data:test', 'sh', '-c', 'cat /data/file; ls /data']);
  assert.is(third.stdout, 'changed\nfile\nhard\nshadow\nup\n');
  assert.not.ok(readdirSync(join(p.volumes, 'v1')).some((n) => n.startsWith('.fill-')));
});

test('xattrs of the copied files are kept', async () => {
  assert.is((await run(['--rm', '-v', 'x1:/notes', 'xattr:test', 'cat', '/notes/note'])).stdout, 'note\n');
  // Node has no xattr call: python3 reads it (Debian has it; the check is skipped where it is not)
  const py = spawnSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.note").decode())', join(vol('x1'), 'note')], { encoding: 'utf8' });
  if (py.error === undefined) assert.is(py.stdout, 'kept\n', py.stderr);
});

test('an existing but empty volume is filled; --mount type=volume too', async () => {
  mkdirSync(vol('v2'), { recursive: true });
  assert.is((await run(['--rm', '-v', 'v2:/data:ro', 'data:test', 'cat', '/data/file'])).stdout, 'from the image\n');
  assert.is((await run(['--rm', '--mount', 'type=volume,source=v3,target=/data', 'data:test', 'cat', '/data/sub/deep'])).stdout, 'deep\n');
});

test('two runs filling one new volume at once copy once; a killed fill\'s leftovers go', async () => {
  const [a, b] = await Promise.all([run(['--rm', '-v', 'c1:/data', 'data:test', 'cat', '/data/file']), run(['--rm', '-v', 'c1:/data', 'data:test', 'cat', '/data/file'])]);
  assert.equal([a.stdout, b.stdout], ['from the image\n', 'from the image\n'], a.stderr + b.stderr);
  assert.equal(readdirSync(join(p.volumes, 'c1')), ['_data']);
  assert.equal(readdirSync(vol('c1')).sort(), ['file', 'hard', 'shadow', 'sub', 'up']);
  // a fill killed midway (its pid gone) left its copy beside an empty _data
  mkdirSync(join(p.volumes, 'k1', '.fill-999999999-0a0b', 'd'), { recursive: true });
  mkdirSync(vol('k1'));
  assert.is((await run(['--rm', '-v', 'k1:/data', 'data:test', 'cat', '/data/file'])).stdout, 'from the image\n');
  assert.equal(readdirSync(join(p.volumes, 'k1')), ['_data']);
});

test('nocopy and volume-nocopy leave the volume empty', async () => {
  const a = await run(['--rm', '-v', 'n1:/data:nocopy', 'data:test', 'ls', '-A', '/data']);
  assert.equal([a.code, a.stdout], [0, '']);
  const b = await run(['--rm', '--mount', 'type=volume,source=n2,target=/data,volume-nocopy', 'data:test', 'ls', '-A', '/data']);
  assert.equal([b.code, b.stdout], [0, '']);
  const c = await run(['--rm', '-v', '/data:nocopy', 'data:test', 'ls', '-A', '/data']);
  assert.equal([c.code, c.stdout], [0, '']);
  assert.equal(readdirSync(vol('n1')), []);
  assert.equal(readdirSync(vol('n2')), []);
  const bind = await run(['--rm', '-v', `${host}:/data:nocopy`, 'data:test', 'true']);
  assert.is(bind.code, 125);
  assert.ok(oneLine(bind.stderr) && /nocopy applies to volumes/.test(bind.stderr), bind.stderr);
});

test('an anonymous volume (-v /path, or the image\'s VOLUME) gets the content; --rm and rm -v remove it, rm keeps it', async () => {
  const before = readdirSync(p.volumes);
  const made = () => readdirSync(p.volumes).filter((n) => !before.includes(n));
  const a = await run(['--rm', '-v', '/data', 'data:test', 'cat', '/data/file']);
  assert.is(a.stdout, 'from the image\n', a.stderr);
  const b = await run(['--rm', 'datavol:test', 'sh', '-c', 'cat /data/file; grep -c " /data " /proc/mounts; echo written > /data/new']);
  assert.is(b.stdout, 'from the image\n1\n', b.stderr);
  // --rm on a run that goes through the supervisor (-a, as -p and -it): the same
  const c = await run(['--rm', '-a', 'stdout', 'datavol:test', 'cat', '/data/file']);
  assert.is(c.stdout, 'from the image\n', c.stderr);
  assert.equal(made(), []);
  // without --rm it stays with the container (kept across a start), and `rm` keeps it, as Docker
  const d = await run(['--name', 'keeps', 'datavol:test', 'sh', '-c', 'echo mine > /data/mine']);
  assert.is(d.code, 0, d.stderr);
  assert.is((await run(['start', '-a', 'keeps'])).code, 0);
  assert.equal(made(), []);
  assert.is((await run(['rm', 'keeps'])).code, 0);
  assert.is(made().length, 1);
  assert.is(readFileSync(join(p.volumes, made()[0] as string, '_data', 'mine'), 'utf8'), 'mine\n');
  assert.is(readFileSync(join(p.volumes, made()[0] as string, '_data', 'file'), 'utf8'), 'from the image\n');
  // rm -v removes it with the container
  assert.is((await run(['--name', 'goes', 'datavol:test', 'true'])).code, 0);
  assert.is((await run(['rm', '-v', 'goes'])).code, 0);
  assert.is(made().length, 1);
  // a -v on the same path replaces the image's VOLUME
  assert.is((await run(['--rm', '-v', 'v4:/data', 'datavol:test', 'sh', '-c', 'grep -c " /data " /proc/mounts'])).stdout, '1\n');
  assert.ok(made().includes('v4'));
});

test('symlinks are copied as symlinks, never followed; a symlinked target resolves inside the root', async () => {
  assert.is((await run(['--rm', '-v', 'v5:/data', 'data:test', 'true'])).code, 0);
  assert.ok(lstatSync(join(vol('v5'), 'shadow')).isSymbolicLink());
  assert.is(readlinkSync(join(vol('v5'), 'shadow')), '/etc/shadow');
  assert.ok(lstatSync(join(vol('v5'), 'up')).isSymbolicLink());
  assert.is(readlinkSync(join(vol('v5'), 'up')), '../../..');
  // /escape -> ../../../../../../etc is the image's /etc, not the host's (which has a shadow file)
  const r = await run(['--rm', '-v', 'v6:/escape', 'data:test', 'true']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(vol('v6')).sort(), ['group', 'passwd']);
  assert.match(readFileSync(join(vol('v6'), 'passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh\nalice:/);
});

test('a bind mount is not filled; a target the image lacks leaves the volume empty', async () => {
  const dir = join(host, 'empty');
  mkdirSync(dir);
  assert.is((await run(['--rm', '-v', `${dir}:/data`, 'data:test', 'true'])).code, 0);
  assert.equal(readdirSync(dir), []);
  assert.is((await run(['--rm', '-v', 'v7:/nothing/here', 'data:test', 'true'])).code, 0);
  assert.equal(readdirSync(vol('v7')), []);
  // a file at the target: refused before anything starts, as Docker does
  const onFile = await run(['--rm', '-v', 'v8:/data/file', 'data:test', 'true']);
  assert.equal([onFile.code, onFile.stderr], [125, 'tsd-run: mount volume v8 on /data/file: cannot mount a volume on a file\n']);
  assert.equal(readdirSync(vol('v8')), []);
});

test('a copy that fails (a full disk) fails the run with one line and leaves the volume empty', async () => {
  const parent = join(p.volumes, 'full');
  mkdirSync(parent, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', parent]);
  const containers = () => (existsSync(join(p.root, 'containers')) ? readdirSync(join(p.root, 'containers')) : []);
  const before = containers();
  try {
    const r = await run(['--rm', '-v', 'full:/big', 'data:test', 'true']);
    assert.is(r.code, 125);
    assert.ok(oneLine(r.stderr), r.stderr);
    assert.match(r.stderr, /^tsd-run: fill volume full from the image's \/big: no space left on device\n$/);
    assert.equal(readdirSync(parent), ['_data']);
    assert.equal(readdirSync(vol('full')), []);
    assert.equal(containers(), before);
  } finally {
    execFileSync('umount', [parent]);
  }
});

test.run();
