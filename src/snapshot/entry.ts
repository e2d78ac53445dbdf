// LayerEntry: one tar header of a layer, decoded at the boundary into what it asks of the
// snapshot. Names are cleaned here once (leading "/" and "./" dropped, "." and empty parts
// removed, ".." applied); a name that climbs above the layer root is refused, never clamped.
// OCI whiteouts become their own kinds, so nothing downstream looks at ".wh." again.
import * as E from 'fp-ts/lib/Either.js';

/** Cleaned path components below the layer root: never "", "." or "..". The root is []. */
export type EntryPath = readonly string[];

export interface Xattr {
  readonly name: string;
  readonly value: Buffer;
}

export interface Meta {
  /** permission bits with setuid, setgid and sticky (07777) */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** seconds since the epoch, fractional when a PAX header says so */
  readonly mtime: number;
  readonly xattrs: readonly Xattr[];
}

export type LayerEntry =
  | { readonly kind: 'dir'; readonly path: EntryPath; readonly meta: Meta }
  | { readonly kind: 'file'; readonly path: EntryPath; readonly meta: Meta; readonly size: number }
  | { readonly kind: 'symlink'; readonly path: EntryPath; readonly meta: Meta; readonly target: string }
  | { readonly kind: 'hardlink'; readonly path: EntryPath; readonly meta: Meta; readonly target: EntryPath }
  | { readonly kind: 'device'; readonly path: EntryPath; readonly meta: Meta; readonly device: 'char' | 'block'; readonly major: number; readonly minor: number }
  | { readonly kind: 'fifo'; readonly path: EntryPath; readonly meta: Meta }
  /** `.wh.NAME`: hide NAME of the layers below */
  | { readonly kind: 'whiteout'; readonly path: EntryPath }
  /** `.wh..wh..opq`: hide everything the layers below have in this directory */
  | { readonly kind: 'opaque'; readonly path: EntryPath }
  /** AUFS metadata (`.wh..wh.plnk`…) and PAX global headers: nothing to create */
  | { readonly kind: 'ignored'; readonly name: string };

/** A tar header as tar-stream hands it over, after PAX and GNU long names are applied. */
export interface TarHeader {
  readonly name: string;
  readonly type?: string | null;
  readonly size?: number;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: Date;
  readonly linkname?: string | null;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly pax?: Readonly<Record<string, string>> | null;
  /** where the entry's data starts in the tar stream (tar-stream 3) */
  readonly byteOffset?: number;
}

/** Why a header was refused; extract.ts wraps it with the layer's digest. */
export type EntryError = string;

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const AUFS_META = '.wh..wh.';

export const showName = (name: string): string => JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);

/** Cleans a tar name lexically; refuses one that climbs out of the root. */
export const cleanPath = (name: string): E.Either<EntryError, EntryPath> => {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return E.left(`${showName(name)} climbs out of the layer root`);
      out.pop();
    } else out.push(part);
  }
  return E.right(out);
};

/** Overlay's own xattrs would steer the mount (redirects, metacopy): a layer may not carry them. */
const allowedXattr = (name: string): boolean => !name.startsWith('trusted.overlay.') && name.length > 0;

/**
 * PAX xattr records. tar-stream decodes every PAX value as UTF-8, which mangles binary values:
 * `raw` (from PaxXattrTap) gives the bytes; a value mangled with no raw bytes at hand is returned
 * in `lost`, never written mangled.
 */
const xattrsOf = (pax: Readonly<Record<string, string>> | null | undefined, raw?: ReadonlyMap<string, Buffer>): { xattrs: Xattr[]; lost: string[] } => {
  const xattrs: Xattr[] = [];
  const lost: string[] = [];
  for (const [key, value] of Object.entries(pax ?? {})) {
    if (key.startsWith('SCHILY.xattr.')) {
      const name = key.slice('SCHILY.xattr.'.length);
      if (!allowedXattr(name)) continue;
      const bytes = raw?.get(name);
      if (bytes !== undefined) xattrs.push({ name, value: bytes });
      else if (value.includes('\uFFFD')) lost.push(name);
      else xattrs.push({ name, value: Buffer.from(value, 'utf8') });
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
      if (allowedXattr(name)) xattrs.push({ name, value: Buffer.from(value, 'base64') });
    }
  }
  return { xattrs, lost };
};

const paxNumber = (pax: Readonly<Record<string, string>> | null | undefined, key: string): number | undefined => {
  const v = pax?.[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
};

const metaOf = (h: TarHeader, xattrs: readonly Xattr[]): Meta => ({
  mode: (h.mode ?? 0o644) & 0o7777,
  uid: paxNumber(h.pax, 'uid') ?? h.uid ?? 0,
  gid: paxNumber(h.pax, 'gid') ?? h.gid ?? 0,
  mtime: paxNumber(h.pax, 'mtime') ?? (h.mtime ? h.mtime.getTime() / 1000 : 0),
  xattrs,
});

export interface Decoded {
  readonly entry: LayerEntry;
  /** xattrs present in the header whose binary value tar-stream could not hand over */
  readonly lostXattrs: readonly string[];
}

/** Decodes one tar header (after tar-stream applied PAX and GNU long names). */
export const decodeEntry = (h: TarHeader, rawXattrs?: ReadonlyMap<string, Buffer>): E.Either<EntryError, Decoded> => {
  if (h.type === 'pax-global-header') return E.right({ entry: { kind: 'ignored', name: h.name }, lostXattrs: [] });
  const cleaned = cleanPath(h.name);
  if (E.isLeft(cleaned)) return cleaned;
  const path = cleaned.right;
  const base = path[path.length - 1];
  const parent = path.slice(0, -1);
  const done = (entry: LayerEntry, lostXattrs: readonly string[] = []): E.Either<EntryError, Decoded> => E.right({ entry, lostXattrs });

  if (base !== undefined && base.startsWith(WH)) {
    if (base === OPAQUE) return done({ kind: 'opaque', path: parent });
    if (base.startsWith(AUFS_META)) return done({ kind: 'ignored', name: h.name });
    const hidden = base.slice(WH.length);
    if (hidden === '' || hidden === '.' || hidden === '..') return E.left(`whiteout ${showName(h.name)} names no file it may hide`);
    return done({ kind: 'whiteout', path: [...parent, hidden] });
  }

  const { xattrs, lost } = xattrsOf(h.pax, rawXattrs);
  const meta = metaOf(h, xattrs);
  if (h.type === 'directory') return done({ kind: 'dir', path, meta }, lost);
  if (path.length === 0) return E.left(`${showName(h.name)} (a ${h.type ?? 'file'}) would replace the layer root`);
  switch (h.type ?? 'file') {
    case 'file':
    case 'contiguous-file':
      return done({ kind: 'file', path, meta, size: h.size ?? 0 }, lost);
    case 'symlink':
      if (!h.linkname) return E.left(`symlink ${showName(h.name)} has an empty target`);
      return done({ kind: 'symlink', path, meta, target: h.linkname }, lost);
    case 'link': {
      const target = cleanPath(h.linkname ?? '');
      if (E.isLeft(target)) return E.left(`hard link ${showName(h.name)}: target ${target.left}`);
      if (target.right.length === 0) return E.left(`hard link ${showName(h.name)} points at the layer root`);
      return done({ kind: 'hardlink', path, meta, target: target.right }, lost);
    }
    case 'character-device':
    case 'block-device':
      return done(
        { kind: 'device', path, meta, device: h.type === 'character-device' ? 'char' : 'block', major: h.devmajor ?? 0, minor: h.devminor ?? 0 },
        lost,
      );
    case 'fifo':
      return done({ kind: 'fifo', path, meta }, lost);
    default:
      return E.left(`${showName(h.name)} has an unsupported tar entry type ${h.type}`);
  }
};
