// Http: one request over Node's http/https with keep-alive, following redirects the way a
// registry client must: the registry's Authorization header never travels to another origin
// (blob storage such as S3 signs its own URLs), and https is never downgraded to http.
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { ExitCode, failure, type Failure } from '../failure.js';

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** a body is made fresh for every attempt, so a retried request can send it again */
  readonly body?: () => Buffer | Readable;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** the URL that answered, after redirects */
  readonly url: URL;
  /** the body stream; a caller that does not read it must call `discard` */
  readonly body: IncomingMessage;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
// TLS is loaded only when a registry speaks https (loading it costs start-up time on loopback pulls)
let tls: Promise<{ request: typeof http.request; agent: HttpsAgent }> | undefined;
const httpsLib = () =>
  (tls ??= import('node:https').then((https) => ({ request: https.request, agent: new https.Agent({ keepAlive: true, maxSockets: 32 }) })));

const MAX_REDIRECTS = 5;
/** No response headers within this time is a network fault (retried like a reset). */
const HEADER_TIMEOUT_MS = Number(process.env.TSD_HTTP_TIMEOUT_MS ?? 60_000);

export const networkFailure = (what: string, e: unknown): Failure => {
  const code = (e as NodeJS.ErrnoException)?.code;
  const text = e instanceof Error ? e.message : String(e);
  const line = text.split('\n')[0] ?? '';
  return failure('NetworkError', `${what}: ${code && !line.includes(code) ? `${code} ` : ''}${line}`, ExitCode.tool, true);
};

export const discard = (r: HttpResponse): void => {
  r.body.resume();
};

/** Reads a response body whole, refusing more than `max` bytes (manifests, tokens, errors). */
export const readBody = (r: HttpResponse, max: number, what: string): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
    };
    const declared = Number(r.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      settle(() => reject(failure('TooLarge', `${what}: ${declared} bytes, more than the ${max} allowed`, ExitCode.tool)));
      r.body.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    r.body.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        settle(() => reject(failure('TooLarge', `${what}: more than the ${max} bytes allowed`, ExitCode.tool)));
        r.body.destroy();
      } else chunks.push(c);
    });
    r.body.on('end', () =>
      settle(() => {
        if (Number.isFinite(declared) && n !== declared) reject(failure('Truncated', `${what}: body ended after ${n} of ${declared} bytes`, ExitCode.tool, true));
        else resolve(Buffer.concat(chunks));
      }),
    );
    r.body.on('error', (e) => settle(() => reject(networkFailure(what, e))));
    r.body.on('aborted', () => settle(() => reject(failure('Truncated', `${what}: connection closed mid-body`, ExitCode.tool, true))));
  });

const sameOrigin = (a: URL, b: URL): boolean => a.protocol === b.protocol && a.host === b.host;

const once = async (req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> => {
  const { request, agent } = url.protocol === 'https:' ? await httpsLib() : { request: http.request, agent: httpAgent };
  return new Promise((resolve, reject) => {
    const body = req.body?.();
    const out = request(url, { method: req.method, headers, agent }, (res) => {
      clearTimeout(timer);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    const timer = setTimeout(() => out.destroy(Object.assign(new Error('no response'), { code: 'ETIMEDOUT' })), HEADER_TIMEOUT_MS);
    out.on('error', (e) => {
      clearTimeout(timer);
      reject(networkFailure(`${req.method} ${url.host}${url.pathname}`, e));
    });
    if (body === undefined) out.end();
    else if (Buffer.isBuffer(body)) out.end(body);
    else {
      body.on('error', (e) => out.destroy(e));
      body.pipe(out);
    }
  });
};

/**
 * Sends `req`, following up to five redirects for GET and HEAD (and 307/308 for the others).
 * Headers go only to the origin they were meant for; a redirect elsewhere carries none of
 * Authorization, and a redirect from https to http is refused.
 */
export const send = async (req: HttpRequest): Promise<HttpResponse> => {
  let url = req.url;
  let headers: Record<string, string> = { ...req.headers };
  for (let hop = 0; ; hop++) {
    const res = await once(req, url, headers);
    const location = res.headers.location;
    const redirect = [301, 302, 303, 307, 308].includes(res.status) && location !== undefined;
    const follow = redirect && (req.method === 'GET' || req.method === 'HEAD' || res.status === 307 || res.status === 308);
    if (!follow) return res;
    discard(res);
    if (hop >= MAX_REDIRECTS) throw failure('TooManyRedirects', `${req.method} ${req.url.host}${req.url.pathname}: more than ${MAX_REDIRECTS} redirects`, ExitCode.tool);
    const next = new URL(location, url);
    if (url.protocol === 'https:' && next.protocol !== 'https:') {
      throw failure('InsecureRedirect', `${req.method} ${req.url.host}${req.url.pathname}: refused a redirect from https to ${next.protocol}//${next.host}`, ExitCode.tool);
    }
    if (!sameOrigin(url, next)) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    }
    url = next;
  }
};
