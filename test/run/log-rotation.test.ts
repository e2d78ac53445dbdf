// Log rotation (--log-opt max-size/max-file) in the supervisor, with the real runc: a detached
// container writing fast for ~10 s keeps its logs within max-size × max-file (+ one chunk: what
// it writes while a rotation is copying); `logs` reads the rotated files in order and shows the
// newest lines; the exit code is recorded though the `tsd-run -d` that started it exited long ago.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseLogOpts } from '../../src/run/options.js';
import { detach, inspect, p, run, setup, sleep, teardown, until } from './detached-support.js';

test.before(setup);
test.after(teardown);

test('--log-opt: max-size with units, max-file, comma lists; bad values are one-line errors', () => {
  assert.equal(parseLogOpts([]), { _tag: 'Right', right: undefined });
  assert.equal(parseLogOpts(['max-size=1m', 'max-file=3']), { _tag: 'Right', right: { maxSize: 1 << 20, maxFile: 3 } });
  assert.equal(parseLogOpts(['max-size=10k,max-file=2']), { _tag: 'Right', right: { maxSize: 10240, maxFile: 2 } });
  assert.equal(parseLogOpts(['max-size=500']), { _tag: 'Right', right: { maxSize: 500, maxFile: 1 } });
  for (const bad of [['max-file=3'], ['max-size=lots'], ['max-size=0'], ['max-size=1m', 'max-file=0'], ['mode=non-blocking']]) {
    const r = parseLogOpts(bad);
    assert.is(r._tag, 'Left', bad.join(' '));
  }
});

test('a bad --log-opt is refused before anything is created', async () => {
  const r = await run(['-d', '--log-opt', 'max-size=huge', 'bb:test', 'true']);
  assert.is(r.code, 125);
  assert.match(r.stderr, /^tsd-run: [^\n]*max-size[^\n]*\n$/);
});

const MAX = 256 * 1024;
const FILES = 3;
/** a rotation copies while the container writes on: the bound allows this much beyond */
const CHUNK = 256 * 1024;

test('a container writing fast for ~10 s stays within max-size × max-file; logs shows the newest lines; the exit code is recorded', async () => {
  // ~100-byte numbered lines for 10 s, in bursts of 500 as fast as the shell goes with a 20 ms
  // pause after each (at most ~2.5 MB/s: unpaced, the shell wrote ~9 MB/s, so a supervisor starved
  // for 100 ms on a loaded machine let a log pass its bound by ~1 MB); then END and exit 7
  const script = 'end=$(( $(date +%s) + 10 )); i=0; pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; ' + 'while [ $(date +%s) -lt $end ]; do j=0; while [ $j -lt 500 ]; do i=$((i+1)); j=$((j+1)); echo "line $i $pad"; done; usleep 20000; done; echo "END $i"; exit 7';
  const id = await detach(['--name', 'chatty', '--log-opt', `max-size=${MAX / 1024}k`, '--log-opt', `max-file=${FILES}`, 'bb:test', 'sh', '-c', script]);
  // the tsd-run -d that started it has exited (detach awaited it); sample the log sizes meanwhile
  const dir = join(p().containers, id);
  const total = () => readdirSync(dir).filter((f) => f.startsWith('stdout.log')).reduce((n, f) => n + (() => { try { return statSync(join(dir, f)).size; } catch { return 0; } })(), 0);
  let peak = 0;
  let samples = 0;
  let seen = '';
  for (;;) {
    const now = total();
    if (now > peak) seen = readdirSync(dir).filter((f) => f.startsWith('stdout.log')).map((f) => `${f}:${statSync(join(dir, f)).size}`).join(' ');
    peak = Math.max(peak, now);
    samples++;
    if ((await inspect(id)).State.Status === 'exited') break;
    await sleep(100);
  }
  peak = Math.max(peak, total());
  const s = await inspect(id);
  assert.is(s.State.ExitCode, 7, 'the exit code is recorded');
  const files = readdirSync(dir).filter((f) => f.startsWith('stdout.log')).sort();
  assert.equal(files, ['stdout.log', 'stdout.log.1', 'stdout.log.2'], files.join(' '));
  assert.ok(peak <= MAX * FILES + CHUNK, `peak ${peak} bytes over ${samples} samples (${seen}), bound ${MAX * FILES + CHUNK}`);
  const logs = await run(['logs', 'chatty']);
  assert.is(logs.code, 0, logs.stderr);
  const lines = logs.stdout.trimEnd().split('\n');
  const last = lines.at(-1) as string;
  assert.match(last, /^END \d+$/);
  const written = Number(last.slice(4));
  assert.ok(written * 100 > MAX * FILES * 2, `it wrote more than the limit keeps (${written} lines)`);
  // the files in order: numbered lines rise; the newest is the last written
  const nums = lines.slice(0, -1).map((l) => Number(/^line (\d+) /.exec(l)?.[1] ?? NaN));
  assert.is(nums.at(-1), written);
  let gaps = 0;
  let lost = 0;
  for (let k = 1; k < nums.length; k++) {
    assert.ok((nums[k] as number) > (nums[k - 1] as number), `in order at ${k}: ${nums[k - 1]} then ${nums[k]}`);
    if ((nums[k] as number) !== (nums[k - 1] as number) + 1) {
      gaps++;
      lost += (nums[k] as number) - (nums[k - 1] as number) - 1;
    }
  }
  const tail = await run(['logs', '--tail', '3', 'chatty']);
  assert.is(tail.stdout, `line ${written - 1} ${'x'.repeat(80)}\nline ${written} ${'x'.repeat(80)}\nEND ${written}\n`);
  const dated = await run(['logs', '-t', '--tail', '2', 'chatty']);
  assert.match(dated.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z line \d+ x+\n\d{4}-[^\n]+Z END \d+\n$/);
  console.log(`  log rotation: ${written} lines (${(written * 100 / 1048576).toFixed(1)} MiB) written in ~10 s; peak on disk ${peak} bytes (bound ${MAX * FILES + CHUNK}); kept ${nums.length} lines; lost at rotations: ${lost} lines in ${gaps} gaps`);
  assert.ok(lost <= gaps * 50 && gaps <= Math.ceil(written * 100 / MAX), `lost ${lost} in ${gaps} gaps`);
});

test('max-file=1 truncates in place; logs follows a rotation while it happens', async () => {
  const id = await detach(['--log-opt', 'max-size=16k', 'bb:test', 'sh', '-c', 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "n $i"; done; sleep 0.3; echo last; exit 4']);
  const f = await run(['logs', '-f', id]);
  assert.match(f.stdout, /(^|\n)last\n$/, f.stdout.slice(-300) + f.stderr);
  await until('exit', async () => ((await inspect(id)).State.Status === 'exited' ? true : undefined));
  assert.is((await inspect(id)).State.ExitCode, 4);
  const dir = join(p().containers, id);
  assert.equal(readdirSync(dir).filter((x) => x.startsWith('stdout.log')), ['stdout.log']);
  assert.ok(statSync(join(dir, 'stdout.log')).size <= 16 * 1024 + CHUNK);
  assert.match((await run(['logs', '--tail', '1', id])).stdout, /^last\n$/);
});

test.run();
