// Logs: a container's stdout.log and stderr.log printed to our stdout and stderr, optionally
// only the last N lines of each, optionally following until the container has exited.
import { promises as fs } from 'node:fs';
import type { Writable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { write, type CommandResult } from '../cli/shell.js';

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

const readFrom = async (file: string, offset: number): Promise<Buffer> => {
  const fh = await fs.open(file, 'r').catch(() => undefined);
  if (!fh) return Buffer.alloc(0);
  try {
    const { size } = await fh.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
};

export const tailLines = async (stdoutFile: string, stderrFile: string, out: Writable, err: Writable, tail: number | undefined, finished?: () => Promise<boolean>): Promise<CommandResult> => {
  const streams = [
    { file: stdoutFile, to: out, offset: 0 },
    { file: stderrFile, to: err, offset: 0 },
  ];
  for (const s of streams) {
    const all = await readFrom(s.file, 0);
    const from = tail === undefined ? 0 : tailOffset(all, tail);
    if (from < all.length) await write(s.to, all.subarray(from) as unknown as string);
    s.offset = all.length;
  }
  if (!finished) return E.right(0);
  for (;;) {
    const done = await finished();
    let more = false;
    for (const s of streams) {
      const chunk = await readFrom(s.file, s.offset);
      if (chunk.length > 0) {
        await write(s.to, chunk as unknown as string);
        s.offset += chunk.length;
        more = true;
      }
    }
    if (done && !more) return E.right(0);
    if (!more) await new Promise((r) => setTimeout(r, 100));
  }
};
