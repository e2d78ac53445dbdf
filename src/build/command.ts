// The build command: decoded arguments and the process's streams in, an exit code or a Failure
// out (the shell, cli.ts, renders it). Reads the context, builds through the cache, writes the
// image (unless the cache had made it already), tags it and prints its JSON line; or writes the
// image (or its file tree) to --output. Only what a fully cached build needs is imported up
// front; printing, archives, trees and the container code load on demand.
import { createReadStream, createWriteStream, existsSync, fstatSync, promises as fs, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { write, type CommandResult, type Io } from '../cli/io.js';
import { formatMessage, imageMessage } from '../message.js';
import { hostPlatform } from '../oci/platform.js';
import { formatReference, parseReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/manifest.js';
import { addUntagged, refNameOf, tagDescriptor } from '../store/image.js';
import { readIndex } from '../store/index-file.js';
import { writeImage } from '../store/image-writer.js';
import { openStore } from '../store/store.js';
import type { BuildArgs } from './args.js';
import { build } from './builder.js';
import { keptOutput } from './child-output.js';
import { parseDockerfile } from './dockerfile/parse.js';
import { imageKey, lookupImage, recordImage } from './cache.js';
import { readContextTar, readSmall, type BuildContext, type ContextFile } from './context.js';
import { makeProgress, type ProgressMode } from './progress.js';
import { snapshotRootfs } from './rootfs.js';
import { sweepStaleRuns } from './sweep.js';

/**
 * Where tsd-ctx is: beside the tsd-build that was started (bin/, or npm's .bin), else up from
 * this bundle (dist/ may be a symlink into .dist/STAMP/), else on PATH.
 */
const siblingTool = (name: string): string => {
  const started = process.argv[1];
  const candidates = started ? [join(dirname(started), name)] : [];
  for (let dir = dirname(fileURLToPath(import.meta.url)), i = 0; i < 4; i++, dir = dirname(dir)) candidates.push(join(dir, 'bin', name));
  return candidates.find((c) => existsSync(c)) ?? name;
};

/** The context of `--context DIR`: exactly what `tsd-ctx DIR` sends (same .dockerignore rules). */
const contextFromDir = async (dir: string, dockerfile: string | undefined): Promise<{ stream: Readable; done: Promise<string> }> => {
  // child_process is loaded only here: it costs a cached build from stdin ~15 ms of start-up
  const { spawn } = await import('node:child_process');
  const bin = siblingTool('tsd-ctx');
  const child = spawn(bin, [...(dockerfile !== undefined ? ['-f', dockerfile] : []), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((res) => child.on('close', (code) => res(code === 0 ? '' : err.trim() || `tsd-ctx exited ${code}`)));
  // a small context's tsd-ctx can finish before this build reads its stream
  return { stream: keptOutput(child.stdout), done };
};

const usage = (message: string): Failure => failure('Usage', message, ExitCode.user);

/**
 * stdin as a regular file (`tsd-build < ctx.tar`): read in 1 MiB chunks from where its offset
 * stands (/proc/self/fdinfo/0) and used in place, without a spool. Undefined for a pipe or a tty.
 */
const stdinFile = (): ContextFile | undefined => {
  try {
    if (!fstatSync(0).isFile()) return undefined;
    const pos = /^pos:\s*(\d+)/m.exec(readFileSync('/proc/self/fdinfo/0', 'utf8'));
    return pos ? { path: '/proc/self/fd/0', start: Number(pos[1]) } : undefined;
  } catch {
    return undefined;
  }
};

export const buildCommand = async (a: BuildArgs, io: Io): Promise<CommandResult> => {
  const mode: ProgressMode = a.progress === 'auto' ? (io.isTTY.stderr ? 'tty' : 'plain') : a.progress;
  const refs: string[] = [];
  for (const t of a.tags) {
    const r = parseReference(t);
    if (E.isLeft(r)) return E.left(usage(`-t ${t}: ${r.left.message}`));
    refs.push(formatReference(r.right.digest ? { ...r.right, digest: undefined } : r.right));
  }
  const epochText = io.env.SOURCE_DATE_EPOCH;
  const epoch = epochText !== undefined && epochText !== '' ? Number(epochText) : undefined;
  if (epoch !== undefined && !(Number.isInteger(epoch) && epoch >= 0)) return E.left(usage(`SOURCE_DATE_EPOCH=${epochText}: expected whole seconds`));
  if (a.output?.type === 'local' && existsSync(a.output.dest) && !(await fs.stat(a.output.dest)).isDirectory()) {
    return E.left(usage(`--output type=local,dest=${a.output.dest}: not a directory`));
  }

  const opened = await openStore(a.root)();
  if (E.isLeft(opened)) return opened;
  const p = opened.right;
  const scratch = join(p.cache, 'tmp', `${process.pid}-${Date.now()}`);
  let ctx: BuildContext | undefined;
  try {
    let source: Readable = io.stdin;
    let ctxDone: Promise<string> | undefined;
    if (a.context !== undefined) {
      const c = await contextFromDir(a.context, a.file);
      source = c.stream;
      ctxDone = c.done;
    }
    const file = a.context === undefined ? stdinFile() : undefined;
    if (file) source = createReadStream(file.path, { start: file.start, highWaterMark: 1 << 20 });
    const rootfs = snapshotRootfs(p);
    // with --no-cache every step runs, and --print and --output need it too: the code only a miss
    // needs (miss.ts, 65-120 ms to load, measured) loads while the context streams in, not after
    if (a.noCache || a.print || a.output !== undefined) void import('./miss.js').catch(() => undefined);
    // the sweep of dead builds runs while the context streams in
    const [read] = await Promise.all([readContextTar(source, scratch, file, join(p.cache, 'tmp')), sweepStaleRuns(p, rootfs)]);
    if (ctxDone) {
      const why = await ctxDone;
      if (why) return E.left(failure('ContextFailed', why, ExitCode.user));
    }
    if (E.isLeft(read)) return read;
    ctx = read.right;
    const dfPath = a.file !== undefined && a.context === undefined ? a.file.replace(/^\.\//, '') : (ctx.dockerfile ?? 'Dockerfile');
    const dfBytes = await readSmall(ctx, dfPath);
    if (dfBytes === undefined) return E.left(failure('NoDockerfile', `${dfPath}: not in the build context (send one with tsd-ctx, or name it with -f)`, ExitCode.user));
    const dockerfile = dfBytes.toString('utf8');
    if (a.print) {
      const { printableDockerfile } = await import('./miss.js');
      const parsed = parseDockerfile(dockerfile, { file: dfPath });
      if (E.isLeft(parsed)) return parsed;
      const printed = printableDockerfile(parsed.right, { buildArgs: a.buildArgs, ...(a.target !== undefined ? { target: a.target } : {}) });
      if (E.isLeft(printed)) return printed;
      await write(io.stdout, `${JSON.stringify(printed.right)}\n`);
      return E.right(0);
    }
    const progress = makeProgress(mode, io.stderr);
    const started = Date.now();
    const built = await build(
      { p, ctx, rootfs, progress, scratch },
      {
        dockerfile,
        file: dfPath,
        ...(a.target !== undefined ? { target: a.target } : {}),
        buildArgs: a.buildArgs,
        noCache: a.noCache,
        ...(epoch !== undefined ? { epoch } : {}),
        compression: a.compression ?? 'gzip',
        secrets: a.secrets,
        pull: a.pull,
      },
    );
    progress.finish();
    if (E.isLeft(built)) return built;
    const { config, layers } = built.right;
    const key = imageKey(config, layers, epoch);
    const reused = a.noCache ? undefined : await lookupImage(p, key);
    let descriptor: Descriptor;
    let configDescriptor: Descriptor;
    if (reused) {
      descriptor = reused.manifest;
      configDescriptor = reused.config;
    } else {
      const img = await writeImage(p, config, layers)();
      if (E.isLeft(img)) return img;
      descriptor = img.right.descriptor;
      configDescriptor = img.right.configDescriptor;
      await recordImage(p, key, { manifest: descriptor, config: configDescriptor });
    }
    if (a.output !== undefined) {
      const out = a.output;
      const sink = (): Writable => (out.dest === '-' ? io.stdout : createWriteStream(out.dest));
      let wrote: E.Either<Failure, unknown>;
      if (out.type === 'oci-archive' || out.type === 'docker-archive') {
        const { planArchive, writeArchive } = await import('./miss.js');
        const plan = planArchive([{ ...(refs[0] !== undefined ? { ref: refs[0] } : {}), manifest: descriptor, config: configDescriptor, layers }], out.type === 'oci-archive' ? 'oci' : 'docker');
        wrote = await writeArchive(p, plan, sink())();
      } else {
        const { exportTree } = await import('./miss.js');
        wrote = await exportTree(p, layers, out.type === 'local' ? { dir: out.dest } : { out: sink() });
      }
      if (E.isLeft(wrote)) return wrote;
      if (mode !== 'quiet') await write(io.stderr, `#done wrote ${out.type} to ${out.dest === '-' ? 'stdout' : out.dest} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
      return E.right(0);
    }
    const platform = { ...hostPlatform(), architecture: config.architecture, os: config.os };
    const fields = { digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size, config: configDescriptor.digest, platform };
    const index = await readIndex(p)();
    const present = E.isRight(index) ? index.right.manifests : [];
    if (refs.length === 0) {
      if (!present.some((d) => d.digest === descriptor.digest)) {
        const added = await addUntagged(p, descriptor)();
        if (E.isLeft(added)) return added;
      }
      await write(io.stdout, formatMessage(imageMessage(fields)));
    }
    for (const ref of refs) {
      // a name that already points at this image needs no index write
      const same = present.some((d) => d.digest === descriptor.digest && refNameOf(d) === ref);
      const tagged = same ? E.right(descriptor) : await tagDescriptor(p, descriptor, ref)();
      if (E.isLeft(tagged)) return tagged;
      await write(io.stdout, formatMessage(imageMessage({ ref, ...fields })));
    }
    return E.right(0);
  } finally {
    await ctx?.dispose();
    await fs.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
};
