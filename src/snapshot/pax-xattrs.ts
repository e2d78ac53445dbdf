// PaxXattrTap: a pass-through stage in front of tar-stream that keeps the raw bytes of PAX
// `SCHILY.xattr.*` values. tar-stream decodes PAX values as UTF-8, which mangles binary values such
// as `security.capability`; this tap follows the tar's block structure (only the headers: bodies
// are skipped by length) and records, per entry, the xattr values as bytes. Entries are keyed by
// the stream offset of their data, which tar-stream reports as `header.byteOffset`.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
/** tar-stream refuses PAX headers larger than this; so does the tap (it stops looking). */
const MAX_PAX = 1024 * 1024;
const XATTR = 'SCHILY.xattr.';
const ZERO_BLOCK = Buffer.alloc(BLOCK);

const octalOrBase256 = (b: Buffer): number => {
  if ((b[0] ?? 0) & 0x80) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + (b[i] ?? 0);
    return n;
  }
  const s = b.toString('latin1').replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  return s === '' ? 0 : parseInt(s, 8);
};

/** PAX records "LEN key=value\n", with values kept as bytes. */
export const parsePaxRecords = (buf: Buffer): Map<string, Buffer> => {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < buf.length) {
    const space = buf.indexOf(0x20, at);
    if (space < 0) break;
    const len = parseInt(buf.toString('latin1', at, space), 10);
    if (!(len > 0) || at + len > buf.length) break;
    const record = buf.subarray(space + 1, at + len - 1); // without the trailing newline
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    at += len;
  }
  return out;
};

export class PaxXattrTap extends Transform {
  /** data offset of an entry → its xattrs as raw bytes */
  readonly xattrs = new Map<number, Map<string, Buffer>>();
  private pos = 0;
  /** bytes still to skip (bodies and padding) */
  private skip = 0;
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private pax: Buffer | undefined;
  private paxFill = 0;
  private paxPadding = 0;
  private pending: Map<string, Buffer> | undefined;
  private lost = false;

  override _transform(chunk: Buffer, _e: BufferEncoding, done: TransformCallback): void {
    if (!this.lost) this.scan(chunk);
    this.pos += chunk.length;
    done(null, chunk);
  }

  private scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
      } else if (this.pax !== undefined) {
        const n = Math.min(this.pax.length - this.paxFill, chunk.length - i);
        chunk.copy(this.pax, this.paxFill, i, i + n);
        this.paxFill += n;
        i += n;
        if (this.paxFill === this.pax.length) {
          this.pending = parsePaxRecords(this.pax);
          this.pax = undefined;
          this.skip = this.paxPadding;
        }
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.pos + i);
        }
      }
    }
  }

  /** `dataStart`: stream offset just after this header block. */
  private onHeader(dataStart: number): void {
    const h = this.header;
    if (h.equals(ZERO_BLOCK)) return;
    const type = String.fromCharCode(h[156] ?? 0);
    const size = octalOrBase256(h.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) {
      this.lost = true;
      return;
    }
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x') {
      if (size > MAX_PAX) {
        this.lost = true;
        return;
      }
      this.pax = Buffer.alloc(size);
      this.paxFill = 0;
      this.paxPadding = padding;
      if (size === 0) {
        this.pending = new Map();
        this.pax = undefined;
      }
      return;
    }
    if (type === 'g' || type === 'L' || type === 'K') {
      this.skip = size + padding;
      return;
    }
    const records = this.pending;
    this.pending = undefined;
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of records ?? []) if (k.startsWith(XATTR)) xattrs.set(k.slice(XATTR.length), v);
    if (xattrs.size > 0) this.xattrs.set(dataStart, xattrs);
    const paxSize = records?.get('size');
    const bodySize = paxSize !== undefined ? Number(paxSize.toString('latin1')) : size;
    // tar-stream reads no body for a directory, whatever its size says
    const body = type === '5' ? 0 : bodySize;
    this.skip = body + ((BLOCK - (body % BLOCK)) % BLOCK);
  }

  /** The raw xattrs of the entry whose data starts at `byteOffset` (forgotten once taken). */
  xattrsAt(byteOffset: number | undefined): Map<string, Buffer> | undefined {
    if (byteOffset === undefined) return undefined;
    const found = this.xattrs.get(byteOffset);
    this.xattrs.delete(byteOffset);
    return found;
  }
}
