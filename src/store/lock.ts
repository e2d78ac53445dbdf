// Lock: an exclusive lock file shared by every process on the machine, that survives `kill -9`
// of its holder. The file is created with O_EXCL and names its holder (pid and the process's
// start time, so a reused pid is not mistaken for the holder). A waiter that finds the holder
// dead breaks the lock by renaming the file to a unique name first and checking it renamed the
// very file it judged stale, so two waiters cannot both break it or break a fresh lock.
import { appendFileSync, closeSync, mkdirSync, openSync, promises as fs, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, type Failure } from '../failure.js';

// node:crypto is loaded on first use (a lock taken), not at start-up
const randomBytes = (n: number): Buffer => process.getBuiltinModule('node:crypto').randomBytes(n);

export interface LockHolder {
  readonly pid: number;
  /** the process's start time in clock ticks since boot (/proc/PID/stat field 22) */
  readonly start: string;
  readonly nonce: string;
}

const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: fields count from the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
};

let selfStart: string | undefined;
/** This process as a holder of locks and leases. */
export const currentProcess = (): { pid: number; start: string } => {
  selfStart ??= startTimeOf(process.pid) ?? '0';
  return { pid: process.pid, start: selfStart };
};

/** True while a process with this pid runs (for temp files that carry only the pid). */
export const pidAlive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** True while the process that wrote `holder` still runs (same pid, same start time). */
export const isAlive = (holder: { pid: number; start: string }): boolean => {
  const start = startTimeOf(holder.pid);
  return start !== undefined && start === holder.start;
};

const parseHolder = (text: string): LockHolder | undefined => {
  try {
    const u = JSON.parse(text) as LockHolder;
    return typeof u.pid === 'number' && typeof u.start === 'string' && typeof u.nonce === 'string' ? u : undefined;
  } catch {
    return undefined;
  }
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A lock file that is still empty after this long was left by a holder killed while creating it. */
const EMPTY_LOCK_GRACE_MS = 5_000;

/** Breaks a lock whose holder is dead; true when the caller should try to acquire again. */
const breakStale = async (path: string, staleText: string): Promise<void> => {
  const aside = `${path}.stale.${randomBytes(6).toString('hex')}`;
  try {
    await fs.rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // another waiter broke it first
    throw e;
  }
  const taken = await fs.readFile(aside, 'utf8').catch(() => '');
  if (taken !== staleText) {
    // The stale lock was broken and re-taken between our read and our rename: put the live one back.
    await fs.link(aside, path).catch(() => undefined);
  }
  await fs.unlink(aside).catch(() => undefined);
};

export interface Lock {
  readonly path: string;
  readonly holder: LockHolder;
  /** how long acquiring it waited, in milliseconds */
  readonly waitedMs: number;
}

/**
 * Opt-in record of lock waits, for the concurrency suite and anyone measuring contention:
 * with TSD_LOCK_STATS=FILE every acquisition appends one line `WAITED_MS LOCK_NAME PID` to FILE.
 * A failed append (disk full, bad path) is ignored: statistics never fail an operation.
 */
const recordWait = (path: string, waitedMs: number): void => {
  const file = process.env.TSD_LOCK_STATS;
  if (!file) return;
  try {
    appendFileSync(file, `${waitedMs} ${basename(path)} ${process.pid}\n`);
  } catch {
    // ignored on purpose
  }
};

/**
 * Creates the lock file with its holder's text, or says it exists already (false). Synchronous:
 * three small calls, cheaper than as many thread-pool round trips (each lock a pull, tag or build
 * takes, uncontended, costs ~0.1 ms instead of ~1 ms); only waiting for a holder is asynchronous.
 */
const tryCreate = (path: string, text: string): boolean => {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'ENOENT') throw e;
    mkdirSync(dirname(path), { recursive: true });
    return tryCreate(path, text);
  }
  try {
    const bytes = Buffer.from(text);
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
  } catch (e) {
    // a lock file without its holder (disk full) would hold everyone off for the grace time
    try {
      closeSync(fd);
      unlinkSync(path);
    } catch {}
    throw e;
  }
  closeSync(fd);
  return true;
};

export const acquireLock = async (path: string, timeoutMs = 60_000): Promise<Lock> => {
  const holder: LockHolder = { ...currentProcess(), nonce: randomBytes(8).toString('hex') };
  const text = JSON.stringify(holder);
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(path, text)) {
      const waitedMs = Date.now() - started;
      recordWait(path, waitedMs);
      return { path, holder, waitedMs };
    }
    const current = await fs.readFile(path, 'utf8').catch(() => undefined);
    if (current !== undefined) {
      const other = parseHolder(current);
      const stale =
        other !== undefined
          ? !isAlive(other)
          : Date.now() - ((await fs.stat(path).catch(() => undefined))?.mtimeMs ?? Date.now()) > EMPTY_LOCK_GRACE_MS;
      // A holder that released and exited after our read is not stale: its lock file is gone or
      // is a new holder's. Breaking on the old read renamed a live lock away, and a third process
      // could take the free name in the moment before it was put back: two holders, a lost tag.
      // So the file must still hold the very text judged stale (only another breaker can change it now).
      if (stale && (await fs.readFile(path, 'utf8').catch(() => undefined)) === current) {
        await breakStale(path, current);
        continue;
      }
    }
    if (Date.now() - started > timeoutMs) {
      throw failure('LockTimeout', `lock ${path}: still held by another process after ${Math.round(timeoutMs / 1000)} s`, ExitCode.tool, true);
    }
    await sleep(Math.min(50, 1 + attempt * 2) * (0.5 + Math.random()));
  }
};

/** Removes the lock file if it is still ours (two small synchronous calls, see tryCreate). */
export const releaseLock = async (lock: Lock): Promise<void> => {
  try {
    if (readFileSync(lock.path, 'utf8') === JSON.stringify(lock.holder)) unlinkSync(lock.path);
  } catch {
    /* gone already, or broken by a waiter that judged us dead */
  }
};

/** Runs `task` while holding the lock at `path`; the lock is released whatever the task returns. */
export const withLock =
  (path: string, timeoutMs?: number) =>
  <A>(task: TE.TaskEither<Failure, A>): TE.TaskEither<Failure, A> =>
  async () => {
    let lock: Lock;
    try {
      lock = await acquireLock(path, timeoutMs);
    } catch (e) {
      return { _tag: 'Left', left: fromError(`lock ${path}`)(e) };
    }
    try {
      return await task();
    } finally {
      await releaseLock(lock);
    }
  };
