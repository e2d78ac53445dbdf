// Concurrency (issue 7): 16 shell pipelines at once against one store: overlapping pulls of the
// same images (through a counting proxy in front of a real registry), builds on those images as
// bases, pull | run, import, save | load, a tag storm, and gc and prune looping in the middle of
// them. Checks: every pipeline ends (no deadlock) with exit 0 and the right output, every blob is
// fetched from the registry exactly once, no tag is lost, fsck is clean, and the lock waits that
// TSD_LOCK_STATS records are reported (p50, p99, max).
// CI size: one round of 16. Long form: `npm run stress` (TSD_STRESS_ROUNDS, TSD_STRESS_PIPELINES).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { freePort, OciLayout, skopeoCopy, startRegistry, type LayoutLayer, type Registry } from '../support/registry.js';
import { REPO, removeDir, tempDir, tsd } from '../support/tsd.js';

const ROUNDS = Number(process.env.TSD_STRESS_ROUNDS ?? 1);
const PIPELINES = Number(process.env.TSD_STRESS_PIPELINES ?? 16);
const PIPELINE_TIMEOUT_MS = Number(process.env.TSD_STRESS_TIMEOUT_MS ?? 150_000);

let reg: Registry;
let proxy: CountingProxy;
let work: string;
const images: Record<string, { digest: string; blobs: string[]; says: string }> = {};
const sizes = new Map<string, number>();

interface CountingProxy {
  readonly host: string;
  /** per blob digest: GET requests, and body bytes the registry actually delivered */
  readonly blobs: Map<string, { gets: number; bytes: number; lines: string[] }>;
  stop(): Promise<void>;
}

/**
 * A proxy on loopback that counts, per blob, the GETs and the body bytes delivered to tsd. A blob
 * fetched once has delivered exactly its size, whatever a retry of a reset connection added in
 * requests (a resumed or refused request delivers no byte twice).
 */
const startCountingProxy = async (target: string): Promise<CountingProxy> => {
  const blobs = new Map<string, { gets: number; bytes: number; lines: string[] }>();
  const [targetHost, targetPort] = target.split(':');
  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? /\/blobs\/(sha256:[a-f0-9]{64})/.exec(req.url ?? '') : null;
    const entry = m ? (blobs.get(m[1]!) ?? blobs.set(m[1]!, { gets: 0, bytes: 0, lines: [] }).get(m[1]!)!) : undefined;
    if (entry) entry.gets++;
    const up = http.request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const status = upRes.statusCode ?? 0;
      let sent = 0;
      upRes.on('data', (c: Buffer) => {
        if (status === 200 || status === 206) sent += c.length;
      });
      upRes.on('end', () => {
        if (entry) {
          entry.bytes += sent;
          entry.lines.push(`${status} ${req.headers.range ?? 'whole'} ${sent} bytes`);
        }
      });
      upRes.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`,
    blobs,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
};

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The busybox root file system as a gzip layer (examples/busybox-rootfs.sh). */
const busyboxLayer = (layout: OciLayout): LayoutLayer => {
  const raw = execFileSync('sh', [join(REPO, 'examples', 'busybox-rootfs.sh')], { maxBuffer: 64 << 20 });
  const gz = gzipSync(raw, { level: 1 });
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layout.put(gz), diffId: sha256(raw) };
};

test.before(async () => {
  reg = await startRegistry();
  proxy = await startCountingProxy(reg.host);
  work = tempDir('tsd-concurrency-');
  const layout = new OciLayout(join(work, 'layout'));
  const base = busyboxLayer(layout);
  const shared = await layout.bigLayer(2_000_000, true);
  const own = async (name: string) => layout.smallLayer({ [`${name}.txt`]: `${name} says hello\n` });
  const specs: Record<string, LayoutLayer[]> = { a: [base, await own('a')], b: [base, shared, await own('b')], c: [base, shared, await own('c')] };
  for (const [name, layers] of Object.entries(specs)) {
    const configText = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['cat', `/${name}.txt`], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } });
    const m = layout.image(layers, { tag: name, configText });
    await skopeoCopy(`oci:${layout.dir}:${name}`, `docker://${reg.host}/conc/${name}:1`);
    images[name] = { digest: m.digest, blobs: [m.config, ...layers.map((l) => l.digest)], says: `${name} says hello\n` };
    sizes.set(m.config, Buffer.byteLength(configText));
    for (const l of layers) sizes.set(l.digest, l.size);
  }
});

test.after(async () => {
  await proxy.stop();
  await reg.stop();
  if (process.env.TSD_KEEP) console.log(`kept ${work}`);
  else removeDir(work);
});

interface Pipeline {
  readonly name: string;
  readonly script: string;
  /** tags that must exist at the end */
  readonly tags: readonly string[];
  /** what stdout must hold */
  readonly stdout?: RegExp;
}

const ref = (name: string) => `${proxy.host}/conc/${name}:1`;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The i-th pipeline of a round: the 16 kinds of the issue, repeated when there are more. */
const pipeline = (i: number, ctxRoot: string): Pipeline => {
  const img = ['a', 'b', 'c'][i % 3]!;
  const kind = i % 16;
  switch (kind) {
    case 0: case 1: case 2: case 3: {
      const tag = `localhost/pulled-${i}:1`;
      return { name: `pull ${img} && tag`, script: `tsd-pull -q ${ref(img)} && tsd-store tag ${ref(img)} ${tag} >/dev/null`, tags: [ref(img), tag], stdout: /"type":"image"/ };
    }
    case 4: case 5: case 6:
      return { name: `pull ${img} | run`, script: `tsd-pull -q ${ref(img)} | tsd-run --rm`, tags: [ref(img)], stdout: new RegExp(`^${img} says hello\\n$`) };
    case 7: case 8: case 9: case 10: {
      const dir = join(ctxRoot, `ctx-${i}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'Dockerfile'), `FROM ${ref(img)}\nCOPY note /note\nRUN cat /${img}.txt /note > /built\nCMD ["cat", "/built"]\n`);
      writeFileSync(join(dir, 'note'), `built by pipeline ${i}\n`);
      const tag = `localhost/built-${i}:1`;
      return { name: `build FROM ${img}`, script: `tsd-ctx ${q(dir)} | tsd-build -q -t ${tag} | tsd-run --rm`, tags: [tag, ref(img)], stdout: new RegExp(`^${img} says hello\\nbuilt by pipeline ${i}\\n$`) };
    }
    case 11: {
      const tag = `localhost/imported-${i}:1`;
      // an untagged import of the same root file system too: garbage for prune, sharing its layer
      const rootfs = `sh ${q(join(REPO, 'examples', 'busybox-rootfs.sh'))}`;
      // and a run of an image whose name then goes: its snapshot is garbage for the gc loop
      const scratch = `localhost/scratch-${i}:1`;
      const runGone = `tar -C / -cf - usr/bin/busybox | tsd-store import ${scratch} >/dev/null && tsd-run --rm ${scratch} /usr/bin/busybox true && tsd-store rm ${scratch} >/dev/null 2>&1`;
      return { name: 'import', script: `${rootfs} | tsd-store import -c 'CMD ["sh"]' ${tag} && ${rootfs} | tsd-store import -m untagged >/dev/null && ${runGone}`, tags: [tag], stdout: /"type":"image"/ };
    }
    case 12: {
      const tag = `localhost/loaded-${i}:1`;
      return { name: 'save | load', script: `tsd-pull -q ${ref(img)} >/dev/null && tsd-store tag ${ref(img)} ${tag} >/dev/null && tsd-store save ${tag} | tsd-store load`, tags: [tag, ref(img)], stdout: /"type":"image"/ };
    }
    case 13: {
      const tags = [1, 2, 3, 4, 5].map((k) => `localhost/storm-${i}:${k}`);
      return { name: 'tag storm', script: `tsd-pull -q ${ref(img)} >/dev/null && for t in ${tags.join(' ')}; do tsd-store tag ${ref(img)} $t >/dev/null || exit 1; done`, tags: [...tags, ref(img)] };
    }
    case 14:
      return { name: 'gc loop', script: 'for k in 1 2 3 4 5 6; do sleep 0.8; tsd-store gc --json || exit 1; done', tags: [] };
    default:
      return { name: 'prune loop', script: 'for k in 1 2 3 4; do sleep 1.3; tsd-store prune --json || exit 1; done', tags: [] };
  }
};

interface Done {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

const runPipeline = (script: string, env: NodeJS.ProcessEnv): Promise<Done> =>
  new Promise((done) => {
    const started = Date.now();
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { env: { ...process.env, ...env, PATH: `${join(REPO, 'bin')}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${PIPELINE_TIMEOUT_MS} ms: deadlock?]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    }, PIPELINE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: Date.now() - started });
    });
  });

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

test(`${PIPELINES} pipelines at once against one store, ${ROUNDS} round(s): no deadlock, blobs fetched once, no tag lost`, async () => {
  const stats = join(work, 'lock-waits.txt');
  rmSync(stats, { force: true });
  let pipelinesRun = 0;
  let fetches = 0;
  let requests = 0;
  let snapshotsCollected = 0;
  let lostTags = 0;
  let slowest = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const root = join(work, `store-${round}`);
    const ctxRoot = join(work, `ctx-${round}`);
    proxy.blobs.clear();
    const plan = Array.from({ length: PIPELINES }, (_, i) => pipeline(i, ctxRoot));
    // no grace for young snapshots: only roots, containers and leases keep what is in flight
    const results = await Promise.all(plan.map((p) => runPipeline(p.script, { TSD_ROOT: root, TSD_LOCK_STATS: stats, TSD_SNAPSHOT_GRACE_MS: '0' })));
    pipelinesRun += plan.length;
    for (const [i, r] of results.entries()) {
      const p = plan[i]!;
      slowest = Math.max(slowest, r.ms);
      assert.is(r.code, 0, `round ${round} pipeline ${i} (${p.name}) exited ${r.code}: ${r.stderr}`);
      if (p.stdout) assert.match(r.stdout, p.stdout, `round ${round} pipeline ${i} (${p.name}) printed ${JSON.stringify(r.stdout)}`);
    }
    // snapshots gc collected meanwhile (the gc loop's JSON), and after the round
    const final = await runPipeline('tsd-store gc --json', { TSD_ROOT: root, TSD_SNAPSHOT_GRACE_MS: '0' });
    assert.is(final.code, 0, final.stderr);
    for (const r of [...results, final]) {
      for (const line of r.stdout.split('\n')) if (line.startsWith('{"v":1,"type":"gc"')) snapshotsCollected += (JSON.parse(line).snapshotsRemoved as unknown[]).length;
    }
    // every blob of every image pulled was fetched exactly once: its bytes delivered once
    const expected = new Set(Object.values(images).flatMap((i) => i.blobs));
    for (const d of expected) {
      const seen = proxy.blobs.get(d);
      assert.is(seen?.bytes ?? 0, sizes.get(d), `round ${round}: blob ${d} (${sizes.get(d)} bytes) delivered ${seen?.bytes ?? 0} bytes: ${seen?.lines.join('; ')}`);
    }
    assert.equal([...proxy.blobs.keys()].filter((d) => !expected.has(d)), [], 'no other blob fetched');
    fetches += expected.size;
    requests += [...proxy.blobs.values()].reduce((n, b) => n + b.gets, 0);
    // no lost tag; the store is whole; every built image runs
    const ls = await tsd('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}'], { root });
    const names = new Set(ls.stdout.split('\n').filter(Boolean));
    const want = new Set(plan.flatMap((p) => p.tags));
    const lost = [...want].filter((t) => !names.has(t));
    lostTags += lost.length;
    assert.equal(lost, [], `round ${round}: lost tags`);
    const fsck = await tsd('store', ['fsck'], { root });
    assert.is(fsck.code, 0, `round ${round}: fsck: ${fsck.stdout}${fsck.stderr}`);
    removeDir(root);
    removeDir(ctxRoot);
  }
  const waits = readFileSync(stats, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
  const ms = waits.map((w) => Number(w[0])).sort((a, b) => a - b);
  const indexMs = waits.filter((w) => w[1] === 'index.lock').map((w) => Number(w[0])).sort((a, b) => a - b);
  // by kind of lock: blob-HEX (a pull waiting for another's download), snapshot-HEX, index, gc, …
  const kinds = new Map<string, number[]>();
  for (const w of waits) {
    const kind = (w[1] ?? '').replace(/-[a-f0-9]{64}/, '').replace(/\.lock$/, '');
    kinds.set(kind, [...(kinds.get(kind) ?? []), Number(w[0])]);
  }
  const byKind = Object.fromEntries(
    [...kinds].map(([k, v]) => {
      v.sort((a, b) => a - b);
      return [k, { n: v.length, p50: percentile(v, 50), p99: percentile(v, 99), max: v[v.length - 1] ?? 0 }];
    }),
  );
  const report = {
    pipelines: pipelinesRun,
    rounds: ROUNDS,
    blobFetches: fetches,
    blobGets: requests,
    distinctBlobs: new Set(Object.values(images).flatMap((i) => i.blobs)).size,
    lostTags,
    snapshotsCollected,
    slowestPipelineMs: slowest,
    lockAcquisitions: ms.length,
    lockWaitMs: { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms[ms.length - 1] ?? 0 },
    indexLockWaitMs: { n: indexMs.length, p50: percentile(indexMs, 50), p99: percentile(indexMs, 99), max: indexMs[indexMs.length - 1] ?? 0 },
    byKind,
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
  console.log(`\nconcurrency: ${JSON.stringify(report)}`);
  if (process.env.TSD_STRESS_REPORT) writeFileSync(process.env.TSD_STRESS_REPORT, JSON.stringify(report) + '\n');
  assert.ok(ms.length > 0, 'lock waits were recorded');
  assert.ok(snapshotsCollected >= ROUNDS, 'gc collected the snapshots of images whose names went');
});

test('rm + gc of a base image while a build RUNs on it: the built image is whole', async () => {
  const root = join(work, 'store-rm-base');
  const env = { TSD_ROOT: root };
  const imported = await runPipeline(`sh ${q(join(REPO, 'examples', 'busybox-rootfs.sh'))} | tsd-store import -c 'CMD ["sh"]' localhost/base-gone:1`, env);
  assert.is(imported.code, 0, imported.stderr);
  const dir = join(work, 'ctx-rm-base');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), 'FROM localhost/base-gone:1\nRUN sleep 3 && echo made > /made\n');
  const child = spawn('bash', ['-o', 'pipefail', '-c', `tsd-ctx ${q(dir)} | tsd-build --progress plain -t localhost/on-gone:1`], { env: { ...process.env, ...env, PATH: `${join(REPO, 'bin')}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const running = new Promise<void>((r) => child.stderr.on('data', (d) => ((err += d), /RUN sleep/.test(err) && r())));
  const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? 1)));
  await running;
  assert.is((await tsd('store', ['rm', 'localhost/base-gone:1'], { root })).code, 0);
  const gc = await tsd('store', ['gc'], { root });
  assert.is(gc.code, 0, gc.stderr);
  assert.is(await exited, 0, err);
  const fsck = await tsd('store', ['fsck'], { root });
  assert.is(fsck.code, 0, `fsck: ${fsck.stdout}${fsck.stderr}`);
  const run = await tsd('run', ['--rm', 'localhost/on-gone:1', 'cat', '/made'], { root });
  assert.is(run.stdout, 'made\n', run.stderr);
  removeDir(root);
  removeDir(dir);
});

test.run();
