// Http: one request over Node's http/https with keep-alive (a GET marked `bare` over plain http:
// plain-get.ts's one-exchange socket), following redirects the way a registry client must: the
// registry's Authorization header never travels to another origin (blob storage such as S3
// signs its own URLs), and https is never downgraded to http.
import type { IncomingHttpHeaders, IncomingMessage, Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { ExitCode, failure, type Failure } from '../failure.js';
import { plainGet, plainHeaders } from './plain-get.js';

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** a body is made fresh for every attempt, so a retried request can send it again */
  readonly body?: () => Buffer | Readable;
  /** a GET that may go over a bare socket (plain-get.ts) instead of node:http, when plain http */
  readonly bare?: boolean;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** the URL that answered, after redirects */
  readonly url: URL;
  /** the body stream; a caller that does not read it must call `discard` */
  readonly body: IncomingMessage;
}

// node:http is loaded on first use: a pull's GETs over plain http go through plain-get.ts
let plain: { request: typeof httpRequest; agent: HttpAgent } | undefined;
const httpLib = () => {
  if (plain === undefined) {
    const http = process.getBuiltinModule('node:http');
    plain = { request: http.request, agent: new http.Agent({ keepAlive: true, maxSockets: 32 }) };
  }
  return plain;
};
// TLS is loaded only when a registry speaks https (loading it costs start-up time on loopback pulls)
let tls: Promise<{ request: typeof httpRequest; agent: HttpsAgent }> | undefined;
const httpsLib = () =>
  (tls ??= Promise.all([import('node:https'), import('./tls.js')]).then(([https, { extraCaOptions }]) => ({
    request: https.request,
    agent: new https.Agent({ keepAlive: true, maxSockets: 32, ...extraCaOptions() }),
  })));

const MAX_REDIRECTS = 5;

/**
 * The idle timeout: a connection on which nothing moves (no response, no body byte received, no
 * request byte accepted) for this long is a network fault, retried like a reset. Set by
 * TSD_HTTP_TIMEOUT (seconds, or with a unit: 500ms, 30s, 2m; 0 turns it off), default 60 s;
 * TSD_HTTP_TIMEOUT_MS (milliseconds) is still read. A slow drip never trips it: any byte resets it.
 */
export const httpTimeoutMs = (env: NodeJS.ProcessEnv = process.env): number => {
  const ms = env.TSD_HTTP_TIMEOUT_MS;
  if (env.TSD_HTTP_TIMEOUT === undefined && ms !== undefined && /^\d+$/.test(ms.trim())) return Number(ms);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(env.TSD_HTTP_TIMEOUT ?? '');
  if (!m) return 60_000;
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000));
};

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);

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
    // a body destroyed with a reason (the idle timeout) reports that reason, not a bare close
    r.body.on('aborted', () => settle(() => reject(r.body.errored ? networkFailure(what, r.body.errored) : failure('Truncated', `${what}: connection closed mid-body`, ExitCode.tool, true))));
  });

const sameOrigin = (a: URL, b: URL): boolean => a.protocol === b.protocol && a.host === b.host;

const once = async (req: HttpRequest, url: URL, headers: Record<string, string>): Promise<HttpResponse> => {
  const idle = httpTimeoutMs();
  const idleError = () => Object.assign(new Error(`no data for ${seconds(idle)} (TSD_HTTP_TIMEOUT)`), { code: 'ETIMEDOUT' });
  if (url.protocol === 'http:' && req.bare === true && req.method === 'GET' && req.body === undefined && plainHeaders(headers)) {
    return plainGet(url, headers, idle, idleError).catch((e: unknown) => {
      throw networkFailure(`${req.method} ${url.host}${url.pathname}`, e);
    });
  }
  const { request, agent } = url.protocol === 'https:' ? await httpsLib() : httpLib();
  return new Promise((resolve, reject) => {
    const body = req.body?.();
    let response: IncomingMessage | undefined;
    const out = request(url, { method: req.method, headers, agent }, (res) => {
      response = res;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
    });
    // the socket's idle timer runs while this request holds it, its response body included
    if (idle > 0) {
      out.setTimeout(idle, () => {
        const e = idleError();
        if (response && !response.complete) response.destroy(e);
        out.destroy(e);
      });
    }
    out.on('error', (e) => reject(networkFailure(`${req.method} ${url.host}${url.pathname}`, e)));
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
