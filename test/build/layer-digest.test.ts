// A big gzip layer is gzipped and hashed from a thread of its own (gzip-thread.ts): its diff ID
// must be the sha256 of the whole tar, its gzip members must still be the tar, and the bytes must
// be ParallelGzip's for the same level (the layer's digest does not depend on the path taken).
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import type { Transform } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GzipThread } from '../../src/build/gzip-thread.js';
import { ParallelGzip } from '../../src/build/parallel-gzip.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const through = async (input: Buffer, gz: Transform): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for (let o = 0; o < input.length; o += 65_000) chunks.push(input.subarray(o, o + 65_000));
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), gz, async function* (src) {
    for await (const c of src) out.push(c as Buffer);
    yield* [];
  });
  return Buffer.concat(out);
};

test('GzipThread: the diff ID is the input\'s sha256, the output gunzips to the input and is ParallelGzip\'s', async () => {
  // compressible and random stretches (stored members), cut into odd chunks, more blocks than go out at once
  const input = Buffer.concat([Buffer.alloc(2_500_000, 'ab'), randomBytes(1_300_000), Buffer.alloc(6_000_000, 'xyz'), Buffer.alloc(10, 1)]);
  for (const level of [1, 6]) {
    const gz = new GzipThread(level, 2);
    const out = await through(input, gz);
    assert.is(await gz.diffId, sha(input));
    assert.ok(gunzipSync(out).equals(input));
    assert.ok(out.equals(await through(input, new ParallelGzip(level))), `level ${level}: same bytes as ParallelGzip`);
  }
});

test('GzipThread: an empty input is one empty gzip member', async () => {
  const gz = new GzipThread(1);
  const out = await through(Buffer.alloc(0), gz);
  assert.is(await gz.diffId, sha(Buffer.alloc(0)));
  assert.is(gunzipSync(out).length, 0);
});

test('a GzipThread destroyed half-way keeps no process alive', () => {
  const gz = new GzipThread(1);
  gz.write(randomBytes(3 << 20));
  gz.destroy();
});

test.run();
