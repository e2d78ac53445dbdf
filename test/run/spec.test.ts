// runtimeSpec against Docker's defaults, field by field (values from `docker run` on Docker 24+,
// moby oci/defaults.go and oci/caps/defaults.go), and the image-config merging rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { capabilitySet, commandLine, containerEnv, runtimeSpec, type RuntimeSpec, type SpecInput } from '../../src/run/spec.js';

const ok = (input: SpecInput): RuntimeSpec => {
  const r = runtimeSpec(input);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};
const err = (input: SpecInput): string => {
  const r = runtimeSpec(input);
  if (E.isRight(r)) throw new Error('expected a failure');
  return r.left.message;
};
const base: SpecInput = { image: { Cmd: ['sh'] }, hostname: 'c0ffee', host: { nofile: 20000 } };

const DOCKER_CAPS = ['CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_MKNOD', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT'];

test('capabilities: Docker default set in bounding, effective and permitted, none inheritable/ambient', () => {
  const s = ok(base);
  for (const set of ['bounding', 'effective', 'permitted'] as const) assert.equal([...s.process.capabilities[set]].sort(), DOCKER_CAPS);
  assert.not.ok('inheritable' in s.process.capabilities);
  assert.not.ok('ambient' in s.process.capabilities);
});

test('capabilities: --cap-add/--cap-drop, lower case, without CAP_, ALL', () => {
  const add = ok({ ...base, capAdd: ['sys_admin', 'CAP_NET_ADMIN'], capDrop: ['net_raw'] }).process.capabilities.bounding;
  assert.ok(add.includes('CAP_SYS_ADMIN') && add.includes('CAP_NET_ADMIN'));
  assert.not.ok(add.includes('CAP_NET_RAW'));
  assert.equal(add.length, 15);
  assert.equal(E.getOrElse(() => [] as readonly string[])(capabilitySet([], ['ALL'])), []);
  assert.equal(E.getOrElse(() => [] as readonly string[])(capabilitySet(['ALL'], ['CHOWN'])).length, 40);
  assert.equal(E.getOrElse(() => [] as readonly string[])(capabilitySet(['chown'], ['ALL'])), ['CAP_CHOWN']);
  assert.match(err({ ...base, capAdd: ['FLY'] }), /unknown capability "FLY"/);
});

test('masked and read-only paths are Docker\'s', () => {
  const s = ok(base);
  assert.equal(s.linux.maskedPaths, ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap']);
  assert.equal(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
});

test('default mounts: proc, /dev tmpfs, devpts, sysfs ro, cgroup ro, mqueue, /dev/shm 64m', () => {
  const m = ok(base).mounts;
  const by = (d: string) => m.find((x) => x.destination === d);
  assert.equal(by('/proc'), { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] });
  assert.equal(by('/dev'), { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] });
  assert.equal(by('/dev/pts'), { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] });
  assert.equal(by('/sys'), { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  assert.equal(by('/sys/fs/cgroup'), { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] });
  assert.equal(by('/dev/mqueue'), { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] });
  assert.equal(by('/dev/shm'), { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
  assert.equal(m.length, 7);
  // /dev comes before what is mounted inside it
  assert.ok(m.findIndex((x) => x.destination === '/dev') < m.findIndex((x) => x.destination === '/dev/pts'));
});

test('devices: deny all, then the default character devices', () => {
  const d = ok(base).linux.resources.devices;
  assert.equal(d[0], { allow: false, access: 'rwm' });
  const allowed = d.filter((x) => x.allow && x.major !== undefined).map((x) => `${x.type} ${x.major}:${x.minor ?? '*'} ${x.access}`);
  assert.equal(allowed, ['c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 5:1 rwm', 'c 136:* rwm', 'c 5:2 rwm', 'c 10:200 rwm']);
});

test('rlimits: Docker\'s 1048576 open files, capped at the host hard limit', () => {
  assert.equal(ok(base).process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  assert.equal(ok({ ...base, host: { nofile: 2_000_000 } }).process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
});

test('namespaces: private network and none get their own; host shares net and uts', () => {
  const types = (i: SpecInput) => ok(i).linux.namespaces.map((n) => n.type).sort();
  assert.equal(types(base), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(types({ ...base, network: 'none' }), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(types({ ...base, network: 'host' }), ['ipc', 'mount', 'pid']);
  assert.equal(ok({ ...base, network: 'host' }).hostname, undefined);
  assert.equal(ok(base).hostname, 'c0ffee');
  assert.equal(ok({ ...base, netnsPath: '/proc/1/ns/net' }).linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/proc/1/ns/net' });
});

test('seccomp: allow-list with EPERM by default; namespace-creating clone refused without CAP_SYS_ADMIN', () => {
  const sc = ok(base).linux.seccomp!;
  assert.is(sc.defaultAction, 'SCMP_ACT_ERRNO');
  assert.is(sc.defaultErrnoRet, 1);
  const allowed = sc.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names);
  for (const n of ['read', 'write', 'execve', 'openat', 'futex', 'epoll_wait', 'clock_gettime', 'socket', 'chroot']) assert.ok(allowed.includes(n), n);
  for (const n of ['mount', 'umount2', 'unshare', 'setns', 'reboot', 'kexec_load', 'init_module', 'bpf', 'keyctl', 'add_key', 'open_by_handle_at', 'clock_settime', 'swapon', 'pivot_root']) assert.not.ok(allowed.includes(n), n);
  const cl = sc.syscalls.find((r) => r.names.includes('clone') && r.args);
  assert.equal(cl?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  const admin = ok({ ...base, capAdd: ['SYS_ADMIN'] }).linux.seccomp!.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names);
  for (const n of ['mount', 'unshare', 'setns', 'clone']) assert.ok(admin.includes(n), n);
  assert.is(ok({ ...base, seccomp: 'unconfined' }).linux.seccomp, undefined);
});

test('ENTRYPOINT/CMD merging as docker run does it', () => {
  const image = { Entrypoint: ['/bin/ep'], Cmd: ['a', 'b'] };
  assert.equal(commandLine(image), ['/bin/ep', 'a', 'b']);
  assert.equal(commandLine(image, undefined, ['x']), ['/bin/ep', 'x']);
  assert.equal(commandLine(image, ['/bin/other']), ['/bin/other']);
  assert.equal(commandLine(image, ['/bin/other'], ['y']), ['/bin/other', 'y']);
  assert.equal(commandLine(image, [], ['y']), ['y']);
  assert.equal(commandLine({ Cmd: ['sh'] }), ['sh']);
  assert.equal(commandLine({ Entrypoint: null, Cmd: null }, undefined, ['ls']), ['ls']);
  assert.match(err({ image: {} }), /no command specified/);
});

test('env: PATH and HOSTNAME defaults, TERM with a tty, image Env, then -e overrides', () => {
  assert.equal(containerEnv({ image: {}, hostname: 'h' }), ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=h']);
  assert.equal(containerEnv({ image: { Env: ['PATH=/x', 'A=1'] }, hostname: 'h', terminal: true, env: ['A=2', 'B='] }), ['PATH=/x', 'HOSTNAME=h', 'TERM=xterm', 'A=2', 'B=']);
  assert.equal(containerEnv({ image: {}, hostname: 'h', user: { uid: 1000, gid: 1000, additionalGids: [], home: '/home/u' } }).at(-1), 'HOME=/home/u');
});

test('process: cwd, user, terminal, no-new-privileges; root path and --read-only', () => {
  const s = ok({ ...base, image: { Cmd: ['sh'], WorkingDir: '/app' }, user: { uid: 1000, gid: 100, additionalGids: [10, 20] }, readonly: true, noNewPrivileges: true, terminal: true });
  assert.is(s.process.cwd, '/app');
  assert.equal(s.process.user, { uid: 1000, gid: 100, additionalGids: [10, 20] });
  assert.is(s.process.noNewPrivileges, true);
  assert.is(s.process.terminal, true);
  assert.equal(s.root, { path: 'rootfs', readonly: true });
  assert.is(ok({ ...base, cwd: '/w' }).process.cwd, '/w');
  assert.is(ok(base).process.cwd, '/');
  assert.equal(ok(base).process.user, { uid: 0, gid: 0 });
  assert.match(err({ ...base, cwd: 'rel' }), /absolute path/);
});

test('limits: memory without swap, cpus as quota/period, pids; bad values are errors', () => {
  const r = ok({ ...base, limits: { memory: 64 << 20, cpus: 1.5, pids: 50 } }).linux.resources;
  assert.equal(r.memory, { limit: 64 << 20, swap: 64 << 20 });
  assert.equal(r.cpu, { quota: 150000, period: 100000 });
  assert.equal(r.pids, { limit: 50 });
  assert.match(err({ ...base, limits: { memory: 1024 } }), /minimum memory limit/);
  assert.match(err({ ...base, limits: { cpus: 0 } }), /--cpus/);
  assert.not.ok('memory' in ok(base).linux.resources);
});

test('--init runs the init as PID 1 from a read-only bind mount; /etc files and user mounts follow the defaults', () => {
  const s = ok({ ...base, init: '/usr/bin/tini-static', etc: { hosts: '/b/hosts', hostname: '/b/hostname', resolvConf: '/b/resolv.conf' }, mounts: [{ destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'ro'] }] });
  assert.equal(s.process.args, ['/sbin/docker-init', '--', 'sh']);
  const dests = s.mounts.map((m) => m.destination);
  assert.equal(dests.slice(7), ['/etc/resolv.conf', '/etc/hostname', '/etc/hosts', '/sbin/docker-init', '/data']);
  assert.equal(s.mounts.find((m) => m.destination === '/sbin/docker-init'), { destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro'] });
  // with --read-only the /etc files are read-only too
  assert.ok(ok({ ...base, readonly: true, etc: { hosts: '/b/hosts' } }).mounts.find((m) => m.destination === '/etc/hosts')?.options?.includes('ro'));
});

test.run();
