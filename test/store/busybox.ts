// A root file system made from the host's busybox-static: bin/busybox and a few applet links.
import { readFileSync, statSync } from 'node:fs';
import { layerTar, type FileSpec } from '../support/tsd.js';

export const BUSYBOX = '/usr/bin/busybox';

export const busyboxFiles = (extra: readonly FileSpec[] = []): FileSpec[] => [
  { name: 'bin/', type: 'directory' },
  { name: 'bin/busybox', content: readFileSync(BUSYBOX), mode: statSync(BUSYBOX).mode & 0o7777 },
  ...['sh', 'ls', 'cat', 'echo'].map((a): FileSpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
  { name: 'etc/', type: 'directory' },
  { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
  ...extra,
];

/** The busybox root file system as a tar, in memory (about 1 MB). */
export const busyboxTar = (extra: readonly FileSpec[] = []): Promise<Buffer> => layerTar(busyboxFiles(extra));
