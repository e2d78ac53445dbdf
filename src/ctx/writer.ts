// Writer: the end of the pipeline. Encoders finish segments in any order; the writer hands their
// output buffers to the sink (stdout) in segment order, one large write per buffer, and gives
// each buffer back once the sink has taken its bytes. A segment that stopped early stops the
// writer after the bytes before the failing entry.
//
// The sink is a blocking file descriptor written from libuv's thread pool when there is one, so
// the pipe is refilled while the JavaScript thread encodes (an event-loop stream only writes
// between the encoder's turns, and a 64 KiB pipe drains in microseconds), else a Writable stream.
import { write as fsWrite } from 'node:fs';
import type { Writable } from 'node:stream';
import type { SegmentFailure } from './segment.js';

/** Where the tar goes: bytes are handed over in order; `done` once they are taken. */
export interface Sink {
  readonly write: (bytes: Buffer, done: (err?: Error | null) => void) => void;
}

export const streamSink = (out: Writable, onError: (e: Error) => void): Sink => {
  out.on('error', onError);
  return { write: (bytes, done) => void out.write(bytes, done) };
};

/** Writes on a blocking descriptor, one write at a time (the thread pool would reorder them). */
export const fdSink = (fd: number): Sink => {
  const queue: { bytes: Buffer; done: (err?: Error | null) => void }[] = [];
  let busy = false;
  const next = (): void => {
    const item = queue.shift();
    if (item === undefined) {
      busy = false;
      return;
    }
    busy = true;
    let at = 0;
    const go = (): void =>
      fsWrite(fd, item.bytes, at, item.bytes.length - at, null, (err, n) => {
        if (err) {
          item.done(err);
          for (const rest of queue.splice(0)) rest.done(err);
          busy = false;
          return;
        }
        at += n;
        if (at < item.bytes.length) return go();
        item.done();
        next();
      });
    go();
  };
  return {
    write: (bytes, done) => {
      queue.push({ bytes, done });
      if (!busy) next();
    },
  };
};

export interface Piece {
  readonly bytes?: Buffer;
  /** the segment's last piece */
  readonly end: boolean;
  readonly failure?: SegmentFailure;
  /** called once the bytes are written, or dropped after a failure */
  readonly done?: () => void;
}

export class SegmentWriter {
  /** the segment being written; every segment before it is handed to the sink */
  private next = 0;
  private readonly early = new Map<number, Piece[]>();
  private writing = 0;
  /** the failure that stopped the writer */
  stopped: SegmentFailure | undefined;
  /** an error of the sink */
  error: Error | undefined;

  constructor(private readonly out: Sink, private readonly changed: () => void) {}

  /** the sink failed outside a write */
  fail(e: Error): void {
    this.error ??= e;
    this.changed();
  }

  /** segments fully handed to the sink */
  get segments(): number {
    return this.next;
  }

  /** writes not yet taken by the sink */
  get pending(): number {
    return this.writing;
  }

  add(id: number, piece: Piece): void {
    if (id !== this.next) {
      const list = this.early.get(id);
      if (list) list.push(piece);
      else this.early.set(id, [piece]);
      return;
    }
    this.put(piece);
    while (this.early.has(this.next)) {
      const list = this.early.get(this.next)!;
      this.early.delete(this.next);
      const id = this.next;
      for (const p of list) this.put(p);
      // a segment whose end has not come yet: keep waiting for the rest of its pieces
      if (this.next === id) break;
    }
  }

  private put(p: Piece): void {
    if (this.stopped !== undefined || this.error !== undefined) {
      p.done?.();
      return;
    }
    if (p.bytes !== undefined && p.bytes.length > 0) {
      this.writing++;
      this.out.write(p.bytes, (err) => {
        this.writing--;
        if (err) this.error ??= err;
        p.done?.();
        this.changed();
      });
    } else p.done?.();
    if (p.failure !== undefined) this.stopped = p.failure;
    if (p.end) {
      this.next++;
      this.changed();
    }
  }
}
