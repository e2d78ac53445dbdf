// Special files: device nodes, fifos, overlay whiteouts (character device 0/0) and extended
// attributes. Node has neither mknod nor setxattr, so one helper process per layer makes them all:
// perl from perl-base (Essential in Debian, so always present there) calling mknodat(2) and
// lsetxattr(2) by number. Operations are sent as hex on stdin, so no name is ever parsed by a shell.
import { constants } from 'node:os';
import { execa } from 'execa';
import type { Meta } from './entry.js';

export type SpecialType = 'whiteout' | 'char' | 'block' | 'fifo';

export type SpecialOp =
  | {
      readonly op: 'mknod';
      /** absolute path, already checked by RootFs */
      readonly path: string;
      readonly type: SpecialType;
      readonly major: number;
      readonly minor: number;
      /** owner, mode and mtime to give it; undefined for whiteouts */
      readonly meta?: Meta;
      readonly chown: boolean;
    }
  | { readonly op: 'xattr'; readonly path: string; readonly name: string; readonly value: Buffer };

export interface SpecialResult {
  /** devices and fifos the kernel did not let us make (not root, or in a user namespace) */
  readonly skipped: readonly string[];
}

/** mknodat and lsetxattr by architecture (asm/unistd_64.h, asm-generic/unistd.h). */
const SYSCALLS: Partial<Record<string, { mknodat: number; lsetxattr: number }>> = {
  x64: { mknodat: 259, lsetxattr: 189 },
  arm64: { mknodat: 33, lsetxattr: 6 },
  riscv64: { mknodat: 33, lsetxattr: 6 },
  loong64: { mknodat: 33, lsetxattr: 6 },
};

const S_IF: Record<SpecialType, number> = { whiteout: 0o020000, char: 0o020000, block: 0o060000, fifo: 0o010000 };

/** The kernel's dev_t encoding for mknod (new_encode_dev). */
const encodeDev = (major: number, minor: number): number =>
  ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;

const hex = (s: string | Buffer): string => Buffer.from(s).toString('hex');

const SCRIPT = String.raw`
use strict;
my ($MKNODAT, $LSETXATTR) = map { $_ + 0 } @ARGV;
$| = 1;
sub fail { print "fail $_[0] ", ($! + 0), " ", ($_[1] // "n"), "\n"; exit 1; }
while (my $line = <STDIN>) {
  chomp $line;
  my @f = split / /, $line, -1;
  my $op = shift @f;
  my $path = pack('H*', $f[0]);
  if ($op eq 'n') {
    my ($mode, $dev, $skip, $uid, $gid, $perm, $mtime) = @f[1..7];
    if (syscall($MKNODAT, -100, $path, $mode + 0, $dev + 0) != 0) {
      my $e = $! + 0;
      if ($skip eq '1' && ($e == 1 || $e == 13)) { print "skip $f[0] $e\n"; next; }
      fail($f[0]);
    }
    if ($uid ne '-') { chown($uid + 0, $gid + 0, $path) or fail($f[0]); }
    if ($perm ne '-') { chmod($perm + 0, $path) or fail($f[0]); }
    if ($mtime ne '-') { utime($mtime + 0, $mtime + 0, $path) or fail($f[0]); }
  } elsif ($op eq 'x') {
    my $name = pack('H*', $f[1]);
    my $value = pack('H*', $f[2]);
    syscall($LSETXATTR, $path, $name, $value, length($value), 0) == 0 or fail($f[0], 'x');
  }
}
print "ok\n";
`;

const errnoName = (n: number): string =>
  Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;

/** Makes the special files and sets the xattrs, in the order given. Throws an errno Error. */
export const applySpecial = async (ops: readonly SpecialOp[]): Promise<SpecialResult> => {
  if (ops.length === 0) return { skipped: [] };
  const nr = SYSCALLS[process.arch];
  if (!nr) throw new Error(`special files (whiteouts, devices, xattrs) are not supported on ${process.arch}`);
  const lines = ops.map((o) =>
    o.op === 'xattr'
      ? `x ${hex(o.path)} ${hex(o.name)} ${hex(o.value)}`
      : [
          'n',
          hex(o.path),
          S_IF[o.type] | ((o.meta?.mode ?? 0) & 0o777),
          encodeDev(o.major, o.minor),
          o.type === 'whiteout' ? '0' : '1',
          o.meta && o.chown ? o.meta.uid : '-',
          o.meta && o.chown ? o.meta.gid : '-',
          o.meta ? o.meta.mode & 0o7777 : '-',
          o.meta ? Math.floor(o.meta.mtime) : '-',
        ].join(' '),
  );
  const run = await execa('perl', ['-e', SCRIPT, String(nr.mknodat), String(nr.lsetxattr)], {
    input: lines.join('\n') + '\n',
    reject: false,
    env: { LC_ALL: 'C' },
    extendEnv: false,
  });
  const out = String(run.stdout).split('\n');
  const skipped = out.filter((l) => l.startsWith('skip ')).map((l) => Buffer.from(l.split(' ')[1] ?? '', 'hex').toString());
  const failed = out.find((l) => l.startsWith('fail '));
  if (failed) {
    const [, path, errno, op] = failed.split(' ');
    const code = errnoName(Number(errno));
    // an inode's xattr space is full (ENOSPC) or one is too big (E2BIG): the layer's fault, not a full disk
    if (op === 'x' && (code === 'ENOSPC' || code === 'E2BIG')) {
      throw Object.assign(new Error(`${Buffer.from(path ?? '', 'hex').toString()}: its extended attributes do not fit on this file system (${code})`), { code: 'EXATTR' });
    }
    throw Object.assign(new Error(`${Buffer.from(path ?? '', 'hex').toString()}: ${code}`), { code });
  }
  if (!out.includes('ok')) throw new Error(`special-file helper (perl) failed: ${String(run.stderr || run.message).split('\n')[0]}`);
  return { skipped };
};
