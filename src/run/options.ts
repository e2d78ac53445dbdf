// Run options: `tsd-run [OPTIONS] IMAGE [CMD…]` decoded from argv into one typed value. Every
// check that needs no I/O happens here, so a bad flag fails before anything is created.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { allValues, isSet, lastValue, parseArgv, parseBytes, parseNumber, type FlagSpec } from './argv.js';
import { parseDetachKeys } from './detach-keys.js';
import { checkDuplicates, parseMountFlag, parseTmpfsFlag, parseVolumeFlag, type MountRequest } from './mounts.js';
import { MAX_BINDINGS, parseBindings, parsePublish, type PortMapping } from './ports.js';
import type { Limits, NetworkMode } from './spec.js';

export const RUN_FLAGS: readonly FlagSpec[] = [
  { long: 'name', value: true, description: 'name the container' },
  { long: 'rm', description: 'remove the container when it exits' },
  { long: 'detach', short: 'd', description: 'run in the background under a supervisor; print the container JSON' },
  { long: 'interactive', short: 'i', description: 'keep stdin open' },
  { long: 'attach', short: 'a', value: true, description: 'attach to stdin, stdout or stderr (repeatable; default stdout and stderr, and stdin with -i)' },
  { long: 'detach-keys', value: true, description: 'keys that detach from a -it run, leaving it running (default ctrl-p,ctrl-q)' },
  { long: 'tty', short: 't', description: 'allocate a pseudo-terminal' },
  { long: 'env', short: 'e', value: true, description: 'set an environment variable (KEY=VALUE, or KEY from this environment)' },
  { long: 'env-file', value: true, description: 'read environment variables from a file' },
  { long: 'workdir', short: 'w', value: true, description: 'working directory inside the container' },
  { long: 'user', short: 'u', value: true, description: 'user[:group], names or IDs' },
  { long: 'group-add', value: true, description: 'an extra group' },
  { long: 'entrypoint', value: true, description: "override the image's ENTRYPOINT ('' clears it)" },
  { long: 'volume', short: 'v', value: true, description: 'bind a host path or a named volume: SRC:DST[:ro]' },
  { long: 'mount', value: true, description: 'type=bind|volume|tmpfs,source=…,target=…[,readonly]' },
  { long: 'tmpfs', value: true, description: 'mount a tmpfs: /path[:size=64m]' },
  { long: 'read-only', description: 'mount the root file system read-only' },
  { long: 'hostname', short: 'h', value: true, description: 'container host name' },
  { long: 'init', description: 'run tini as PID 1 to reap zombies and forward signals' },
  { long: 'memory', short: 'm', value: true, description: 'memory limit, e.g. 64m' },
  { long: 'memory-swap', value: true, description: 'memory plus swap limit (-1 unlimited)' },
  { long: 'cpus', value: true, description: 'number of CPUs, e.g. 0.5' },
  { long: 'pids-limit', value: true, description: 'maximum number of processes' },
  { long: 'cap-add', value: true, description: 'add a capability' },
  { long: 'cap-drop', value: true, description: 'drop a capability' },
  { long: 'security-opt', value: true, description: 'no-new-privileges, seccomp=unconfined|PROFILE.json' },
  { long: 'restart', value: true, description: 'no, on-failure[:N], always, unless-stopped (with -d)' },
  { long: 'stop-signal', value: true, description: 'signal that stops the container (default SIGTERM or the image\'s)' },
  { long: 'stop-timeout', value: true, description: 'seconds before SIGKILL on stop (default 10)' },
  { long: 'label', short: 'l', value: true, description: 'KEY=VALUE metadata' },
  { long: 'log-opt', value: true, description: 'max-size=SIZE, max-file=N: rotate the log (repeatable)' },
  { long: 'network', value: true, description: 'private (default; own namespace with loopback), none, host' },
  { long: 'net', value: true },
  { long: 'publish', short: 'p', value: true, description: 'publish a port: [IP:][HOST:]CONTAINER[/tcp|/udp] (no HOST: the kernel picks one; IPv6: [::1]:HOST:CONTAINER)' },
  { long: 'runtime', value: true, description: 'OCI runtime: runc (default) or crun' },
  { long: 'health-cmd', value: true, description: 'command to check health (run with /bin/sh -c)' },
  { long: 'health-interval', value: true, description: 'time between checks, e.g. 30s' },
  { long: 'health-timeout', value: true },
  { long: 'health-retries', value: true },
  { long: 'health-start-period', value: true },
  { long: 'no-healthcheck', description: "disable the image's HEALTHCHECK" },
  { long: 'print', description: 'print the OCI config.json that would run, and do nothing' },
  { long: 'root', value: true, description: 'the store (default $TSD_ROOT or /var/lib/tsd)' },
  { long: 'help', description: 'print this help' },
];

export type RestartPolicy = { readonly name: 'no' | 'always' | 'unless-stopped' } | { readonly name: 'on-failure'; readonly max: number };

/** Log rotation: the live log is rotated once it reaches maxSize; maxFile files in all are kept. */
export interface LogRotation {
  readonly maxSize: number;
  readonly maxFile: number;
}

/** Docker's `--log-opt key=value` (repeated; also key=value,key=value): max-size and max-file. */
export const parseLogOpts = (opts: readonly string[]): E.Either<Failure, LogRotation | undefined> => {
  let maxSize: number | undefined;
  let maxFile: number | undefined;
  for (const o of opts.flatMap((x) => x.split(','))) {
    const eq = o.indexOf('=');
    const [k, val] = eq < 0 ? [o, ''] : [o.slice(0, eq).trim(), o.slice(eq + 1).trim()];
    if (k === 'max-size') {
      const b = parseBytes('--log-opt max-size', val);
      if (E.isLeft(b)) return b;
      if (b.right < 1) return E.left(bad(`--log-opt max-size: ${JSON.stringify(val)} must be more than 0`));
      maxSize = b.right;
    } else if (k === 'max-file') {
      if (!/^\d+$/.test(val) || Number(val) < 1 || Number(val) > 100) return E.left(bad(`--log-opt max-file: ${JSON.stringify(val)}: expected a whole number from 1 to 100`));
      maxFile = Number(val);
    } else return E.left(bad(`--log-opt: unknown option ${JSON.stringify(o)} (max-size=SIZE, max-file=N)`));
  }
  if (maxFile !== undefined && maxSize === undefined) return E.left(bad('--log-opt max-file needs max-size'));
  return E.right(maxSize === undefined ? undefined : { maxSize, maxFile: maxFile ?? 1 });
};

export interface HealthOverride {
  readonly cmd?: string;
  readonly interval?: number;
  readonly timeout?: number;
  readonly retries?: number;
  readonly startPeriod?: number;
  readonly disabled: boolean;
}

export interface RunOptions {
  readonly name?: string;
  readonly rm: boolean;
  readonly detach: boolean;
  readonly interactive: boolean;
  readonly tty: boolean;
  readonly env: readonly string[];
  readonly envFiles: readonly string[];
  readonly workdir?: string;
  readonly user?: string;
  readonly groupAdd: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly mounts: readonly MountRequest[];
  readonly readOnly: boolean;
  readonly hostname?: string;
  readonly init: boolean;
  readonly limits: Limits;
  readonly capAdd: readonly string[];
  readonly capDrop: readonly string[];
  readonly noNewPrivileges: boolean;
  /** 'default', 'unconfined', or a path to a profile file */
  readonly seccomp: string;
  readonly restart: RestartPolicy;
  readonly stopSignal?: string;
  readonly stopTimeout?: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly logRotation?: LogRotation;
  readonly network: NetworkMode;
  /** each -p as asked (no IP reads as 0.0.0.0) */
  readonly publish: readonly PortMapping[];
  /** what the host binds for them: a -p without an IP on 0.0.0.0 and (optional) [::], as Docker */
  readonly bindings: readonly PortMapping[];
  readonly runtime: string;
  readonly health: HealthOverride;
  readonly print: boolean;
  readonly root?: string;
  readonly help: boolean;
  /** -a: the streams attached in the foreground (absent: stdout and stderr, stdin with -i) */
  readonly attach?: { readonly stdin: boolean; readonly stdout: boolean; readonly stderr: boolean };
  /** --detach-keys, decoded (absent: ctrl-p ctrl-q) */
  readonly detachKeys?: readonly number[];
  /** undefined: read the image JSON from stdin */
  readonly image?: string;
  readonly cmd?: readonly string[];
}

const bad = (message: string): Failure => failure('InvalidRunOption', message, ExitCode.tool);

export const parseRestart = (s: string): E.Either<Failure, RestartPolicy> => {
  const m = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(s);
  if (!m || (m[2] !== undefined && m[1] !== 'on-failure')) return E.left(bad(`--restart: invalid restart policy ${JSON.stringify(s)} (no, on-failure[:N], always, unless-stopped)`));
  if (m[1] === 'on-failure') return E.right({ name: 'on-failure', max: m[2] !== undefined ? Number(m[2]) : 0 });
  return E.right({ name: m[1] as 'no' | 'always' | 'unless-stopped' });
};

/** "30s", "1m30s", "500ms", "2h" → milliseconds. */
export const parseDuration = (flag: string, s: string): E.Either<Failure, number> => {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
    consumed += m[0].length;
  }
  if (consumed !== s.length || s === '') return E.left(bad(`${flag}: invalid duration ${JSON.stringify(s)} (e.g. 30s, 1m, 500ms)`));
  return E.right(total);
};

const seq = <A>(xs: readonly E.Either<Failure, A>[]): E.Either<Failure, A[]> => {
  const out: A[] = [];
  for (const x of xs) {
    if (E.isLeft(x)) return x;
    out.push(x.right);
  }
  return E.right(out);
};

export const decodeRunOptions = (argv: readonly string[]): E.Either<Failure, RunOptions> => {
  const parsed = parseArgv(argv, RUN_FLAGS, true);
  if (E.isLeft(parsed)) return parsed;
  const p = parsed.right;
  const v = (k: string) => lastValue(p, k);
  const mounts = seq([...allValues(p, 'volume').map(parseVolumeFlag), ...allValues(p, 'mount').map(parseMountFlag), ...allValues(p, 'tmpfs').map(parseTmpfsFlag)]);
  if (E.isLeft(mounts)) return mounts;
  const dup = checkDuplicates(mounts.right);
  if (E.isLeft(dup)) return dup;
  const publish = seq(allValues(p, 'publish').map(parsePublish));
  if (E.isLeft(publish)) return publish;
  const bindings = seq(allValues(p, 'publish').map(parseBindings));
  if (E.isLeft(bindings)) return bindings;
  if (bindings.right.flat().length > MAX_BINDINGS) return E.left(bad(`-p: at most ${MAX_BINDINGS} host addresses can be published (a -p without an IP binds two: 0.0.0.0 and [::])`));
  const limits: { memory?: number; memorySwap?: number; cpus?: number; pids?: number } = {};
  if (v('memory') !== undefined) {
    const m = parseBytes('--memory', v('memory') as string);
    if (E.isLeft(m)) return m;
    limits.memory = m.right;
  }
  if (v('memory-swap') !== undefined) {
    if (v('memory-swap') === '-1') limits.memorySwap = -1;
    else {
      const m = parseBytes('--memory-swap', v('memory-swap') as string);
      if (E.isLeft(m)) return m;
      limits.memorySwap = m.right;
    }
  }
  if (v('cpus') !== undefined) {
    const c = parseNumber('--cpus', v('cpus') as string);
    if (E.isLeft(c)) return c;
    limits.cpus = c.right;
  }
  if (v('pids-limit') !== undefined) {
    const c = parseNumber('--pids-limit', v('pids-limit') as string, true);
    if (E.isLeft(c)) return c;
    limits.pids = c.right;
  }
  const restart = parseRestart(v('restart') ?? 'no');
  if (E.isLeft(restart)) return restart;
  let stopTimeout: number | undefined;
  if (v('stop-timeout') !== undefined) {
    const t = parseNumber('--stop-timeout', v('stop-timeout') as string, true);
    if (E.isLeft(t)) return t;
    stopTimeout = t.right;
  }
  const network = v('network') ?? v('net') ?? 'private';
  if (network !== 'private' && network !== 'none' && network !== 'host' && network !== 'bridge' && network !== 'default') {
    return E.left(bad(`--network: ${JSON.stringify(network)} is not supported (private, none, host)`));
  }
  const net: NetworkMode = network === 'bridge' || network === 'default' ? 'private' : network;
  if (net !== 'private' && publish.right.length > 0) return E.left(bad(`-p: ports can only be published with --network private (not ${net})`));
  let noNewPrivileges = false;
  let seccomp = 'default';
  for (const o of allValues(p, 'security-opt')) {
    const [k, val] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : o.includes(':') ? [o.slice(0, o.indexOf(':')), o.slice(o.indexOf(':') + 1)] : [o, 'true'];
    if (k === 'no-new-privileges') noNewPrivileges = val !== 'false';
    else if (k === 'seccomp') seccomp = val;
    else if (k === 'label' || k === 'apparmor') continue; // no LSM here: accepted and ignored, as Docker does without one
    else return E.left(bad(`--security-opt: unknown option ${JSON.stringify(o)}`));
  }
  const labels: Record<string, string> = {};
  for (const l of allValues(p, 'label')) {
    const eq = l.indexOf('=');
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  const health: { cmd?: string; interval?: number; timeout?: number; retries?: number; startPeriod?: number; disabled: boolean } = { disabled: isSet(p, 'no-healthcheck') };
  if (v('health-cmd') !== undefined) health.cmd = v('health-cmd') as string;
  for (const [flag, key] of [['health-interval', 'interval'], ['health-timeout', 'timeout'], ['health-start-period', 'startPeriod']] as const) {
    if (v(flag) !== undefined) {
      const d = parseDuration(`--${flag}`, v(flag) as string);
      if (E.isLeft(d)) return d;
      health[key] = d.right;
    }
  }
  if (v('health-retries') !== undefined) {
    const r = parseNumber('--health-retries', v('health-retries') as string, true);
    if (E.isLeft(r)) return r;
    health.retries = r.right;
  }
  const name = v('name');
  if (name !== undefined && !/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) return E.left(bad(`--name: invalid container name ${JSON.stringify(name)}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`));
  const logRotation = parseLogOpts(allValues(p, 'log-opt'));
  if (E.isLeft(logRotation)) return logRotation;
  const detach = isSet(p, 'detach');
  if (detach && isSet(p, 'rm') && restart.right.name !== 'no') return E.left(bad('--restart and --rm cannot be combined'));
  const streams = allValues(p, 'attach').map((a) => a.toLowerCase());
  const odd = streams.find((a) => a !== 'stdin' && a !== 'stdout' && a !== 'stderr');
  if (odd !== undefined) return E.left(bad(`-a ${odd}: valid streams are stdin, stdout and stderr`));
  if (detach && streams.length > 0) return E.left(bad('-a and -d cannot be combined (a detached container is attached to nothing)'));
  const keysArg = v('detach-keys');
  const detachKeys = keysArg === undefined ? undefined : parseDetachKeys(keysArg);
  if (detachKeys !== undefined && E.isLeft(detachKeys)) return E.left(bad(detachKeys.left.message));
  const entrypoint = v('entrypoint');
  const [image, ...cmd] = p.positionals;
  return E.right({
    ...(name !== undefined ? { name: name.replace(/^\//, '') } : {}),
    rm: isSet(p, 'rm'),
    detach,
    interactive: isSet(p, 'interactive'),
    tty: isSet(p, 'tty'),
    env: allValues(p, 'env'),
    envFiles: allValues(p, 'env-file'),
    ...(v('workdir') !== undefined ? { workdir: v('workdir') } : {}),
    ...(v('user') !== undefined ? { user: v('user') } : {}),
    groupAdd: allValues(p, 'group-add'),
    ...(entrypoint !== undefined ? { entrypoint: entrypoint === '' ? [] : [entrypoint] } : {}),
    mounts: mounts.right,
    readOnly: isSet(p, 'read-only'),
    ...(v('hostname') !== undefined ? { hostname: v('hostname') } : {}),
    init: isSet(p, 'init'),
    limits,
    capAdd: allValues(p, 'cap-add'),
    capDrop: allValues(p, 'cap-drop'),
    noNewPrivileges,
    seccomp,
    restart: restart.right,
    ...(v('stop-signal') !== undefined ? { stopSignal: v('stop-signal') } : {}),
    ...(stopTimeout !== undefined ? { stopTimeout } : {}),
    labels,
    ...(logRotation.right !== undefined ? { logRotation: logRotation.right } : {}),
    network: net,
    publish: publish.right,
    bindings: bindings.right.flat(),
    runtime: v('runtime') ?? 'runc',
    health,
    print: isSet(p, 'print'),
    ...(v('root') !== undefined ? { root: v('root') } : {}),
    help: isSet(p, 'help'),
    ...(streams.length > 0 ? { attach: { stdin: streams.includes('stdin'), stdout: streams.includes('stdout'), stderr: streams.includes('stderr') } } : {}),
    ...(detachKeys !== undefined ? { detachKeys: detachKeys.right } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(image !== undefined && cmd.length > 0 ? { cmd } : {}),
  });
};

/** -e KEY (no =) takes KEY from tsd-run's own environment, or is dropped; env files likewise. */
export const resolveEnv = (flags: readonly string[], fileLines: readonly string[], env: NodeJS.ProcessEnv): readonly string[] =>
  [...fileLines.map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')), ...flags].flatMap((kv) => {
    if (kv.includes('=')) return [kv];
    const val = env[kv.trim()];
    return val === undefined ? [] : [`${kv.trim()}=${val}`];
  });
