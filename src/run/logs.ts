// Logs: a container's stdout.log and stderr.log printed to our stdout and stderr: the last N
// lines of each, lines since a time, with their times (-t), following until the container has
// exited. The container writes the files itself; the supervisor notes in stdout.idx/stderr.idx
// ("SIZE EPOCH_NS" each time a file grew, seen through inotify) when bytes arrived, which dates
// every line without any process copying the output. Lines written while no supervisor watched
// (it was killed) get the file's modification time: the latest they can have been written.
// With --log-opt max-size the supervisor rotates a log by copy-truncate: X.log.N … X.log.1 are
// older output (each with its X.idx.N), read before X.log, oldest first.
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { write, type CommandResult } from '../cli/io.js';

/** The byte offset where the last `n` lines of `buf` begin. */
export const tailOffset = (buf: Buffer, n: number): number => {
  if (n <= 0) return buf.length;
  let i = buf.length;
  if (i > 0 && buf[i - 1] === 0x0a) i--;
  for (let seen = 0; i > 0; i--) {
    if (buf[i - 1] === 0x0a && ++seen === n) return i;
  }
  return 0;
};

export type TimeIndex = readonly (readonly [size: number, ns: bigint])[];

export const parseIndex = (text: string): TimeIndex =>
  text.split('\n').flatMap((l) => {
    const m = /^(\d+) (\d+)$/.exec(l);
    return m ? [[Number(m[1]), BigInt(m[2] as string)] as const] : [];
  });

/** When the byte at `offset` arrived: the first noted size beyond it, else `fallback`. */
export const timeAt = (index: TimeIndex, offset: number, fallback: bigint): bigint => {
  let lo = 0;
  let hi = index.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((index[mid] as readonly [number, bigint])[0] > offset) hi = mid;
    else lo = mid + 1;
  }
  return lo < index.length ? (index[lo] as readonly [number, bigint])[1] : fallback;
};

/** RFC 3339 with nanoseconds, as `docker logs -t` prints. */
export const formatTime = (ns: bigint): string => {
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
};

/** --since: a Unix time (seconds), an RFC 3339 time, or a duration back from `now` (10m, 1h30m). */
export const parseSince = (s: string, nowMs: number, duration: (s: string) => number | undefined): bigint | undefined => {
  if (/^\d+(\.\d+)?$/.test(s)) return BigInt(Math.round(Number(s) * 1000)) * 1_000_000n;
  const d = duration(s);
  if (d !== undefined) return BigInt(nowMs - d) * 1_000_000n;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : BigInt(t) * 1_000_000n;
};

export interface LogOptions {
  readonly tail?: number;
  readonly timestamps: boolean;
  readonly sinceNs?: bigint;
  /** resolves true once the container has exited: follow until then */
  readonly finished?: () => Promise<boolean>;
  /** print only what is written from now on (attach) */
  readonly fromEnd?: boolean;
}

/**
 * Resolves when something in `dir` changes (inotify, through fs.watch) or after `ms`: following a
 * log wakes as soon as the container writes, not on the next poll (attach echoes typed keys).
 */
const changeWaiter = (dir: string): { wait: (ms: number) => Promise<void>; close: () => void } => {
  let wake: (() => void) | undefined;
  let changed = false;
  let w: FSWatcher | undefined;
  try {
    w = watch(dir, () => {
      changed = true;
      wake?.();
    });
    w.on('error', () => undefined);
  } catch {
    w = undefined; // no inotify: poll
  }
  return {
    wait: (ms) =>
      changed
        ? Promise.resolve(void (changed = false))
        : new Promise<void>((r) => {
            const t = setTimeout(() => done(), ms);
            const done = () => {
              clearTimeout(t);
              wake = undefined;
              changed = false;
              r();
            };
            wake = done;
          }),
    close: () => w?.close(),
  };
};

interface Stream {
  readonly file: string;
  readonly index: string;
  readonly to: Writable;
  offset: number;
}

const readFrom = async (file: string, offset: number): Promise<{ data: Buffer; mtimeNs: bigint }> => {
  const fh = await fs.open(file, 'r').catch(() => undefined);
  if (!fh) return { data: Buffer.alloc(0), mtimeNs: 0n };
  try {
    const st = await fh.stat({ bigint: true });
    const size = Number(st.size);
    if (size <= offset) return { data: Buffer.alloc(0), mtimeNs: st.mtimeNs };
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    return { data: buf.subarray(0, bytesRead), mtimeNs: st.mtimeNs };
  } finally {
    await fh.close();
  }
};

/** Writes `data` (starting at file offset `base`); with times or --since, complete lines only. Returns bytes consumed. */
const emit = async (s: Stream, data: Buffer, base: number, mtimeNs: bigint, o: LogOptions, final: boolean): Promise<number> => {
  if (!o.timestamps && o.sinceNs === undefined) {
    if (data.length > 0) await write(s.to, data as unknown as string);
    return data.length;
  }
  const index = parseIndex(await fs.readFile(s.index, 'utf8').catch(() => ''));
  let start = 0;
  const out: Buffer[] = [];
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    if (nl < 0 && !final) break;
    const end = nl < 0 ? data.length : nl + 1;
    const ns = timeAt(index, base + start, mtimeNs);
    if (o.sinceNs === undefined || ns >= o.sinceNs) {
      if (o.timestamps) out.push(Buffer.from(`${formatTime(ns)} `));
      out.push(data.subarray(start, end));
      if (nl < 0) out.push(Buffer.from('\n'));
    }
    start = end;
  }
  if (out.length > 0) await write(s.to, Buffer.concat(out) as unknown as string);
  return start;
};

/** The rotated files of a log that exist, oldest first: X.N … X.1 (with their indexes). */
const rotated = async (s: Stream): Promise<Stream[]> => {
  const found: Stream[] = [];
  for (let k = 1; k <= 100; k++) {
    const ok = await fs.access(`${s.file}.${k}`).then(() => true, () => false);
    if (!ok) break;
    found.unshift({ ...s, file: `${s.file}.${k}`, index: `${s.index}.${k}` });
  }
  return found;
};

export const printLogs = async (files: { stdout: string; stderr: string; stdoutIdx: string; stderrIdx: string }, out: Writable, err: Writable, o: LogOptions): Promise<CommandResult> => {
  const streams: Stream[] = [
    { file: files.stdout, index: files.stdoutIdx, to: out, offset: 0 },
    { file: files.stderr, index: files.stderrIdx, to: err, offset: 0 },
  ];
  for (const s of streams) {
    if (o.fromEnd) {
      s.offset = await fs.stat(s.file).then((st) => st.size, () => 0);
      continue;
    }
    // the rotated files, then the live one: --tail counts lines across all of them
    const parts = [...(await rotated(s)), s];
    const read = await Promise.all(parts.map((part) => readFrom(part.file, 0)));
    const from = o.tail === undefined ? 0 : tailOffset(Buffer.concat(read.map((r) => r.data)), o.tail);
    let base = 0;
    for (const [i, part] of parts.entries()) {
      const { data, mtimeNs } = read[i] as { data: Buffer; mtimeNs: bigint };
      const start = Math.max(0, from - base);
      base += data.length;
      if (start >= data.length && part !== s) continue;
      const used = await emit(part, data.subarray(start), start, mtimeNs, o, part !== s || !o.finished);
      if (part === s) s.offset = start + used;
    }
  }
  if (!o.finished) return E.right(0);
  const changes = changeWaiter(dirname(files.stdout));
  try {
    return await follow(streams, o, o.finished, changes.wait);
  } finally {
    changes.close();
  }
};

const follow = async (streams: Stream[], o: LogOptions, finished: () => Promise<boolean>, changed: (ms: number) => Promise<void>): Promise<CommandResult> => {
  for (;;) {
    const done = await finished();
    let more = false;
    for (const s of streams) {
      // rotated meanwhile (the live file is shorter than what we read): finish the copy first
      const size = await fs.stat(s.file).then((st) => st.size, () => 0);
      if (size < s.offset) {
        const old = await readFrom(`${s.file}.1`, s.offset);
        await emit({ ...s, file: `${s.file}.1`, index: `${s.index}.1` }, old.data, s.offset, old.mtimeNs, o, true);
        s.offset = 0;
      }
      const { data, mtimeNs } = await readFrom(s.file, s.offset);
      const used = await emit(s, data, s.offset, mtimeNs, o, done);
      if (used > 0) more = true;
      s.offset += used;
    }
    if (done && !more) return E.right(0);
    if (!more) await changed(100);
  }
};
