// ConfigEffect: what each instruction does to the image config, and the history line it leaves.
// Pure: the builder folds these over a stage's expanded steps; RUN, COPY, ADD and WORKDIR also
// change the file tree, which the interpreter does (see step.ts). Docker's rules kept here:
// a new ENTRYPOINT resets an inherited CMD, shell forms go through SHELL, WORKDIR is relative to
// the previous one, EXPOSE without a protocol means tcp.
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { ContainerConfig, HealthConfig } from '../oci/config.js';
import type { Command, Instruction } from './dockerfile/ast.js';

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The part of the build state that instructions change without touching files. */
export interface StageConfig {
  readonly config: ContainerConfig;
  readonly author?: string;
  /** true once this stage set CMD itself (then a later ENTRYPOINT keeps it) */
  readonly cmdSet: boolean;
}

export const lineOf = (i: Instruction): string => (i.lines.start === i.lines.end ? `line ${i.lines.start}` : `lines ${i.lines.start}-${i.lines.end}`);

export const stepFailure = (file: string, i: Instruction, why: string, tag = 'BuildStepFailed'): Failure =>
  failure(tag, `${file}:${i.lines.start}: ${i.keyword}: ${why}`);

export const shellOf = (c: ContainerConfig): readonly string[] => (c.Shell && c.Shell.length > 0 ? c.Shell : DEFAULT_SHELL);

/** The argv a command form runs: exec form as is, shell form through SHELL. */
export const argvOf = (command: Command, c: ContainerConfig): readonly string[] =>
  command.form === 'exec' ? command.args : [...shellOf(c), command.text];

/** Sets KEY=VALUE in an env list, keeping the order of the keys already there. */
export const setEnv = (env: readonly string[], key: string, value: string): string[] => {
  const out = [...env];
  const at = out.findIndex((e) => e.slice(0, e.indexOf('=') === -1 ? e.length : e.indexOf('=')) === key);
  if (at >= 0) out[at] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
};

export const envRecord = (env: readonly string[] | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const e of env ?? []) {
    const at = e.indexOf('=');
    if (at > 0) out[e.slice(0, at)] = e.slice(at + 1);
  }
  return out;
};

/** An absolute, cleaned path: `rel` taken relative to `cwd` as WORKDIR and COPY destinations are. */
export const resolveIn = (cwd: string, rel: string): string => {
  const joined = rel.startsWith('/') ? rel : `${cwd || '/'}/${rel}`;
  const parts: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
};

const DURATION = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/;
const UNIT: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("30s", "1m30s") in nanoseconds. */
export const parseDuration = (text: string): number | undefined => {
  let rest = text.trim();
  let total = 0;
  if (rest === '0') return 0;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m || !m[1] || !m[2]) return undefined;
    total += Number(m[1]) * (UNIT[m[2]] ?? 0);
    rest = rest.slice(m[0].length);
  }
  return DURATION.test(text) || total > 0 ? Math.round(total) : undefined;
};

/** How a step shows in `history` (BuildKit's wording). */
export const createdBy = (i: Instruction, c: ContainerConfig): string => {
  const body = i.original.replace(/^\s*\S+\s*/, '');
  switch (i.keyword) {
    case 'RUN': {
      const argv = i.command.form === 'exec' ? i.command.args : [...shellOf(c), i.command.text];
      return `RUN ${argv.join(' ')} # buildkit`;
    }
    case 'COPY':
    case 'ADD':
      return `${i.keyword} ${body} # buildkit`;
    case 'WORKDIR':
      return `WORKDIR ${i.path}`;
    default:
      return `${i.keyword} ${body}`;
  }
};

const health = (i: Extract<Instruction, { keyword: 'HEALTHCHECK' }>, c: ContainerConfig, file: string): E.Either<Failure, HealthConfig> => {
  if (i.test.kind === 'none') return E.right({ Test: ['NONE'] });
  const test = i.test.command.form === 'exec' ? ['CMD', ...i.test.command.args] : ['CMD-SHELL', i.test.command.text];
  const out: { -readonly [K in keyof HealthConfig]: HealthConfig[K] } = { Test: test };
  for (const [field, text] of [['Interval', i.interval], ['Timeout', i.timeout], ['StartPeriod', i.startPeriod], ['StartInterval', i.startInterval]] as const) {
    if (text === undefined) continue;
    const ns = parseDuration(text);
    if (ns === undefined) return E.left(stepFailure(file, i, `invalid duration ${JSON.stringify(text)}`));
    out[field] = ns;
  }
  if (i.retries !== undefined) out.Retries = i.retries;
  void c;
  return E.right(out);
};

/**
 * The config after one instruction. `env` is the ENV the front end computed for this step (so
 * ENV needs no second expansion here). FROM, ARG, RUN, COPY and ADD leave the config as it is.
 */
export const applyConfig = (s: StageConfig, i: Instruction, file: string): E.Either<Failure, StageConfig> => {
  const c = s.config;
  switch (i.keyword) {
    case 'ENV': {
      let env = [...(c.Env ?? [])];
      for (const { key, value } of i.pairs) env = setEnv(env, key, value);
      return E.right({ ...s, config: { ...c, Env: env } });
    }
    case 'LABEL': {
      const labels: Record<string, string> = { ...(c.Labels ?? {}) };
      for (const { key, value } of i.pairs) labels[key] = value;
      return E.right({ ...s, config: { ...c, Labels: labels } });
    }
    case 'MAINTAINER':
      return E.right({ ...s, author: i.name });
    case 'EXPOSE': {
      const ports: Record<string, object> = { ...(c.ExposedPorts ?? {}) };
      for (const p of i.ports) {
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!m || !m[1]) return E.left(stepFailure(file, i, `invalid port ${JSON.stringify(p)}`));
        const proto = (m[3] ?? 'tcp').toLowerCase();
        const from = Number(m[1]);
        const to = m[2] ? Number(m[2]) : from;
        if (to < from || to > 65535) return E.left(stepFailure(file, i, `invalid port range ${JSON.stringify(p)}`));
        for (let n = from; n <= to; n++) ports[`${n}/${proto}`] = {};
      }
      return E.right({ ...s, config: { ...c, ExposedPorts: ports } });
    }
    case 'VOLUME': {
      const vols: Record<string, object> = { ...(c.Volumes ?? {}) };
      for (const v of i.paths) {
        if (v.trim() === '') return E.left(stepFailure(file, i, 'a volume path may not be empty'));
        vols[v] = {};
      }
      return E.right({ ...s, config: { ...c, Volumes: vols } });
    }
    case 'USER':
      return E.right({ ...s, config: { ...c, User: i.user } });
    case 'WORKDIR':
      return E.right({ ...s, config: { ...c, WorkingDir: resolveIn(c.WorkingDir ?? '/', i.path) } });
    case 'CMD':
      return E.right({ ...s, cmdSet: true, config: { ...c, Cmd: argvOf(i.command, c) } });
    case 'ENTRYPOINT': {
      const next: ContainerConfig = { ...c, Entrypoint: argvOf(i.command, c) };
      return E.right({ ...s, config: s.cmdSet ? next : { ...next, Cmd: null } });
    }
    case 'STOPSIGNAL':
      return E.right({ ...s, config: { ...c, StopSignal: i.signal } });
    case 'HEALTHCHECK':
      return E.map((h: HealthConfig) => ({ ...s, config: { ...c, Healthcheck: h } }))(health(i, c, file));
    case 'SHELL':
      if (i.args.length === 0) return E.left(stepFailure(file, i, 'SHELL needs a JSON array with at least one element'));
      return E.right({ ...s, config: { ...c, Shell: i.args } });
    case 'ONBUILD': {
      const text = i.original.replace(/^\s*ONBUILD\s+/i, '');
      return E.right({ ...s, config: { ...c, OnBuild: [...(c.OnBuild ?? []), text] } });
    }
    default:
      return E.right(s);
  }
};

/** Instructions that change only the config (no file tree, no layer). */
export const isConfigOnly = (i: Instruction): boolean => !['RUN', 'COPY', 'ADD', 'WORKDIR', 'FROM', 'ARG'].includes(i.keyword);
