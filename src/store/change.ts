// Change: the Dockerfile instructions `docker import --change` accepts, applied to an image's
// container config (pure). CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER,
// VOLUME, WORKDIR; JSON (exec) form or shell form where Docker allows both.
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { ContainerConfig } from '../oci/config.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const bad = (line: string, why: string): Failure => failure('InvalidChange', `--change ${JSON.stringify(line)}: ${why}`);

/** A JSON array of strings, or undefined when `text` is not one. */
const jsonArray = (text: string): string[] | undefined => {
  if (!text.startsWith('[')) return undefined;
  try {
    const u = JSON.parse(text) as unknown;
    return Array.isArray(u) && u.every((x) => typeof x === 'string') ? u : undefined;
  } catch {
    return undefined;
  }
};

const unquote = (s: string): string => (s.length >= 2 && (s[0] === '"' || s[0] === "'") && s.endsWith(s[0]!) ? s.slice(1, -1) : s);

/** `k=v k2="v 2"` pairs, or the legacy `k v` form (one pair, the rest of the line is the value). */
const pairs = (args: string, line: string): E.Either<Failure, [string, string][]> => {
  if (!/^[^\s=]+=/.test(args)) {
    const m = /^(\S+)\s+(.*)$/.exec(args);
    if (!m) return E.left(bad(line, 'expected KEY=VALUE'));
    return E.right([[m[1]!, m[2]!]]);
  }
  const out: [string, string][] = [];
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  let rest = args;
  let m: RegExpExecArray | null;
  while ((m = re.exec(args)) !== null) {
    out.push([m[1]!, unquote(m[2]!).replace(/\\(.)/g, '$1')]);
    rest = rest.replace(m[0], '');
  }
  if (rest.trim() !== '' || out.length === 0) return E.left(bad(line, 'expected KEY=VALUE pairs'));
  return E.right(out);
};

const command = (args: string): string[] => jsonArray(args) ?? ['/bin/sh', '-c', args];

/** Applies one --change line to `c` (returns a new config). */
export const applyChange = (c: ContainerConfig, line: string): E.Either<Failure, ContainerConfig> => {
  const m = /^\s*(\w+)\s*(.*?)\s*$/s.exec(line);
  if (!m || !m[1]) return E.left(bad(line, 'expected an instruction such as CMD ["sh"]'));
  const verb = m[1].toUpperCase();
  const args = m[2] ?? '';
  const next: Mutable<ContainerConfig> = { ...c };
  if (args === '') return E.left(bad(line, `${verb} needs an argument`));
  switch (verb) {
    case 'CMD':
      next.Cmd = command(args);
      return E.right(next);
    case 'ENTRYPOINT':
      next.Entrypoint = command(args);
      return E.right(next);
    case 'ENV': {
      const kv = pairs(args, line);
      if (E.isLeft(kv)) return kv;
      const env = [...(c.Env ?? [])];
      for (const [k, v] of kv.right) {
        const i = env.findIndex((e) => e.split('=')[0] === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      next.Env = env;
      return E.right(next);
    }
    case 'LABEL': {
      const kv = pairs(args, line);
      if (E.isLeft(kv)) return kv;
      next.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(kv.right) };
      return E.right(next);
    }
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      for (const p of args.split(/\s+/)) {
        if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/i.test(p)) return E.left(bad(line, `bad port ${JSON.stringify(p)}`));
        ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      next.ExposedPorts = ports;
      return E.right(next);
    }
    case 'VOLUME': {
      const list = jsonArray(args) ?? args.split(/\s+/);
      next.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(list.map((v) => [v, {}])) };
      return E.right(next);
    }
    case 'USER':
      next.User = args;
      return E.right(next);
    case 'WORKDIR':
      next.WorkingDir = args.startsWith('/') ? args : `${(c.WorkingDir ?? '/').replace(/\/$/, '')}/${args}`;
      return E.right(next);
    case 'STOPSIGNAL':
      next.StopSignal = args;
      return E.right(next);
    case 'ONBUILD':
      next.OnBuild = [...(c.OnBuild ?? []), args];
      return E.right(next);
    default:
      return E.left(bad(line, `${verb} cannot be changed by import (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)`));
  }
};

export const applyChanges = (c: ContainerConfig, lines: readonly string[]): E.Either<Failure, ContainerConfig> => {
  let acc: E.Either<Failure, ContainerConfig> = E.right(c);
  for (const line of lines) acc = E.chain((x: ContainerConfig) => applyChange(x, line))(acc);
  return acc;
};
