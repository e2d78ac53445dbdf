// The diff ID of a big gzip layer is hashed on a thread of its own (block-digest.ts), from the
// blocks parallel-gzip.ts hands over once compressed: it must be the sha256 of the whole tar,
// and the gzip members must still be the tar.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlockDigest } from '../../src/build/block-digest.js';
import { ParallelGzip } from '../../src/build/parallel-gzip.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('BlockDigest: blocks that own their memory (transferred), pooled ones and empty ones, in order', async () => {
  const blocks = [Buffer.concat([randomBytes(3 << 20)]), Buffer.from('small, from the pool'), Buffer.alloc(0), randomBytes(100), Buffer.concat([Buffer.alloc(70_000, 7)])];
  const whole = Buffer.concat(blocks);
  const d = new BlockDigest();
  for (const b of blocks) d.update(Buffer.from(b)); // a copy each: update may take the memory
  assert.is(d.size, whole.length);
  assert.is(await d.digest(), sha(whole));
  const empty = new BlockDigest();
  assert.is(await empty.digest(), sha(Buffer.alloc(0)));
});

test('ParallelGzip hands every block over in order once compressed; the output is still the input', async () => {
  // compressible and random stretches, cut into odd chunks
  const input = Buffer.concat([Buffer.alloc(2_500_000, 'ab'), randomBytes(1_300_000), Buffer.alloc(10, 1)]);
  const chunks: Buffer[] = [];
  for (let o = 0; o < input.length; o += 65_000) chunks.push(input.subarray(o, o + 65_000));
  const d = new BlockDigest();
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), new ParallelGzip(1, 2, (b) => d.update(b)), async function* (src) {
    for await (const c of src) out.push(c as Buffer);
    yield* [];
  });
  assert.is(await d.digest(), sha(input));
  assert.ok(gunzipSync(Buffer.concat(out)).equals(input));
});

test('an abandoned BlockDigest keeps no process alive', () => {
  const d = new BlockDigest();
  d.update(Buffer.from('x'));
  d.abandon();
});

test.run();
