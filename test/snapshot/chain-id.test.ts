import { execFileSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chainIds } from '../../src/snapshot/chain-id.js';
import type { Digest } from '../../src/oci/digest.js';

// sha256 computed by coreutils, not by the code under test
const sha256sum = (s: string): string => `sha256:${execFileSync('sha256sum', { input: s }).toString().split(' ')[0]}`;
const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

test('no layers: no chain IDs', () => {
  assert.equal(chainIds([]), []);
});

test('the first chain ID is the first diff ID', () => {
  assert.equal(chainIds([d('a')]), [d('a')]);
});

test('each next chain ID is sha256 of "<chain below> <diff ID>"', () => {
  const ids = chainIds([d('a'), d('b'), d('c')]);
  const second = sha256sum(`${d('a')} ${d('b')}`);
  assert.is(ids[1], second);
  assert.is(ids[2], sha256sum(`${second} ${d('c')}`));
});

test('the same layer over different bases has different chain IDs', () => {
  assert.is.not(chainIds([d('a'), d('c')])[1], chainIds([d('b'), d('c')])[1]);
});

test.run();
