// Credentials: a user name and password for a registry, from the auth files Docker and Podman
// write: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, then
// $DOCKER_CONFIG/config.json or ~/.docker/config.json. Each holds {"auths": {KEY: {"auth":
// base64("user:password")}}} where KEY is a host, a URL, or Docker Hub's legacy
// "https://index.docker.io/v1/".
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** The registry a key of "auths" stands for: scheme and path dropped, Docker Hub's aliases unified. */
export const registryOfKey = (key: string): string => {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com' ? 'docker.io' : host;
};

const decodeEntry = (u: unknown): Credentials | undefined => {
  if (typeof u !== 'object' || u === null) return undefined;
  const o = u as Record<string, unknown>;
  if (typeof o.auth === 'string' && o.auth.length > 0) {
    const text = Buffer.from(o.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
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
  join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json'),
];

/** The first credentials any auth file holds for `registry`; unreadable or broken files are skipped. */
export const findCredentials = (env: NodeJS.ProcessEnv, registry: string): Credentials | undefined => {
  for (const file of authFiles(env)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      continue;
    }
    const c = credentialsIn(parsed, registry);
    if (c) return c;
  }
  return undefined;
};

export const basicHeader = (c: Credentials): string => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
