// The chaos driver: for each of pull, push, build, run -d, load, gc and tag, start the operation
// (the real binary), SIGKILL it at a random point, then check that `tsd-store fsck` finds nothing
// wrong and that the same operation, run again, succeeds with the result an unkilled run gave.
//
// Kill points: a random delay drawn from [0, the unkilled run's duration] (measured first), or
// right after the k-th stderr progress line of the unkilled run (k random). Half of the kills hit
// the process alone (kill -9 PID: its children live on as orphans), half its process group.
// A run that ends before its kill lands is counted as "finished first", not as a kill.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, openSync, rmSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import * as E from 'fp-ts/lib/Either.js';
import { startRegistry, type Registry } from '../support/registry.js';
import { REPO, makeImage, removeDir, tempDir, type FileSpec } from '../support/tsd.js';
import { paths } from '../../src/store/layout.js';
import { openStore } from '../../src/store/store.js';

/** extra names in the tag operation's store, so index.json is not tiny (about 60 KB) */
const FILLERS = 300;

export const OPS = ['pull', 'push', 'build', 'run-d', 'load', 'gc', 'tag'] as const;
export type OpName = (typeof OPS)[number];

export interface Figures {
  op: OpName;
  kills: number;
  byDelay: number;
  byLine: number;
  groupKills: number;
  finishedFirst: number;
  fsckFailures: number;
  rerunFailures: number;
  lost: number;
  /** mounts under the store a killed run left (unmounted by the driver before it moves on) */
  leakedMounts: number;
  /** kills that landed after the tool had loaded (a stderr-line kill, or a delay past `--help`'s time) */
  pastStart: number;
  baselineMs: number;
  failures: string[];
}

export interface ChaosOptions {
  /** kills per operation */
  readonly kills: number;
  /** MiB of random data in the test image (its layers) */
  readonly sizeMb: number;
  readonly ops?: readonly OpName[];
  readonly log?: (line: string) => void;
  /** a random seed (the kill points are drawn from it) */
  readonly seed?: number;
}

// ---- processes ----------------------------------------------------------------------------------

interface Cmd {
  readonly tool: string;
  readonly args: readonly string[];
  readonly root: string;
  readonly env?: NodeJS.ProcessEnv;
  /** a file for stdin */
  readonly stdin?: string;
}

interface Done {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** true when our SIGKILL ended it */
  readonly killed: boolean;
}

type KillPlan = { readonly kind: 'none' } | { readonly kind: 'delay'; readonly ms: number; readonly group: boolean } | { readonly kind: 'line'; readonly line: number; readonly group: boolean };

const start = (cmd: Cmd, plan: KillPlan, timeoutMs = 180_000): Promise<Done> =>
  new Promise((resolve, reject) => {
    const t0 = Date.now();
    const fd = cmd.stdin ? openSync(cmd.stdin, 'r') : undefined;
    const child = spawn(join(REPO, 'bin', `tsd-${cmd.tool}`), cmd.args, {
      env: { ...process.env, TSD_ROOT: cmd.root, ...cmd.env },
      stdio: [fd ?? 'ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so a group kill reaches its children too
    });
    if (fd !== undefined) closeSync(fd);
    const out: Buffer[] = [];
    let err = '';
    let lines = 0;
    let killed = false;
    let exited = false;
    const kill = (group: boolean) => {
      if (exited || killed || child.pid === undefined) return;
      killed = true;
      try {
        process.kill(group ? -child.pid : child.pid, 'SIGKILL');
      } catch {
        killed = false;
      }
    };
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (plan.kind === 'line') {
        lines = err.split('\n').length - 1;
        if (lines >= plan.line) kill(plan.group);
      }
    });
    const timer = plan.kind === 'delay' ? setTimeout(() => kill(plan.group), plan.ms) : undefined;
    const guard = setTimeout(() => kill(true), timeoutMs);
    child.on('exit', () => (exited = true));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      clearTimeout(guard);
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout: Buffer.concat(out).toString(), stderr: err, ms: Date.now() - t0, killed: killed && signal === 'SIGKILL' });
    });
  });

const run = (cmd: Cmd) => start(cmd, { kind: 'none' });
const sh = (tool: string, args: readonly string[], root: string) => run({ tool, args, root });

const must = async (what: string, p: Promise<Done>): Promise<Done> => {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r;
};

const digestOfLine = (stdout: string): string => {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const last = JSON.parse(lines[lines.length - 1] ?? '{}') as { digest?: string };
  return last.digest ?? '';
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated with its seed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const httpStatus = (url: string, method = 'HEAD', accept = ''): Promise<{ status: number; digest: string }> =>
  new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: accept ? { accept } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: String(res.headers['docker-content-digest'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });

// ---- fixtures -----------------------------------------------------------------------------------

const busyboxRootfs = (dir: string): string => join(dir, 'busybox-rootfs.tar');

interface Fixtures {
  readonly work: string;
  readonly reg: Registry;
  /** a store with localhost/busybox:latest and localhost/big:latest (busybox + random layers with md5 sums) */
  readonly seed: string;
  readonly bigDigest: string;
  readonly pullRef: string;
  /** docker-archive of localhost/big:latest */
  readonly archive: string;
  /** docker-archive of localhost/garbage:1 (layers no other image has) */
  readonly garbage: string;
  readonly context: string;
}

const randomLayer = (prefix: string, mb: number, parts: number): FileSpec[] => {
  const files: FileSpec[] = [{ name: `${prefix}/`, type: 'directory' }];
  const sums: string[] = [];
  for (let i = 0; i < parts; i++) {
    const content = randomBytes(Math.max(1, Math.floor((mb * 1024 * 1024) / parts)));
    files.push({ name: `${prefix}/f${i}`, content });
    sums.push(`${createHash('md5').update(content).digest('hex')}  /${prefix}/f${i}`);
  }
  files.push({ name: `${prefix}/sums`, content: sums.join('\n') + '\n' });
  return files;
};

const fixtures = async (sizeMb: number): Promise<Fixtures> => {
  const work = tempDir('tsd-chaos-');
  const reg = await startRegistry();
  const rootfs = busyboxRootfs(work);
  await new Promise<void>((resolve, reject) => {
    const c = spawn('sh', ['-c', `sh ${join(REPO, 'examples/busybox-rootfs.sh')} > ${rootfs}`], { stdio: 'inherit' });
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error('busybox-rootfs.sh failed'))));
  });
  const seed = join(work, 'seed');
  const opened = await openStore(seed)();
  if (E.isLeft(opened)) throw new Error(opened.left.message);
  await must('import busybox', run({ tool: 'store', args: ['import', '-c', 'CMD ["sh"]', 'localhost/busybox:latest'], root: seed, stdin: rootfs }));
  const p = paths(seed);
  // three layers of random data (1/2, 1/3, 1/6 of sizeMb) on the busybox files
  const bb = readFileSync('/usr/bin/busybox');
  const base: FileSpec[] = [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: bb, mode: 0o755 },
    ...['sh', 'md5sum', 'cat', 'echo', 'ls', 'true'].map((a): FileSpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
  ];
  const big = await makeImage(p, 'localhost/big:latest', [base, randomLayer('a', sizeMb / 2, 3), randomLayer('b', sizeMb / 3, 2), randomLayer('c', sizeMb / 6, 1)], { Cmd: ['sh'], Env: ['PATH=/bin'] });
  await makeImage(p, 'localhost/garbage:1', [randomLayer('g', Math.max(1, sizeMb / 4), 2), randomLayer('h', 0.5, 1)], { Cmd: ['sh'] });
  // makeImage wrote in this (live) process, whose lease would keep the garbage image's blobs from
  // every gc of a copy of this store: the images are tagged now, so the lease can go
  rmSync(join(seed, 'leases'), { recursive: true, force: true });
  mkdirSync(join(seed, 'leases'));
  const archive = join(work, 'big.tar');
  const garbage = join(work, 'garbage.tar');
  await must('save big', sh('store', ['save', '-o', archive, 'localhost/big:latest'], seed));
  await must('save garbage', sh('store', ['save', '-o', garbage, 'localhost/garbage:1'], seed));
  await must('rm garbage', sh('store', ['rm', 'localhost/garbage:1'], seed));
  await must('gc seed', sh('store', ['gc'], seed));
  const pullRef = `${reg.host}/chaos/big:1`;
  await must('push seed', sh('push', ['-q', 'localhost/big:latest', pullRef], seed));
  const context = join(work, 'context');
  mkdirSync(join(context, 'data'), { recursive: true });
  writeFileSync(join(context, 'data', 'one'), randomBytes(256 * 1024));
  writeFileSync(join(context, 'data', 'two'), 'two\n');
  writeFileSync(
    join(context, 'Dockerfile'),
    [
      'FROM localhost/busybox:latest',
      'COPY data /data',
      'RUN mkdir -p /out && cat /data/one /data/two | md5sum > /out/sum && echo step one',
      'ENV CHAOS=1',
      'RUN for i in 1 2 3 4 5 6 7 8; do cat /data/one > /out/copy$i; done && echo step two',
      'COPY --from=localhost/big:latest /a /a',
      'RUN md5sum -c /a/sums > /out/check && echo step three',
      'CMD ["cat", "/out/sum"]',
      '',
    ].join('\n'),
  );
  return { work, reg, seed, bigDigest: big.digest, pullRef, archive, garbage, context };
};

/** A copy of the seed store (or an empty store), made without any tsd process. */
const storeFrom = (fx: Fixtures, template: 'seed' | 'empty'): string => {
  const dir = tempDir('tsd-chaos-store-');
  if (template === 'seed') cpSync(fx.seed, dir, { recursive: true, verbatimSymlinks: true });
  return dir;
};

// ---- operations ---------------------------------------------------------------------------------

interface Iteration {
  readonly cmd: Cmd;
  /** checks the result of the rerun; throws with what is wrong */
  readonly verify: (rerun: Done) => Promise<void>;
  /** run after the kill, before fsck and the rerun (state the killed run may have left for the next one) */
  readonly afterKill?: () => Promise<void>;
  readonly cleanup: () => Promise<void>;
}

interface Operation {
  readonly name: OpName;
  /** stores shared by all iterations (set up once) */
  readonly setup: () => Promise<void>;
  readonly iteration: (k: number) => Promise<Iteration>;
  readonly teardown: () => Promise<void>;
}

const readable = async (root: string, ref: string): Promise<void> => {
  const r = await run({ tool: 'store', args: ['save', '-o', '/dev/null', ref], root });
  if (r.code !== 0) throw new Error(`LOST? save ${ref}: exit ${r.code}: ${r.stderr.trim()}`);
};

const expectDigest = (what: string, got: string, want: string) => {
  if (got !== want) throw new Error(`${what}: digest ${got || '(none)'}, expected ${want}`);
};

const operations = (fx: Fixtures, expected: Map<OpName, string>): Operation[] => {
  const shared: Record<string, string> = {};
  const noop = async () => undefined;
  return [
    {
      name: 'pull',
      setup: noop,
      iteration: async () => {
        const root = storeFrom(fx, 'empty');
        return {
          cmd: { tool: 'pull', args: ['--progress', 'json', '--unpack', '--concurrency', '2', fx.pullRef], root },
          verify: async (r) => {
            expectDigest('pull', digestOfLine(r.stdout), fx.bigDigest);
            await readable(root, fx.pullRef);
            // the unpacked snapshots hold every byte: the sums check inside a container
            const c = await run({ tool: 'run', args: ['--rm', '--network', 'none', fx.pullRef, 'sh', '-c', 'md5sum -c /a/sums && md5sum -c /b/sums && md5sum -c /c/sums'], root });
            if (c.code !== 0) throw new Error(`run the pulled image: exit ${c.code}: ${(c.stdout + c.stderr).trim().split('\n').slice(-3).join(' | ')}`);
          },
          cleanup: async () => removeDir(root),
        };
      },
      teardown: noop,
    },
    {
      name: 'push',
      setup: async () => {
        shared.push = storeFrom(fx, 'seed');
      },
      iteration: async (k) => {
        const root = shared.push as string;
        const id = k < 0 ? 'base' : String(k);
        const dest = `${fx.reg.host}/chaos/push-${id}:1`;
        return {
          cmd: { tool: 'push', args: ['--progress', 'json', '--chunk-size', '512KiB', '--concurrency', '2', 'localhost/big:latest', dest], root },
          verify: async (r) => {
            expectDigest('push', digestOfLine(r.stdout), fx.bigDigest);
            const m = await httpStatus(`http://${fx.reg.host}/v2/chaos/push-${id}/manifests/1`, 'GET', 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json');
            if (m.status !== 200) throw new Error(`registry has no manifest for ${dest}: ${m.status}`);
            expectDigest('registry manifest', m.digest, fx.bigDigest);
            // every blob it names is there
            const manifest = JSON.parse(readFileSync(join(root, 'blobs/sha256', fx.bigDigest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
            for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
              const b = await httpStatus(`http://${fx.reg.host}/v2/chaos/push-${id}/blobs/${d}`);
              if (b.status !== 200) throw new Error(`registry: blob ${d} of ${dest}: ${b.status}`);
            }
          },
          cleanup: noop,
        };
      },
      teardown: async () => removeDir(shared.push as string),
    },
    {
      name: 'build',
      setup: noop,
      iteration: async () => {
        const root = storeFrom(fx, 'seed');
        return {
          cmd: { tool: 'build', args: ['--progress', 'plain', '-t', 'localhost/built:1', '--context', fx.context], root, env: { SOURCE_DATE_EPOCH: '1700000000' } },
          verify: async (r) => {
            const want = expected.get('build');
            if (want) expectDigest('build', digestOfLine(r.stdout), want);
            await readable(root, 'localhost/built:1');
          },
          cleanup: async () => removeDir(root),
        };
      },
      teardown: noop,
    },
    {
      name: 'run-d',
      setup: async () => {
        shared.run = storeFrom(fx, 'seed');
      },
      iteration: async (k) => {
        const root = shared.run as string;
        const name = `chaos-${k < 0 ? 'base' : k}`;
        const tsdRun = (args: string[]) => run({ tool: 'run', args, root });
        const checkExited = async (what: string) => {
          const w = await tsdRun(['wait', name]);
          if (w.code !== 0 || w.stdout.trim() !== '7') throw new Error(`${what}: wait: exit ${w.code}, printed ${JSON.stringify(w.stdout.trim())}: ${w.stderr.trim()}`);
          const l = await tsdRun(['logs', name]);
          if (l.code !== 0 || !l.stdout.includes(`out-${k}`) || !l.stderr.includes(`err-${k}`)) throw new Error(`${what}: logs: exit ${l.code}: ${JSON.stringify(l.stdout)} ${JSON.stringify(l.stderr)}`);
        };
        return {
          cmd: { tool: 'run', args: ['-d', '--name', name, '--network', 'none', 'localhost/busybox:latest', 'sh', '-c', `echo out-${k}; echo err-${k} >&2; exit 7`], root },
          afterKill: async () => {
            // the killed run may have made the container (and even started it): whatever it left
            // is inspectable and, once started, records its exit code and output; then rm -f
            // frees the name for the rerun, as Docker's would
            const i = await tsdRun(['inspect', name]);
            if (i.code === 0) {
              const state = (JSON.parse(i.stdout) as { State: { Status: string } }).State.Status;
              if (state === 'running' || state === 'exited') await checkExited(`the killed run's container (${state})`);
              const rm = await tsdRun(['rm', '-f', name]);
              if (rm.code !== 0) throw new Error(`rm -f the killed run's container: exit ${rm.code}: ${rm.stderr.trim()}`);
            } else if (!/no such container|not found/i.test(i.stderr)) throw new Error(`inspect after the kill: exit ${i.code}: ${i.stderr.trim()}`);
          },
          verify: async (r) => {
            const m = JSON.parse(r.stdout) as { type: string; id: string };
            if (m.type !== 'container') throw new Error(`run -d printed ${r.stdout}`);
            await checkExited('rerun');
            const rm = await tsdRun(['rm', name]);
            if (rm.code !== 0) throw new Error(`rm: exit ${rm.code}: ${rm.stderr.trim()}`);
          },
          cleanup: async () => {
            await tsdRun(['rm', '-f', name]);
          },
        };
      },
      teardown: async () => {
        const root = shared.run as string;
        const ps = await sh('run', ['ps', '-a', '-q'], root);
        for (const id of ps.stdout.split('\n').filter(Boolean)) await sh('run', ['rm', '-f', id], root);
        removeDir(root);
      },
    },
    {
      name: 'load',
      setup: noop,
      iteration: async () => {
        const root = storeFrom(fx, 'empty');
        return {
          cmd: { tool: 'store', args: ['load', '-i', fx.archive], root },
          verify: async (r) => {
            expectDigest('load', digestOfLine(r.stdout), fx.bigDigest);
            await readable(root, 'localhost/big:latest');
          },
          cleanup: async () => removeDir(root),
        };
      },
      teardown: noop,
    },
    {
      name: 'gc',
      setup: async () => {
        shared.gc = storeFrom(fx, 'seed');
      },
      iteration: async () => {
        const root = shared.gc as string;
        // garbage for this gc to collect: an image loaded, then forgotten
        const loaded = await must('load garbage', sh('store', ['load', '-i', fx.garbage], root));
        const garbageDigest = digestOfLine(loaded.stdout);
        await must('rm garbage', sh('store', ['rm', 'localhost/garbage:1'], root));
        return {
          cmd: { tool: 'store', args: ['gc'], root },
          verify: async () => {
            for (const ref of ['localhost/busybox:latest', 'localhost/big:latest']) await readable(root, ref);
            if (existsSync(join(root, 'blobs/sha256', garbageDigest.slice(7)))) throw new Error(`gc left the forgotten manifest ${garbageDigest}`);
          },
          cleanup: noop,
        };
      },
      teardown: async () => removeDir(shared.gc as string),
    },
    {
      name: 'tag',
      setup: async () => {
        const root = storeFrom(fx, 'seed');
        shared.tag = root;
        // many names, so index.json is not tiny
        const p = paths(root);
        const { tagDescriptor } = await import('../../src/store/image.js');
        const manifest = readFileSync(join(root, 'blobs/sha256', fx.bigDigest.slice(7)));
        const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: fx.bigDigest, size: manifest.length } as Parameters<typeof tagDescriptor>[1];
        for (let i = 0; i < FILLERS; i++) {
          const t = await tagDescriptor(p, desc, `localhost/filler:${i}`)();
          if (E.isLeft(t)) throw new Error(t.left.message);
        }
      },
      iteration: async (k) => {
        const root = shared.tag as string;
        const dst = `localhost/tagged:${k < 0 ? 'base' : k}`;
        return {
          cmd: { tool: 'store', args: ['tag', 'localhost/big:latest', dst], root },
          verify: async (r) => {
            expectDigest('tag', digestOfLine(r.stdout), fx.bigDigest);
            const i = await run({ tool: 'store', args: ['ls', '--format', '{{.Repository}}:{{.Tag}}'], root });
            const names = new Set(i.stdout.split('\n').filter(Boolean));
            const want = ['localhost/busybox:latest', 'localhost/big:latest', dst, ...Array.from({ length: FILLERS }, (_, n) => `localhost/filler:${n}`), ...Array.from({ length: Math.max(0, k) }, (_, n) => `localhost/tagged:${n}`), ...(k >= 0 ? ['localhost/tagged:base'] : [])];
            const lost = want.filter((n) => !names.has(n));
            if (lost.length > 0) throw new Error(`LOST names: ${lost.join(' ')}`);
            await readable(root, dst);
          },
          cleanup: noop,
        };
      },
      teardown: async () => removeDir(shared.tag as string),
    },
  ];
};

// ---- the loop -----------------------------------------------------------------------------------

/** Mount points at or under `dir` (from /proc/self/mountinfo), outermost first. */
const mountsUnder = (dir: string): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));

const stderrLines = (s: string): number => s.split('\n').length - 1;

export const chaos = async (opts: ChaosOptions): Promise<Figures[]> => {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const random = prng(opts.seed ?? Date.now() & 0xffffffff);
  const fx = await fixtures(opts.sizeMb);
  const expected = new Map<OpName, string>();
  const figures: Figures[] = [];
  try {
    for (const op of operations(fx, expected).filter((o) => !opts.ops || opts.ops.includes(o.name))) {
      const f: Figures = { op: op.name, kills: 0, byDelay: 0, byLine: 0, groupKills: 0, finishedFirst: 0, fsckFailures: 0, rerunFailures: 0, lost: 0, leakedMounts: 0, pastStart: 0, baselineMs: 0, failures: [] };
      figures.push(f);
      await op.setup();
      // the unkilled run: its duration and stderr lines set the range of the kill points
      const first = await op.iteration(-1);
      const base = await run(first.cmd);
      if (base.code !== 0) throw new Error(`${op.name}: the unkilled run failed: exit ${base.code}: ${base.stderr.trim()}`);
      if (op.name === 'build') expected.set('build', digestOfLine(base.stdout));
      await first.verify(base);
      await first.cleanup();
      f.baselineMs = base.ms;
      const lines = stderrLines(base.stderr);
      // the time node takes to load the tool: kill delays are drawn from just before it to the
      // end of the unkilled run, so few kills are spent before the tool has done anything
      const help = await run({ ...first.cmd, args: ['--help'] });
      let from = Math.min(Math.floor(help.ms * 0.8), Math.floor(base.ms / 2));
      log(`chaos ${op.name}: unkilled run ${base.ms} ms (tool start ${help.ms} ms), ${lines} stderr lines`);
      // the end of the delay range: a run that ends before its kill (a quieter machine than at the
      // unkilled run) pulls it in, so the kills keep landing inside the operation
      let to = base.ms;
      let k = 0;
      for (let attempts = 0; f.kills < opts.kills && attempts < opts.kills * 6; attempts++, k++) {
        const it = await op.iteration(k);
        const group = random() < 0.5;
        const plan: KillPlan = lines > 0 && random() < 0.35 ? { kind: 'line', line: 1 + Math.floor(random() * lines), group } : { kind: 'delay', ms: from + Math.floor(random() * (to - from)), group };
        const killedRun = await start(it.cmd, plan);
        const where = plan.kind === 'line' ? `after stderr line ${plan.line}` : `at ${plan.ms} ms`;
        if (!killedRun.killed) {
          f.finishedFirst++;
          from = Math.min(from, Math.floor(killedRun.ms * 0.7));
          to = Math.max(from + 5, Math.min(to, killedRun.ms) - Math.floor((to - from) / 8));
          if (killedRun.code !== 0) f.failures.push(`${op.name} #${k}: an unkilled run failed: exit ${killedRun.code}: ${killedRun.stderr.trim()}`);
          await it.cleanup();
          continue;
        }
        f.kills++;
        if (plan.kind === 'line') f.byLine++;
        else f.byDelay++;
        if (plan.kind === 'line' || plan.ms >= help.ms) f.pastStart++;
        if (plan.group) f.groupKills++;
        const label = `${op.name} #${k} killed ${where}${plan.group ? ' (group)' : ''}`;
        const failuresBefore = f.failures.length;
        try {
          await sleep(20);
          if (it.afterKill) await it.afterKill();
        } catch (e) {
          f.rerunFailures++;
          f.failures.push(`${label}: ${(e as Error).message}`);
        }
        const fsck = await sh('store', ['fsck'], it.cmd.root);
        if (fsck.code !== 0) {
          f.fsckFailures++;
          f.failures.push(`${label}: fsck: exit ${fsck.code}: ${(fsck.stdout + fsck.stderr).trim().split('\n').slice(0, 4).join(' | ')}`);
        }
        const rerun = await run(it.cmd);
        try {
          if (rerun.code !== 0) throw new Error(`rerun: exit ${rerun.code}: ${rerun.stderr.trim().split('\n').slice(-2).join(' | ')}`);
          await it.verify(rerun);
        } catch (e) {
          f.rerunFailures++;
          if ((e as Error).message.startsWith('LOST')) f.lost++;
          f.failures.push(`${label}: ${(e as Error).message}`);
        }
        const after = await sh('store', ['fsck'], it.cmd.root);
        if (after.code !== 0) {
          f.fsckFailures++;
          f.failures.push(`${label}: fsck after the rerun: exit ${after.code}: ${(after.stdout + after.stderr).trim().split('\n').slice(0, 4).join(' | ')}`);
        }
        // what the kill left mounted under the store, once the rerun is done (kill -9 leaves no
        // one to unmount; a figure, not a failure), is unmounted so the store can be removed
        const leaked = mountsUnder(it.cmd.root);
        f.leakedMounts += leaked.length;
        for (const m of leaked.reverse()) spawnSync('umount', ['-l', m]);
        try {
          await it.cleanup();
        } catch (e) {
          f.failures.push(`${label}: cleanup: ${(e as Error).message}`);
        }
        const fresh = f.failures.slice(failuresBefore);
        log(`chaos ${label}: ${fresh.length === 0 ? 'ok' : `FAILED: ${fresh.join(' || ')}`}`);
      }
      try {
        await op.teardown();
      } catch (e) {
        f.failures.push(`${op.name}: teardown: ${(e as Error).message}`);
      }
      for (const l of f.failures) log(`chaos FAILURE ${l}`);
    }
  } finally {
    await fx.reg.stop();
    removeDir(fx.work);
  }
  return figures;
};

export const table = (figures: readonly Figures[]): string => {
  const rows = figures.map((f) => `| ${f.op} | ${f.kills} | ${f.byDelay} / ${f.byLine} | ${f.pastStart} | ${f.groupKills} | ${f.finishedFirst} | ${f.fsckFailures} | ${f.rerunFailures} | ${f.lost} | ${f.leakedMounts} | ${f.baselineMs} |`);
  const sum = (k: keyof Figures) => figures.reduce((n, f) => n + (f[k] as number), 0);
  return [
    '| operation | kills | by delay / after a stderr line | after the tool loaded | group kills | finished before the kill | fsck failures | rerun failures | lost | mounts left by kills | unkilled run (ms) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    `| **total** | ${sum('kills')} | ${sum('byDelay')} / ${sum('byLine')} | ${sum('pastStart')} | ${sum('groupKills')} | ${sum('finishedFirst')} | ${sum('fsckFailures')} | ${sum('rerunFailures')} | ${sum('lost')} | ${sum('leakedMounts')} | |`,
  ].join('\n');
};
