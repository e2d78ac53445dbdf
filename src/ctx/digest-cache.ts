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
// digest names (src/ctx/segment.ts). What can fool it: the system clock set back by more than
// RACY_MS, and writes through a shared mmap that the kernel has not stamped yet; both fool
// BuildKit and git too (and tsd-build trusts the record for its cache keys: docs/ctx.md).
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A file's ctime must be this much older than the run for its digest to be learned. */
export const RACY_MS = 2000;
/** Cache files kept (one per context directory), the most recently written. */
export const KEEP = 32;
const MAGIC = Buffer.from('tsd-ctx-digests2');

/** What identifies a file's bytes without reading them (from lstat or fstat). */
export interface FileKey {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
}

/** A record: a file's path, its key and its sha256 (64 hex digits). */
interface Learned extends FileKey {
  readonly path: string;
  readonly hex: string;
}

// The file: MAGIC, the number of records N (u32 LE, 4 bytes of padding), N keys as five
// little-endian doubles each (dev, ino, size, mtimeMs, ctimeMs), then N texts `<64 hex><path>`,
// each ended by a NUL (a path may hold a newline, never a NUL). The keys are one array and the
// texts one string split once: decoding 20,000 records one by one cost ~100 ms of a run.
const FIELDS = 5;
const KEYS_AT = MAGIC.length + 8;

interface Decoded {
  readonly keys: Float64Array;
  readonly texts: readonly string[];
  /** record index by path */
  readonly index: ReadonlyMap<string, number>;
}

const EMPTY: Decoded = { keys: new Float64Array(0), texts: [], index: new Map() };

/** The records of a cache file; anything malformed is an empty cache. */
const decode = (data: Buffer): Decoded => {
  if (data.length < KEYS_AT || !data.subarray(0, MAGIC.length).equals(MAGIC)) return EMPTY;
  const n = data.readUInt32LE(MAGIC.length);
  const textAt = KEYS_AT + n * FIELDS * 8;
  if (textAt > data.length) return EMPTY;
  // copied out: a Float64Array view needs an aligned offset, which a Buffer does not promise
  const keys = new Float64Array(n * FIELDS);
  new Uint8Array(keys.buffer).set(data.subarray(KEYS_AT, textAt));
  const texts = data.toString('utf8', textAt).split('\0');
  if (texts.length !== n + 1) return EMPTY;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set(texts[i]!.slice(64), i);
  return { keys, texts, index };
};

const encode = (records: readonly Learned[]): Buffer => {
  const head = Buffer.alloc(KEYS_AT);
  MAGIC.copy(head);
  head.writeUInt32LE(records.length, MAGIC.length);
  const keys = new Float64Array(records.length * FIELDS);
  let text = '';
  records.forEach((r, i) => {
    keys.set([r.dev, r.ino, r.size, r.mtimeMs, r.ctimeMs], i * FIELDS);
    text += `${r.hex}${r.path}\0`;
  });
  return Buffer.concat([head, new Uint8Array(keys.buffer), Buffer.from(text)]);
};

export class DigestCache {
  /** the records this run used (an index into `known`) or learned: what the next run gets */
  private readonly next = new Map<string, number | Learned>();
  private changed = false;

  private constructor(
    private readonly file: string | undefined,
    private readonly known: Decoded,
    /** the time the run started, in ms since the epoch */
    private readonly started: number,
  ) {}

  /** A cache that knows nothing and keeps nothing (no store, or the cache turned off). */
  static none(): DigestCache {
    return new DigestCache(undefined, EMPTY, 0);
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
    const i = this.known.index.get(path);
    if (i === undefined) return undefined;
    const k = this.known.keys;
    const at = i * FIELDS;
    if (k[at + 4] !== key.ctimeMs || k[at + 3] !== key.mtimeMs || k[at + 2] !== key.size || k[at + 1] !== key.ino || k[at] !== key.dev) return undefined;
    this.next.set(path, i);
    return this.known.texts[i]!.slice(0, 64);
  }

  /** Keeps the digest of `path` whose bytes were read with stat `key`, if `key` is old enough. */
  learn(path: string, key: FileKey, hex: string): void {
    if (this.file === undefined || !(key.ctimeMs <= this.started - RACY_MS)) return;
    const { dev, ino, size, mtimeMs, ctimeMs } = key;
    this.next.set(path, { path, dev, ino, size, mtimeMs, ctimeMs, hex });
    this.changed = true;
  }

  /** Writes what this run used and learned (files gone from the context are dropped): temp file, rename. */
  save(): void {
    if (this.file === undefined || (!this.changed && this.next.size === this.known.index.size)) return;
    const { keys, texts } = this.known;
    const records = [...this.next].map(([path, r]): Learned => {
      if (typeof r !== 'number') return r;
      const at = r * FIELDS;
      return { path, dev: keys[at]!, ino: keys[at + 1]!, size: keys[at + 2]!, mtimeMs: keys[at + 3]!, ctimeMs: keys[at + 4]!, hex: texts[r]!.slice(0, 64) };
    });
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(temp, encode(records));
      renameSync(temp, this.file);
      prune(dirname(this.file));
    } catch {
      // a store we cannot write to only means hashing again next time
    }
  }
}

/**
 * Keeps the KEEP cache files written last and removes the others: every new context directory
 * (a CI checkout, a test's temporary tree) gets a file, which nothing else would ever remove.
 */
const prune = (dir: string): void => {
  const files = readdirSync(dir).flatMap((name) => {
    try {
      return [{ name, mtime: statSync(join(dir, name)).mtimeMs }];
    } catch {
      return []; // removed meanwhile by another run
    }
  });
  if (files.length <= KEEP) return;
  files.sort((a, b) => b.mtime - a.mtime);
  for (const f of files.slice(KEEP)) rmSync(join(dir, f.name), { force: true });
};
