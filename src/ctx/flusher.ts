// Flusher: the end of the tar pipeline. Small chunks (headers, small files) are copied into
// pooled buffers of BATCH bytes and written as few large writes; large chunks are written as
// they are. `seen(chunk)` is told once a chunk's bytes are no longer needed — at once for a
// copied chunk, after its write for one written as it is — so the reader can reuse the batch
// buffer the chunk came from (fresh memory costs a page fault per 4 KiB).
import { Writable } from 'node:stream';

export const BATCH = 1 << 19;
/** Writes handed to `out` and not yet done; past this the flusher waits (its back-pressure). */
const MAX_IN_FLIGHT = 4;

export class Flusher extends Writable {
  private readonly pool: Buffer[] = [];
  private cur: Buffer | undefined;
  private used = 0;
  private inFlight = 0;
  private allWritten: (() => void) | undefined;
  private resume: (() => void) | undefined;

  constructor(private readonly out: Writable, private readonly seen: (chunk: Buffer) => void) {
    super({ highWaterMark: BATCH });
    out.on('error', (e) => this.destroy(e));
  }

  private send(buf: Buffer, done: () => void): void {
    this.inFlight++;
    this.out.write(buf, () => {
      done();
      this.inFlight--;
      if (this.resume && this.inFlight <= MAX_IN_FLIGHT) {
        const go = this.resume;
        this.resume = undefined;
        go();
      }
      if (this.inFlight === 0 && this.allWritten) this.allWritten();
    });
  }

  /** Writes the current buffer, even partly filled. */
  private flushCurrent(): void {
    if (!this.cur || this.used === 0) return;
    const full = this.cur;
    const part = full.subarray(0, this.used);
    this.cur = undefined;
    this.used = 0;
    this.send(part, () => this.pool.push(full));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (chunk.length >= BATCH / 4) {
      this.flushCurrent();
      this.send(chunk, () => this.seen(chunk));
    } else {
      let at = 0;
      while (at < chunk.length) {
        this.cur ??= this.pool.pop() ?? Buffer.allocUnsafeSlow(BATCH);
        const n = chunk.copy(this.cur, this.used, at);
        this.used += n;
        at += n;
        if (this.used === BATCH) this.flushCurrent();
      }
      this.seen(chunk);
    }
    // a write's callback comes once `out` has handed its bytes on: waiting for enough of them
    // bounds both the memory here and how far the reader may run ahead
    if (this.inFlight > MAX_IN_FLIGHT) this.resume = () => cb();
    else cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.flushCurrent();
    if (this.inFlight === 0) cb();
    else this.allWritten = () => cb();
  }
}
