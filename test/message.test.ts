import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { decodeMessage, firstImage, formatMessage, imageMessage } from '../src/message.js';
import { digestOf } from '../src/oci/digest.js';

const digest = digestOf('x');

test('an image message round-trips through one line', () => {
  const m = imageMessage({ ref: 'localhost/x:latest', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 3 });
  const line = formatMessage(m);
  assert.is(line.split('\n').length, 2);
  const back = decodeMessage(line.trim());
  assert.ok(E.isRight(back));
  if (E.isRight(back)) assert.equal(back.right, m);
});

test('unknown message types are skipped, not refused', async () => {
  const input = Readable.from([`{"v":1,"type":"future-thing","x":1}\n`, formatMessage(imageMessage({ digest, mediaType: 'm', size: 1 }))]);
  const r = await firstImage(input);
  assert.ok(E.isRight(r));
  if (E.isRight(r)) assert.is(r.right.digest, digest);
});

test('a message without version is accepted as v1; another version is refused', () => {
  assert.ok(E.isRight(decodeMessage(JSON.stringify({ type: 'image', digest, mediaType: 'm', size: 1 }))));
  const r = decodeMessage(JSON.stringify({ v: 2, type: 'image', digest }));
  assert.ok(E.isLeft(r));
  if (E.isLeft(r)) assert.match(r.left.message, /version 2 is not supported/);
});

test('garbage and images without a digest are clear errors', async () => {
  for (const bad of ['not json', '[1,2]', '{"type":"image","digest":"sha256:abc"}', '{"no":"type"}']) {
    const r = await firstImage(Readable.from([bad + '\n']));
    assert.ok(E.isLeft(r), bad);
    if (E.isLeft(r)) assert.match(r.left.message, /^stdin: /);
  }
  const empty = await firstImage(Readable.from([]));
  assert.ok(E.isLeft(empty));
  if (E.isLeft(empty)) assert.match(empty.left.message, /no image message/);
});

test('fuzz: random lines never throw', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = '{}[]":,0123456789abcdefvtypeimagedigestsha256 \\\u0000\u00ff';
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(rand() * 80);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
    if (rand() < 0.3) s = JSON.stringify({ v: 1, type: rand() < 0.5 ? 'image' : s, digest: rand() < 0.5 ? digest : s });
    decodeMessage(s);
  }
});

test.run();
