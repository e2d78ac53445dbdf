// Regression: a zstd layer that decompresses to more than 100 MB unpacks. execa buffered the
// zstd process's whole stdout beside the stream (its default buffer: true), up to its 100 MB
// maxBuffer, then died with a fatal V8 error building the message ("invalid size error").
import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { chainIds } from '../../src/snapshot/chain-id.js';
import { unpackLayer } from '../../src/snapshot/snapshot.js';
import { removeDir, tempStore } from '../support/tsd.js';
import { putLayer, tarOf } from './layers.js';

test('a zstd layer of 160 MB (a small tar, then zeros) unpacks', async () => {
  const p = await tempStore();
  const t = await tarOf([{ name: 'small', content: 'x' }]);
  const script = `(cat; head -c ${160 << 20} /dev/zero) | zstd -q -1`;
  const blob = execFileSync('sh', ['-c', script], { input: t, maxBuffer: 1 << 26 });
  const diffId = `sha256:${execFileSync('sh', ['-c', `(cat; head -c ${160 << 20} /dev/zero) | sha256sum`], { input: t }).toString().split(' ')[0]}`;
  const layer = await putLayer(p, t, 'zstd', blob);
  const [chainId] = chainIds([diffId as never]);
  const r = await unpackLayer(p, layer.descriptor, diffId as never, chainId!, { sync: false })();
  assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
  removeDir(p.root);
});

test.run();
