// Memory stays flat: pulling a big one-layer image keeps tsd-pull's peak RSS under 150 MB.
// Default 200 MB of random data (quick); TSD_TEST_BIG_MB=1024 for the full 1 GiB run.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { paths } from '../../src/store/layout.js';
import { OciLayout, skopeoCopy, startRegistry, type Registry } from '../support/registry.js';
import { REPO, removeDir, tempDir, tempStore } from '../support/tsd.js';

const MB = Number(process.env.TSD_TEST_BIG_MB ?? 200);
let reg: Registry;
let work: string;

test.before(async () => {
  reg = await startRegistry();
  work = tempDir('tsd-mem-');
});

test.after(async () => {
  await reg.stop();
  removeDir(work);
});

test(`pulling a ${MB} MB layer stays under 150 MB RSS`, async () => {
  const layout = new OciLayout(join(work, 'layout'));
  const big = await layout.bigLayer(MB * 1024 * 1024);
  const image = layout.image([big], { tag: 'big' });
  await skopeoCopy(`oci:${layout.dir}:big`, `docker://${reg.host}/m/big:1`);
  removeDir(layout.dir);
  const p = await tempStore();
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
    execFile('/usr/bin/time', ['-f', 'maxrss_kb=%M', join(REPO, 'bin', 'tsd-pull'), '-q', `${reg.host}/m/big:1`], { env: { ...process.env, TSD_ROOT: p.root } }, (e, out, err) =>
      e ? reject(new Error(`${e.message}: ${err}`)) : resolve({ stdout: out, stderr: err }),
    ),
  );
  assert.is(JSON.parse(stdout).digest, image.digest);
  assert.is(statSync(paths(p.root).blob(big.digest as never)).size, big.size);
  const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1]);
  console.log(`  tsd-pull of ${MB} MB: peak RSS ${(kb / 1024).toFixed(1)} MB`);
  assert.ok(kb > 0 && kb < 150 * 1024, `peak RSS ${kb} kB`);
  removeDir(p.root);
});

test.run();
