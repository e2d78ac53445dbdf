// Reference: an image name as a user types it, normalized as Docker does
// (busybox → docker.io/library/busybox:latest; localhost:5000/x@sha256:…).
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import { isDigest, type Digest } from './digest.js';

export interface Reference {
  /** registry host[:port], e.g. "docker.io", "localhost:5000" */
  readonly domain: string;
  /** repository path inside the registry, e.g. "library/busybox" */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HEX64 = /^[a-f0-9]{64}$/;
const NAME_MAX = 255;

const invalid = (input: string, why: string): Failure =>
  failure('InvalidReference', `invalid reference ${JSON.stringify(input.slice(0, 300))}: ${why}`);

/** Splits "name[:tag][@digest]" and applies Docker's normalization. */
export const parseReference = (input: string): E.Either<Failure, Reference> => {
  if (input.length === 0) return E.left(invalid(input, 'empty'));
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) return E.left(invalid(input, 'bad digest'));
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return E.left(invalid(input, `bad tag ${JSON.stringify(tag)}`));
  }
  if (rest.length === 0) return E.left(invalid(input, 'no repository name'));
  if (HEX64.test(rest)) return E.left(invalid(input, 'a 64-hex repository name is an image ID, not a name'));

  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  const hasDomain =
    slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  let domain = hasDomain ? first : DEFAULT_DOMAIN;
  let path = hasDomain ? rest.slice(slash + 1) : rest;
  if (domain === 'index.docker.io' || domain === 'registry-1.docker.io') domain = DEFAULT_DOMAIN;
  if (!DOMAIN.test(domain)) return E.left(invalid(input, `bad registry host ${JSON.stringify(domain)}`));
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  const components = path.split('/');
  const bad = components.find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined) {
    return E.left(
      invalid(input, bad.toLowerCase() === bad ? `bad name component ${JSON.stringify(bad)}` : 'repository name must be lowercase'),
    );
  }
  if (`${domain}/${path}`.length > NAME_MAX) return E.left(invalid(input, `name longer than ${NAME_MAX} characters`));
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return E.right({ domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) });
};

/** "docker.io/library/busybox" */
export const repositoryOf = (r: Reference): string => `${r.domain}/${r.path}`;

/** The full normalized string: "docker.io/library/busybox:latest", "localhost:5000/x@sha256:…". */
export const formatReference = (r: Reference): string =>
  `${repositoryOf(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;

/** Docker's short display form: "busybox:latest", "localhost:5000/x:1". */
export const familiarReference = (r: Reference): string => {
  const repo =
    r.domain === DEFAULT_DOMAIN ? (r.path.startsWith('library/') ? r.path.slice('library/'.length) : r.path) : repositoryOf(r);
  return `${repo}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
};

export const withTag = (r: Reference, tag: string): Reference => ({ domain: r.domain, path: r.path, tag });
export const withDigest = (r: Reference, digest: Digest): Reference => ({ domain: r.domain, path: r.path, digest });
