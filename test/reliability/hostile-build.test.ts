// The hostile corpus through tsd-build: each layer and blob case is loaded, then built FROM (with
// a RUN, which unpacks every layer), copied whole with `COPY --from=` into a clean image, and its
// hostile tar given to `ADD evil.tar /` (for blob cases: the blob bytes themselves). And contexts
// whose symlinks point outside the context: the builder never follows them to the host. After
// every build the case's sentinel dir outside the store is byte-identical, a failure is one
// `tsd-build:` line with no stack trace, and what came from outside never lands in an image.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StorePaths } from '../../src/store/layout.js';
import { makeBusybox, BUSYBOX, imageTree } from '../build/support.js';
import { makeSentinel } from '../snapshot/layers.js';
import { REPO, tempDir, tempStore } from '../support/tsd.js';
import { corpus, ociArchive, type Case } from './corpus.js';
import { assertClean, pool, watched } from './hostile-support.js';

let p: StorePaths;
let work: string;

test.before(async () => {
  p = await tempStore();
  await makeBusybox(p);
  work = tempDir('tsd-hostile-build-');
});

test.after(() => {
  // rm(1): fs.rmSync cannot remove the 2000-deep trees (ENAMETOOLONG)
  execFileSync('rm', ['-rf', work, p.root]);
});

/** `tsd-ctx DIR | tsd-build -q ARGS` with the Dockerfile and files given. */
const build = (files: Record<string, Buffer | string>, dockerfile: string, tag: string) => {
  const dir = join(work, `ctx-${tag.replace(/[^a-z0-9]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const cmd = `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} -q -t ${tag}`;
  return watched('/bin/bash', ['--norc', '-o', 'pipefail', '-c', cmd, dir], { env: { TSD_ROOT: p.root }, timeoutMs: 180_000 });
};

const outcome = (r: { code: number; stderr: string }) => (r.code === 0 ? 'ok' : 'refused');

const runCase = async (c: Case, i: number) => {
  const sentinel = makeSentinel();
  const before = sentinel.fingerprint();
  const same = (step: string) => assert.is(sentinel.fingerprint(), before, `${c.name}: ${step} touched the sentinel outside the store`);
  const img = await c.make(sentinel.dir);
  const ref = `localhost/hostile-build-${i}:v1`;
  const archive = join(work, `case-${i}.tar`);
  writeFileSync(archive, await ociArchive(img, ref));
  const load = await watched('tsd-store', ['load', '-i', archive], { env: { TSD_ROOT: p.root } });
  execFileSync('rm', ['-f', archive]);
  assertClean(`${c.name}: load`, load, 'tsd-store');
  const out: Record<string, string> = { load: outcome(load) };
  if (load.code === 0) {
    const from = await build({}, `FROM ${ref}\nRUN exit 0\n`, `localhost/from-${i}:1`);
    assertClean(`${c.name}: FROM + RUN`, from, 'tsd-build');
    same('FROM + RUN');
    const copy = await build({}, `FROM ${BUSYBOX}\nCOPY --from=${ref} / /evil/\n`, `localhost/copy-${i}:1`);
    assertClean(`${c.name}: COPY --from`, copy, 'tsd-build');
    same('COPY --from');
    if (copy.code === 0) {
      const { tree } = await imageTree(p, `localhost/copy-${i}:1`);
      for (const [path, node] of tree) assert.not.ok(node.content?.includes('precious'), `${c.name}: COPY --from put host content at ${path}`);
    }
    out.from = outcome(from);
    out.copy = outcome(copy);
  }
  const evil = c.kind === 'layer' ? img.tars[0] : img.blobs[2]?.bytes;
  if (evil) {
    const add = await build({ 'evil.tar': evil }, `FROM ${BUSYBOX}\nADD evil.tar /\n`, `localhost/add-${i}:1`);
    assertClean(`${c.name}: ADD evil.tar`, add, 'tsd-build');
    same('ADD evil.tar');
    // ADD unpacks with the builder's own reader, which may neutralise what unpack refuses: the
    // sentinel and the one-line rule are what must hold
    out.add = outcome(add);
  }
  execFileSync('rm', ['-rf', sentinel.dir]);
  return { name: c.name, ...out };
};

test('every layer and blob case: FROM + RUN, COPY --from, ADD evil.tar leave the host untouched; refusals clean', async () => {
  const cases = corpus().filter((c) => c.kind !== 'document');
  const results = await pool(cases, 3, runCase);
  const count = (k: string, v: string) => results.filter((r) => (r as Record<string, string>)[k] === v).length;
  if (process.env.TSD_HOSTILE_REPORT) writeFileSync(`${process.env.TSD_HOSTILE_REPORT}.build`, results.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(
    `  hostile builds: ${cases.length} cases; FROM+RUN ok ${count('from', 'ok')}/refused ${count('from', 'refused')}, COPY --from ok ${count('copy', 'ok')}/refused ${count('copy', 'refused')}, ADD ok ${count('add', 'ok')}/refused ${count('add', 'refused')}; sentinel untouched in all`,
  );
});

test('context symlinks that point outside the context are never followed by the builder', async () => {
  const sentinel = makeSentinel();
  const before = sentinel.fingerprint();
  const S = sentinel.dir;
  const outside = tempDir('tsd-outside-');
  // a tar outside the context, for ADD through a link
  execFileSync('tar', ['-cf', join(outside, 'out.tar'), '-C', S, 'keep']);
  const dir = join(work, 'ctx-links');
  mkdirSync(dir, { recursive: true });
  execFileSync('ln', ['-s', S, join(dir, 'abs')]);
  execFileSync('ln', ['-s', `${'../'.repeat(20)}${S.slice(1)}`, join(dir, 'rel')]);
  execFileSync('ln', ['-s', `${S}/keep`, join(dir, 'file')]);
  execFileSync('ln', ['-s', join(outside, 'out.tar'), join(dir, 'out.tar')]);
  const cases: [string, string][] = [
    ['COPY through an absolute link to a dir outside', 'COPY abs/keep /got'],
    ['COPY through a relative link climbing out', 'COPY rel/keep /got'],
    ['COPY of a link to a file outside (top-level source)', 'COPY file /got'],
    ['COPY of a link to a dir outside (top-level source)', 'COPY abs /got/'],
    ['ADD of a link to a tar outside', 'ADD out.tar /got/'],
    ['COPY with a wildcard through the link', 'COPY abs/* /got/'],
  ];
  const lines: string[] = [];
  for (const [i, [name, step]] of cases.entries()) {
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${BUSYBOX}\n${step}\n`);
    const tag = `localhost/links-${i}:1`;
    const cmd = `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} -q -t ${tag}`;
    const r = await watched('/bin/bash', ['--norc', '-o', 'pipefail', '-c', cmd, dir], { env: { TSD_ROOT: p.root } });
    assertClean(name, r, 'tsd-build');
    assert.is(sentinel.fingerprint(), before, name);
    if (r.code === 0) {
      const { tree } = await imageTree(p, tag);
      for (const [path, node] of tree) assert.not.ok(node.content?.includes('precious'), `${name}: host content at ${path}`);
    }
    lines.push(`${name}: ${r.code === 0 ? 'built without the outside content' : `refused: ${r.stderr.trim()}`}`);
  }
  console.log(`  context links: ${lines.join('; ')}`);
  execFileSync('rm', ['-rf', sentinel.dir, outside]);
});

test.run();
