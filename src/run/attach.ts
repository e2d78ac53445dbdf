// Attach: a running supervised container's output from now on, and its stdin when it was started
// with -i or -t, until it exits or the user detaches (ctrl-p ctrl-q, as Docker) — detaching leaves
// it running. Used by `tsd-run attach C` and by a foreground run that runs supervised (with -p,
// -a, or -i and -t: detaching needs a container that outlives us).
//
// Output is followed in the container's log, where the container itself (or, for a pty, the
// supervisor) writes it: attaching adds no process between the container and its log, and any
// number of clients can attach. Input goes to the supervisor, which keeps the pty master (-t) or
// the write end of the container's stdin pipe (-i), over an abstract unix socket named after the
// container (`\0tsd-attach/ID`, same uid only), in frames: 'd' LEN16 BYTES (input), 'w' ROWS16
// COLS16 (the terminal's size), 'e' (end of input).
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { ReadStream } from 'node:tty';
import * as E from 'fp-ts/lib/Either.js';
import type { CommandResult, Io } from '../cli/io.js';
import { ExitCode, failure } from '../failure.js';
import type { StorePaths } from '../store/layout.js';
import { files, type ContainerRecord } from './container.js';
import { killContainer, observe } from './lifecycle.js';
import { printLogs } from './logs.js';

export const attachSocket = (id: string): string => `\0tsd-attach/${id}`;

export { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';

/**
 * A scanner for the detach sequence across chunks of input. Bytes of a partial match are held
 * back until the match fails (then sent, as typed) or completes (then dropped). Pure state.
 */
export const detachScanner = (keys: readonly number[]) => {
  let matched = 0;
  return (chunk: Uint8Array): { readonly forward: Buffer; readonly detached: boolean } => {
    const out: number[] = [];
    for (const b of chunk) {
      if (b === keys[matched]) {
        if (++matched === keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      if (matched > 0) {
        out.push(...keys.slice(0, matched));
        matched = 0;
      }
      if (b !== keys[0]) out.push(b);
      else if ((matched = 1) === keys.length) return { forward: Buffer.from(out), detached: true };
    }
    return { forward: Buffer.from(out), detached: false };
  };
};

/** Input frames for the supervisor. Pure. */
export const dataFrames = (data: Uint8Array): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += 4096) {
    const part = data.subarray(i, Math.min(data.length, i + 4096));
    const head = Buffer.from([0x64, part.length >> 8, part.length & 0xff]);
    out.push(Buffer.concat([head, part]));
  }
  return out;
};
export const sizeFrame = (rows: number, cols: number): Buffer => Buffer.from([0x77, (rows >> 8) & 0xff, rows & 0xff, (cols >> 8) & 0xff, cols & 0xff]);
export const END_FRAME = Buffer.from([0x65]);

export interface AttachOptions {
  /** send our stdin (when the container has -i or -t) */
  readonly stdin: boolean;
  readonly detachKeys: readonly number[];
  /** forward SIGINT/SIGTERM/… to the container (not for a pty: its ^C is a byte like any other) */
  readonly sigProxy: boolean;
  /** from the first byte of the log (a run that has just started it), else from now */
  readonly fromStart: boolean;
  /** the end of our stdin ends the container's (a run's -i, as Docker's stdin-once; not attach) */
  readonly closeStdin: boolean;
  /** which outputs to print (a run's `-a`); both when absent. The others stay in the logs only */
  readonly outputs?: { readonly stdout: boolean; readonly stderr: boolean };
  /** called when the user detached (keys, or a signal to us with a pty), before attach returns 0 */
  readonly onDetach?: () => Promise<void>;
}

/** Where an output nobody attached to goes: nowhere (the container's log has it). */
const nowhere = (): Writable => new Writable({ write: (_c, _e, done) => done() });

const connectTo = (path: string): Promise<Socket | undefined> =>
  new Promise((done) => {
    const s = connect({ path });
    s.once('connect', () => done(s));
    s.once('error', () => done(undefined));
  });

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Attaches until the container exits (its exit code) or the user detaches (0). */
export const attachTo = async (p: StorePaths, r: ContainerRecord, o: AttachOptions, io: Io): Promise<CommandResult> => {
  const s = await observe(p, r);
  // a run attaching to the container it has just started: a quick one may be done already
  const over = s.status !== 'running' && s.status !== 'restarting';
  if (over && !o.fromStart) return E.left(failure('NotRunning', `container ${r.name}: is not running; start it first`, ExitCode.user));
  let withInput = !over && o.stdin && (r.tty || r.interactive === true);
  let sock: Socket | undefined;
  if (withInput) {
    sock = await connectTo(attachSocket(r.id));
    // no socket: the supervisor is gone, or a quick container ended (and its supervisor with it)
    // since we looked: then its output and exit code are all there is to attach to
    if (!sock && ['running', 'restarting'].includes((await observe(p, r)).status)) return E.left(failure('AttachFailed', `attach ${r.name}: its supervisor does not take input (not running, or started before attach existed)`, ExitCode.tool));
    if (!sock) withInput = false;
    sock?.on('error', () => undefined);
  }
  let detached = false;
  const stdin = io.stdin as ReadStream;
  const raw = withInput && r.tty && io.isTTY.stdin && typeof stdin.setRawMode === 'function';
  if (raw) stdin.setRawMode(true);
  const scan = detachScanner(o.detachKeys);
  const onData = (chunk: Buffer) => {
    // the detach keys work when the container has a terminal (as Docker's attach), piped or typed
    const { forward, detached: d } = r.tty ? scan(chunk) : { forward: chunk, detached: false };
    for (const f of dataFrames(forward)) sock?.write(f);
    if (d) detached = true;
  };
  const onEnd = () => {
    if (o.closeStdin) sock?.write(END_FRAME);
  };
  const out = io.stdout as NodeJS.WriteStream;
  const onResize = () => {
    if (out.isTTY && out.rows > 0) sock?.write(sizeFrame(out.rows, out.columns));
  };
  if (withInput) {
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
    if (r.tty) {
      onResize();
      out.on('resize', onResize);
    }
  }
  // a terminal's ^C: to the container (sig-proxy), or, with a pty but no input, a detach
  const handlers = FORWARDED.map((sig) => [sig, () => (o.sigProxy && !r.tty ? void killContainer(p, r, sig) : void (detached = true))] as const);
  for (const [sig, h] of handlers) process.on(sig, h);
  const f = files(p, r.id);
  // attach ends with the run it attached to, as Docker's: exited, or restarting (a restart policy
  // starts a new run, which `attach` can join again)
  const run = s.startedAt;
  let last = s;
  const ended = async () => {
    last = await observe(p, r);
    return last.status === 'exited' || last.status === 'restarting' || (last.startedAt !== undefined && last.startedAt !== run);
  };
  try {
    await printLogs({ stdout: f.stdout, stderr: f.stderr, stdoutIdx: f.stdoutIdx, stderrIdx: f.stderrIdx }, o.outputs?.stdout === false ? nowhere() : io.stdout, o.outputs?.stderr === false ? nowhere() : io.stderr, {
      timestamps: false,
      fromEnd: !o.fromStart,
      finished: async () => detached || (await ended()),
    });
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    if (withInput) {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      out.off('resize', onResize);
      if (raw) stdin.setRawMode(false);
      sock?.end();
      sock?.destroy();
    }
  }
  if (detached) {
    await o.onDetach?.();
    return E.right(0);
  }
  if (last.status === 'exited' || last.status === 'restarting') return E.right(last.exitCode ?? ExitCode.tool);
  // a new run had already replaced the one we watched: its code is gone (state.json keeps the
  // latest run only)
  return E.left(failure('ExitUnknown', `attach ${r.name}: the container restarted before its exit code could be read`, ExitCode.tool));
};
