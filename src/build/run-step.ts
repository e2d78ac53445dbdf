// RunStep: one RUN in a real container. The stage's layers are unpacked as snapshots (the
// snapshot module), an overlay is mounted over them with a fresh upper dir, runc runs the command
// with the run module's confinement (network host by default, none on request), and the upper
// dir becomes the step's layer (diff.ts). A non-zero exit is a failure naming the Dockerfile line,
// with the exit code and the tail of the command's output.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';
import type { ContainerConfig } from '../oci/config.js';
import { hostNofile } from '../run/create.js';
import { runOnce } from '../run/runtime.js';
import { runtimeSpec, type OciMount, type ResolvedUser } from '../run/spec.js';
import type { StorePaths } from '../store/layout.js';
import { diffUpper } from './diff.js';
import type { LayerEntry } from './layer-pack.js';
import type { CachedLayer } from './cache.js';

/** The file-system capabilities a RUN needs (the snapshot module supplies the real ones). */
export interface Rootfs {
  /** the snapshot dirs of a layer stack, lowest layer first; [] for no layers */
  readonly lowerdirs: (layers: readonly CachedLayer[]) => Promise<E.Either<Failure, readonly string[]>>;
  /** an overlay of `lowerdirs` (lowest first) on `target`; read-only when upper is undefined */
  readonly mount: (lowerdirs: readonly string[], upper: string | undefined, work: string | undefined, target: string) => Promise<E.Either<Failure, void>>;
  readonly unmount: (target: string) => Promise<void>;
}

export interface RunRequest {
  readonly argv: readonly string[];
  readonly config: ContainerConfig;
  /** ENV of the image plus ARGs in scope, KEY=VALUE */
  readonly env: readonly string[];
  readonly cwd: string;
  readonly user: ResolvedUser;
  readonly network: 'host' | 'none';
  readonly mounts: readonly OciMount[];
  readonly layers: readonly CachedLayer[];
  /** where the command's output goes as it runs (progress) */
  readonly output?: Writable;
  /** names the step in errors: "Dockerfile:3" */
  readonly where: string;
}

export interface RunResult {
  readonly entries: readonly LayerEntry[];
  /** removes the work dir once the layer is written */
  readonly cleanup: () => Promise<void>;
}

const TAIL_LINES = 5;

const tail = (chunks: Buffer[]): string => {
  const text = Buffer.concat(chunks).toString('utf8').trimEnd();
  return text.split('\n').slice(-TAIL_LINES).join(' | ').slice(-400);
};


/** Copies of the host's resolv.conf and hosts: a RUN may write its own, never the host's. */
const etcCopies = async (dir: string): Promise<{ resolvConf?: string; hosts?: string }> => {
  const out: { resolvConf?: string; hosts?: string } = {};
  for (const [key, src] of [['resolvConf', '/etc/resolv.conf'], ['hosts', '/etc/hosts']] as const) {
    const dst = join(dir, key);
    if (await fs.copyFile(src, dst).then(() => true, () => false)) out[key] = dst;
  }
  return out;
};

export const runStep = async (p: StorePaths, rootfs: Rootfs, req: RunRequest): Promise<E.Either<Failure, RunResult>> => {
  const id = `tsd-build-${process.pid}-${randomBytes(6).toString('hex')}`;
  const dir = join(p.cache, 'run', id);
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const merged = join(dir, 'merged');
  const lowerView = join(dir, 'lower');
  const empty = join(dir, 'empty');
  const cleanup = async () => {
    await rootfs.unmount(merged).catch(() => undefined);
    await rootfs.unmount(lowerView).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    for (const d of [upper, work, merged, lowerView, empty]) await fs.mkdir(d, { recursive: true });
    const lowers = await rootfs.lowerdirs(req.layers);
    if (E.isLeft(lowers)) return lowers;
    const lowerdirs = lowers.right.length > 0 ? lowers.right : [empty];
    const mounted = await rootfs.mount(lowerdirs, upper, work, merged);
    if (E.isLeft(mounted)) {
      await cleanup();
      return mounted;
    }
    // what the RUN started from, to tell opaque directories apart (diff.ts)
    let lower: string | undefined;
    if (lowers.right.length === 1) lower = lowers.right[0];
    else if (lowers.right.length > 1) {
      const ro = await rootfs.mount(lowers.right, undefined, undefined, lowerView);
      if (E.isLeft(ro)) {
        await cleanup();
        return ro;
      }
      lower = lowerView;
    }
    const spec = runtimeSpec({
      image: { ...req.config, Entrypoint: [], Cmd: [...req.argv] },
      cmd: [...req.argv],
      entrypoint: [],
      env: req.env,
      cwd: req.cwd,
      user: req.user,
      rootfs: merged,
      network: req.network === 'none' ? 'none' : 'host',
      mounts: req.mounts,
      hostname: 'buildkitsandbox',
      host: { nofile: hostNofile() },
      etc: req.network === 'none' ? {} : await etcCopies(dir),
    });
    if (E.isLeft(spec)) {
      await cleanup();
      return E.left(failure('RunFailed', `${req.where}: ${spec.left.message}`, ExitCode.user));
    }
    const bundle = join(dir, 'bundle');
    await fs.mkdir(bundle);
    await fs.writeFile(join(bundle, 'config.json'), JSON.stringify(spec.right));
    const seen: Buffer[] = [];
    let seenBytes = 0;
    const keep = (d: Buffer) => {
      seen.push(d);
      seenBytes += d.length;
      while (seenBytes > 64 * 1024 && seen.length > 1) seenBytes -= seen.shift()!.length;
    };
    const sink = (d: Buffer) => {
      keep(d);
      req.output?.write(d);
    };
    const out = new Writable({ write: (c: Buffer, _e, done) => (sink(c), done()) });
    const ran = await runOnce({ id, bundle, stdio: { mode: 'capture' }, stdoutStream: out, stderrStream: out })();
    if (E.isLeft(ran)) {
      await cleanup();
      return E.left(failure('RunFailed', `${req.where}: RUN ${req.argv.join(' ')}: ${ran.left.message}`, ExitCode.user));
    }
    if (ran.right.exitCode !== 0) {
      await cleanup();
      const t = tail(seen);
      return E.left(
        failure('RunFailed', `${req.where}: RUN ${JSON.stringify(req.argv.join(' ')).slice(0, 200)} did not complete successfully: exit code ${ran.right.exitCode}${t ? `: ${t}` : ''}`, ExitCode.user),
      );
    }
    const mountPoints = [...spec.right.mounts.map((m) => m.destination), '/dev', '/proc', '/sys'];
    const entries = await diffUpper({ upper, merged, ...(lower !== undefined ? { lower } : {}), mountPoints });
    await rootfs.unmount(merged);
    if (lower === lowerView) await rootfs.unmount(lowerView);
    return E.right({ entries, cleanup });
  } catch (e) {
    await cleanup();
    return E.left(fromError(`${req.where}: RUN`)(e));
  }
};
