// Test images for tsd-run: busybox-static with its applets as symlinks, /etc/passwd and /etc/group.
import { readFileSync } from 'node:fs';
import type { StorePaths } from '../../src/store/layout.js';
import type { ContainerConfig } from '../../src/oci/config.js';
import { makeImage, type FileSpec } from '../support/tsd.js';

const APPLETS = ['sh', 'echo', 'cat', 'id', 'ls', 'sleep', 'true', 'false', 'pwd', 'env', 'touch', 'mkdir', 'rm', 'grep', 'hostname', 'httpd', 'wget', 'ps', 'head', 'dd', 'kill', 'test', 'yes', 'seq', 'wc', 'tail', 'printf', 'mount', 'unshare', 'nc', 'stat', 'cut', 'tr', 'sed', 'awk', 'date', 'whoami', 'readlink'];

export const busyboxLayer = (): FileSpec[] => [
  { name: 'bin/', type: 'directory' },
  { name: 'bin/busybox', content: readFileSync('/usr/bin/busybox'), mode: 0o755 },
  ...APPLETS.map((a): FileSpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
  { name: 'etc/', type: 'directory' },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
  { name: 'etc/group', content: 'root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice,bob\nwheel:x:10:alice\nnogroup:x:65534:\n' },
  { name: 'tmp/', type: 'directory', mode: 0o1777 },
  { name: 'root/', type: 'directory', mode: 0o700 },
  { name: 'home/', type: 'directory' },
  { name: 'home/alice/', type: 'directory', uid: 1000, gid: 1000 },
  { name: 'www/', type: 'directory' },
  { name: 'www/index.html', content: 'hello from busybox httpd\n' },
];

export const REF = 'docker.io/library/bb:test';

export const busyboxImage = (p: StorePaths, ref = REF, config: ContainerConfig = { Cmd: ['sh'], Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, extra: FileSpec[][] = []) =>
  makeImage(p, ref, [busyboxLayer(), ...extra], config);
