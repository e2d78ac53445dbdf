// Bundles each binary's CLI (and the library entry) into dist/ with esbuild.
// Code splitting keeps start-up cheap: a binary loads only the chunks its verb imports.
//
// The build goes to a fresh folder under .dist/ and `dist` is then switched to it by renaming a
// symlink over it, so a binary started while another build runs never sees half a dist/.
import { build } from 'esbuild';
import { resolve as resolvePath } from 'node:path';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';

const out = `.dist/${Date.now()}-${process.pid}`;
mkdirSync(out, { recursive: true });

const tools = ['ctx', 'build', 'pull', 'push', 'run', 'store'];
const entryPoints = Object.fromEntries(
  tools
    .filter((t) => existsSync(`src/${t}/cli.ts`))
    .map((t) => [`tsd-${t}`, `src/${t}/cli.ts`]),
);
entryPoints.index = 'src/index.ts';
// What tsd-run's unsplit run path (below) imports lazily, under names it can import.
const runLazy = {
  'run-lazy/message': 'src/message.ts',
  'run-lazy/lifecycle': 'src/run/lifecycle.ts',
  'run-lazy/supervise': 'src/run/supervise.ts',
  'run-lazy/logs': 'src/run/logs.ts',
  'run-lazy/attach': 'src/run/attach.ts',
  'run-lazy/snapshot': 'src/snapshot/snapshot.ts',
  'run-lazy/overlay': 'src/snapshot/overlay.ts',
};
if (existsSync('src/run/run-command.ts')) Object.assign(entryPoints, runLazy);
// What tsd-build's unsplit bundle (below) imports lazily: the code only a cache miss needs.
const buildLazy = { 'build-lazy/miss': 'src/build/miss.ts' };
if (existsSync('src/build/miss.ts')) Object.assign(entryPoints, buildLazy);

// fp-ts's lib/ modules are CommonJS and defeat tree shaking; its es6/ twins are the same code as ESM.
const fpTsEs6 = {
  name: 'fp-ts-es6',
  setup(b) {
    b.onResolve({ filter: /^fp-ts\/lib\// }, (args) =>
      b.resolve(args.path.replace('fp-ts/lib/', 'fp-ts/es6/'), { kind: args.kind, resolveDir: args.resolveDir }),
    );
  },
};

await build({
  plugins: [fpTsEs6],
  mainFields: ['module', 'main'],
  entryPoints,
  outdir: out,
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

// tsd-run's supervisor is a small C program (src/run/supervisor.c, docs/run.md says why): build it
// with the machine's cc when there is one; tsd-run otherwise compiles it on first use.
{
  const { spawnSync } = await import('node:child_process');
  const cc = process.env.CC ?? 'cc';
  if (existsSync('src/run/supervisor.c') && spawnSync('sh', ['-c', `command -v ${cc}`]).status === 0) {
    const r = spawnSync(cc, ['-O2', '-o', `${out}/tsd-supervisor.tmp`, 'src/run/supervisor.c'], { stdio: 'inherit' });
    if (r.status === 0) (await import('node:fs')).renameSync(`${out}/tsd-supervisor.tmp`, `${out}/tsd-supervisor`);
  }
}

// Hot paths bundled alone, unsplit: one module to load instead of a dozen shared chunks
// (tsd-store's plain `ls`, loaded by src/store/cli.ts; start-up budget in bench/store; and
// tsd-run's run path and a plain tsd-pull's code, loaded by src/run/cli.ts and src/pull/cli.ts:
// bench/run, bench/pull). Their dynamic imports stay dynamic:
// each names one of the runLazy entries above (split build), never a second bundled copy.
const standalone = { 'tsd-store-ls': 'src/store/fast-list.ts', 'tsd-run-fg': 'src/run/run-command.ts', 'tsd-pull-fast': 'src/pull/fast-pull.ts', 'tsd-build-fast': 'src/build/main.ts' };
const lazyByPath = new Map(Object.entries({ ...runLazy, ...buildLazy }).map(([name, src]) => [resolvePath(src), `./${name}.mjs`]));
const keepLazy = {
  name: 'keep-lazy',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import' || !args.path.startsWith('.')) return undefined;
      const src = resolvePath(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      const out = lazyByPath.get(src);
      if (out === undefined) return { errors: [{ text: `${args.importer}: dynamic import of ${args.path} has no runLazy entry in scripts/build.mjs` }] };
      return { path: out, external: true };
    });
  },
};
await build({
  plugins: [fpTsEs6, keepLazy],
  mainFields: ['module', 'main'],
  entryPoints: Object.fromEntries(Object.entries(standalone).filter(([, src]) => existsSync(src))),
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __tsdRequire } from 'node:module'; const require = __tsdRequire(import.meta.url);" },
});

// Switch dist to the new build atomically; an old real dist/ folder (from before) is replaced once.
const link = `dist.new-${process.pid}`;
symlinkSync(out, link);
if (existsSync('dist') && !lstatSync('dist').isSymbolicLink()) rmSync('dist', { recursive: true, force: true });
renameSync(link, 'dist');
// Old builds go once no process can still be loading their chunks lazily.
for (const name of readdirSync('.dist')) {
  const dir = `.dist/${name}`;
  if (dir !== out && Date.now() - statSync(dir).mtimeMs > 10 * 60_000) rmSync(dir, { recursive: true, force: true });
}
