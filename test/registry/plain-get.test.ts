// plain-get.ts: the response head parser and chunked decoder (tables), and the exchange against
// a raw TCP server that answers with exact bytes: lengths, chunks split anywhere, a body that
// ends with the connection, one cut short, a server that never answers, a head too big.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isFailure } from '../../src/failure.js';
import { readBody, send } from '../../src/registry/http.js';
import { ChunkedDecoder, parseHead, plainHeaders, plainGet } from '../../src/registry/plain-get.js';

test('response heads', () => {
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDocker-Content-Digest: sha256:x'), { status: 200, headers: { 'content-length': '5', 'docker-content-digest': 'sha256:x' } });
  assert.equal(parseHead('HTTP/1.0 404'), { status: 404, headers: {} });
  assert.equal(parseHead('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer a\r\nwww-authenticate: Basic b')?.headers['www-authenticate'], 'Bearer a, Basic b');
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nSet-Cookie: b')?.headers['set-cookie'], ['a', 'b']);
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5')?.headers['content-length'], '5');
  for (const bad of ['HTTP/2 200', 'HTTP/1.1 20 OK', 'ICY 200 OK', 'HTTP/1.1 200 OK\r\nX: a\r\n folded', 'HTTP/1.1 200 OK\r\nno colon', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6', 'HTTP/1.1 200 OK\r\nBad Name: x']) {
    assert.is(parseHead(bad), undefined, bad);
  }
});

test('request headers it sends as they are, and those it leaves to node:http', () => {
  assert.ok(plainHeaders({ accept: 'a, b', authorization: 'Bearer x.y_z' }));
  assert.not.ok(plainHeaders({ authorization: 'Bearer x\r\nX-Evil: 1' }));
  assert.not.ok(plainHeaders({ 'bad name': 'x' }));
  assert.not.ok(plainHeaders({ host: 'elsewhere' }));
});

test('chunked bodies, whatever the pieces they arrive in', () => {
  const wire = Buffer.from('5;ext=1\r\nhello\r\n1\r\n \r\nB\r\nchunked bod\r\n0\r\nTrailer: x\r\n\r\n');
  for (let cut = 0; cut <= wire.length; cut++) {
    for (const step of [1, 3, wire.length]) {
      const d = new ChunkedDecoder();
      const out: Buffer[] = [];
      let done = false;
      const pieces = [wire.subarray(0, cut), ...Array.from({ length: Math.ceil((wire.length - cut) / step) }, (_, i) => wire.subarray(cut + i * step, cut + (i + 1) * step))];
      for (const p of pieces) {
        const r = d.push(p);
        out.push(...r.data);
        done ||= r.done;
      }
      assert.is(Buffer.concat(out).toString(), 'hello chunked bod', `cut ${cut} step ${step}`);
      assert.ok(done);
    }
  }
  assert.throws(() => new ChunkedDecoder().push(Buffer.from('zz\r\n')), /bad chunk size/);
  assert.throws(() => new ChunkedDecoder().push(Buffer.from('1\r\nab\r\n')), /no CRLF/);
  assert.is(new ChunkedDecoder().push(Buffer.from('3\r\nab')).done, false);
});

/** A TCP server that answers each connection with `answer(request)`: pieces sent 5 ms apart, then maybe a close. */
const rawServer = async (answer: (request: string) => { pieces: (string | Buffer)[]; close: boolean }) => {
  const seen: string[] = [];
  const server = net.createServer((c) => {
    let req = '';
    c.on('data', async (d) => {
      req += d.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      seen.push(req);
      const { pieces, close } = answer(req);
      for (const p of pieces) {
        c.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (close) c.end();
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: (path: string) => new URL(`http://127.0.0.1:${port}${path}`), seen, close: () => new Promise((r) => server.close(r)) };
};

const timeoutError = () => Object.assign(new Error('no data for 0.3 s (TSD_HTTP_TIMEOUT)'), { code: 'ETIMEDOUT' });

test('an exchange: the request it sends, bodies by length, by chunks and by close', async () => {
  const s = await rawServer((req) => {
    if (req.startsWith('GET /len?')) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Type: application/x\r\nContent-Length: 11\r\n', '\r\nhello', ' world', 'EXTRA'], close: false };
    if (req.startsWith('GET /chunked ')) return { pieces: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r', '\nabc\r\n', '2\r\nde\r\n0\r\n\r\n'], close: false };
    if (req.startsWith('GET /close ')) return { pieces: ['HTTP/1.1 404 Not Found\r\n\r\n{"errors":', '[]}'], close: true };
    return { pieces: ['HTTP/1.1 204 No Content\r\n\r\n'], close: false };
  });
  try {
    const len = await plainGet(s.url('/len?q=1'), { accept: 'application/x', authorization: 'Bearer t' }, 5000, timeoutError);
    assert.is(len.status, 200);
    assert.is(len.headers['content-type'], 'application/x');
    assert.is((await readBody(len, 100, 'len')).toString(), 'hello world');
    assert.match(s.seen[0] ?? '', /^GET \/len\?q=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\naccept: application\/x\r\nauthorization: Bearer t\r\nConnection: close\r\n\r\n$/);
    const chunked = await plainGet(s.url('/chunked'), {}, 5000, timeoutError);
    assert.is(chunked.status, 200);
    assert.is((await readBody(chunked, 100, 'chunked')).toString(), 'abcde');
    const closed = await plainGet(s.url('/close'), {}, 5000, timeoutError);
    assert.is(closed.status, 404);
    assert.is((await readBody(closed, 100, 'close')).toString(), '{"errors":[]}');
    const empty = await plainGet(s.url('/empty'), {}, 5000, timeoutError);
    assert.is(empty.status, 204);
    assert.is((await readBody(empty, 100, 'empty')).length, 0);
  } finally {
    await s.close();
  }
});

test('faults: a body cut short, a body over the limit, silence, a head too big, nobody listening', async () => {
  const s = await rawServer((req) => {
    if (req.startsWith('GET /cut ')) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'], close: true };
    if (req.startsWith('GET /huge ')) return { pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', ...Array.from({ length: 20 }, () => `400\r\n${'x'.repeat(1024)}\r\n`)], close: false };
    if (req.startsWith('GET /bighead ')) return { pieces: [`HTTP/1.1 200 OK\r\nX: ${'y'.repeat(70 * 1024)}\r\n\r\n`], close: false };
    if (req.startsWith('GET /stall ')) return { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], close: false };
    return { pieces: [], close: false }; // /silent: never answers
  });
  try {
    const cut = await plainGet(s.url('/cut'), {}, 5000, timeoutError);
    const e1 = await readBody(cut, 1000, 'manifest x').catch((e: unknown) => e);
    assert.ok(isFailure(e1) && e1._tag === 'Truncated' && e1.retryable, String((e1 as Error).message));
    const huge = await plainGet(s.url('/huge'), {}, 5000, timeoutError);
    const e2 = await readBody(huge, 4096, 'manifest x').catch((e: unknown) => e);
    assert.ok(isFailure(e2) && e2._tag === 'TooLarge', String((e2 as Error).message));
    const stall = await plainGet(s.url('/stall'), {}, 300, timeoutError);
    const e3 = await readBody(stall, 1000, 'manifest x').catch((e: unknown) => e);
    assert.ok(isFailure(e3) && e3.retryable && /no data for 0\.3 s/.test(e3.message), String((e3 as Error).message));
    const silent = await plainGet(s.url('/silent'), {}, 300, timeoutError).catch((e: unknown) => e);
    assert.match(String((silent as Error).message), /no data for 0\.3 s/);
    const big = await plainGet(s.url('/bighead'), {}, 5000, timeoutError).catch((e: unknown) => e);
    assert.match(String((big as Error).message), /response head over/);
    // through send(): a connection refused is a retryable network failure naming the request
    const port = await new Promise<number>((r) => {
      const t = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (t.address() as net.AddressInfo).port;
        t.close(() => r(p));
      });
    });
    const refused = await send({ method: 'GET', url: new URL(`http://127.0.0.1:${port}/v2/x/manifests/y`), bare: true }).catch((e: unknown) => e);
    assert.ok(isFailure(refused) && refused.retryable, String(refused));
    assert.match(String((refused as { message?: string }).message), new RegExp(`^GET 127\\.0\\.0\\.1:${port}/v2/x/manifests/y: .*ECONNREFUSED`));
  } finally {
    await s.close();
  }
});

test('a big body read slowly arrives whole (the socket waits for the reader)', async () => {
  const blob = randomBytes(4 * 1024 * 1024);
  const s = await rawServer(() => ({ pieces: [`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`, blob], close: false }));
  try {
    const res = await plainGet(s.url('/v2/x/blobs/sha256:y'), {}, 5000, timeoutError);
    const hash = createHash('sha256');
    let most = 0;
    let writes = 0;
    await pipeline(
      res.body,
      new Writable({
        highWaterMark: 1 << 20,
        write(chunk: Buffer, _e, done) {
          hash.update(chunk);
          most = Math.max(most, res.body.readableLength);
          if (++writes % 16 === 0) setTimeout(done, 2);
          else done();
        },
      }),
    );
    assert.is(hash.digest('hex'), createHash('sha256').update(blob).digest('hex'));
    assert.ok(most <= 256 * 1024, `the body never buffered more than a few socket reads (${most} bytes)`);
  } finally {
    await s.close();
  }
});

test.run();
