// The corpus compared with the peer: each context is built by `tsd-ctx DIR | tsd-build` and by
// `podman build --network none DIR`, and the two images must show the same runtime config and
// the same final file tree (paths, types, modes, owners, contents, link targets). Two test files
// (podman-*.test.ts) run half each, to stay well inside the time a test file may take.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { REPO, removeDir, tempStore, type FileSpec } from '../support/tsd.js';
import { configDiff, treeDiff } from './compare.js';
import { givePodman, hasPodman, podmanBuild, writeContext } from './peer.js';
import { BUSYBOX, imageTree, makeBusybox } from './support.js';

export interface Case {
  readonly name: string;
  readonly files: readonly FileSpec[];
  readonly dockerfile: string;
  readonly args?: readonly string[];
  /** config fields the builders legitimately fill differently (documented in docs/build.md) */
  readonly skipConfig?: readonly string[];
}

const BASE = `FROM ${BUSYBOX}`;

export const cases: Case[] = [
  {
    name: 'env, workdir, copy, run, user, cmd',
    files: [{ name: 'hello.txt', content: 'hi there\n' }],
    dockerfile: `${BASE}\nENV GREETING=hello\nWORKDIR /app\nCOPY hello.txt .\nRUN echo "$GREETING world" > /app/out.txt\nUSER app\nCMD ["cat", "/app/out.txt"]\n`,
  },
  {
    name: 'directories copy their contents; destination slash rules',
    files: [
      { name: 'src/a.txt', content: 'a\n' },
      { name: 'src/sub/b.txt', content: 'b\n', mode: 0o600 },
      { name: 'src/run.sh', content: '#!/bin/sh\necho run\n', mode: 0o755 },
      { name: 'one.txt', content: 'one\n' },
    ],
    dockerfile: `${BASE}\nCOPY src /dest\nCOPY one.txt /renamed.txt\nCOPY one.txt /into/\nCOPY src/ /dest2/\nCOPY one.txt src/a.txt /many/\n`,
  },
  {
    name: 'wildcards',
    files: [
      { name: 'a.txt', content: 'a' },
      { name: 'b.txt', content: 'b' },
      { name: 'c.md', content: 'c' },
      { name: 'lib/x.js', content: 'x' },
      { name: 'lib/y.js', content: 'y' },
      { name: 'lib/z.css', content: 'z' },
    ],
    dockerfile: `${BASE}\nCOPY *.txt /w/\nCOPY lib/*.js /js/\nCOPY [a-b].txt /cls/\nCOPY ?.md /q/\n`,
  },
  {
    name: 'chown by name and id, chmod',
    files: [
      { name: 'f1', content: '1' },
      { name: 'f2', content: '2' },
      { name: 'f3', content: '3' },
      { name: 'd/x', content: 'x' },
    ],
    dockerfile: `${BASE}\nCOPY --chown=app:staff f1 /o/f1\nCOPY --chown=1000:50 f2 /o/f2\nCOPY --chmod=600 f3 /o/f3\nCOPY --chown=app:app --chmod=750 d /o/d\n`,
  },
  {
    name: 'ENTRYPOINT resets an inherited CMD; shell forms',
    files: [],
    dockerfile: `${BASE}\nENTRYPOINT ["/bin/echo"]\n`,
  },
  {
    name: 'CMD before ENTRYPOINT in the same stage is kept; shell form CMD',
    files: [],
    dockerfile: `${BASE}\nCMD echo hello $HOME\nENTRYPOINT ["/bin/sh", "-c"]\n`,
  },
  {
    name: 'multi-stage: COPY --from a builder stage',
    files: [{ name: 'main.txt', content: 'source\n' }],
    dockerfile: `${BASE} AS builder\nCOPY main.txt /src/\nRUN mkdir -p /out && tr a-z A-Z < /src/main.txt > /out/app.txt && chmod 640 /out/app.txt\n\n${BASE} AS unused\nRUN exit 3\n\n${BASE}\nCOPY --from=builder /out/app.txt /app/\nCOPY --from=0 /src /src-copy\n`,
  },
  {
    name: 'RUN deletes, replaces a directory, makes links',
    files: [],
    dockerfile: `${BASE}\nRUN mkdir -p /data/keep /data/gone && echo k > /data/keep/k && echo g > /data/gone/g && echo x > /data/x\nRUN rm -rf /data/gone /data/x /etc/group && rm -rf /data/keep && mkdir /data/keep && echo new > /data/keep/n\nRUN ln -s /data/keep/n /link && echo h > /h1 && ln /h1 /h2 && chmod 4755 /h1 && chown 1000:50 /h2\n`,
  },
  {
    name: 'labels, expose, volume, stopsignal, healthcheck, onbuild',
    files: [],
    dockerfile: `${BASE}\nLABEL a=1 "b c"="d e"\nLABEL a=2\nEXPOSE 80 443/udp 8000\nVOLUME /data ["/logs"]\nSTOPSIGNAL SIGINT\nHEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD wget -q localhost || exit 1\nONBUILD RUN echo triggered\n`,
  },
  {
    name: 'ARG defaults and --build-arg, ENV from ARG, RUN sees ARG',
    files: [],
    dockerfile: `${BASE}\nARG NAME=default\nARG OTHER\nENV FROM_ARG=$NAME\nRUN echo "$NAME/$OTHER" > /args.txt\n`,
    args: ['--build-arg', 'OTHER=given'],
  },
  {
    name: 'USER by id, WORKDIR made as that user, files made as that user',
    files: [],
    dockerfile: `${BASE}\nUSER 1000:1000\nWORKDIR /a/c\nRUN echo me > /tmp/mine && id -u > uid\n`,
  },
  {
    name: 'SHELL changes how RUN runs',
    files: [],
    dockerfile: `${BASE}\nSHELL ["/bin/sh", "-ec"]\nRUN echo "shell: $0" > /shell.txt\n`,
  },
  {
    name: 'symlinks in the context are copied as links',
    files: [
      { name: 'real.txt', content: 'real' },
      { name: 'link.txt', type: 'symlink', linkname: 'real.txt' },
      { name: 'dir/inner', content: 'i' },
      { name: 'dir/up', type: 'symlink', linkname: '../real.txt' },
    ],
    dockerfile: `${BASE}\nCOPY link.txt /l/\nCOPY dir /d\n`,
  },
  {
    name: 'ADD unpacks a local tar.gz; a plain file is copied',
    files: [{ name: 'plain.txt', content: 'plain' }],
    dockerfile: `${BASE}\nADD archive.tar.gz /unpacked/\nADD plain.txt /p/\n`,
  },
];

const ready = hasPodman();
let root = '';

test.before(async () => {
  if (!ready) return;
  const p = await tempStore();
  root = p.root;
  await makeBusybox(p);
  givePodman(p, BUSYBOX, BUSYBOX);
});

test.after(() => {
  if (root) removeDir(root);
});

export const compareWithPodman = (slice: readonly Case[]): void => {
for (const c of slice) {
  test(`same image as podman build: ${c.name}`, async () => {
    if (!ready) return;
    const dir = writeContext([...c.files, { name: 'Dockerfile', content: c.dockerfile }]);
    if (c.name.startsWith('ADD unpacks')) {
      spawnSync('sh', ['-c', 'mkdir -p t/sub && echo one > t/one && echo two > t/sub/two && chmod 700 t/sub && tar --owner=7 --group=8 -czf archive.tar.gz -C t . && rm -rf t'], { cwd: dir });
    }
    const tag = `localhost/corpus-${cases.indexOf(c)}:latest`;
    const ours = spawnSync('bash', ['-o', 'pipefail', '-c', `${join(REPO, 'bin/tsd-ctx')} "$0" | ${join(REPO, 'bin/tsd-build')} -q -t ${tag} ${(c.args ?? []).join(' ')}`, dir], {
      encoding: 'utf8',
      env: { ...process.env, TSD_ROOT: root },
    });
    assert.is(ours.status, 0, ours.stderr);
    const line = JSON.parse(ours.stdout.trim().split('\n')[0]!);
    assert.is(line.type, 'image');
    assert.is(line.ref, tag);
    const theirs = podmanBuild(dir, c.args ?? []);
    assert.is(theirs.code, 0, theirs.stderr);
    const { paths } = await import('../../src/store/layout.js');
    const a = await imageTree(paths(root), tag);
    const b = await imageTree(theirs.p, theirs.ref);
    const diffs = [...configDiff(a.config, theirs.config ?? b.config, c.skipConfig), ...treeDiff(a.tree, b.tree)];
    assert.equal(diffs, [], diffs.join('\n'));
    removeDir(dir);
    removeDir(theirs.p.root);
  });
  }
  test.run();
};
