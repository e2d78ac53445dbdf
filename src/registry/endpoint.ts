// Endpoint: where the API of a registry named in a reference is reached. Docker Hub's name
// "docker.io" is served by registry-1.docker.io; plain HTTP is used only for loopback hosts and
// for registries the user names as insecure; mirrors (from the registries file) come first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';

export interface Endpoint {
  /** the registry as a reference names it: "docker.io", "localhost:5000" */
  readonly registry: string;
  /** the base URL of its API: "https://registry-1.docker.io" */
  readonly base: URL;
  readonly mirror: boolean;
}

export interface RegistriesConfig {
  /** registries (host[:port]) reached over plain HTTP */
  readonly insecure: readonly string[];
  /** registry → mirrors tried first for pulls */
  readonly mirrors: Readonly<Record<string, readonly string[]>>;
}

export const DOCKER_HUB_API = 'registry-1.docker.io';

const hostOnly = (hostPort: string): string => {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon > 0 ? hostPort.slice(0, colon) : hostPort;
};

/** localhost, 127.0.0.0/8 and ::1: the only hosts spoken to over plain HTTP without being told. */
export const isLoopback = (hostPort: string): boolean => {
  const h = hostOnly(hostPort).toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
};

export const apiHost = (registry: string): string => (registry === 'docker.io' ? DOCKER_HUB_API : registry);

export const schemeFor = (registry: string, config: RegistriesConfig): 'http' | 'https' =>
  isLoopback(registry) || config.insecure.includes(registry) ? 'http' : 'https';

const endpoint = (registry: string, host: string, config: RegistriesConfig, mirror: boolean): Endpoint => ({
  registry,
  base: new URL(`${schemeFor(host, config)}://${apiHost(host)}`),
  mirror,
});

/** The endpoints a pull of `registry` tries, mirrors first. */
export const pullEndpoints = (registry: string, config: RegistriesConfig): readonly Endpoint[] => [
  ...(config.mirrors[registry] ?? []).map((m) => endpoint(registry, m, config, true)),
  endpoint(registry, registry, config, false),
];

/** A push goes to the registry itself, never to a mirror. */
export const pushEndpoint = (registry: string, config: RegistriesConfig): Endpoint => endpoint(registry, registry, config, false);

const isStringList = (u: unknown): u is string[] => Array.isArray(u) && u.every((x) => typeof x === 'string');

export const decodeRegistriesConfig = (text: string, file: string): E.Either<Failure, RegistriesConfig> => {
  let u: unknown;
  try {
    u = JSON.parse(text);
  } catch {
    return E.left(failure('InvalidConfigFile', `registries file ${file}: not valid JSON`));
  }
  const o = (typeof u === 'object' && u !== null ? u : {}) as Record<string, unknown>;
  const insecure = o.insecure ?? [];
  const mirrors = o.mirrors ?? {};
  if (!isStringList(insecure)) return E.left(failure('InvalidConfigFile', `registries file ${file}: "insecure" must be a list of host[:port]`));
  if (typeof mirrors !== 'object' || mirrors === null || !Object.values(mirrors).every(isStringList)) {
    return E.left(failure('InvalidConfigFile', `registries file ${file}: "mirrors" must map a registry to a list of hosts`));
  }
  return E.right({ insecure, mirrors: mirrors as Record<string, string[]> });
};

/** $TSD_REGISTRIES_CONFIG, else ~/.config/tsd/registries.json; a missing file is an empty config. */
export const loadRegistriesConfig = (env: NodeJS.ProcessEnv, extraInsecure: readonly string[] = []): E.Either<Failure, RegistriesConfig> => {
  const file = env.TSD_REGISTRIES_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? process.getBuiltinModule('node:os').homedir(), '.config'), 'tsd', 'registries.json');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return E.left(failure('InvalidConfigFile', `registries file ${file}: cannot read it`));
  }
  const base = text === undefined ? E.right<Failure, RegistriesConfig>({ insecure: [], mirrors: {} }) : decodeRegistriesConfig(text, file);
  return E.map((c: RegistriesConfig) => ({ ...c, insecure: [...c.insecure, ...extraInsecure] }))(base);
};
