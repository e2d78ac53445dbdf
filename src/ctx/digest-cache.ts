// DigestCache: the sha256 of each file of a context as the last run of tsd-ctx on that directory
// computed it, keyed by what the file's stat said then (device, inode, size, mtime, ctime), so an
// unchanged file is not hashed again (BuildKit's content-hash cache does the same). It is kept in
// the store, one file per context directory: `$ROOT/ctx-digests/<sha256 of the directory's
// absolute path>`.
//
// Why a match can be trusted: every change to a file's bytes (write, truncate, a new file on the
// same inode) sets its ctime to the current time, and nobody can set a ctime by hand. A digest is
// only learned for a file whose ctime is at least RACY_MS before the run started, so any change
// after the walk's lstat gets a ctime different from the one learned, even on a file system whose
// clock ticks coarsely (git's "racily clean" rule). A hit is used only when the stat taken after
// the file's bytes were read still shows the same ctime, so the bytes sent are the bytes the
// digest names (src/ctx/segment.ts); the builder checks them against it anyway. What can fool it:
// the system clock set back by more than RACY_MS, and writes through a shared mmap that the kernel
// has not stamped yet; both fool BuildKit and git too.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A file's ctime must be this much older than the run for its digest to be learned. */
export const RACY_MS = 2000;
const MAGIC = Buffer.from('tsd-ctx-digests1');

/** What identifies a file's bytes without reading them (from lstat or fstat). */
export interface FileKey {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

// One record per file, little-endian: the five numbers of its key as doubles, its sha256 (32
// bytes), the length of its path (u32) and the path (UTF-8). Binary, because reading 20,000 text
// records cost ~100 ms of a cold start where these take a few.
const KEY_FIELDS = ['dev', 'ino', 'size', 'mtimeMs', 'ctimeMs'] as const;
const SHA_AT = 40;
const LEN_AT = 72;
const PATH_AT = 76;

const record = (path: string, key: FileKey, hex: string): Buffer => {
  const name = Buffer.from(path);
  const r = Buffer.allocUnsafe(PATH_AT + name.length);
  KEY_FIELDS.forEach((f, i) => r.writeDoubleLE(key[f], i * 8));
  r.write(hex, SHA_AT, 32, 'hex');
  r.writeUInt32LE(name.length, LEN_AT);
  name.copy(r, PATH_AT);
  return r;
};

/** The records of a cache file by path (a record cut short ends it: what came before is kept). */
const decode = (data: Buffer): Map<string, Buffer> => {
  const out = new Map<string, Buffer>();
  if (data.length < MAGIC.length || !data.subarray(0, MAGIC.length).equals(MAGIC)) return out;
  let at = MAGIC.length;
  while (at + PATH_AT <= data.length) {
    const end = at + PATH_AT + data.readUInt32LE(at + LEN_AT);
    if (end > data.length) break;
    out.set(data.toString('utf8', at + PATH_AT, end), data.subarray(at, end));
    at = end;
  }
  return out;
};

export class DigestCache {
  /** the records this run used or learned: what the next run gets */
  private readonly next = new Map<string, Buffer>();
  private changed = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly known: ReadonlyMap<string, Buffer>,
    /** the time the run started, in ms since the epoch */
    private readonly started: number,
  ) {}

  /** A cache that knows nothing and keeps nothing (no store, or the cache turned off). */
  static none(): DigestCache {
    return new DigestCache(undefined, new Map(), 0);
  }

  /**
   * The cache of context directory `root` (absolute) in store `storeRoot`. A store that does not
   * exist is not created, and a cache file that is missing or unreadable is an empty cache: the
   * cache only ever saves work.
   */
  static open(storeRoot: string, root: string, started: number): DigestCache {
    try {
      if (!statSync(storeRoot).isDirectory()) return DigestCache.none();
    } catch {
      return DigestCache.none();
    }
    const file = join(storeRoot, 'ctx-digests', createHash('sha256').update(root).digest('hex'));
    let data = Buffer.alloc(0);
    try {
      data = readFileSync(file);
    } catch {
      // no cache yet
    }
    return new DigestCache(file, decode(data), started);
  }

  /** The digest learned for `path` when its stat is still `key`. */
  lookup(path: string, key: FileKey): string | undefined {
    const r = this.known.get(path);
    if (r === undefined || !KEY_FIELDS.every((f, i) => r.readDoubleLE(i * 8) === key[f])) return undefined;
    this.next.set(path, r);
    return r.toString('hex', SHA_AT, LEN_AT);
  }

  /** Keeps the digest of `path` whose bytes were read with stat `key`, if `key` is old enough. */
  learn(path: string, key: FileKey, hex: string): void {
    if (this.file === undefined || !(key.ctimeMs <= this.started - RACY_MS)) return;
    this.next.set(path, record(path, key, hex));
    this.changed = true;
  }

  /** Writes what this run used and learned (files gone from the context are dropped): temp file, rename. */
  save(): void {
    if (this.file === undefined || (!this.changed && this.next.size === this.known.size)) return;
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(temp, Buffer.concat([MAGIC, ...this.next.values()]));
      renameSync(temp, this.file);
    } catch {
      // a store we cannot write to only means hashing again next time
    }
  }
}
