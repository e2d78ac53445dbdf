// bench/store: tsd-store side by side with its peers, runs alternating so load on the machine
// falls on both alike. Prints medians and ratios.
//  1. start-up: `tsd-store --version` and `tsd-store ls` (empty store) against `node -e 0`
//     (goal ≤ 1.5 ×), Node started as bin/tsd-* start it: without NODE_EXTRA_CA_CERTS, which
//     Node 20 reads at start-up (src/registry/tls.ts); plain `node -e 0` is printed beside;
//  2. save and load of one image (busybox + one file of random bytes) against `podman save` and
//     `podman load` of the same image (goal ≤ 0.5 × podman). Both loads read the same file,
//     podman's own docker-archive; each load starts from an empty store / without the image.
//   node bench/store/run.mjs                       64 MB image, 4 runs, 30 start-up runs
//   TSD_BENCH_FULL=1 node bench/store/run.mjs      the issue's 300 MB image
//   TSD_BENCH_MB=… TSD_BENCH_RUNS=… TSD_BENCH_STARTUP_RUNS=…   any other size
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const full = process.env.TSD_BENCH_FULL === '1';
const MB = Number(process.env.TSD_BENCH_MB ?? (full ? 300 : 64));
const RUNS = Number(process.env.TSD_BENCH_RUNS ?? 4);
const STARTUP_RUNS = Number(process.env.TSD_BENCH_STARTUP_RUNS ?? 30);
const repo = resolve(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'tsd-store');
if (!existsSync(join(repo, 'dist', 'tsd-store.cjs'))) {
  console.error('bench/store: run `npm run build` first');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'tsd-bench-store-'));
const TAG = `localhost/tsd-bench-store:${process.pid}`;

/**
 * Runs a command under /usr/bin/time; returns wall milliseconds and records its CPU time (user +
 * system) in `cpu`, which a busy machine disturbs far less than wall time. Fails the bench if the
 * command fails.
 */
const cpuOf = new Map();
const timed = (cmd, args, opts = {}, cpu = undefined) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '@cpu %U %S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const m = /@cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (cpu && m) cpu.push((Number(m[1]) + Number(m[2])) * 1000);
  return ms;
};
const cpuList = (wall) => {
  if (!cpuOf.has(wall)) cpuOf.set(wall, []);
  return cpuOf.get(wall);
};
const sh = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rows = [];
const report = (what, ours, peerName, peer, goal) => {
  const ratio = median(ours) / median(peer);
  const cpuRatio = median(cpuList(ours)) / median(cpuList(peer));
  rows.push({ what, ours: median(ours), peerName, peer: median(peer), ratio, cpuOurs: median(cpuList(ours)), cpuPeer: median(cpuList(peer)), cpuRatio, goal, ok: ratio <= goal });
};

try {
  // ---- 1. start-up ------------------------------------------------------------------------
  const empty = join(work, 'empty');
  const env = { ...process.env, TSD_ROOT: empty };
  timed(bin, ['ls'], { env }); // creates the empty store once
  const node0 = [];
  const nodePlain = [];
  const version = [];
  const ls = [];
  const { NODE_EXTRA_CA_CERTS: extraCa, ...nodeEnv } = process.env;
  for (let i = 0; i < STARTUP_RUNS + 3; i++) {
    const warm = i < 3; // the first runs warm the page cache
    const a = timed(process.execPath, ['-e', '0'], { env: nodeEnv }, warm ? undefined : cpuList(node0));
    const b = timed(bin, ['--version'], {}, warm ? undefined : cpuList(version));
    const c = timed(bin, ['ls'], { env }, warm ? undefined : cpuList(ls));
    const d = extraCa ? timed(process.execPath, ['-e', '0'], {}) : undefined;
    if (!warm) node0.push(a), version.push(b), ls.push(c), d !== undefined && nodePlain.push(d);
  }
  if (extraCa) console.log(`node -e 0 with NODE_EXTRA_CA_CERTS set (as here): ${median(nodePlain).toFixed(1)} ms; without: ${median(node0).toFixed(1)} ms (the rows below)`);
  report('tsd-store --version', version, 'node -e 0', node0, 1.5);
  report('tsd-store ls (empty store)', ls, 'node -e 0', node0, 1.5);

  // ---- 2. save / load ---------------------------------------------------------------------
  const rootfs = join(work, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(rootfs, 'bin', 'busybox'));
  symlinkSync('busybox', join(rootfs, 'bin', 'sh'));
  const fd = openSync(join(rootfs, 'data.bin'), 'w');
  for (let left = MB; left > 0; left -= 4) writeSync(fd, randomBytes(Math.min(4, left) * 1024 * 1024));
  closeSync(fd);
  sh('tar', ['-C', rootfs, '-cf', join(work, 'rootfs.tar'), '.']);
  rmSync(rootfs, { recursive: true });
  const store = join(work, 'store');
  const senv = { ...process.env, TSD_ROOT: store };
  process.stderr.write(`bench/store: importing a ${MB} MB image…\n`);
  sh('sh', ['-c', `"${bin}" import ${TAG} < "${join(work, 'rootfs.tar')}" >/dev/null`], { env: senv });
  rmSync(join(work, 'rootfs.tar'));
  // podman gets the same image from tsd's own archive
  timed(bin, ['save', '-o', join(work, 'seed.tar'), TAG], { env: senv });
  sh('podman', ['load', '-q', '-i', join(work, 'seed.tar')]);
  rmSync(join(work, 'seed.tar'));

  const saveOurs = [];
  const savePodman = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(join(work, 'ours.tar'), { force: true });
    rmSync(join(work, 'podman.tar'), { force: true });
    // who goes first alternates: the one after pays for the other's write-back
    const ours = () => saveOurs.push(timed(bin, ['save', '-o', join(work, 'ours.tar'), TAG], { env: senv }, cpuList(saveOurs)));
    const theirs = () => savePodman.push(timed('podman', ['save', '-q', '-o', join(work, 'podman.tar'), TAG], {}, cpuList(savePodman)));
    if (i % 2 === 0) ours(), theirs();
    else theirs(), ours();
  }
  report(`save ${MB} MB image`, saveOurs, 'podman save', savePodman, 0.5);

  const loadOurs = [];
  const loadPodman = [];
  const loadOwn = [];
  for (let i = 0; i < RUNS; i++) {
    const fresh = join(work, `load-${i}`);
    loadOurs.push(timed(bin, ['load', '-i', join(work, 'podman.tar')], { env: { ...process.env, TSD_ROOT: fresh } }, cpuList(loadOurs)));
    rmSync(fresh, { recursive: true, force: true });
    sh('podman', ['rmi', '-f', TAG]);
    loadPodman.push(timed('podman', ['load', '-q', '-i', join(work, 'podman.tar')], {}, cpuList(loadPodman)));
    const own = join(work, `own-${i}`);
    loadOwn.push(timed(bin, ['load', '-i', join(work, 'ours.tar')], { env: { ...process.env, TSD_ROOT: own } }, cpuList(loadOwn)));
    rmSync(own, { recursive: true, force: true });
  }
  report(`load ${MB} MB (podman's archive)`, loadOurs, 'podman load', loadPodman, 0.5);
  report(`load ${MB} MB (tsd's own archive)`, loadOwn, 'podman load', loadPodman, 0.5);
} finally {
  spawnSync('podman', ['rmi', '-f', TAG], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}

const pad = (s, n) => String(s).padEnd(n);
const load = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ').slice(0, 3).join(' ');
console.log(`bench/store (medians; start-up ${STARTUP_RUNS} runs, save/load ${RUNS} runs; ratio = tsd / peer; load average ${load})`);
console.log(`${pad('what', 34)}${pad('tsd ms', 9)}${pad('peer', 13)}${pad('peer ms', 9)}${pad('ratio', 7)}${pad('cpu ms tsd/peer', 17)}${pad('cpu ratio', 10)}goal (wall)`);
for (const r of rows) {
  console.log(
    `${pad(r.what, 34)}${pad(r.ours.toFixed(1), 9)}${pad(r.peerName, 13)}${pad(r.peer.toFixed(1), 9)}${pad(r.ratio.toFixed(2), 7)}${pad(`${r.cpuOurs.toFixed(0)}/${r.cpuPeer.toFixed(0)}`, 17)}${pad(r.cpuRatio.toFixed(2), 10)}≤ ${r.goal} ${r.ok ? 'met' : 'NOT met'}`,
  );
}
