// Listing: the rows of `tsd-store ls` (Docker's `images` columns) and their renderings.
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import type { Failure } from '../failure.js';
import { imageMessage, type ImageMessage } from '../message.js';
import { shortId } from '../oci/digest.js';
import { familiarReference, parseReference } from '../oci/reference.js';
import { readIndexSync } from './index-file.js';
import { refNameOf, resolveEntry, resolveEntrySync } from './image.js';
import type { StorePaths } from './layout.js';

export interface ImageRow {
  readonly repository: string;
  readonly tag: string;
  readonly id: string;
  readonly created: string;
  /** bytes of the manifest, config and (compressed) layers */
  readonly size: number;
  readonly message: ImageMessage;
}

/**
 * The rows of the store's images, in index.json's order. The index and each image's blobs are
 * read synchronously (small files: a thread-pool round trip costs more than the read); an image
 * that does not resolve so is read again by resolveEntry, which waits out a gc or names the fault.
 */
export const listImages = (p: StorePaths): TE.TaskEither<Failure, readonly ImageRow[]> => async () => {
  const index = readIndexSync(p);
  if (E.isLeft(index)) return index;
  const rows: ImageRow[] = [];
  for (const entry of index.right.manifests) {
    const name = refNameOf(entry);
    const quick = resolveEntrySync(p, entry, name);
    const resolved = quick !== undefined ? E.right(quick) : await resolveEntry(p, entry, name)();
    const parsed = name !== undefined ? parseReference(name) : undefined;
    let repository = '<none>';
    let tag = '<none>';
    if (parsed && E.isRight(parsed)) {
      repository = familiarReference({ domain: parsed.right.domain, path: parsed.right.path });
      tag = parsed.right.tag ?? '<none>';
    } else if (name !== undefined) {
      repository = name;
    }
    if (E.isLeft(resolved)) {
      rows.push({ repository, tag, id: '<broken>', created: '', size: entry.size, message: imageMessage({ ...(name ? { ref: name } : {}), digest: entry.digest, mediaType: entry.mediaType, size: entry.size }) });
      continue;
    }
    const r = resolved.right;
    const size = r.manifestDescriptor.size + r.manifest.config.size + r.manifest.layers.reduce((n, l) => n + l.size, 0);
    rows.push({
      repository,
      tag,
      id: shortId(r.configDigest),
      created: r.config.created ?? '',
      size,
      message: imageMessage({
        ...(name !== undefined ? { ref: name } : {}),
        digest: entry.digest,
        mediaType: entry.mediaType,
        size: entry.size,
        config: r.configDigest,
        platform: { os: r.config.os, architecture: r.config.architecture, ...(r.config.variant ? { variant: r.config.variant } : {}) },
      }),
    });
  }
  return E.right(rows);
};

export const humanSize = (bytes: number): string => {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return u === 0 ? `${n}B` : `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)}${units[u]}`;
};

export const humanAge = (iso: string, now = Date.now()): string => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} seconds ago`;
  const steps: [number, string][] = [[60, 'minute'], [3600, 'hour'], [86400, 'day'], [604800, 'week'], [2592000, 'month'], [31536000, 'year']];
  let label = 'minute';
  let unit = 60;
  for (const [secs, name] of steps) if (s >= secs) [unit, label] = [secs, name];
  const k = Math.floor(s / unit);
  return `${k} ${label}${k === 1 ? '' : 's'} ago`;
};

/** Left-aligned columns separated by three spaces, as Docker prints its tables. */
export const table = (header: readonly string[], rows: readonly (readonly string[])[]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
};

/** `--format '{{.Repository}}:{{.Tag}}'`: Docker's Go-template fields, by name. */
export const applyFormat = (format: string, fields: Readonly<Record<string, string>>): string =>
  format.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, key: string) => fields[key] ?? '') + '\n';
