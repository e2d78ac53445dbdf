// ListOutput: what `tsd-store ls` prints for its rows: JSON lines, a --format template per
// row, or Docker's table. Pure, and free of the argument parser, so the fast path of cli.ts
// can print a listing without loading it.
import { formatMessage } from '../message.js';
import { applyFormat, humanAge, humanSize, table, type ImageRow } from './listing.js';

export interface ListStyle {
  readonly json: boolean;
  readonly format?: string;
}

export const renderList = (rows: readonly ImageRow[], style: ListStyle, now = Date.now()): string => {
  if (style.json) return rows.map((r) => formatMessage(r.message)).join('');
  if (style.format !== undefined) {
    const format = style.format;
    return rows
      .map((r) =>
        applyFormat(format, { Repository: r.repository, Tag: r.tag, ID: r.id, Digest: r.message.digest, CreatedAt: r.created, CreatedSince: humanAge(r.created, now), Size: humanSize(r.size) }),
      )
      .join('');
  }
  return table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows.map((r) => [r.repository, r.tag, r.id, humanAge(r.created, now), humanSize(r.size)]));
};
