// bench/pull: tsd-pull against `skopeo copy docker://… oci:…` from the same local registry,
// side by side (runs alternate), cold (empty store / empty layout) and warm (everything present).
// Also `node -e 0` (the floor of any Node tool's start-up; as bin/tsd-* start Node, without
// NODE_EXTRA_CA_CERTS, which Node 20 reads at start-up: src/registry/tls.ts) and, when podman works here,
// `tsd-pull --unpack` (ready to run) against `podman pull` (which also unpacks).
//   node bench/pull/run.mjs                   small sizes: 1 MB, 64 MB, 30 × 1 MB
//   TSD_BENCH_FULL=1 node bench/pull/run.mjs  the sizes: 1 MB, 300 MB, 30 × 5 MB
//   TSD_BENCH_BIG_MB=… TSD_BENCH_LAYER_MB=… TSD_BENCH_RUNS=…   any other size
//   TSD_BENCH_ROWS=small,big,many,unpack                          only these rows (default all)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { tsImport } from 'tsx/esm/api';

const full = process.env.TSD_BENCH_FULL === '1';
const BIG_MB = Number(process.env.TSD_BENCH_BIG_MB ?? (full ? 300 : 64));
const LAYER_MB = Number(process.env.TSD_BENCH_LAYER_MB ?? (full ? 5 : 1));
const RUNS = Number(process.env.TSD_BENCH_RUNS ?? 5);
const ROWS = new Set((process.env.TSD_BENCH_ROWS ?? 'small,big,many,unpack').split(','));
const repo = resolve(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'tsd-pull');
if (!existsSync(join(repo, 'dist', 'tsd-pull.cjs'))) {
  console.error('bench/pull: run `npm run build` first');
  process.exit(1);
}
const { startRegistry, OciLayout, skopeoCopy } = await tsImport('../../test/support/registry.ts', import.meta.url);

const work = mkdtempSync(join(tmpdir(), 'tsd-bench-pull-'));
const reg = await startRegistry();
const MiB = 1024 * 1024;

const seed = async (name, layerSizes) => {
  const layout = new OciLayout(join(work, `layout-${name}`));
  const layers = [];
  for (const size of layerSizes) layers.push(await layout.bigLayer(size, true));
  layout.image(layers, { tag: 'v1' });
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${reg.host}/bench/${name}:v1`);
  rmSync(layout.dir, { recursive: true, force: true });
  return `${reg.host}/bench/${name}:v1`;
};

const images = [];
if (ROWS.has('small')) images.push({ name: 'small (1 MB, 1 layer)', ref: await seed('small', [1 * MiB]), timed: true, small: true });
if (ROWS.has('big') || ROWS.has('unpack')) images.push({ name: `big (${BIG_MB} MB, 1 layer)`, ref: await seed('big', [BIG_MB * MiB]), big: true, timed: ROWS.has('big') });
if (ROWS.has('many')) images.push({ name: `30 layers × ${LAYER_MB} MB`, ref: await seed('many', Array.from({ length: 30 }, () => LAYER_MB * MiB)), timed: true });

// wall time, and CPU time (user + sys, from GNU time) which a busy shared machine disturbs less
const cpuOf = new Map();
const time = (cmd, args, env = {}, baseEnv = process.env) => {
  // untimed: flush what earlier runs left dirty, so no run pays for another's writeback (a tool
  // that makes its data durable, as tsd does, would otherwise also write the previous tool's pages)
  spawnSync('sync');
  const t = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu=%U+%S', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...baseEnv, ...env } });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const m = /cpu=([\d.]+)\+([\d.]+)/.exec(String(r.stderr));
  cpuOf.set(s, m ? Number(m[1]) + Number(m[2]) : NaN);
  return s;
};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fresh = (prefix) => mkdtempSync(join(work, prefix));

const tsdPull = (root, ref, extra = []) => time(bin, ['-q', ...extra, ref], { TSD_ROOT: root });
const skopeoPull = (dir, ref) => time('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]);

const rows = [];
const row = (name, ours, theirs, peer) => {
  const cpu = (xs) => median(xs.map((x) => cpuOf.get(x)));
  rows.push({ name, ours: median(ours), theirs: median(theirs), peer });
  const r = rows[rows.length - 1];
  console.log(
    `${name.padEnd(34)} tsd ${r.ours.toFixed(3)} s   ${peer} ${r.theirs.toFixed(3)} s   tsd/${peer} ${(r.ours / r.theirs).toFixed(2)}` +
      `   cpu ${cpu(ours).toFixed(2)}/${cpu(theirs).toFixed(2)} s = ${(cpu(ours) / cpu(theirs)).toFixed(2)}`,
  );
};

console.log(`bench/pull: ${RUNS} runs each, medians; registry ${reg.host}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
for (const img of images.filter((i) => i.timed)) {
  // one untimed warm-up each, so both start with the registry's caches and the page cache hot
  tsdPull(fresh('w-'), img.ref);
  skopeoPull(join(fresh('w-'), 'oci'), img.ref);
  const cold = { ours: [], theirs: [] };
  let root;
  let dir;
  for (let i = 0; i < RUNS; i++) {
    root = fresh('tsd-');
    dir = join(fresh('sk-'), 'oci');
    if (i % 2 === 0) {
      cold.ours.push(tsdPull(root, img.ref));
      cold.theirs.push(skopeoPull(dir, img.ref));
    } else {
      cold.theirs.push(skopeoPull(dir, img.ref));
      cold.ours.push(tsdPull(root, img.ref));
    }
  }
  row(`${img.name}, cold`, cold.ours, cold.theirs, 'skopeo');
  const warm = { ours: [], theirs: [] };
  for (let i = 0; i < RUNS; i++) {
    warm.ours.push(tsdPull(root, img.ref));
    warm.theirs.push(skopeoPull(dir, img.ref));
  }
  row(`${img.name}, warm`, warm.ours, warm.theirs, 'skopeo');
  if (img.big) img.warmTsd = median(warm.ours);
}

const { NODE_EXTRA_CA_CERTS: extraCa, ...nodeEnv } = process.env;
const node0 = [];
const nodePlain = [];
for (let i = 0; i < RUNS; i++) {
  node0.push(time(process.execPath, ['-e', '0'], {}, nodeEnv));
  if (extraCa) nodePlain.push(time(process.execPath, ['-e', '0']));
}
const warmSmall = rows.find((r) => r.name.startsWith('small') && r.name.endsWith('warm'));
if (warmSmall) console.log(`${'node -e 0'.padEnd(34)} ${median(node0).toFixed(3)} s   warm small pull / node -e 0 = ${(warmSmall.ours / median(node0)).toFixed(2)}   cpu ${median(node0.map((x) => cpuOf.get(x))).toFixed(2)} s`);
if (warmSmall && extraCa) console.log(`${'node -e 0, NODE_EXTRA_CA_CERTS set'.padEnd(34)} ${median(nodePlain).toFixed(3)} s   warm small pull / that = ${(warmSmall.ours / median(nodePlain)).toFixed(2)}`);

// ready to run: tsd-pull --unpack against podman pull (which unpacks into its own storage)
const big = images.find((i) => i.big);
const podmanPull = (dir) =>
  time('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay', 'pull', '-q', '--tls-verify=false', `docker://${big.ref}`]);
let podmanOk = false;
if (ROWS.has('unpack')) try {
  podmanPull(fresh('pd-'));
  podmanOk = true;
} catch (e) {
  console.log(`podman pull does not work here (${String(e.message).split('\n')[0].slice(0, 160)}); skipping the unpack row`);
}
if (podmanOk) {
  const ours = [];
  const theirs = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(tsdPull(fresh('tsu-'), big.ref, ['--unpack']));
    theirs.push(podmanPull(fresh('pd-')));
  }
  row(`${big.name}, pull+unpack`, ours, theirs, 'podman');
}

console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
await reg.stop();
spawnSync('sh', ['-c', `umount -R ${work}/pd-* 2>/dev/null; true`]);
rmSync(work, { recursive: true, force: true });
