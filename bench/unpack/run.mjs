// bench/unpack: unpacking one gzip layer, tsd vs `umoci unpack` vs `tar -xzf`, side by side in
// one hyperfine run (each command a fresh process into a fresh directory, warm page cache).
// Prints medians and ratios. Default: 2,000 files / ~28 MB; TSD_BENCH_FULL=1: 20,000 files /
// ~282 MB (the issue's size). TSD_BENCH_RUNS overrides the number of runs; TSD_BENCH_DIR the
// work dir (the generated layer is kept there and reused); TSD_BENCH_LOOPFS=1 runs on a fresh
// loop-mounted ext4 (root only; see README.md for why).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

const here = resolve(import.meta.dirname);
const repo = resolve(here, '..', '..');
const full = process.env.TSD_BENCH_FULL === '1';
const files = full ? 20_000 : 2_000;
const targetBytes = full ? 282e6 : 28.2e6;
const runs = Number(process.env.TSD_BENCH_RUNS ?? (full ? 3 : 7));
const work = process.env.TSD_BENCH_DIR ?? `/var/tmp/tsd-bench-unpack-${files}`;
const layout = join(work, 'layout');
// TSD_BENCH_LOOPFS=1: run on a fresh ext4 file system mounted from a sparse file (root only).
// On a long-used, shared ext4, file creation can cost 300-600 µs of kernel time per file in every
// tool alike (ext4's inode allocator scans the inodes deleted in the last minutes: perf shows
// recently_deleted/find_inode_bit), which buries the tools' own per-file cost; see README.md.
const loopImage = process.env.TSD_BENCH_LOOPFS === '1' ? `${work}.ext4` : undefined;

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
for (const cmd of ['hyperfine', 'tar']) if (!have(cmd)) throw new Error(`bench/unpack needs ${cmd}`);
if (!existsSync(join(repo, 'dist', 'index.mjs'))) execFileSync('node', ['scripts/build.mjs'], { cwd: repo, stdio: 'inherit' });

class Hash extends Transform {
  constructor() {
    super();
    this.hash = createHash('sha256');
    this.size = 0;
  }
  _transform(chunk, _e, done) {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  digest() {
    this.result ??= `sha256:${this.hash.digest('hex')}`;
    return this.result;
  }
}

/** A layer like a distro image's: many small files, a few big ones, dirs 3 deep, some links. Text-like content (compresses ~2.5x). */
const makeLayer = async () => {
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  const pack = tar.pack();
  const diff = new Hash();
  const blob = new Hash();
  const tmp = join(layout, 'layer.tmp');
  const done = pipeline(pack, diff, createGzip({ level: 6 }), blob, createWriteStream(tmp));
  const big = Math.max(1, Math.round(files / 200));
  const smallBytes = targetBytes * 0.6;
  const bigBytes = (targetBytes - smallBytes) / big;
  const words = Array.from({ length: 4096 }, () => randomBytes(3 + (randomBytes(1)[0] % 8)).toString('base64url'));
  const text = (n) => {
    const parts = [];
    let len = 0;
    while (len < n) {
      const w = words[randomBytes(2).readUInt16LE() % words.length];
      parts.push(w);
      len += w.length + 1;
    }
    return Buffer.from(parts.join(' ')).subarray(0, n);
  };
  const entry = (header, body) => new Promise((res, rej) => pack.entry({ mtime: new Date(1_700_000_000_000), uid: 0, gid: 0, ...header }, body, (e) => (e ? rej(e) : res())));
  const dirs = new Set();
  let written = 0;
  for (let i = 0; i < files; i++) {
    const dir = `usr/share/d${i % 40}/s${Math.floor(i / 40) % 25}`;
    for (const d of [`usr/`, `usr/share/`, `usr/share/d${i % 40}/`, `${dir}/`]) {
      if (!dirs.has(d)) {
        dirs.add(d);
        await entry({ name: d, type: 'directory', mode: 0o755 });
      }
    }
    const name = `${dir}/file-${i}.txt`;
    if (i % 500 === 7) await entry({ name: `${dir}/link-${i}`, type: 'symlink', linkname: `file-${i - 1}.txt` });
    const size = i < big ? Math.round(bigBytes) : Math.max(16, Math.round((smallBytes / (files - big)) * (0.2 + 1.6 * ((i * 7919) % 1000) / 1000)));
    written += size;
    await entry({ name, mode: i % 100 === 0 ? 0o755 : 0o644 }, text(size));
  }
  pack.finalize();
  await done;
  const digest = blob.digest();
  renameSync(tmp, join(layout, 'blobs', 'sha256', digest.slice(7)));
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.size };
  const put = (obj) => {
    const bytes = Buffer.from(JSON.stringify(obj));
    const d = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(layout, 'blobs', 'sha256', d), bytes);
    return { digest: `sha256:${d}`, size: bytes.length };
  };
  const config = put({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diff.digest()] }, history: [{ created_by: 'bench' }] });
  const manifest = put({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [layer] });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  const info = { layer, diffId: diff.digest(), files, bytes: written, tarSize: diff.size };
  writeFileSync(join(work, 'layer.json'), JSON.stringify(info));
  return info;
};

mkdirSync(work, { recursive: true });
const info = existsSync(join(work, 'layer.json')) ? JSON.parse(readFileSync(join(work, 'layer.json'), 'utf8')) : (process.stderr.write('generating the layer…\n'), await makeLayer());
// where the runs happen: `work`, or a fresh ext4 with a copy of the layout on it
let base = work;
if (loopImage) {
  const mnt = `${work}.mnt`;
  execFileSync('sh', ['-c', `umount ${mnt} 2>/dev/null; rm -f ${loopImage} && truncate -s 8G ${loopImage} && mkfs.ext4 -q -F ${loopImage} && mkdir -p ${mnt} && mount -o loop ${loopImage} ${mnt} && cp -a ${layout} ${mnt}/ && rm -rf ${mnt}/layout/snapshots ${mnt}/layout/locks`]);
  process.on('exit', () => spawnSync('sh', ['-c', `umount ${mnt} && rm -f ${loopImage} && rmdir ${mnt}`]));
  base = mnt;
}
const runLayout = join(base, 'layout');
const blobPath = join(runLayout, 'blobs', 'sha256', info.layer.digest.slice(7));
const out = join(base, 'out');
const mb = (n) => (n / 1e6).toFixed(1);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`layer: ${info.files} files, ${mb(info.tarSize)} MB tar, ${mb(statSync(blobPath).size)} MB gzip; ${runs} runs each; work dir ${base}${loopImage ? ' (a fresh ext4)' : ''}`);

const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
// untimed: remove the last output and flush every dirty page, so no run pays for another's writeback
const clean = `rm -rf ${q(out)} ${q(join(runLayout, 'snapshots'))} ${q(join(runLayout, 'locks'))} && mkdir -p ${q(out)} && sync`;
const commands = [
  ['tsd', `node ${q(join(here, 'tsd-unpack.mjs'))} ${q(runLayout)} ${q(JSON.stringify(info.layer))} ${info.diffId} nosync`],
  ['tsd+syncfs', `node ${q(join(here, 'tsd-unpack.mjs'))} ${q(runLayout)} ${q(JSON.stringify(info.layer))} ${info.diffId} sync`],
  ['tar -xzf', `tar -xzf ${q(blobPath)} -C ${q(out)}`],
];
if (have('umoci')) commands.push(['umoci unpack', `umoci --log error unpack --image ${q(runLayout)}:bench ${q(join(out, 'bundle'))}`]);
else console.log('umoci not installed: skipped');

const json = join(work, 'hyperfine.json');
execFileSync('hyperfine', ['--runs', String(runs), '--warmup', '1', '--prepare', clean, '--export-json', json, '--style', 'none', ...commands.flatMap(([n, c]) => ['-n', n, c])], { stdio: ['ignore', 'ignore', 'inherit'] });
const results = JSON.parse(readFileSync(json, 'utf8')).results;
const median = Object.fromEntries(results.map((r) => [r.command, r.median]));
const pad = (s, n) => String(s).padEnd(n);
console.log(`\n${pad('command', 14)} ${pad('median s', 9)} ${pad('min s', 7)} ${pad('max s', 7)}`);
for (const r of results) console.log(`${pad(r.command, 14)} ${pad(r.median.toFixed(3), 9)} ${pad(r.min.toFixed(3), 7)} ${pad(r.max.toFixed(3), 7)}`);
const ratio = (a, b) => (median[a] !== undefined && median[b] !== undefined ? (median[a] / median[b]).toFixed(2) : 'n/a');
console.log(`\ntsd / tar        = ${ratio('tsd', 'tar -xzf')}   (goal ≤ 1.3)`);
console.log(`tsd / umoci      = ${ratio('tsd', 'umoci unpack')}   (goal ≤ 0.7)`);
console.log(`tsd+syncfs / tar = ${ratio('tsd+syncfs', 'tar -xzf')}   (tar and umoci do not sync)`);
console.log(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
rmSync(out, { recursive: true, force: true });
