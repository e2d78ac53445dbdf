// Progress: what a build tells a person on stderr. Off a terminal, plain lines like BuildKit's
// `--progress=plain` ("#3 [2/4] RUN make", "#3 CACHED", "#3 DONE 0.4s", the step's output
// prefixed "#3 "); on a terminal, the same steps as a live view that rewrites itself (a line per
// step with its state and time); `--progress=json`, one ProgressMessage per event. The builder
// only calls the Progress interface; the shell picks the renderer.
import type { Writable } from 'node:stream';
import { Writable as W } from 'node:stream';
import { formatMessage } from '../message.js';

export interface Progress {
  /** a step starts; returns its number */
  readonly start: (name: string) => number;
  readonly cached: (n: number) => void;
  readonly done: (n: number) => void;
  readonly error: (n: number, message: string) => void;
  /** the step's command output */
  readonly output: (n: number) => Writable;
  readonly finish: () => void;
}

export type ProgressMode = 'plain' | 'tty' | 'json' | 'quiet';

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

export const makeProgress = (mode: ProgressMode, out: Writable): Progress => {
  let next = 1;
  const started = new Map<number, number>();
  const names = new Map<number, string>();
  const state = new Map<number, string>();
  const lineOut = (n: number, emit: (line: string) => void): Writable => {
    let pending = '';
    return new W({
      write(chunk: Buffer, _e, done) {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) emit(l);
        done();
      },
      final(done) {
        if (pending) emit(pending);
        done();
      },
    });
    void n;
  };
  const event = (event: string, fields: Record<string, unknown>) =>
    out.write(formatMessage({ v: 1, type: 'progress', tool: 'tsd-build', event, ...fields }));
  let drawn = 0;
  const redraw = () => {
    if (mode !== 'tty') return;
    const rows = [...names.keys()].slice(-12).map((n) => {
      const t = started.get(n);
      const s = state.get(n) ?? 'running';
      const time = s === 'running' && t !== undefined ? secs(Date.now() - t) : s;
      return `\x1b[2K => ${names.get(n)!.slice(0, 100)}  ${time}`;
    });
    out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ''}${rows.join('\n')}\n`);
    drawn = rows.length;
  };
  const timer = mode === 'tty' ? setInterval(redraw, 200) : undefined;
  timer?.unref();
  return {
    start: (name) => {
      const n = next++;
      started.set(n, Date.now());
      names.set(n, name);
      if (mode === 'plain') out.write(`#${n} ${name}\n`);
      else if (mode === 'json') event('step', { step: n, name });
      redraw();
      return n;
    },
    cached: (n) => {
      state.set(n, 'CACHED');
      if (mode === 'plain') out.write(`#${n} CACHED\n\n`);
      else if (mode === 'json') event('cached', { step: n });
      redraw();
    },
    done: (n) => {
      const ms = Date.now() - (started.get(n) ?? Date.now());
      if (state.get(n) === 'CACHED') return;
      state.set(n, `DONE ${secs(ms)}`);
      if (mode === 'plain') out.write(`#${n} DONE ${secs(ms)}\n\n`);
      else if (mode === 'json') event('done', { step: n, ms });
      redraw();
    },
    error: (n, message) => {
      state.set(n, 'ERROR');
      if (mode === 'plain') out.write(`#${n} ERROR: ${message}\n`);
      else if (mode === 'json') event('error', { step: n, message });
      redraw();
    },
    output: (n) =>
      lineOut(n, (line) => {
        const t = secs(Date.now() - (started.get(n) ?? Date.now()));
        if (mode === 'plain') out.write(`#${n} ${t} ${line}\n`);
        else if (mode === 'json') event('log', { step: n, line });
      }),
    finish: () => {
      if (timer) clearInterval(timer);
      redraw();
    },
  };
};
