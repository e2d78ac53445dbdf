// Starts a binary's bundle, dist/NAME.cjs (scripts/build.mjs), as Node's require() would but with
// V8's code cache: compiling the bundle costs a start ~5 ms (bench/run), reading the cache far
// less. The cache (NAME.cjs.v8cache beside the bundle, so a new build starts a new one) is
// written at exit by the first run that found none, or found it rejected (another Node); it holds
// the code that run compiled. A dist/ that cannot be written only means no cache.
'use strict';
const { readFileSync, realpathSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

module.exports = (name) => {
  // the real path pins this build: dist/ may be switched to a newer one while we run
  const file = realpathSync(join(__dirname, '..', 'dist', `${name}.cjs`));
  const cacheFile = `${file}.v8cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    /* no cache yet */
  }
  // the bundles hold no import() (scripts/build.mjs): a script compiled from the cache has none to give it
  const script = new vm.Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        /* a read-only dist/: start without a cache next time too */
      }
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
};
