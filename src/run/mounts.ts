// Mounts: `-v`, `--mount` and `--tmpfs` decoded into mount requests (pure), then into OCI mounts
// once named volumes have a directory in the store ($ROOT/volumes/<name>/_data, as Docker lays
// them out). Binds use rbind + rprivate; `ro` adds a read-only remount, done by runc. A volume
// that is empty when a container is created gets the image's content at its target (Docker's
// copy mode; src/run/volume-fill.ts) unless `nocopy` (-v) or `volume-nocopy` (--mount) says not.
import { isAbsolute, normalize } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import type { OciMount } from './defaults.js';

export type MountRequest =
  | { readonly kind: 'bind'; readonly source: string; readonly target: string; readonly readonly: boolean; readonly createSource: boolean }
  | { readonly kind: 'volume'; readonly name?: string; readonly target: string; readonly readonly: boolean; readonly noCopy?: true }
  | { readonly kind: 'tmpfs'; readonly target: string; readonly size?: number; readonly mode?: number; readonly readonly: boolean };

const bad = (message: string): Failure => failure('InvalidMount', message, ExitCode.tool);
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const MODES = ['ro', 'rw', 'z', 'Z', 'private', 'rprivate', 'nocopy'];

const target = (flag: string, t: string): E.Either<Failure, string> =>
  isAbsolute(t) && normalize(t) !== '/' ? E.right(normalize(t).replace(/\/$/, '')) : E.left(bad(`${flag}: invalid mount destination ${JSON.stringify(t)}: it needs to be an absolute path other than /`));

/** -v SRC:DST[:ro|rw][,nocopy], -v NAME:DST[:ro][,nocopy], -v DST[:ro][,nocopy] (an anonymous volume). */
export const parseVolumeFlag = (s: string): E.Either<Failure, MountRequest> => {
  const parts = s.split(':');
  if (parts.length > 3) return E.left(bad(`-v: invalid volume specification ${JSON.stringify(s)}`));
  // DST:MODES (an anonymous volume with options), as Docker reads `-v /data:nocopy`
  const anonymous = parts.length === 1 || (parts.length === 2 && !isAbsolute(parts[1] ?? '') && (parts[1] ?? '').split(',').every((o) => MODES.includes(o)));
  const [src = '', dst = '', opts = ''] = anonymous ? ['', parts[0], parts[1]] : parts;
  const options = opts.split(',').filter((o) => o !== '');
  const unknown = options.find((o) => !MODES.includes(o));
  if (unknown !== undefined) return E.left(bad(`-v: invalid mode ${JSON.stringify(unknown)} in ${JSON.stringify(s)}`));
  const readonly = options.includes('ro');
  const noCopy = options.includes('nocopy') ? ({ noCopy: true } as const) : {};
  const t = target('-v', dst);
  if (E.isLeft(t)) return t;
  if (anonymous) return E.right({ kind: 'volume', target: t.right, readonly, ...noCopy });
  if (isAbsolute(src)) {
    if (options.includes('nocopy')) return E.left(bad(`-v: nocopy applies to volumes, not to the bind mount of ${src} in ${JSON.stringify(s)}`));
    return E.right({ kind: 'bind', source: normalize(src), target: t.right, readonly, createSource: true });
  }
  if (!VOLUME_NAME.test(src)) return E.left(bad(`-v: ${JSON.stringify(src)} is not a valid volume name nor an absolute host path`));
  return E.right({ kind: 'volume', name: src, target: t.right, readonly, ...noCopy });
};

/** --mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…] */
export const parseMountFlag = (s: string): E.Either<Failure, MountRequest> => {
  const kv = new Map<string, string>();
  for (const field of s.split(',')) {
    const eq = field.indexOf('=');
    const k = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    kv.set(k, eq < 0 ? 'true' : field.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const src = kv.get('source') ?? kv.get('src');
  const dst = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  if (dst === undefined) return E.left(bad(`--mount: target is required in ${JSON.stringify(s)}`));
  const t = target('--mount', dst);
  if (E.isLeft(t)) return t;
  const ro = kv.get('readonly') ?? kv.get('ro');
  const readonly = ro === 'true' || ro === '1';
  const nocopy = kv.get('volume-nocopy');
  if (nocopy !== undefined && !['true', '1', 'false', '0'].includes(nocopy)) return E.left(bad(`--mount: invalid volume-nocopy ${JSON.stringify(nocopy)} (true or false)`));
  if (nocopy !== undefined && type !== 'volume') return E.left(bad(`--mount: volume-nocopy applies to type=volume, not type=${type}`));
  switch (type) {
    case 'bind':
      if (src === undefined || !isAbsolute(src)) return E.left(bad(`--mount: a bind mount needs an absolute source in ${JSON.stringify(s)}`));
      return E.right({ kind: 'bind', source: normalize(src), target: t.right, readonly, createSource: false });
    case 'volume':
      if (src !== undefined && !VOLUME_NAME.test(src)) return E.left(bad(`--mount: ${JSON.stringify(src)} is not a valid volume name`));
      return E.right({ kind: 'volume', ...(src !== undefined ? { name: src } : {}), target: t.right, readonly, ...(nocopy === 'true' || nocopy === '1' ? { noCopy: true as const } : {}) });
    case 'tmpfs': {
      const size = kv.get('tmpfs-size');
      const mode = kv.get('tmpfs-mode');
      if (size !== undefined && !/^\d+[kmg]?$/i.test(size)) return E.left(bad(`--mount: invalid tmpfs-size ${JSON.stringify(size)}`));
      if (mode !== undefined && !/^[0-7]{1,4}$/.test(mode)) return E.left(bad(`--mount: invalid tmpfs-mode ${JSON.stringify(mode)}`));
      const bytes = size === undefined ? undefined : Number(size.replace(/[kmg]$/i, '')) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[size.slice(-1).toLowerCase() as 'k'] ?? 1);
      return E.right({ kind: 'tmpfs', target: t.right, readonly, ...(bytes !== undefined ? { size: bytes } : {}), ...(mode !== undefined ? { mode: parseInt(mode, 8) } : {}) });
    }
    default:
      return E.left(bad(`--mount: unknown type ${JSON.stringify(type)} (bind, volume or tmpfs)`));
  }
};

/** --tmpfs /path[:size=64m,mode=1777] */
export const parseTmpfsFlag = (s: string): E.Either<Failure, MountRequest> => {
  const [dst = '', opts = ''] = s.split(':', 2);
  const fields = opts.split(',').filter((o) => o !== '').map((o) => (o.startsWith('size=') ? `tmpfs-size=${o.slice(5)}` : o.startsWith('mode=') ? `tmpfs-mode=${o.slice(5)}` : o));
  return parseMountFlag(['type=tmpfs', `target=${dst}`, ...fields].join(','));
};

/** The OCI mount of a request whose volume (if any) has been given a host directory. */
export const ociMount = (m: MountRequest, volumeDir?: string): OciMount => {
  if (m.kind === 'tmpfs') {
    return {
      destination: m.target,
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'noexec', ...(m.size !== undefined ? [`size=${m.size}`] : []), `mode=${(m.mode ?? 0o1777).toString(8)}`, ...(m.readonly ? ['ro'] : [])],
    };
  }
  const source = m.kind === 'bind' ? m.source : (volumeDir as string);
  return { destination: m.target, type: 'bind', source, options: ['rbind', 'rprivate', ...(m.readonly ? ['ro'] : [])] };
};

/** Two mounts on one destination are refused, as Docker does ("Duplicate mount point"). */
export const checkDuplicates = (ms: readonly MountRequest[]): E.Either<Failure, readonly MountRequest[]> => {
  const seen = new Set<string>();
  for (const m of ms) {
    if (seen.has(m.target)) return E.left(bad(`duplicate mount point: ${m.target}`));
    seen.add(m.target);
  }
  return E.right(ms);
};

/**
 * The anonymous volumes of the image's VOLUME paths that no mount of the run covers already (as
 * Docker: a -v or --mount on the same path wins). A path that is not absolute, or is /, is skipped.
 */
export const imageVolumes = (volumes: Readonly<Record<string, object>> | undefined, ms: readonly MountRequest[]): MountRequest[] => {
  const taken = new Set(ms.map((m) => m.target));
  const out: MountRequest[] = [];
  for (const v of Object.keys(volumes ?? {})) {
    const t = target('VOLUME', v);
    if (E.isLeft(t) || taken.has(t.right)) continue;
    taken.add(t.right);
    out.push({ kind: 'volume', target: t.right, readonly: false });
  }
  return out;
};
