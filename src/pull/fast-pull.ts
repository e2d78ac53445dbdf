// What a plain tsd-pull command line needs (cli.ts's fastPull), in one module that cli.ts imports
// on demand (start-up budget: bench/pull).
// openStoreSync: a complete layout costs four stats; a new store, a few small synchronous creates
export { openStoreSync } from '../store/store.js';
export { pull } from './pull.js';
export { progressReporter } from '../registry/progress.js';
export { decodeProgress } from '../registry/mode.js';
