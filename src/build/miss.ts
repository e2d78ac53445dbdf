// Miss: everything a build needs only when some step must really run (a cache miss) or when it
// writes something other than the store: packing and compressing layers, the container and its
// snapshots, pulling a base, ADD's archives and URLs, --print, --output. The cached path imports
// this module on demand, never up front: a fully cached rebuild loads none of it (bench/build).
// It is one module so the unsplit tsd-build bundle has one lazy entry (scripts/build.mjs).
export { writeEntries } from './layer-pack.js';
export { imageFiles } from './image-files.js';
export { addSources } from './add.js';
export { runStep } from './run-step.js';
export { exportTree } from './export-tree.js';
export { pull } from '../pull/pull.js';
export { mergeEnv } from '../run/spec.js';
export { decompressor } from '../snapshot/decompress.js';
export { chainIds } from '../snapshot/chain-id.js';
export { unpackLayer } from '../snapshot/snapshot.js';
export { mountOverlay, unmount } from '../snapshot/overlay.js';
export { planArchive, writeArchive } from '../store/save.js';
export { printableDockerfile } from './dockerfile/print.js';
