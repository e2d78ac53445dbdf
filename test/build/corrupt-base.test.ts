// Regression: a base or COPY --from image whose gzip layer is cut short (its digest matching the
// cut bytes, so the store holds it) made tsd-build die with a stack trace: the tar entry stream
// was destroyed with the zlib error and had no listener. Now one line and exit 1.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ociArchive, corpus } from '../reliability/corpus.js';
import { tsd } from '../support/tsd.js';
import { harness, type Harness } from './harness.js';

let h: Harness;

test.before(async () => {
  h = await harness();
  const c = corpus().find((x) => x.name.startsWith('a gzip layer cut in half'));
  const dir = join(h.p.root, 'tmp-archive.tar');
  writeFileSync(dir, await ociArchive(await c!.make('/nonexistent'), 'localhost/cut:1'));
  const r = await tsd('store', ['load', '-i', dir], { root: h.p.root });
  assert.is(r.code, 0, r.stderr);
  execFileSync('rm', ['-f', dir]);
});

test.after(() => h.cleanup());

for (const [name, dockerfile] of [
  ['FROM it + RUN', 'FROM localhost/cut:1\nRUN exit 0\n'],
  ['COPY --from it', 'FROM localhost/busybox:latest\nCOPY --from=localhost/cut:1 / /x/\n'],
]) {
  test(`${name}: one line, no stack trace`, () => {
    const r = h.build([], dockerfile as string, ['-q']);
    assert.is(r.code !== 0, true);
    assert.match(r.stderr, /^tsd-build: [^\n]*unexpected end of file\n$/);
  });
}

test.run();
