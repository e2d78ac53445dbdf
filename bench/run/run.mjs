// bench/run: the cost of starting a container, side by side in one run (interleaved):
//   tsd-run --rm IMAGE true                 (ours: Node start, overlay mount, runc run, cleanup)
//   runc run of a prepared bundle           (the floor: what any runc-based tool must pay)
//   node -e 0                               (Node's own start-up)
//   node -e 0 without NODE_EXTRA_CA_CERTS   (when it is set: Node as bin/tsd-* start it, see
//                                            src/registry/tls.ts; Node reads that file at start-up)
//   podman run --rm --network none IMAGE true   (the peer, when installed)
// and a second container of a ~300 MB image against one of a ~1 MB image (snapshots are shared,
// so start time must not grow with image size). Runs are interleaved (see below); prints medians,
// minimums and the goals' ratios.
// Each command runs under bench/run/timed.c (wait4): wall time and CPU time (user + sys) of its
// process tree.
// Usage: node bench/run/run.mjs   (re-runs itself under tsx; TSD_BENCH_RUNS=N, default 30)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';

const repo = resolve(import.meta.dirname, '..', '..');
if (!process.env.TSD_BENCH_UNDER_TSX) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename], { stdio: 'inherit', cwd: repo, env: { ...process.env, TSD_BENCH_UNDER_TSX: '1' } });
  process.exit(r.status ?? 1);
}
const runs = Number(process.env.TSD_BENCH_RUNS ?? 30);
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
execFileSync('node', ['scripts/build.mjs'], { cwd: repo, stdio: 'inherit' });

const { tempStore } = await import('../../test/support/tsd.ts');
const { busyboxImage, busyboxLayer } = await import('../../test/run/busybox.ts');
const { runtimeSpec } = await import('../../src/run/spec.ts');
const { hostNofile } = await import('../../src/run/create.ts');
const { randomBytes } = await import('node:crypto');

const p = await tempStore();
const work = mkdtempSync(join(tmpdir(), 'tsd-bench-run-'));
process.stderr.write('bench/run: making the images (the big one takes a while)\n');
await busyboxImage(p, 'docker.io/library/small:bench', { Cmd: ['true'], Env: ['PATH=/bin'] });
const big = Array.from({ length: 30 }, (_, i) => ({ name: `data/blob${i}`, content: randomBytes(10 * 1024 * 1024) }));
await busyboxImage(p, 'docker.io/library/big:bench', { Cmd: ['true'], Env: ['PATH=/bin'] }, [[{ name: 'data/', type: 'directory' }, ...big]]);

// the prepared bundle for raw runc: the same busybox files and the same confinement
const bundle = join(work, 'bundle');
const rootfs = join(bundle, 'rootfs');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
cpSync('/usr/bin/busybox', join(rootfs, 'bin', 'true'));
const spec = runtimeSpec({ image: { Cmd: ['/bin/true'], Env: ['PATH=/bin'] }, rootfs, hostname: 'bench', host: { nofile: hostNofile() }, readonly: true });
if (spec._tag === 'Left') throw new Error(spec.left.message);
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec.right));

// each run of each command in turn (interleaved), so a load spike on this shared machine falls
// on all of them alike instead of on whichever block hyperfine happened to be running
const env = { ...process.env, TSD_ROOT: p.root };
const tsdRun = (img) => [join(repo, 'bin', 'tsd-run'), ['--rm', img, 'true']];
for (const img of ['small:bench', 'big:bench']) execFileSync(...tsdRun(img), { env, stdio: 'inherit' });
let n = 0;
// bin/tsd-* start Node with NODE_EXTRA_CA_CERTS moved aside (Node 20 parses that file at start-up)
const NODE_AS_TSD = 'node -e 0, NODE_EXTRA_CA_CERTS unset';
const { NODE_EXTRA_CA_CERTS: _extraCa, ...nodeAsTsdEnv } = env;
const commands = [
  ['tsd-run --rm IMAGE true', () => tsdRun('small:bench')],
  ['runc run (prepared bundle)', () => ['runc', ['run', '--bundle', bundle, `tsd-bench-${process.pid}-${n++}`]]],
  ['node -e 0', () => ['node', ['-e', '0']]],
  ...(process.env.NODE_EXTRA_CA_CERTS ? [[NODE_AS_TSD, () => ['node', ['-e', '0'], nodeAsTsdEnv]]] : []),
  ['tsd-run, 300 MB image', () => tsdRun('big:bench')],
];
if (have('podman')) {
  const tarball = join(work, 'rootfs.tar');
  const flat = join(work, 'flat');
  mkdirSync(flat);
  execFileSync('sh', ['-c', `mkdir -p ${flat}/bin && cp /usr/bin/busybox ${flat}/bin/busybox && ln -s busybox ${flat}/bin/true && ln -s busybox ${flat}/bin/sh && tar -C ${flat} -cf ${tarball} .`]);
  execFileSync('sh', ['-c', `podman import -q -c 'ENV PATH=/bin' ${tarball} localhost/tsd-bench:small >/dev/null`]);
  execFileSync('podman', ['run', '--rm', '--network', 'none', 'localhost/tsd-bench:small', 'true'], { stdio: 'inherit' });
  commands.push(['podman run --rm --network none IMAGE true', () => ['podman', ['run', '--rm', '--network', 'none', 'localhost/tsd-bench:small', 'true']]]);
}
// timed.c waits for each command with wait4: wall time and the CPU time (user + sys) of its whole
// process tree, which on a shared machine says more than wall time (queueing is not work)
const meter = join(work, 'timed');
execFileSync(process.env.CC ?? 'cc', ['-O2', '-o', meter, join(repo, 'bench', 'run', 'timed.c')]);
const times = Object.fromEntries(commands.map(([name]) => [name, []]));
const cpu = Object.fromEntries(commands.map(([name]) => [name, []]));
const once = (make, name) => {
  const [cmd, args, cmdEnv = env] = make();
  const r = spawnSync(meter, [cmd, ...args], { env: cmdEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  const [wall, user, sys, status] = r.stderr.toString().trim().split('\n').at(-1).split(' ').map(Number);
  if (r.status !== 0 || status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${status}: ${r.stderr}`);
  if (name) cpu[name].push((user + sys) / 1000);
  return wall / 1000;
};
for (let i = 0; i < 3; i++) for (const [, make] of commands) once(make); // warm-up
for (let i = 0; i < runs; i++) for (const [name, make] of commands) times[name].push(once(make, name));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
const min = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.min(...v)]));
const cpuMed = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)]));
const ms = (x) => `${x.toFixed(1)} ms`;
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`\nbench/run: start-to-exit of one container running \`true\`, ${runs} interleaved runs each (load average ${load})`);
console.log(`  ${'command'.padEnd(44)} ${'median'.padStart(10)} ${'min'.padStart(10)} ${'CPU median'.padStart(11)}`);
for (const [name] of commands) console.log(`  ${name.padEnd(44)} ${ms(med[name]).padStart(10)} ${ms(min[name]).padStart(10)} ${ms(cpuMed[name]).padStart(11)}`);
const ours = med['tsd-run --rm IMAGE true'];
const floor = med['runc run (prepared bundle)'];
// goal 1 against Node as the binaries start it; with NODE_EXTRA_CA_CERTS set, against plain `node -e 0` too
const goal1 = (nodeRow) => {
  const node = med[nodeRow];
  const label = nodeRow === 'node -e 0' ? 'node' : `node (${nodeRow.slice('node -e 0, '.length)})`;
  console.log(`  goal 1: tsd-run <= runc + ${label} + 40 ms: ${ms(ours)} vs ${ms(floor + node + 40)} -> ${ours <= floor + node + 40 ? 'met' : 'NOT met'} (tsd-run - runc - node = ${ms(ours - floor - node)}; by minimums ${ms(min['tsd-run --rm IMAGE true'] - min['runc run (prepared bundle)'] - min[nodeRow])}; by CPU ${ms(cpuMed['tsd-run --rm IMAGE true'] - cpuMed['runc run (prepared bundle)'] - cpuMed[nodeRow])})`);
};
console.log('');
if (med[NODE_AS_TSD] !== undefined) goal1(NODE_AS_TSD);
goal1('node -e 0');
if (med['podman run --rm --network none IMAGE true'] !== undefined) {
  const pod = med['podman run --rm --network none IMAGE true'];
  console.log(`  goal 2: tsd-run <= 0.6 x podman: ${(ours / pod).toFixed(2)} x podman (${ms(ours)} vs ${ms(pod)}) -> ${ours <= 0.6 * pod ? 'met' : 'NOT met'}`);
  execFileSync('sh', ['-c', 'podman rmi -f localhost/tsd-bench:small >/dev/null 2>&1 || true']);
}
console.log(`  300 MB image vs 1 MB image: ${(med['tsd-run, 300 MB image'] / ours).toFixed(2)} x (${ms(med['tsd-run, 300 MB image'])} vs ${ms(ours)})`);
rmSync(work, { recursive: true, force: true });
rmSync(p.root, { recursive: true, force: true });
