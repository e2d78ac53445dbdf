// tsd-build: a context tar on stdin (or --context DIR) → an image in the store, tagged, and its
// JSON line on stdout; or `--output oci-archive:-` for the image as an OCI archive on stdout.
// `--print` prints the parsed Dockerfile (the front end's printable form) and builds nothing.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { command, flag, multioption, option, optional, array, string } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { rootOption } from '../cli/options.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { formatMessage, imageMessage } from '../message.js';
import { hostPlatform } from '../oci/platform.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { writeImage } from '../store/image-writer.js';
import { addUntagged, refNameOf, tagDescriptor } from '../store/image.js';
import { readIndex } from '../store/index-file.js';
import type { Descriptor } from '../oci/manifest.js';
import { imageKey, lookupImage, recordImage } from './cache.js';
import { planArchive, writeArchive } from '../store/save.js';
import { openStore } from '../store/store.js';
import { VERSION } from '../version.js';
import { build } from './builder.js';
import { readContextTar, readSmall, type BuildContext } from './context.js';
import { parseDockerfile } from './dockerfile/parse.js';
import { printableDockerfile } from './dockerfile/print.js';
import { makeProgress, type ProgressMode } from './progress.js';
import { snapshotRootfs } from './rootfs.js';
import { sweepStaleRuns } from './run-step.js';

const io = processIo();

const usage = (message: string): Failure => failure('Usage', message, ExitCode.user);

const keyValues = (list: readonly string[], what: string): E.Either<Failure, Record<string, string>> => {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const at = kv.indexOf('=');
    if (at <= 0) {
      // --build-arg NAME takes the value from the environment, as Docker does
      if (what === '--build-arg' && /^\w+$/.test(kv)) {
        if (io.env[kv] !== undefined) out[kv] = io.env[kv]!;
        continue;
      }
      return E.left(usage(`${what} ${JSON.stringify(kv)}: expected KEY=VALUE`));
    }
    out[kv.slice(0, at)] = kv.slice(at + 1);
  }
  return E.right(out);
};

const parseSecrets = (list: readonly string[]): E.Either<Failure, Map<string, string>> => {
  const out = new Map<string, string>();
  for (const s of list) {
    const fields = Object.fromEntries(s.split(',').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]));
    const id = fields.id;
    const src = fields.src ?? fields.source ?? (fields.env !== undefined ? undefined : undefined);
    if (!id || !src) return E.left(usage(`--secret ${JSON.stringify(s)}: expected id=ID,src=FILE`));
    out.set(id, resolve(src));
  }
  return E.right(out);
};

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
const contextFromDir = (dir: string, dockerfile: string | undefined): { stream: Readable; done: Promise<string> } => {
  const bin = siblingTool('tsd-ctx');
  const child = spawn(bin, [...(dockerfile !== undefined ? ['-f', dockerfile] : []), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((res) => child.on('close', (code) => res(code === 0 ? '' : err.trim() || `tsd-ctx exited ${code}`)));
  return { stream: child.stdout, done };
};

const progressMode = (wanted: string, isTTY: boolean): E.Either<Failure, ProgressMode> => {
  if (wanted === 'auto') return E.right(isTTY ? 'tty' : 'plain');
  if (wanted === 'plain' || wanted === 'tty' || wanted === 'json' || wanted === 'quiet') return E.right(wanted);
  return E.left(usage(`--progress=${wanted}: expected auto, plain, tty, json or quiet`));
};

const app = command({
  name: 'tsd-build',
  version: VERSION,
  description: 'build an image from a Dockerfile and a context tar on stdin (tsd-ctx DIR | tsd-build -t NAME)',
  args: {
    root: rootOption,
    tags: multioption({ type: array(string), long: 'tag', short: 't', description: 'name the image (repeatable)' }),
    file: option({ type: optional(string), long: 'file', short: 'f', description: 'the Dockerfile inside the context (default: the one tsd-ctx marked, else Dockerfile)' }),
    context: option({ type: optional(string), long: 'context', description: 'read the context from DIR instead of stdin' }),
    target: option({ type: optional(string), long: 'target', description: 'build this stage' }),
    buildArgs: multioption({ type: array(string), long: 'build-arg', description: 'KEY=VALUE for an ARG (repeatable)' }),
    secrets: multioption({ type: array(string), long: 'secret', description: 'id=ID,src=FILE for RUN --mount=type=secret (repeatable)' }),
    noCache: flag({ long: 'no-cache', description: 'do not use the build cache' }),
    pull: option({ type: string, long: 'pull', defaultValue: () => 'missing', description: 'pull a base image the store lacks: missing (default) or never' }),
    progress: option({ type: string, long: 'progress', defaultValue: () => 'auto', description: 'auto, plain, tty, json or quiet' }),
    output: option({ type: optional(string), long: 'output', short: 'o', description: 'oci-archive:- (stdout) or oci-archive:FILE instead of the store' }),
    compression: option({ type: string, long: 'compression', defaultValue: () => 'gzip', description: 'layer compression: gzip (default), zstd or none' }),
    print: flag({ long: 'print', description: 'print the parsed Dockerfile as JSON and build nothing' }),
    quiet: flag({ long: 'quiet', short: 'q', description: 'no progress output' }),
  },
  handler: async (a): Promise<CommandResult> => {
    const buildArgs = keyValues(a.buildArgs, '--build-arg');
    if (E.isLeft(buildArgs)) return buildArgs;
    const secrets = parseSecrets(a.secrets);
    if (E.isLeft(secrets)) return secrets;
    const mode = a.quiet ? E.right<Failure, ProgressMode>('quiet') : progressMode(a.progress, io.isTTY.stderr);
    if (E.isLeft(mode)) return mode;
    if (a.pull !== 'missing' && a.pull !== 'never') return E.left(usage(`--pull=${a.pull}: expected missing or never`));
    if (a.compression !== 'gzip' && a.compression !== 'zstd' && a.compression !== 'none') return E.left(usage(`--compression=${a.compression}: expected gzip, zstd or none`));
    let archiveTo: string | undefined;
    if (a.output !== undefined) {
      const m = /^(?:type=)?oci-archive[:,](?:dest=)?(.+)$/.exec(a.output);
      if (!m?.[1]) return E.left(usage(`--output=${a.output}: expected oci-archive:- or oci-archive:FILE`));
      archiveTo = m[1];
    }
    const refs: string[] = [];
    for (const t of a.tags) {
      const r = parseReference(t);
      if (E.isLeft(r)) return E.left(usage(`-t ${t}: ${r.left.message}`));
      refs.push(formatReference(r.right.digest ? { ...r.right, digest: undefined } : r.right));
    }
    const epochText = io.env.SOURCE_DATE_EPOCH;
    const epoch = epochText !== undefined && epochText !== '' ? Number(epochText) : undefined;
    if (epoch !== undefined && !(Number.isInteger(epoch) && epoch >= 0)) return E.left(usage(`SOURCE_DATE_EPOCH=${epochText}: expected whole seconds`));

    const opened = await openStore(a.root)();
    if (E.isLeft(opened)) return opened;
    const p = opened.right;
    const scratch = join(p.cache, 'tmp', `${process.pid}-${Date.now()}`);
    let ctx: BuildContext | undefined;
    const cleanup = async () => {
      await ctx?.dispose();
      await fs.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    };
    try {
      let source: Readable = io.stdin;
      let ctxDone: Promise<string> | undefined;
      if (a.context !== undefined) {
        const c = contextFromDir(a.context, a.file);
        source = c.stream;
        ctxDone = c.done;
      }
      const read = await readContextTar(source, scratch);
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
        const parsed = parseDockerfile(dockerfile, { file: dfPath });
        if (E.isLeft(parsed)) return parsed;
        const printed = printableDockerfile(parsed.right, { buildArgs: buildArgs.right, ...(a.target !== undefined ? { target: a.target } : {}) });
        if (E.isLeft(printed)) return printed;
        await write(io.stdout, `${JSON.stringify(printed.right)}\n`);
        return E.right(0);
      }
      const rootfs = snapshotRootfs(p);
      await sweepStaleRuns(p, rootfs);
      const progress = makeProgress(mode.right, io.stderr);
      const started = Date.now();
      const built = await build(
        { p, ctx, rootfs, progress, scratch },
        {
          dockerfile,
          file: dfPath,
          ...(a.target !== undefined ? { target: a.target } : {}),
          buildArgs: buildArgs.right,
          noCache: a.noCache,
          ...(epoch !== undefined ? { epoch } : {}),
          compression: a.compression,
          secrets: secrets.right,
          pull: a.pull,
        },
      );
      progress.finish();
      if (E.isLeft(built)) return built;
      const key = imageKey(built.right.config, built.right.layers, epoch);
      const reused = a.noCache ? undefined : await lookupImage(p, key);
      let descriptor: Descriptor;
      let configDescriptor: Descriptor;
      if (reused) {
        descriptor = reused.manifest;
        configDescriptor = reused.config;
      } else {
        const img = await writeImage(p, built.right.config, built.right.layers)();
        if (E.isLeft(img)) return img;
        descriptor = img.right.descriptor;
        configDescriptor = img.right.configDescriptor;
        await recordImage(p, key, { manifest: descriptor, config: configDescriptor });
      }
      const platform = { ...hostPlatform(), architecture: built.right.config.architecture, os: built.right.config.os };
      if (archiveTo !== undefined) {
        const plan = planArchive([{ ...(refs[0] !== undefined ? { ref: refs[0] } : {}), manifest: descriptor, config: configDescriptor, layers: built.right.layers }], 'oci');
        const out: Writable = archiveTo === '-' ? io.stdout : createWriteStream(archiveTo);
        const wrote = await writeArchive(p, plan, out)();
        if (E.isLeft(wrote)) return wrote;
        if (mode.right !== 'quiet') await write(io.stderr, `#done wrote ${archiveTo === '-' ? 'stdout' : archiveTo} in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
        return E.right(0);
      }
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
      await cleanup();
    }
  },
});

// a build that stops waiting on nothing (a bug) must not look like success: exit 0, no image line
let settled = false;
process.once('beforeExit', () => {
  if (settled) return;
  process.stderr.write('tsd-build: internal error: the build stopped before it finished\n');
  process.exit(ExitCode.tool);
});
void runShell('tsd-build', app, process.argv.slice(2)).finally(() => {
  settled = true;
});
