// bench/build: tsd (`tsd-ctx DIR | tsd-build`) against `podman build --network none DIR`, side
// by side on the same contexts, runs alternating after one warm-up each; prints medians and the
// tsd/podman ratio, the median CPU time (user+sys of every process the command ran, bash's
// `times`) and the load average before and after each row. Two workloads:
//   small  a 5-step Dockerfile on a busybox base (COPY, RUN, ENV, WORKDIR, CMD): cold (--no-cache)
//          and as a cached rebuild
//   big    a context of many files copied into scratch (FROM scratch, COPY . /): cold and cached
// Sizes: small defaults (2,000 files, 30 MB); TSD_BENCH_FULL=1 for 20,000 files, 300 MB;
// TSD_BENCH_FILES, TSD_BENCH_MB, TSD_BENCH_RUNS for anything else; TSD_BENCH_ROWS=small or big
// runs only those rows (podman's big rows take 12–25 s a run). Needs root, runc, podman.
//   node bench/build/run.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const full = process.env.TSD_BENCH_FULL === '1';
const FILES = Number(process.env.TSD_BENCH_FILES ?? (full ? 20000 : 2000));
const MB = Number(process.env.TSD_BENCH_MB ?? (full ? 300 : 30));
const RUNS = Number(process.env.TSD_BENCH_RUNS ?? 5);
const ROWS = process.env.TSD_BENCH_ROWS ?? 'small,big';
const repo = resolve(import.meta.dirname, '..', '..');
const bin = (tool) => join(repo, 'bin', `tsd-${tool}`);
if (!existsSync(join(repo, 'dist', 'tsd-build.cjs'))) {
  console.error('bench/build: run `npm run build` first');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'tsd-bench-build-'));
const root = join(work, 'store');
const env = { ...process.env, TSD_ROOT: root };
const sh = (cmd) => {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', cmd], { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr.slice(-400)}`);
  return r.stdout;
};

// the base both builders start from: busybox from the host, in our store and in podman's
sh(`sh ${join(repo, 'examples/busybox-rootfs.sh')} | ${bin('store')} import -c 'CMD ["sh"]' localhost/busybox:latest`);
execFileSync('skopeo', ['copy', '-q', `oci:${root}:localhost/busybox:latest`, 'containers-storage:localhost/busybox:latest'], { stdio: 'ignore' });

// small: five steps
const small = join(work, 'small');
mkdirSync(small);
writeFileSync(join(small, 'app.sh'), '#!/bin/sh\necho app\n');
writeFileSync(join(small, 'Dockerfile'), 'FROM localhost/busybox:latest\nENV APP=/app\nWORKDIR /app\nCOPY app.sh .\nRUN chmod 755 app.sh && ./app.sh > out.txt\nCMD ["/app/app.sh"]\n');

// big: a deterministic tree, 100 files per directory; 98% small files (1–16 KiB), the rest of the
// bytes spread over the 2% large ones
const big = join(work, 'big');
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const large = Math.max(1, Math.floor(FILES * 0.02));
const sizes = Array.from({ length: FILES - large }, () => 1024 + Math.floor(rand() * 15 * 1024));
const each = Math.max(0, Math.floor((MB * 1024 * 1024 - sizes.reduce((a, b) => a + b, 0)) / large));
for (let i = 0; i < large; i++) sizes.push(each);
const pattern = Buffer.alloc(1 << 20);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7919 + (i >> 9)) & 0xff;
let bytes = 0;
sizes.forEach((size, i) => {
  const d = join(big, `d${Math.floor(i / 1000)}`, `s${Math.floor(i / 100) % 10}`);
  mkdirSync(d, { recursive: true });
  const body = Buffer.alloc(size);
  for (let o = 0; o < size; o += pattern.length) pattern.copy(body, o, 0, Math.min(pattern.length, size - o));
  body.writeUInt32LE(i, 0);
  writeFileSync(join(d, `f${i}.dat`), body);
  bytes += size;
});
writeFileSync(join(big, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');

const secs = (t) => {
  const m = /^(\d+)m([\d.]+)s$/.exec(t);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
};
// wall time and the CPU time (user+sys) of everything the command ran, from bash's `times`
const measureOne = (cmd) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', `${cmd}\ntimes`], { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr.slice(-400)}`);
  // the last line of `times` is the children's user and sys time
  const [user, sys] = r.stdout.trim().split('\n').pop().split(/\s+/).map(secs);
  return { wall, cpu: (user + sys) * 1000 };
};
const ms = (cmd) => measureOne(cmd).wall;
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const tsd = (dir, tag, cold) => `${bin('ctx')} ${dir} | ${bin('build')} -q -t ${tag}${cold ? ' --no-cache' : ''} > /dev/null`;
const podman = (dir, tag, cold) => `podman build -q --network none --format oci${cold ? ' --no-cache' : ''} -t ${tag} ${dir} > /dev/null`;

const rows = [];
const measure = (name, ours, theirs, runs) => {
  sh(ours);
  sh(theirs);
  const a = [];
  const b = [];
  const loadBefore = load();
  for (let i = 0; i < runs; i++) {
    a.push(measureOne(ours));
    b.push(measureOne(theirs));
  }
  const row = {
    name,
    tsd: median(a.map((x) => x.wall)),
    podman: median(b.map((x) => x.wall)),
    tsdCpu: median(a.map((x) => x.cpu)),
    podmanCpu: median(b.map((x) => x.cpu)),
    load: [loadBefore, load()],
  };
  rows.push(row);
  const f = (v) => (v / 1000).toFixed(3).padStart(7);
  console.log(
    `${name.padEnd(34)} tsd ${f(row.tsd)} s   podman ${f(row.podman)} s   ratio ${(row.tsd / row.podman).toFixed(2)}` +
      `   cpu tsd ${f(row.tsdCpu)} s podman ${f(row.podmanCpu)} s   load ${row.load[0]} -> ${row.load[1]}`,
  );
};

const bigRuns = full ? Math.min(RUNS, 3) : RUNS;
console.log(`bench/build: ${RUNS} runs (big: ${bigRuns}) each, medians; big context ${sizes.length} files, ${(bytes / 1048576).toFixed(0)} MB`);
try {
  if (ROWS.includes('small')) {
    measure('small, 5 steps, cold (--no-cache)', tsd(small, 'bench-small', true), podman(small, 'bench-small', true), RUNS);
    measure('small, 5 steps, cached rebuild', tsd(small, 'bench-small', false), podman(small, 'bench-small', false), RUNS);
  }
  if (ROWS.includes('big')) {
    measure('big context into scratch, cold', tsd(big, 'bench-big', true), podman(big, 'bench-big', true), bigRuns);
    measure('big context into scratch, cached', tsd(big, 'bench-big', false), podman(big, 'bench-big', false), bigRuns);
    const tarMs = median(Array.from({ length: bigRuns }, () => ms(`tar -cf - -C ${big} . | cat > /dev/null`)));
    console.log(`${'tar -cf of the big context'.padEnd(34)}     ${(tarMs / 1000).toFixed(3).padStart(7)} s`);
  }
  console.log(JSON.stringify({ v: 1, type: 'bench', bench: 'build', files: sizes.length, mb: Math.round(bytes / 1048576), rows }));
} finally {
  spawnSync('podman', ['rmi', '-f', 'bench-small', 'bench-big'], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
