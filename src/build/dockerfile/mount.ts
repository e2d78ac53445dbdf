// Mount: the value of `RUN --mount=…`, a comma-separated list of key=value fields (BuildKit's
// runmount rules: type bind by default, aliases src/source, dst/destination/target, ro/readonly).
import * as E from 'fp-ts/lib/Either.js';
import type { Mount } from './ast.js';

const TYPES = new Set(['bind', 'cache', 'tmpfs', 'secret', 'ssh']);
const ALIASES: Record<string, string> = { src: 'source', dst: 'target', destination: 'target', ro: 'readonly' };
const KEYS = new Set(['type', 'target', 'source', 'from', 'readonly', 'rw', 'readwrite', 'id', 'sharing', 'mode', 'uid', 'gid', 'required', 'env', 'size']);
const BOOLS = new Set(['readonly', 'rw', 'readwrite', 'required']);

/** Splits on commas outside double quotes (the CSV rule BuildKit uses), quotes removed. */
const csvFields = (s: string): string[] => {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      out.push(field);
      field = '';
    } else field += ch;
  }
  out.push(field);
  return out;
};

/** Decodes one --mount value; the Left is the reason, worded for the user. */
export const parseMount = (value: string): E.Either<string, Mount> => {
  const options: Record<string, string> = {};
  for (const raw of csvFields(value)) {
    const field = raw.trim();
    if (field === '') continue;
    const eq = field.indexOf('=');
    const key0 = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const key = ALIASES[key0] ?? key0;
    if (!KEYS.has(key)) return E.left(`unexpected key '${key0}' in '${field}'`);
    if (eq < 0 && !BOOLS.has(key)) return E.left(`invalid field '${field}' must be a key=value pair`);
    const v = eq < 0 ? 'true' : field.slice(eq + 1);
    if (BOOLS.has(key) && !/^(true|false|1|0)$/i.test(v)) return E.left(`invalid value for ${key0}: ${v}`);
    options[key] = v;
  }
  const type = (options.type ?? 'bind').toLowerCase();
  if (!TYPES.has(type)) return E.left(`unsupported mount type ${JSON.stringify(type)}`);
  const sharing = options.sharing;
  if (sharing !== undefined && !['shared', 'private', 'locked'].includes(sharing)) return E.left(`unsupported sharing value ${JSON.stringify(sharing)}`);
  if (options.target === undefined && (type === 'bind' || type === 'cache' || type === 'tmpfs')) return E.left('mount target must be specified');
  const truthy = (k: string): boolean | undefined => (options[k] === undefined ? undefined : /^(true|1)$/i.test(options[k]!));
  let readonly = truthy('readonly');
  if (truthy('rw') || truthy('readwrite')) readonly = false;
  const required = truthy('required');
  const pick = (k: string) => (options[k] !== undefined ? { [k]: options[k] } : {});
  return E.right({
    type: type as Mount['type'],
    ...pick('target'), ...pick('source'), ...pick('from'), ...pick('id'), ...pick('mode'), ...pick('uid'), ...pick('gid'), ...pick('env'), ...pick('size'),
    ...(sharing !== undefined ? { sharing: sharing as Mount['sharing'] } : {}),
    ...(readonly !== undefined ? { readonly } : {}),
    ...(required !== undefined ? { required } : {}),
    options,
  });
};
