// Shared by the hostile-input suites: spawning a tool while watching its peak memory (VmHWM), the
// one-line error check, and a pool that runs cases a few at a time.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { REPO } from '../support/tsd.js';

export interface Watched {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** the peak resident set of the process, in MiB (VmHWM, polled) */
  readonly peakMiB: number;
  readonly ms: number;
}

/** Runs `cmd` (a bin/tsd-* name or an absolute path) and polls its VmHWM until it exits. */
export const watched = (cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; input?: Buffer | string; timeoutMs?: number } = {}): Promise<Watched> =>
  new Promise((done, fail) => {
    const started = Date.now();
    const child = spawn(cmd.startsWith('/') ? cmd : join(REPO, 'bin', cmd), args, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let peak = 0;
    const poll = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {}
    };
    const poller = setInterval(poll, 20);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', fail);
    child.on('exit', poll);
    child.on('close', (code, signal) => {
      clearInterval(poller);
      clearTimeout(timer);
      done({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), peakMiB: Math.round(peak), ms: Date.now() - started });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });

/** A refusal is one line on stderr naming the tool, no stack trace; success needs no check. */
export const assertClean = (what: string, r: { code: number; stderr: string }, tool: string): void => {
  if (r.code === 0) return;
  assert.ok(r.code !== 128, `${what}: killed (hang?) ${r.stderr}`);
  // tsd-run leaves a runtime failure (exec of the container's command) to runc, which prints its
  // own one line on the container's stderr (src/run/run-command.ts): no prefix there
  const prefix = tool === 'tsd-run' ? `(${tool}: )?` : `${tool}: `;
  assert.ok(new RegExp(`^${prefix}[^\\n]+\\n$`).test(r.stderr), `${what}: one line from ${tool}: ${JSON.stringify(r.stderr.slice(0, 2000))}`);
  assert.not.match(r.stderr, /\n\s+at |TypeError|RangeError|ReferenceError|Maximum call stack/, `${what}: no stack trace`);
};

/** Runs `f` over `items`, `n` at a time, in order of start. */
export const pool = async <T, R>(items: readonly T[], n: number, f: (t: T, i: number) => Promise<R>): Promise<R[]> => {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await f(items[i] as T, i);
      }
    }),
  );
  return out;
};

export const firstLine = (s: string): string => s.trim().split('\n')[0] ?? '';
