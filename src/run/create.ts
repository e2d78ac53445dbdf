// Create: the effects that turn run options and an image into a container on disk, ready to
// start. Snapshots (shared, unpacked once) are stacked under the container's own upper dir by an
// overlay mount; nothing of the image is copied. The planning is runtimeSpec (pure); this file
// gathers its inputs (user IDs from the image's files, host limits, volume dirs) and writes.
import { promises as fs, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import { resolveEntry, resolveImage, type ResolvedImage } from '../store/image.js';
import { readBlob } from '../store/blob.js';
import { isDigest } from '../oci/digest.js';
import { MAX_MANIFEST_SIZE } from '../oci/manifest.js';
import type { StorePaths } from '../store/layout.js';
import { currentProcess, withLock } from '../store/lock.js';
import { chainIds } from '../snapshot/chain-id.js';
import { isMounted, mountHeld, mountRootfs, snapshotsOf, unmountRootfs, type HeldMount } from './rootfs.js';
import { files, listRecords, nameFor, newId, staleReservation, writeAtomic, type ContainerRecord } from './container.js';
import { lookupCommand, mkdirInRoot, readInRoot, resolveInRoot } from './in-root.js';
import { imageVolumes, ociMount } from './mounts.js';
import { resolveEnv, type RunOptions } from './options.js';
import { hostBindings } from './ports.js';
import { RunExit } from './runtime.js';
import { commandLine, runtimeSpec, type RuntimeSpec } from './spec.js';
import { parseGroup, parsePasswd, resolveUser } from './user.js';
import { healthOf } from './health.js';
import { DEFAULT_PATH } from './defaults.js';
import type { LinuxSeccomp } from './seccomp.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** --security-opt seccomp=PROFILE.json: a profile in the OCI (runtime-spec) shape. */
const loadSeccomp = async (file: string): Promise<E.Either<Failure, LinuxSeccomp>> => {
  try {
    const u = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<LinuxSeccomp>;
    if (typeof u !== 'object' || u === null || typeof u.defaultAction !== 'string' || !Array.isArray(u.syscalls)) {
      return E.left(failure('InvalidSeccomp', `--security-opt seccomp=${file}: not a seccomp profile (defaultAction and syscalls are required)`, ExitCode.tool));
    }
    return E.right(u as LinuxSeccomp);
  } catch (e) {
    return E.left(e instanceof SyntaxError ? failure('InvalidSeccomp', `--security-opt seccomp=${file}: not valid JSON`, ExitCode.tool) : fromError(`--security-opt seccomp=${file}`)(e));
  }
};

export interface Created {
  readonly record: ContainerRecord;
  readonly spec: RuntimeSpec;
  /** a foreground run's mount, held by the helper: release it when the container is done */
  readonly held?: HeldMount;
}

/** The host's hard RLIMIT_NOFILE (runc refuses to raise a limit above it). */
export const hostNofile = (): number => {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === undefined || hard === 'unlimited' ? 1048576 : Number(hard);
  } catch {
    return 1048576;
  }
};

const consoleSize = (): { height: number; width: number } =>
  process.stdout.isTTY && process.stdout.rows > 0 ? { height: process.stdout.rows, width: process.stdout.columns } : { height: 24, width: 80 };

export const cgroupsPathOf = (id: string): string => `/tsd/${id}`;

/** Where the kernel counts OOM kills of a container's cgroup (v1 memory.oom_control, v2 memory.events). */
export const memoryEventsDir = (id: string): string => {
  const v1 = '/sys/fs/cgroup/memory';
  try {
    readFileSync(join(v1, 'memory.limit_in_bytes'));
    return join(v1, cgroupsPathOf(id));
  } catch {
    return join('/sys/fs/cgroup', cgroupsPathOf(id));
  }
};

const hostsFile = (hostname: string, network: string): string => {
  if (network === 'host') {
    try {
      return readFileSync('/etc/hosts', 'utf8');
    } catch {
      /* fall through */
    }
  }
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t${hostname}\n`;
};

const resolvConf = (): string => {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
};

const uniqueName = async (p: StorePaths, wanted: string | undefined, id: string): Promise<E.Either<Failure, string>> => {
  if (wanted === undefined) return E.right(nameFor(id));
  const records = await listRecords(p, true);
  // a create killed before it finished (kill -9) left its reservation: undo what it made, as it
  // would have undone it itself, and free its name (we hold containers.lock)
  const stale = records.filter(staleReservation);
  for (const r of stale) {
    await unmountRootfs(files(p, r.id).rootfs);
    await fs.rm(files(p, r.id).dir, { recursive: true, force: true }).catch(() => undefined);
  }
  const taken = new Map(records.filter((r) => !stale.includes(r)).map((r) => [r.name, r.id] as const));
  const other = taken.get(wanted);
  if (other !== undefined) return E.left(failure('NameInUse', `the container name "${wanted}" is already in use by container ${other.slice(0, 12)}; remove it or choose another name`, ExitCode.user));
  return E.right(wanted);
};

const envFromFiles = async (paths: readonly string[]): Promise<E.Either<Failure, string[]>> => {
  const out: string[] = [];
  for (const f of paths) {
    try {
      out.push(...(await fs.readFile(f, 'utf8')).split('\n'));
    } catch (e) {
      return E.left(fromError(`--env-file ${f}`)(e));
    }
  }
  return E.right(out);
};

const commandFailure = (what: string, lookup: Awaited<ReturnType<typeof lookupCommand>>): Failure | undefined =>
  lookup._tag === 'NotFound'
    ? failure('CommandNotFound', `exec ${what}: ${what.includes('/') ? 'no such file or directory' : 'executable file not found in $PATH'}`, RunExit.notFound as unknown as ExitCode)
    : lookup._tag === 'NotExecutable'
      ? failure('CannotInvoke', `exec ${what}: ${lookup.why}`, RunExit.cannotInvoke as unknown as ExitCode)
      : undefined;

/**
 * A volume's target in the image: a file there is refused (as Docker does); a volume that is
 * empty gets the image's directory there, as Docker fills it (`fill` false: nocopy). Checked here
 * with a few system calls; the copy's code (src/run/volume-fill.ts) loads only when it runs.
 */
const prepareVolume = async (p: StorePaths, rootfs: string, req: { readonly name?: string; readonly target: string }, dir: string, fill: boolean): Promise<E.Either<Failure, void>> => {
  const label = req.name === undefined ? 'anonymous volume' : `volume ${req.name}`;
  let source: string;
  try {
    source = await resolveInRoot(rootfs, req.target);
    const there = lstatSync(source, { throwIfNoEntry: false });
    if (there && !there.isDirectory()) return E.left(failure('InvalidMount', `mount ${label} on ${req.target}: cannot mount a volume on a file`, ExitCode.tool));
    if (!there || !fill || readdirSync(dir).length > 0) return E.right(undefined);
  } catch {
    return E.right(undefined); // not reachable in the image (ENOTDIR, ELOOP): nothing to copy
  }
  const { fillVolume } = await import('./volume-fill.js');
  return fillVolume({ source, volumeDir: dir, volume: label, target: req.target, ...(req.name !== undefined ? { lock: join(p.locks, `volume-${req.name}.lock`) } : {}) });
};

/**
 * Creates a container: record, root file system mounted, bundle written. On failure everything
 * made so far is undone. `env` is tsd-run's own environment (for `-e KEY`).
 */
export const createContainer = (p: StorePaths, img: ResolvedImage, imageName: string, o: RunOptions, env: NodeJS.ProcessEnv, tiniPath: string): TE.TaskEither<Failure, Created> => async () => {
  const id = newId();
  const f = files(p, id);
  let mounted = false;
  let held: HeldMount | undefined;
  const undo = async () => {
    if (held) await held.release();
    else if (mounted) await unmountRootfs(f.rootfs);
    await fs.rm(f.dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const lowers = await snapshotsOf(p, img);
    if (E.isLeft(lowers)) return lowers;
    const envLines = await envFromFiles(o.envFiles);
    if (E.isLeft(envLines)) return envLines;
    // reserve the name and the directory together, so two `--name x` cannot both win
    // (a generated name carries 16 bits of the random ID: no lock needed for it)
    const reserve = async (): Promise<E.Either<Failure, string>> => {
      const name = await uniqueName(p, o.name, id);
      if (E.isLeft(name)) return name;
      mkdirSync(f.bundle, { recursive: true });
      writeFileSync(f.record, JSON.stringify({ v: 1, id, name: name.right, reserving: true, ...currentProcess() }));
      return E.right(name.right);
    };
    const reserved = o.name !== undefined ? await withLock(join(p.locks, 'containers.lock'))(reserve)() : await reserve();
    if (E.isLeft(reserved)) return reserved;
    const name = reserved.right;
    // what gc must keep, recorded before the mount (src/store/roots.ts, docs/snapshots.md)
    const chain = img.config.rootfs.diff_ids.length > 0 ? chainIds(img.config.rootfs.diff_ids) : [];
    // small files and dirs: synchronous calls, each cheaper than a thread-pool round trip (bench/run)
    writeFileSync(f.image, `${img.entry.digest}\n${img.configDigest}\n`);
    writeFileSync(f.snapshots, `${chain.join('\n')}\n`);
    for (const d of [f.upper, f.work, f.rootfs]) mkdirSync(d);
    // a foreground run's mount is held by a helper that unmounts it at the end (or if we die)
    const target = { upperdir: f.upper, workdir: f.work, target: f.rootfs };
    const mounting = o.detach || o.print ? undefined : mountHeld(lowers.right, target, { volatile: o.rm });
    // while the helper starts and mounts (it was spawned above): the files the spec bind-mounts
    const hostname = o.hostname ?? id.slice(0, 12);
    let early: unknown;
    try {
      writeFileSync(f.hosts, hostsFile(hostname, o.network));
      writeFileSync(f.hostname, `${hostname}\n`);
      writeFileSync(f.resolvConf, resolvConf());
    } catch (e) {
      early = e ?? new Error('write failed');
    }
    const viaHelper = await mounting;
    if (early !== undefined) {
      // a full disk, say: the mount made meanwhile is undone with the rest (below)
      if (viaHelper !== undefined && E.isRight(viaHelper)) held = viaHelper.right;
      throw early;
    }
    const m = viaHelper ?? E.map((): HeldMount | undefined => undefined)(await mountRootfs(lowers.right, target, { volatile: o.rm }));
    if (E.isLeft(m)) {
      await undo();
      return m;
    }
    held = m.right;
    mounted = true;
    const fail = async (x: Failure) => {
      await undo();
      return E.left(x);
    };
    const image = img.config.config ?? {};
    const [passwd, group] = await Promise.all([readInRoot(f.rootfs, '/etc/passwd'), readInRoot(f.rootfs, '/etc/group')]);
    const user = resolveUser(o.user ?? image.User ?? '', parsePasswd(passwd ?? ''), parseGroup(group ?? ''), o.groupAdd);
    if (E.isLeft(user)) return fail(user.left);
    const mounts = [];
    for (const req of [...o.mounts, ...imageVolumes(image.Volumes, o.mounts)]) {
      if (req.kind === 'volume') {
        // an anonymous volume lives in the container's dir: --rm and `rm -v` remove it with the
        // container, `rm` alone moves it to the store's volumes (lifecycle.ts), as Docker keeps it
        const dir = req.name === undefined ? join(f.volumes, newId(), '_data') : join(p.volumes, req.name, '_data');
        await fs.mkdir(dir, { recursive: true });
        const ready = await prepareVolume(p, f.rootfs, req, dir, !req.noCopy && !o.print);
        if (E.isLeft(ready)) {
          if (req.name === undefined) await fs.rm(dirname(dir), { recursive: true, force: true });
          return fail(ready.left);
        }
        mounts.push(ociMount(req, dir));
      } else if (req.kind === 'bind') {
        const st = await fs.stat(req.source).catch(() => undefined);
        if (!st) {
          if (!req.createSource) return fail(failure('InvalidMount', `--mount: bind source path does not exist: ${req.source}`, ExitCode.tool));
          await fs.mkdir(req.source, { recursive: true });
        }
        const there = await fs.stat(await resolveInRoot(f.rootfs, req.target)).catch(() => undefined);
        if (there && st && there.isDirectory() !== st.isDirectory()) {
          return fail(failure('InvalidMount', `mount ${req.source} on ${req.target}: cannot mount a ${st.isDirectory() ? 'directory' : 'file'} on a ${there.isDirectory() ? 'directory' : 'file'}`, ExitCode.tool));
        }
        mounts.push(ociMount(req));
      } else mounts.push(ociMount(req));
    }
    let seccomp: RuntimeSpec['linux']['seccomp'] | 'default' | 'unconfined' = 'default';
    if (o.seccomp === 'unconfined' || o.seccomp === 'default') seccomp = o.seccomp;
    else {
      const loaded = await loadSeccomp(o.seccomp);
      if (E.isLeft(loaded)) return fail(loaded.left);
      seccomp = loaded.right;
    }
    const envList = resolveEnv(o.env, envLines.right, env);
    const spec = runtimeSpec({
      image,
      ...(o.cmd !== undefined ? { cmd: o.cmd } : {}),
      ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
      env: envList,
      ...(o.workdir !== undefined ? { cwd: o.workdir } : {}),
      user: user.right,
      hostname,
      rootfs: f.rootfs,
      readonly: o.readOnly,
      mounts,
      network: o.network,
      capAdd: o.capAdd,
      capDrop: o.capDrop,
      noNewPrivileges: o.noNewPrivileges,
      seccomp,
      limits: o.limits,
      host: { nofile: hostNofile() },
      // -t with -d too: the supervisor keeps the pty master (runc's --console-socket)
      terminal: o.tty,
      ...(o.init ? { init: tiniPath } : {}),
      cgroupsPath: cgroupsPathOf(id),
      etc: { hosts: f.hosts, hostname: f.hostname, resolvConf: f.resolvConf },
    });
    if (E.isLeft(spec)) return fail(spec.left);
    // a detached pty starts with the caller's terminal size (else 24x80), not 0x0
    const s: RuntimeSpec = o.tty && o.detach ? { ...spec.right, process: { ...spec.right.process, consoleSize: consoleSize() } } : spec.right;
    await mkdirInRoot(f.rootfs, s.process.cwd, s.process.user.uid, s.process.user.gid);
    // Docker reports a missing or unrunnable command before anything starts: 127 and 126
    const command = commandLine(image, o.entrypoint, o.cmd);
    const pathEnv = (s.process.env.find((kv) => kv.startsWith('PATH=')) ?? `PATH=${DEFAULT_PATH}`).slice(5);
    const first = command[0] as string;
    const bad = commandFailure(first, await lookupCommand(f.rootfs, first, pathEnv, s.process.cwd));
    if (bad && !mounts.some((mm) => first.startsWith(`${mm.destination}/`))) return fail(bad);
    const health = healthOf(image.Healthcheck, o.health);
    const record: ContainerRecord = {
      v: 1,
      id,
      name,
      created: new Date().toISOString(),
      image: imageName,
      imageDigest: img.entry.digest,
      imageId: img.configDigest,
      chainIds: chain,
      command,
      restart: o.restart,
      stopSignal: o.stopSignal ?? image.StopSignal ?? 'SIGTERM',
      stopTimeout: o.stopTimeout ?? 10,
      labels: { ...(image.Labels ?? {}), ...o.labels },
      ...(o.logRotation !== undefined ? { logRotation: o.logRotation } : {}),
      network: o.network,
      ports: hostBindings(o.bindings),
      runtime: o.runtime,
      autoRemove: o.rm,
      detached: o.detach,
      tty: o.tty,
      interactive: o.interactive,
      ...(health !== undefined ? { health } : {}),
      hostname,
      readonly: o.readOnly,
    };
    writeFileSync(join(f.bundle, 'config.json'), JSON.stringify(s));
    // no state.json yet reads as `created` (readState): a new container's is not written, one
    // file write and rename fewer on the way to start (bench/run)
    await writeAtomic(f.record, `${JSON.stringify(record)}\n`);
    return E.right({ record, spec: s, ...(held ? { held } : {}) });
  } catch (e) {
    await undo();
    return E.left(fromError(`create container ${id.slice(0, 12)}`)(e));
  }
};

/**
 * The image a container was made from, for `start`: by its name or digest in index.json, else
 * (its tag removed meanwhile: `tsd-store rm`) from its blobs, which gc keeps for the container
 * (containers/<id>/image is a root: src/store/roots.ts).
 */
export const containerImage = (p: StorePaths, r: ContainerRecord): TE.TaskEither<Failure, ResolvedImage> => async () => {
  const named = await resolveImage(p, r.imageDigest.startsWith('sha256:') ? r.imageDigest : r.image)();
  if (E.isRight(named) || !isDigest(r.imageDigest)) return named;
  const bytes = await readBlob(p, r.imageDigest, MAX_MANIFEST_SIZE)();
  if (E.isLeft(bytes)) return E.left(failure('ImageNotFound', `container ${r.name}: its image ${r.imageDigest} is no longer in the store`, ExitCode.tool));
  let mediaType = OCI_MANIFEST;
  try {
    const u = JSON.parse(Buffer.from(bytes.right).toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    mediaType = typeof u.mediaType === 'string' ? u.mediaType : Array.isArray(u.manifests) ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    /* resolveEntry reports it */
  }
  return resolveEntry(p, { mediaType, digest: r.imageDigest, size: bytes.right.length })();
};

/** Mounts the root file system again (for `start` of a stopped container). */
export const remountRootfs = (p: StorePaths, record: ContainerRecord, img: ResolvedImage): TE.TaskEither<Failure, void> => async () => {
  const f = files(p, record.id);
  const lowers = await snapshotsOf(p, img);
  if (E.isLeft(lowers)) return lowers;
  if (await isMounted(f.rootfs)) return E.right(undefined);
  return mountRootfs(lowers.right, { upperdir: f.upper, workdir: f.work, target: f.rootfs });
};
