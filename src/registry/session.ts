// Session: the authenticated, retrying conversation with one registry endpoint for one set of
// scopes ("repository:library/busybox:pull"). A 401 is answered once: Basic with the user's
// credentials, or a Bearer token fetched from the challenge's realm (anonymously or with the
// credentials) and then reused by every later request of the session, concurrent ones included.
import { ExitCode, failure, isFailure, type Failure } from '../failure.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { basicHeader, type Credentials } from './credentials.js';
import type { Endpoint } from './endpoint.js';
import { discard, readBody, send, type HttpRequest, type HttpResponse } from './http.js';
import { isRetryableStatus, parseRetryAfter, retryDelay, sleep, type RetryPolicy } from './retry.js';

export interface RetryEvent {
  readonly what: string;
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: string;
}

export interface SessionOptions {
  readonly credentials?: Credentials;
  readonly scopes: readonly string[];
  readonly policy: RetryPolicy;
  readonly onRetry?: (e: RetryEvent) => void;
}

export type SessionRequest = Omit<HttpRequest, 'url'> & { readonly path: string };

const MAX_ERROR_BODY = 64 * 1024;
const MAX_TOKEN_BODY = 1024 * 1024;

/** The registry's own words from an error body ({"errors":[{"code","message"}]}), if any. */
const errorDetail = async (res: HttpResponse): Promise<string> => {
  try {
    const body = await readBody(res, MAX_ERROR_BODY, 'error body');
    const u = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = u.errors?.[0];
    return e ? `${e.code ?? ''}${e.message ? ` ${e.message}` : ''}`.trim() : '';
  } catch {
    return '';
  }
};

/** A Failure for a response that is not what `what` needed; the body is consumed. */
export const statusFailure = async (res: HttpResponse, what: string): Promise<Failure & { readonly status: number }> => ({
  ...(await statusFailureOf(res, what)),
  status: res.status,
});

/** The HTTP status a Failure came from, when it came from one. */
export const statusOf = (f: Failure): number | undefined => (f as { status?: unknown }).status as number | undefined;

const statusFailureOf = async (res: HttpResponse, what: string): Promise<Failure> => {
  const detail = await errorDetail(res);
  const tail = detail ? ` (${detail})` : '';
  switch (res.status) {
    case 401:
      return failure('Unauthorized', `${what}: unauthorized: the registry wants credentials (REGISTRY_AUTH_FILE or ~/.docker/config.json)${tail}`, ExitCode.user);
    case 403:
      return failure('Denied', `${what}: access denied${tail}`, ExitCode.user);
    case 404:
      return failure('NotFound', `${what}: not found${tail}`, ExitCode.notFound);
    default:
      return failure('RegistryError', `${what}: HTTP ${res.status}${tail}`, ExitCode.tool, isRetryableStatus(res.status));
  }
};

/** Scopes of one resource merged: "repository:x:pull" and "repository:x:pull,push" ask once. Pure. */
export const mergeScopes = (scopes: readonly string[]): string[] => {
  const byResource = new Map<string, Set<string>>();
  for (const s of scopes) {
    const colon = s.lastIndexOf(':');
    const resource = colon > 0 ? s.slice(0, colon) : s;
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const a of colon > 0 ? s.slice(colon + 1).split(',') : []) if (a) actions.add(a);
    byResource.set(resource, actions);
  }
  return [...byResource].map(([resource, actions]) => (actions.size > 0 ? `${resource}:${[...actions].join(',')}` : resource));
};

export class Session {
  private authorization: string | undefined;
  private authenticating: Promise<void> | undefined;

  constructor(readonly endpoint: Endpoint, private readonly options: SessionOptions) {}

  get registry(): string {
    return this.endpoint.registry;
  }

  url(path: string): URL {
    return new URL(path, this.endpoint.base);
  }

  /**
   * A Bearer token from the challenge's realm (the distribution token spec). With credentials it
   * first asks as OAuth2 does (POST of a form: grant_type=password, or refresh_token for an
   * identity token), and falls back to the GET with Basic auth where the server answers 404 or
   * 405, as containerd does; anonymously it GETs.
   */
  private async fetchToken(c: Challenge, what: string): Promise<string> {
    const realm = c.params.realm;
    if (!realm) throw failure('AuthError', `${what}: the registry's Bearer challenge names no realm`, ExitCode.tool);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw failure('AuthError', `${what}: bad token realm ${JSON.stringify(realm)}`, ExitCode.tool);
    }
    const scopes = mergeScopes([...this.options.scopes, ...(c.params.scope ? c.params.scope.split(' ') : [])]);
    const creds = this.options.credentials;
    let res: HttpResponse | undefined;
    if (creds) {
      const form = new URLSearchParams();
      if (creds.identityToken) {
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', creds.identityToken);
      } else {
        form.set('grant_type', 'password');
        form.set('username', creds.username);
        form.set('password', creds.password);
      }
      if (c.params.service) form.set('service', c.params.service);
      form.set('client_id', 'tsd');
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      const body = Buffer.from(form.toString());
      res = await send({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) }, body: () => body });
      if (res.status === 404 || res.status === 405) {
        discard(res);
        if (creds.identityToken) throw failure('AuthError', `${what}: the token server ${url.host} does not take the OAuth2 request an identity token needs (HTTP ${res.status})`, ExitCode.user);
        res = undefined;
      }
    }
    if (res === undefined) {
      if (c.params.service) url.searchParams.set('service', c.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      res = await send({ method: 'GET', url, headers: creds ? { authorization: basicHeader(creds) } : {} });
    }
    if (res.status !== 200) {
      const f = await statusFailure(res, `token from ${url.host}`);
      throw res.status === 401 || (res.status === 400 && creds) ? failure('Unauthorized', `${what}: the token server ${url.host} refused the credentials`, ExitCode.user) : f;
    }
    const answer = await readBody(res, MAX_TOKEN_BODY, `token from ${url.host}`);
    let token: unknown;
    try {
      const u = JSON.parse(answer.toString('utf8')) as { token?: unknown; access_token?: unknown };
      token = u.access_token ?? u.token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token.length === 0) throw failure('AuthError', `${what}: the token server ${url.host} answered without a token`, ExitCode.tool);
    return `Bearer ${token}`;
  }

  private async authenticate(res: HttpResponse, what: string, tried: string | undefined): Promise<void> {
    const challenges = parseChallenges(res.headers['www-authenticate'] as string | undefined);
    discard(res);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) this.authorization = await this.fetchToken(bearer, what);
    else if (basic && this.options.credentials && tried === undefined) this.authorization = basicHeader(this.options.credentials);
    else {
      throw failure(
        'Unauthorized',
        `${what}: unauthorized${this.options.credentials ? ': the registry refused the credentials' : ': no credentials for ' + this.registry + ' (REGISTRY_AUTH_FILE or ~/.docker/config.json)'}`,
        ExitCode.user,
      );
    }
  }

  /** One request with authentication (a 401 is answered once); no retries. */
  private async authed(req: SessionRequest, what: string): Promise<HttpResponse> {
    if (this.authenticating) await this.authenticating.catch(() => undefined);
    const used = this.authorization;
    const build = (auth: string | undefined): HttpRequest => ({
      method: req.method,
      url: this.url(req.path),
      headers: { ...req.headers, ...(auth ? { authorization: auth } : {}) },
      ...(req.body ? { body: req.body } : {}),
      ...(req.bare ? { bare: true } : {}),
    });
    const res = await send(build(used));
    if (res.status !== 401) return res;
    if (this.authorization !== used && this.authorization !== undefined) {
      discard(res); // another request authenticated meanwhile
    } else {
      this.authenticating ??= this.authenticate(res, what, used).finally(() => {
        this.authenticating = undefined;
      });
      await this.authenticating;
    }
    return send(build(this.authorization));
  }

  /**
   * Sends a request, retrying network faults and 408/429/5xx (Retry-After honoured) up to the
   * policy's attempts. Any other response is returned for the caller to judge.
   */
  async request(req: SessionRequest, what: string): Promise<HttpResponse> {
    const { policy } = this.options;
    for (let attempt = 1; ; attempt++) {
      let reason: string;
      let retryAfter: number | undefined;
      try {
        const res = await this.authed(req, what);
        if (!isRetryableStatus(res.status) || attempt >= policy.attempts) return res;
        retryAfter = parseRetryAfter(res.headers['retry-after'] as string | undefined, Date.now());
        reason = `HTTP ${res.status}`;
        discard(res);
      } catch (e) {
        if (!isFailure(e) || !e.retryable || attempt >= policy.attempts) {
          throw isFailure(e) && e.retryable ? failure(e._tag, `${what}: ${e.message} (after ${attempt} attempts)`, e.exitCode) : e;
        }
        reason = e.message;
      }
      const delayMs = retryDelay(policy, attempt, retryAfter, Math.random());
      this.options.onRetry?.({ what, attempt, delayMs, reason });
      await sleep(delayMs);
    }
  }

  /** Like request, and a status outside `ok` becomes a Failure naming `what`. */
  async expect(req: SessionRequest, ok: readonly number[], what: string): Promise<HttpResponse> {
    const res = await this.request(req, what);
    if (ok.includes(res.status)) return res;
    const f = await statusFailure(res, what);
    // request() has retried already: what is left is final
    throw f.retryable ? { ...f, message: `${f.message} (after ${this.options.policy.attempts} attempts)`, retryable: false } : f;
  }

  get policy(): RetryPolicy {
    return this.options.policy;
  }

  retried(e: RetryEvent): void {
    this.options.onRetry?.(e);
  }
}
