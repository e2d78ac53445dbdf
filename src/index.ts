// The tsd library: exactly the functions the binaries call, for tools that embed one step.
export * from './failure.js';
export * from './message.js';
export * from './oci/digest.js';
export * from './oci/reference.js';
export * from './oci/manifest.js';
export * from './oci/media-type.js';
export * from './oci/config.js';
export * from './oci/platform.js';
export { openStore, type Store } from './store/store.js';
export { defaultRoot, paths as storePaths } from './store/layout.js';
export { ingest, putBytes, openBlob, readBlob, hasBlob } from './store/blob.js';
export { readIndex, updateIndex } from './store/index-file.js';
export { resolveImage, findEntry, tagDescriptor, addUntagged, removeEntries, loadManifest, loadConfig, type ResolvedImage } from './store/image.js';
export { listImages } from './store/listing.js';
export { withLock } from './store/lock.js';
export { chainIds } from './snapshot/chain-id.js';
export { ensureSnapshots, unpackLayer, snapshotDir, emptySnapshotDir, ensureEmptySnapshot, listSnapshots, removeSnapshot, removeStaleTemps, type Snapshot, type SnapshotInfo, type UnpackOptions } from './snapshot/snapshot.js';
export { mountOverlay, unmount, planOverlayMount, type OverlaySpec, type MountPlan } from './snapshot/overlay.js';
