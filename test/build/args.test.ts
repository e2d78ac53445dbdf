// tsd-build's command line, decoded by hand (src/build/args.ts): every form of every option, and
// the one-line errors a user sees.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { decodeArgs, decodeOutput, type BuildArgs } from '../../src/build/args.js';

const args = (argv: string[], env: Record<string, string> = {}): BuildArgs => {
  const d = decodeArgs(argv, env, (p) => `/abs/${p}`);
  if (E.isLeft(d)) throw new Error(d.left.message);
  if (d.right._tag !== 'build') throw new Error(d.right._tag);
  return d.right.args;
};
const error = (argv: string[]): string => {
  const d = decodeArgs(argv, {});
  assert.ok(E.isLeft(d), `expected an error for ${argv.join(' ')}`);
  return E.isLeft(d) ? d.left.message : '';
};

test('defaults', () => {
  const a = args([]);
  assert.equal(a.tags, []);
  assert.is(a.noCache, false);
  assert.is(a.pull, 'missing');
  assert.is(a.progress, 'auto');
  assert.is(a.compression, undefined);
  assert.is(a.output, undefined);
  assert.is(a.print, false);
  assert.is(a.root, undefined);
});

test('values as --opt V, --opt=V, -tV, -t V; repeatable ones collect, the others keep the last', () => {
  const a = args(['-t', 'a', '--tag=b', '-tc', '--tag', 'd', '--target', 's1', '--target=s2', '-f', 'x/Dockerfile', '--no-cache', '-q', '--compression=zstd', '--pull', 'never']);
  assert.equal(a.tags, ['a', 'b', 'c', 'd']);
  assert.is(a.target, 's2');
  assert.is(a.file, 'x/Dockerfile');
  assert.is(a.noCache, true);
  assert.is(a.progress, 'quiet');
  assert.is(a.compression, 'zstd');
  assert.is(a.pull, 'never');
});

test('--build-arg K=V, K alone from the environment (absent: left out), = in values', () => {
  const a = args(['--build-arg', 'A=1', '--build-arg=B=x=y', '--build-arg', 'HOME', '--build-arg', 'NOPE'], { HOME: '/root' });
  assert.equal(a.buildArgs, { A: '1', B: 'x=y', HOME: '/root' });
  assert.match(error(['--build-arg', 'a b']), /--build-arg "a b": expected KEY=VALUE/);
});

test('--secret id=…,src=… (or source=) made absolute; --root and TSD_ROOT', () => {
  const a = args(['--secret', 'id=tok,src=t.txt', '--secret', 'source=/k,id=key', '--root', '/r']);
  assert.equal([...a.secrets], [['tok', '/abs/t.txt'], ['key', '/abs//k']]);
  assert.is(a.root, '/r');
  assert.is(args([], { TSD_ROOT: '/env' }).root, '/env');
  assert.is(args(['--root=/flag'], { TSD_ROOT: '/env' }).root, '/flag');
  assert.match(error(['--secret', 'tok']), /--secret "tok": expected id=ID,src=FILE/);
});

test('--output forms', () => {
  const o = (t: string) => {
    const d = decodeOutput(t);
    return E.isLeft(d) ? d.left.message : d.right;
  };
  assert.equal(o('oci-archive:-'), { type: 'oci-archive', dest: '-' });
  assert.equal(o('type=oci-archive,dest=/x.tar'), { type: 'oci-archive', dest: '/x.tar' });
  assert.equal(o('docker-archive:img.tar'), { type: 'docker-archive', dest: 'img.tar' });
  assert.equal(o('type=tar,dest=-'), { type: 'tar', dest: '-' });
  assert.equal(o('-'), { type: 'tar', dest: '-' });
  assert.equal(o('type=local,dest=out'), { type: 'local', dest: 'out' });
  assert.match(String(o('type=local,dest=-')), /needs a directory/);
  assert.match(String(o('type=image')), /expected oci-archive/);
  assert.match(String(o('type=tar')), /no dest/);
  assert.match(String(o('type=tar,dest=x,push=true')), /unknown field "push"/);
  assert.equal(args(['-o', 'oci-archive:-']).output, { type: 'oci-archive', dest: '-' });
});

test('help and version win; errors name the argument', () => {
  assert.equal(decodeArgs(['-t', 'x', '--help'], {}), E.right({ _tag: 'help' }));
  assert.equal(decodeArgs(['-h'], {}), E.right({ _tag: 'help' }));
  assert.equal(decodeArgs(['--version'], {}), E.right({ _tag: 'version' }));
  assert.match(error(['.']), /unexpected argument "\."/);
  assert.match(error(['--bogus']), /unknown option --bogus/);
  assert.match(error(['-t']), /-t: needs a value/);
  assert.match(error(['--progress=loud']), /--progress=loud: expected auto, plain, tty, json or quiet/);
  assert.match(error(['--pull=always']), /--pull=always: expected missing or never/);
  assert.match(error(['--compression', 'lz4']), /--compression=lz4: expected gzip, zstd or none/);
  assert.match(error(['--no-cache=yes']), /--no-cache takes no value/);
  assert.match(error(['--', 'x']), /unexpected argument "x"/);
});

test.run();
