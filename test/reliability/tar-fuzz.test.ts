// Fuzzing the tar reader paths: random and mutated tar bytes (flipped bytes, cut short, headers
// with random fields, duplicated blocks) through the snapshot extractor (unpackLayer, in process)
// and `tsd-store load` (the load function in process, then a sample through the real binary).
// Each input must end as a value: Right or a Left with a one-line message, never a throw, a hang
// (each input is bounded in time) or a stack trace; nothing outside the store is touched.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { unpackLayer } from '../../src/snapshot/snapshot.js';
import { load } from '../../src/store/load.js';
import type { Digest } from '../../src/oci/digest.js';
import type { StorePaths } from '../../src/store/layout.js';
import { makeSentinel, putLayer, tarOf, type Spec } from '../snapshot/layers.js';
import { tempDir, tempStore } from '../support/tsd.js';
import { ociArchive, sha256 } from './corpus.js';
import { assertClean, watched } from './hostile-support.js';

/** a seeded generator, so a failure can be replayed (TSD_FUZZ_SEED) */
let seed = Number(process.env.TSD_FUZZ_SEED ?? Date.now() % 1_000_000);
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const int = (n: number): number => Math.floor(rnd() * n);

const N_EXTRACT = Number(process.env.TSD_FUZZ_EXTRACT ?? 1500);
const N_LOAD = Number(process.env.TSD_FUZZ_LOAD ?? 600);
const N_CLI = Number(process.env.TSD_FUZZ_CLI ?? 24);
const PER_INPUT_MS = 10_000;

const sentinel = makeSentinel();
const before = sentinel.fingerprint();
let p: StorePaths;
let seeds: Buffer[] = [];

test.before(async () => {
  p = await tempStore();
  const S = sentinel.dir;
  const specs: Spec[][] = [
    [{ name: 'a/', type: 'directory' }, { name: 'a/f', content: 'hello\n' }, { name: 'a/l', type: 'symlink', linkname: 'f' }, { name: 'a/h', type: 'link', linkname: 'a/f' }],
    [{ name: 'x', content: 'x', pax: { path: 'long/'.repeat(40) + 'name', 'SCHILY.xattr.user.k': 'v' } }, { name: '.wh.gone', content: '' }],
    [{ name: 'l', type: 'symlink', linkname: S }, { name: 'l/keep', content: 'overwritten' }, { name: 'dev/', type: 'directory' }, { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 }],
    [{ name: 'big', content: randomBytes(40_000) }, { name: 'p', type: 'fifo' }],
  ];
  seeds = await Promise.all(specs.map((s) => tarOf(s)));
});

test.after(() => {
  assert.is(sentinel.fingerprint(), before, 'nothing outside the store was touched');
  execFileSync('rm', ['-rf', p.root, sentinel.dir]);
});

/** One mutation of a valid tar: the kinds a broken disk, network or attacker make. */
const mutate = (t: Buffer): Buffer => {
  const b = Buffer.from(t);
  switch (int(7)) {
    case 0: // flip random bytes, mostly in headers
      for (let k = 0, n = 1 + int(8); k < n; k++) {
        const at = rnd() < 0.7 ? int(Math.max(1, b.length >> 9)) * 512 + int(512) : int(b.length);
        b[at % b.length] ^= 1 << int(8);
      }
      return b;
    case 1: // cut short
      return b.subarray(0, int(b.length));
    case 2: // a header field overwritten with random bytes (size, mode, type, name, checksum…)
      {
        const block = int(Math.max(1, b.length >> 9)) * 512;
        const [off, len] = [[0, 100], [100, 8], [124, 12], [148, 8], [156, 1], [157, 100], [257, 8], [345, 155]][int(8)] as [number, number];
        randomBytes(len).copy(b, Math.min(block + off, b.length - len));
      }
      return b;
    case 3: // a size field made huge (octal and base-256)
      {
        const block = int(Math.max(1, b.length >> 9)) * 512;
        if (rnd() < 0.5) Buffer.from('77777777777\0').copy(b, block + 124);
        else Buffer.from([0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).copy(b, block + 124);
      }
      return b;
    case 4: // blocks duplicated or swapped
      {
        const blocks = b.length >> 9;
        const i = int(blocks);
        const j = int(blocks);
        return Buffer.concat([b.subarray(0, i * 512), b.subarray(j * 512, j * 512 + 512 * (1 + int(4))), b.subarray(i * 512)]);
      }
    case 5: // pure random bytes
      return randomBytes(int(8192));
    default: // random bytes with a valid-looking ustar magic
      {
        const r = randomBytes(512 * (1 + int(6)));
        Buffer.from('ustar\x0000').copy(r, 257);
        return r;
      }
  }
};

const bounded = <T>(what: string, f: Promise<T>): Promise<T> =>
  Promise.race([f, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: hung for ${PER_INPUT_MS} ms`)), PER_INPUT_MS))]);

const oneLine = (what: string, message: string) => {
  assert.ok(!message.includes('\n'), `${what}: one line: ${message}`);
  assert.not.match(message, /Maximum call stack|TypeError|RangeError|ReferenceError|Cannot read prop/, `${what}: ${message}`);
};

test(`the snapshot extractor takes ${N_EXTRACT} mutated and random tars (plain and gzip) without a throw, hang or stack trace`, async () => {
  const started = seed;
  let refused = 0;
  for (let i = 0; i < N_EXTRACT; i++) {
    const t = mutate(seeds[int(seeds.length)] as Buffer);
    const gz = rnd() < 0.3;
    const layer = await putLayer(p, t, gz ? 'gzip' : 'none', gz ? gzipSync(t) : t);
    const [chainId] = chainIds([layer.diffId]);
    const what = `input ${i} (seed ${started})`;
    const r = await bounded(what, unpackLayer(p, layer.descriptor, layer.diffId, chainId as Digest, { sync: false })());
    if (E.isLeft(r)) {
      refused++;
      oneLine(what, r.left.message);
    }
  }
  assert.is(sentinel.fingerprint(), before);
  console.log(`  tar fuzz (extractor): ${N_EXTRACT} inputs, ${refused} refused, ${N_EXTRACT - refused} unpacked, seed ${started}`);
});

/** An archive from the mutations: a mutated OCI archive, or a valid archive of a mutated layer. */
const archiveInput = async (i: number): Promise<Buffer> => {
  const layer = mutate(seeds[int(seeds.length)] as Buffer);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }] }));
  const img = { blobs: [cfg, layer, m].map((bytes) => ({ bytes, digest: sha256(bytes) })), documents: [], top: { digest: sha256(m), size: m.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' }, tars: [] };
  const archive = await ociArchive(img, `localhost/fuzz-${i}:1`);
  return rnd() < 0.5 ? archive : mutate(archive);
};

test(`tsd-store load takes ${N_LOAD} mutated archives (in process) without a throw, hang or stack trace`, async () => {
  const started = seed;
  let refused = 0;
  for (let i = 0; i < N_LOAD; i++) {
    const what = `archive ${i} (seed ${started})`;
    const r = await bounded(what, load(p, Readable.from([await archiveInput(i)]))());
    if (E.isLeft(r)) {
      refused++;
      oneLine(what, r.left.message);
    }
  }
  console.log(`  tar fuzz (load): ${N_LOAD} archives, ${refused} refused, ${N_LOAD - refused} loaded, seed ${started}`);
});

test(`the tsd-store load binary: ${N_CLI} mutated archives, each a clean exit`, async () => {
  const dir = tempDir('tsd-fuzz-');
  const codes = new Map<number, number>();
  for (let i = 0; i < N_CLI; i++) {
    const file = join(dir, `a${i}.tar`);
    writeFileSync(file, await archiveInput(1000 + i));
    const r = await watched('tsd-store', ['load', '-i', file], { env: { TSD_ROOT: p.root }, timeoutMs: 30_000 });
    assertClean(`archive ${i}`, r, 'tsd-store');
    codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
  }
  execFileSync('rm', ['-rf', dir]);
  console.log(`  tar fuzz (tsd-store load binary): ${N_CLI} archives, exit codes ${JSON.stringify(Object.fromEntries(codes))}`);
});

test.run();
