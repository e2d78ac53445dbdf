// Credentials: a user name and password (or an identity token) for a registry, from the auth
// files Docker and Podman write: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, then
// $DOCKER_CONFIG/config.json or ~/.docker/config.json. Each holds {"auths": {KEY: {"auth":
// base64("user:password")}}} where KEY is a host, a URL, or Docker Hub's legacy
// "https://index.docker.io/v1/"; and may name credential helpers: "credHelpers": {KEY: NAME} for
// one registry, "credsStore": NAME for all. A helper is the program docker-credential-NAME: `get`
// with the server URL on stdin prints {"ServerURL","Username","Secret"}; the user name "<token>"
// means the secret is an identity token (an OAuth2 refresh token, see session.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, failure } from '../failure.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** an OAuth2 refresh token to trade for access tokens, in place of the password */
  readonly identityToken?: string;
}

/** The registry a key of "auths" stands for: scheme and path dropped, Docker Hub's aliases unified. */
export const registryOfKey = (key: string): string => {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com' ? 'docker.io' : host;
};

const decodeEntry = (u: unknown): Credentials | undefined => {
  if (typeof u !== 'object' || u === null) return undefined;
  const o = u as Record<string, unknown>;
  const identityToken = typeof o.identitytoken === 'string' && o.identitytoken.length > 0 ? o.identitytoken : undefined;
  if (typeof o.auth === 'string' && o.auth.length > 0) {
    const text = Buffer.from(o.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1), ...(identityToken ? { identityToken } : {}) };
  }
  if (identityToken) return { username: '<token>', password: '', identityToken };
  if (typeof o.username === 'string' && typeof o.password === 'string') return { username: o.username, password: o.password };
  return undefined;
};

/** Finds credentials for `registry` in one parsed auth file. Pure. */
export const credentialsIn = (file: unknown, registry: string): Credentials | undefined => {
  const auths = typeof file === 'object' && file !== null ? (file as Record<string, unknown>).auths : undefined;
  if (typeof auths !== 'object' || auths === null) return undefined;
  for (const [key, entry] of Object.entries(auths)) {
    if (registryOfKey(key) === registry.toLowerCase()) {
      const c = decodeEntry(entry);
      if (c) return c;
    }
  }
  return undefined;
};

export const authFiles = (env: NodeJS.ProcessEnv): readonly string[] => [
  ...(env.REGISTRY_AUTH_FILE ? [env.REGISTRY_AUTH_FILE] : []),
  ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
  join(env.DOCKER_CONFIG ?? join(env.HOME ?? process.getBuiltinModule('node:os').homedir(), '.docker'), 'config.json'),
];

/** The helper an auth file names for `registry`: its credHelpers entry, else its credsStore. Pure. */
export const helperIn = (file: unknown, registry: string): string | undefined => {
  if (typeof file !== 'object' || file === null) return undefined;
  const o = file as Record<string, unknown>;
  const helpers = o.credHelpers;
  if (typeof helpers === 'object' && helpers !== null) {
    for (const [key, name] of Object.entries(helpers)) if (registryOfKey(key) === registry.toLowerCase() && typeof name === 'string' && name) return name;
  }
  return typeof o.credsStore === 'string' && o.credsStore ? o.credsStore : undefined;
};

/** The server URL a helper is asked about (Docker keeps Docker Hub under its legacy URL). */
export const helperServerUrl = (registry: string): string => (registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry);

/** Decodes a helper's answer ({"Username","Secret"}); "<token>" makes the secret an identity token. Pure. */
export const decodeHelperAnswer = (text: string): Credentials | undefined => {
  let u: unknown;
  try {
    u = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = (typeof u === 'object' && u !== null ? u : {}) as Record<string, unknown>;
  const username = typeof o.Username === 'string' ? o.Username : '';
  const secret = typeof o.Secret === 'string' ? o.Secret : '';
  if (!secret) return undefined;
  return username === '<token>' ? { username, password: '', identityToken: secret } : { username, password: secret };
};

/** Asks docker-credential-NAME for the registry's credentials; undefined when it has none. */
const askHelper = (name: string, registry: string, env: NodeJS.ProcessEnv): Credentials | undefined => {
  const program = `docker-credential-${name}`;
  const what = `credential helper ${program} for ${registry}`;
  let out: string;
  try {
    // loaded only when a helper is named: a plain pull's start-up does without node:child_process
    const { execFileSync } = process.getBuiltinModule('node:child_process');
    out = execFileSync(program, ['get'], { input: helperServerUrl(registry), env, timeout: 60_000, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: Buffer; stderr?: Buffer; status?: number | null };
    if (err.code === 'ENOENT') throw failure('CredentialHelper', `${what}: ${program} is not on PATH`, ExitCode.user);
    const said = `${err.stdout?.toString() ?? ''} ${err.stderr?.toString() ?? ''}`.trim();
    // the helpers' own words when they have nothing for the server (docker-credential-helpers)
    if (/credentials not found/i.test(said)) return undefined;
    throw failure('CredentialHelper', `${what}: ${said.split('\n')[0] || (err.code === 'ETIMEDOUT' ? 'timed out' : `exit ${err.status ?? '?'}`)}`, ExitCode.user);
  }
  const c = decodeHelperAnswer(out);
  if (c === undefined) throw failure('CredentialHelper', `${what}: an answer without a Secret, or not JSON`, ExitCode.user);
  return c;
};

/**
 * The first credentials any auth file holds for `registry`: in each file, its credential helper
 * first (credHelpers, then credsStore), then its auths entry. Unreadable or broken files are
 * skipped; a helper that fails (other than having nothing) throws a Failure naming it.
 */
export const findCredentials = (env: NodeJS.ProcessEnv, registry: string): Credentials | undefined => {
  for (const file of authFiles(env)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    const helper = helperIn(parsed, registry);
    const fromHelper = helper !== undefined ? askHelper(helper, registry, env) : undefined;
    if (fromHelper) return fromHelper;
    const c = credentialsIn(parsed, registry);
    if (c) return c;
  }
  return undefined;
};

export const basicHeader = (c: Credentials): string => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
