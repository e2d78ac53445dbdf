// The run verb: `tsd-run [OPTIONS] IMAGE [CMD…]`, in the foreground (runc run, stdio passed
// through, signals forwarded, exit code returned) or detached under tsd-supervisor.
// Start-up matters (bench/run): what only --print, -d, -p or an image on stdin needs (the
// supervisor, lifecycle, log and message code) is imported when that path is taken.
import { existsSync, promises as fs } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import { write, type CommandResult, type Io } from '../cli/io.js';
import { ExitCode, failure, fromError } from '../failure.js';
import { resolveImage } from '../store/image.js';
import { holdImage, holdImageSync, releaseLeases } from '../store/lease.js';
import { resolveImageSync } from '../store/image-sync.js';
import type { StorePaths } from '../store/layout.js';
import { openStoreSync } from '../store/store.js';
import { helpText } from './argv.js';
import { files, runtimeRoot, toMessage, writeState, type ContainerRecord } from './container.js';
import { createContainer, memoryEventsDir } from './create.js';
import { DEFAULT_DETACH_BYTES } from './detach-keys.js';
import { decodeRunOptions, RUN_FLAGS, type RunOptions } from './options.js';
import { describeMapping, publishedPorts } from './ports.js';
import { unmountRootfs } from './rootfs.js';
import { runOnce, type Stdio } from './runtime.js';

export const TINI = '/usr/bin/tini-static';

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export const usage = `Usage: tsd-run [OPTIONS] IMAGE [COMMAND] [ARG...]
       tsd-build ... | tsd-run [OPTIONS]          (the image JSON line on stdin)
       tsd-run run [OPTIONS] IMAGE ...            (an image named like a verb)
       tsd-run VERB ...                           (ps, logs, stop, kill, rm, wait, inspect, exec, start, restart, top, attach)`;

/** The foreground or detached run of `tsd-run [OPTIONS] IMAGE [CMD…]`. */
export const runCommand = async (argv: readonly string[], io: Io): Promise<CommandResult> => {
  const decoded = decodeRunOptions(argv);
  if (E.isLeft(decoded)) return decoded;
  const o: RunOptions = decoded.right;
  if (o.help) {
    await write(io.stdout, helpText(usage, RUN_FLAGS));
    return E.right(0);
  }
  // the store's layout, the image and its lease in synchronous calls when all is plain (nothing
  // to overlap them with: each async call is a thread-pool round trip), else the async path
  const store = openStoreSync(o.root);
  if (E.isLeft(store)) return store;
  const p = store.right;
  let imageName = o.image;
  if (imageName === undefined) {
    if (io.isTTY.stdin) return E.left(failure('NoImage', 'no image given: name one (tsd-run IMAGE) or pipe an image JSON line (tsd-build . | tsd-run)', ExitCode.tool));
    const { firstImage } = await import('../message.js');
    const m = await firstImage(io.stdin);
    if (E.isLeft(m)) return E.left({ ...m.left, exitCode: ExitCode.tool });
    imageName = m.right.ref ?? m.right.digest;
  }
  const quick = resolveImageSync(p, imageName);
  const img = quick !== undefined ? E.right(quick) : await resolveImage(p, imageName)();
  if (E.isLeft(img)) return E.left({ ...img.left, message: img.left.message, exitCode: ExitCode.tool });
  // a lease on its blobs until the container's own record (containers/<id>/image, a gc root) is
  // written: a concurrent `tsd-store rm` + gc cannot take them in between (src/store/lease.ts)
  let held: boolean;
  try {
    held = holdImageSync(p, img.right) || (await holdImage(p, img.right));
  } catch (e) {
    return E.left({ ...fromError(`lease image ${imageName}`)(e), exitCode: ExitCode.tool }); // the lease file cannot grow: a full disk
  }
  if (!held) return E.left(failure('ImageNotFound', `image ${imageName}: removed while starting (a concurrent gc); run again`, ExitCode.tool));
  // published ports need the supervisor (it runs the proxy), -a keeps what is not attached in the
  // log, and -it can be detached from (ctrl-p ctrl-q) only if the container outlives us: such a
  // foreground run runs supervised and attached to its log, as `docker run` looks to the user
  const attached = (o.publish.length > 0 || o.attach !== undefined || (o.interactive && o.tty)) && !o.detach && !o.print;
  const created = await createContainer(p, img.right, imageName, attached ? { ...o, detach: true, rm: false } : o, io.env, TINI)();
  // from here the container's record keeps its image (or nothing needs it): the lease can go
  await releaseLeases(p);
  if (E.isLeft(created)) return created;
  const { record, spec } = created.right;
  if (o.print) {
    const { removeContainer } = await import('./lifecycle.js');
    await write(io.stdout, `${JSON.stringify(spec, null, 2)}\n`);
    await removeContainer(p, record, true);
    return E.right(0);
  }
  if (o.detach) {
    const [{ startSupervised }, { removeContainer }, { formatMessage }] = await Promise.all([import('./supervise.js'), import('./lifecycle.js'), import('../message.js')]);
    const started = await startSupervised(p, record);
    if (E.isLeft(started)) {
      await removeContainer(p, record, true);
      return started;
    }
    // with -p, the host ports as published (`-p 80`: the one the kernel chose), as `docker ps` shows them
    const msg = toMessage(record, { status: 'running', pid: started.right });
    const withPorts = record.ports.length > 0 ? { ...msg, ports: publishedPorts(files(p, record.id).dir, record.ports).map(describeMapping) } : msg;
    await write(io.stdout, formatMessage(withPorts));
    return E.right(0);
  }
  if (attached) return attach(p, record, o, io);
  const stdio: Stdio = o.tty ? { mode: 'inherit' } : { mode: 'fds', fds: [o.interactive && o.image !== undefined ? 'inherit' : 'ignore', 'inherit', 'inherit'] };
  await writeState(p, record.id, { status: 'running', startedAt: new Date().toISOString() });
  // the runtime deleted its container when `run` returned: what is left is our mount and dir
  const finish = async (id: string) => {
    if (created.right.held) {
      // the helper unmounts and, for --rm, removes the container's dir (no umount(8), no JS rm -r)
      await created.right.held.release(o.rm ? files(p, id).dir : undefined);
      if (o.rm && existsSync(files(p, id).dir)) await fs.rm(files(p, id).dir, { recursive: true, force: true }); // what it could not remove
      return;
    }
    await unmountRootfs(files(p, id).rootfs);
    if (o.rm) await fs.rm(files(p, id).dir, { recursive: true, force: true });
  };
  const exit = await runOnce({
    runtime: { binary: record.runtime, stateRoot: runtimeRoot(p) },
    id: record.id,
    bundle: files(p, record.id).bundle,
    stdio,
    ownProcessGroup: !o.tty,
    ...(o.limits.memory !== undefined ? { memoryCgroup: memoryEventsDir(record.id) } : {}),
    onSignal: (forward) => {
      const handlers = FORWARDED.map((sig) => [sig, () => forward(sig)] as const);
      for (const [sig, h] of handlers) process.on(sig, h);
      return () => {
        for (const [sig, h] of handlers) process.off(sig, h);
      };
    },
  })();
  const finishedAt = new Date().toISOString();
  if (E.isLeft(exit)) {
    await writeState(p, record.id, { status: 'exited', finishedAt, exitCode: exit.left.exitCode, error: exit.left.message });
    await finish(record.id);
    // the runtime shares the container's stderr and has printed its error there already: one
    // line is enough, so only the exit code is ours
    if (exit.left._tag === 'RuntimeFailed') return E.right(exit.left.exitCode);
    return exit;
  }
  // a --rm container's dir goes right away: no state to record for it
  if (!o.rm) await writeState(p, record.id, { status: 'exited', finishedAt, exitCode: exit.right.exitCode, oomKilled: exit.right.oomKilled ?? false });
  await finish(record.id);
  return E.right(exit.right.exitCode);
};


/** Starts a supervised container and attaches to it from its first byte (stdin with -i/-t, the outputs -a names), as `docker run` looks. */
const attach = async (p: StorePaths, record: ContainerRecord, o: RunOptions, io: Io): Promise<CommandResult> => {
  const [{ startSupervised }, { observe, removeContainer }, { attachTo }] = await Promise.all([import('./supervise.js'), import('./lifecycle.js'), import('./attach.js')]);
  const started = await startSupervised(p, record);
  if (E.isLeft(started)) {
    await removeContainer(p, record, true);
    return started;
  }
  // -a as Docker: only the streams named; stdin only with -i (`-a stdin` alone opens none)
  const stdin = o.attach === undefined ? o.interactive || o.tty : o.interactive;
  const outputs = o.attach === undefined ? {} : { outputs: { stdout: o.attach.stdout, stderr: o.attach.stderr } };
  // --rm, detached from (ctrl-p ctrl-q, or a signal with a pty): it runs on and its supervisor
  // removes it when it exits, told so by a marker in its dir (it was started without --rm so that
  // we could read the exit code). The marker is written before we look at the state, and the
  // supervisor records "exited" before it looks for the marker: so if we see it exited, the
  // supervisor may have missed the marker, and we remove the container ourselves (removeContainer
  // waits for the supervisor to finish first)
  let detachedFrom = false;
  const onDetach = async () => {
    detachedFrom = true;
    if (!o.rm) return;
    await fs.writeFile(files(p, record.id).autoRemove, '').catch(() => undefined);
    if ((await observe(p, record)).status === 'exited') await removeContainer(p, record, true);
  };
  const code = await attachTo(p, record, { stdin, detachKeys: o.detachKeys ?? DEFAULT_DETACH_BYTES, sigProxy: true, fromStart: true, closeStdin: true, ...outputs, onDetach }, io);
  // not detached from: the run is over (its code read); --rm removes it now
  if (o.rm && !detachedFrom && (await observe(p, record)).status === 'exited') await removeContainer(p, record, true);
  return code;
};

// the shell (src/run/cli.ts) takes these from here on the run path: one module to load
export { processIo, runMain } from '../cli/io.js';
