// runtimeSpec: an image config plus run options becomes an OCI runtime config.json, with
// Docker's default confinement (defaults.ts, seccomp.ts). Pure: no I/O, every input is data the
// caller resolved (user IDs from the image's /etc/passwd, host rlimits, mount sources), so the
// result can be printed (`tsd-run --print`) and is tested field by field.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import type { ContainerConfig } from '../oci/config.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES, DEFAULT_MOUNTS, DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS, WANTED_NOFILE, type DeviceRule, type OciMount } from './defaults.js';
import { defaultSeccomp, type LinuxSeccomp } from './seccomp.js';

export type { OciMount } from './defaults.js';

export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
  /** the name, when the image's /etc/passwd knows it (for HOME) */
  readonly home?: string;
}

export type NetworkMode = 'none' | 'host' | 'private';

export interface Limits {
  /** bytes */
  readonly memory?: number;
  /** bytes of memory+swap; defaults to memory (no swap), as Docker does */
  readonly memorySwap?: number;
  /** CPUs, e.g. 0.5 */
  readonly cpus?: number;
  readonly pids?: number;
}

export interface HostLimits {
  /** the hard RLIMIT_NOFILE of the host (runc fails when asked for more) */
  readonly nofile: number;
}

/** Everything a container's config.json depends on, already decoded and resolved. */
export interface SpecInput {
  readonly image: ContainerConfig;
  /** replaces the image's Cmd; undefined keeps it */
  readonly cmd?: readonly string[];
  /** replaces the image's Entrypoint (and drops its Cmd unless cmd is given); [] clears it */
  readonly entrypoint?: readonly string[];
  /** KEY=VALUE, applied over the image's Env */
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly user?: ResolvedUser;
  readonly hostname?: string;
  readonly rootfs?: string;
  readonly readonly?: boolean;
  /** bind and tmpfs mounts, after the defaults */
  readonly mounts?: readonly OciMount[];
  readonly network?: NetworkMode;
  /** a network namespace to join instead of a new one (e.g. another container's) */
  readonly netnsPath?: string;
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly noNewPrivileges?: boolean;
  /** 'default' (Docker's profile), 'unconfined', or a profile object */
  readonly seccomp?: 'default' | 'unconfined' | LinuxSeccomp;
  readonly limits?: Limits;
  readonly host?: HostLimits;
  readonly terminal?: boolean;
  /** run this init (e.g. /usr/bin/tini-static, bind-mounted at /sbin/docker-init) as PID 1 */
  readonly init?: string;
  readonly cgroupsPath?: string;
  /** where the container's /etc/hosts, /etc/hostname and /etc/resolv.conf come from */
  readonly etc?: { readonly hosts?: string; readonly hostname?: string; readonly resolvConf?: string };
}

export interface OciProcess {
  readonly terminal: boolean;
  /** the pty's size from its first instant (runc applies it when it makes the console) */
  readonly consoleSize?: { readonly height: number; readonly width: number };
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids?: readonly number[] };
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly capabilities: { readonly bounding: readonly string[]; readonly effective: readonly string[]; readonly permitted: readonly string[] };
  readonly rlimits: readonly { readonly type: string; readonly hard: number; readonly soft: number }[];
  readonly noNewPrivileges: boolean;
  readonly oomScoreAdj?: number;
}

export interface RuntimeSpec {
  readonly ociVersion: string;
  readonly process: OciProcess;
  readonly root: { readonly path: string; readonly readonly: boolean };
  readonly hostname?: string;
  readonly mounts: readonly OciMount[];
  readonly linux: {
    readonly namespaces: readonly { readonly type: string; readonly path?: string }[];
    readonly maskedPaths: readonly string[];
    readonly readonlyPaths: readonly string[];
    readonly resources: {
      readonly devices: readonly DeviceRule[];
      readonly memory?: { readonly limit: number; readonly swap: number };
      readonly cpu?: { readonly quota: number; readonly period: number };
      readonly pids?: { readonly limit: number };
    };
    readonly cgroupsPath?: string;
    readonly seccomp?: LinuxSeccomp;
  };
}

export const INIT_PATH = '/sbin/docker-init';
const CPU_PERIOD = 100_000;

const bad = (message: string): Failure => failure('InvalidRunOption', message, ExitCode.tool);

/** Normalizes a capability name as Docker does: case-insensitive, CAP_ optional, ALL allowed. */
export const normalizeCap = (name: string): E.Either<Failure, string> => {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return E.right('ALL');
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  return ALL_CAPABILITIES.includes(full) ? E.right(full) : E.left(bad(`--cap-add/--cap-drop: unknown capability ${JSON.stringify(name)}`));
};

/** The default set, minus drops, plus adds (ALL in either list means every capability). */
export const capabilitySet = (add: readonly string[] = [], drop: readonly string[] = []): E.Either<Failure, readonly string[]> => {
  const norm = (xs: readonly string[]) => {
    const out: string[] = [];
    for (const x of xs) {
      const n = normalizeCap(x);
      if (E.isLeft(n)) return n;
      out.push(n.right);
    }
    return E.right(out);
  };
  const a = norm(add);
  if (E.isLeft(a)) return a;
  const d = norm(drop);
  if (E.isLeft(d)) return d;
  let caps = d.right.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !d.right.includes(c));
  if (a.right.includes('ALL')) caps = [...ALL_CAPABILITIES];
  else for (const c of a.right) if (!caps.includes(c)) caps.push(c);
  if (a.right.includes('ALL') && !d.right.includes('ALL')) caps = caps.filter((c) => !d.right.includes(c));
  return E.right(caps);
};

const envKey = (kv: string): string => kv.split('=', 1)[0] ?? kv;

/** Later entries replace earlier ones with the same key, keeping the first position. */
export const mergeEnv = (...lists: readonly (readonly string[])[]): readonly string[] => {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const k = envKey(kv);
      if (!values.has(k)) order.push(k);
      values.set(k, kv);
    }
  }
  return order.map((k) => values.get(k) as string);
};

/** Docker's ENTRYPOINT/CMD merge: --entrypoint drops the image's Cmd unless a CMD is given. */
export const commandLine = (image: ContainerConfig, entrypoint?: readonly string[], cmd?: readonly string[]): readonly string[] => {
  const ep = entrypoint ?? image.Entrypoint ?? [];
  const c = cmd !== undefined && cmd.length > 0 ? cmd : entrypoint !== undefined ? [] : (image.Cmd ?? []);
  return [...ep, ...c];
};

/** The process environment: PATH and HOSTNAME defaults, TERM for a tty, image Env, then -e. */
export const containerEnv = (input: Pick<SpecInput, 'image' | 'env' | 'hostname' | 'terminal' | 'user'>): readonly string[] =>
  mergeEnv(
    [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${input.hostname ?? ''}`],
    input.terminal ? ['TERM=xterm'] : [],
    input.image.Env ?? [],
    input.user?.home !== undefined ? [`HOME=${input.user.home}`] : [],
    input.env ?? [],
  );

const namespaces = (input: SpecInput): RuntimeSpec['linux']['namespaces'] => {
  // --network host shares the host's network and UTS namespaces (hostname), as Docker does
  const ns: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'mount' }];
  if (input.network === 'host') return ns;
  ns.push({ type: 'uts' });
  ns.push(input.netnsPath !== undefined ? { type: 'network', path: input.netnsPath } : { type: 'network' });
  return ns;
};

const etcMounts = (input: SpecInput): OciMount[] => {
  const out: OciMount[] = [];
  const bind = (destination: string, source?: string) => {
    if (source !== undefined) out.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', ...(input.readonly ? ['ro'] : [])] });
  };
  bind('/etc/resolv.conf', input.etc?.resolvConf);
  bind('/etc/hostname', input.etc?.hostname);
  bind('/etc/hosts', input.etc?.hosts);
  return out;
};

const resources = (input: SpecInput): E.Either<Failure, RuntimeSpec['linux']['resources']> => {
  const l = input.limits ?? {};
  const out: { devices: readonly DeviceRule[]; memory?: { limit: number; swap: number }; cpu?: { quota: number; period: number }; pids?: { limit: number } } = { devices: DEFAULT_DEVICE_RULES };
  if (l.memory !== undefined) {
    if (!(l.memory >= 6 * 1024 * 1024)) return E.left(bad('--memory: minimum memory limit allowed is 6MB'));
    out.memory = { limit: l.memory, swap: l.memorySwap ?? l.memory };
  }
  if (l.cpus !== undefined) {
    if (!(l.cpus > 0)) return E.left(bad('--cpus: must be a positive number'));
    out.cpu = { quota: Math.round(l.cpus * CPU_PERIOD), period: CPU_PERIOD };
  }
  if (l.pids !== undefined) {
    if (!Number.isInteger(l.pids) || l.pids === 0) return E.left(bad('--pids-limit: must be a non-zero integer (-1 for unlimited)'));
    out.pids = { limit: l.pids };
  }
  return E.right(out);
};

/** Builds the OCI runtime config.json of a container. */
export const runtimeSpec = (input: SpecInput): E.Either<Failure, RuntimeSpec> => {
  const caps = capabilitySet(input.capAdd, input.capDrop);
  if (E.isLeft(caps)) return caps;
  const res = resources(input);
  if (E.isLeft(res)) return res;
  const command = commandLine(input.image, input.entrypoint, input.cmd);
  if (command.length === 0) return E.left(failure('NoCommand', 'no command specified: the image has no Entrypoint or Cmd and none was given', ExitCode.tool));
  const args = input.init !== undefined ? [INIT_PATH, '--', ...command] : command;
  const cwd = input.cwd ?? (input.image.WorkingDir || '/');
  if (!cwd.startsWith('/')) return E.left(bad(`the working directory ${JSON.stringify(cwd)} is invalid: it needs to be an absolute path`));
  const user = input.user ?? { uid: 0, gid: 0, additionalGids: [] };
  const nofile = Math.min(WANTED_NOFILE, input.host?.nofile ?? WANTED_NOFILE);
  const initMount: OciMount[] = input.init !== undefined ? [{ destination: INIT_PATH, type: 'bind', source: input.init, options: ['bind', 'ro'] }] : [];
  const seccomp = input.seccomp === 'unconfined' ? undefined : input.seccomp === undefined || input.seccomp === 'default' ? defaultSeccomp(caps.right) : input.seccomp;
  const hostNet = input.network === 'host';
  return E.right({
    ociVersion: '1.0.2-dev',
    process: {
      terminal: input.terminal ?? false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
      args,
      env: containerEnv(input),
      cwd,
      capabilities: { bounding: caps.right, effective: caps.right, permitted: caps.right },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: input.noNewPrivileges ?? false,
      oomScoreAdj: 0,
    },
    root: { path: input.rootfs ?? 'rootfs', readonly: input.readonly ?? false },
    ...(hostNet ? {} : { hostname: input.hostname ?? '' }),
    mounts: [
      ...DEFAULT_MOUNTS,
      ...etcMounts(input),
      ...initMount,
      ...(input.mounts ?? []),
    ],
    linux: {
      namespaces: namespaces(input),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      resources: res.right,
      ...(input.cgroupsPath !== undefined ? { cgroupsPath: input.cgroupsPath } : {}),
      ...(seccomp !== undefined ? { seccomp } : {}),
    },
  });
};
