// The lifecycle verbs of tsd-run, with Docker's names and flags: ps, logs, stop, kill, rm, wait,
// inspect, exec, start, restart, top, attach. Each decodes its argv, acts through lifecycle.ts and prints.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { write, type CommandResult, type Io } from '../cli/io.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import { formatMessage } from '../message.js';
import type { StorePaths } from '../store/layout.js';
import { openStore } from '../store/store.js';
import { allValues, isSet, lastValue, parseArgv, parseNumber, type FlagSpec, type ParsedArgs } from './argv.js';
import { files, findContainer, listRecords, readState, toMessage, writeAtomic, type ContainerRecord } from './container.js';
import { containerImage, remountRootfs } from './create.js';
import { killContainer, observe, removeContainer, runtimeCmd, stopContainer, waitExit, waitStopped } from './lifecycle.js';
import { parseSince, printLogs } from './logs.js';
import { parseDuration } from './options.js';
import { lookupCommand, readInRoot } from './in-root.js';
import { parseGroup, parsePasswd, resolveUser } from './user.js';
import { describeMapping, dockerPorts, publishedPorts, type PortMapping } from './ports.js';
import { DEFAULT_PATH } from './defaults.js';
import { RunExit } from './runtime.js';
import type { RuntimeSpec } from './spec.js';
import { runtimeRoot, startSupervised } from './supervise.js';

type Verb = (argv: readonly string[], io: Io) => Promise<CommandResult>;

const ROOT: FlagSpec = { long: 'root', value: true };

/** Decodes argv, opens the store, and finds each named container. */
const withContainers = async (argv: readonly string[], specs: readonly FlagSpec[], min: number, act: (p: StorePaths, a: ParsedArgs, names: readonly string[]) => Promise<CommandResult>): Promise<CommandResult> => {
  const a = parseArgv(argv, [...specs, ROOT], false);
  if (E.isLeft(a)) return a;
  if (a.right.positionals.length < min) return E.left(failure('Usage', `requires at least ${min} container argument${min > 1 ? 's' : ''}`, ExitCode.user));
  const p = await openStore(lastValue(a.right, 'root'))();
  if (E.isLeft(p)) return p;
  return act(p.right, a.right, a.right.positionals);
};

/** Runs `each` on every named container; the last failure is returned (Docker goes on past one). */
const forEach = async (p: StorePaths, names: readonly string[], io: Io, each: (r: ContainerRecord) => Promise<E.Either<Failure, string | undefined>>): Promise<CommandResult> => {
  let last: Failure | undefined;
  for (const n of names) {
    const r = await findContainer(p, n)();
    const done = E.isLeft(r) ? r : await each(r.right);
    if (E.isLeft(done)) {
      if (last) await write(io.stderr, `tsd-run: ${last.message}\n`);
      last = done.left;
    } else if (done.right !== undefined) await write(io.stdout, `${done.right}\n`);
  }
  return last ? E.left(last) : E.right(0);
};

const age = (iso: string | undefined): string => {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s} seconds` : s < 3600 ? `${Math.round(s / 60)} minutes` : s < 86400 ? `${Math.round(s / 3600)} hours` : `${Math.round(s / 86400)} days`;
};

const ps: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'all', short: 'a' }, { long: 'json' }, { long: 'quiet', short: 'q' }], 0, async (p, a) => {
    const rows = [];
    for (const r of (await listRecords(p)).sort((x, y) => y.created.localeCompare(x.created))) {
      const s = await observe(p, r);
      if (s.status === 'running' || s.status === 'restarting' || isSet(a, 'all')) rows.push({ r, s });
    }
    if (isSet(a, 'json')) for (const { r, s } of rows) await write(io.stdout, formatMessage(toMessage(r, s)));
    else if (isSet(a, 'quiet')) for (const { r } of rows) await write(io.stdout, `${r.id.slice(0, 12)}\n`);
    else {
      const status = (s: Awaited<ReturnType<typeof observe>>) =>
        s.status === 'running' ? `Up ${age(s.startedAt)}${s.health ? ` (${s.health.status})` : ''}` : s.status === 'exited' ? `Exited (${s.exitCode ?? 'unknown'}) ${age(s.finishedAt)} ago` : s.status === 'restarting' ? `Restarting (${s.exitCode ?? ''})` : 'Created';
      const table = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], ...rows.map(({ r, s }) => [r.id.slice(0, 12), r.image, JSON.stringify(r.command.join(' ').slice(0, 20)), `${age(r.created)} ago`, status(s), publishedPorts(files(p, r.id).dir, r.ports).map(describeMapping).join(', '), r.name])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) await write(io.stdout, `${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')}\n`);
    }
    return E.right(0);
  });

const logs: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'follow', short: 'f' }, { long: 'tail', short: 'n', value: true }, { long: 'timestamps', short: 't' }, { long: 'since', value: true }], 1, async (p, a, names) => {
    const r = await findContainer(p, names[0] as string)();
    if (E.isLeft(r)) return r;
    const tailArg = lastValue(a, 'tail') ?? 'all';
    const tail = tailArg === 'all' ? undefined : parseNumber('--tail', tailArg, true);
    if (tail !== undefined && E.isLeft(tail)) return tail;
    const sinceArg = lastValue(a, 'since');
    const sinceNs = sinceArg === undefined ? undefined : parseSince(sinceArg, Date.now(), (d) => E.getOrElseW(() => undefined)(parseDuration('--since', d)));
    if (sinceArg !== undefined && sinceNs === undefined) return E.left(failure('Usage', `--since ${JSON.stringify(sinceArg)}: expected a time (RFC 3339 or Unix seconds) or a duration like 10m`, ExitCode.tool));
    const f = files(p, r.right.id);
    return printLogs({ stdout: f.stdout, stderr: f.stderr, stdoutIdx: f.stdoutIdx, stderrIdx: f.stderrIdx }, io.stdout, io.stderr, {
      ...(tail !== undefined ? { tail: tail.right } : {}),
      timestamps: isSet(a, 'timestamps'),
      ...(sinceNs !== undefined ? { sinceNs } : {}),
      ...(isSet(a, 'follow') ? { finished: async () => (await observe(p, r.right)).status === 'exited' } : {}),
    });
  });

const stop: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'time', short: 't', value: true }, { long: 'signal', short: 's', value: true }], 1, async (p, a, names) => {
    const t = lastValue(a, 'time');
    const secs = t === undefined ? undefined : parseNumber('--time', t, true);
    if (secs !== undefined && E.isLeft(secs)) return secs;
    return forEach(p, names, io, async (r) => E.map(() => r.name)(await stopContainer(p, r, secs?.right ?? r.stopTimeout)));
  });

const kill: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'signal', short: 's', value: true }], 1, async (p, a, names) =>
    forEach(p, names, io, async (r) => E.map(() => r.name)(await killContainer(p, r, lastValue(a, 'signal') ?? 'SIGKILL'))),
  );

const rm: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'force', short: 'f' }, { long: 'volumes', short: 'v' }], 1, async (p, a, names) =>
    forEach(p, names, io, async (r) => E.map(() => r.name)(await removeContainer(p, r, isSet(a, 'force'), !isSet(a, 'volumes')))),
  );

const wait: Verb = (argv, io) =>
  withContainers(argv, [], 1, async (p, _a, names) =>
    forEach(p, names, io, async (r) => {
      const s = await waitExit(p, r);
      return E.right(String(s.exitCode ?? -1));
    }),
  );

const inspect: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'format', short: 'f', value: true }], 1, async (p, _a, names) =>
    forEach(p, names, io, async (r) => {
      const s = await observe(p, r);
      const State = { Status: s.status, Running: s.status === 'running', Restarting: s.status === 'restarting', OOMKilled: s.oomKilled ?? false, Pid: s.status === 'running' ? (s.pid ?? 0) : 0, ExitCode: s.exitCode ?? null, Error: s.error ?? '', StartedAt: s.startedAt ?? '', FinishedAt: s.finishedAt ?? '', ...(s.health ? { Health: { Status: s.health.status, FailingStreak: s.health.failingStreak, LastOutput: s.health.lastOutput ?? '', LastExitCode: s.health.lastExitCode ?? null } } : {}) };
      return E.right(JSON.stringify({ ...toMessage(r, s), Id: r.id, Name: r.name, Created: r.created, Image: r.imageId, ImageName: r.image, State, RestartCount: s.restartCount ?? 0, Config: r, NetworkSettings: { Ports: dockerPorts(publishedPorts(files(p, r.id).dir, r.ports)) }, LogPaths: { stdout: files(p, r.id).stdout, stderr: files(p, r.id).stderr } }));
    }),
  );

const EXEC_FLAGS: readonly FlagSpec[] = [{ long: 'interactive', short: 'i' }, { long: 'tty', short: 't' }, { long: 'user', short: 'u', value: true }, { long: 'env', short: 'e', value: true }, { long: 'workdir', short: 'w', value: true }, { long: 'detach', short: 'd' }, ROOT];

const exec: Verb = async (argv) => {
  const a = parseArgv(argv, EXEC_FLAGS, true);
  if (E.isLeft(a)) return a;
  const [name, ...cmd] = a.right.positionals;
  if (name === undefined || cmd.length === 0) return E.left(failure('Usage', 'exec: requires a container and a command: tsd-run exec [OPTIONS] CONTAINER COMMAND [ARG...]', ExitCode.user));
  const p = await openStore(lastValue(a.right, 'root'))();
  if (E.isLeft(p)) return p;
  const r = await findContainer(p.right, name)();
  if (E.isLeft(r)) return r;
  if ((await observe(p.right, r.right)).status !== 'running') return E.left(failure('NotRunning', `container ${r.right.name}: is not running`, ExitCode.user));
  const u = lastValue(a.right, 'user');
  // -u names are resolved in the container's own /etc/passwd and /etc/group, as for run
  const rootfs = files(p.right, r.right.id).rootfs;
  let userArgs: string[] = [];
  if (u !== undefined) {
    const [passwd, group] = await Promise.all([readInRoot(rootfs, '/etc/passwd'), readInRoot(rootfs, '/etc/group')]);
    const who = resolveUser(u, parsePasswd(passwd ?? ''), parseGroup(group ?? ''));
    if (E.isLeft(who)) return who;
    userArgs = ['--user', `${who.right.uid}:${who.right.gid}`, ...who.right.additionalGids.flatMap((g) => ['--additional-gids', String(g)]), ...(who.right.home !== undefined ? ['--env', `HOME=${who.right.home}`] : [])];
  }
  const args = ['--root', runtimeRoot(p.right), 'exec', ...(isSet(a.right, 'tty') ? ['--tty'] : []), ...(isSet(a.right, 'detach') ? ['--detach'] : []), ...userArgs, ...allValues(a.right, 'env').flatMap((e) => ['--env', e]), ...(lastValue(a.right, 'workdir') !== undefined ? ['--cwd', lastValue(a.right, 'workdir') as string] : []), r.right.id, ...cmd];
  // as for run: a missing or unrunnable command is 127/126 with one line, found before exec
  const f = files(p.right, r.right.id);
  const bundleSpec = JSON.parse(await fs.readFile(join(f.bundle, 'config.json'), 'utf8').catch(() => '{}')) as Partial<RuntimeSpec>;
  const envPath = [...(bundleSpec.process?.env ?? []), ...allValues(a.right, 'env')].filter((kv) => kv.startsWith('PATH=')).at(-1)?.slice(5) ?? DEFAULT_PATH;
  const first = cmd[0] as string;
  const found = await lookupCommand(f.rootfs, first, envPath, lastValue(a.right, 'workdir') ?? bundleSpec.process?.cwd ?? '/');
  if (found._tag === 'NotFound') return E.left(failure('CommandNotFound', `exec ${first}: ${first.includes('/') ? 'no such file or directory' : 'executable file not found in $PATH'}`, RunExit.notFound as unknown as ExitCode));
  if (found._tag === 'NotExecutable') return E.left(failure('CannotInvoke', `exec ${first}: ${found.why}`, RunExit.cannotInvoke as unknown as ExitCode));
  const code = await new Promise<number>((done) => {
    const child = spawn(r.right.runtime, args, { stdio: [isSet(a.right, 'interactive') ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
    child.on('error', () => done(ExitCode.tool));
    child.on('close', (c, sig) => done(c ?? (sig ? 128 + 9 : 1)));
  });
  return E.right(code);
};

const start: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'attach', short: 'a' }], 1, async (p, _a, names) =>
    forEach(p, names, io, async (r) => {
      const s = await observe(p, r);
      if (s.status === 'running') return E.right(r.name);
      const img = await containerImage(p, r)();
      if (E.isLeft(img)) return img;
      const m = await remountRootfs(p, r, img.right)();
      if (E.isLeft(m)) return m;
      const detached = { ...r, detached: true, autoRemove: r.autoRemove };
      if (!r.detached) await writeAtomic(files(p, r.id).record, `${JSON.stringify(detached)}\n`);
      return E.map(() => r.name)(await startSupervised(p, detached));
    }),
  );

const restart: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'time', short: 't', value: true }], 1, async (p, a, names) => {
    const t = lastValue(a, 'time');
    const secs = t === undefined ? undefined : parseNumber('--time', t, true);
    if (secs !== undefined && E.isLeft(secs)) return secs;
    const stopped = await forEach(p, names, { ...io, stdout: { write: () => true } as unknown as Io['stdout'] }, async (r) => {
      const x = await stopContainer(p, r, secs?.right ?? r.stopTimeout);
      await waitStopped(p, r, 5000);
      return E.map(() => undefined)(x);
    });
    if (E.isLeft(stopped)) return stopped;
    return start(names, io);
  });

const top: Verb = (argv, io) =>
  withContainers(argv, [], 1, async (p, _a, names) => {
    const r = await findContainer(p, names[0] as string)();
    if (E.isLeft(r)) return r;
    if ((await readState(p, r.right.id)).status !== 'running') return E.left(failure('NotRunning', `container ${r.right.name}: is not running`, ExitCode.user));
    const out = await runtimeCmd(p, r.right, ['ps', r.right.id, '-o', 'uid,pid,ppid,c,stime,tty,time,cmd']);
    if (out.code !== 0) return E.left(failure('TopFailed', `top ${r.right.name}: ${out.stderr.trim().split('\n').at(-1) ?? 'failed'}`, ExitCode.tool));
    await write(io.stdout, out.stdout);
    return E.right(0);
  });

/** docker port: a container's published ports ("80/tcp -> 0.0.0.0:32768"), or one private port's host addresses. */
const port: Verb = (argv, io) =>
  withContainers(argv, [], 1, async (p, _a, [name, wanted]) => {
    if (name === undefined) return E.left(failure('Usage', 'port: takes a container', ExitCode.user));
    const r = await findContainer(p, name)();
    if (E.isLeft(r)) return r;
    const published = publishedPorts(files(p, r.right.id).dir, r.right.ports);
    const key = (m: PortMapping) => `${m.containerPort}/${m.protocol ?? 'tcp'}`;
    const hostSide = (m: PortMapping) => describeMapping(m).split('->')[0] as string;
    if (wanted === undefined) {
      await write(io.stdout, published.map((m) => `${key(m)} -> ${hostSide(m)}\n`).join(''));
      return E.right(0);
    }
    const asked = wanted.includes('/') ? wanted.toLowerCase() : `${wanted}/tcp`;
    const matching = published.filter((m) => key(m) === asked);
    if (matching.length === 0) return E.left(failure('NoSuchPort', `port: no public port '${asked}' published for ${r.right.name}`, ExitCode.user));
    await write(io.stdout, matching.map((m) => `${hostSide(m)}\n`).join(''));
    return E.right(0);
  });

const attach: Verb = (argv, io) =>
  withContainers(argv, [{ long: 'no-stdin' }, { long: 'detach-keys', value: true }, { long: 'sig-proxy', value: true }], 1, async (p, a, names) => {
    if (names.length > 1) return E.left(failure('Usage', 'attach: takes one container', ExitCode.user));
    const r = await findContainer(p, names[0] as string)();
    if (E.isLeft(r)) return r;
    const { attachTo, parseDetachKeys, DEFAULT_DETACH_KEYS } = await import('./attach.js');
    const keys = parseDetachKeys(lastValue(a, 'detach-keys') ?? DEFAULT_DETACH_KEYS);
    if (E.isLeft(keys)) return keys;
    const proxy = lastValue(a, 'sig-proxy') ?? 'true';
    if (proxy !== 'true' && proxy !== 'false') return E.left(failure('Usage', `--sig-proxy: expected true or false, not ${JSON.stringify(proxy)}`, ExitCode.user));
    return attachTo(p, r.right, { stdin: !isSet(a, 'no-stdin'), detachKeys: keys.right, sigProxy: proxy === 'true', fromStart: false, closeStdin: false }, io);
  });

export const VERBS: Readonly<Record<string, Verb>> = { ps, logs, stop, kill, rm, wait, inspect, exec, start, restart, top, attach, port };

export const verbHelp = (): string =>
  `Verbs:
  ps [-a] [-q] [--json]            list containers (running; -a all)
  logs [-f] [--tail N] C           print a container's output
  stop [-t SECS] C...              stop signal, then SIGKILL after SECS (default 10)
  kill [-s SIGNAL] C...            send a signal (default SIGKILL)
  rm [-f] [-v] C...                remove (-f: kill first; -v: its anonymous volumes too)
  wait C...                        wait for exit, print the exit code
  inspect C...                     one JSON line per container
  exec [-i] [-t] [-u] [-e] [-w] C CMD...   run a command in a running container
  start C... / restart [-t] C...   start again under a supervisor
  top C                            the container's processes
  port C [PORT[/PROTO]]            its published ports, or one port's host addresses
  attach [--no-stdin] [--detach-keys K] [--sig-proxy=false] C
                                   its output (and input, with -i/-t) until it exits;
                                   ctrl-p ctrl-q detaches and leaves it running
`;

