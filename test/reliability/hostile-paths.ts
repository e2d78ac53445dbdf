// The hostile corpus (corpus.ts: ≥40 named images made by code) through load, unpack and pull:
// each case is `tsd-store load`ed from an OCI archive, then run (`tsd-run --rm`, which unpacks
// every layer), and pulled from a real registry with `tsd-pull --unpack` (the documents served by
// the fault proxy, so even those a registry would refuse reach tsd). After every step a sentinel
// dir outside the store, which the case aims at, is byte-identical; a refusal is one line with no
// stack trace; cases marked mustRefuse are refused; the bombs keep every tool's peak RSS bounded.
// The suites: hostile.test.ts (layer contents), hostile-blobs.test.ts (encodings, bombs,
// documents); build paths in hostile-build.test.ts; tar fuzzing in tar-fuzz.test.ts.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startFaultProxy, startRegistry, type FaultProxy, type Registry } from '../support/registry.js';
import { tempDir, tempStore } from '../support/tsd.js';
import { makeSentinel } from '../snapshot/layers.js';
import { corpus, ociArchive, type Case, type HostileImage } from './corpus.js';
import { assertClean, firstLine, pool, watched } from './hostile-support.js';

/** a bomb's tool may use at most this much memory (a layer is hundreds of MiB uncompressed) */
const BOMB_RSS_MIB = 250;

let reg: Registry;
let proxy: FaultProxy;
let work: string;
let loadRoot: string;
let pullRoot: string;

/** Registers and runs the corpus cases of these kinds as one uvu suite. */
export const corpusSuite = (title: string, kinds: readonly Case['kind'][]): void => {
  const test = suite(title);
  test.before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.host);
    work = tempDir('tsd-hostile-');
    loadRoot = (await tempStore()).root;
    pullRoot = (await tempStore()).root;
  });

  test.after(async () => {
    for (const id of (await watched('tsd-run', ['ps', '-a', '-q'], { env: { TSD_ROOT: loadRoot } })).stdout.split('\n').filter(Boolean)) await watched('tsd-run', ['rm', '-f', id], { env: { TSD_ROOT: loadRoot } });
    await proxy.stop();
    await reg.stop();
    // rm(1): fs.rmSync cannot remove the 2000-deep trees (ENAMETOOLONG)
    execFileSync('rm', ['-rf', work, loadRoot, pullRoot]);
  });

  const uploadBlob = async (repo: string, bytes: Buffer, digest: string): Promise<void> => {
    const start = await fetch(`http://${reg.host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
    const loc = new URL(start.headers.get('location') ?? '', `http://${reg.host}`);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  };

  /** Blobs into the registry; every document served by the proxy under the tag and its digest. */
  const publish = async (repo: string, img: HostileImage): Promise<string> => {
    for (const b of img.blobs) await uploadBlob(repo, b.bytes, b.digest);
    const serve = (ref: string, bytes: Buffer, contentType: string) => {
      for (const method of ['GET', 'HEAD']) proxy.rules.push({ match: `${method} /v2/${repo}/manifests/${ref}`, fault: { kind: 'replace', body: bytes, contentType }, times: 1_000_000 });
    };
    for (const d of img.documents) serve(d.digest, d.bytes, d.mediaType);
    const top = img.documents.find((d) => d.digest === img.top.digest);
    if (top) serve('v1', top.bytes, top.mediaType);
    return `${proxy.host}/${repo}:v1`;
  };

  interface Outcome {
    readonly name: string;
    readonly load: string;
    readonly run: string;
    readonly pull: string;
    readonly peak: number;
  }

  const outcome = (r: { code: number; stderr: string }): string => (r.code === 0 ? 'ok' : `refused: ${firstLine(r.stderr)}`);

  const runCase = async (c: Case, i: number): Promise<Outcome> => {
    const sentinel = makeSentinel();
    const before = sentinel.fingerprint();
    const same = (step: string) => assert.is(sentinel.fingerprint(), before, `${c.name}: ${step} touched the sentinel outside the store`);
    const img = await c.make(sentinel.dir);
    const ref = `localhost/hostile-${i}:v1`;
    const archive = join(work, `case-${i}.tar`);
    writeFileSync(archive, await ociArchive(img, ref));
    const load = await watched('tsd-store', ['load', '-i', archive], { env: { TSD_ROOT: loadRoot } });
    execFileSync('rm', ['-f', archive]);
    assertClean(`${c.name}: load`, load, 'tsd-store');
    same('load');
    let run = { code: 1, stderr: 'tsd-run: (not loaded)\n', peakMiB: 0 } as Awaited<ReturnType<typeof watched>>;
    if (load.code === 0) {
      run = await watched('tsd-run', ['--rm', '--network', 'none', ref, 'sh', '-c', 'exit 0'], { env: { TSD_ROOT: loadRoot } });
      assertClean(`${c.name}: run`, run, 'tsd-run');
      same('run');
    }
    const pull = await watched('tsd-pull', ['-q', '--unpack', await publish(`h/c${i}`, img)], { env: { TSD_ROOT: pullRoot, TSD_RETRY_BASE_MS: '5', TSD_RETRIES: '2' } });
    assertClean(`${c.name}: pull`, pull, 'tsd-pull');
    for (const [step, r] of [['load', load], ['run', run], ['pull', pull]] as const) assert.ok(r.stderr.length < 1000, `${c.name}: ${step}: a readable error, not ${r.stderr.length} bytes`);
    same('pull');
    if (c.mustRefuse) {
      assert.ok(load.code !== 0 || run.code !== 0, `${c.name}: load + run should refuse it: ${run.stderr}`);
      assert.ok(pull.code !== 0, `${c.name}: pull --unpack should refuse it`);
    }
    const peak = Math.max(load.peakMiB, run.peakMiB, pull.peakMiB);
    if (c.bomb) assert.ok(peak < BOMB_RSS_MIB, `${c.name}: peak RSS ${peak} MiB (load ${load.peakMiB}, run ${run.peakMiB}, pull ${pull.peakMiB})`);
    execFileSync('rm', ['-rf', sentinel.dir]);
    return { name: c.name, load: outcome(load), run: load.code === 0 ? outcome(run) : '-', pull: outcome(pull), peak };
  };

  test(`${title}: every hostile image through load → run (unpack) and pull --unpack: the host untouched, refusals clean`, async () => {
    const cases = corpus().filter((c) => kinds.includes(c.kind));
    const results = await pool(cases, 3, runCase);
    const refused = (k: keyof Outcome) => results.filter((r) => String(r[k]).startsWith('refused')).length;
    const lines = results.map((r) => `  ${r.name}\n      load: ${r.load}\n      run:  ${r.run}\n      pull: ${r.pull}\n      peak RSS ${r.peak} MiB`);
    if (process.env.TSD_HOSTILE_REPORT) writeFileSync(`${process.env.TSD_HOSTILE_REPORT}.${title}`, `${lines.join('\n')}\n`);
    const bombs = results.filter((_, i) => cases[i]?.bomb).map((r) => r.peak);
    console.log(`  hostile corpus (${title}): ${cases.length} cases; load refused ${refused('load')}, run refused ${refused('run')}, pull refused ${refused('pull')}; bombs' peak RSS ${bombs.join('/')} MiB; sentinel untouched in all`);
  });

  test.run();
};
