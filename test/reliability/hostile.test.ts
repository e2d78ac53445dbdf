// The hostile corpus (corpus.ts), layer contents: traversal, absolute paths, symlink-then-write in
// the same and a later layer, symlinked parents, hard links out, whiteouts through symlinks,
// device nodes, huge PAX names, 2000-deep trees, through load → run (unpack) and pull --unpack
// (hostile-paths.ts says how each case is checked). Encodings, bombs and documents are in
// hostile-blobs.test.ts, build paths in hostile-build.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { corpus } from './corpus.js';
import { corpusSuite } from './hostile-paths.js';

test('the corpus has at least 40 named cases, each name once', () => {
  const names = corpus().map((c) => c.name);
  assert.ok(names.length >= 40, `${names.length} cases`);
  assert.is(new Set(names).size, names.length);
});
test.run();

corpusSuite('layer contents', ['layer']);
