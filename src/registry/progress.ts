// Progress: the events a transfer reports, and the three ways a shell shows them on stderr:
// live lines on a terminal (one per blob: bytes, rate, bar), plain lines off a terminal, or
// ProgressMessage JSON lines (--progress=json). The library only calls `report`; it never prints.
import type { Writable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { shortId } from '../oci/digest.js';
import { humanSize } from '../store/listing.js';

export type TransferEvent =
  | { readonly event: 'resolved'; readonly ref: string; readonly digest: Digest; readonly blobs: number }
  | { readonly event: 'start'; readonly digest: Digest; readonly total: number; readonly offset: number }
  | { readonly event: 'bytes'; readonly digest: Digest; readonly done: number; readonly total: number }
  | { readonly event: 'skip'; readonly digest: Digest; readonly total: number; readonly reason: 'present' | 'exists' | 'mounted' }
  | { readonly event: 'done'; readonly digest: Digest; readonly total: number }
  | { readonly event: 'retry'; readonly what: string; readonly attempt: number; readonly delayMs: number; readonly reason: string }
  | { readonly event: 'manifest'; readonly ref: string; readonly digest: Digest }
  /** `streamed`: unpacked from the bytes as they downloaded (not read back from the stored blob) */
  | { readonly event: 'unpacked'; readonly digest: Digest; readonly chainId: Digest; readonly streamed?: boolean };

export type Report = (e: TransferEvent) => void;

export const silent: Report = () => undefined;

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';


/** One line per event that matters; byte counts are left out. */
const plain = (tool: string, out: Writable): Report => (e) => {
  switch (e.event) {
    case 'resolved':
      return void out.write(`${tool}: ${e.ref}: ${e.digest} (${e.blobs} blobs)\n`);
    case 'start':
      return void out.write(`${tool}: ${shortId(e.digest)}: ${e.offset > 0 ? `resuming at ${humanSize(e.offset)} of` : tool === 'tsd-push' ? 'uploading' : 'fetching'} ${humanSize(e.total)}\n`);
    case 'skip':
      return void out.write(`${tool}: ${shortId(e.digest)}: ${e.reason === 'present' ? 'already present' : e.reason === 'exists' ? 'already in the registry' : 'mounted'}\n`);
    case 'done':
      return void out.write(`${tool}: ${shortId(e.digest)}: done ${humanSize(e.total)}\n`);
    case 'retry':
      return void out.write(`${tool}: ${e.what}: ${e.reason}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)} s\n`);
    case 'manifest':
      return void out.write(`${tool}: ${e.ref}: manifest ${e.digest}\n`);
    case 'unpacked':
      return void out.write(`${tool}: ${shortId(e.digest)}: unpacked${e.streamed ? ' while downloading' : ''}\n`);
    case 'bytes':
      return;
  }
};

/** ProgressMessage lines; byte events at most every 200 ms per blob. */
const json = (tool: string, out: Writable): Report => {
  const last = new Map<string, number>();
  return (e) => {
    if (e.event === 'bytes') {
      const now = Date.now();
      if (now - (last.get(e.digest) ?? 0) < 200) return;
      last.set(e.digest, now);
    }
    out.write(`${JSON.stringify({ v: 1, type: 'progress', tool, ...e })}\n`);
  };
};

/** Live lines redrawn in place, at most ten times a second. */
const tty = (tool: string, out: Writable): Report => {
  const rows = new Map<string, { done: number; total: number; state: string; started: number }>();
  let drawn = 0;
  let lastDraw = 0;
  const bar = (done: number, total: number): string => {
    const w = 24;
    const f = total > 0 ? Math.min(w, Math.round((done / total) * w)) : w;
    return `[${'='.repeat(f)}${f < w ? '>' : ''}${' '.repeat(Math.max(0, w - f - 1))}]`;
  };
  const draw = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    let text = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const [digest, r] of rows) {
      const secs = Math.max(0.001, (now - r.started) / 1000);
      const detail = r.state === 'moving' ? `${bar(r.done, r.total)} ${humanSize(r.done)}/${humanSize(r.total)} ${humanSize(r.done / secs)}/s` : r.state;
      text += `\x1b[2K${shortId(digest as Digest)}: ${detail}\n`;
    }
    drawn = rows.size;
    out.write(text);
  };
  return (e) => {
    switch (e.event) {
      case 'start':
        rows.set(e.digest, { done: e.offset, total: e.total, state: 'moving', started: Date.now() });
        return draw(true);
      case 'bytes': {
        const r = rows.get(e.digest);
        if (r) r.done = e.done;
        return draw(false);
      }
      case 'skip':
        rows.set(e.digest, { done: e.total, total: e.total, state: e.reason === 'present' ? 'already present' : e.reason === 'exists' ? 'already exists' : 'mounted', started: Date.now() });
        return draw(true);
      case 'done': {
        const r = rows.get(e.digest);
        rows.set(e.digest, { done: e.total, total: e.total, state: `done ${humanSize(e.total)}${r ? ` in ${((Date.now() - r.started) / 1000).toFixed(1)} s` : ''}`, started: r?.started ?? Date.now() });
        return draw(true);
      }
      default:
        plain(tool, out)(e);
        drawn = 0; // the live lines start again below the message
        return;
    }
  };
};

/** The reporter a shell asks for; 'auto' is a live view on a terminal, plain lines elsewhere. */
export const progressReporter = (mode: ProgressMode, tool: string, stderr: Writable, isTTY: boolean): Report => {
  switch (mode) {
    case 'quiet':
      return silent;
    case 'json':
      return json(tool, stderr);
    case 'plain':
      return plain(tool, stderr);
    case 'tty':
      return tty(tool, stderr);
    case 'auto':
      return isTTY ? tty(tool, stderr) : plain(tool, stderr);
  }
};
