// The short form of the chaos suite (CI's): 5 kills for each of pull, push, build, run -d, load,
// gc and tag (35 in all); after each, fsck is clean and the operation run again gives the result
// an unkilled run gave. The long form is `npm run chaos` (test/chaos/run.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chaos, table } from './driver.js';

test('SIGKILL at random points: fsck stays clean and every operation, run again, succeeds', async () => {
  const seed = Number(process.env.TSD_CHAOS_SEED ?? (Date.now() & 0x7fffffff));
  const figures = await chaos({ kills: 5, sizeMb: 3, seed, log: () => undefined });
  const kills = figures.reduce((n, f) => n + f.kills, 0);
  console.log(`${table(figures)}\nseed ${seed}`);
  assert.ok(kills >= 35, `${kills} kills`);
  for (const f of figures) assert.ok(f.kills >= 5, `${f.op}: ${f.kills} kills`);
  const failures = figures.flatMap((f) => f.failures);
  assert.equal(failures, [], `seed ${seed}`);
});

test.run();
