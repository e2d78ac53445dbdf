// tsd-build's entry in the split build: it only loads the unsplit bundle of main.ts
// (dist/tsd-build-fast.mjs, scripts/build.mjs), one module instead of a dozen shared chunks, so a
// cached rebuild pays little more than Node's own start-up; from src/ (tests), main.ts itself.
const loaded = import(new URL('./tsd-build-fast.mjs', import.meta.url).href).catch((e: NodeJS.ErrnoException) => {
  if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
  return import('./main.js');
});
void loaded;
