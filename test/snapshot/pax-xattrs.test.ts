// Binary xattr values (security.capability and the like) survive byte for byte, though tar-stream
// decodes PAX values as UTF-8: PaxXattrTap keeps the raw bytes.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { parsePaxRecords, PaxXattrTap } from '../../src/snapshot/pax-xattrs.js';
import { snapshotDir, unpackLayer } from '../../src/snapshot/snapshot.js';
import { tempDir, tempStore } from '../support/tsd.js';
import { putLayer, tarOf } from './layers.js';

// VFS_CAP_REVISION_2 with the effective flag, CAP_SETFCAP (31) permitted: bytes 0x80 and 0x02 are not UTF-8 text
const CAP = Buffer.from('0100000200000080000000000000000000000000', 'hex');
const BIN = Buffer.from([0xff, 0x00, 0x80, 0xc3, 0x28, 0x0a, 0x3d]);

/** A tar made by GNU tar from files with real xattrs, so the PAX records are GNU tar's own. */
const gnuTarWithXattrs = (): Buffer => {
  const dir = tempDir('tsd-xattr-src-');
  writeFileSync(join(dir, 'ping'), 'binary');
  writeFileSync(join(dir, 'plain'), 'text');
  execFileSync('python3', ['-c', `import os,sys; os.setxattr(sys.argv[1], 'security.capability', bytes.fromhex('${CAP.toString('hex')}')); os.setxattr(sys.argv[1], 'user.bin', bytes.fromhex('${BIN.toString('hex')}')); os.setxattr(sys.argv[2], 'user.text', b'hello')`, join(dir, 'ping'), join(dir, 'plain')]);
  return execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--format=posix', '-C', dir, '-cf', '-', 'ping', 'plain'], { maxBuffer: 1 << 26 });
};

const readXattr = (path: string, name: string): Buffer =>
  Buffer.from(execFileSync('python3', ['-c', 'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).hex())', path, name]).toString(), 'hex');

test('PAX records keep their values as bytes', () => {
  const rec = (k: string, v: Buffer) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  };
  const parsed = parsePaxRecords(Buffer.concat([rec('SCHILY.xattr.user.bin', BIN), rec('path', Buffer.from('a/b'))]));
  assert.equal(parsed.get('SCHILY.xattr.user.bin'), BIN);
  assert.is(parsed.get('path')?.toString(), 'a/b');
});

test('the tap finds the same xattrs whatever the chunk boundaries', async () => {
  const tarBytes = gnuTarWithXattrs();
  const run = async (size: number) => {
    const tap = new PaxXattrTap();
    const chunks: Buffer[] = [];
    for (let i = 0; i < tarBytes.length; i += size) chunks.push(tarBytes.subarray(i, i + size));
    await pipeline(Readable.from(chunks), tap, new Writable({ write: (_c, _e, d) => d() }));
    return [...tap.xattrs.values()].map((m) => Object.fromEntries([...m].map(([k, v]) => [k, v.toString('hex')])));
  };
  const whole = await run(tarBytes.length);
  assert.equal(whole, [
    { 'security.capability': CAP.toString('hex'), 'user.bin': BIN.toString('hex') },
    { 'user.text': Buffer.from('hello').toString('hex') },
  ]);
  for (const size of [1, 7, 511, 513, 4096]) assert.equal(await run(size), whole, `chunks of ${size}`);
});

test('a layer made by GNU tar with binary xattrs unpacks them byte for byte', async () => {
  const p = await tempStore();
  const layer = await putLayer(p, gnuTarWithXattrs(), 'gzip');
  const [id] = chainIds([layer.diffId]);
  const r = await unpackLayer(p, layer.descriptor, layer.diffId, id!, { sync: false })();
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  const dir = snapshotDir(p, id!);
  assert.equal(readXattr(join(dir, 'ping'), 'user.bin'), BIN);
  assert.equal(readXattr(join(dir, 'ping'), 'security.capability'), CAP);
  assert.equal(readXattr(join(dir, 'plain'), 'user.text'), Buffer.from('hello'));
  if (E.isRight(r)) assert.equal(r.right.report?.lostXattrs, []);
});

test('entries after big bodies and long names keep their own xattrs', async () => {
  const p = await tempStore();
  const long = 'x'.repeat(180);
  const tarBytes = await tarOf([
    { name: 'big', content: Buffer.alloc(100_000 + 3, 1) },
    { name: `${long}/f`, content: 'f', pax: { 'SCHILY.xattr.user.a': 'A' } },
    { name: 'dir/', type: 'directory', pax: { 'SCHILY.xattr.user.d': 'D' } },
    { name: 'g', content: 'g' },
  ]);
  const layer = await putLayer(p, tarBytes, 'none');
  const [id] = chainIds([layer.diffId]);
  const r = await unpackLayer(p, layer.descriptor, layer.diffId, id!, { sync: false })();
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  const dir = snapshotDir(p, id!);
  assert.equal(readXattr(join(dir, long, 'f'), 'user.a'), Buffer.from('A'));
  assert.equal(readXattr(join(dir, 'dir'), 'user.d'), Buffer.from('D'));
});

test.run();
