// tsd-store import: a root file system tar becomes a one-layer image; --change table tests.
import { gzipSync } from 'node:zlib';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { applyChange, applyChanges } from '../../src/store/change.js';
import { layerTar, removeDir, tempDir, tsd } from '../support/tsd.js';
import { busyboxTar } from './busybox.js';

const changes: [string, object][] = [
  ['CMD ["sh"]', { Cmd: ['sh'] }],
  ['CMD echo hi', { Cmd: ['/bin/sh', '-c', 'echo hi'] }],
  ['cmd ["a", "b c"]', { Cmd: ['a', 'b c'] }],
  ['ENTRYPOINT ["/bin/busybox"]', { Entrypoint: ['/bin/busybox'] }],
  ['ENV A=1 B="two words"', { Env: ['A=1', 'B=two words'] }],
  ['ENV PATH /usr/bin:/bin', { Env: ['PATH=/usr/bin:/bin'] }],
  ['LABEL org.x=y z="1 2"', { Labels: { 'org.x': 'y', z: '1 2' } }],
  ['EXPOSE 80 53/udp', { ExposedPorts: { '80/tcp': {}, '53/udp': {} } }],
  ['VOLUME ["/data", "/logs"]', { Volumes: { '/data': {}, '/logs': {} } }],
  ['VOLUME /data', { Volumes: { '/data': {} } }],
  ['USER 1000:1000', { User: '1000:1000' }],
  ['WORKDIR /srv', { WorkingDir: '/srv' }],
  ['STOPSIGNAL SIGTERM', { StopSignal: 'SIGTERM' }],
  ['ONBUILD RUN true', { OnBuild: ['RUN true'] }],
];
for (const [line, want] of changes) {
  test(`--change ${line}`, () => {
    const r = applyChange({}, line);
    assert.ok(E.isRight(r), E.isLeft(r) ? r.left.message : '');
    if (E.isRight(r)) assert.equal(r.right, want);
  });
}

const badChanges: [string, RegExp][] = [
  ['RUN echo', /RUN cannot be changed by import/],
  ['FROM scratch', /FROM cannot be changed/],
  ['CMD', /CMD needs an argument/],
  ['EXPOSE eighty', /bad port "eighty"/],
  ['ENV A=1 junk', /expected KEY=VALUE pairs/],
  ['', /expected an instruction/],
];
for (const [line, message] of badChanges) {
  test(`--change ${JSON.stringify(line)} is refused`, () => {
    const r = applyChange({}, line);
    assert.ok(E.isLeft(r));
    if (E.isLeft(r)) {
      assert.match(r.left.message, message);
      assert.is(r.left.exitCode, 1);
    }
  });
}

test('ENV replaces a variable set before; WORKDIR is relative to the last one', () => {
  const r = applyChanges({}, ['ENV A=1 B=2', 'ENV A=3', 'WORKDIR /srv', 'WORKDIR app']);
  assert.equal(E.isRight(r) && r.right, { Env: ['A=3', 'B=2'], WorkingDir: '/srv/app' });
});

const work = tempDir('tsd-import-');
const root = join(work, 'store');
const blobs = () => (existsSync(join(root, 'blobs/sha256')) ? readdirSync(join(root, 'blobs/sha256')).length : 0);

test('import busybox (plain and gzip) with --change; prints the image JSON; inspect shows the config', async () => {
  const tar = await busyboxTar();
  const r = await tsd('store', ['import', '--change', 'CMD ["sh"]', '-c', 'ENV GREETING=hi', '-m', 'from the host busybox', 'localhost/bb:1'], { root, input: tar });
  assert.is(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.equal([m.v, m.type, m.ref, m.mediaType], [1, 'image', 'localhost/bb:1', 'application/vnd.oci.image.manifest.v1+json']);
  assert.match(m.digest, /^sha256:[a-f0-9]{64}$/);
  const i = JSON.parse((await tsd('store', ['inspect', 'localhost/bb:1'], { root })).stdout);
  assert.equal(i.config.config.Cmd, ['sh']);
  assert.equal(i.config.config.Env, ['GREETING=hi']);
  assert.is(i.config.history[0].comment, 'from the host busybox');
  assert.is(i.manifest.layers.length, 1);
  assert.is(i.id, m.config);
  const gz = await tsd('store', ['import', 'localhost/bb:gz'], { root, input: gzipSync(tar) });
  assert.is(gz.code, 0, gz.stderr);
  const j = JSON.parse((await tsd('store', ['inspect', 'localhost/bb:gz'], { root })).stdout);
  assert.is(j.config.rootfs.diff_ids[0], i.config.rootfs.diff_ids[0], 'same diff ID once gunzipped');
});

test('import refuses bad input with one line and names nothing', async () => {
  const before = blobs();
  const cases: [Buffer, string[], RegExp, number][] = [
    [Buffer.from('not a tar at all, just text '.repeat(40)), ['localhost/bad:1'], /^tsd-store: import: not a tar: /, 1],
    [Buffer.alloc(0), ['localhost/bad:1'], /^tsd-store: import: empty input: expected a root file system tar on stdin\n$/, 1],
    [await layerTar([{ name: '../../etc/evil', content: 'x' }]), ['localhost/bad:1'], /^tsd-store: import: entry "\.\.\/\.\.\/etc\/evil": path escapes the root\n$/, 1],
    [await busyboxTar(), ['Bad/Name'], /^tsd-store: invalid reference "Bad\/Name": repository name must be lowercase\n$/, 1],
    [await busyboxTar(), ['-c', 'RUN true', 'localhost/bad:1'], /^tsd-store: --change "RUN true": RUN cannot be changed by import/, 1],
  ];
  for (const [input, args, message, code] of cases) {
    const r = await tsd('store', ['import', ...args], { root, input });
    assert.is(r.code, code, r.stderr);
    assert.match(r.stderr, message);
    assert.is(r.stderr.split('\n').length, 2);
    assert.is(r.stdout, '');
  }
  assert.is(blobs(), before, 'no blob kept');
  assert.equal(readdirSync(join(root, 'ingest')), []);
  const ls = await tsd('store', ['ls', '--format', '{{.Repository}}:{{.Tag}}'], { root });
  assert.not.match(ls.stdout, 'bad');
});

test('cleanup', () => removeDir(work));

test.run();
