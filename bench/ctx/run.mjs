// bench/ctx: tsd-ctx against `tar -cf - DIR` on the same generated tree, side by side.
// Both write into a pipe read by `cat > /dev/null` (GNU tar skips reading files when its output
// is /dev/null itself). Runs alternate, after one warm-up each; prints medians and the ratio.
// tsd-ctx keeps its digest cache in a store of its own here; the tree is left to age past the
// cache's racy window first, so the warm-up learns every digest (a tree edited a while ago and
// sent again), and a row with the cache off shows a first run. floor.mjs is Node alone doing the
// same reads and writes without tar (and with --hash, the hashing too).
//   node bench/ctx/run.mjs                      small tree (2,000 files, 30 MB)
//   TSD_BENCH_FULL=1 node bench/ctx/run.mjs     the full size (20,000 files, 300 MB)
//   TSD_BENCH_FILES=… TSD_BENCH_MB=… TSD_BENCH_RUNS=…   any other size
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const full = process.env.TSD_BENCH_FULL === '1';
const FILES = Number(process.env.TSD_BENCH_FILES ?? (full ? 20000 : 2000));
const MB = Number(process.env.TSD_BENCH_MB ?? (full ? 300 : 30));
const RUNS = Number(process.env.TSD_BENCH_RUNS ?? 5);
const repo = resolve(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'tsd-ctx');
if (!existsSync(join(repo, 'dist', 'tsd-ctx.cjs'))) {
  console.error('bench/ctx: run `npm run build` first');
  process.exit(1);
}

// a deterministic tree: 100 files per directory, two levels deep; 98% small files (1–16 KiB),
// the remaining bytes spread over the 2% large ones
const dir = mkdtempSync(join(tmpdir(), 'tsd-bench-ctx-'));
const store = mkdtempSync(join(tmpdir(), 'tsd-bench-ctx-store-'));
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const large = Math.max(1, Math.floor(FILES * 0.02));
const sizes = Array.from({ length: FILES - large }, () => 1024 + Math.floor(rand() * 15 * 1024));
const smallBytes = sizes.reduce((a, b) => a + b, 0);
const each = Math.max(0, Math.floor((MB * 1024 * 1024 - smallBytes) / large));
for (let i = 0; i < large; i++) sizes.push(each);
const chunk = Buffer.alloc(1024 * 1024);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;
let total = 0;
sizes.forEach((size, i) => {
  const d = join(dir, `d${Math.floor(i / 1000)}`, `s${Math.floor(i / 100) % 10}`);
  mkdirSync(d, { recursive: true });
  const body = Buffer.alloc(size);
  for (let o = 0; o < size; o += chunk.length) chunk.copy(body, o, 0, Math.min(chunk.length, size - o));
  body.writeUInt32LE(i, 0);
  writeFileSync(join(d, `f${i}.dat`), body);
  total += size;
});
writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');

// wall time of the pipeline, and its CPU time (user + sys of the tool and cat) through /usr/bin/time
const cpu = [];
const time = (cmd, into) => {
  const timed = existsSync('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const r = timed
    ? spawnSync('/usr/bin/time', ['-f', '%U %S', 'sh', '-c', `${cmd} | cat > /dev/null`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
    : spawnSync('sh', ['-c', `${cmd} | cat > /dev/null`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status} ${r.stderr ?? ''}`);
  if (timed && into) {
    const [u, s] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    into.push((u + s) * 1000);
  }
  return ms;
};
const maxRss = (cmd) => {
  if (!existsSync('/usr/bin/time')) return undefined;
  const r = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', `${cmd} > /dev/null`], { encoding: 'utf8' });
  return Number(r.stderr.trim().split('\n').pop());
};
const ours = `TSD_ROOT=${store} ${bin} ${dir}`;
const oursCold = `TSD_CTX_DIGEST_CACHE=0 ${ours}`;
const oursNoDigests = `TSD_ROOT=${store} ${bin} --no-digests ${dir}`;
const peer = `tar -cf - -C ${dir} .`;
const floor = `node ${join(repo, 'bench', 'ctx', 'floor.mjs')} ${dir}`;
const floorHash = `${floor} --hash`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// the cache learns a digest only for a file whose ctime is 2 s older than the run
const newest = statSync(join(dir, 'Dockerfile')).ctimeMs;
const racy = newest + 2100 - Date.now();
if (racy > 0) spawnSync('sleep', [String(racy / 1000)]);

try {
  const rows = [
    ['tsd-ctx DIR (digest cache warm)', ours],
    ['tar -cf - DIR', peer],
    ['tsd-ctx DIR, cache off (all hashed)', oursCold],
    ['tsd-ctx --no-digests DIR', oursNoDigests],
    ['floor: node, no tar, no hashing', floor],
    ['floor: node, no tar, sha256', floorHash],
  ].map(([label, cmd]) => ({ label, cmd, wall: [], cpu: [] }));
  for (const r of rows) time(r.cmd);
  const load0 = loadavg()[0];
  for (let i = 0; i < RUNS; i++) for (const r of rows) r.wall.push(time(r.cmd, r.cpu));
  const mib = total / 1024 / 1024;
  const tar = median(rows[1].wall);
  console.log(`bench/ctx: ${FILES} files, ${mib.toFixed(0)} MiB, ${RUNS} runs each (page cache warm)`);
  const cpuOf = (xs) => (xs.length ? `, CPU ${median(xs).toFixed(0)} ms` : '');
  for (const r of rows) {
    const m = median(r.wall);
    console.log(`  ${r.label.padEnd(38)} median ${m.toFixed(0).padStart(5)} ms  (${(mib / (m / 1000)).toFixed(0)} MiB/s${cpuOf(r.cpu)})  ${(m / tar).toFixed(2)}× tar`);
  }
  console.log(`  load average ${load0.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after, on ${availableParallelism()} cores`);
  console.log(`  (CPU is user + sys of the pipeline, cat included, as /usr/bin/time counts it)`);
  const rss = maxRss(ours);
  if (rss !== undefined) console.log(`  tsd-ctx peak RSS ${(rss / 1024).toFixed(0)} MiB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
  rmSync(store, { recursive: true, force: true });
}
