// tsd-ctx end to end: the real binary on real trees, checking the tar bytes, stderr and exit code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, linkSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tar from 'tar-stream';
import { REPO, removeDir, tempDir } from '../support/tsd.js';

interface Ran {
  readonly code: number;
  readonly out: Buffer;
  readonly stderr: string;
}
/** Runs bin/tsd-ctx and keeps stdout as bytes (it is a tar). */
const ctx = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; asNobody?: boolean } = {}): Promise<Ran> =>
  new Promise((done, fail) => {
    const bin = join(REPO, 'bin', 'tsd-ctx');
    const [cmd, argv] = opts.asNobody ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', bin, ...args]] : [bin, args];
    const child = spawn(cmd as string, argv as string[], { env: { ...process.env, SOURCE_DATE_EPOCH: '', ...opts.env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? 1, out: Buffer.concat(out), stderr: err }));
    child.stdin.end(opts.input ?? '');
  });

interface Entry {
  readonly name: string;
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly linkname?: string;
  readonly pax: Record<string, string>;
  readonly body: Buffer;
}
const entries = async (tarBytes: Buffer): Promise<Entry[]> => {
  const ex = tar.extract();
  const out: Entry[] = [];
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({ name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: (h.mtime?.getTime() ?? 0) / 1000, ...(h.linkname ? { linkname: h.linkname } : {}), pax: (h.pax ?? {}) as Record<string, string>, body: Buffer.concat(chunks) });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(tarBytes);
  await done;
  return out;
};
const names = async (r: Ran) => (await entries(r.out)).map((e) => e.name);
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tree with the odd things: nested dirs, an executable, a symlink, a hard link, a fifo. */
const makeTree = (reverse = false): string => {
  const dir = tempDir('tsd-ctx-');
  const files: [string, string][] = [['Dockerfile', 'FROM scratch\n'], ['b.txt', 'bee\n'], ['a/x.txt', 'ex\n'], ['a/deep/y.txt', 'why\n'], ['run.sh', '#!/bin/sh\n']];
  for (const [p, c] of reverse ? [...files].reverse() : files) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  chmodSync(join(dir, 'run.sh'), 0o755);
  symlinkSync('/etc/passwd', join(dir, 'link'));
  linkSync(join(dir, 'b.txt'), join(dir, 'hard'));
  return dir;
};

test('entries are sorted, symlinks and hard links kept, the executable bit kept, PAX digests right', async () => {
  const dir = makeTree();
  try {
    const r = await ctx([dir]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, '');
    const es = await entries(r.out);
    assert.equal(es.map((e) => [e.name, e.type]), [
      ['Dockerfile', 'file'], ['a/', 'directory'], ['a/deep/', 'directory'], ['a/deep/y.txt', 'file'], ['a/x.txt', 'file'],
      ['b.txt', 'file'], ['hard', 'link'], ['link', 'symlink'], ['run.sh', 'file'],
    ]);
    const by = new Map(es.map((e) => [e.name, e]));
    assert.is(by.get('link')!.linkname, '/etc/passwd');
    assert.is(by.get('hard')!.linkname, 'b.txt');
    assert.is(by.get('run.sh')!.mode, 0o755);
    assert.is(by.get('b.txt')!.mode, 0o644);
    for (const e of es.filter((x) => x.type === 'file')) assert.is(e.pax['TSD.sha256'], sha(e.body), e.name);
    assert.is(by.get('Dockerfile')!.pax['TSD.role'], 'dockerfile');
  } finally {
    removeDir(dir);
  }
});

test('determinism: the same tree gives the same bytes; with --mtime two copies do too', async () => {
  const one = makeTree();
  const two = makeTree(true);
  try {
    const a = await ctx([one]);
    const b = await ctx([one]);
    assert.is(sha(a.out), sha(b.out));
    utimesSync(join(two, 'b.txt'), new Date(), new Date(Date.now() + 5000));
    const c = await ctx([one, '--mtime', '1700000000']);
    const d = await ctx([two, '--mtime', '1700000000']);
    assert.is(c.code, 0);
    assert.is(sha(c.out), sha(d.out));
    assert.ok((await entries(c.out)).every((e) => e.mtime === 1700000000));
    const e = await ctx([two], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
    assert.is(sha(e.out), sha(d.out));
  } finally {
    removeDir(one);
    removeDir(two);
  }
});

test('the worker-thread and main-thread readers give the same bytes', async () => {
  const dir = makeTree();
  try {
    const a = await ctx([dir], { env: { TSD_CTX_THREADS: '1' } });
    const b = await ctx([dir], { env: { TSD_CTX_THREADS: '0' } });
    assert.is(a.code, 0);
    assert.is(sha(a.out), sha(b.out));
  } finally {
    removeDir(dir);
  }
});

test('--no-digests leaves out the TSD.sha256 records, keeps the Dockerfile mark', async () => {
  const dir = makeTree();
  try {
    const es = await entries((await ctx([dir, '--no-digests'])).out);
    assert.ok(es.every((e) => e.pax['TSD.sha256'] === undefined));
    assert.is(es.find((e) => e.name === 'Dockerfile')!.pax['TSD.role'], 'dockerfile');
    assert.is(es.find((e) => e.name === 'b.txt')!.body.toString(), 'bee\n');
  } finally {
    removeDir(dir);
  }
});

test('many batches: every body matches the file and its digest, with both readers (buffers are reused)', async () => {
  const dir = tempDir('tsd-ctx-many-');
  try {
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    const want = new Map<string, Buffer>();
    for (let i = 0; i < 900; i++) {
      const d = join(dir, `d${i % 7}`);
      mkdirSync(d, { recursive: true });
      // sizes from 0 to ~40 KiB, and every 150th file near the 1 MiB small-file limit
      const size = i % 150 === 149 ? (1 << 20) - (i % 3) : (i * 7919) % 40000;
      const body = Buffer.alloc(size, i % 251);
      if (size > 4) body.writeUInt32LE(i, 0);
      writeFileSync(join(d, `f${i}`), body);
      want.set(`d${i % 7}/f${i}`, body);
    }
    for (const threads of ['0', '1']) {
      const r = await ctx([dir], { env: { TSD_CTX_THREADS: threads } });
      assert.is(r.code, 0, r.stderr);
      const files = (await entries(r.out)).filter((e) => e.type === 'file' && e.name !== 'Dockerfile');
      assert.is(files.length, want.size);
      for (const e of files) {
        assert.ok(e.body.equals(want.get(e.name)!), `${e.name} (threads=${threads})`);
        assert.is(e.pax['TSD.sha256'], sha(e.body), e.name);
      }
    }
  } finally {
    removeDir(dir);
  }
});

/** A tree of `n` small files spread over a few directories, big enough for several segments. */
const makeBigTree = (n: number, extra: [string, Buffer][] = []): string => {
  const dir = tempDir('tsd-ctx-big-');
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  for (let i = 0; i < n; i++) {
    const d = join(dir, `d${i % 5}`);
    mkdirSync(d, { recursive: true });
    const body = Buffer.alloc((i * 7919) % 9000, i % 251);
    writeFileSync(join(d, `f${i}`), body);
  }
  for (const [p, b] of extra) writeFileSync(join(dir, p), b);
  return dir;
};

test('the same bytes into a pipe, a file and a socket, with and without the worker thread, and through the stdout stream', async () => {
  const dir = makeBigTree(1500, [['big.bin', Buffer.alloc(9 * 1024 * 1024 + 3, 9)]]);
  const out = tempDir('tsd-ctx-out-');
  try {
    const bin = join(REPO, 'bin', 'tsd-ctx');
    const want = sha((await ctx([dir], { env: { TSD_CTX_THREADS: '0' } })).out);
    assert.is(sha((await ctx([dir], { env: { TSD_CTX_THREADS: '1' } })).out), want, 'socket, worker');
    assert.is(sha((await ctx([dir], { env: { TSD_CTX_STREAM: '1' } })).out), want, 'through the stdout stream');
    for (const threads of ['0', '1']) {
      const env = { ...process.env, TSD_CTX_THREADS: threads, SOURCE_DATE_EPOCH: '' };
      const piped = spawnSync('sh', ['-c', `"${bin}" "${dir}" | cat > "${out}/piped.tar"`], { env });
      assert.is(piped.status, 0, piped.stderr.toString());
      const filed = spawnSync('sh', ['-c', `"${bin}" "${dir}" > "${out}/file.tar"`], { env });
      assert.is(filed.status, 0, filed.stderr.toString());
      assert.is(sha(readFileSync(join(out, 'piped.tar'))), want, `pipe, threads=${threads}`);
      assert.is(sha(readFileSync(join(out, 'file.tar'))), want, `file, threads=${threads}`);
    }
    const es = await entries((await ctx([dir])).out);
    const big = es.find((e) => e.name === 'big.bin')!;
    assert.is(big.body.length, 9 * 1024 * 1024 + 3);
    assert.is(big.pax['TSD.sha256'], sha(big.body));
    assert.is(es.filter((e) => e.type === 'file').length, 1502);
  } finally {
    removeDir(dir);
    removeDir(out);
  }
});

test('a reader that stops early ends tsd-ctx quietly (exit 0, nothing on stderr)', () => {
  const dir = makeBigTree(1500);
  try {
    for (const threads of ['0', '1']) {
      const r = spawnSync('bash', ['-c', `"${join(REPO, 'bin', 'tsd-ctx')}" "${dir}" | head -c 4096 > /dev/null; echo "\${PIPESTATUS[0]}"`], { env: { ...process.env, TSD_CTX_THREADS: threads }, encoding: 'utf8' });
      assert.is(r.stdout.trim(), '0', `threads=${threads}: ${r.stderr}`);
      assert.is(r.stderr, '', `threads=${threads}`);
    }
  } finally {
    removeDir(dir);
  }
});

test('older times are kept under --mtime (it clamps, it does not set)', async () => {
  const dir = makeTree();
  try {
    utimesSync(join(dir, 'b.txt'), 1000, 1000);
    const es = await entries((await ctx([dir, '--mtime', '1700000000'])).out);
    assert.is(es.find((e) => e.name === 'b.txt')!.mtime, 1000);
  } finally {
    removeDir(dir);
  }
});

test('a fifo is skipped with a warning on stderr', async () => {
  const dir = makeTree();
  try {
    spawnSync('mkfifo', [join(dir, 'pipe')]);
    const r = await ctx([dir]);
    assert.is(r.code, 0);
    assert.is(r.stderr, 'tsd-ctx: warning: skipping fifo pipe\n');
    assert.not.ok((await names(r)).includes('pipe'));
  } finally {
    removeDir(dir);
  }
});

test('sockets and devices are skipped with a warning; owners and set-id bits are kept', async () => {
  const dir = makeTree();
  try {
    const sock = spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(join(dir, 'sock'))})`]);
    assert.is(sock.status, 0, sock.stderr.toString());
    const dev = spawnSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
    assert.is(dev.status, 0, dev.stderr.toString());
    chownSync(join(dir, 'b.txt'), 1234, 5678);
    chmodSync(join(dir, 'run.sh'), 0o4755);
    const r = await ctx([dir]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, 'tsd-ctx: warning: skipping character device null\ntsd-ctx: warning: skipping socket sock\n');
    const es = await entries(r.out);
    assert.not.ok(es.some((e) => e.name === 'sock' || e.name === 'null'));
    const b = es.find((e) => e.name === 'b.txt')!;
    assert.equal([b.uid, b.gid], [1234, 5678]);
    // the hard link to b.txt carries the same owner
    assert.equal([es.find((e) => e.name === 'hard')!.uid, es.find((e) => e.name === 'hard')!.gid], [1234, 5678]);
    assert.is(es.find((e) => e.name === 'run.sh')!.mode, 0o4755);
  } finally {
    removeDir(dir);
  }
});

test('.dockerignore: exclusions, re-inclusion below an excluded directory, Dockerfile and .dockerignore always sent', async () => {
  const dir = makeTree();
  try {
    mkdirSync(join(dir, 'node_modules/m'), { recursive: true });
    writeFileSync(join(dir, 'node_modules/m/i.js'), '');
    writeFileSync(join(dir, '.dockerignore'), '# ignore nearly everything\n*\n!a/deep/*.txt\n');
    const r = await ctx([dir]);
    assert.is(r.code, 0, r.stderr);
    assert.equal(await names(r), ['.dockerignore', 'Dockerfile', 'a/', 'a/deep/', 'a/deep/y.txt']);
  } finally {
    removeDir(dir);
  }
});

test('Dockerfile.dockerignore next to the named Dockerfile wins over .dockerignore', async () => {
  const dir = makeTree();
  try {
    writeFileSync(join(dir, '.dockerignore'), 'a\n');
    writeFileSync(join(dir, 'Dockerfile.prod'), 'FROM scratch\n');
    writeFileSync(join(dir, 'Dockerfile.prod.dockerignore'), 'b.txt\nhard\nrun.sh\nlink\nDockerfile\n');
    const r = await ctx([dir, '-f', join(dir, 'Dockerfile.prod')]);
    assert.is(r.code, 0, r.stderr);
    const es = await entries(r.out);
    assert.equal(es.map((e) => e.name), ['.dockerignore', 'Dockerfile.prod', 'Dockerfile.prod.dockerignore', 'a/', 'a/deep/', 'a/deep/y.txt', 'a/x.txt']);
    assert.is(es.find((e) => e.name === 'Dockerfile.prod')!.pax['TSD.role'], 'dockerfile');
  } finally {
    removeDir(dir);
  }
});

test('-f - reads the Dockerfile from stdin; it replaces the context\'s own', async () => {
  const dir = makeTree();
  try {
    const r = await ctx([dir, '-f', '-'], { input: 'FROM busybox\nRUN true\n' });
    assert.is(r.code, 0);
    assert.is(r.stderr, "tsd-ctx: warning: the context's own Dockerfile is replaced by the Dockerfile given with -f\n");
    const es = await entries(r.out);
    const df = es.filter((e) => e.name === 'Dockerfile');
    assert.is(df.length, 1);
    assert.is(df[0]!.body.toString(), 'FROM busybox\nRUN true\n');
    assert.is(df[0]!.pax['TSD.role'], 'dockerfile');
  } finally {
    removeDir(dir);
  }
});

test('-f path from outside the context', async () => {
  const dir = makeTree();
  const other = tempDir('tsd-ctx-df-');
  try {
    writeFileSync(join(other, 'build.Dockerfile'), 'FROM alpine\n');
    writeFileSync(join(other, 'build.Dockerfile.dockerignore'), 'a\n');
    const r = await ctx([dir, '-f', join(other, 'build.Dockerfile')]);
    assert.is(r.code, 0, r.stderr);
    const es = await entries(r.out);
    assert.is(es.find((e) => e.name === 'Dockerfile')!.body.toString(), 'FROM alpine\n');
    assert.not.ok(es.some((e) => e.name.startsWith('a/')));
  } finally {
    removeDir(dir);
    removeDir(other);
  }
});

test('a file larger than the read-ahead limit is streamed whole with its digest', async () => {
  const dir = makeTree();
  try {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    writeFileSync(join(dir, 'big.bin'), big);
    const es = await entries((await ctx([dir])).out);
    const e = es.find((x) => x.name === 'big.bin')!;
    assert.is(e.body.length, big.length);
    assert.is(e.pax['TSD.sha256'], sha(big));
  } finally {
    removeDir(dir);
  }
});

test('an unreadable file is a clear one-line error naming it', async () => {
  const dir = makeTree();
  try {
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'secret.key'), 'k');
    chmodSync(join(dir, 'secret.key'), 0o000);
    const r = await ctx([dir], { asNobody: true });
    assert.is(r.stderr, 'tsd-ctx: read secret.key: permission denied\n');
    assert.is(r.code, 1);
  } finally {
    removeDir(dir);
  }
});

test('an unreadable file deep in a big tree is the same one-line error with and without the worker', async () => {
  const dir = makeBigTree(1500);
  try {
    chmodSync(dir, 0o755);
    for (let i = 0; i < 5; i++) chmodSync(join(dir, `d${i}`), 0o755);
    writeFileSync(join(dir, 'd4', 'zz-secret'), 'k');
    chmodSync(join(dir, 'd4', 'zz-secret'), 0o000);
    for (const threads of ['0', '1']) {
      const r = await ctx([dir], { asNobody: true, env: { TSD_CTX_THREADS: threads } });
      assert.is(r.stderr, 'tsd-ctx: read d4/zz-secret: permission denied\n', `threads=${threads}`);
      assert.is(r.code, 1);
      // everything before the unreadable file (the Dockerfile, 5 directories, 1,500 files) was
      // sent whole, and nothing after: the tar reads back up to there
      assert.is(r.out.length % 512, 0);
      const names = (await entries(Buffer.concat([r.out, Buffer.alloc(1024)]))).map((e) => e.name);
      assert.is(names.length, 1506, `threads=${threads}`);
      assert.is(names[names.length - 1], 'd4/f999');
    }
  } finally {
    removeDir(dir);
  }
});

test('an unreadable directory is an error unless .dockerignore excludes it (it is then not entered)', async () => {
  const dir = makeTree();
  try {
    chmodSync(dir, 0o755);
    for (const d of ['a', 'a/deep']) chmodSync(join(dir, d), 0o755);
    for (const f of ['Dockerfile', 'b.txt', 'a/x.txt', 'a/deep/y.txt', 'run.sh']) chmodSync(join(dir, f), 0o644);
    mkdirSync(join(dir, 'private'));
    writeFileSync(join(dir, 'private/k'), 'k');
    chmodSync(join(dir, 'private'), 0o000);
    const r = await ctx([dir], { asNobody: true });
    assert.is(r.stderr, 'tsd-ctx: read directory private: permission denied\n');
    assert.is(r.code, 1);
    writeFileSync(join(dir, '.dockerignore'), 'private\n');
    const ok = await ctx([dir], { asNobody: true });
    assert.is(ok.code, 0, ok.stderr);
    assert.not.ok((await names(ok)).some((n) => n.startsWith('private')));
  } finally {
    chmodSync(join(dir, 'private'), 0o755);
    removeDir(dir);
  }
});

const failures: [string, string[], string | undefined, number, string][] = [
  ['a missing context directory', ['/nonexistent/ctx'], undefined, 2, 'tsd-ctx: context directory /nonexistent/ctx: no such file or directory\n'],
  ['a missing Dockerfile', ['DIR', '-f', '/nonexistent/Dockerfile'], undefined, 2, 'tsd-ctx: Dockerfile /nonexistent/Dockerfile: no such file or directory\n'],
  ['a bad --mtime', ['DIR', '--mtime', 'soon'], undefined, 1, 'tsd-ctx: --mtime: "soon" is neither seconds since the epoch nor a date\n'],
  ['a lone ! in .dockerignore', ['DIR'], '!\n', 1, 'tsd-ctx: DIR/.dockerignore: illegal exclusion pattern: "!"\n'],
];
for (const [what, args, ignore, code, stderr] of failures) {
  test(`error: ${what}`, async () => {
    const dir = makeTree();
    try {
      if (ignore !== undefined) writeFileSync(join(dir, '.dockerignore'), ignore);
      const r = await ctx(args.map((a) => (a === 'DIR' ? dir : a)));
      assert.is(r.stderr, stderr.replace('DIR', dir));
      assert.is(r.code, code);
      assert.is(r.out.length, 0);
    } finally {
      removeDir(dir);
    }
  });
}

test('without a Dockerfile, a lower-case dockerfile is taken (as docker build does)', async () => {
  const dir = tempDir('tsd-ctx-lower-');
  try {
    writeFileSync(join(dir, 'dockerfile'), 'FROM scratch\n');
    const es = await entries((await ctx([dir])).out);
    assert.equal(es.map((e) => [e.name, e.pax['TSD.role']]), [['dockerfile', 'dockerfile']]);
  } finally {
    removeDir(dir);
  }
});

test('a context that is a file is refused', async () => {
  const dir = makeTree();
  try {
    const r = await ctx([join(dir, 'b.txt')]);
    assert.is(r.code, 1);
    assert.is(r.stderr, `tsd-ctx: context ${join(dir, 'b.txt')}: not a directory\n`);
  } finally {
    removeDir(dir);
  }
});

test.run();
