// What a plain tsd-pull command line needs (cli.ts's fastPull), in one module: scripts/build.mjs
// bundles it alone, unsplit, into dist/tsd-pull-fast.mjs, one file to load instead of some twenty
// shared chunks (start-up budget: bench/pull).
export { openStore } from '../store/store.js';
export { pull } from './pull.js';
export { progressReporter } from '../registry/progress.js';
export { decodeProgress } from '../registry/mode.js';
