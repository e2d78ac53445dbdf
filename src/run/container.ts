// Container: the record of one container in the store, $ROOT/containers/<id>/. The store on disk is
// the only truth; no process keeps any. Files:
//   container.json  what was asked for (written once, at create)
//   image           the manifest and config digests it uses (gc keeps them: docs/store.md)
//   snapshots       the chain IDs of the snapshots its root file system stacks
//   state.json      what happened: written atomically (temp + rename) by whoever saw it happen,
//                   the supervisor for a detached container, tsd-run for a foreground one
//   stdout.log, stderr.log   the container's output, written by the container itself
//   bundle/         the OCI bundle (config.json, rootfs = the overlay mount), upper/, work/
//   supervisor.pid  the supervisor's pid and start time, while it runs
import { randomBytes } from 'node:crypto';
import { promises as fs, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { ContainerMessage } from '../message.js';
import type { StorePaths } from '../store/layout.js';
import { isAlive } from '../store/lock.js';
import type { HealthCheck } from './health.js';
import type { LogRotation, RestartPolicy } from './options.js';
import type { PortMapping } from './ports.js';
import type { NetworkMode } from './spec.js';

export interface ContainerRecord {
  readonly v: 1;
  readonly id: string;
  readonly name: string;
  readonly created: string;
  /** what the user typed (or the ref from stdin) */
  readonly image: string;
  readonly imageDigest: string;
  readonly imageId: string;
  readonly chainIds: readonly string[];
  readonly command: readonly string[];
  readonly restart: RestartPolicy;
  readonly stopSignal: string;
  readonly stopTimeout: number;
  readonly labels: Readonly<Record<string, string>>;
  /** --log-opt max-size/max-file: the supervisor rotates the logs */
  readonly logRotation?: LogRotation;
  readonly network: NetworkMode;
  readonly ports: readonly PortMapping[];
  readonly runtime: string;
  readonly autoRemove: boolean;
  readonly detached: boolean;
  readonly tty: boolean;
  /** -i: the supervisor keeps the container's stdin open for `attach` (records before it: false) */
  readonly interactive?: boolean;
  readonly health?: HealthCheck;
  readonly hostname: string;
  readonly readonly: boolean;
}

export interface HealthState {
  readonly status: 'starting' | 'healthy' | 'unhealthy';
  readonly failingStreak: number;
  readonly lastOutput?: string;
  readonly lastExitCode?: number;
}

export interface ContainerState {
  readonly status: 'created' | 'running' | 'restarting' | 'exited';
  readonly pid?: number;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly exitCode?: number;
  readonly oomKilled?: boolean;
  readonly restartCount?: number;
  readonly error?: string;
  readonly health?: HealthState;
}

export const containerDir = (p: StorePaths, id: string): string => join(p.containers, id);
/** The runtime's state directory inside the store (`runc --root`), so each store's containers stay its own. */
export const runtimeRoot = (p: StorePaths): string => join(p.root, 'runtime');
export const files = (p: StorePaths, id: string) => {
  // joined once; the names below are bare, so plain concatenation is join() without normalizing
  // the long dir 17 times (interpreted at start-up, path.join was ~2-3 ms of a run: bench/run)
  const dir = containerDir(p, id);
  const at = (name: string): string => `${dir}/${name}`;
  return {
    dir,
    record: at('container.json'),
    image: at('image'),
    snapshots: at('snapshots'),
    state: at('state.json'),
    stdout: at('stdout.log'),
    stderr: at('stderr.log'),
    stdoutIdx: at('stdout.idx'),
    stderrIdx: at('stderr.idx'),
    bundle: at('bundle'),
    rootfs: at('bundle/rootfs'),
    upper: at('upper'),
    work: at('work'),
    hosts: at('hosts'),
    hostname: at('hostname'),
    resolvConf: at('resolv.conf'),
    supervisor: at('supervisor.pid'),
    stopRequested: at('stop-requested'),
    /** a --rm run detached from: its supervisor removes it when it exits (supervisor.c) */
    autoRemove: at('autoremove'),
    /** its anonymous volumes (each VOLUME-ID/_data): removed with it, or kept by `rm` without -v */
    volumes: at('volumes'),
  };
};

export const newId = (): string => randomBytes(32).toString('hex');

const ADJECTIVES = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'nifty', 'quiet', 'sharp', 'tender', 'vivid', 'witty', 'zen', 'bold', 'clever'];
const NOUNS = ['turing', 'hopper', 'lovelace', 'ritchie', 'thompson', 'knuth', 'dijkstra', 'liskov', 'hamilton', 'shannon', 'torvalds', 'wirth', 'kay', 'backus', 'mccarthy', 'allen'];
/** A Docker-like name from an ID (deterministic, so the same ID always names the same). */
export const nameFor = (id: string): string => {
  const n = parseInt(id.slice(0, 8), 16);
  return `${ADJECTIVES[n % ADJECTIVES.length]}_${NOUNS[(n >>> 4) % NOUNS.length]}_${id.slice(0, 4)}`;
};

/** temp file + rename; synchronous inside: a small file, and a thread-pool round trip costs more (bench/run) */
export const writeAtomic = async (path: string, text: string): Promise<void> => {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
};

export const readRecord = (p: StorePaths, id: string): TE.TaskEither<Failure, ContainerRecord> =>
  TE.tryCatch(async () => JSON.parse(await fs.readFile(files(p, id).record, 'utf8')) as ContainerRecord, (e) =>
    (e as NodeJS.ErrnoException).code === 'ENOENT' ? failure('NoSuchContainer', `container ${id}: no such container`, ExitCode.notFound) : fromError(`read container ${id}`)(e),
  );

export const readState = async (p: StorePaths, id: string): Promise<ContainerState> => {
  try {
    return JSON.parse(await fs.readFile(files(p, id).state, 'utf8')) as ContainerState;
  } catch {
    return { status: 'created' };
  }
};

export const writeState = (p: StorePaths, id: string, s: ContainerState): Promise<void> => writeAtomic(files(p, id).state, `${JSON.stringify(s)}\n`);

export const listIds = async (p: StorePaths): Promise<string[]> => (await fs.readdir(p.containers).catch(() => [] as string[])).filter((n) => /^[a-f0-9]{64}$/.test(n));

/** Every container; `reserving` also lists those still being created (a name is taken at once). */
export const listRecords = async (p: StorePaths, reserving = false): Promise<ContainerRecord[]> => {
  const out: ContainerRecord[] = [];
  for (const id of await listIds(p)) {
    const r = await readRecord(p, id)();
    if (E.isRight(r) && (reserving || !('reserving' in r.right))) out.push(r.right);
  }
  return out;
};

/** A name reservation whose creator (pid and start time, in the record) died before it finished:
 * nothing will complete it, and nothing else would undo what it made (its overlay may be mounted). */
export const staleReservation = (r: ContainerRecord): boolean => {
  const c = r as unknown as { reserving?: unknown; pid?: unknown; start?: unknown };
  return c.reserving === true && typeof c.pid === 'number' && typeof c.start === 'string' && !isAlive({ pid: c.pid, start: c.start });
};

/** Finds a container by full ID, name, or unambiguous ID prefix, as Docker does. */
export const findContainer = (p: StorePaths, what: string): TE.TaskEither<Failure, ContainerRecord> => async () => {
  const records = await listRecords(p);
  const exact = records.find((r) => r.id === what || r.name === what || r.name === what.replace(/^\//, ''));
  if (exact) return E.right(exact);
  const prefixed = what.length >= 1 && /^[a-f0-9]+$/.test(what) ? records.filter((r) => r.id.startsWith(what)) : [];
  if (prefixed.length === 1 && prefixed[0]) return E.right(prefixed[0]);
  if (prefixed.length > 1) return E.left(failure('AmbiguousContainer', `container ${what}: matches ${prefixed.length} containers; give more digits`, ExitCode.user));
  return E.left(failure('NoSuchContainer', `container ${what}: no such container`, ExitCode.notFound));
};

export const toMessage = (r: ContainerRecord, s: ContainerState): ContainerMessage => ({
  v: 1,
  type: 'container',
  id: r.id,
  name: r.name,
  image: r.image,
  state: s.status,
  ...(s.exitCode !== undefined && s.status === 'exited' ? { exitCode: s.exitCode } : {}),
  ...(s.pid !== undefined && s.status === 'running' ? { pid: s.pid } : {}),
});

/** What gc must keep for containers: their images and the snapshots their root file systems stack. */
export const containerRoots = async (p: StorePaths): Promise<{ readonly images: readonly string[]; readonly chainIds: readonly string[] }> => {
  const records = await listRecords(p);
  return { images: [...new Set(records.flatMap((r) => [r.imageDigest, r.imageId]))], chainIds: [...new Set(records.flatMap((r) => r.chainIds))] };
};
