// tsd-ctx: writes the build context of DIR as a tar on stdout (`tsd-ctx . | tsd-build`).
import { fstatSync, promises as fs } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { command, flag, option, optional, positional, string } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { defaultRoot } from '../store/layout.js';
import { VERSION } from '../version.js';
import { DigestCache } from './digest-cache.js';
import { compileIgnore, readIgnoreFile } from './ignore.js';
import { packContext } from './pack.js';
import { walk, type WalkEntry } from './walk.js';

const io = processIo();

/**
 * A worker thread for a big tree when a core is idle for it (TSD_CTX_THREADS=0 or 1 decides
 * instead): on a busy machine the second thread only adds its start-up and hand-over costs. The
 * tar's bytes are the same either way.
 */
const useThreads = (env: string | undefined): boolean => {
  if (env === '0' || env === '1') return env === '1';
  const cores = availableParallelism();
  return cores > 1 && loadavg()[0]! < cores - 0.5;
};
const MAX_DOCKERFILE = 16 << 20;

/**
 * Stdout as a blocking descriptor the tar can be written to from the thread pool: a pipe or a
 * socket made blocking (Node made it non-blocking for its stream, which is then no longer used
 * for the tar), or a file or device as it is. Undefined leaves the writing to the stream.
 */
const blockingStdout = (): number | undefined => {
  const handle = (process.stdout as unknown as { _handle?: { setBlocking?: (on: boolean) => number } })._handle;
  if (typeof handle?.setBlocking === 'function') return handle.setBlocking(true) === 0 ? 1 : undefined;
  try {
    const s = fstatSync(1);
    return s.isFile() || s.isCharacterDevice() ? 1 : undefined;
  } catch {
    return undefined;
  }
};

const readStdin = async (input: Readable): Promise<E.Either<Failure, Buffer>> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of input) {
    size += (c as Buffer).length;
    if (size > MAX_DOCKERFILE) return E.left(failure('DockerfileTooLarge', 'Dockerfile on stdin: larger than 16 MiB'));
    chunks.push(c as Buffer);
  }
  return E.right(Buffer.concat(chunks));
};

const withFd = (fd: number | undefined) => (fd !== undefined ? { fd } : {});

const exists = async (p: string): Promise<boolean> => fs.stat(p).then(() => true, () => false);

/** --mtime / SOURCE_DATE_EPOCH: seconds since the epoch or an ISO date. */
export const decodeMtime = (s: string, what: string): E.Either<Failure, number> => {
  if (/^\d+$/.test(s.trim())) return E.right(Number(s.trim()));
  const t = Date.parse(s);
  return Number.isNaN(t) ? E.left(failure('InvalidMtime', `${what}: ${JSON.stringify(s)} is neither seconds since the epoch nor a date`)) : E.right(Math.floor(t / 1000));
};

interface Plan {
  readonly root: string;
  readonly ignoreFile?: string;
  /** the Dockerfile as a context path, when it lives inside DIR */
  readonly inside?: string;
  /** the Dockerfile's bytes, when it comes from outside DIR or stdin (sent as "Dockerfile") */
  readonly outside?: Buffer;
}

const planContext = async (dir: string, file: string | undefined): Promise<E.Either<Failure, Plan>> => {
  const root = resolve(dir);
  const st = await fs.stat(root).then((s) => E.right(s), (e) => E.left(fromError(`context directory ${dir}`)(e)));
  if (E.isLeft(st)) return st;
  if (!st.right.isDirectory()) return E.left(failure('NotADirectory', `context ${dir}: not a directory`));
  const rootIgnore = `${root}/.dockerignore`;
  const fallbackIgnore = (await exists(rootIgnore)) ? rootIgnore : undefined;
  if (file === '-') {
    const data = await readStdin(io.stdin);
    if (E.isLeft(data)) return data;
    return E.right({ root, ...(fallbackIgnore ? { ignoreFile: fallbackIgnore } : {}), outside: data.right });
  }
  // like docker build: DIR/Dockerfile, else DIR/dockerfile; -f is taken from the current directory
  const df = file !== undefined ? resolve(file) : !(await exists(`${root}/Dockerfile`)) && (await exists(`${root}/dockerfile`)) ? `${root}/dockerfile` : `${root}/Dockerfile`;
  const dfStat = await fs.stat(df).then((s) => E.right(s), (e) => E.left(fromError(`Dockerfile ${file ?? `${dir}/Dockerfile`}`)(e)));
  if (E.isLeft(dfStat)) return dfStat;
  if (!dfStat.right.isFile()) return E.left(failure('NotAFile', `Dockerfile ${file ?? 'Dockerfile'}: not a regular file`));
  const specific = `${df}.dockerignore`;
  const ignoreFile = (await exists(specific)) ? specific : fallbackIgnore;
  const rel = relative(root, df);
  if (rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep)) {
    return E.right({ root, ...(ignoreFile ? { ignoreFile } : {}), inside: rel.split(sep).join('/') });
  }
  const data = await fs.readFile(df).then((b) => E.right(b), (e) => E.left(fromError(`read Dockerfile ${file}`)(e)));
  if (E.isLeft(data)) return data;
  return E.right({ root, ...(ignoreFile ? { ignoreFile } : {}), outside: data.right });
};

function* dropping(entries: Iterable<E.Either<Failure, WalkEntry>>, path: string, warn: (m: string) => void) {
  for (const r of entries) {
    if (E.isRight(r) && r.right.path === path) {
      warn(`the context's own ${path} is replaced by the Dockerfile given with -f`);
      continue;
    }
    yield r;
  }
}

const ctx = command({
  name: 'tsd-ctx',
  version: VERSION,
  description: 'write the build context of DIR as a tar on stdout, .dockerignore applied',
  args: {
    dir: positional({ type: optional(string), displayName: 'DIR', description: 'the context directory (default .)' }),
    file: option({ type: optional(string), long: 'file', short: 'f', description: "the Dockerfile (default DIR/Dockerfile); '-' reads it from stdin" }),
    mtime: option({ type: optional(string), long: 'mtime', description: 'clamp file times to this (seconds or ISO date; default $SOURCE_DATE_EPOCH)' }),
    noDigests: flag({ long: 'no-digests', description: 'leave out the TSD.sha256 PAX record of each file (faster; the builder hashes instead)' }),
  },
  handler: async ({ dir, file, mtime, noDigests }): Promise<CommandResult> => {
    const started = Date.now();
    if (io.isTTY.stdout) return E.left(failure('StdoutIsTerminal', 'refusing to write a tar to a terminal: pipe it to tsd-build or redirect it to a file'));
    let clamp: number | undefined;
    const epoch = mtime ?? io.env.SOURCE_DATE_EPOCH;
    if (epoch !== undefined && epoch !== '') {
      const m = decodeMtime(epoch, mtime !== undefined ? '--mtime' : 'SOURCE_DATE_EPOCH');
      if (E.isLeft(m)) return m;
      clamp = m.right;
    }
    const plan = await planContext(dir ?? '.', file);
    if (E.isLeft(plan)) return plan;
    const { root, ignoreFile, inside, outside } = plan.right;
    let lines: string[] = [];
    if (ignoreFile !== undefined) {
      const text = await fs.readFile(ignoreFile, 'utf8').then((t) => E.right(t), (e) => E.left(fromError(`read ${relative(process.cwd(), ignoreFile) || ignoreFile}`)(e)));
      if (E.isLeft(text)) return text;
      lines = readIgnoreFile(text.right);
    }
    const compiled = compileIgnore(lines);
    if (!compiled.ok) return E.left(failure('InvalidDockerignore', `${ignoreFile ?? '.dockerignore'}: ${compiled.error}`));
    const always = new Set<string>();
    if (await exists(`${root}/.dockerignore`)) always.add('.dockerignore');
    if (inside !== undefined) always.add(inside);
    if (ignoreFile !== undefined) {
      const r = relative(root, ignoreFile);
      if (!r.startsWith('..')) always.add(r.split(sep).join('/'));
    }
    const warn = (m: string) => void write(io.stderr, `tsd-ctx: warning: ${m}\n`);
    const walked = walk(root, { patterns: compiled.patterns, always });
    const dockerfile = inside ?? (outside ? 'Dockerfile' : undefined);
    const cache = noDigests || io.env.TSD_CTX_DIGEST_CACHE === '0' ? DigestCache.none() : DigestCache.open(defaultRoot(io.env), root, started);
    const result = await packContext(outside ? dropping(walked, 'Dockerfile', warn) : walked, io.stdout, {
      warn,
      threads: useThreads(io.env.TSD_CTX_THREADS),
      ...(io.env.TSD_CTX_STREAM === '1' ? {} : withFd(blockingStdout())),
      digests: !noDigests,
      cache,
      ...(clamp !== undefined ? { mtime: clamp } : {}),
      ...(outside ? { extra: [{ path: 'Dockerfile', data: outside }] } : {}),
      ...(dockerfile !== undefined ? { dockerfile } : {}),
    });
    // a reader that stops early (`tsd-ctx . | head`) ends the tar quietly, as it ends any tsd tool
    if (E.isLeft(result)) return result.left._tag === 'BrokenPipe' ? E.right(ExitCode.ok) : result;
    cache.save();
    return E.right(ExitCode.ok);
  },
});

// the worker threads of tsd-ctx load the module that holds the encoder, which may be this one
if (isMainThread) void runShell('tsd-ctx', ctx, process.argv.slice(2));
