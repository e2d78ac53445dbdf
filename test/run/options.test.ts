// Decoding tsd-run's Docker-style argv: flags, mounts, ports, sizes, durations, restart policies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { parseArgv } from '../../src/run/argv.js';
import { decodeRunOptions, parseDuration, parseRestart, resolveEnv } from '../../src/run/options.js';
import { parseMountFlag, parseTmpfsFlag, parseVolumeFlag, ociMount } from '../../src/run/mounts.js';
import { describeMapping, formatMapping, parsePublish } from '../../src/run/ports.js';
import { healthOf } from '../../src/run/health.js';
import { classifyRuntimeError } from '../../src/run/runtime.js';
import { formatTime, parseIndex, parseSince, tailOffset, timeAt } from '../../src/run/logs.js';

const right = <A>(e: E.Either<{ message: string }, A>): A => {
  if (E.isLeft(e)) throw new Error(e.left.message);
  return e.right;
};
const left = (e: E.Either<{ message: string }, unknown>): string => (E.isLeft(e) ? e.left.message : 'no error');

test('options stop at the image; the command keeps its own flags; short flags combine', () => {
  const o = right(decodeRunOptions(['-it', '--rm', '-e', 'A=1', '-eB=2', '--env=C=3', '-w/tmp', '-p8080:80', 'img', 'sh', '-c', 'echo -e x', '--rm']));
  assert.is(o.interactive && o.tty && o.rm, true);
  assert.equal(o.env, ['A=1', 'B=2', 'C=3']);
  assert.is(o.workdir, '/tmp');
  assert.is(o.image, 'img');
  assert.equal(o.cmd, ['sh', '-c', 'echo -e x', '--rm']);
  assert.equal(o.publish, [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
  assert.is(right(decodeRunOptions([])).image, undefined);
  assert.equal(right(decodeRunOptions(['--entrypoint', '', 'img'])).entrypoint, []);
  assert.equal(right(decodeRunOptions(['--', 'img', '-x'])).cmd, ['-x']);
});

test('bad flags are one clear line naming the flag', () => {
  assert.match(left(decodeRunOptions(['--bogus', 'img'])), /unknown flag: --bogus/);
  assert.match(left(decodeRunOptions(['-Z', 'img'])), /unknown shorthand flag: 'Z'/);
  assert.match(left(decodeRunOptions(['img', '-e'].slice(1))), /flag needs an argument/);
  assert.match(left(decodeRunOptions(['--memory', '12x', 'img'])), /--memory/);
  assert.match(left(decodeRunOptions(['--cpus', 'two', 'img'])), /--cpus/);
  assert.match(left(decodeRunOptions(['--restart', 'sometimes', 'img'])), /invalid restart policy/);
  assert.match(left(decodeRunOptions(['--network', 'bridge0', 'img'])), /--network/);
  assert.match(left(decodeRunOptions(['--network', 'host', '-p', '1:2', 'img'])), /only be published with --network private/);
  assert.match(left(decodeRunOptions(['--security-opt', 'magic', 'img'])), /unknown option "magic"/);
  assert.match(left(decodeRunOptions(['--name', 'bad name', 'img'])), /invalid container name/);
  assert.match(left(decodeRunOptions(['-v', '/a:/b', '-v', '/c:/b', 'img'])), /duplicate mount point: \/b/);
  assert.match(left(decodeRunOptions(['--rm=maybe', 'img'])), /expected true or false/);
});

test('-e KEY takes our own value or is dropped; env files skip comments and blank lines; -e wins', () => {
  assert.equal(resolveEnv(['A=1', 'HOMEISH', 'MISSING', 'C='], ['# c', '', ' B=2 ', 'A=0'], { HOMEISH: '/h' }), ['B=2', 'A=0', 'A=1', 'HOMEISH=/h', 'C=']);
});

test('sizes, limits, durations, restart policies', () => {
  const o = right(decodeRunOptions(['-m', '64m', '--cpus', '0.5', '--pids-limit', '100', '--memory-swap', '-1', 'img']));
  assert.equal(o.limits, { memory: 64 << 20, memorySwap: -1, cpus: 0.5, pids: 100 });
  assert.equal(right(parseDuration('x', '1m30s')), 90_000);
  assert.equal(right(parseDuration('x', '250ms')), 250);
  assert.match(left(parseDuration('x', '10')), /invalid duration/);
  assert.equal(right(parseRestart('on-failure:3')), { name: 'on-failure', max: 3 });
  assert.equal(right(parseRestart('on-failure')), { name: 'on-failure', max: 0 });
  assert.equal(right(parseRestart('unless-stopped')), { name: 'unless-stopped' });
  assert.match(left(parseRestart('always:3')), /invalid/);
  assert.equal(right(decodeRunOptions(['--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=/p.json', 'img'])).seccomp, '/p.json');
});

test('-v, --mount, --tmpfs', () => {
  assert.equal(right(parseVolumeFlag('/host/dir:/data:ro')), { kind: 'bind', source: '/host/dir', target: '/data', readonly: true, createSource: true });
  assert.equal(right(parseVolumeFlag('cache:/var/cache')), { kind: 'volume', name: 'cache', target: '/var/cache', readonly: false });
  assert.equal(right(parseVolumeFlag('/anon')), { kind: 'volume', target: '/anon', readonly: false });
  assert.match(left(parseVolumeFlag('rel/dir:/x')), /not a valid volume name/);
  assert.match(left(parseVolumeFlag('/a:relative')), /absolute path/);
  assert.match(left(parseVolumeFlag('/a:/')), /other than \//);
  assert.match(left(parseVolumeFlag('/a:/b:rx')), /invalid mode "rx"/);
  assert.equal(right(parseMountFlag('type=bind,src=/h,dst=/c,readonly')), { kind: 'bind', source: '/h', target: '/c', readonly: true, createSource: false });
  assert.equal(right(parseMountFlag('type=volume,source=v1,target=/v')), { kind: 'volume', name: 'v1', target: '/v', readonly: false });
  assert.equal(right(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700')), { kind: 'tmpfs', target: '/t', readonly: false, size: 1 << 20, mode: 0o700 });
  assert.match(left(parseMountFlag('type=nfs,target=/x')), /unknown type "nfs"/);
  assert.match(left(parseMountFlag('type=bind,source=/x')), /target is required/);
  assert.equal(right(parseTmpfsFlag('/run:size=64k')), { kind: 'tmpfs', target: '/run', readonly: false, size: 65536 });
  assert.equal(ociMount(right(parseVolumeFlag('/h:/c:ro'))), { destination: '/c', type: 'bind', source: '/h', options: ['rbind', 'rprivate', 'ro'] });
  assert.equal(ociMount(right(parseTmpfsFlag('/run'))), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777'] });
});

test('-p [IP:]HOST:CONTAINER[/tcp|/udp], IPv6 in brackets', () => {
  assert.equal(right(parsePublish('127.0.0.1:8080:80')), { hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  assert.equal(right(parsePublish('8080:80/tcp')), { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  // no host port: the kernel picks one (0 here), as Docker
  assert.equal(right(parsePublish('80')), { hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, protocol: 'tcp' });
  assert.equal(right(parsePublish('127.0.0.1::80/udp')), { hostIp: '127.0.0.1', hostPort: 0, containerPort: 80, protocol: 'udp' });
  assert.match(left(parsePublish('99999:80')), /invalid host port/);
  assert.equal(right(parsePublish('53:53/udp')), { hostIp: '0.0.0.0', hostPort: 53, containerPort: 53, protocol: 'udp' });
  assert.equal(right(parsePublish('[::1]:8080:80')), { hostIp: '::1', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
  assert.equal(right(parsePublish('[::]:5353:53/UDP')), { hostIp: '::', hostPort: 5353, containerPort: 53, protocol: 'udp' });
  assert.match(left(parsePublish('53:53/sctp')), /protocol sctp is not supported/);
  assert.match(left(parsePublish('[::1:8080:80')), /expected \[IPv6\]:HOST:CONTAINER/);
  assert.match(left(parsePublish('[1.2.3.4]:8080:80')), /invalid host IP "1.2.3.4"/);
  assert.match(left(parsePublish('::1:8080:80')), /an IPv6 address goes in brackets/);
  assert.is(formatMapping(right(parsePublish('[::1]:8080:80/udp'))), '::1:8080:80/udp');
  assert.is(describeMapping(right(parsePublish('[::1]:8080:80'))), '[::1]:8080->80/tcp');
  assert.is(describeMapping(right(parsePublish('127.0.0.1:53:53/udp'))), '127.0.0.1:53->53/udp');
  assert.match(left(parsePublish('99999:80')), /invalid host port/);
  assert.match(left(parsePublish('1.2.3:80:80')), /invalid host IP/);
});

test('HEALTHCHECK merging', () => {
  assert.equal(healthOf({ Test: ['CMD-SHELL', 'curl -f x'], Interval: 5e9, Retries: 5 }, { disabled: false }), { argv: ['/bin/sh', '-c', 'curl -f x'], intervalMs: 5000, timeoutMs: 30000, retries: 5, startPeriodMs: 0 });
  assert.equal(healthOf({ Test: ['CMD', 'check', '--fast'] }, { disabled: false, interval: 100 })?.argv, ['check', '--fast']);
  assert.is(healthOf({ Test: ['NONE'] }, { disabled: false }), undefined);
  assert.is(healthOf({ Test: ['CMD', 'x'] }, { disabled: true }), undefined);
  assert.is(healthOf(undefined, { disabled: false }), undefined);
  assert.equal(healthOf(undefined, { disabled: false, cmd: 'true' })?.argv, ['/bin/sh', '-c', 'true']);
});

test('runtime errors become docker\'s exit codes', () => {
  assert.is(classifyRuntimeError('runc run failed: unable to start container process: exec: "nope": executable file not found in $PATH').exitCode as number, 127);
  assert.is(classifyRuntimeError('unable to start container process: exec: "/etc": is a directory').exitCode as number, 126);
  assert.is(classifyRuntimeError('unable to start container process: exec: "/x": permission denied').exitCode as number, 126);
  assert.is(classifyRuntimeError('error setting rlimit type 7: operation not permitted').exitCode as number, 125);
});

test('logs --tail offsets', () => {
  const b = Buffer.from('a\nb\nc\n');
  assert.is(b.subarray(tailOffset(b, 2)).toString(), 'b\nc\n');
  assert.is(b.subarray(tailOffset(b, 9)).toString(), 'a\nb\nc\n');
  assert.is(b.subarray(tailOffset(b, 0)).toString(), '');
  const partial = Buffer.from('a\nb\nc');
  assert.is(partial.subarray(tailOffset(partial, 1)).toString(), 'c');
  assert.equal(right(parseArgv(['ps', '-a', 'x'], [{ long: 'all', short: 'a' }], false)).positionals, ['ps', 'x']);
});

test('log time index: a line is dated by the first noted size beyond its start', () => {
  const idx = parseIndex('4 1000000000000000001\n8 1000000000500000000\nbroken\n13 1000000001000000000\n');
  assert.is(idx.length, 3);
  assert.is(timeAt(idx, 0, 9n), 1000000000000000001n);
  assert.is(timeAt(idx, 3, 9n), 1000000000000000001n);
  assert.is(timeAt(idx, 4, 9n), 1000000000500000000n);
  assert.is(timeAt(idx, 12, 9n), 1000000001000000000n);
  assert.is(timeAt(idx, 13, 9n), 9n);
  assert.is(formatTime(1000000000500000007n), '2001-09-09T01:46:40.500000007Z');
  const dur = (s: string) => (s === '10m' ? 600_000 : undefined);
  assert.is(parseSince('10m', 1_000_000, dur), 400_000n * 1_000_000n);
  assert.is(parseSince('1700000000.5', 0, dur), 1_700_000_000_500n * 1_000_000n);
  assert.is(parseSince('2001-09-09T01:46:40Z', 0, dur), 1_000_000_000_000n * 1_000_000n);
  assert.is(parseSince('soon', 0, dur), undefined);
});

test.run();
