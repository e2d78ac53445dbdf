// BuildArgs: tsd-build's command line decoded into typed values, by hand rather than with cmd-ts:
// a cached rebuild is mostly start-up, and the parser library costs ~20 ms of it (bench/build).
// Pure: argv and the environment in, a value or one usage error out.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';

import type { BuildCompression } from './layer-pack.js';
import type { ProgressMode } from './progress.js';

/** Where `--output` sends the image instead of (or besides) the store. */
export type BuildOutput =
  | { readonly type: 'oci-archive'; readonly dest: string }
  | { readonly type: 'docker-archive'; readonly dest: string }
  /** the image's merged file tree as one tar */
  | { readonly type: 'tar'; readonly dest: string }
  /** the image's merged file tree written into a directory */
  | { readonly type: 'local'; readonly dest: string };

export interface BuildArgs {
  readonly root?: string;
  readonly tags: readonly string[];
  readonly file?: string;
  readonly context?: string;
  readonly target?: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  /** --secret id → host file (absolute) */
  readonly secrets: ReadonlyMap<string, string>;
  readonly noCache: boolean;
  readonly pull: 'missing' | 'never';
  /** as asked: auto is resolved by the shell, which knows whether stderr is a terminal */
  readonly progress: ProgressMode | 'auto';
  readonly output?: BuildOutput;
  /** undefined: the default (docs/build.md, "Layers") */
  readonly compression?: BuildCompression;
  readonly print: boolean;
}

export type Decoded = { readonly _tag: 'build'; readonly args: BuildArgs } | { readonly _tag: 'help' } | { readonly _tag: 'version' };

export const USAGE = `tsd-build: build an image from a Dockerfile and a context tar on stdin (tsd-ctx DIR | tsd-build -t NAME)

usage: tsd-build [OPTIONS] < CONTEXT.tar

  -t, --tag REF            name the image (repeatable)
  -f, --file PATH          the Dockerfile inside the context (default: the one tsd-ctx marked, else Dockerfile)
      --context DIR        read the context from DIR (runs tsd-ctx DIR) instead of stdin
      --target STAGE       build this stage
      --build-arg K=V      a value for an ARG (repeatable; K alone takes it from the environment)
      --secret id=ID,src=FILE
                           a file for RUN --mount=type=secret (repeatable)
      --no-cache           do not use the build cache (results are still recorded)
      --pull missing|never pull a base image the store lacks (default missing)
      --progress MODE      auto, plain, tty, json or quiet
  -q, --quiet              no progress output
  -o, --output OUT         oci-archive:DEST, docker-archive:DEST, type=tar,dest=DEST or
                           type=local,dest=DIR (DEST - is stdout) instead of the image JSON line
      --compression C      layer compression: gzip (default), zstd or none
      --print              print the parsed Dockerfile as JSON and build nothing
      --root DIR           the store (env TSD_ROOT; default /var/lib/tsd for root)
  -h, --help               this text
  -v, --version            the version
`;

const usage = (message: string): Failure => failure('Usage', message, ExitCode.user);

/** Options that take a value, by every name they answer to. */
const VALUED: Record<string, string> = {
  '--root': 'root',
  '--tag': 'tag',
  '-t': 'tag',
  '--file': 'file',
  '-f': 'file',
  '--context': 'context',
  '--target': 'target',
  '--build-arg': 'build-arg',
  '--secret': 'secret',
  '--pull': 'pull',
  '--progress': 'progress',
  '--output': 'output',
  '-o': 'output',
  '--compression': 'compression',
};
const FLAGS: Record<string, string> = { '--no-cache': 'no-cache', '--print': 'print', '--quiet': 'quiet', '-q': 'quiet', '--help': 'help', '-h': 'help', '--version': 'version', '-v': 'version' };

/** `--output` as Docker's forms: `oci-archive:-`, `type=oci-archive,dest=FILE`, `type=local,dest=DIR`, `-` (a tar). */
export const decodeOutput = (text: string): E.Either<Failure, BuildOutput> => {
  const types = ['oci-archive', 'docker-archive', 'tar', 'local'] as const;
  type T = (typeof types)[number];
  let type: string | undefined;
  let dest: string | undefined;
  if (text === '-') return E.right({ type: 'tar', dest: '-' });
  const colon = /^([a-z-]+):(.+)$/.exec(text);
  if (colon && !colon[1]!.includes('=')) {
    type = colon[1];
    dest = colon[2];
  } else {
    for (const field of text.split(',')) {
      const at = field.indexOf('=');
      const k = at < 0 ? field : field.slice(0, at);
      const v = at < 0 ? '' : field.slice(at + 1);
      if (k === 'type') type = v;
      else if (k === 'dest') dest = v;
      else return E.left(usage(`--output=${text}: unknown field ${JSON.stringify(k)} (expected type=…,dest=…)`));
    }
  }
  if (type === undefined || !(types as readonly string[]).includes(type)) {
    return E.left(usage(`--output=${text}: expected oci-archive:DEST, docker-archive:DEST, type=tar,dest=DEST or type=local,dest=DIR`));
  }
  if (dest === undefined || dest === '') return E.left(usage(`--output=${text}: no dest`));
  if (type === 'local' && dest === '-') return E.left(usage(`--output=${text}: type=local needs a directory, not stdout`));
  return E.right({ type: type as T, dest });
};

const decodeSecret = (s: string): E.Either<Failure, [string, string]> => {
  const fields = new Map<string, string>();
  for (const f of s.split(',')) {
    const at = f.indexOf('=');
    if (at > 0) fields.set(f.slice(0, at), f.slice(at + 1));
  }
  const id = fields.get('id');
  const src = fields.get('src') ?? fields.get('source');
  if (!id || !src) return E.left(usage(`--secret ${JSON.stringify(s)}: expected id=ID,src=FILE`));
  return E.right([id, src]);
};

/**
 * Decodes argv (without node and the script). `resolvePath` makes a secret's file absolute (the
 * shell passes path.resolve); `env` supplies TSD_ROOT and `--build-arg NAME` values.
 */
export const decodeArgs = (argv: readonly string[], env: Readonly<Record<string, string | undefined>>, resolvePath: (p: string) => string = (p) => p): E.Either<Failure, Decoded> => {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  for (let k = 0; k < argv.length; k++) {
    const word = argv[k]!;
    if (word === '--') {
      if (k + 1 < argv.length) return E.left(usage(`unexpected argument ${JSON.stringify(argv[k + 1])}: the context comes on stdin (tsd-ctx DIR | tsd-build) or from --context DIR`));
      break;
    }
    let name = word;
    let value: string | undefined;
    const eq = word.indexOf('=');
    if (word.startsWith('-') && eq > 0) {
      name = word.slice(0, eq);
      value = word.slice(eq + 1);
    } else if (/^-[a-z]./.test(word) && VALUED[word.slice(0, 2)] !== undefined) {
      // -tNAME, as getopt allows
      name = word.slice(0, 2);
      value = word.slice(2);
    }
    const valued = VALUED[name];
    const flag = FLAGS[name];
    if (valued !== undefined) {
      if (value === undefined) {
        value = argv[++k];
        if (value === undefined) return E.left(usage(`${name}: needs a value`));
      }
      const list = values.get(valued) ?? [];
      list.push(value);
      values.set(valued, list);
    } else if (flag !== undefined) {
      if (value !== undefined && value !== 'true') return E.left(usage(`${name} takes no value`));
      flags.add(flag);
    } else if (word.startsWith('-') && word !== '-') return E.left(usage(`unknown option ${name} (tsd-build --help lists them)`));
    else return E.left(usage(`unexpected argument ${JSON.stringify(word)}: the context comes on stdin (tsd-ctx DIR | tsd-build) or from --context DIR`));
  }
  if (flags.has('help')) return E.right({ _tag: 'help' });
  if (flags.has('version')) return E.right({ _tag: 'version' });
  const one = (k: string): string | undefined => {
    const list = values.get(k);
    return list?.[list.length - 1];
  };
  const buildArgs: Record<string, string> = {};
  for (const kv of values.get('build-arg') ?? []) {
    const at = kv.indexOf('=');
    if (at > 0) buildArgs[kv.slice(0, at)] = kv.slice(at + 1);
    else if (/^\w+$/.test(kv)) {
      // --build-arg NAME takes the value from the environment, as Docker does
      const v = env[kv];
      if (v !== undefined) buildArgs[kv] = v;
    } else return E.left(usage(`--build-arg ${JSON.stringify(kv)}: expected KEY=VALUE`));
  }
  const secrets = new Map<string, string>();
  for (const s of values.get('secret') ?? []) {
    const d = decodeSecret(s);
    if (E.isLeft(d)) return d;
    secrets.set(d.right[0], resolvePath(d.right[1]));
  }
  const pull = one('pull') ?? 'missing';
  if (pull !== 'missing' && pull !== 'never') return E.left(usage(`--pull=${pull}: expected missing or never`));
  const progress = flags.has('quiet') ? 'quiet' : one('progress') ?? 'auto';
  if (!['auto', 'plain', 'tty', 'json', 'quiet'].includes(progress)) return E.left(usage(`--progress=${progress}: expected auto, plain, tty, json or quiet`));
  const compression = one('compression');
  if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd' && compression !== 'none') {
    return E.left(usage(`--compression=${compression}: expected gzip, zstd or none`));
  }
  const outputText = one('output');
  let output: BuildOutput | undefined;
  if (outputText !== undefined) {
    const o = decodeOutput(outputText);
    if (E.isLeft(o)) return o;
    output = o.right;
  }
  const root = one('root') ?? (env.TSD_ROOT || undefined);
  const file = one('file');
  const context = one('context');
  const target = one('target');
  return E.right({
    _tag: 'build',
    args: {
      ...(root !== undefined ? { root } : {}),
      tags: values.get('tag') ?? [],
      ...(file !== undefined ? { file } : {}),
      ...(context !== undefined ? { context } : {}),
      ...(target !== undefined ? { target } : {}),
      buildArgs,
      secrets,
      noCache: flags.has('no-cache'),
      pull,
      progress: progress as ProgressMode | 'auto',
      ...(output !== undefined ? { output } : {}),
      ...(compression !== undefined ? { compression } : {}),
      print: flags.has('print'),
    },
  });
};
