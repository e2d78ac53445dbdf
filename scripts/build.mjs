// Bundles each binary's CLI into one CommonJS file, dist/tsd-X.cjs, and the library entry into
// ESM, dist/index.mjs (package "main"), with esbuild.
//
// Why CommonJS for the binaries: bin/tsd-X (through bin/start.cjs) compiles its bundle with V8's
// code cache and runs it without Node's ESM loader, which cost every start ~8 ms (bench/run,
// bench/pull, bench/store). A bundle holds a binary's hot paths only, since reading and compiling
// cost grow with its size (a bundle of all of tsd-run's code, 640 KB, started ~7 ms slower): an
// import() of a file in HOT is bundled in; any other relative import() becomes a require() of
// that file's own bundle, dist/lazy/<path>.cjs, which holds all it imports (no third copy of a
// module). No import() is left: in code compiled from V8's cache Node 20 loses its callback.
//
// The build goes to a fresh folder under .dist/ and `dist` is then switched to it by renaming a
// symlink over it, so a binary started while another build runs never sees half a dist/.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { relative, resolve } from 'node:path';

const out = `.dist/${Date.now()}-${process.pid}`;
mkdirSync(out, { recursive: true });

// fp-ts's lib/ modules are CommonJS and defeat tree shaking; its es6/ twins are the same code as ESM.
const fpTsEs6 = {
  name: 'fp-ts-es6',
  setup(b) {
    b.onResolve({ filter: /^fp-ts\/lib\// }, (args) =>
      b.resolve(args.path.replace('fp-ts/lib/', 'fp-ts/es6/'), { kind: args.kind, resolveDir: args.resolveDir }),
    );
  },
};
const common = { plugins: [fpTsEs6], mainFields: ['module', 'main'], outdir: out, bundle: true, platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning' };

// what the binaries' hot paths import on demand: tsd-run's run path (and what its help needs),
// a plain `tsd-store ls`, a plain tsd-pull, tsd-build's shell
const HOT = ['src/run/run-command.ts', 'src/cli/io.ts', 'src/failure.ts', 'src/store/fast-list.ts', 'src/pull/fast-pull.ts', 'src/build/main.ts'].map((f) => resolve(f));
const lazy = new Map(); // bundle name -> source file, of the lazy bundles to make
const keepLazy = {
  name: 'keep-lazy',
  setup(b) {
    b.onResolve({ filter: /^\./ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const src = resolve(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      if (HOT.includes(src)) return undefined;
      const name = `lazy/${relative('src', src).replace(/\.ts$/, '')}`;
      lazy.set(name, src);
      return { path: `./${name}.cjs`, external: true };
    });
  },
};
// CommonJS has no import.meta: its uses (finding files beside the bundle: tsd-supervisor, ctx's
// worker) read the bundle's own path instead; the URL is made only when asked for (making it
// costs a start ~2 ms: Node's URL code loads on first use)
const cjs = {
  ...common,
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__tsdBundle.url', 'import.meta.dirname': '__dirname' },
  banner: { js: "const __tsdBundle = { get url() { return require('node:url').pathToFileURL(__filename).href; } };" },
};
const tools = ['ctx', 'build', 'pull', 'push', 'run', 'store'].filter((t) => existsSync(`src/${t}/cli.ts`));
await build({ ...cjs, plugins: [...common.plugins, keepLazy], entryPoints: Object.fromEntries(tools.map((t) => [`tsd-${t}`, `src/${t}/cli.ts`])) });
await build({ ...cjs, entryPoints: Object.fromEntries(lazy) });

// the library: ESM, split so an importer loads only the chunks it uses
await build({
  ...common,
  entryPoints: { index: 'src/index.ts' },
  splitting: true,
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __tsdRequire } from 'node:module'; const require = __tsdRequire(import.meta.url);" },
});

// tsd-run's supervisor is a small C program (src/run/supervisor.c, docs/run.md says why): build it
// with the machine's cc when there is one; tsd-run otherwise compiles it on first use.
{
  const cc = process.env.CC ?? 'cc';
  if (existsSync('src/run/supervisor.c') && spawnSync('sh', ['-c', `command -v ${cc}`]).status === 0) {
    const r = spawnSync(cc, ['-O2', '-o', `${out}/tsd-supervisor.tmp`, 'src/run/supervisor.c'], { stdio: 'inherit' });
    if (r.status === 0) renameSync(`${out}/tsd-supervisor.tmp`, `${out}/tsd-supervisor`);
  }
}

// Switch dist to the new build atomically; an old real dist/ folder (from before) is replaced once.
const link = `dist.new-${process.pid}`;
symlinkSync(out, link);
if (existsSync('dist') && !lstatSync('dist').isSymbolicLink()) rmSync('dist', { recursive: true, force: true });
renameSync(link, 'dist');
// Old builds go once no process can still be loading their files.
for (const name of readdirSync('.dist')) {
  const dir = `.dist/${name}`;
  if (dir !== out && Date.now() - statSync(dir).mtimeMs > 10 * 60_000) rmSync(dir, { recursive: true, force: true });
}
