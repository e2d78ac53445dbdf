// Bundles each binary's CLI (and the library entry) into dist/ with esbuild.
// Code splitting keeps start-up cheap: a binary loads only the chunks its verb imports.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

const tools = ['ctx', 'build', 'pull', 'push', 'run', 'store'];
const entryPoints = Object.fromEntries(
  tools
    .filter((t) => existsSync(`src/${t}/cli.ts`))
    .map((t) => [`tsd-${t}`, `src/${t}/cli.ts`]),
);
entryPoints.index = 'src/index.ts';

await build({
  entryPoints,
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  logLevel: 'warning',
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __tsdRequire } from 'node:module'; const require = __tsdRequire(import.meta.url);" },
});
