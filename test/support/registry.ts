// Test support for tsd-pull and tsd-push: a real distribution registry (docker-registry) on
// 127.0.0.1 with a random port and a temp storage dir, optionally behind htpasswd basic auth or
// token auth (with a small token server that signs JWTs the registry verifies); a fault-injecting
// HTTP proxy on loopback; OCI layouts written by the test; skopeo as the independent peer.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { removeDir, tempDir } from './tsd.js';

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Registry {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** htpasswd basic auth with these users */
  readonly users?: Readonly<Record<string, string>>;
  /** token auth: realm URL, and the PEM cert whose key signs the tokens */
  readonly token?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly certPath: string };
}

/** A bcrypt htpasswd line, made with the system's crypt(3) through perl (libxcrypt knows $2b$). */
const htpasswdLine = (user: string, password: string): string => {
  const salt = randomBytes(16).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(22, 'a').slice(0, 22);
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`]).toString();
  if (!hash.startsWith('$2b$')) throw new Error('crypt(3) has no bcrypt here');
  return `${user}:${hash}`;
};

const waitReady = async (host: string, child: ChildProcess, log: () => string): Promise<void> => {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(`http://${host}/v2/`, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`docker-registry did not start: ${log()}`);
};

export const startRegistry = async (opts: RegistryOptions = {}): Promise<Registry> => {
  const dir = tempDir('tsd-registry-');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let auth = '';
  if (opts.users) {
    writeFileSync(join(dir, 'htpasswd'), Object.entries(opts.users).map(([u, p]) => htpasswdLine(u, p)).join('\n') + '\n');
    auth = `auth:\n  htpasswd:\n    realm: tsd-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (opts.token) {
    const t = opts.token;
    auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certPath}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
  secret: ${randomBytes(16).toString('hex')}
${auth}`;
  writeFileSync(join(dir, 'config.yml'), config);
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  // a test process that dies early takes its registry with it
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  await waitReady(host, child, () => stderr);
  return {
    host,
    port,
    dir,
    stop: async () => {
      process.off('exit', reap);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      removeDir(dir);
    },
  };
};

// ---- token server -----------------------------------------------------------------------------

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly certPath: string;
  /** every token request seen: its scopes and whether it carried basic credentials */
  readonly requests: { scopes: string[]; user: string | undefined; method?: string; grant?: string }[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/**
 * A token server in the style of Docker Hub's: anonymous pull, push only for `users`. With
 * `oauth`, it also takes OAuth2 POSTs (grant_type password, or refresh_token `refresh-USER`);
 * without, a POST is answered 405 (clients fall back to GET).
 */
export const startTokenServer = async (users: Readonly<Record<string, string>> = {}, opts: { oauth?: boolean } = {}): Promise<TokenServer> => {
  const dir = tempDir('tsd-token-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=tsd-test-token', '-days', '2'], { stdio: 'ignore' });
  const key = readFileSync(join(dir, 'key.pem'));
  const der = execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-outform', 'DER']);
  const service = 'tsd-test-registry';
  const issuer = 'tsd-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      if (!opts.oauth) {
        req.resume();
        res.writeHead(405).end();
        return;
      }
      const body: Buffer[] = [];
      req.on('data', (c: Buffer) => body.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(body).toString());
        const grant = form.get('grant_type') ?? '';
        const u = grant === 'password' ? form.get('username') ?? '' : (form.get('refresh_token') ?? '').replace(/^refresh-/, '');
        const ok = grant === 'password' ? users[u] !== undefined && users[u] === form.get('password') : grant === 'refresh_token' && users[u] !== undefined && form.get('refresh_token') === `refresh-${u}`;
        if (!ok) {
          res.writeHead(401).end('{"error":"invalid_grant"}');
          return;
        }
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        requests.push({ scopes, user: u, method: 'POST', grant });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: mint(scopes, u), expires_in: 300 }));
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    let user: string | undefined;
    const authz = req.headers.authorization;
    if (authz?.startsWith('Basic ')) {
      const [u, ...rest] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
      if (u === undefined || users[u] !== rest.join(':')) {
        res.writeHead(401).end('{"details":"bad credentials"}');
        return;
      }
      user = u;
    }
    requests.push({ scopes, user, method: 'GET' });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: mint(scopes, user), expires_in: 300 }));
  });
  const mint = (scopes: readonly string[], user: string | undefined): string => {
    const access = scopes.flatMap((s) => {
      const [type, name, actions] = s.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const allowed = actions.split(',').filter((a) => a === 'pull' || user !== undefined);
      return [{ type, name, actions: allowed }];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signing).sign(key);
    return `${signing}.${b64url(signature)}`;
  };
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath: join(dir, 'cert.pem'),
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      removeDir(dir);
    },
  };
};

// ---- fault proxy ------------------------------------------------------------------------------

export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: string }
  /** close the connection after this many body bytes */
  | { readonly kind: 'reset'; readonly after: number }
  /** send this many body bytes and end the response early, as if the body were shorter */
  | { readonly kind: 'truncate'; readonly after: number }
  /** flip the byte at this offset of the body */
  | { readonly kind: 'flip'; readonly at: number }
  /** send this many body bytes, then nothing more, holding the connection open */
  | { readonly kind: 'stall'; readonly after: number }
  /** answer 200 with this body instead of the registry's (with or without a Content-Length) */
  | { readonly kind: 'replace'; readonly body: Buffer; readonly contentType: string; readonly chunked?: boolean }
  /** answer 307 to this base URL + the request's path (blob storage elsewhere) */
  | { readonly kind: 'redirect'; readonly to: string }
  /** accept the request and never answer (nor read its body): a stalled server */
  | { readonly kind: 'hang' }
  /** pass the response body on `bytes` at a time, one burst every `everyMs` */
  | { readonly kind: 'drip'; readonly bytes: number; readonly everyMs: number }
  /** close the connection once this many request body bytes have come in (an upload cut short) */
  | { readonly kind: 'resetUpload'; readonly after: number };

export interface FaultRule {
  /** which requests: a substring of "METHOD /path" */
  readonly match: string;
  readonly fault: Fault;
  /** how many times it fires (default once) */
  times?: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly rules: FaultRule[];
  /** every request seen, "METHOD /path range" */
  readonly seen: string[];
  stop(): Promise<void>;
}

/** An HTTP proxy on loopback in front of `target` that injects the faults its rules name. */
export const startFaultProxy = async (target: string): Promise<FaultProxy> => {
  const rules: FaultRule[] = [];
  const seen: string[] = [];
  const hung: http.ServerResponse[] = [];
  const [targetHost, targetPort] = target.split(':');
  const server = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    seen.push(`${line}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const rule = rules.find((r) => line.includes(r.match) && (r.times ?? 1) > 0);
    if (rule) rule.times = (rule.times ?? 1) - 1;
    const fault = rule?.fault;
    if (fault?.kind === 'replace') {
      req.resume();
      res.writeHead(200, { 'content-type': fault.contentType, ...(fault.chunked ? {} : { 'content-length': String(fault.body.length) }) });
      if (fault.chunked) for (let i = 0; i < fault.body.length; i += 65536) res.write(fault.body.subarray(i, i + 65536));
      else res.write(fault.body);
      res.end();
      return;
    }
    if (fault?.kind === 'hang') {
      hung.push(res);
      return;
    }
    if (fault?.kind === 'resetUpload') {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= fault.after) req.socket.destroy();
      });
      return;
    }
    if (fault?.kind === 'redirect') {
      req.resume();
      res.writeHead(307, { location: `${fault.to}${req.url}` }).end();
      return;
    }
    if (fault?.kind === 'status') {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}');
      return;
    }
    const up = http.request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      if (!fault || (upRes.statusCode !== 200 && upRes.statusCode !== 206)) {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        return;
      }
      const headers = { ...upRes.headers };
      if (fault.kind === 'truncate') delete headers['content-length'];
      res.writeHead(upRes.statusCode ?? 200, headers);
      if (fault.kind === 'drip') {
        const chunks: Buffer[] = [];
        upRes.on('data', (c: Buffer) => chunks.push(c));
        upRes.on('end', () => {
          const all = Buffer.concat(chunks);
          let at = 0;
          const tick = () => {
            if (res.destroyed) return;
            res.write(all.subarray(at, at + fault.bytes));
            at += fault.bytes;
            if (at >= all.length) res.end();
            else setTimeout(tick, fault.everyMs);
          };
          tick();
        });
        return;
      }
      let offset = 0;
      upRes.on('data', (chunk: Buffer) => {
        const start = offset;
        offset += chunk.length;
        if (fault.kind === 'flip') {
          if (fault.at >= start && fault.at < offset) {
            chunk = Buffer.from(chunk);
            chunk[fault.at - start] = (chunk[fault.at - start] ?? 0) ^ 0xff;
          }
          res.write(chunk);
          return;
        }
        if (offset <= fault.after) {
          res.write(chunk);
          return;
        }
        if (start < fault.after) res.write(chunk.subarray(0, fault.after - start));
        if (fault.kind === 'stall') {
          upRes.pause();
          return;
        }
        upRes.destroy();
        if (fault.kind === 'reset') res.socket?.destroy();
        else res.end();
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${port}`,
    rules,
    seen,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
};

// ---- OCI layouts made by the test, copied into the registry by skopeo --------------------------

export interface LayoutLayer {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
}

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export class OciLayout {
  readonly manifests: { mediaType: string; digest: string; size: number; annotations?: Record<string, string>; platform?: object }[] = [];
  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    this.save();
  }
  put(bytes: Buffer | string): { digest: string; size: number } {
    const digest = sha256(bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { digest, size: Buffer.byteLength(bytes) };
  }
  /** A gzip layer holding the given files (small, in memory). */
  async smallLayer(files: Record<string, string | Buffer>): Promise<LayoutLayer> {
    const pack = tar.pack();
    for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack as unknown as AsyncIterable<Buffer>) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const gz = gzipSync(raw);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...this.put(gz), diffId: sha256(raw) };
  }
  /** A layer with one file of `bytes` random bytes, streamed to disk (never whole in memory). */
  async bigLayer(bytes: number, gzip = false): Promise<LayoutLayer> {
    const tmp = join(this.dir, `tmp-${randomBytes(4).toString('hex')}`);
    const pack = tar.pack();
    const diff = createHash('sha256');
    const blob = createHash('sha256');
    let size = 0;
    const entry = pack.entry({ name: 'data.bin', size: bytes, mode: 0o644, mtime: new Date(0) });
    const source = Readable.from(
      (function* () {
        let left = bytes;
        while (left > 0) {
          const n = Math.min(left, 1 << 20);
          left -= n;
          yield randomBytes(n);
        }
      })(),
    );
    const fed = pipeline(source, entry).then(() => pack.finalize());
    const tap = async function* (src: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>) {
      for await (const c of src) {
        hash.update(c);
        yield c;
      }
    };
    const stages: unknown[] = [pack, (s: AsyncIterable<Buffer>) => tap(s, diff)];
    if (gzip) stages.push(createGzip({ level: 1 }));
    stages.push(async function* (s: AsyncIterable<Buffer>) {
      for await (const c of s) {
        blob.update(c);
        size += c.length;
        yield c;
      }
    });
    stages.push(createWriteStream(tmp));
    await Promise.all([fed, (pipeline as (...a: unknown[]) => Promise<void>)(...stages)]);
    const digest = `sha256:${blob.digest('hex')}`;
    renameSync(tmp, join(this.dir, 'blobs', 'sha256', digest.slice(7)));
    return { mediaType: gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', digest, size, diffId: `sha256:${diff.digest('hex')}` };
  }
  /** Writes config and manifest over `layers`; names it `tag` in index.json unless told not to. */
  image(layers: readonly LayoutLayer[], opts: { tag?: string; architecture?: string; os?: string; variant?: string; configText?: string } = {}) {
    const architecture = opts.architecture ?? 'amd64';
    const config = opts.configText ?? JSON.stringify({ architecture, os: opts.os ?? 'linux', ...(opts.variant ? { variant: opts.variant } : {}), config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } });
    const c = this.put(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    });
    const m = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...this.put(manifest) };
    const platform = { architecture, os: opts.os ?? 'linux', ...(opts.variant ? { variant: opts.variant } : {}) };
    if (opts.tag !== undefined) this.manifests.push({ ...m, annotations: { 'org.opencontainers.image.ref.name': opts.tag } });
    this.save();
    return { ...m, platform, config: c.digest };
  }
  /** Writes an index over platform manifests and names it `tag`. */
  index(entries: readonly { mediaType: string; digest: string; size: number; platform: object }[], tag: string) {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries.map((e) => ({ mediaType: e.mediaType, digest: e.digest, size: e.size, platform: e.platform })) });
    const i = { mediaType: 'application/vnd.oci.image.index.v1+json', ...this.put(body) };
    this.manifests.push({ ...i, annotations: { 'org.opencontainers.image.ref.name': tag } });
    this.save();
    return i;
  }
  private save(): void {
    writeFileSync(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: this.manifests }));
  }
}

/** skopeo copy with TLS off for loopback; `args` are extra flags such as --all. Asynchronous, so
 * a token server living in the test process can answer skopeo meanwhile. */
export const skopeoCopy = (src: string, dst: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', '--dest-tls-verify=false', ...args, src, dst], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`skopeo copy ${src} ${dst}: ${err.trim()}`))));
  });

/** The digest of the manifest skopeo reads from `ref` (its raw bytes, hashed here). */
export const skopeoDigest = (ref: string, env: NodeJS.ProcessEnv = {}): string =>
  sha256(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', ref], { env: { ...process.env, ...env } }));

/** skopeo's raw manifest of `ref`, parsed. */
export const skopeoRaw = (ref: string, env: NodeJS.ProcessEnv = {}): any =>
  JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--raw', ref], { env: { ...process.env, ...env } }).toString());

/** Uploads raw blobs and a raw manifest with plain HTTP, for documents skopeo would refuse to write. */
export const putRaw = async (host: string, repo: string, blobs: readonly Buffer[], manifest: string | Buffer, tag: string, mediaType = 'application/vnd.oci.image.manifest.v1+json'): Promise<string> => {
  for (const b of blobs) {
    const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`POST upload: ${start.status}`);
    const loc = new URL(start.headers.get('location') ?? '', `http://${host}`);
    loc.searchParams.set('digest', sha256(b));
    const put = await fetch(loc, { method: 'PUT', body: b, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  }
  const m = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': mediaType } });
  if (m.status !== 201) throw new Error(`PUT manifest: ${m.status} ${await m.text()}`);
  return sha256(manifest);
};

export { sha256 };

/** A real registry seeded by skopeo with a two-layer image `REPO:v1`, behind a fault proxy. */
export interface FaultyRegistry {
  readonly reg: Registry;
  readonly proxy: FaultProxy;
  readonly work: string;
  readonly small: LayoutLayer;
  readonly big: LayoutLayer;
  readonly image: ReturnType<OciLayout['image']>;
  /** the image's reference through the proxy */
  readonly ref: string;
  /** forget the proxy's rules and what it saw (before each test) */
  reset(): void;
  stop(): Promise<void>;
}

export const startFaultyRegistry = async (repo: string, bigBytes: number): Promise<FaultyRegistry> => {
  const reg = await startRegistry();
  const proxy = await startFaultProxy(reg.host);
  const work = tempDir('tsd-faulty-');
  const layout = new OciLayout(join(work, 'layout'));
  const big = await layout.bigLayer(bigBytes);
  const small = await layout.smallLayer({ 'a.txt': 'a\n' });
  const image = layout.image([small, big], { tag: 'v1' });
  await skopeoCopy(`oci:${layout.dir}:v1`, `docker://${reg.host}/${repo}:v1`);
  return {
    reg,
    proxy,
    work,
    small,
    big,
    image,
    ref: `${proxy.host}/${repo}:v1`,
    reset: () => {
      proxy.rules.length = 0;
      proxy.seen.length = 0;
    },
    stop: async () => {
      await proxy.stop();
      await reg.stop();
      removeDir(work);
    },
  };
};
