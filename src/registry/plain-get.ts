// PlainGet: a GET from a plain-HTTP registry (a manifest, a blob) over one net socket with a
// minimal HTTP/1.1 exchange instead of node:http. A warm re-pull makes exactly one request, and
// node:http (loading it, then the first run of its client, agent and parser) cost that request
// ~4 ms more than the same exchange over net; a cold 1 MB pull ~6 ms (bench/pull). http.ts uses
// it where it can: plain http, a GET without a body, headers of plain characters (https, the
// other methods and anything odd stay on node:http).
//
// The answer is an HttpResponse like node:http's: status, headers (names in lower case, repeats
// joined as node:http joins them), and the body as a stream that ends where the message ends
// (Content-Length, chunked, or the connection's close), is read with back-pressure (the socket
// pauses while the reader is behind), emits 'aborted' when the connection closes before the end,
// and is destroyed with the idle timeout's error. The request says `Connection: close`: the socket
// serves this one exchange (no keep-alive: on loopback or a LAN a connection costs little).
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { HttpResponse } from './http.js';

/** The longest response head accepted (node:http's default limit is 16 KiB). */
const MAX_HEAD = 64 * 1024;

/** Header values a request may carry as they are (no CR, LF, NUL or other controls but tab). */
const PLAIN = /^[\t\x20-\x7e\x80-\xff]*$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Whether plainGet can send these headers as they are; otherwise node:http sends (and judges) them. */
export const plainHeaders = (headers: Readonly<Record<string, string>>): boolean =>
  Object.entries(headers).every(([k, v]) => TOKEN.test(k) && PLAIN.test(v) && k.toLowerCase() !== 'host' && k.toLowerCase() !== 'connection');

export interface Head {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
}

/**
 * Parses a response head (status line and header lines, without the blank line). Pure.
 * Undefined for anything malformed: obsolete line folding, a header line without a colon, a
 * status line that is not HTTP/1.x NNN.
 */
export const parseHead = (text: string): Head | undefined => {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') return undefined;
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) return undefined;
    const value = line.slice(colon + 1).trim();
    const had = headers[name];
    // as node:http: set-cookie an array; a repeated content-length or content-type is refused
    // below or keeps the first; any other repeat joined with ", "
    if (name === 'set-cookie') headers[name] = [...((had as string[] | undefined) ?? []), value];
    else if (had === undefined) headers[name] = value;
    else if (name === 'content-length') {
      if (had !== value) return undefined;
    } else if (name !== 'content-type' && name !== 'location' && name !== 'authorization') headers[name] = `${had as string}, ${value}`;
  }
  return { status: Number(m[1]), headers };
};

/**
 * Decodes a chunked body as it arrives: `push` each piece of the connection's bytes; it returns
 * the body bytes found and whether the last chunk (and the trailers) have been seen. Throws on a
 * malformed chunk line.
 */
export class ChunkedDecoder {
  private pending = Buffer.alloc(0);
  private left = 0; // data bytes still to come in the current chunk
  private state: 'size' | 'data' | 'crlf' | 'trailers' | 'done' = 'size';

  push(input: Buffer): { data: Buffer[]; done: boolean } {
    const data: Buffer[] = [];
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, input]) : input;
    this.pending = Buffer.alloc(0);
    for (;;) {
      if (this.state === 'done') return { data, done: true };
      if (this.state === 'data') {
        if (buf.length === 0) return { data, done: false };
        const take = Math.min(this.left, buf.length);
        data.push(buf.subarray(0, take));
        buf = buf.subarray(take);
        this.left -= take;
        if (this.left === 0) this.state = 'crlf';
        continue;
      }
      const eol = buf.indexOf('\r\n');
      if (eol < 0) {
        if (buf.length > 4096) throw new Error('chunked encoding: a line over 4096 bytes');
        this.pending = Buffer.from(buf);
        return { data, done: false };
      }
      const line = buf.toString('latin1', 0, eol);
      buf = buf.subarray(eol + 2);
      if (this.state === 'crlf') {
        if (line !== '') throw new Error('chunked encoding: no CRLF after a chunk');
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) throw new Error(`chunked encoding: bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(m[1] as string, 16);
        this.state = this.left === 0 ? 'trailers' : 'data';
      } else if (line === '') this.state = 'done'; // the blank line after the trailers
    }
  }
}

/**
 * Sends `GET url` with `headers` and resolves with the response once its head has arrived; the
 * body streams on. Rejects (with the socket's error) when the connection fails, closes, or idles
 * `idleMs` before the head is complete; errors after that go to the body. `idleError` makes the
 * idle timeout's error.
 */
export const plainGet = (url: URL, headers: Readonly<Record<string, string>>, idleMs: number, idleError: () => Error): Promise<HttpResponse> =>
  new Promise((resolve, reject) => {
    const port = Number(url.port || 80);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const socket: Socket = connect({ host, port });
    socket.setNoDelay(true);
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''];
    socket.write(lines.join('\r\n'));

    let head: Buffer = Buffer.alloc(0);
    let body: Readable | undefined;
    let framing: { kind: 'length'; left: number } | { kind: 'chunked'; decoder: ChunkedDecoder } | { kind: 'close' } | undefined;
    let finished = false;

    // as node:http's IncomingMessage: a body cut short emits 'aborted', after it has been
    // destroyed with the reason when there is one (the idle timeout, a reset)
    const fail = (e: Error | undefined): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      if (body === undefined) reject(e ?? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      else {
        body.destroy(e);
        body.emit('aborted');
      }
    };
    const end = (): void => {
      finished = true;
      body?.push(null);
      socket.destroy();
    };
    // hands bytes to the body; the socket pauses while the body's reader is behind (read() resumes it)
    const give = (b: Buffer): void => {
      if (body !== undefined && !body.push(b)) socket.pause();
    };
    const feed = (chunk: Buffer): void => {
      if (body === undefined || framing === undefined || finished) return;
      if (framing.kind === 'close') give(chunk);
      else if (framing.kind === 'length') {
        const take = chunk.subarray(0, framing.left);
        framing.left -= take.length;
        if (take.length > 0) give(take);
        if (framing.left === 0) end();
      } else {
        let got: { data: Buffer[]; done: boolean };
        try {
          got = framing.decoder.push(chunk);
        } catch (e) {
          return fail(e as Error);
        }
        for (const d of got.data) give(d);
        if (got.done) end();
      }
    };

    if (idleMs > 0) socket.setTimeout(idleMs, () => fail(idleError()));
    socket.on('error', (e) => fail(e));
    socket.on('close', () => {
      if (finished) return;
      if (framing?.kind === 'close') return end();
      fail(undefined);
    });
    socket.on('data', (chunk: Buffer) => {
      if (body !== undefined) return feed(chunk);
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      for (;;) {
        const blank = head.indexOf('\r\n\r\n');
        if (blank < 0 ? head.length > MAX_HEAD : blank > MAX_HEAD) return fail(new Error(`response head over ${MAX_HEAD} bytes`));
        if (blank < 0) return;
        const parsed = parseHead(head.toString('latin1', 0, blank));
        const rest = head.subarray(blank + 4);
        if (parsed === undefined) return fail(new Error('malformed HTTP response'));
        if (parsed.status >= 100 && parsed.status < 200) {
          head = rest; // an interim answer (100 Continue): the real one follows
          continue;
        }
        const te = parsed.headers['transfer-encoding'];
        const cl = parsed.headers['content-length'];
        if (te !== undefined && !/^chunked$/i.test(String(te).trim())) return fail(new Error(`unsupported Transfer-Encoding ${String(te)}`));
        if (cl !== undefined && !/^\d{1,15}$/.test(String(cl))) return fail(new Error(`bad Content-Length ${String(cl)}`));
        framing =
          parsed.status === 204 || parsed.status === 304
            ? { kind: 'length', left: 0 }
            : te !== undefined
              ? { kind: 'chunked', decoder: new ChunkedDecoder() }
              : cl !== undefined
                ? { kind: 'length', left: Number(cl) }
                : { kind: 'close' };
        // a plain Readable the bytes are pushed into (lighter on a first run than a PassThrough)
        body = new Readable({ highWaterMark: 64 * 1024, read: () => void socket.resume() });
        const response = body;
        // its reader hears of a failure through 'aborted' (and its own 'error' listener, if any);
        // a body nobody reads any more (discarded) must not crash the process with it
        response.on('error', () => undefined);
        // a reader that stops early (a body over its limit) closes the connection
        response.on('close', () => {
          if (!finished) {
            finished = true;
            socket.destroy();
          }
        });
        resolve({ status: parsed.status, headers: parsed.headers, url, body: response as unknown as HttpResponse['body'] });
        if (framing.kind === 'length' && framing.left === 0) end();
        else if (rest.length > 0) feed(rest);
        return;
      }
    });
  });
