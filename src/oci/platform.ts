// Platform: "os/arch[/variant]" as Docker spells it, the host's own, and matching against an index.
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { Platform } from './manifest.js';

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export const hostPlatform = (): Platform => {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  return architecture === 'arm64' ? { os: 'linux', architecture, variant: 'v8' } : { os: 'linux', architecture };
};

export const parsePlatform = (s: string): E.Either<Failure, Platform> => {
  const [os, architecture, variant, ...rest] = s.split('/');
  if (!os || !architecture || rest.length > 0) return E.left(failure('InvalidPlatform', `invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`));
  return E.right(variant ? { os, architecture, variant } : { os, architecture });
};

export const formatPlatform = (p: Platform): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/** arm64 without a variant means v8, as containerd's platform matcher treats it. */
const normalVariant = (p: Platform): string | undefined => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);

export const platformMatches = (want: Platform, have: Platform): boolean =>
  want.os === have.os &&
  want.architecture === have.architecture &&
  (want.variant === undefined || normalVariant(want) === normalVariant(have));
