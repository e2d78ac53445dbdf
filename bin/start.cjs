// Starts a binary's bundle, dist/NAME.cjs (scripts/build.mjs), as Node's require() would but with
// V8's code cache: compiling the bundle costs a start ~5 ms (bench/run), reading the cache far
// less. The cache, NAME.cjs.v8cache beside the bundle (a new build starts a new one), holds the
// code compiled by the command lines it was made by, named in its header by the kind of their
// first argument (`ls`, `--version`, `-e`…: kindOf). A run whose kind is not among them (or that
// found no cache, or found it rejected by another Node) writes it again at exit: what it loaded
// from the cache plus what it compiled, so the cache grows to cover each kind of command line, up
// to MAX_KINDS of them. A dist/ that cannot be written only means no cache.
'use strict';
const { readFileSync, realpathSync, renameSync, writeFileSync } = require('node:fs');
// node:module's exports, without loading node:module itself (its ESM half costs ~0.3 ms)
const { createRequire, wrap } = module.constructor;
const { dirname, join } = require('node:path');
const vm = require('node:vm');

const MAX_KINDS = 8;

/** The cache file: the kinds of command line it covers, one a line, a NUL, then V8's data. */
const readCache = (file) => {
  try {
    const buf = readFileSync(file);
    const end = buf.indexOf(0);
    if (end >= 0) return { kinds: buf.toString('utf8', 0, end).split('\n'), data: buf.subarray(end + 1) };
  } catch {
    /* no cache yet */
  }
  return { kinds: [], data: undefined };
};

/**
 * The kind of a command line, named in the cache file (world-readable, like dist/): never the
 * first argument itself, which may carry a value (`-eTOKEN=…`, `--password=…`): an option's name,
 * a verb-like word, or `*`.
 */
const kindOf = (arg) => {
  if (arg.startsWith('--')) return arg.split('=')[0];
  if (arg.startsWith('-')) return arg.slice(0, 2);
  return /^[a-z][a-z0-9-]{0,15}$/.test(arg) ? arg : '*';
};

module.exports = (name) => {
  // the real path pins this build: dist/ may be switched to a newer one while we run
  const file = realpathSync(join(__dirname, '..', 'dist', `${name}.cjs`));
  const cacheFile = `${file}.v8cache`;
  const kind = kindOf(process.argv[2] ?? '');
  const cache = readCache(cacheFile);
  // the bundles hold no import() (scripts/build.mjs): a script compiled from a cache has no callback for one
  const script = new vm.Script(wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: cache.data });
  const fresh = cache.data === undefined || script.cachedDataRejected;
  if (fresh || (!cache.kinds.includes(kind) && cache.kinds.length < MAX_KINDS)) {
    process.once('exit', () => {
      try {
        const tmp = `${cacheFile}.${process.pid}.tmp`;
        writeFileSync(tmp, Buffer.concat([Buffer.from(`${[...(fresh ? [] : cache.kinds), kind].join('\n')}\0`), script.createCachedData()]));
        renameSync(tmp, cacheFile);
      } catch {
        /* a read-only dist/: start without a cache next time too */
      }
    });
  }
  const bundle = { exports: {} };
  script.runInThisContext()(bundle.exports, createRequire(file), bundle, file, dirname(file));
};
